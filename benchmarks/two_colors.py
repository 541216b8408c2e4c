"""Environment steps per second of the two-colors experiment: A2C, MG, BMG, Q and Q-BMG.

For each method and population size the script builds the experiment's own jitted chunk
(`experiments.two_colors.train.compiled`: a ``lax.scan`` over the updates of one metric row,
every seed's update inside, the population sharded over the devices), calls it once to
compile, then times ``--chunks`` further calls, each waited for with `jax.block_until_ready`.

* env-steps/s: environment steps of all seeds per second (what a progress bar shows);
* per seed: the same divided by the number of seeds;
* cost/A2C: the time per environment step relative to A2C at the same population size;
* guard ms: the non-finite guard of the training loop (`experiments.common.runs.check_finite` on
  the population state and a metric row) per chunk, and in % of the chunk's time.

``--before`` also times, in the same run, the learner settings the experiment had before its
defaults were chosen by measurement (``BEFORE``: Haiku initialisation, n-step returns, value
cost 0.5, no clipping), one row above each default row, so the cost of the new defaults is
a ratio from one quiet machine.

Settings are those of the ``paper`` preset (2x256 networks, 16-step rollouts, BMG K=7 L=9,
MG K=15). Every CPU core is a JAX device (``--num_devices`` to change it).

A last line per population size compares a Q-BMG meta-step (K = 0) with the L - 1 plain
Q-learning steps it takes: the cost of the target step and of the meta-gradient.

  python benchmarks/two_colors.py [--seeds 1 50] [--methods a2c mg bmg q q_bmg] [--chunks 2]
      [--before]
"""

from __future__ import annotations

import argparse
import time

BEFORE = {"init": "haiku", "value_target": "n_step", "value_cost": 0.5, "max_grad_norm": 0.0}
"""The learner settings before the defaults were chosen by measurement (``--before``)."""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--methods", nargs="+", default=["a2c", "mg", "bmg", "q", "q_bmg"])
    parser.add_argument("--chunks", type=int, default=2, help="timed calls per setting")
    parser.add_argument("--num_devices", type=int, default=None)
    parser.add_argument("--seed_group", type=int, default=None)
    parser.add_argument(
        "--before", action="store_true", help="also time the earlier learner settings"
    )
    args = parser.parse_args()

    from experiments.common import population

    population.request_cpu_devices(args.num_devices)

    import jax

    from experiments.two_colors.config import make_config

    print(
        f"jax {jax.__version__}, {jax.device_count()} {jax.devices()[0].platform} device(s)"
        "; "
        f"median of {args.chunks} timed chunks after one compiling call"
    )
    print(
        f"{'method':6} {'settings':8} {'seeds':>5} {'compile s':>9} {'env-steps/s':>12} "
        f"{'per seed':>9} {'cost/A2C':>8} {'guard ms':>9}"
    )
    variants = (("before", BEFORE), ("default", {})) if args.before else (("default", {}),)
    a2c_rate, default_rate, bootstrap_steps = {}, {}, {}
    for seeds in args.seeds:
        for method in args.methods:
            # The earlier learner settings are the actor-critic's; the Q-learners are new.
            for label, settings in variants if method in ("a2c", "mg", "bmg") else variants[-1:]:
                overrides = {"seeds": seeds, **settings}
                if args.seed_group:
                    overrides["seed_group"] = args.seed_group
                config = make_config(preset="paper", method=method, **overrides)
                compile_s, rate, chunk_s, guard_s = _time(config, args.chunks)
                if method == "a2c" and label == "default":
                    a2c_rate[seeds] = rate
                if label == "default":
                    default_rate[method, seeds] = rate
                    bootstrap_steps[method] = config.bootstrap_steps
                ratio = f"{a2c_rate[seeds] / rate:8.2f}" if seeds in a2c_rate else f"{'n/a':>8}"
                print(
                    f"{method:6} {label:8} {seeds:5d} {compile_s:9.1f} {rate:12,.0f} "
                    f"{rate / seeds:9,.0f} {ratio} {guard_s * 1e3:5.1f} "
                    f"({100 * guard_s / chunk_s:.1f}%)",
                    flush=True,
                )
    for seeds in args.seeds:
        if ("q", seeds) in default_rate and ("q_bmg", seeds) in default_rate:
            # A Q-BMG meta-step takes L rollouts (L - 1 Q-learning steps and the target's); a Q
            # step one. Its time over that of L - 1 Q steps:
            steps = bootstrap_steps["q_bmg"]
            update_ratio = steps * default_rate["q", seeds] / default_rate["q_bmg", seeds]
            print(
                f"q_bmg at {seeds} seed(s): one K = 0 meta-step takes "
                f"{update_ratio / (steps - 1):.2f}x the time of its L - 1 = {steps - 1} "
                "Q-learning steps",
                flush=True,
            )


def _time(config, chunks):
    """(compile s, env-steps/s, chunk s, guard s) of one setting's jitted chunk."""
    import jax
    import numpy as np

    from experiments.common import population, runs
    from experiments.two_colors import train as two_colors_train

    seeds = config.seeds
    sharding = population.population_sharding(seeds)
    program, chunk = two_colors_train.compiled(config, sharding)
    states = jax.device_put(two_colors_train.init_population(program, config), sharding)
    start = time.perf_counter()
    states, metrics = jax.block_until_ready(chunk(states))
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(chunks):
        start = time.perf_counter()
        states, metrics = jax.block_until_ready(chunk(states))
        times.append(time.perf_counter() - start)
    steps = seeds * config.updates_per_row * config.env_steps_per_update
    chunk_s = sorted(times)[len(times) // 2]
    carry = (states, np.zeros(seeds))
    record = two_colors_train.metric_row(
        jax.device_get(metrics), env_steps=0, cumulative=np.zeros(seeds)
    )
    runs.check_finite(carry, record, row=1)  # compiles the state check
    guard = []
    for _ in range(5):
        start = time.perf_counter()
        runs.check_finite(carry, record, row=1)
        guard.append(time.perf_counter() - start)
    return compile_s, steps / chunk_s, chunk_s, sorted(guard)[2]


if __name__ == "__main__":
    main()
