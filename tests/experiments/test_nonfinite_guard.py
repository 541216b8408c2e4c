"""The non-finite guard: a diverged run stops loudly and keeps its last good checkpoint."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.common import checkpoints, runs
from experiments.fewshot import __main__ as maml
from experiments.minatar import __main__ as atari

SEEDS = 3


def _files(folder):
    """The bytes of every file under ``folder`` (``None`` if there is no such folder)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _strict_rows(path):
    """The rows of a ``metrics.jsonl``, parsed as strict JSON (no NaN or Infinity tokens)."""
    if not path.exists():  # no row was ever written
        return []

    def refuse(token):
        raise ValueError(f"{path} holds the non-JSON token {token}")

    with open(path) as f:
        return [json.loads(line, parse_constant=refuse) for line in f if line.strip()]


def _fresh():
    state = {"learner": {"w": jnp.ones((SEEDS, 2, 2)), "steps": jnp.zeros(SEEDS, jnp.int32)}}
    return state, np.zeros(SEEDS)  # like two-colors: device states and a host [S] array


def _make_step(bad_row=None, where=None, bad_seed=1):
    """A synthetic chunk: ``w`` and the host array grow by one a row; ``bad_row`` goes bad."""

    def step(carry, row):
        state, cumulative = carry
        w = state["learner"]["w"] + 1.0
        cumulative = cumulative + 1.0
        record = {"env_steps": (row + 1) * 10, "loss": [float(row)] * SEEDS, "kind": "train"}
        if row + 1 == bad_row:
            if where in ("state", "both"):
                w = w.at[bad_seed, 0, 1].set(jnp.nan)
            if where == "host":
                cumulative[bad_seed] = np.inf
            if where in ("metric", "both"):
                record["loss"][bad_seed] = float("nan")
        learner = {"w": w, "steps": state["learner"]["steps"] + 1}
        return ({"learner": learner}, cumulative), record

    return step


def _train(run_dir, step, *, num_rows=5, progress=None):
    return runs.train_rows(
        run_dir,
        fresh=_fresh,
        template=(
            jax.eval_shape(lambda: _fresh()[0]),
            jax.ShapeDtypeStruct((SEEDS,), np.float64),
        ),
        step=step,
        num_rows=num_rows,
        checkpoint_every=1,
        steps_per_row=10 * SEEDS,
        progress=progress,
    )


@pytest.mark.parametrize(
    ("where", "quantity"),
    [
        ("state", "[0]['learner']['w']"),
        ("host", "[1]"),
        ("metric", "metric loss"),
        ("both", "metric loss"),  # a metric is named in preference to the state it came from
    ],
)
def test_a_row_that_goes_non_finite_is_neither_written_nor_checkpointed(tmp_path, where, quantity):
    saved = {}

    def progress(done, total, rate):  # the checkpoint files as saved after each row
        saved[done] = _files(tmp_path / runs.CHECKPOINT)

    with pytest.raises(runs.NonFiniteError) as caught:
        _train(tmp_path, _make_step(bad_row=3, where=where), progress=progress)
    message = str(caught.value)
    assert "\n" not in message
    assert "at row 3 (env steps 30)" in message and "for seed 1;" in message
    assert quantity in message and "the last good checkpoint is at row 2" in message

    rows = _strict_rows(tmp_path / runs.METRICS)
    assert [r["env_steps"] for r in rows] == [10, 20]
    assert _files(tmp_path / runs.CHECKPOINT) == saved[2]  # bit for bit
    assert sorted(saved) == [1, 2]
    assert checkpoints.load(tmp_path).meta == {"progress": 2, "metric_rows": 2}
    fault = json.loads((tmp_path / runs.FAULT).read_text())
    assert fault["row"] == 3 and fault["seeds"] == [1] and fault["checkpoint_row"] == 2
    assert fault["quantity"] in quantity and fault["message"] == message

    # A second call (a resume) refuses at once, whatever its step would do.
    with pytest.raises(runs.NonFiniteError) as again:
        _train(tmp_path, _make_step())
    message = str(again.value)
    assert "holds a run that diverged at row 3" in message and fault["quantity"] in message
    assert "last good checkpoint is at row 2" in message and "delete" in message
    assert "--run_dir" in message and "\n" not in message
    assert len(_strict_rows(tmp_path / runs.METRICS)) == 2

    # Deleting fault.json retries from the checkpoint of row 2.
    (tmp_path / runs.FAULT).unlink()
    rows = _train(tmp_path, _make_step())
    assert [r["env_steps"] for r in rows] == [10, 20, 30, 40, 50]
    w = checkpoints.load(tmp_path).leaves[1]
    np.testing.assert_array_equal(w, np.full((SEEDS, 2, 2), 6.0))


def test_a_first_row_that_goes_non_finite_leaves_no_checkpoint(tmp_path):
    with pytest.raises(runs.NonFiniteError, match="at row 1 .*there is no checkpoint yet"):
        _train(tmp_path, _make_step(bad_row=1, where="metric", bad_seed=0))
    assert not checkpoints.exists(tmp_path)
    assert _strict_rows(tmp_path / runs.METRICS) == []
    with pytest.raises(runs.NonFiniteError, match="there is no checkpoint yet"):
        _train(tmp_path, _make_step())


def test_metrics_are_written_as_strict_json(tmp_path):
    runs.append_metrics(tmp_path, [{"a": 1.0}])
    with pytest.raises(ValueError):
        runs.append_metrics(tmp_path, [{"a": 2.0}, {"a": float("nan")}])
    assert _strict_rows(tmp_path / runs.METRICS) == [{"a": 1.0}]  # all of a call or nothing


def test_check_finite_names_a_value_without_a_seed_axis():
    with pytest.raises(runs.NonFiniteError, match="metric lr is not finite .it has no seed axis"):
        runs.check_finite((), {"lr": float("inf")}, row=4)
    runs.check_finite(_fresh(), {"loss": [1.0, None], "nested": [[1.0, 2.0]], "n": 3}, row=1)


# A rate absurd enough for any smoke run to go NaN (even with gradient clipping: one step
# moves the parameters by about this much). Rates near the edge of divergence (a few hundred
# without clipping) went NaN at rows 1 to 20 as the agent's code changed, so the checks below
# hold whichever row it is, with a checkpoint of the rows before it or without one.
_ABSURD_LEARNING_RATE = "1e30"


def test_a_diverging_two_colors_run_exits_with_one_line_and_keeps_its_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "experiments.two_colors",
        "--method=a2c",
        "--preset=smoke",
        f"--learning_rate={_ABSURD_LEARNING_RATE}",
        "--total_steps=1024",
        "--checkpoint_every=1",
        f"--run_dir={run_dir}",
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, (
        f"the run did not diverge (status {result.returncode}): pick a larger learning rate\n"
        f"{result.stderr}"
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the run diverged at row "), lines
    fault = json.loads((run_dir / runs.FAULT).read_text())
    row = fault["row"]
    assert fault["quantity"] in lines[0] and f"at row {row} (env steps {row * 128:,})" in lines[0]
    assert len(_strict_rows(run_dir / runs.METRICS)) == row - 1  # every good row, no other
    if row == 1:
        assert not checkpoints.exists(run_dir) and "there is no checkpoint yet" in lines[0]
    else:
        assert f"the last good checkpoint is at row {row - 1}" in lines[0]
        loaded = checkpoints.load(run_dir)
        assert loaded.meta["metric_rows"] == row - 1
        for i, leaf in enumerate(loaded.leaves):
            if np.issubdtype(leaf.dtype, np.floating):
                assert np.isfinite(leaf).all(), i
    saved = _files(run_dir / runs.CHECKPOINT)

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 1
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and f"holds a run that diverged at row {row}" in lines[0], lines
    assert fault["quantity"] in lines[0] and "delete" in lines[0]
    assert _files(run_dir / runs.CHECKPOINT) == saved
    assert len(_strict_rows(run_dir / runs.METRICS)) == row - 1


def test_a_diverging_few_shot_run_stops_and_keeps_its_checkpoint(tmp_path, capsys):
    # Adam's first step moves every meta-parameter by about meta_lr: row 1 (one meta-step)
    # is still finite, row 2's losses overflow.
    run_dir = tmp_path / "run"
    argv = ["maml", "--task=sinusoid", "--preset=smoke", "--meta_lr=1e30", "--chunk_size=1"]
    argv.append(f"--run_dir={run_dir}")
    with pytest.raises(runs.NonFiniteError) as caught:
        maml.main(argv)
    message = str(caught.value)
    fault = json.loads((run_dir / runs.FAULT).read_text())
    assert fault["row"] == 2 and fault["seeds"] == [0] and fault["checkpoint_row"] == 1
    assert "at row 2 (meta-step 2)" in message and fault["quantity"] in message
    assert "for seed 0" in message and "\n" not in message
    records = _strict_rows(run_dir / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in records] == [("compile", 0), ("eval", 0), ("train", 1)]
    loaded = checkpoints.load(run_dir)
    assert loaded.step == 1 and all(np.isfinite(leaf).all() for leaf in loaded.leaves)
    saved = _files(run_dir / runs.CHECKPOINT)

    # Rerunning refuses at once; the command line ends with one line and status 1.
    with pytest.raises(runs.NonFiniteError, match="holds a run that diverged at row 2"):
        maml.main(argv)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        maml.CLI.run(maml.main, argv)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "delete" in err and err.count("\n") == 1
    assert _files(run_dir / runs.CHECKPOINT) == saved


def test_the_atari_command_line_reports_a_diverged_run_in_one_line(capsys):
    def diverge(argv):
        raise runs.NonFiniteError("the run diverged at row 2 (frames 1,024): metric meta_loss")

    with pytest.raises(SystemExit) as exit_:
        atari.CLI.run(diverge, ["atari", "--run_dir=unused"])
    assert exit_.value.code == 1
    message = "error: the run diverged at row 2 (frames 1,024): metric meta_loss\n"
    assert capsys.readouterr().err == message


def test_one_evaluation_task_has_no_confidence_interval_rather_than_nan():
    from agents.maml import TaskMetrics
    from experiments.fewshot import train

    one = TaskMetrics(loss=np.array([0.5]), accuracy=np.array([np.nan]))
    summary = train.summarise(one, regression=True)
    assert summary["ci95"] is None and summary["mean"] == 0.5
    json.dumps(summary, allow_nan=False)  # strict JSON, as metrics.jsonl is written
