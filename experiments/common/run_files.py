"""The files of a run directory, read and written so that whatever cannot be used is a
`RunDirError` with a one-line message naming the file (never a traceback or a silent
overwrite): the directory itself, its lock, JSON and JSON-lines files, ``.npz`` checkpoints.

`experiments.common.runs` builds the run directory of the RL experiments on these (and re-exports
them); `experiments.fewshot.run_dir` that of the few-shot experiment.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any

import numpy as np


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (another config, a corrupt file)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file, so a crash leaves the old file.

    Raises:
      RunDirError: if it cannot be written.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise RunDirError(f"cannot write {path}: {e.strerror}") from None


def make_dir(run_dir: str | os.PathLike) -> Path:
    """Creates ``run_dir`` (and its parents) unless it exists; returns it as a `Path`.

    Raises:
      RunDirError: if it is a file, or cannot be created.
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path} is a file, not a run directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create the run directory {path}: {e.strerror}") from None
    return path


def read_json(path: Path, what: str = "a JSON object") -> Any:
    """The JSON object in ``path``.

    Raises:
      RunDirError: if it cannot be read or is not a JSON object (a truncated or foreign file).
    """
    try:
        value = json.loads(path.read_text())
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror}") from None
    except ValueError:  # not JSON, or not text
        value = None
    if not isinstance(value, dict):
        raise RunDirError(f"{path} is not {what} (a truncated or foreign file?)")
    return value


def lock(run_dir: Path):
    """Takes the run directory's lock for this process, or fails at once.

    The lock is an ``fcntl`` lock on ``run_dir/.lock``: the operating system releases it when
    the process ends, however it ends, so a crashed run never leaves a stale lock. Keep the
    returned file open while writing to the run directory. In a directory this process
    cannot write, the lock file is opened read-only (``flock`` does not need more), or, if
    there is none, nothing is locked: such a directory cannot be written to anyway, and
    `require_writable` stops a run that would.

    Raises:
      RunDirError: if another process holds the lock (is writing to this run).
    """
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise RunDirError(f"cannot open {path}: {e.strerror}") from None
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return contextlib.nullcontext()
        except OSError as e:
            raise RunDirError(f"cannot open {path}: {e.strerror}") from None
    handle = os.fdopen(fd, "r")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunDirError(
            f"another process is writing to {run_dir}; wait for it or stop it"
        ) from None
    return handle


def require_writable(run_dir: str | os.PathLike, files: tuple[str, ...] = ()) -> None:
    """Checks, before a run goes on, that this process can write its directory and the
    ``files`` in it that it appends to (those that exist).

    Raises:
      RunDirError: naming what is read-only.
    """
    path = Path(run_dir)
    for target in (path, *(path / name for name in files)):
        if target.exists() and not os.access(target, os.W_OK):
            raise RunDirError(
                f"{target} is read-only, so the unfinished run in {path} cannot go on there"
            )


def read_text(path: Path) -> str:
    """The text of ``path``; raises `RunDirError` if it cannot be read as text."""
    try:
        return path.read_text()
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror}") from None
    except ValueError:
        raise RunDirError(f"{path} is not text (a foreign file?)") from None


def parse_lines(path: Path, lines: list[str]) -> list[dict]:
    """``lines`` of ``path`` as JSON objects; raises `RunDirError` at the first that is not."""
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            raise RunDirError(
                f"{path}: line {number} is not a JSON object (a truncated or foreign file?)"
            )
        rows.append(row)
    return rows


def nonblank_lines(text: str) -> list[str]:
    """The lines of ``text`` that are not blank, without their newlines."""
    return [line for line in text.split("\n") if line.strip()]


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file, strictly: every line must be one.

    Raises:
      RunDirError: naming the first line that is not a JSON object, or an unreadable file.
    """
    return parse_lines(path, nonblank_lines(read_text(path)))


def read_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read at once (no pickles).

    Raises:
      RunDirError: if the file cannot be read as an ``.npz`` (empty, truncated, foreign)
        or lacks one of the ``required`` arrays.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except OSError as e:
        if e.strerror:
            raise RunDirError(f"cannot read {path}: {e.strerror}") from None
        arrays = None
    except Exception:  # noqa: BLE001  (whatever a damaged zip raises: BadZipFile, EOF, ...)
        arrays = None
    if arrays is None:
        raise RunDirError(
            f"{path} is not a readable checkpoint (empty, truncated or foreign); "
            "delete it to start the run over"
        )
    missing = [name for name in required if name not in arrays]
    if missing:
        raise RunDirError(f"{path} is not a checkpoint of this program (it has no {missing[0]})")
    return arrays


def check_leaves(path: Path, saved: list[np.ndarray], template: list[Any]) -> None:
    """Checks saved leaves against a template's number, shapes and dtypes.

    Raises:
      RunDirError: if they do not fit (a checkpoint of another run).
    """
    if len(saved) != len(template):
        raise RunDirError(
            f"{path} does not hold a state of this run's structure "
            f"({len(saved)} arrays, expected {len(template)})"
        )
    for i, (s, t) in enumerate(zip(saved, template, strict=True)):
        if s.shape != tuple(t.shape) or s.dtype != t.dtype:
            raise RunDirError(
                f"{path}: leaf {i} is {s.dtype}{list(s.shape)}, expected {t.dtype}{list(t.shape)}"
            )
