r"""Throughput of the MinAtar STACX / BMG program: environment steps per second.

    python benchmarks/minatar.py                       # Breakout, default batch, 2 seeds
    python benchmarks/minatar.py --seeds=1 --chunks=3 --log_every=20000

For each method it builds the training chunk exactly as `experiments.minatar.train` does (the
whole population of seeds, sharded over the CPU cores), calls it once to compile, then times
``--chunks`` calls and prints the median aggregate env-steps/s (steps of all seeds; one step
is one MinAtar frame) and each method's cost per env step relative to STACX. Figures are
printed, not asserted: run it on a quiet machine and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import population  # noqa: E402

VARIANTS = (
    ("stacx", {}),
    ("bmg", {"bootstrap_steps": 1, "target_optimizer": "sgd", "matching": "l2"}),
    (
        "bmg",
        {
            "bootstrap_steps": 1,
            "target_optimizer": "rmsprop",
            "matching": "kl_v",
            "target_learning_rate": 1e-3,
        },
    ),
    (
        "bmg",
        {
            "bootstrap_steps": 4,
            "target_optimizer": "rmsprop",
            "matching": "kl_v",
            "target_learning_rate": 1e-3,
        },
    ),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="breakout")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=3, help="timed calls per method")
    parser.add_argument("--log_every", type=int, default=25_600, help="frames per chunk")
    parser.add_argument("--preset", default="quick", help="preset the settings start from")
    args = parser.parse_args()
    population.request_cpu_devices()

    import jax

    from experiments.minatar import train as atari_train
    from experiments.minatar.config import make_config

    print(
        f"{args.env}, {args.seeds} seed(s) on {jax.device_count()} device(s), "
        f"{args.chunks} timed chunks of ~{args.log_every:,} frames per seed"
    )
    print(
        f"{'method':<34} {'B':>3} {'T':>3} {'compile s':>9} {'env-steps/s':>12} {'cost/STACX':>10}"
    )
    base = None
    for method, overrides in VARIANTS:
        config = make_config(
            preset=args.preset,
            method=method,
            env=args.env,
            seeds=args.seeds,
            log_every=args.log_every,
            **overrides,
        )
        sharding = population.population_sharding(config.seeds)
        start = time.perf_counter()
        program, chunk = atari_train.compiled(config, sharding)
        states = jax.device_put(atari_train.init_population(program, config), sharding)
        states, metrics = chunk(states)
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(args.chunks):
            start = time.perf_counter()
            states, metrics = chunk(states)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - start)
        frames = config.seeds * config.updates_per_row * config.frames_per_update
        rate = frames / statistics.median(times)
        base = base or rate
        name = (
            method
            if method == "stacx"
            else (
                f"bmg {overrides['target_optimizer']} {overrides['matching']} "
                f"L={overrides['bootstrap_steps']}"
            )
        )
        print(
            f"{name:<34} {config.num_envs:>3} {config.rollout_length:>3} {compile_s:>9.1f} "
            f"{rate:>12,.0f} {base / rate:>10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
