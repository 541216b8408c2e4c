"""Multi-process runs: two local processes on CPU (gloo collectives, one device each) train a
two-colors population and write the same metric rows and checkpoints as one process with
two devices, and resume together from their shared checkpoint."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.common import checkpoints

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--preset=smoke", "--method=bmg", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _command(run_dir, *extra):
    return [sys.executable, "-m", "experiments.two_colors", *FLAGS, f"--run_dir={run_dir}", *extra]


def _two_processes(run_dir):
    port = _free_port()
    procs = [
        subprocess.Popen(
            _command(
                run_dir,
                "--num_devices=1",
                "--distributed",
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={i}",
            ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


def _rows(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


@pytest.mark.slow  # two processes of JAX: 110 s; run with -m slow
def test_two_processes_train_like_one_process_with_two_devices(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(_command(one, "--num_devices=2"), cwd=ROOT, check=True, capture_output=True)
    outs = _two_processes(two)
    assert (
        "mean total return" in outs[0] and "mean total return" not in outs[1]
    )  # process 0 reports
    expected = _rows(one)
    assert len(expected) == 4 and _rows(two) == expected
    assert json.loads((two / "config.json").read_text()) == json.loads(
        (one / "config.json").read_text()
    )
    a, b = checkpoints.load(one), checkpoints.load(two)
    assert a.step == b.step == 4 and a.meta == b.meta
    for x, y in zip(a.leaves, b.leaves, strict=True):
        np.testing.assert_array_equal(x, y)

    # Both processes resume from the checkpoint before the last and end where they did.
    shutil.rmtree(two / checkpoints.DIR / "4")
    _two_processes(two)
    assert _rows(two) == expected
    for x, y in zip(a.leaves, checkpoints.load(two).leaves, strict=True):
        np.testing.assert_array_equal(x, y)
