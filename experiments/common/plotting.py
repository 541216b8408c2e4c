"""What the experiments' figures share: a headless pyplot, writing a figure as ``.png`` and
``.pdf``, and the ``--root``/``--out`` flags of the plots drawn from a folder of run
directories."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from experiments.common import cli


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed); imported on first use,
    so importing an experiment does not import matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: str | os.PathLike, *, dpi: int = 150, tight: bool = False) -> list[str]:
    """Writes ``fig`` to ``out.png`` and ``out.pdf`` (``out`` without extension; a ``.png`` or
    ``.pdf`` one is dropped; its folder is made), closes it, and returns the two paths.
    ``tight`` trims the margins."""
    out = Path(out)
    if out.suffix in (".png", ".pdf"):
        out = out.with_suffix("")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [str(out.with_name(out.name + suffix)) for suffix in (".png", ".pdf")]
    for path in paths:
        fig.savefig(path, dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)
    return paths


def save_named(out: str | os.PathLike, figures: dict[str, Any]) -> list[str]:
    """Writes each of ``figures`` (``{name suffix: figure}``, e.g. ``{"": main,
    "_improvement": more}``) as `save` does to ``out`` + its suffix, margins trimmed; returns
    the paths."""
    out = Path(out)
    return [
        path
        for suffix, fig in figures.items()
        for path in save(fig, out.with_name(out.name + suffix), tight=True)
    ]


def define_run_flags(command: cli.Cli, what: str) -> tuple[Any, Any, Any]:
    """The flags of a plot drawn from a folder of ``what`` run directories: ``--root``,
    ``--out`` and ``--final_fraction``; read them with `read_run_flags`."""
    help_root = f"A folder searched recursively for {what} run directories."
    return (
        command.string("root", None, help_root),
        command.string("out", None, "Output path without extension (.png and .pdf)."),
        command.real(
            "final_fraction",
            0.1,
            "The final score's window, a fraction of each run's frames (the paper's: the "
            "last 5%; short runs need more to hold finished games).",
        ),
    )


def read_run_flags(command: cli.Cli, holders: tuple[Any, Any, Any]) -> tuple[str, Path, float]:
    """The values of `define_run_flags`'s flags (parsed): the root, ``--out`` checked
    writable, and the final fraction.

    Raises:
      cli.UsageError: a missing flag, or a final fraction outside (0, 1].
      cli.RunError: ``--out`` cannot be written.
    """
    root, out, final = holders
    folder = command.required(root, "the folder of the run directories")
    if not 0 < final.value <= 1:
        raise cli.UsageError(f"--final_fraction must be in (0, 1], got {final.value}")
    path = cli.check_output(command.required(out, "the figures' path without extension"))
    return folder, path, final.value
