"""Speed and memory of one MAML / BMG meta-step on the few-shot learners (paper, section 6).

For each task (sinusoid 5-shot regression; digits 5-way 1-shot classification, both with the
``quick`` preset's network and meta-batch) and each K (inner steps backpropagated through),
the script builds

* MAML: `agents.maml.make_meta_optimizer(method="maml")` (second order unless
  ``--first_order``);
* BMG: the same learner with ``method="bmg"``, L = ``--bootstrap_steps`` and the task's
  matching (output squared error for sinusoid, KL for digits),

jit-compiles one meta-step (`MetaOptimizer.update` on a fixed meta-batch of tasks) and
reports:

* compile: seconds to trace, lower and XLA-compile the step;
* step ms / steps/s: the median wall time of one compiled step (waited for with
  `jax.block_until_ready`) over at least ``--repeats`` calls and one second, and its inverse;
* temp / total MiB: XLA's memory analysis of the compiled executable, as in
  ``benchmarks/core.py``: ``temp`` is the scratch arena sized to the peak of simultaneously
  live intermediate buffers (grows with K); ``total`` adds arguments and outputs minus
  aliased bytes. Static compiler figures for this backend, not a process measurement.

``--horizons H ...`` answers the question MAML users ask most: what does a long horizon cost?
For each H it compares second-order MAML backpropagating through all H support steps with BMG
whose target lies as far ahead (K = 1, L = H: K + L − 1 = H support steps, then a query step),
each with and without ``remat`` (each of the K backpropagated steps recomputed in the backward
pass), and prints memory and time relative to plain MAML at that H.

Usage: ``python benchmarks/maml.py [--ks 1 5 10] [--repeats 10] [--bootstrap_steps 3]``;
``--quick_presets`` times the quick presets' own settings instead;
``--horizons 5 10 20`` runs the horizon comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
from xla_memory import compiled_memory

from agents import maml
from experiments.fewshot import config as config_lib
from experiments.fewshot import train

MIN_SECONDS = 1.0
"""Fast steps are repeated until they add up to at least this long (a steadier median)."""


def _mib(n):
    return "n/a" if n is None else f"{n / 2**20:.2f}"


def measure(config: config_lib.Config, task: train.Task, repeats: int) -> dict:
    """Compiles and times one meta-step of ``config`` on a fixed meta-batch."""
    learner, meta_opt = train.build_meta_optimizer(config, task)
    keys = jax.random.split(jax.random.key(0, impl=train.PRNG_IMPL), 2)
    batch = jax.jit(lambda data: task.sample(keys[0], data, config.meta_batch_size))(
        task.train_data
    )
    meta_params = jax.jit(
        lambda x: maml.init_meta_params(
            task.net, keys[1], x, config=maml.MamlConfig(loss=task.loss, inner_lr=config.inner_lr)
        )
    )(batch.support_x[0])
    state = maml.initial_state(meta_params, batch)
    args = (state, meta_opt.init(meta_params, state), meta_params)
    start = time.perf_counter()
    compiled = jax.jit(meta_opt.update).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up
    times = []
    while len(times) < repeats or sum(times) < MIN_SECONDS:
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    temp, total = compiled_memory(compiled)
    return {"compile_s": compile_s, "step_s": statistics.median(times), "temp": temp,
            "total": total}  # fmt: skip


def _steps(config) -> str:
    """``K`` (MAML) or ``K/L`` (BMG)."""
    return f"{config.num_inner_steps}" + (
        f"/{config.bootstrap_steps}" if config.method == "bmg" else ""
    )


def _row(label, config, r):
    print(
        f"{label:<16} {_method(config):<12} {_steps(config):>5} {r['compile_s']:>9.2f} "
        f"{1e3 * r['step_s']:>9.2f} {1 / r['step_s']:>8.1f} "
        f"{_mib(r['temp']):>9} {_mib(r['total']):>9}",
        flush=True,
    )


def _method(config) -> str:
    return config.method + ("+remat" if config.remat else "")


def horizons(tasks, values, repeats):
    """MAML through H steps against BMG with its target H support steps ahead (K=1, L=H),
    with and without remat; memory and time relative to plain MAML at the same H."""
    header = (
        f"{'task':<16} {'H':>3} {'method':<12} {'K/L':>5} {'step ms':>9} {'temp MiB':>9} "
        f"{'total MiB':>9} {'time/MAML':>9} {'temp/MAML':>9}"
    )
    print(header)
    print("-" * len(header))
    for task_name in tasks:
        base = config_lib.preset("quick", task_name)
        task = train.build_task(base)
        label = "sinusoid 5-shot" if task_name == "sinusoid" else "digits 5w1s"
        for h in values:
            settings = [
                dict(method="maml", num_inner_steps=h),
                dict(method="maml", num_inner_steps=h, remat=True),
                dict(method="bmg", num_inner_steps=1, bootstrap_steps=h),
                dict(method="bmg", num_inner_steps=1, bootstrap_steps=h, remat=True),
            ]
            reference = None
            for setting in settings:
                config = config_lib.preset("quick", task_name, **setting)
                r = measure(config, task, repeats)
                reference = reference or r
                temp_ratio = (
                    "n/a" if r["temp"] is None or not reference["temp"]
                    else f"{r['temp'] / reference['temp']:.2f}"
                )  # fmt: skip
                print(
                    f"{label:<16} {h:>3} {_method(config):<12} {_steps(config):>5} "
                    f"{1e3 * r['step_s']:>9.2f} {_mib(r['temp']):>9} {_mib(r['total']):>9} "
                    f"{r['step_s'] / reference['step_s']:>9.2f} {temp_ratio:>9}",
                    flush=True,
                )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10], help="values of K")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per setting")
    parser.add_argument("--bootstrap_steps", type=int, default=3, help="L of BMG")
    parser.add_argument("--first_order", action="store_true", help="first-order inner steps")
    parser.add_argument(
        "--tasks", nargs="+", default=["sinusoid", "digits"], choices=["sinusoid", "digits"]
    )
    parser.add_argument(
        "--quick_presets",
        action="store_true",
        help="instead of the K sweep, time the quick presets' own MAML and BMG settings "
        "(sinusoid 5-shot, digits 5-way 1- and 5-shot)",
    )
    parser.add_argument(
        "--horizons",
        type=int,
        nargs="+",
        help="instead of the K sweep, compare MAML through H steps with BMG whose target is H "
        "support steps ahead (K=1, L=H), with and without remat",
    )
    args = parser.parse_args(argv)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, devices {jax.devices()}")
    if args.horizons:
        if min(args.horizons) < 1:
            parser.error(f"--horizons must be >= 1, got {args.horizons}")
        horizons(args.tasks, args.horizons, args.repeats)
        return
    if not args.quick_presets:
        print(f"BMG: L={args.bootstrap_steps}, SGD target step; first_order={args.first_order}")
    header = (
        f"{'task':<16} {'method':<12} {'K/L':>5} {'compile s':>9} {'step ms':>9} {'steps/s':>8}"
        f" {'temp MiB':>9} {'total MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for task_name in args.tasks:
        for shots in (5,) if task_name == "sinusoid" else (1, 5):
            if task_name == "digits" and shots == 5 and not args.quick_presets:
                continue
            base = config_lib.preset("quick", task_name, shots=shots)
            task = train.build_task(base)
            label = "sinusoid 5-shot" if task_name == "sinusoid" else f"digits 5w{shots}s"
            if args.quick_presets:
                for method in ("maml", "bmg"):
                    config = config_lib.preset("quick", task_name, method=method, shots=shots)
                    _row(label, config, measure(config, task, args.repeats))
                continue
            for k in args.ks:
                for method in ("maml", "bmg"):
                    config = config_lib.preset(
                        "quick", task_name, method=method, num_inner_steps=k,
                        bootstrap_steps=args.bootstrap_steps, first_order=args.first_order,
                    )  # fmt: skip
                    _row(label, config, measure(config, task, args.repeats))


if __name__ == "__main__":
    main()
