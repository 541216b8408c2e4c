"""The README's commands and quickstart cannot rot: CI reads them from the README."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block_after(marker: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README.md has no code block after <!-- {marker} -->"
    return match.group(1)


def test_quickstart_runs_and_meta_learns(tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(_block_after("quickstart"))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert set(lines) == {"BMG", "MG"}
    # Both get 300 inner steps: BMG's learner moves K + L - 1 = 6 per meta-step, MG's K = 3.
    assert lines["BMG"].startswith("50 meta-steps") and lines["MG"].startswith("100 meta-steps")
    for name, line in lines.items():
        rate = float(re.search(r"learning rate ([0-9.]+)", line).group(1))
        assert rate != 0.01, f"{name} did not change the learning rate"


def test_ci_runs_the_readme_test_command():
    command = _block_after("test-command").strip()
    assert "pytest" in command and "pip install -e '.[test]'" in command
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci  # .ci/run reads the command from the README


def test_main_command_runs_the_two_colors_experiment():
    command = _block_after("main-command").strip()
    assert "-m experiments.two_colors --method=bmg --preset=quick" in command
