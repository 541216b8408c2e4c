"""Checks shared by the experiments' config dataclasses (called from ``__post_init__``).

`check_fields` runs the checks every config needs in one call and returns the config's
``fail(message)`` callable (it raises a `ConfigError` with the config's prefix) for the checks
that only one config has, so the three experiments word their errors alike without repeating
them. A command line reports a `ConfigError` as a usage error (exit status 2,
see `experiments.common.cli`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

Fail = Callable[[str], None]


class ConfigError(ValueError):
    """An invalid setting or combination of settings of an experiment."""


def check_choices(config: Any, choices: Mapping[str, Sequence[str]], fail: Fail) -> None:
    """Calls ``fail`` for the first field named in ``choices`` whose value is not allowed."""
    for name, allowed in choices.items():
        value = getattr(config, name)
        if value not in allowed:
            fail(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_finite(config: Any, fail: Fail) -> None:
    """Calls ``fail`` for the first float field (or float in a tuple field) that is NaN or
    infinite: every float setting of a config must be a number."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                fail(f"{field.name} must be finite, got {value}")


def check_counts_and_seed(config: Any, counts: Iterable[str], fail: Fail) -> None:
    """Calls ``fail(message)`` for the first field of ``counts`` that is not an integer >= 1
    (booleans are not integers here), and for a ``seed`` outside ``[0, 2**32)``."""
    for name in counts:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{name} must be an integer >= 1, got {value!r}")
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        fail(f"seed must be an integer in [0, 2**32), got {seed!r}")


def check_positive(config: Any, names: Iterable[str], fail: Fail) -> None:
    """Calls ``fail`` for the first field of ``names`` that is not > 0."""
    for name in names:
        if not getattr(config, name) > 0:
            fail(f"{name} must be > 0, got {getattr(config, name)}")


def check_non_negative(config: Any, names: Iterable[str], fail: Fail) -> None:
    """Calls ``fail`` for the first field of ``names`` that is not >= 0."""
    for name in names:
        if not getattr(config, name) >= 0:
            fail(f"{name} must be >= 0, got {getattr(config, name)}")


def check_interval(
    config: Any,
    names: Iterable[str],
    low: float,
    high: float,
    fail: Fail,
    *,
    closed: str = "both",
) -> None:
    """Calls ``fail`` for the first field of ``names`` outside an interval from ``low`` to
    ``high``; ``closed`` says which ends belong to it: ``both``, ``left`` ([low, high)),
    ``right`` ((low, high]) or ``neither``."""
    left, right = closed in ("both", "left"), closed in ("both", "right")
    shown = f"{'[' if left else '('}{low:g}, {high:g}{']' if right else ')'}"
    for name in names:
        value = getattr(config, name)
        above = value >= low if left else value > low
        below = value <= high if right else value < high
        if not (above and below):
            fail(f"{name} must be in {shown}, got {value}")


def check_fields(
    config: Any,
    prefix: str,
    *,
    choices: Mapping[str, Sequence[str]],
    counts: Iterable[str],
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
    unit: Iterable[str] = (),
    unit_left: Iterable[str] = (),
) -> Fail:
    """Checks ``config`` (from its ``__post_init__``): the ``choices``, every float finite,
    ``counts`` integers >= 1 and ``seed`` in ``[0, 2**32)``, ``positive`` > 0, ``non_negative``
    >= 0, ``unit`` in [0, 1] and ``unit_left`` in [0, 1).

    Returns:
      ``fail(message)``, which raises ``ConfigError(prefix + message)``, for the config's own
      further checks.

    Raises:
      ConfigError: for the first setting that fails a check.
    """

    def fail(message: str) -> None:
        raise ConfigError(f"{prefix}{message}")

    check_choices(config, choices, fail)
    check_finite(config, fail)
    check_counts_and_seed(config, counts, fail)
    check_positive(config, positive, fail)
    check_non_negative(config, non_negative, fail)
    check_interval(config, unit, 0.0, 1.0, fail)
    check_interval(config, unit_left, 0.0, 1.0, fail, closed="left")
    return fail
