"""`python -m experiments.atari` on real ROMs: run directories, resume, seeds, the guard."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from experiments.atari import __main__ as atari
from experiments.atari import pipeline, train
from experiments.atari.config import make_config
from experiments.common import runs

# Two rows of two STACX meta-steps of 2 emulators x 5 steps x 4 frames.
FLAGS = ("--preset=smoke", "--total_frames=160", "--log_every=80", "--quiet")


def _main(*args):
    return atari.main(["experiments.atari", *FLAGS, *args])


def test_smoke_run_writes_a_run_directory_per_seed_and_a_rerun_writes_nothing(tmp_path):
    results = _main("--method=bmg", "--seeds=2", f"--run_dir={tmp_path}")
    assert sorted(results) == [0, 1]
    for seed in (0, 1):
        run = tmp_path / f"seed_{seed}"
        assert json.loads((run / runs.CONFIG).read_text())["seed"] == seed
        rows = runs.read_metrics(run)
        assert [r["frames"] for r in rows] == [80, 160]
        assert all(r["lag_max"] <= 1 and np.isfinite(r["meta_loss"]) for r in rows)
        assert len(rows[-1]["discount"]) == 3  # one per head
    assert results[0][-1]["discount"] != results[1][-1]["discount"]  # two seeds, two runs
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    _main("--method=bmg", "--seeds=2", f"--run_dir={tmp_path}")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    config = make_config(preset="smoke", method="stacx", total_frames=240, log_every=80)
    train.train(config, tmp_path, stop_after_rows=1)
    first = (tmp_path / runs.METRICS).read_text()
    saved, progress, _ = runs.load_checkpoint(tmp_path, pipeline.Pipeline(config).template())
    assert progress == 1
    rows = train.train(config, tmp_path)
    assert [r["frames"] for r in rows] == [80, 160, 240]
    assert (tmp_path / runs.METRICS).read_text().startswith(first)  # row 1 kept as it was
    # The resumed process went on from the checkpoint's meta-parameters: its first row's
    # hyperparameters are one row of meta-steps away from them, not from the initial ones.
    resumed, _, _ = runs.load_checkpoint(tmp_path, pipeline.Pipeline(config).template())
    assert not np.array_equal(resumed.meta_params.discount, saved.meta_params.discount)


def test_a_run_that_goes_nan_stops_keeps_its_last_checkpoint_and_refuses_to_resume(
    tmp_path, monkeypatch
):
    config = make_config(preset="smoke", method="stacx", total_frames=240, log_every=80)
    real, calls = pipeline.Pipeline.meta_step, []

    def poisoned(self, state, *, check=True):
        state, report = real(self, state, check=check)
        calls.append(1)
        if len(calls) == 4:  # the second meta-step of row 2
            state = state._replace(
                learner=state.learner._replace(
                    params=jax.tree.map(lambda x: x * np.nan, state.learner.params)
                )
            )
        return state, report

    monkeypatch.setattr(pipeline.Pipeline, "meta_step", poisoned)
    with pytest.raises(runs.NonFiniteError, match="row 2"):
        train.train(config, tmp_path)
    assert len(runs.read_metrics(tmp_path)) == 1
    assert json.loads((tmp_path / "fault.json").read_text())["row"] == 2
    _, progress, _ = runs.load_checkpoint(tmp_path, pipeline.Pipeline(config).template())
    assert progress == 1
    monkeypatch.setattr(pipeline.Pipeline, "meta_step", real)
    with pytest.raises(runs.NonFiniteError):
        train.train(config, tmp_path)
