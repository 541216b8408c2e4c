"""Every command line's bad input, in one table: each case runs ``python -m experiments.<cli>``
in its own process and checks the exit status (2: usage error, 1: runtime error, 0: the cases
that must work), that stderr is one line naming the problem, and that a run directory given
to it is unchanged byte for byte.

The run directories are made once for the module (smoke runs, in this process) and copied
for each case, which may then damage its copy (a truncated checkpoint, a corrupt config, ...)
before the command runs; the commands run a few at a time, forked from one process that
imported the experiments once (``forkrun``), and each case's own test checks its outcome.
Read-only cases take the write permissions away; as root, which ignores them, they mark the
copy immutable (``chattr +i``, which binds root too) and are skipped where the file system
cannot.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from experiments.common import checkpoints, runs
from experiments.fewshot import config as fewshot_config
from experiments.fewshot import train as fewshot_train
from experiments.minatar.config import make_config as atari_config
from experiments.two_colors import train as two_colors_train
from experiments.two_colors.config import make_config as two_colors_config

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0


# --- Damage done to a case's copy of a run directory ------------------------------------------


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(run: Path):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 2])

    return damage


def _truncate_last_line(run: Path):
    """Cuts the last line of ``metrics.jsonl`` in half (a write that never finished)."""
    text = (run / runs.METRICS).read_text()
    head, last = text.rstrip("\n").rsplit("\n", 1)
    (run / runs.METRICS).write_text(head + "\n" + last[: len(last) // 2])


def _damage_checkpoints(how: str) -> Callable[[Path], None]:
    """Every file of every checkpoint emptied (``"empty"``) or cut in half (``"truncate"``),
    so that neither the newest nor its fallback can be read."""

    def damage(run: Path):
        for item in (run / checkpoints.DIR).rglob("*"):
            if item.is_file():
                data = item.read_bytes()
                item.write_bytes(b"" if how == "empty" else data[: len(data) // 2])

    return damage


def _foreign_checkpoint(run: Path):
    """A readable orbax checkpoint of something else, newer than the run's own."""
    checkpoints.save(run, 10**6, {"weights": np.zeros(3)}, {"epoch": 1})


def _other_structure(run: Path):
    """A checkpoint of this program's format, of another run's state."""
    checkpoints.save(run, 10**6, [np.zeros(3)], {"progress": 1, "metric_rows": 1, "step": 1})


def _legacy(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    """A run directory of the pre-orbax format (``checkpoint.npz``), damaged."""

    def legacy(run: Path):
        shutil.rmtree(run / checkpoints.DIR)
        np.savez(run / checkpoints.LEGACY, progress=1, metric_rows=1, leaf_00000=np.zeros(3))
        damage(run)

    return legacy


def _foreign_npz(run: Path):
    """A valid ``.npz`` of something else."""
    np.savez(run / checkpoints.LEGACY, weights=np.zeros(3))


def _fault(run: Path):
    fault = {"row": 3, "at": None, "seeds": [1], "kind": "metric", "quantity": "meta_loss"}
    (run / runs.FAULT).write_text(json.dumps({**fault, "checkpoint_row": 2}))


_CORRUPT_CONFIG = _write(runs.CONFIG, b'{"method": "a2c", "seeds": 2')
_EMPTY_CHECKPOINT = _write(checkpoints.LEGACY, b"")


def _in_sweep(damage):
    """``damage`` applied to the one run directory of a sweep root."""
    return lambda root: damage(root / "breakout" / "stacx")


# --- The table --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
      id: the test id.
      args: the module under ``experiments`` and its arguments; ``{run}`` is the case's copy
        of the ``run`` fixture, ``{file}`` a regular file, ``{new}`` a path that does not exist.
      status: the expected exit status.
      says: what the one line on stderr must contain (formatted like ``args``).
      run: the run directory fixture copied to ``{run}`` (None: no run directory).
      damage: applied to the copy before the command runs (and before it is hashed).
      read_only: take every write permission on the copy away.
    """

    id: str
    args: tuple[str, ...]
    status: int
    says: str = ""
    run: str | None = None
    damage: Callable[[Path], None] | None = None
    read_only: bool = False


TC = ("two_colors", "--method=a2c", "--preset=smoke", "--quiet")  # the tc_* runs' flags
TC_RUN = (*TC, "--run_dir={run}")
AT = ("minatar", "--method=stacx", "--preset=smoke", "--quiet")  # the at_* runs' flags
AT_RUN = (*AT, "--run_dir={run}")
ML = ("fewshot", "--task=sinusoid", "--preset=smoke")  # the fs_* runs' flags
ML_RUN = (*ML, "--run_dir={run}")
AL = ("atari", "--method=stacx", "--preset=smoke", "--quiet")  # real ALE, no run made
AL_RUN = (*AL, "--run_dir={new}")
ALS = ("atari.sweep", "--root={new}", "--target_optimizers=rmsprop", "--matchings=kl_v")
SW = ("minatar.sweep", "--preset=smoke", "--dry_run", "--games=breakout", "--matchings=l2")
SW_RUN = (*SW, "--root={run}")

USAGE, RUNTIME, OK = 2, 1, 0

CASES = [
    # two_colors: usage errors leave an existing run directory as it is.
    Case("tc-unknown-flag", (*TC_RUN, "--colour=red"), USAGE, "'colour'", "tc_done"),
    Case("tc-stray-argument", (*TC_RUN, "again"), USAGE, "unexpected arguments", "tc_done"),
    Case("tc-bad-method", (*TC_RUN, "--method=ppo"), USAGE, "--method=ppo", "tc_done"),
    Case("tc-bad-matching", (*TC_RUN, "--method=bmg", "--matching=cosine"), USAGE, "--matching"),
    Case("tc-bad-integer", (*TC_RUN, "--seeds=two"), USAGE, "--seeds=two", "tc_done"),
    Case("tc-negative-seeds", (*TC_RUN, "--seeds=-1"), USAGE, "seeds must be", "tc_done"),
    Case("tc-negative-devices", (*TC_RUN, "--num_devices=-1"), USAGE, "--num_devices=-1"),
    Case("tc-lr-inf", (*TC_RUN, "--learning_rate=inf"), USAGE, "learning_rate must be finite"),
    Case("tc-entropy-inf", (*TC_RUN, "--entropy_weight=inf"), USAGE, "entropy_weight must be"),
    Case("tc-entropy-nan", (*TC_RUN, "--entropy_weight=nan"), USAGE, "entropy_weight must be"),
    Case("tc-value-cost-nan", (*TC_RUN, "--value_cost=nan"), USAGE, "value_cost must be finite"),
    Case(
        "tc-target-lr-nan",
        (*TC_RUN, "--method=bmg", "--target_learning_rate=nan"),
        USAGE,
        "target_learning_rate must be finite",
        "tc_done",
    ),
    Case("tc-step-reward-nan", (*TC_RUN, "--step_reward=nan"), USAGE, "step_reward must be"),
    Case(
        "tc-meta-lr-inf",
        (*TC_RUN, "--method=bmg", "--meta_learning_rate=inf"),
        USAGE,
        "meta_learning_rate must be finite",
        "tc_done",
    ),
    Case(
        "tc-flag-of-another-method",
        (*TC_RUN, "--method=mg", "--bootstrap_steps=4"),
        USAGE,
        "bootstrap_steps applies to --method=bmg/q_bmg only",
        "tc_done",
    ),
    Case("tc-no-run-dir", TC, USAGE, "--run_dir is required"),
    Case(
        "tc-process-flag-without-distributed",
        (*TC_RUN, "--num_processes=2"),
        USAGE,
        "--num_processes applies with --distributed only",
        "tc_done",
    ),
    Case(
        "at-coordinator-without-distributed",
        (*AT_RUN, "--coordinator_address=localhost:1"),
        USAGE,
        "--coordinator_address applies with --distributed only",
        "at_config",
    ),
    # two_colors: run directories that cannot be used.
    Case("tc-run-dir-is-a-file", (*TC, "--run_dir={file}"), RUNTIME, "{file} is a file"),
    Case("tc-run-dir-under-a-file", (*TC, "--run_dir={file}/run"), RUNTIME, "{file}/run"),
    Case("tc-corrupt-config", TC_RUN, RUNTIME, "{run}/config.json", "tc_done", _CORRUPT_CONFIG),
    Case("tc-another-config", (*TC_RUN, "--seed=3"), RUNTIME, "another config", "tc_done"),
    Case(
        "tc-empty-checkpoints",
        TC_RUN,
        RUNTIME,
        "no checkpoint in {run}/checkpoints can be read",
        "tc_done",
        _damage_checkpoints("empty"),
    ),
    Case(
        "tc-truncated-checkpoints",
        TC_RUN,
        RUNTIME,
        "no checkpoint in {run}/checkpoints can be read",
        "tc_done",
        _damage_checkpoints("truncate"),
    ),
    Case(
        "tc-foreign-checkpoint",
        TC_RUN,
        RUNTIME,
        "not a checkpoint of this program (it has no progress)",
        "tc_done",
        _foreign_checkpoint,
    ),
    Case(
        "tc-other-structure",
        TC_RUN,
        RUNTIME,
        "checkpoints/1000000 does not hold a state of this run's structure",
        "tc_done",
        _other_structure,
    ),
    Case(
        "tc-empty-legacy-checkpoint",
        TC_RUN,
        RUNTIME,
        "{run}/checkpoint.npz",
        "tc_done",
        _legacy(_EMPTY_CHECKPOINT),
    ),
    Case(
        "tc-truncated-legacy-checkpoint",
        TC_RUN,
        RUNTIME,
        "{run}/checkpoint.npz",
        "tc_done",
        _legacy(_truncate(checkpoints.LEGACY)),
    ),
    Case(
        "tc-foreign-legacy-checkpoint",
        TC_RUN,
        RUNTIME,
        "checkpoint.npz",
        "tc_done",
        _legacy(_foreign_npz),
    ),
    Case(
        "tc-other-structure-legacy",
        TC_RUN,
        RUNTIME,
        "checkpoint.npz does not hold a state of this run's structure",
        "tc_done",
        _legacy(lambda run: None),
    ),
    Case(
        "tc-truncated-metrics",
        TC_RUN,
        RUNTIME,
        "{run}/metrics.jsonl: line 4",
        "tc_done",
        _truncate_last_line,
    ),
    Case("tc-diverged-run", TC_RUN, RUNTIME, "diverged at row 3", "tc_done", _fault),
    Case("tc-read-only-new", TC_RUN, RUNTIME, "{run}", "empty", read_only=True),
    Case("tc-read-only-partial", TC_RUN, RUNTIME, "read-only", "tc_partial", read_only=True),
    Case("tc-read-only-finished", TC_RUN, OK, "", "tc_done", read_only=True),
    Case("tc-finished", TC_RUN, OK, "", "tc_done"),
    # the real ALE: every bad input is refused before an emulator starts or a file is written
    Case("al-unknown-game", (*AL_RUN, "--game=mspacman"), USAGE, "--game=mspacman"),
    Case("al-sticky-range", (*AL_RUN, "--sticky_actions=1.5"), USAGE, "sticky_actions must be"),
    Case("al-bad-torso", (*AL_RUN, "--torso=resnet50"), USAGE, "--torso=resnet50"),
    Case(
        "al-bmg-flag-with-stacx", (*AL_RUN, "--bootstrap_steps=2"), USAGE, "applies to --method=bmg"
    ),
    Case("al-zero-seeds", (*AL_RUN, "--seeds=0"), USAGE, "--seeds"),
    Case("al-no-run-dir", AL, USAGE, "--run_dir is required"),
    Case("al-run-dir-is-a-file", (*AL, "--run_dir={file}"), RUNTIME, "{file}"),
    Case("al-sweep-bad-game", (*ALS, "--games=pacman"), USAGE, "unknown Atari game 'pacman'"),
    Case("al-sweep-only-past-the-end", (*ALS, "--only=16"), USAGE, "the sweep has 16 runs"),
    Case("al-sweep-set-decided", (*ALS, "--set=seed=3"), USAGE, "decided by the sweep"),
    Case(
        "al-sweep-root-is-a-file",
        ("atari.sweep", "--root={file}", "--dry_run"),
        RUNTIME,
        "is a file",
    ),
    # atari
    Case("at-rmsprop-decay", (*AT_RUN, "--rmsprop_decay=2"), USAGE, "rmsprop_decay must be in"),
    Case("at-lr-inf", (*AT_RUN, "--learning_rate=inf"), USAGE, "learning_rate must be finite"),
    Case(
        "at-negative-meta-clip",
        (*AT_RUN, "--meta_max_grad_norm=-1"),
        USAGE,
        "meta_max_grad_norm must be",
        "at_config",
    ),
    Case("at-bad-env", (*AT_RUN, "--env=pong"), USAGE, "--env=pong", "at_config"),
    Case("at-unknown-hyper", (*AT_RUN, "--learned=gamma"), USAGE, "gamma", "at_config"),
    Case(
        "at-bmg-flag-with-stacx",
        (*AT_RUN, "--matching=kl"),
        USAGE,
        "matching applies to --method=bmg only",
        "at_config",
    ),
    Case("at-run-dir-is-a-file", (*AT, "--run_dir={file}"), RUNTIME, "{file} is a file"),
    Case("at-corrupt-config", AT_RUN, RUNTIME, "config.json", "at_config", _CORRUPT_CONFIG),
    Case("at-empty-checkpoint", AT_RUN, RUNTIME, "checkpoint.npz", "at_config", _EMPTY_CHECKPOINT),
    # maml
    Case("ml-meta-lr-inf", (*ML_RUN, "--meta_lr=inf"), USAGE, "meta_lr must be finite", "fs_done"),
    Case("ml-bad-task", (*ML_RUN, "--task=mnist"), USAGE, "--task=mnist", "fs_done"),
    Case(
        "ml-no-task", ("fewshot", "--preset=smoke", "--run_dir={run}"), USAGE, "--task is required"
    ),
    Case("ml-negative-shots", (*ML_RUN, "--shots=-1"), USAGE, "shots must be", "fs_done"),
    Case("ml-bad-bool", (*ML_RUN, "--first_order=maybe"), USAGE, "--first_order", "fs_done"),
    Case("ml-bad-tuple", (*ML_RUN, "--hidden_sizes=8,x"), USAGE, "--hidden_sizes", "fs_done"),
    Case(
        "ml-matching-of-another-task",
        (*ML_RUN, "--method=bmg", "--matching=kl"),
        USAGE,
        "does not fit task",
        "fs_done",
    ),
    Case("ml-run-dir-is-a-file", (*ML, "--run_dir={file}"), RUNTIME, "{file} is a file"),
    Case("ml-corrupt-config", ML_RUN, RUNTIME, "config.json", "fs_done", _CORRUPT_CONFIG),
    Case(
        "ml-empty-checkpoints",
        ML_RUN,
        RUNTIME,
        "no checkpoint in {run}/checkpoints can be read",
        "fs_done",
        _damage_checkpoints("empty"),
    ),
    Case(
        "ml-truncated-checkpoints",
        ML_RUN,
        RUNTIME,
        "no checkpoint in {run}/checkpoints can be read",
        "fs_done",
        _damage_checkpoints("truncate"),
    ),
    Case(
        "ml-foreign-checkpoint",
        ML_RUN,
        RUNTIME,
        "not a checkpoint of this program (it has no step)",
        "fs_done",
        _foreign_checkpoint,
    ),
    Case("ml-foreign-legacy", ML_RUN, RUNTIME, "checkpoint.npz", "fs_done", _legacy(_foreign_npz)),
    Case(
        "ml-truncated-metrics",
        ML_RUN,
        RUNTIME,
        "{run}/metrics.jsonl: line",
        "fs_done",
        _truncate_last_line,
    ),
    Case("ml-another-config", (*ML_RUN, "--seed=3"), RUNTIME, "different settings", "fs_done"),
    Case(
        "ml-missing-data",
        ("fewshot", "--task=omniglot", "--preset=smoke", "--data_dir={new}", "--run_dir={run}"),
        RUNTIME,
        "{new}",
    ),
    Case("ml-read-only-partial", ML_RUN, RUNTIME, "{run}", "fs_partial", read_only=True),
    Case("ml-read-only-finished", ML_RUN, OK, "", "fs_done", read_only=True),
    Case("ml-finished", ML_RUN, OK, "", "fs_done"),
    # atari_sweep
    Case("sw-root-is-a-file", (*SW, "--root={file}"), RUNTIME, "--root={file} is a file"),
    Case("sw-no-root", SW, USAGE, "--root is required"),
    Case("sw-set-bad-type", (*SW_RUN, "--set=seeds=two"), USAGE, "seeds needs an integer"),
    Case("sw-set-inf", (*SW_RUN, "--set=learning_rate=inf"), USAGE, "learning_rate must be"),
    Case("sw-bad-matching", (*SW_RUN, "--matchings=cosine"), USAGE, "matching must be one of"),
    Case("sw-bad-steps", (*SW_RUN, "--bootstrap_steps=x"), USAGE, "--bootstrap_steps", "sw_root"),
    Case(
        "sw-corrupt-run",
        SW_RUN,
        RUNTIME,
        "{run}/breakout/stacx/config.json",
        "sw_root",
        _in_sweep(_CORRUPT_CONFIG),
    ),
    Case("sw-dry-run", SW_RUN, OK, "", "sw_root"),
    # plot
    Case(
        "pl-minatar-run",
        ("two_colors.plot", "--run_dirs={run}", "--out={new}/fig"),
        RUNTIME,
        "not a two-colors run directory",
        "at_rows",
    ),
    Case(
        "pl-two-colors-under-minatar-root",
        ("minatar.plot", "--root={run}", "--out={new}/fig"),
        RUNTIME,
        "not a STACX / BMG run directory",
        "tc_root",
    ),
    Case(
        "pl-out-under-a-file",
        ("two_colors.plot", "--run_dirs={run}", "--out={file}/fig"),
        RUNTIME,
        "--out={file}/fig",
        "tc_done",
    ),
    Case(
        "pl-window-not-a-number",
        ("two_colors.plot", "--run_dirs={run}", "--out={new}/fig", "--window=abc,def"),
        USAGE,
        "--window=abc,def",
        "tc_done",
    ),
    Case(
        "pl-truncated-metrics",
        ("two_colors.plot", "--run_dirs={run}", "--out={new}/fig"),
        RUNTIME,
        "{run}/metrics.jsonl: line 4",
        "tc_done",
        _truncate_last_line,
    ),
    Case(
        "pl-no-out", ("two_colors.plot", "--run_dirs={run}"), USAGE, "--out is required", "tc_done"
    ),
    Case("pl-no-runs", ("two_colors.plot", "--out={new}/fig"), USAGE, "--run_dirs is required"),
    Case(
        "pl-missing-dir", ("two_colors.plot", "--run_dirs={new}", "--out={file}"), RUNTIME, "{new}"
    ),
    Case(
        "pl-missing-summary",
        ("two_colors.plot", "--run_dirs={new}.npz", "--out={new}/fig"),
        RUNTIME,
        "no such summary file",
    ),
    Case(
        "pl-summaries-under-a-file",
        ("two_colors.plot", "--run_dirs={run}", "--out={new}/fig", "--save_summaries={file}/s"),
        RUNTIME,
        "--save_summaries",
        "tc_done",
    ),
    Case("pl-bad-game", ("minatar.plot", "--root={new}", "--game=pong"), USAGE, "pong"),
    # plot_maml
    Case("pm-no-run-dirs", ("fewshot.plot", "--out={new}/fig"), USAGE, "run directories"),
    Case(
        "pm-not-few-shot",
        ("fewshot.plot", "--out={new}/fig", "{run}"),
        RUNTIME,
        "not a run directory of experiments.fewshot",
        "tc_done",
    ),
    Case(
        "pm-truncated-metrics",
        ("fewshot.plot", "--out={new}/fig", "{run}"),
        RUNTIME,
        "{run}/metrics.jsonl: line",
        "fs_done",
        _truncate_last_line,
    ),
    Case("pm-unknown-flag", ("fewshot.plot", "--outt={new}", "{run}"), USAGE, "'outt'", "fs_done"),
]


# --- Fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_errors")
    yield path
    _make_writable(path)


@pytest.fixture(scope="module")
def fixtures(base):
    """The run directories the cases copy, by name."""
    made = base / "fixtures"
    tc = two_colors_config(preset="smoke", method="a2c")
    two_colors_train.train(tc, made / "tc_done")
    two_colors_train.train(tc, made / "tc_partial", stop_after_rows=2)
    shutil.copytree(made / "tc_done", made / "tc_root" / "a2c")
    fs = fewshot_config.preset("smoke", "sinusoid")
    fewshot_train.run(fs, str(made / "fs_done"), log=lambda line: None)
    partial = dataclasses.replace(fs, meta_steps=2)
    fewshot_train.run(partial, str(made / "fs_partial"), log=lambda line: None)
    stacx = atari_config(preset="smoke", method="stacx")
    runs.prepare(made / "at_config", stacx)
    runs.prepare(made / "at_rows", stacx)
    row = {"frames": stacx.total_frames, "episode_return": [1.0, 2.0], "episodes": [1, 1]}
    runs.append_metrics(made / "at_rows", [row])
    runs.prepare(made / "sw_root" / "breakout" / "stacx", stacx)
    for name in ("at_config", "at_rows", "sw_root/breakout/stacx"):
        with runs.lock(made / name):  # a run directory has its lock file, as training makes it
            pass
    (made / "empty").mkdir()
    return made


def _digest(path: Path) -> dict[str, str]:
    """Every file and folder under ``path`` with a hash of its bytes."""
    out = {}
    for item in sorted(path.rglob("*")):
        key = str(item.relative_to(path))
        out[key] = hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else "dir"
    return out


def _make_read_only(path: Path):
    """Takes every write permission on ``path`` and below away (root: ``chattr +i``)."""
    if AS_ROOT:
        result = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True)
        if result.returncode != 0:
            _make_writable(path)
            pytest.skip(f"cannot make a directory read-only for root here: {result.stderr!r}")
        return
    for item in [*path.rglob("*"), path]:
        item.chmod(item.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(path: Path):
    if AS_ROOT:
        subprocess.run(["chattr", "-R", "-i", str(path)], capture_output=True)
    for item in [path, *path.rglob("*")]:
        item.chmod(item.stat().st_mode | stat.S_IWUSR)


def _prepare_case(case: Case, fixtures: Path, base: Path) -> dict:
    """Makes one case's own copies (damaged, read-only) and its command for ``forkrun``."""
    where = base / "cases" / case.id
    where.mkdir(parents=True)
    places = {"file": where / "file", "new": where / "new", "run": where / "run"}
    places["file"].write_text("a file, not a directory\n")
    before = None
    if case.run is not None:
        shutil.copytree(fixtures / case.run, places["run"])
        if case.damage is not None:
            case.damage(places["run"])
        before = _digest(places["run"])
        if case.read_only:
            _make_read_only(places["run"])
    fill = {name: str(path) for name, path in places.items()}
    module, *args = (arg.format(**fill) for arg in case.args)
    command = dict(
        module=module, args=args, stdout=str(where / "stdout"), stderr=str(where / "stderr")
    )
    return dict(command=command, fill=fill, places=places, before=before)


def _finish_case(prepared: dict, status: int) -> dict:
    """What the assertions need, once the case's command ran."""
    places = prepared["places"]
    after = _digest(places["run"]) if prepared["before"] is not None else None
    result = subprocess.CompletedProcess(
        [prepared["command"]["module"], *prepared["command"]["args"]],
        status,
        Path(prepared["command"]["stdout"]).read_text(),
        Path(prepared["command"]["stderr"]).read_text(),
    )
    return dict(prepared, result=result, after=after)


@pytest.fixture(scope="module")
def outcomes(fixtures, base):
    """Every case's outcome. Each command runs in its own process, but they are forked from
    one process that imported JAX and the experiments once (``forkrun``): importing them is
    most of a bad command line's seconds."""
    prepared, skipped = {}, {}
    try:
        for case in CASES:
            try:
                prepared[case.id] = _prepare_case(case, fixtures, base)
            except pytest.skip.Exception as skip:  # re-raised in the case's own test
                skipped[case.id] = skip
        ready = [case for case in CASES if case.id in prepared]
        runner = subprocess.run(
            [sys.executable, "-m", "tests.experiments.forkrun"],
            input=json.dumps([prepared[case.id]["command"] for case in ready]),
            capture_output=True,
            text=True,
            timeout=900,
            cwd=ROOT,
            env={**os.environ, "JAX_PLATFORMS": "cpu", "MPLCONFIGDIR": str(base / "mpl")},
        )
    finally:
        for case in CASES:
            if case.id in prepared and case.read_only and case.run is not None:
                _make_writable(prepared[case.id]["places"]["run"])
    assert runner.returncode == 0, f"forkrun failed: {runner.stderr}"
    statuses = json.loads(runner.stdout)
    done = {
        case.id: _finish_case(prepared[case.id], status)
        for case, status in zip(ready, statuses, strict=True)
    }
    return {**done, **skipped}


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, outcomes):
    outcome = outcomes[case.id]
    if isinstance(outcome, BaseException):
        raise outcome
    result, fill, places = outcome["result"], outcome["fill"], outcome["places"]
    err = result.stderr.strip()
    assert result.returncode == case.status, f"status {result.returncode}: {result.stderr}"
    if case.status == OK:
        assert "error" not in err.lower(), err
    else:
        assert len(err.splitlines()) == 1, f"not one line:\n{result.stderr}"
        assert err.startswith("error: ") and "Traceback" not in err
        assert case.says.format(**fill) in err, err
    if case.run is not None:
        assert outcome["after"] == outcome["before"], "the run directory changed"
    if case.status == USAGE:
        assert not places["new"].exists(), "a usage error wrote something"
        assert case.run is not None or not places["run"].exists(), "a usage error wrote"


def test_the_table_is_long_enough():
    statuses = [case.status for case in CASES]
    assert len(CASES) >= 60 and statuses.count(USAGE) >= 20 and statuses.count(RUNTIME) >= 20
    assert len({case.id for case in CASES}) == len(CASES)
