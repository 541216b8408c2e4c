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

from collections.abc import Sequence
from pathlib import Path

from experiments.common import cli, sweep
from experiments.common.stacx_settings import CHOICES as STACX_CHOICES
from experiments.minatar.config import CHOICES, GAMES, MATCHINGS, PRESETS, AtariConfig, make_config

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

_DECIDED_BY_THE_SWEEP = ("env", *sweep.DECIDED_BY_THE_SWEEP[:-1])


def overrides_from(items: Sequence[str]) -> dict:
    """``--set``'s ``name=value`` items as settings (`experiments.common.sweep`)."""
    return sweep.overrides_from(AtariConfig, items, CHOICES, _DECIDED_BY_THE_SWEEP)


def grid(**kwargs) -> list[tuple[str, AtariConfig]]:
    """``(run name, config)`` of every run of the sweep (`experiments.common.sweep.grid`)."""
    return sweep.grid(make_config, game_field="env", **kwargs)


def main(argv: Sequence[str]) -> list[str]:
    """Runs (or lists) the sweep; returns the names of the runs trained by this call.

    Raises:
      cli.UsageError, ConfigError: bad flags or settings (checked for every run first).
      runs.RunDirError: a ``--root`` or run directory that cannot be used.
      runs.NonFiniteError: a run went NaN or infinite.
    """
    CLI.parse(argv)
    root = Path(CLI.required(FLAGS["root"], "the folder of the sweep's run directories"))
    plan = grid(
        games=FLAGS.games,
        target_optimizers=FLAGS.target_optimizers,
        matchings=FLAGS.matchings,
        bootstrap_steps=sweep.bootstrap_steps_from(FLAGS.bootstrap_steps),
        preset=FLAGS.preset,
        overrides=overrides_from(FLAGS.set),
    )
    todo = sweep.plan(root, plan, dry_run=FLAGS.dry_run)
    if not todo:
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
