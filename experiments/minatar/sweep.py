r"""The paper's Atari ablation grid on MinAtar: STACX and BMG over {SGD, RMSProp} target
optimizers x {L2, KL, KL&V} matching x L in {1, 2, 4}, for each game.

  python -m experiments.minatar.sweep --root=runs/atari --games=breakout,space_invaders
  python -m experiments.minatar.plot --root=runs/atari --out=runs/atari/ablation

Each run goes to ``<root>/<game>/stacx`` or ``<root>/<game>/bmg-<optimizer>-<matching>-L<L>``.
Runs already complete are skipped, unfinished ones resume from their checkpoint, so the same
command continues an interrupted sweep. The order is by game, STACX first, then the BMG
configurations; ``--dry_run`` lists the runs and their state without training, ``--only=I``
trains the I-th run of the list alone (0-based: one cluster task per run). Flags of
`experiments.minatar` that are not BMG-specific (``--seeds``, ``--total_frames``, ...) pass
through to every run with ``--set=name=value,...``. Every setting of every run is checked
before anything trains: bad flags or settings are one line on stderr with exit status 2; a
``--root`` or run directory that cannot be used, one line with status 1.
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments.common import sweep
from experiments.minatar.config import CHOICES, GAMES, PRESETS, AtariConfig, make_config

GAMES_HELP = f"Games, from {', '.join(GAMES)}."
CLI = sweep.command(
    "experiments.minatar.sweep",
    __doc__,
    games=("breakout", "space_invaders"),
    games_help=GAMES_HELP,
    presets=PRESETS,
)
FLAGS = CLI.flags
CLI.boolean("tensorboard", False, "Also write each run's rows as TensorBoard scalars.")

_DECIDED_BY_THE_SWEEP = ("env", *sweep.DECIDED_BY_THE_SWEEP[:-1])


def overrides_from(items: Sequence[str]) -> dict:
    """``--set``'s ``name=value`` items as settings (`experiments.common.sweep`)."""
    return sweep.overrides_from(AtariConfig, items, CHOICES, _DECIDED_BY_THE_SWEEP)


def grid(**kwargs) -> list[tuple[str, AtariConfig]]:
    """``(run name, config)`` of every run of the sweep (`experiments.common.sweep.grid`)."""
    return sweep.grid(make_config, game_field="env", **kwargs)


def check_game(game: str) -> None:
    """Raises a one-line ``ValueError`` for a game MinAtar does not have."""
    if game not in GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; choose from {', '.join(GAMES)}")


def main(argv: Sequence[str]) -> list[str]:
    """Runs (or lists) the sweep (`experiments.common.sweep.todo_from_flags`); returns the
    names of the runs trained by this call."""
    CLI.parse(argv)
    root, todo = sweep.todo_from_flags(
        CLI,
        grid,
        config_cls=AtariConfig,
        choices=CHOICES,
        decided=_DECIDED_BY_THE_SWEEP,
        check_game=check_game,
    )
    if not todo:
        return []
    from experiments.common import population
    from experiments.minatar import __main__ as minatar

    population.request_cpu_devices()
    flags = dict(quiet=FLAGS.quiet, tensorboard=FLAGS.tensorboard)
    return sweep.train_all(root, todo, lambda c, d: minatar.run(c, str(d), **flags))


if __name__ == "__main__":
    CLI.run(main)
