"""A progress bar over metric rows for the training scripts (tqdm, on stderr)."""

from __future__ import annotations

import sys


class ProgressBar:
    """A tqdm bar over metric rows showing the aggregate environment steps per second.

    Call it as the ``progress`` callback of a ``train`` function:
    ``bar(rows_done, rows_total, steps_per_second or None)``. The bar appears with the first
    row trained, so a run that stops before one (a run directory that cannot be used, a run
    that is already finished) writes nothing to stderr but its own error line, if any.
    """

    def __init__(self, *, total: int, desc: str):
        self._total, self._desc, self._bar = total, desc, None

    def __call__(self, done: int, total: int, steps_per_second: float | None):
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self._total, unit="row", file=sys.stderr, mininterval=1.0, desc=self._desc
            )
        self._bar.n = done
        rate = "compiled" if steps_per_second is None else f"{steps_per_second:,.0f} env-steps/s"
        self._bar.set_postfix_str(rate, refresh=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()
