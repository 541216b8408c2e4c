"""A progress bar over metric rows for the training scripts (tqdm, on stderr)."""

from __future__ import annotations

import sys


class ProgressBar:
    """A tqdm bar over metric rows showing the aggregate environment steps per second.

    Call it as the ``progress`` callback of a ``train`` function:
    ``bar(rows_done, rows_total, steps_per_second or None)``.
    """

    def __init__(self, *, total: int, desc: str):
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="row", file=sys.stderr, mininterval=1.0, desc=desc)

    def __call__(self, done: int, total: int, steps_per_second: float | None):
        self._bar.n = done
        rate = "compiled" if steps_per_second is None else f"{steps_per_second:,.0f} env-steps/s"
        self._bar.set_postfix_str(rate, refresh=True)

    def close(self):
        self._bar.close()
