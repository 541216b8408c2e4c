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
import os
import sys
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from absl import flags

from experiments.common import runs
from experiments.common.cli_fields import (  # noqa: F401  (part of this module's API)
    ConfigFlags,
    TupleParser,
    UsageError,
    attribute_help,
    field_parser,
    field_type,
    one_line,
    parse_field,
)
from experiments.common.config_checks import ConfigError

USAGE_ERROR = 2
"""Exit status of a command line that cannot be run as given."""
RUNTIME_ERROR = 1
"""Exit status of a run that failed (its run directory, its numbers, its files)."""

HELP_FLAGS = ("--help", "-help", "-h", "--helpfull", "-helpfull", "--helpshort")


class RunError(RuntimeError):
    """A runtime problem outside a run directory, e.g. an ``--out`` that cannot be written."""


def describe(error: BaseException) -> str:
    """A one-line description of a runtime error (an `OSError` names its path)."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return one_line(f"{error.strerror}{where}")
    return one_line(error)


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

    def real(self, name: str, default: float | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_float(name, default, help, **self._in)

    def boolean(self, name: str, default: bool | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_bool(name, default, help, **self._in)

    def enum(self, name, default, choices: Sequence[str], help: str) -> flags.FlagHolder:
        return flags.DEFINE_enum(name, default, list(choices), help, **self._in)

    def string_list(self, name, default: Sequence[str] | None, help: str) -> flags.FlagHolder:
        return flags.DEFINE_list(name, default, help, **self._in)

    def run_flags(self, *, num_devices: bool = True) -> None:
        """The flags of how a training command runs, the same for every RL experiment:
        ``--num_devices`` (unless ``num_devices`` is False: an experiment that places its
        devices itself) and ``--distributed`` with its coordinator flags (read by
        `start_jax`)."""
        if num_devices:
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

    def start_jax(self, cpu_devices: int | None = None) -> None:
        """Starts JAX as the `run_flags` say: joins the other processes if ``--distributed``,
        and asks for ``--num_devices`` (or ``cpu_devices``) CPU devices (no effect on GPU or
        TPU).

        Raises:
          UsageError: coordinator flags without ``--distributed``.
        """
        processes = {name: self.flags[name].value for name in _PROCESS_FLAGS}
        given = [name for name, value in processes.items() if value is not None]
        if given and not self.flags["distributed"].value:
            raise UsageError(f"--{given[0]} applies with --distributed only")
        from experiments.common import distributed, population  # JAX starts here

        if "num_devices" in self.flags:
            cpu_devices = self.flags["num_devices"].value
        population.request_cpu_devices(cpu_devices)
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
