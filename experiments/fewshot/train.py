"""The few-shot training loop: chunked jitted meta-training, evaluation, checkpoints.

`run(config, run_dir)` meta-trains MAML or BMG and writes into ``run_dir``:

* ``config.json``: the resolved `Config`;
* ``metrics.jsonl``: one JSON object per line; ``kind`` is ``"compile"`` (compile seconds),
  ``"train"`` (per chunk: meta-loss, support losses, meta-steps/s) or ``"eval"`` (mean query
  accuracy or MSE over the fixed meta-test tasks with a 95% confidence interval, the
  meta-training wall-clock ``train_time_s`` so far and the evaluation's own ``eval_time_s``);
* ``checkpoints/<step>/``: meta-parameters, optimizer state, PRNG key, step and training time
  after the last chunk (`experiments.fewshot.run_dir`). A rerun with the same run directory
  resumes from there and gives the same numbers as an uninterrupted run (only ``meta_steps``
  may change);
* ``fault.json``: only if the run diverged. A chunk whose meta-parameters, optimizer state or
  records are NaN or infinite is neither written nor checkpointed; the run stops with
  `experiments.common.runs.NonFiniteError` and refuses to resume
  (`experiments.common.runs.check_finite`, `experiments.common.runs.check_no_fault`).

``train_time_s`` counts executed training chunks only: not compilation (reported separately),
evaluation or checkpointing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from agents import maml, networks
from experiments.common import runs
from experiments.fewshot import run_dir as run_dir_lib
from experiments.fewshot.config import Config
from experiments.fewshot.data import digits, episodes, miniimagenet, omniglot, sinusoid

PRNG_IMPL = "rbg"
"""JAX's ``rbg`` PRNG: XLA's RngBitGenerator draws the bits. Deterministic on a given backend
and JAX version, and XLA compiles it several times faster on CPU than the default threefry
(seconds per jitted program at these sizes)."""


class Task(NamedTuple):
    """A task family: its network, loss, data and episode sampler.

    Attributes:
      net: the network.
      loss: ``"cross_entropy"`` or ``"mse"``.
      train_data: what ``sample`` draws meta-training tasks from (an array, or ``()``).
      test_data: what ``sample`` draws meta-test tasks from.
      sample: ``sample(key, data, num_tasks) -> Episode`` with a leading task axis.
    """

    net: networks.Network
    loss: str
    train_data: Any
    test_data: Any
    sample: Callable[[jax.Array, Any, int], maml.Episode]


def build_task(config: Config) -> Task:
    """The network, data and episode sampler of ``config.task`` (reads files if needed)."""
    if config.regression:
        net = networks.mlp_regressor(hidden_sizes=config.hidden_sizes)
        sample = lambda key, data, n: sinusoid.sample_episodes(
            key, num_tasks=n, shots=config.shots, queries=config.queries
        )
        return Task(net, "mse", (), (), sample)
    if config.task == "digits":
        split = digits.load_split(rotations=config.rotations)
    elif config.task == "omniglot":
        split = omniglot.load_split(
            config.data_dir, image_size=config.image_size, rotations=config.rotations
        )
    else:
        split = miniimagenet.load_split(
            config.data_dir, image_size=config.image_size, eval_split=config.eval_split
        )
    for name, images in (("meta-train", split.train), ("meta-test", split.test)):
        episodes.check_enough(
            images,
            ways=config.ways,
            shots=config.shots,
            queries=config.queries,
            name=f"{config.task} {name} classes",
        )
    net = networks.conv_classifier(
        num_classes=config.ways, channels=config.channels, norm=config.norm
    )
    sample = lambda key, data, n: episodes.sample_episodes(
        key, data, num_tasks=n, ways=config.ways, shots=config.shots, queries=config.queries
    )
    return Task(net, "cross_entropy", jnp.asarray(split.train), jnp.asarray(split.test), sample)


def build_meta_optimizer(config: Config, task: Task):
    """The learner and its MAML or BMG meta-optimizer (Adam on w)."""
    learner = maml.make_learner(
        task.net,
        maml.MamlConfig(
            loss=task.loss,
            inner_lr=config.inner_lr,
            first_order=config.first_order,
            learn_inner_lr=config.learn_inner_lr,
        ),
    )
    meta_opt = maml.make_meta_optimizer(
        learner,
        method=config.method,
        num_inner_steps=config.num_inner_steps,
        bootstrap_steps=config.bootstrap_steps,
        matching=config.matching,
        target_lr=config.target_lr,
        target_optimizer=config.target_optimizer,
        meta_optimizer=meta_optimizer(config),
        remat=config.remat,
    )
    return learner, meta_opt


def meta_optimizer(config: Config) -> optax.GradientTransformation:
    """Adam on the meta-parameters, after clipping the meta-gradient's global norm to
    ``meta_max_grad_norm`` when it is > 0."""
    adam = optax.adam(config.meta_lr)
    if config.meta_max_grad_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.meta_max_grad_norm), adam)
    return adam


def make_train_chunk(config: Config, task: Task, meta_opt) -> Callable:
    """``chunk(meta_params, meta_opt_state, key, data)``: ``chunk_size`` meta-steps in a scan.

    Each meta-step draws ``meta_batch_size`` training tasks from ``data`` with a fresh key,
    takes one MAML or BMG meta-step and applies it. Returns the new carry and per-step metrics.
    """

    def chunk(meta_params, meta_opt_state, key, data):
        def one_step(carry, _):
            meta_params, meta_opt_state, key = carry
            key, task_key = jax.random.split(key)
            batch = task.sample(task_key, data, config.meta_batch_size)
            out = meta_opt.update(
                maml.initial_state(meta_params, batch), meta_opt_state, meta_params
            )
            meta_params = optax.apply_updates(meta_params, out.meta_updates)
            support_loss = out.aux.inner_aux.support_loss
            metrics = {
                "meta_loss": out.meta_loss,
                "meta_grad_norm": out.meta_grad_norm,
                "support_loss_first": support_loss[0],
                "support_loss_last": support_loss[-1],
            }
            return (meta_params, out.meta_opt_state, key), metrics

        carry = (meta_params, meta_opt_state, key)
        return jax.lax.scan(one_step, carry, None, length=config.chunk_size)

    return chunk


def make_evaluate(config: Config, task: Task, learner) -> Callable:
    """``evaluate(meta_params, key, data) -> TaskMetrics [eval_tasks]`` on meta-test tasks.

    The tasks come from ``key`` (fixed for a run, so every evaluation sees the same tasks) in
    batches of ``eval_batch_size``; each is adapted with ``eval_inner_steps`` support steps.
    """
    num_batches = config.eval_tasks // config.eval_batch_size

    def evaluate(meta_params, key, data):
        def one_batch(batch_key):
            batch = task.sample(batch_key, data, config.eval_batch_size)
            return maml.adapt_and_evaluate(
                task.net,
                learner,
                meta_params,
                batch,
                num_steps=config.eval_inner_steps,
                loss=task.loss,
            )

        metrics = jax.lax.map(one_batch, jax.random.split(key, num_batches))
        return jax.tree.map(lambda m: m.reshape(-1), metrics)

    return evaluate


def summarise(metrics: maml.TaskMetrics, *, regression: bool) -> dict[str, Any]:
    """Mean and 95% confidence half-width (1.96 standard errors) over meta-test tasks.

    ``ci95`` is ``None`` for a single task.
    """
    values = np.asarray(metrics.loss if regression else metrics.accuracy, np.float64)
    # One task has no spread: ``None`` (JSON null), as metrics.jsonl is strict JSON (no NaN).
    ci95 = 1.96 * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else None
    return {
        "metric": "mse" if regression else "accuracy",
        "mean": float(values.mean()),
        "ci95": None if ci95 is None else float(ci95),
        "query_loss": float(np.mean(metrics.loss)),
        "num_tasks": int(values.size),
    }


class Programs(NamedTuple):
    """The compiled programs of a configuration (see `compile_programs`)."""

    initialise: Callable
    chunk: Callable
    evaluate: Callable
    chunk_compile_s: float
    eval_compile_s: float


_PROGRAMS: dict[Any, Programs] = {}


def _keys(config: Config):
    root = jax.random.key(config.seed, impl=PRNG_IMPL)
    return dict(zip(("init", "train", "eval"), jax.random.split(root, 3), strict=True))


def compile_programs(config: Config, task: Task) -> Programs:
    """Builds and compiles the initialisation, the training chunk and the evaluation once.

    Compiled programs are kept per process for configurations that differ only in
    ``meta_steps`` (and identical data shapes), so that resuming or extending a run in the
    same process does not compile again (the compile times are then reported as zero).
    """
    shapes = jax.tree.map(lambda a: (a.shape, str(a.dtype)), (task.train_data, task.test_data))
    cache_key = (dataclasses.replace(config, meta_steps=config.chunk_size), str(shapes))
    if cache_key in _PROGRAMS:
        return _PROGRAMS[cache_key]._replace(chunk_compile_s=0.0, eval_compile_s=0.0)
    learner, meta_opt = build_meta_optimizer(config, task)
    keys = _keys(config)

    @jax.jit
    def initialise(data):
        # A meta-batch of tasks: a stateful target optimizer keeps a state per task.
        example = task.sample(keys["train"], data, config.meta_batch_size)
        meta_params = maml.init_meta_params(
            task.net,
            keys["init"],
            example.support_x[0],
            config=maml.MamlConfig(loss=task.loss, inner_lr=config.inner_lr),
        )
        return meta_params, meta_opt.init(meta_params, maml.initial_state(meta_params, example))

    meta_params, meta_opt_state = initialise(task.train_data)
    start = time.perf_counter()
    chunk = jax.jit(make_train_chunk(config, task, meta_opt))
    chunk = chunk.lower(meta_params, meta_opt_state, keys["train"], task.train_data).compile()
    chunk_compile_s = time.perf_counter() - start
    start = time.perf_counter()
    evaluate = jax.jit(make_evaluate(config, task, learner))
    evaluate = evaluate.lower(meta_params, keys["eval"], task.test_data).compile()
    programs = Programs(initialise, chunk, evaluate, chunk_compile_s, time.perf_counter() - start)
    if len(_PROGRAMS) >= 8:
        _PROGRAMS.pop(next(iter(_PROGRAMS)))
    _PROGRAMS[cache_key] = programs
    return programs


def run(
    config: Config,
    run_dir: str,
    *,
    log: Callable[[str], None] = print,
    on_record: Callable[[dict], None] | None = None,
):
    """Meta-trains ``config`` into ``run_dir`` (resuming if it holds a checkpoint);
    ``on_record`` is called with each record once it is written (say, a TensorBoard writer).

    Returns:
      The evaluation records of the run (``kind == "eval"``), oldest first.
    """
    with runs.lock(runs.make_dir(run_dir)):  # one writer per run directory
        return _run(config, run_dir, log, on_record)


def _result(record: dict[str, Any]) -> str:
    """``accuracy 0.5312 ± 0.0410`` from an evaluation record."""
    ci95 = "n/a" if record["ci95"] is None else f"{record['ci95']:.4f}"
    return f"{record['metric']} {record['mean']:.4f} ± {ci95}"


def _run(config: Config, run_dir: str, log: Callable[[str], None], on_record):
    path = Path(run_dir)
    runs.check_no_fault(path)  # a run that diverged stays stopped
    resume = run_dir_lib.check_stored(config, run_dir)
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    # Read before anything is written or compiled, so a damaged run directory fails at once.
    saved = run_dir_lib.read_checkpoint(run_dir) if resume else None
    if saved is not None and saved.step >= config.meta_steps:  # finished: nothing is written
        return run_dir_lib.read_metrics(run_dir, "eval")
    runs.require_writable(path, ("metrics.jsonl",))
    task = build_task(config)  # reads the data: a bad --data_dir fails before any write
    run_dir_lib.write_config(config, run_dir)
    programs = compile_programs(config, task)
    chunk, evaluate = programs.chunk, programs.evaluate
    keys = _keys(config)
    train_key, eval_key = keys["train"], keys["eval"]
    meta_params, meta_opt_state = programs.initialise(task.train_data)
    step, train_time = 0, 0.0
    if saved is not None:
        template = (meta_params, meta_opt_state, jax.random.key_data(train_key))
        meta_params, meta_opt_state, key_data = run_dir_lib.restore(saved, template)
        step, train_time = saved.step, saved.train_time
        train_key = jax.random.wrap_key_data(key_data, impl=PRNG_IMPL)
        run_dir_lib.truncate_metrics(metrics_path, step)
        log(f"resuming {run_dir} at meta-step {step}")
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    saved_row = step // config.chunk_size  # rows are chunks; a checkpoint follows each one

    def write(*records):
        runs.append_metrics(path, list(records))
        for record in records if on_record is not None else ():
            on_record(record)

    def check(record, *, state=()):
        runs.check_finite(
            state,
            record,
            row=step // config.chunk_size,
            at=f"meta-step {step}",
            seed=config.seed,
            run_dir=path,
            checkpoint_row=saved_row,
        )

    write(
        {
            "kind": "compile",
            "step": step,
            "chunk_compile_s": programs.chunk_compile_s,
            "eval_compile_s": programs.eval_compile_s,
        }
    )

    def run_eval():
        start = time.perf_counter()
        metrics = jax.block_until_ready(evaluate(meta_params, eval_key, task.test_data))
        record = {
            "kind": "eval",
            "step": step,
            "train_time_s": train_time,
            "eval_time_s": time.perf_counter() - start,
        }
        record.update(summarise(metrics, regression=config.regression))
        check(record)
        return record

    name = f"[{config.method} {config.task}]"
    if not resume:
        r = run_eval()
        write(r)
        log(f"{name} step 0/{config.meta_steps} test {_result(r)}")
    while step < config.meta_steps:
        start = time.perf_counter()
        (meta_params, meta_opt_state, train_key), metrics = jax.block_until_ready(
            chunk(meta_params, meta_opt_state, train_key, task.train_data)
        )
        elapsed = time.perf_counter() - start
        train_time += elapsed
        step += config.chunk_size
        record = {
            "kind": "train",
            "step": step,
            "train_time_s": train_time,
            "steps_per_s": config.chunk_size / elapsed,
        }
        record.update({k: float(np.mean(v)) for k, v in metrics.items()})
        # Checked before anything of the chunk is written, and before evaluating it.
        check(record, state={"meta_params": meta_params, "meta_opt_state": meta_opt_state})
        records = [record]
        line = (
            f"{name} step {step}/{config.meta_steps} meta-loss {record['meta_loss']:.4f} "
            f"{record['steps_per_s']:.1f} steps/s train {train_time:.1f}s"
        )
        if step % config.eval_every == 0 or step == config.meta_steps:
            records.append(run_eval())
            line += f" | test {_result(records[-1])}"
        write(*records)
        run_dir_lib.save_checkpoint(
            run_dir,
            (meta_params, meta_opt_state, jax.random.key_data(train_key)),
            step=step,
            train_time=train_time,
        )
        saved_row = step // config.chunk_size
        log(line)
    return run_dir_lib.read_metrics(run_dir, "eval")
