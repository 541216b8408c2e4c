"""One ALE learner over two processes (``jax.distributed`` on CPU, gloo collectives, one
device each): each process brings its share of the batch, and the meta-step is the
one-process step on the whole batch; the command runs as one run directory written by
process 0.

Run as a script, this file is one process of the two (``python <this file> PORT ID OUT``).
"""

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_ENVS = 2  # per process


def _config():
    from experiments.atari.config import make_config

    return make_config(
        preset="smoke", method="bmg", game="ms_pacman", num_envs=LOCAL_ENVS, rollout_length=4,
        bootstrap_steps=2, seed=5, meta_eps=1e-16,
    )  # fmt: skip


def _data(pipe, num_envs):
    """A fixed initial state and segment for a batch of ``num_envs`` (host arrays)."""
    import jax

    from agents import stacx

    c, rng = pipe.config, np.random.default_rng(0)
    t, r = c.rollout_length, c.rollouts_per_update

    def rollout(*lead):
        return stacx.Rollout(
            obs_t=rng.integers(0, 256, (*lead, t + 1, num_envs, 4, 84, 84), dtype=np.uint8),
            a_t=rng.integers(0, pipe.num_actions, (*lead, t, num_envs)).astype(np.int32),
            r_t=rng.choice([0.0, 1.0], (*lead, t, num_envs)).astype(np.float32),
            done_t=rng.random((*lead, t, num_envs)) < 0.1,
            logits_t=rng.normal(size=(*lead, t, num_envs, pipe.num_actions)).astype(np.float32),
        )

    first, segment = rollout(), rollout(r)
    params = pipe.nets.init(jax.random.PRNGKey(c.seed), first.obs_t[0])
    return jax.device_get(jax.jit(pipe.initial_state)(params, first)), segment


def _step(pipe, state, segment):
    from experiments.common import distributed

    new, stats, _, finite = pipe.learn(pipe.place_state(state), segment)
    assert bool(finite)
    return float(stats["meta_loss"]), distributed.to_host(new.learner.params)


def _process_main(port: int, process_id: int, out: str) -> None:
    """One of the two processes: its share of the fixed segment, one meta-step."""
    sys.path.insert(0, str(ROOT))
    from experiments.common import distributed

    distributed.initialize(f"localhost:{port}", 2, process_id)
    import jax

    from experiments.atari import pipeline

    pipe = pipeline.Pipeline(_config())
    state, segment = _data(pipe, 2 * LOCAL_ENVS)
    mine = slice(process_id * LOCAL_ENVS, (process_id + 1) * LOCAL_ENVS)
    local = jax.tree.map(lambda x: x[:, :, mine], segment)  # [rollouts, T(+1), B, ...]
    loss, params = _step(pipe, state, local)
    if process_id == 0:
        leaves = {f"p{i}": x for i, x in enumerate(jax.tree.leaves(params))}
        np.savez(out, loss=loss, **leaves)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(commands):
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outs]


def test_two_processes_take_the_one_process_meta_step_on_the_whole_batch(tmp_path):
    import jax

    from experiments.atari import pipeline

    port, out = _free_port(), tmp_path / "two.npz"
    _launch([[sys.executable, __file__, str(port), str(i), str(out)] for i in range(2)])
    two = np.load(out)

    whole = dataclasses.replace(_config(), num_envs=2 * LOCAL_ENVS)
    pipe = pipeline.Pipeline(whole)
    state, segment = _data(pipe, 2 * LOCAL_ENVS)
    loss, params = _step(pipe, state, segment)
    np.testing.assert_allclose(float(two["loss"]), loss, rtol=1e-5)
    leaves = jax.tree.leaves(params)
    assert len(leaves) == len(two.files) - 1
    moved = 0.0
    for i, (leaf, before) in enumerate(
        zip(leaves, jax.tree.leaves(state.learner.params), strict=True)
    ):
        np.testing.assert_allclose(two[f"p{i}"], leaf, rtol=1e-4, atol=1e-6)
        moved = max(moved, float(np.max(np.abs(leaf - before))))
    assert moved > 1e-5  # the step did something, and both did the same thing


@pytest.mark.slow  # two processes running the emulators and the learner: ~1 min
def test_a_two_process_run_writes_one_run_directory_and_counts_both_processes(tmp_path):
    port, run_dir = _free_port(), tmp_path / "run"
    base = [sys.executable, "-m", "experiments.atari", "--preset=smoke", "--method=stacx",
            "--game=ms_pacman", f"--run_dir={run_dir}", "--quiet", "--distributed",
            f"--coordinator_address=localhost:{port}", "--num_processes=2"]  # fmt: skip
    outs = _launch([[*base, f"--process_id={i}"] for i in range(2)])
    assert "metrics in" in outs[0] and "metrics in" not in outs[1]  # process 0 reports
    seed_dir = run_dir / "seed_0"
    rows = [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]
    config = _config()
    smoke = dataclasses.replace(config, method="stacx", num_envs=2, rollout_length=5)
    # Both processes' frames: half the rows of a one-process run of the same total_frames.
    per_row = 2 * smoke.frames_per_row
    assert [r["frames"] for r in rows] == [per_row * (i + 1) for i in range(len(rows))]
    assert rows[-1]["frames"] >= smoke.total_frames > rows[-1]["frames"] - per_row
    assert all(r["lag_max"] <= 1 for r in rows)
    steps = sorted(int(p.name) for p in (seed_dir / "checkpoints").iterdir())
    assert steps[-1] == len(rows)

    # Both processes resume from the checkpoint before the last and write the same rows' frames.
    shutil.rmtree(seed_dir / "checkpoints" / str(steps[-1]))
    port = _free_port()
    base[base.index(next(a for a in base if a.startswith("--coordinator")))] = (
        f"--coordinator_address=localhost:{port}"
    )
    _launch([[*base, f"--process_id={i}"] for i in range(2)])
    again = [json.loads(line) for line in (seed_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["frames"] for r in again] == [r["frames"] for r in rows]
    assert again[:-1] == rows[:-1]  # the rows before the checkpoint are kept as they were


if __name__ == "__main__":
    _process_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
