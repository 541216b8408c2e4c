r"""The paper's Atari ablation grid on MinAtar: STACX and BMG over {SGD, RMSProp} target
optimizers x {L2, KL, KL&V} matching x L in {1, 2, 4}, for each game.

  python -m experiments.minatar.sweep --root=runs/atari --games=breakout,space_invaders
  python -m experiments.minatar.plot --root=runs/atari --out=runs/atari/ablation

Each run goes to ``<root>/<game>/stacx`` or ``<root>/<game>/bmg-<optimizer>-<matching>-L<L>``.
Runs already complete are skipped, unfinished ones resume from their checkpoint, so the same
command continues an interrupted sweep. The order is by game, STACX first, then the BMG
configurations; ``--dry_run`` lists the runs and their state without training. Flags of
`experiments.minatar` that are not BMG-specific (``--seeds``, ``--total_frames``, ...) pass
through to every run with ``--set=name=value,...``. Every setting of every run is checked
before anything trains: bad flags or settings are one line on stderr with exit status 2; a
``--root`` or run directory that cannot be used, one line with status 1.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from experiments.common import cli, runs
from experiments.common.stacx_settings import CHOICES as STACX_CHOICES
from experiments.minatar.config import (
    BMG_ONLY_FIELDS,
    CHOICES,
    GAMES,
    MATCHINGS,
    PRESETS,
    AtariConfig,
    make_config,
)

TARGET_OPTIMIZERS = STACX_CHOICES["target_optimizer"]

CLI = cli.Cli("experiments.minatar.sweep", __doc__)
FLAGS = CLI.flags
CLI.string("root", None, "Folder of the sweep's run directories.")
CLI.string_list("games", ["breakout", "space_invaders"], f"Games, from {', '.join(GAMES)}.")
CLI.string_list("target_optimizers", list(TARGET_OPTIMIZERS), "BMG target optimizers.")
CLI.string_list("matchings", list(MATCHINGS), "BMG matching functions.")
CLI.string_list("bootstrap_steps", ["1", "2", "4"], "BMG bootstrap steps L.")
CLI.enum("preset", "quick", PRESETS, "Preset of every run.")
CLI.string_list("set", [], "Overrides for every run: name=value,name=value.")
CLI.boolean("dry_run", False, "List the runs and their state; train nothing.")
CLI.boolean("quiet", False, "No progress bars.")
CLI.boolean("tensorboard", False, "Also write each run's rows as TensorBoard scalars.")

_DECIDED_BY_THE_SWEEP = ("env", "method", "target_optimizer", "matching", "bootstrap_steps")


def overrides_from(items: Sequence[str]) -> dict:
    """``--set``'s ``name=value`` items as settings, each parsed as its flag would be.

    Raises:
      cli.UsageError: an item that is not ``name=value``, an unknown setting, a value of the
        wrong type, or a setting the sweep decides itself.
    """
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise cli.UsageError(f"--set takes name=value items, got {item!r}")
        if name in _DECIDED_BY_THE_SWEEP:
            raise cli.UsageError(f"--set={name}=... is decided by the sweep; use its own flag")
        try:
            overrides[name] = cli.parse_field(AtariConfig, name, value, CHOICES)
        except cli.UsageError as e:
            raise cli.UsageError(f"--set: {e}") from None
    return overrides


def grid(
    *,
    games: Sequence[str],
    target_optimizers: Sequence[str],
    matchings: Sequence[str],
    bootstrap_steps: Sequence[int],
    preset: str,
    overrides: dict,
) -> list[tuple[str, AtariConfig]]:
    """``(run name, config)`` of every run of the sweep, in order.

    Raises:
      ValueError: for an invalid setting (checked for every run before any trains).
    """
    out = []
    for game in games:
        shared = {k: v for k, v in overrides.items() if k not in BMG_ONLY_FIELDS}
        out.append(
            (f"{game}/stacx", make_config(preset=preset, method="stacx", env=game, **shared))
        )
        for steps, optimizer, matching in itertools.product(
            bootstrap_steps, target_optimizers, matchings
        ):
            config = make_config(
                preset=preset,
                method="bmg",
                env=game,
                target_optimizer=optimizer,
                matching=matching,
                bootstrap_steps=steps,
                **overrides,
            )
            out.append((f"{game}/bmg-{optimizer}-{matching}-L{steps}", config))
    return out


def status(run_dir: Path, config: AtariConfig) -> str:
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


def main(argv: Sequence[str]) -> list[str]:
    """Runs (or lists) the sweep; returns the names of the runs trained by this call.

    Raises:
      cli.UsageError, ConfigError: bad flags or settings (checked for every run first).
      runs.RunDirError: a ``--root`` or run directory that cannot be used.
      runs.NonFiniteError: a run went NaN or infinite.
    """
    CLI.parse(argv)
    root = Path(CLI.required(FLAGS["root"], "the folder of the sweep's run directories"))
    overrides = overrides_from(FLAGS.set)
    try:
        steps = [int(s) for s in FLAGS.bootstrap_steps]
    except ValueError:
        raise cli.UsageError(
            f"--bootstrap_steps takes integers, got {','.join(FLAGS.bootstrap_steps)}"
        ) from None
    plan = grid(
        games=FLAGS.games,
        target_optimizers=FLAGS.target_optimizers,
        matchings=FLAGS.matchings,
        bootstrap_steps=steps,
        preset=FLAGS.preset,
        overrides=overrides,
    )
    if root.exists() and not root.is_dir():
        raise runs.RunDirError(f"--root={root} is a file, not a folder of run directories")
    states = [(name, config, status(root / name, config)) for name, config in plan]
    todo = [(name, config) for name, config, state in states if state != "complete"]
    print(f"{len(plan)} runs, {len(plan) - len(todo)} complete, {len(todo)} to run", flush=True)
    if FLAGS.dry_run:
        for name, _, state in states:
            print(f"  {name:<36} {state}")
        return []
    from experiments.common import population
    from experiments.minatar import __main__ as atari

    population.request_cpu_devices()
    for i, (name, config) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name}", flush=True)
        atari.run(config, str(root / name), quiet=FLAGS.quiet, tensorboard=FLAGS.tensorboard)
    return [name for name, _ in todo]


if __name__ == "__main__":
    CLI.run(main)
