"""One command-line shape for every experiment entry point.

An entry point makes a `Cli` at import time: it holds the entry point's own absl
`flags.FlagValues` (so two experiments may define flags of the same name), its flags — the
fields of its config dataclass through `Cli.config_flags`, plus its own (``--preset``,
``--run_dir``, ...) — and its error path. The flags are read only in ``main(argv)``, after
`Cli.parse`; ``python -m`` goes through `Cli.run`::

    CLI = cli.Cli("experiments.two_colors", __doc__)
    _RUN_DIR = CLI.string("run_dir", None, "Run directory.")
    _CONFIG = CLI.config_flags(TwoColorsConfig, choices=CHOICES, defaults={"method": "bmg"})

    def main(argv):
        CLI.parse(argv)
        run_dir = CLI.required(_RUN_DIR, "where the run is written")
        ...

    if __name__ == "__main__":
        CLI.run(main)

`Cli.run` is the one error path of every entry point:

* ``--help`` (or ``-h``, ``--helpfull``): the module docstring and every flag; exit status 0.
* A usage error — an unknown flag, a bad value, a stray argument, a missing required flag
  (`UsageError`) or an invalid config (any `ConfigError`, e.g. ``--learning_rate=inf``):
  one line on stderr, exit status 2.
* A runtime error — a run directory that cannot be used (`runs.RunDirError`), a run that
  went NaN or infinite (`runs.NonFiniteError`), an output that cannot be written
  (`RunError`), any `OSError`, and the entry point's own ``runtime_errors``: one line on
  stderr, exit status 1.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from absl import flags

from experiments.common import runs
from experiments.common.config_checks import ConfigError

USAGE_ERROR = 2
"""Exit status of a command line that cannot be run as given."""
RUNTIME_ERROR = 1
"""Exit status of a run that failed (its run directory, its numbers, its files)."""

HELP_FLAGS = ("--help", "-help", "-h", "--helpfull", "-helpfull", "--helpshort")


class UsageError(ConfigError):
    """A command line that cannot be run: an unknown flag, a bad value, a stray argument or
    a missing required flag (a `ConfigError`, so both exit with the usage status)."""


class RunError(RuntimeError):
    """A runtime problem outside a run directory, e.g. an ``--out`` that cannot be written."""


def one_line(message: Any) -> str:
    """``message`` as one line: runs of whitespace (newlines too) become one space."""
    return " ".join(str(message).split())


def describe(error: BaseException) -> str:
    """A one-line description of a runtime error (an `OSError` names its path)."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return one_line(f"{error.strerror}{where}")
    return one_line(error)


# --- Help text from a dataclass docstring ---------------------------------------------------

_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*:\s*(.*)$")


def attribute_help(cls: type) -> dict[str, str]:
    """The entries of the ``Attributes:`` sections of the Google-style docstrings of ``cls``
    and its base classes (a class's own entry wins over its bases').

    An entry is ``name: text`` (or ``a, b: text`` for fields that share it), continued on
    more deeply indented lines; the section ends at the first less indented line. Double
    backticks are dropped (help is plain text).

    Returns:
      ``{field name: its text on one line}``.
    """
    entries: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        entries.update(_own_attribute_help(klass))
    return entries


def _own_attribute_help(cls: type) -> dict[str, str]:
    lines = inspect.cleandoc(cls.__dict__.get("__doc__") or "").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    indent = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        match = _ENTRY.match(line.strip()) if depth == indent else None
        if match:
            current = [match.group(2)]
            for name in re.split(r"\s*,\s*", match.group(1)):
                entries[name] = current
        else:
            current.append(line.strip())
    return {name: one_line(" ".join(text)).replace("``", "") for name, text in entries.items()}


# --- Field types and their parsers ----------------------------------------------------------

_SCALARS = (bool, int, float, str)


def field_type(hint: Any) -> tuple[type, type | None]:
    """``(kind, element)`` of a config field's type hint: ``(bool | int | float | str, None)``
    or ``(tuple, int | float | str)`` for ``tuple[X, ...]``; ``X | None`` is ``X``.

    Raises:
      TypeError: for a type that has no flag (a config must not have one).
    """
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return field_type(args[0])
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
            return tuple, args[0]
    if hint in _SCALARS:
        return hint, None
    raise TypeError(f"no flag type for a config field of type {hint!r}")


class TupleParser(flags.ArgumentParser):
    """Parses ``"32,32"`` into ``(32, 32)`` (elements of one type; ``""`` is ``()``)."""

    def __init__(self, element: type):
        self.element = element
        name = {int: "integers", float: "numbers", str: "strings"}[element]
        self.syntactic_help = f"comma-separated {name}"

    def parse(self, argument):
        if isinstance(argument, tuple):
            return argument
        parts = [part.strip() for part in str(argument).split(",") if part.strip()]
        try:
            return tuple(self.element(part) for part in parts)
        except ValueError:
            raise ValueError(f"expected {self.syntactic_help}, got {argument!r}") from None

    def flag_type(self):
        return f"tuple of {self.element.__name__}"


def field_parser(hint: Any, choices: Sequence[str] | None = None) -> flags.ArgumentParser:
    """The absl parser of a field's type (an enum parser if it has ``choices``)."""
    kind, element = field_type(hint)
    if kind is tuple:
        return TupleParser(element)
    if choices is not None:
        return flags.EnumParser(list(choices))
    return {
        bool: flags.BooleanParser,
        int: flags.IntegerParser,
        float: flags.FloatParser,
        str: flags.ArgumentParser,
    }[kind]()


def parse_field(config_cls: type, name: str, text: str, choices: Mapping | None = None) -> Any:
    """``text`` parsed as the value of field ``name`` of ``config_cls`` (as its flag would).

    Raises:
      UsageError: for an unknown field or a value its type cannot parse.
    """
    hints = typing.get_type_hints(config_cls)
    if name not in {f.name for f in dataclasses.fields(config_cls)}:
        raise UsageError(f"unknown setting {name!r}")
    allowed = (choices or {}).get(name)
    parser = field_parser(hints[name], allowed)
    try:
        return parser.parse(text)
    except (ValueError, TypeError):
        if allowed is not None:
            raise UsageError(f"{name} must be one of {', '.join(allowed)}, got {text!r}") from None
        wanted = getattr(parser, "syntactic_help", "") or "true or false"
        raise UsageError(f"{name} needs {wanted}, got {text!r}") from None


class ConfigFlags:
    """The flags of a config dataclass's fields (see `Cli.config_flags`)."""

    def __init__(self, holders: dict[str, flags.FlagHolder]):
        self.holders = holders

    def __getitem__(self, name: str) -> flags.FlagHolder:
        return self.holders[name]

    def given(self, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
        """``{field: value}`` of the flags set on the command line, but ``exclude``."""
        skip = set(exclude)
        return {n: h.value for n, h in self.holders.items() if h.present and n not in skip}


# --- The command line of one entry point ----------------------------------------------------


# The flags of `jax.distributed.initialize`, named as its arguments.
_PROCESS_FLAGS = ("coordinator_address", "num_processes", "process_id")


class Cli:
    """The flags, parsing and error path of one entry point.

    Args:
      program: the module run with ``python -m``, e.g. ``experiments.two_colors``.
      doc: the module docstring, the head of ``--help``.
      positional: what positional arguments are (e.g. ``"run directories"``); None: the
        entry point takes none and any is a usage error.
    """

    def __init__(self, program: str, doc: str | None, *, positional: str | None = None):
        self.program = program
        self.doc = (doc or "").strip()
        self.positional = positional
        self.flags = flags.FlagValues()
        self._in = dict(flag_values=self.flags, module_name=program)

    # Flags of the entry point itself.
    def string(self, name: str, default: str | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_string(name, default, help, **self._in)

    def integer(self, name, default, help, *, lower_bound=None) -> flags.FlagHolder:
        return flags.DEFINE_integer(name, default, help, lower_bound=lower_bound, **self._in)

    def boolean(self, name: str, default: bool | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_bool(name, default, help, **self._in)

    def enum(self, name, default, choices: Sequence[str], help: str) -> flags.FlagHolder:
        return flags.DEFINE_enum(name, default, list(choices), help, **self._in)

    def string_list(self, name, default: Sequence[str] | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_list(name, default, help, **self._in)

    def run_flags(self) -> None:
        """The flags of how a training command runs, the same for every RL experiment:
        ``--num_devices`` and ``--distributed`` with its coordinator flags (read by
        `start_jax`)."""
        self.integer(
            "num_devices",
            None,
            "CPU devices to split the seeds over (default: one per core; CPU runs only).",
            lower_bound=1,
        )
        self.boolean(
            "distributed",
            False,
            "Join a multi-process run (jax.distributed.initialize): SLURM, Open MPI and "
            "Kubernetes are detected; elsewhere give the three flags below.",
        )
        self.string("coordinator_address", None, "With --distributed: host:port of process 0.")
        self.integer("num_processes", None, "With --distributed: processes in all.", lower_bound=1)
        self.integer("process_id", None, "With --distributed: this process's id.", lower_bound=0)

    def start_jax(self) -> None:
        """Starts JAX as the `run_flags` say: joins the other processes if ``--distributed``,
        and asks for ``--num_devices`` CPU devices (no effect on GPU or TPU).

        Raises:
          UsageError: coordinator flags without ``--distributed``.
        """
        processes = {name: self.flags[name].value for name in _PROCESS_FLAGS}
        given = [name for name, value in processes.items() if value is not None]
        if given and not self.flags["distributed"].value:
            raise UsageError(f"--{given[0]} applies with --distributed only")
        from experiments.common import distributed, population  # JAX starts here

        population.request_cpu_devices(self.flags["num_devices"].value)
        if self.flags["distributed"].value:
            distributed.initialize(**processes)

    def config_flags(
        self,
        config_cls: type,
        *,
        choices: Mapping[str, Sequence[str]] | None = None,
        defaults: Mapping[str, Any] | None = None,
        exclude: Iterable[str] = (),
    ) -> ConfigFlags:
        """One flag per field of the dataclass ``config_cls`` (but ``exclude``).

        A ``bool`` field is a boolean flag (``--name``, ``--noname``, ``--name=false``), an
        ``int``/``float``/``str`` field a flag of that type, a ``tuple[X, ...]`` field a
        comma-separated list, a field named in ``choices`` an enum of those values. The help
        is the field's entry in the docstring's ``Attributes:`` section. A flag's default is
        ``defaults[name]`` if given, else None: not set, so the preset (or the dataclass)
        decides.

        Raises:
          TypeError: for a field without a docstring entry or of a type without a flag.
        """
        choices, defaults, skip = dict(choices or {}), dict(defaults or {}), set(exclude)
        docs = attribute_help(config_cls)
        hints = typing.get_type_hints(config_cls)
        holders = {}
        for field in dataclasses.fields(config_cls):
            name = field.name
            if name in skip:
                continue
            if name not in docs:
                raise TypeError(f"{config_cls.__name__}.{name} has no entry under Attributes:")
            help_text = docs[name]
            if name not in defaults and field.default not in (dataclasses.MISSING, None):
                shown = field.default
                if isinstance(shown, tuple):
                    shown = ",".join(map(str, shown))
                help_text += f" (default {shown!r} unless the preset sets it)"
            holders[name] = self._field_flag(
                name, hints[name], defaults.get(name), help_text, choices.get(name)
            )
        return ConfigFlags(holders)

    def _field_flag(self, name, hint, default, help_text, choices) -> flags.FlagHolder:
        kind, element = field_type(hint)
        if kind is bool:
            return self.boolean(name, default, help_text)
        if choices is not None:
            return self.enum(name, default, choices, help_text)
        if kind is tuple:
            serializer = flags.CsvListSerializer(",")
            parser = TupleParser(element)
            return flags.DEFINE(parser, name, default, help_text, serializer=serializer, **self._in)
        definer = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}
        return definer[kind](name, default, help_text, **self._in)

    # Reading the command line.
    def parse(self, argv: Sequence[str]) -> list[str]:
        """Parses ``argv`` (program name first) into this entry point's flags.

        Returns:
          The positional arguments (empty unless the entry point takes some).

        Raises:
          UsageError: an unknown flag, a bad value, a stray argument.
        """
        self.flags.unparse_flags()
        try:
            rest = self.flags(list(argv))
        except flags.Error as e:
            raise UsageError(one_line(e)) from None
        args = rest[1:]
        if args and self.positional is None:
            raise UsageError(f"unexpected arguments: {args} (flags are written --name=value)")
        return args

    def required(self, holder: flags.FlagHolder, why: str):
        """The value of a flag that must be given; raises `UsageError` if it is not."""
        if holder.value is None or holder.value == "" or holder.value == []:
            raise UsageError(f"--{holder.name} is required ({why})")
        return holder.value

    def help(self) -> str:
        """The module docstring and the entry point's flags."""
        listing = self.flags.module_help(self.program)
        return f"{self.doc}\n\nFlags:\n{listing}\n" if listing else f"{self.doc}\n"

    def run(
        self,
        main: Callable[[list[str]], Any],
        argv: Sequence[str] | None = None,
        *,
        runtime_errors: tuple[type[BaseException], ...] = (),
    ) -> NoReturn:
        """Runs ``main(argv)`` as a command: help, usage errors and runtime errors as the
        module docstring says; exits with status 0 when ``main`` returns."""
        argv = list(sys.argv if argv is None else argv)
        options = argv[1 : argv.index("--")] if "--" in argv else argv[1:]
        if any(arg in HELP_FLAGS for arg in options):
            print(self.help())
            raise SystemExit(0)
        try:
            main(argv)
        except ConfigError as e:  # UsageError too
            self._exit(USAGE_ERROR, f"{one_line(e)} (see python -m {self.program} --help)")
        except (runs.RunDirError, runs.NonFiniteError, RunError, OSError, *runtime_errors) as e:
            self._exit(RUNTIME_ERROR, describe(e))
        raise SystemExit(0)

    @staticmethod
    def _exit(status: int, message: str) -> NoReturn:
        sys.stdout.flush()
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(status)


def check_output(path: str | os.PathLike, *, flag: str = "--out") -> Path:
    """Checks, without writing anything, that files named ``path`` can be written: the
    nearest existing folder at or above its parent is a writable directory.

    Raises:
      RunError: naming the flag and the file or folder in the way.
    """
    out = Path(path)
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunError(f"{flag}={path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"{flag}={path}: {existing} is not writable")
    return out
