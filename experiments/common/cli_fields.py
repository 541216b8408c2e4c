"""The config-dataclass side of the command line (`experiments.common.cli` builds on it):
help text from a dataclass's ``Attributes:`` docstring sections, a flag parser per field type,
`parse_field` for settings given as text, and the flags of a config's fields (`ConfigFlags`).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from absl import flags

from experiments.common.config_checks import ConfigError


class UsageError(ConfigError):
    """A command line that cannot be run: an unknown flag, a bad value, a stray argument or
    a missing required flag (a `ConfigError`, so both exit with the usage status)."""


def one_line(message: Any) -> str:
    """``message`` as one line: runs of whitespace (newlines too) become one space."""
    return " ".join(str(message).split())


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

    def config(self, make_config: Callable[..., Any], *, preset: str) -> Any:
        """``make_config(preset=preset, method=--method, **flags)``: the preset's config with
        every other flag that was set on top.

        Raises:
          ConfigError: an invalid value or combination (a usage error).
        """
        method = self["method"].value
        return make_config(preset=preset, method=method, **self.given(exclude=["method"]))
