"""Speed, compile time and memory of one BMG / MG meta-step on an MLP regression learner.

The learner is a 2-hidden-layer tanh MLP (plain jax.numpy) regressing a fixed random teacher on
fresh Gaussian inputs drawn inside each step from a key carried in the learner state. Its inner
loss is the mean squared error plus exp(w)·½‖θ‖², with w the meta-learned log L2 weight, and
its inner optimizer is `bmg.optimizers.sgd`. The outer loss is the plain mean squared error.

For each K (inner steps backpropagated through), with and without `remat`, the script builds

* BMG: `bmg.bootstrapped_meta_gradient` with L bootstrap steps, L2 matching on parameters and
  an SGD target step;
* MG: `bmg.meta_gradient`;

jit-compiles one meta-step (`meta_opt.update`) and reports:

* compile: seconds to trace, lower and XLA-compile the meta-step (first-call latency);
* step: the median wall time of one compiled meta-step over ``--repeats`` calls, each waited
  for with `jax.block_until_ready`;
* temp / total: from XLA's memory analysis of the compiled executable
  (``compiled.memory_analysis()``). ``temp`` is ``temp_size_in_bytes``: the scratch arena the
  program allocates, sized by XLA's buffer assignment to the peak of the simultaneously live
  intermediate buffers (the activations kept for the backward pass live here, so this is what
  grows with K and what `remat` shrinks). ``total`` is arguments + outputs + temp - aliased
  bytes: the program's whole footprint on the device. Both are static figures computed by the
  compiler for this backend, not a measurement of the process's resident memory, and they
  exclude the runtime's own overhead. (The executable's ``peak_memory_in_bytes`` field is not
  used: on the CPU backend it reports arguments + outputs only, without the temps.) "n/a" means
  the backend does not report memory.
* BMG/MG: the ratio of step times at the same K and remat setting.

Usage: ``python benchmarks/core.py [--quick] [--ks 1 4 16] [--repeats 20] [--hidden 256]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from xla_memory import compiled_memory

import bmg

INPUT_DIM = 32
INNER_LR = 0.05
TARGET_LR = 0.05
META_LR = 1e-3


class State(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array


def init_mlp(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    shapes = zip(sizes[:-1], sizes[1:], strict=True)
    return [
        {"w": jax.random.normal(k, (n_in, n_out)) / jnp.sqrt(n_in), "b": jnp.zeros(n_out)}
        for k, (n_in, n_out) in zip(keys, shapes, strict=True)
    ]


def mlp(params, x):
    for layer in params[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


def make_learner(*, batch: int, teacher) -> tuple[bmg.Learner, Any]:
    inner_optimizer = bmg.optimizers.sgd(INNER_LR)

    def draw(key):
        key, sub = jax.random.split(key)
        x = jax.random.normal(sub, (batch, INPUT_DIM))
        return key, {"x": x, "y": jnp.tanh(x @ teacher)}

    def mse(params, data):
        return 0.5 * jnp.mean(jnp.sum((mlp(params, data["x"]) - data["y"]) ** 2, axis=-1))

    def inner_loss(params, data, log_l2):
        l2 = sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params))
        return mse(params, data) + jnp.exp(log_l2) * 0.5 * l2

    def inner_step(state, meta_params):
        key, data = draw(state.key)
        loss, grads = jax.value_and_grad(inner_loss)(state.params, data, meta_params)
        updates, opt_state = inner_optimizer.update(grads, state.opt_state, state.params)
        return State(optax.apply_updates(state.params, updates), opt_state, key), loss

    def sample(state):
        key, data = draw(state.key)
        return state._replace(key=key), data

    learner = bmg.Learner(
        inner_step=inner_step, sample=sample, outer_loss=mse, get_params=lambda s: s.params
    )
    return learner, inner_optimizer


def initial_state(inner_optimizer, *, hidden: int, key) -> State:
    params = init_mlp(key, [INPUT_DIM, hidden, hidden, 1])
    return State(params, inner_optimizer.init(params), jax.random.key(1))


def build(method: str, learner, *, k: int, bootstrap_steps: int, remat: bool) -> bmg.MetaOptimizer:
    if method == "BMG":
        return bmg.bootstrapped_meta_gradient(
            learner,
            num_inner_steps=k,
            bootstrap_steps=bootstrap_steps,
            target_optimizer=optax.sgd(TARGET_LR),
            meta_optimizer=optax.adam(META_LR),
            matching="l2",
            remat=remat,
        )
    return bmg.meta_gradient(
        learner, num_inner_steps=k, meta_optimizer=optax.adam(META_LR), remat=remat
    )


def measure(meta_opt, state, meta_params, repeats: int) -> dict[str, Any]:
    meta_state = meta_opt.init(meta_params, state)
    args = (state, meta_state, meta_params)
    start = time.perf_counter()
    compiled = jax.jit(meta_opt.update).lower(*args).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(*args))  # warm-up (first-call allocations)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    temp, total = compiled_memory(compiled)
    return {
        "compile_s": compile_s,
        "step_s": statistics.median(times),
        "temp": temp,
        "total": total,
    }


def _mib(n):
    return "n/a" if n is None else f"{n / 2**20:.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per setting")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 4, 16], help="values of K")
    parser.add_argument("--hidden", type=int, default=256, help="units per hidden layer")
    parser.add_argument("--batch", type=int, default=128, help="examples per inner step")
    parser.add_argument("--bootstrap-steps", type=int, default=4, help="L for BMG")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a fast check")
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.batch, args.repeats, args.ks = 32, 16, 5, [1, 4]

    teacher = jax.random.normal(jax.random.key(2), (INPUT_DIM, 1)) / jnp.sqrt(INPUT_DIM)
    learner, inner_optimizer = make_learner(batch=args.batch, teacher=teacher)
    state = initial_state(inner_optimizer, hidden=args.hidden, key=jax.random.key(0))
    meta_params = jnp.log(jnp.float32(1e-3))
    n_params = sum(x.size for x in jax.tree.leaves(state.params))

    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} device(s)); "
        f"MLP {INPUT_DIM}-{args.hidden}-{args.hidden}-1 tanh ({n_params} params), "
        f"batch {args.batch}, BMG L={args.bootstrap_steps} (l2 matching), "
        f"median of {args.repeats} calls"
    )
    header = f"{'method':<6} {'K':>3} {'remat':>5} {'compile s':>9} {'step ms':>9}"
    header += f" {'temp MiB':>9} {'total MiB':>9}"
    print(header)
    print("-" * len(header))
    results = {}
    for remat in (False, True):
        for k in args.ks:
            for method in ("BMG", "MG"):
                meta_opt = build(
                    method, learner, k=k, bootstrap_steps=args.bootstrap_steps, remat=remat
                )
                r = measure(meta_opt, state, meta_params, args.repeats)
                results[method, k, remat] = r
                print(
                    f"{method:<6} {k:>3} {str(remat):>5} {r['compile_s']:>9.2f} "
                    f"{1e3 * r['step_s']:>9.3f} {_mib(r['temp']):>9} {_mib(r['total']):>9}",
                    flush=True,
                )

    print()
    print("BMG/MG step-time ratio (BMG also takes L-1 extra inner steps and a target step)")
    print(f"{'K':>3} {'no remat':>9} {'remat':>9}")
    for k in args.ks:
        ratios = [
            results["BMG", k, r]["step_s"] / results["MG", k, r]["step_s"] for r in (False, True)
        ]
        print(f"{k:>3} {ratios[0]:>9.2f} {ratios[1]:>9.2f}")


if __name__ == "__main__":
    main()
