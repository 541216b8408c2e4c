"""Checks shared by the experiments' config dataclasses (called from ``__post_init__``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def check_counts_and_seed(config: Any, counts: Iterable[str], fail: Callable[[str], None]) -> None:
    """Calls ``fail(message)`` for the first field of ``counts`` that is not an integer >= 1
    (booleans are not integers here), and for a ``seed`` outside ``[0, 2**32)``."""
    for name in counts:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{name} must be an integer >= 1, got {value!r}")
    if not 0 <= config.seed < 2**32:
        fail(f"seed must be in [0, 2**32), got {config.seed}")
