"""``--tensorboard``: the metric rows again as TensorBoard scalars, read back from the events."""

import struct

import numpy as np
import pytest

from experiments.common import runs, tensorboard
from experiments.two_colors import __main__ as two_colors


def read_events(log_dir) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every events file under ``log_dir`` (TFRecords)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4  # length, its crc, the record, its crc
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


def test_scalars_of_per_seed_per_head_and_kind_rows():
    row = {"env_steps": 4096, "reward_per_step": [0.1, 0.3], "seconds": 1.5}
    assert tensorboard.scalars(row, step_key="env_steps", skip=("seconds",)) == [
        ("reward_per_step", pytest.approx(0.2)),
        ("reward_per_step/seed_0", 0.1),
        ("reward_per_step/seed_1", 0.3),
    ]
    minatar = {"frames": 160, "discount": [[0.9, 0.5], [0.7, 0.1]], "episode_return": [None, 2.0]}
    assert tensorboard.scalars(minatar, step_key="frames") == [
        ("discount/head_0", pytest.approx(0.8)),
        ("discount/head_1", pytest.approx(0.3)),
        ("episode_return", 2.0),
    ]
    fewshot = {"kind": "eval", "step": 4, "metric": "mse", "mean": 2.5, "ci95": None}
    assert tensorboard.scalars(fewshot, step_key="step") == [("eval/mean", 2.5)]


def test_a_run_writes_its_rows_as_scalars_and_a_finished_one_writes_nothing(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    run_dir = tmp_path / "bmg"
    argv = ["two_colors", "--method=bmg", "--preset=smoke", "--quiet", f"--run_dir={run_dir}"]
    two_colors.main([*argv, "--tensorboard"])
    rows = runs.read_metrics(run_dir)
    events = read_events(run_dir / tensorboard.FOLDER)
    steps = [row["env_steps"] for row in rows]
    for name in ("reward_per_step", "entropy_weight", "meta_loss"):
        assert [s for s, _ in events[name]] == steps
        np.testing.assert_allclose(
            [v for _, v in events[name]], [np.mean(r[name]) for r in rows], rtol=1e-6
        )
        assert [v for _, v in events[f"{name}/seed_1"]] == pytest.approx(
            [r[name][1] for r in rows], rel=1e-6
        )
    assert "seconds" not in events and "env_steps" not in events

    # A finished run reopened with --tensorboard trains nothing and writes no events.
    before = sorted(p.name for p in (run_dir / tensorboard.FOLDER).iterdir())
    two_colors.main([*argv, "--tensorboard"])
    assert sorted(p.name for p in (run_dir / tensorboard.FOLDER).iterdir()) == before
    fresh = tmp_path / "done_without"
    two_colors.main([*argv[:-1], f"--run_dir={fresh}"])
    two_colors.main([*argv[:-1], f"--run_dir={fresh}", "--tensorboard"])
    assert not (fresh / tensorboard.FOLDER).exists()
    capsys.readouterr()
