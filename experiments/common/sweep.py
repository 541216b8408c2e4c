"""The ablation grid of the STACX / BMG experiments (MinAtar and the real ALE), shared by
their ``sweep`` commands: STACX and BMG over target optimizers x matchings x L for each
game, the ``--set`` overrides, and each run directory's state."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from experiments.common import cli, runs
from experiments.common.stacx_settings import BMG_ONLY_FIELDS, CHOICES, MATCHINGS

DECIDED_BY_THE_SWEEP = ("method", "target_optimizer", "matching", "bootstrap_steps", "seed")


def command(program: str, doc: str | None, *, games: Sequence[str], games_help: str, presets):
    """The `cli.Cli` of a sweep command with the flags every sweep takes: ``--root``, the
    grid (``--games``, ``--target_optimizers``, ``--matchings``, ``--bootstrap_steps``,
    ``--stacx``), ``--preset``, ``--set``, ``--only``, ``--dry_run`` and ``--quiet`` (read by
    `todo_from_flags`)."""
    command = cli.Cli(program, doc)
    command.string("root", None, "Folder of the sweep's run directories.")
    command.string_list("games", list(games), games_help)
    optimizers = list(CHOICES["target_optimizer"])
    command.string_list("target_optimizers", optimizers, "BMG target optimizers.")
    command.string_list("matchings", list(MATCHINGS), "BMG matching functions.")
    command.string_list("bootstrap_steps", ["1", "2", "4"], "BMG bootstrap steps L.")
    command.boolean("stacx", True, "Include the STACX baseline of each game.")
    command.enum("preset", "quick", presets, "Preset of every run.")
    command.string_list("set", [], "Overrides for every run: name=value,name=value.")
    only = "Train only the run of this index in the list (0-based): one cluster task per run."
    command.integer("only", None, only, lower_bound=0)
    command.boolean("dry_run", False, "List the runs and their state; train nothing.")
    command.boolean("quiet", False, "No progress bars.")
    return command


def todo_from_flags(
    command: cli.Cli,
    make_grid: Callable[..., list[tuple[str, Any]]],
    *,
    config_cls: type,
    choices: Mapping,
    decided: Sequence[str],
    check_game: Callable[[str], None],
) -> tuple[Path, list[tuple[str, Any]]]:
    """The sweep's folder and the runs still to train, from the `command`'s flags (parsed).

    ``make_grid(games=..., target_optimizers=..., ..., overrides=..., stacx=...)`` lists the
    runs (`grid`'s arguments but ``make_config`` and ``game_field``); with ``--only=I`` the
    I-th alone is kept. ``check_game(name)`` raises a one-line ``ValueError`` for a game the
    experiment does not have. Prints the plan (`plan`).

    Raises:
      cli.UsageError, ConfigError: bad flags or settings (checked for every run first).
      runs.RunDirError: a ``--root`` or run directory that cannot be used.
    """
    flags = command.flags
    root = Path(command.required(flags["root"], "the folder of the sweep's run directories"))
    for game in flags.games:
        try:
            check_game(game)
        except ValueError as e:
            raise cli.UsageError(f"--games: {e}") from None
    listed = make_grid(
        games=flags.games,
        target_optimizers=flags.target_optimizers,
        matchings=flags.matchings,
        bootstrap_steps=bootstrap_steps_from(flags.bootstrap_steps),
        preset=flags.preset,
        overrides=overrides_from(config_cls, flags.set, choices, decided),
        stacx=flags.stacx,
    )
    if flags.only is not None:
        if flags.only >= len(listed):
            raise cli.UsageError(f"--only={flags.only}: the sweep has {len(listed)} runs (0-based)")
        listed = [listed[flags.only]]
    return root, plan(root, listed, dry_run=flags.dry_run)


def train_all(root: Path, todo: list[tuple[str, Any]], train: Callable[[Any, Path], Any]):
    """Trains each of ``todo`` with ``train(config, run_dir)``, one after another; returns
    their names."""
    for i, (name, config) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name}", flush=True)
        train(config, root / name)
    return [name for name, _ in todo]


def overrides_from(
    config_cls: type, items: Sequence[str], choices: Mapping, decided: Sequence[str]
) -> dict:
    """``--set``'s ``name=value`` items as settings, each parsed as its flag would be.

    Raises:
      cli.UsageError: an item that is not ``name=value``, an unknown setting, a value of the
        wrong type, or a setting the sweep decides itself (``decided``).
    """
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise cli.UsageError(f"--set takes name=value items, got {item!r}")
        if name in decided:
            raise cli.UsageError(f"--set={name}=... is decided by the sweep; use its own flag")
        try:
            overrides[name] = cli.parse_field(config_cls, name, value, choices)
        except cli.UsageError as e:
            raise cli.UsageError(f"--set: {e}") from None
    return overrides


def bootstrap_steps_from(items: Sequence[str]) -> list[int]:
    """``--bootstrap_steps``'s items as integers.

    Raises:
      cli.UsageError: an item that is not an integer.
    """
    try:
        return [int(s) for s in items]
    except ValueError:
        raise cli.UsageError(f"--bootstrap_steps takes integers, got {','.join(items)}") from None


def run_name(config: Any) -> str:
    """``stacx`` or ``bmg-<optimizer>-<matching>-L<L>``."""
    if config.method == "stacx":
        return "stacx"
    return f"bmg-{config.target_optimizer}-{config.matching}-L{config.bootstrap_steps}"


def grid(
    make_config: Callable[..., Any],
    *,
    game_field: str,
    games: Sequence[str],
    target_optimizers: Sequence[str],
    matchings: Sequence[str],
    bootstrap_steps: Sequence[int],
    preset: str,
    overrides: dict,
    stacx: bool = True,
) -> list[tuple[str, Any]]:
    """``(run name, config)`` of every run of the sweep, in order: by game, STACX first (if
    ``stacx``), then BMG by L, target optimizer and matching. A run's name is
    ``<game>/<run_name>``.

    Raises:
      ValueError: for an invalid setting (checked for every run before any trains).
    """
    out = []
    shared = {k: v for k, v in overrides.items() if k not in BMG_ONLY_FIELDS}
    for game in games:
        if stacx:
            config = make_config(preset=preset, method="stacx", **{game_field: game}, **shared)
            out.append((f"{game}/{run_name(config)}", config))
        for steps, optimizer, matching in itertools.product(
            bootstrap_steps, target_optimizers, matchings
        ):
            config = make_config(
                preset=preset,
                method="bmg",
                target_optimizer=optimizer,
                matching=matching,
                bootstrap_steps=steps,
                **{game_field: game},
                **overrides,
            )
            out.append((f"{game}/{run_name(config)}", config))
    return out


def status(run_dir: Path, config: Any) -> str:
    """``"complete"``, ``"partial (n/N rows)"``, ``"new"``; reads and writes nothing else.

    Raises:
      runs.RunDirError: if ``run_dir`` is a file, holds another config, or its files are
        unreadable.
    """
    if not runs.check_config(run_dir, config):
        return "new"
    rows = len(runs.read_metrics(run_dir)) if (run_dir / runs.METRICS).exists() else 0
    if rows >= config.num_rows:
        return "complete"
    return f"partial ({rows}/{config.num_rows} rows)"


def plan(root: Path, runs_: list[tuple[str, Any]], *, dry_run: bool) -> list[tuple[str, Any]]:
    """Prints how many of ``runs_`` are complete (and, if ``dry_run``, each run's state);
    returns those still to run.

    Raises:
      runs.RunDirError: a ``root`` that is a file, or a run directory that cannot be used.
    """
    if root.exists() and not root.is_dir():
        raise runs.RunDirError(f"--root={root} is a file, not a folder of run directories")
    states = [(name, config, status(root / name, config)) for name, config in runs_]
    todo = [(name, config) for name, config, state in states if state != "complete"]
    runs_count = f"{len(runs_)} run{'s' if len(runs_) != 1 else ''}"
    print(f"{runs_count}, {len(runs_) - len(todo)} complete, {len(todo)} to run", flush=True)
    if dry_run:
        for name, _, state in states:
            print(f"  {name:<40} {state}")
        return []
    return todo
