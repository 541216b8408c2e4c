r"""Throughput of the real-ALE pipeline: emulator, learner and the two together.

    python benchmarks/atari.py                         # Ms. Pac-Man, the quick preset's batch
    python benchmarks/atari.py --game=breakout --torso=impala --seconds=60
    python benchmarks/atari.py --learner_devices=2           # the learner split over 2 devices

Prints, in one run:

1. the raw `AtariVectorEnv` rate: ``--num_envs`` emulators stepped with uniformly random
   actions, no learner (emulator frames/s; a frame is one of the ``frame_skip`` emulator
   frames of an agent step);
2. the learner alone: meta-steps/s of the jitted meta-step on one pre-collected segment fed
   again and again (no emulator), and the frames/s that rate could consume;
3. the full pipeline (actor thread + learner, `experiments.atari.pipeline.run`) for STACX and
   for BMG (RMSProp, KL&V) with L = 1 and 4: frames/s, and the ratio to the raw rate;
4. the STACX learner alone with each way of computing the convolutions (``--conv``:
   ``matmul`` patches or XLA's convolution), and their ratio;
5. the bound: this CPU's rate on one large float32 matmul, each learner's floating-point
   operations per meta-step (XLA's cost analysis) and the rate they run at, and what the
   learner would need for the pipeline to reach 80% of the raw emulator rate. With the
   emulators and the learner on the same cores, a pipeline at rate p spends p / raw of the
   machine emulating and p / learner learning, so p = 0.8 raw needs learner >= 4 raw.

Each measurement runs for about ``--seconds`` after a warm-up (compilation is not timed).
Figures are printed, not asserted: run it on a quiet machine and compare ratios within one
run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from experiments.atari import config as ale_config  # noqa: E402
from experiments.atari import pipeline  # noqa: E402
from experiments.atari.config import make_config  # noqa: E402
from experiments.envs import ale  # noqa: E402

VARIANTS = (
    ("stacx", {}),
    ("bmg", {"bootstrap_steps": 1}),
    ("bmg", {"bootstrap_steps": 4}),
)


def raw_rate(config, seconds: float) -> float:
    """Emulator frames/s of ``config``'s emulators with uniformly random actions."""
    env, _ = ale.make(config.game, config.num_envs, config.settings)
    rng = np.random.default_rng(0)
    n = int(env.single_action_space.n)
    try:
        for _ in range(20):  # warm-up
            env.step(rng.integers(n, size=config.num_envs))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            env.step(rng.integers(n, size=config.num_envs))
            steps += 1
        return steps * config.num_envs * config.frame_skip / (time.perf_counter() - start)
    finally:
        env.close()


def matmul_rate(seconds: float, n: int = 2048) -> float:
    """Floating-point operations/s of a jitted ``n x n`` float32 matmul on the default
    device: what this machine's XLA reaches on the operation the torsos are made of."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    jax.block_until_ready(f(a))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        jax.block_until_ready(f(a))
        count += 1
    return count * 2 * n**3 / (time.perf_counter() - start)


def learner_rate(config, seconds: float) -> tuple[float, float]:
    """Meta-steps/s of the jitted meta-step on one pre-collected segment, and its
    floating-point operations per meta-step (XLA's count)."""
    pipe = pipeline.Pipeline(config)
    try:
        pipe.open()
        state = pipe.fresh()
        env, obs = pipe.envs[0]
        rollouts, returns, finished = [], ale.EpisodeReturns(config.num_envs), []
        for _ in range(config.rollouts_per_update):
            obs, _, rollout = pipeline.actors.collect_rollout(
                env,
                obs,
                pipe.policies[0],
                state.learner.params,
                0,
                config.rollout_length,
                returns,
                finished,
                reward_clip=config.reward_clip,
            )
            rollouts.append(rollout)
        segment = jax.device_put(jax.tree.map(lambda *xs: np.stack(xs), *rollouts))
        step = pipe.learn
        flops = pipe.learn_cost(state, segment)["flops"]
        out = step(state, segment)
        jax.block_until_ready(out)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            out = step(out[0], segment)
            jax.block_until_ready(out)
            count += 1
        return count / (time.perf_counter() - start), flops
    finally:
        pipe.close()


def pipeline_rate(config, meta_steps: int) -> float:
    """Frames/s of the whole pipeline over ``meta_steps`` meta-steps after the first two (the
    first ones compile)."""
    stamps = []
    pipeline.run(config, meta_steps + 2, on_step=lambda row: stamps.append(time.perf_counter()))
    timed = stamps[2:]
    return (len(timed) - 1) * config.frames_per_update / (timed[-1] - timed[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="ms_pacman")
    parser.add_argument("--preset", default="quick", help="preset the settings start from")
    parser.add_argument("--torso", default=None, help="impala or nature (default: the preset's)")
    parser.add_argument("--num_envs", type=int, default=None)
    parser.add_argument("--conv", default=None, help="matmul or xla (default: the config's)")
    parser.add_argument(
        "--learner_devices", type=int, default=None, help="devices the learner splits over"
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="per measurement")
    args = parser.parse_args()
    if args.learner_devices:  # CPU devices must be asked for before JAX starts
        from experiments.common import population

        population.request_cpu_devices(args.learner_devices)
    given = {
        k: v
        for k, v in (
            ("torso", args.torso),
            ("num_envs", args.num_envs),
            ("conv", args.conv),
            ("learner_devices", args.learner_devices),
        )
        if v
    }
    base = make_config(preset=args.preset, method="stacx", game=args.game, **given)
    print(
        f"{args.game}: {base.num_envs} emulators, T={base.rollout_length}, "
        f"frame_skip={base.frame_skip}, torso={base.torso}, conv={base.conv}, "
        f"{jax.device_count()} device(s)"
    )
    raw = raw_rate(base, args.seconds)
    print(f"raw AtariVectorEnv, random actions: {raw:,.0f} frames/s", flush=True)
    print(
        f"{'method':<26} {'learner meta-steps/s':>20} {'(frames/s)':>11} "
        f"{'pipeline frames/s':>17} {'/ raw':>6}"
    )
    bound = []
    for method, overrides in VARIANTS:
        config = make_config(
            preset=args.preset, method=method, game=args.game, **given, **overrides
        )
        learner, flops = learner_rate(config, args.seconds)
        bound.append((config, learner, flops))
        # About --seconds if the pipeline ran at half the learner's own rate.
        full = pipeline_rate(config, max(6, int(0.5 * args.seconds * learner)))
        consumed = learner * config.frames_per_update
        print(
            f"{config.describe():<26} {learner:>20.2f} {consumed:>11,.0f} "
            f"{full:>17,.0f} {full / raw:>6.2f}",
            flush=True,
        )
    rates = {}
    for conv in ale_config.CONVS:
        config = make_config(
            preset=args.preset, method="stacx", game=args.game, **{**given, "conv": conv}
        )
        rates[conv] = learner_rate(config, args.seconds)[0]
        print(f"STACX learner alone, --conv={conv}: {rates[conv]:.2f} meta-steps/s", flush=True)
    print(f"matmul / xla: {rates['matmul'] / rates['xla']:.1f}x")
    peak = matmul_rate(args.seconds)
    print(f"this machine, one 2048^3 float32 matmul: {peak / 1e9:,.1f} GFLOP/s")
    print(
        f"{'method':<26} {'GFLOP/meta-step':>15} {'GFLOP/s':>8} {'/ matmul':>8} "
        f"{'80% of raw needs':>17} {'x matmul rate':>13}"
    )
    for config, learner, flops in bound:
        # p = 0.8 raw with p / raw + p / learner <= 1 needs a learner of 4 raw frames/s.
        needed = 4 * raw / config.frames_per_update * flops
        print(
            f"{config.describe():<26} {flops / 1e9:>15.2f} {learner * flops / 1e9:>8.1f} "
            f"{learner * flops / peak:>8.0%} {needed / 1e9:>11,.0f} GFLOP/s {needed / peak:>12.1f}x"
        )


if __name__ == "__main__":
    main()
