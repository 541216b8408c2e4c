"""Metric rows as TensorBoard scalars (``--tensorboard``), for people who watch runs there.

``metrics.jsonl`` stays the source of truth; this writes the same rows again as scalars
under ``<run_dir>/tensorboard`` with `tensorboardX` (an optional dependency). A per-seed list
becomes its mean over seeds (``name``) and one scalar per seed (``name/seed_3``); a
``[seed][head]`` list becomes one mean per head (``name/head_1``); a row's ``kind`` (the
few-shot experiment's ``train``/``eval``) prefixes its tags. A resumed run writes the rows
after its checkpoint again; TensorBoard shows the later value.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import numpy as np

from experiments.common.cli import RunError

FOLDER = "tensorboard"


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def scalars(record: dict, *, step_key: str, skip: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    """The ``(tag, value)`` scalars of one metric row (its step excluded)."""
    prefix = f"{record['kind']}/" if isinstance(record.get("kind"), str) else ""
    out = []
    for name, value in record.items():
        if name in (step_key, "kind", *skip):
            continue
        tag = prefix + name
        if _number(value):
            out.append((tag, float(value)))
        elif isinstance(value, list) and value and all(_number(v) for v in value):
            out.append((tag, float(np.mean(value))))
            out.extend((f"{tag}/seed_{i}", float(v)) for i, v in enumerate(value))
        elif isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            table = np.asarray(value, dtype=float)  # [seed, head]
            if table.ndim == 2:
                out.extend((f"{tag}/head_{h}", float(m)) for h, m in enumerate(table.mean(0)))
        elif isinstance(value, list) and any(_number(v) for v in value):  # None for some seeds
            out.append((tag, float(np.mean([v for v in value if _number(v)]))))
    return out


class ScalarWriter:
    """Writes each metric row it is called with as TensorBoard scalars.

    The events file is made at the first row, so a run that writes no row (a finished one,
    perhaps read-only) makes no folder; whether `tensorboardX` is installed is checked at once.

    Args:
      run_dir: the run directory; events go to its ``tensorboard`` folder.
      step_key: the row's field that is the step (``env_steps``, ``frames``, ``step``).

    Raises:
      RunError: if `tensorboardX` is not installed.
    """

    def __init__(self, run_dir: str | os.PathLike, *, step_key: str):
        if importlib.util.find_spec("tensorboardX") is None:
            raise RunError("--tensorboard needs tensorboardX: pip install tensorboardX")
        self.step_key = step_key
        self.log_dir = Path(run_dir) / FOLDER
        self._writer = None

    def __call__(self, record: dict) -> None:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))
        step = int(record[self.step_key])
        for tag, value in scalars(record, step_key=self.step_key, skip=("seconds",)):
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
