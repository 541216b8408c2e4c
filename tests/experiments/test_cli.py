"""The one command-line helper (`experiments.common.cli`): flags from config dataclasses,
help from their docstrings, the error path, and every entry point's ``--help``."""

from __future__ import annotations

import dataclasses
import errno
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.common import cli, runs
from experiments.common.config_checks import ConfigError, check_finite, check_interval
from experiments.fewshot.config import Config as FewShotConfig
from experiments.minatar.config import AtariConfig
from experiments.two_colors.config import TwoColorsConfig

ROOT = Path(__file__).resolve().parents[2]

ENTRY_POINTS = (
    "two_colors",
    "two_colors.plot",
    "minatar",
    "minatar.sweep",
    "minatar.plot",
    "fewshot",
    "fewshot.plot",
    "envs.minatar",
)


@dataclasses.dataclass(frozen=True)
class Toy:
    """A config with a field of every kind.

    Attributes:
      verbose: say more.
      sizes: layer widths,
        one per layer.
      rates: learning rates.
      names, tags: shared
        text.
      mode: how it runs.
      count: how many.
      rate: how fast.
      label: a name, or none.
    """

    verbose: bool = False
    sizes: tuple[int, ...] = (32, 32)
    rates: tuple[float, ...] = (0.1,)
    names: tuple[str, ...] = ()
    tags: str = ""
    mode: str = "fast"
    count: int = 3
    rate: float = 0.5
    label: str | None = None


def _toy_cli():
    command = cli.Cli("toy", "A toy.")
    return command, command.config_flags(Toy, choices={"mode": ("fast", "slow")})


def test_a_bool_field_and_a_tuple_field_become_proper_flags():
    command, config = _toy_cli()
    assert command.parse(["toy", "--verbose", "--sizes=64,32,16", "--rates=0.5,1e-3"]) == []
    assert config["verbose"].value is True and config["sizes"].value == (64, 32, 16)
    assert config["rates"].value == (0.5, 1e-3)
    assert config.given() == {"verbose": True, "sizes": (64, 32, 16), "rates": (0.5, 1e-3)}
    for argv, verbose in (("--noverbose", False), ("--verbose=false", False), ("", None)):
        command.parse(["toy", *([argv] if argv else [])])
        assert config["verbose"].value is verbose
    command.parse(["toy", "--names=a,b", "--sizes="])
    assert config["names"].value == ("a", "b") and config["sizes"].value == ()
    for bad in ("--verbose=maybe", "--sizes=64,x", "--rates=fast", "--mode=medium", "--count=1.5"):
        with pytest.raises(cli.UsageError, match=bad.split("=")[0]):
            command.parse(["toy", bad])


def test_flags_take_their_help_from_the_attributes_section():
    command, _ = _toy_cli()
    assert cli.attribute_help(Toy)["sizes"] == "layer widths, one per layer."
    assert cli.attribute_help(Toy)["names"] == cli.attribute_help(Toy)["tags"] == "shared text."
    text = " ".join(command.help().split())
    assert "--[no]verbose: say more." in text and "--mode: <fast|slow>: how it runs." in text
    assert "(default '32,32' unless the preset sets it)" in text
    assert "(comma-separated integers)" in text


def test_a_field_without_help_or_without_a_flag_type_is_refused():
    @dataclasses.dataclass
    class Undocumented:
        """No attributes section."""

        x: int = 1

    @dataclasses.dataclass
    class Odd:
        """Odd.

        Attributes:
          x: a dict.
        """

        x: dict = dataclasses.field(default_factory=dict)

    with pytest.raises(TypeError, match="no entry under Attributes"):
        cli.Cli("a", "").config_flags(Undocumented)
    with pytest.raises(TypeError, match="no flag type"):
        cli.Cli("b", "").config_flags(Odd)


def test_two_entry_points_may_define_flags_of_the_same_name():
    first, second = cli.Cli("first", ""), cli.Cli("second", "")
    a = first.integer("seeds", 1, "Seeds.")
    b = second.string("seeds", "x", "Seeds as text.")
    first.parse(["first", "--seeds=3"])
    second.parse(["second", "--seeds=many"])
    assert (a.value, b.value) == (3, "many")


@pytest.mark.parametrize(
    ("config_cls", "module"),
    [(TwoColorsConfig, "two_colors"), (AtariConfig, "minatar"), (FewShotConfig, "fewshot")],
)
def test_every_config_field_is_a_documented_flag(config_cls, module):
    entry = importlib.import_module(f"experiments.{module}.__main__")
    names = {f.name for f in dataclasses.fields(config_cls)}
    assert set(entry._CONFIG.holders) == names
    docs = cli.attribute_help(config_cls)
    for name in names:
        assert docs[name] in entry.CLI.flags[name].help


def test_parse_field_parses_as_the_flag_would():
    choices = {"mode": ("fast", "slow")}
    assert cli.parse_field(Toy, "sizes", "1,2", choices) == (1, 2)
    assert cli.parse_field(Toy, "verbose", "true", choices) is True
    assert cli.parse_field(Toy, "rate", "inf", choices) == float("inf")  # the config rejects it
    for name, text, message in (
        ("count", "x", "count needs an integer"),
        ("mode", "medium", "mode must be one of fast, slow"),
        ("colour", "red", "unknown setting 'colour'"),
    ):
        with pytest.raises(cli.UsageError, match=message):
            cli.parse_field(Toy, name, text, choices)


def _exit_of(main, capsys, argv=("prog",)):
    command = cli.Cli("toy", "A toy.")
    with pytest.raises(SystemExit) as exit_:
        command.run(main, list(argv))
    captured = capsys.readouterr()
    return exit_.value.code, captured.out, captured.err


def _raises(error):
    def main(argv):
        raise error

    return main


@pytest.mark.parametrize(
    ("error", "status", "says"),
    [
        (cli.UsageError("--x is required\n(really)"), 2, "--x is required (really)"),
        (ConfigError("invalid config: lr must be finite"), 2, "lr must be finite"),
        (runs.RunDirError("/r is a file"), 1, "/r is a file"),
        (runs.NonFiniteError("the run diverged at row 2"), 1, "diverged at row 2"),
        (cli.RunError("--out=/f/x: /f is a file"), 1, "/f is a file"),
        (OSError(errno.ENOSPC, "No space left on device", "/r/metrics.jsonl"), 1, "/r/metrics"),
    ],
)
def test_the_error_path_is_one_line_and_a_status(error, status, says, capsys):
    code, out, err = _exit_of(_raises(error), capsys)
    assert code == status and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err
    assert ("--help" in err) == (status == 2)


def test_a_bug_keeps_its_traceback_and_success_exits_zero(capsys):
    with pytest.raises(KeyError):
        cli.Cli("toy", "").run(_raises(KeyError("bug")), ["prog"])
    assert _exit_of(lambda argv: None, capsys)[0] == 0


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_prints_the_docstring_and_every_flag(module, capsys):
    entry = importlib.import_module(f"experiments.{module}")
    if hasattr(entry, "__path__"):  # a package: its entry point is its __main__
        entry = importlib.import_module(f"experiments.{module}.__main__")
    with pytest.raises(SystemExit) as exit_:
        entry.CLI.run(entry.main, [module, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith(entry.__doc__.strip().splitlines()[0])
    for name in entry.CLI.flags:
        if entry.CLI.flags[name].help and name not in ("flagfile", "undefok"):
            assert f"--{name}" in out or f"--[no]{name}" in out, name


def test_help_from_the_command_line():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.two_colors", "--preset=smoke", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0 and result.stderr == ""
    assert "--learning_rate: inner SGD learning rate." in result.stdout
    assert "--matching: <kl|l2|kl_v>" in result.stdout


def test_check_output_names_what_is_in_the_way(tmp_path):
    (tmp_path / "file").write_text("")
    assert cli.check_output(tmp_path / "new" / "deeper" / "fig") == tmp_path / "new/deeper/fig"
    assert not (tmp_path / "new").exists()  # nothing is created
    with pytest.raises(cli.RunError, match="is a file"):
        cli.check_output(tmp_path / "file" / "fig")


def test_shared_checks_cover_tuples_and_interval_ends():
    @dataclasses.dataclass
    class C:
        rates: tuple[float, ...] = (0.1, float("nan"))
        decay: float = 1.0

    def fail(message):
        raise ConfigError(message)

    with pytest.raises(ConfigError, match="rates must be finite"):
        check_finite(C(), fail)
    check_interval(C(), ("decay",), 0.0, 1.0, fail)
    with pytest.raises(ConfigError, match=r"decay must be in \[0, 1\), got 1.0"):
        check_interval(C(), ("decay",), 0.0, 1.0, fail, closed="left")
