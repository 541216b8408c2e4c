"""Tests of the few-shot experiment entry point ``experiments.fewshot`` and its plot."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.common import checkpoints, cli, runs
from experiments.fewshot import __main__ as maml
from experiments.fewshot import config as config_lib
from experiments.fewshot import plot as plot_maml
from experiments.fewshot import train
from experiments.fewshot.run_dir import read_metrics
from tests.experiments.test_fewshot_readers import write_miniimagenet, write_omniglot

_RUNS = {}


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fewshot_data")
    return {
        "omniglot": write_omniglot(root / "omniglot"),
        "miniimagenet": write_miniimagenet(root / "miniimagenet", layout="csv"),
    }


def _smoke(task, method, base, data_dirs):
    """Runs (once per module) the smoke preset of ``task`` and ``method``; returns its dir."""
    if (task, method) not in _RUNS:
        run_dir = str(base / f"{task}_{method}")
        argv = ["maml", f"--task={task}", f"--method={method}", "--preset=smoke"]
        argv.append(f"--run_dir={run_dir}")
        if task in data_dirs:
            argv.append(f"--data_dir={data_dirs[task]}")
        maml.main(argv)
        _RUNS[task, method] = run_dir
    return _RUNS[task, method]


@pytest.fixture(scope="module")
def smoke_base(tmp_path_factory):
    return tmp_path_factory.mktemp("smoke_runs")


# Every task with both methods; two combinations whose code paths the others already cover
# (image tasks differ in their readers, not in the learner) are left to the slow run.
_SLOW = pytest.mark.slow
_COMBINATIONS = [
    ("sinusoid", "maml"),
    ("sinusoid", "bmg"),
    ("digits", "maml"),
    ("digits", "bmg"),
    ("omniglot", "maml"),
    pytest.param("omniglot", "bmg", marks=_SLOW),
    pytest.param("miniimagenet", "maml", marks=_SLOW),
    ("miniimagenet", "bmg"),
]


@pytest.mark.parametrize(("task", "method"), _COMBINATIONS)
def test_smoke(task, method, smoke_base, data_dirs):
    run_dir = _smoke(task, method, smoke_base, data_dirs)
    with open(os.path.join(run_dir, "config.json")) as f:
        stored = json.load(f)
    assert stored["task"] == task and stored["method"] == method
    evals = read_metrics(run_dir, "eval")
    assert [r["step"] for r in evals] == [0, 2, 4]
    metric = "mse" if task == "sinusoid" else "accuracy"
    for r in evals:
        assert r["metric"] == metric and np.isfinite(r["mean"]) and r["num_tasks"] > 1
        assert np.isfinite(r["ci95"]) and r["eval_time_s"] > 0
        if metric == "accuracy":
            assert 0.0 <= r["mean"] <= 1.0
    trains = read_metrics(run_dir, "train")
    assert [r["step"] for r in trains] == [2, 4]
    assert all(np.isfinite(r["meta_loss"]) and r["train_time_s"] > 0 for r in trains)
    assert checkpoints.load(run_dir).step == 4


def test_resume_gives_the_same_numbers_as_an_uninterrupted_run(smoke_base, data_dirs, tmp_path):
    whole = _smoke("sinusoid", "maml", smoke_base, data_dirs)  # 4 meta-steps in one go
    interrupted = str(tmp_path / "interrupted")
    train.run(config_lib.preset("smoke", "sinusoid", meta_steps=2), interrupted)
    # A crash after writing metrics but before the checkpoint leaves a stray record behind.
    with open(os.path.join(interrupted, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"kind": "eval", "step": 4, "mean": -1.0}) + "\n")
    train.run(config_lib.preset("smoke", "sinusoid"), interrupted)
    for kind, keys in (("eval", ("step", "mean", "ci95", "query_loss")),
                       ("train", ("step", "meta_loss", "meta_grad_norm"))):  # fmt: skip
        got, expected = (
            [[r[k] for k in keys] for r in read_metrics(d, kind)] for d in (interrupted, whole)
        )
        assert got == expected
    a, b = checkpoints.load(whole), checkpoints.load(interrupted)
    assert b.step == 4 and a.meta["step"] == b.meta["step"] == 4
    for x, y in zip(a.leaves, b.leaves, strict=True):
        np.testing.assert_array_equal(x, y)
    # Only meta_steps may change on resume (the run directory is unusable for the others).
    with pytest.raises(runs.RunDirError, match="seed"):
        train.run(config_lib.preset("smoke", "sinusoid", seed=3), interrupted)


def test_stateful_target_optimizer_runs_and_resumes(tmp_path):
    """An RMSProp target keeps a state per task of the meta-batch (it was initialised on one
    task, which only worked for stateless SGD); the run resumes to the same numbers."""
    config = config_lib.preset(
        "smoke", "sinusoid", method="bmg", bootstrap_steps=2, target_optimizer="rmsprop"
    )
    whole, interrupted = str(tmp_path / "whole"), str(tmp_path / "interrupted")
    train.run(config, whole)
    train.run(dataclasses.replace(config, meta_steps=2), interrupted)
    train.run(config, interrupted)
    keys = ("step", "meta_loss", "meta_grad_norm")
    rows = [[[r[k] for k in keys] for r in read_metrics(d, "train")] for d in (whole, interrupted)]
    assert rows[0] == rows[1] and all(np.isfinite(r[1]) for r in rows[0])
    sgd = str(tmp_path / "sgd")
    train.run(dataclasses.replace(config, target_optimizer="sgd"), sgd)
    assert [r["meta_loss"] for r in read_metrics(sgd, "train")] != [r[1] for r in rows[0]]
    leaves = checkpoints.load(whole).leaves
    assert any(leaf.ndim >= 1 and leaf.shape[0] == config.meta_batch_size for leaf in leaves)


def test_meta_gradient_clipping_feeds_adam_the_clipped_gradient():
    """``meta_max_grad_norm`` clips the meta-gradient's global norm before Adam: Adam on the
    clipped gradients by hand takes the same steps; without clipping the steps differ."""
    import optax

    base = config_lib.preset("smoke", "sinusoid", method="maml", meta_lr=0.1)
    grads = [{"w": np.array([3.0, 4.0], np.float32)}, {"w": np.array([0.3, 0.0], np.float32)}]
    by_hand = [{"w": np.array([0.6, 0.8], np.float32)}, grads[1]]  # norm 5 clipped to 1

    def steps(opt, sequence):
        state, out = opt.init(sequence[0]), []
        for g in sequence:
            update, state = opt.update(g, state)
            out.append(np.asarray(update["w"]))
        return out

    clipped = steps(train.meta_optimizer(dataclasses.replace(base, meta_max_grad_norm=1.0)), grads)
    expected = steps(optax.adam(0.1), by_hand)
    unclipped = steps(train.meta_optimizer(base), grads)
    for got, want in zip(clipped, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(unclipped[1], clipped[1])


def test_remat_changes_memory_not_the_numbers(tmp_path):
    """``--remat`` recomputes the K inner steps in the backward pass: the same meta-losses
    (up to rounding), and the flag is stored with the run."""
    rows = {}
    for remat in (False, True):
        config = config_lib.preset(
            "smoke", "sinusoid", method="maml", num_inner_steps=3, remat=remat
        )
        run_dir = str(tmp_path / f"remat_{remat}")
        train.run(config, run_dir)
        rows[remat] = [r["meta_loss"] for r in read_metrics(run_dir, "train")]
        with open(os.path.join(run_dir, "config.json")) as f:
            assert json.load(f)["remat"] is remat
    np.testing.assert_allclose(rows[True], rows[False], rtol=1e-5)


def _main(*args):
    return maml.main(["maml", *args])


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (["--task=omniglot", "--run_dir=x"], config_lib.ConfigError, "--data_dir"),
        (["--task=sinusoid"], config_lib.ConfigError, "--run_dir is required"),
        (["--run_dir=x"], config_lib.ConfigError, "--task is required"),
        (["--task=mnist", "--run_dir=x"], cli.UsageError, "task"),
        (["--task=sinusoid", "--run_dir=x", "--bootstrap_steps=3"], config_lib.ConfigError,
         "only applies to --method=bmg"),
        (["--task=sinusoid", "--method=bmg", "--matching=kl", "--run_dir=x"],
         config_lib.ConfigError, "does not fit task"),
        (["--task=digits", "--matching=mse", "--method=bmg", "--run_dir=x"],
         config_lib.ConfigError, "does not fit task"),
        (["--task=digits", "--data_dir=d", "--run_dir=x"], config_lib.ConfigError,
         "reads no files"),
        (["--task=digits", "--meta_steps=75", "--run_dir=x"], config_lib.ConfigError,
         "multiple of chunk_size"),
        (["--task=digits", "--shots=0", "--run_dir=x"], config_lib.ConfigError, "shots"),
        (["--task=digits", "--ways=1", "--run_dir=x"], config_lib.ConfigError, "ways"),
        (["--task=digits", "--run_dir=x", "stray"], cli.UsageError, "unexpected"),
        (["--task=sinusoid", "--meta_max_grad_norm=-1", "--run_dir=x"],
         config_lib.ConfigError, "meta_max_grad_norm must be >= 0"),
    ],
)  # fmt: skip
def test_bad_flags_give_clear_errors(args, error, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        _main(*args)
    assert not os.listdir(tmp_path)  # nothing was written


def test_too_many_ways_for_the_data_is_a_clear_error(tmp_path, data_dirs):
    with pytest.raises(train.episodes.DataError, match="need 20 classes"):
        _main("--task=omniglot", "--preset=smoke", "--ways=20", f"--run_dir={tmp_path}/r",
              f"--data_dir={data_dirs['omniglot']}")  # fmt: skip


def test_command_line_reports_errors_without_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.fewshot",
            "--task=miniimagenet",
            f"--run_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    assert result.returncode != 0
    assert "error:" in result.stderr and "--data_dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_plot_reads_run_directories(smoke_base, data_dirs, tmp_path):
    dirs = [_smoke("sinusoid", m, smoke_base, data_dirs) for m in ("maml", "bmg")]
    dirs.append(_smoke("digits", "bmg", smoke_base, data_dirs))
    out = plot_maml.main(["plot_maml", *dirs, "--out", str(tmp_path / "fig")])
    for path in out["paths"]:
        assert os.path.getsize(path) > 1000
    assert len(out["summary"]) == 3
    assert any(
        "BMG K=1 L=2 mse" in line and "reaches MAML final" in line for line in out["summary"]
    )


def test_a_locked_run_dir_is_refused(tmp_path):
    config = config_lib.preset("smoke", "sinusoid")
    with runs.lock(tmp_path):
        with pytest.raises(runs.RunDirError, match="another process is writing"):
            train.run(config, str(tmp_path))
