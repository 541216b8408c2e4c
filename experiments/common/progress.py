"""What a training call shows as it goes: a progress bar over metric rows (tqdm, on stderr)
and, with ``--tensorboard``, the rows as TensorBoard scalars."""

from __future__ import annotations

import contextlib
import os
import sys


class ProgressBar:
    """A tqdm bar over metric rows showing the aggregate environment steps per second.

    Call it as the ``progress`` callback of a ``train`` function:
    ``bar(rows_done, rows_total, steps_per_second or None)``. The bar appears with the first
    row trained, so a run that stops before one (a run directory that cannot be used, a run
    that is already finished) writes nothing to stderr but its own error line, if any.
    """

    def __init__(self, *, total: int, desc: str, unit: str = "env-steps"):
        self._total, self._desc, self._bar = total, desc, None
        self._unit, self._note = unit, ""

    def note(self, text: str | None) -> None:
        """Text shown after the rate from the next update on (say, the last episode return)."""
        self._note = f", {text}" if text else ""

    def __call__(self, done: int, total: int, steps_per_second: float | None):
        if self._bar is None:
            from tqdm import tqdm

            # A resumed run starts the bar at its checkpoint, so that the rate and the time
            # left count the rows this call trains, not those it resumed.
            self._bar = tqdm(
                total=self._total,
                initial=done - 1,
                unit="row",
                file=sys.stderr,
                mininterval=1.0,
                desc=self._desc,
            )
        self._bar.update(done - self._bar.n)
        rate = "compiled" if steps_per_second is None else f"{steps_per_second:,.0f} {self._unit}/s"
        self._bar.set_postfix_str(rate + self._note, refresh=True)

    def close(self):
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def feedback(
    run_dir: str | os.PathLike,
    *,
    total: int,
    desc: str,
    quiet: bool = False,
    tensorboard: bool = False,
    step_key: str = "env_steps",
    unit: str = "env-steps",
    note=None,
):
    """The keyword arguments ``progress`` and ``on_row`` of a ``train`` call: a progress bar
    (none if ``quiet``) and a TensorBoard writer (if ``tensorboard``), closed afterwards. In a
    multi-process run only the writing process (process 0) shows or writes either.

    ``unit`` names what the rate counts; ``note(record) -> str | None``, if given, is shown on
    the bar after each row (e.g. the row's mean episode return)."""
    from experiments.common import distributed

    shows = distributed.is_writer()
    bar = ProgressBar(total=total, desc=desc, unit=unit) if shows and not quiet else None
    writer = None
    if tensorboard and shows:
        from experiments.common.tensorboard import ScalarWriter

        writer = ScalarWriter(run_dir, step_key=step_key)
    on_row = writer
    if note is not None and bar is not None:

        def on_row(record):
            bar.note(note(record))
            if writer is not None:
                writer(record)

    try:
        yield {"progress": bar, "on_row": on_row}
    finally:
        for thing in (bar, writer):
            if thing is not None:
                thing.close()
