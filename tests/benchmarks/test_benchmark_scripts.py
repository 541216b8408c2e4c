"""The benchmark scripts still run (tiny settings; their figures are not checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_script(name, *flags, prefixes=("stacx", "bmg")):
    """Runs ``benchmarks/<name>`` with ``flags``; returns its stdout's lines that start with
    one of ``prefixes`` (by default the per-method lines)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *flags],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if line.startswith(prefixes)]


@pytest.mark.slow
def test_minatar_benchmark_runs_at_smoke_size():
    lines = _run_script(
        "minatar.py", "--preset=smoke", "--chunks=1", "--log_every=160", "--seeds=2"
    )
    assert len(lines) == 4
    assert float(lines[0].split()[-1]) == 1.0  # STACX's cost relative to itself


@pytest.mark.slow
def test_ale_benchmark_runs_at_smoke_size():
    lines = _run_script(
        "atari.py", "--preset=smoke", "--seconds=1", prefixes=("stacx", "bmg", "STACX")
    )
    methods = ["stacx", "bmg", "bmg"]
    # The rates, the learner with each way of computing the convolutions, then the flop bound.
    assert [line.split()[0] for line in lines] == [*methods, "STACX", "STACX", *methods]
    for line in lines[3:5]:
        assert float(line.split()[-2]) > 0, line
    for line in lines[5:]:  # GFLOP per meta-step, GFLOP/s, the needed rate's multiple
        words = line.split()
        assert float(words[-6]) > 0 and float(words[-1].rstrip("x")) > 0, line
    for line in lines[:3]:  # learner meta-steps/s, its frames/s, pipeline frames/s, ratio to raw
        rates = [float(x.replace(",", "")) for x in line.split()[-4:]]
        assert all(rate > 0 for rate in rates), line


@pytest.mark.slow
def test_maml_horizon_benchmark_runs_and_remat_saves_memory():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "maml.py"), "--horizons", "3",
         "--tasks", "sinusoid", "--repeats", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("sinusoid")]
    assert [row[3] for row in rows] == ["maml", "maml+remat", "bmg", "bmg+remat"]
    temp = {row[3]: float(row[6]) for row in rows}
    assert float(rows[0][-2]) == 1.0  # plain MAML relative to itself
    assert temp["maml+remat"] < temp["maml"]  # remat trades memory for time
