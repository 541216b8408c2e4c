r"""The paper's Atari ablation grid on the real ALE: STACX and BMG over {SGD, RMSProp} target
optimizers x {L2, KL, KL&V} matching x L in {1, 2, 4}, for each game and seed.

  python -m experiments.atari.sweep --root=runs/ale --games=ms_pacman,breakout --seeds=2
  python -m experiments.atari.sweep --root=runs/ale --target_optimizers=rmsprop \
      --matchings=kl_v --set=total_frames=200000
  python -m experiments.atari.plot --root=runs/ale --out=runs/ale/ablation

Each seed's run goes to ``<root>/<game>/stacx/seed_<s>`` or
``<root>/<game>/bmg-<optimizer>-<matching>-L<L>/seed_<s>`` (the layout of ``python -m
experiments.atari --run_dir=<root>/<game>/<run>``). Complete runs are skipped, unfinished
ones resume, so the same command continues an interrupted sweep; ``--dry_run`` lists the runs
and their state. ``--only=I`` trains the I-th run of the list alone (0-based): one array task
of a cluster job per run (``docs/atari_slurm.sh``). Every setting of every run is checked
before anything trains: bad flags or settings are one line on stderr with exit status 2; a
``--root`` or run directory that cannot be used, one line with status 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from experiments.atari.config import CHOICES, PRESETS, AleConfig, make_config
from experiments.common import sweep
from experiments.envs import ale

CLI = sweep.command(
    "experiments.atari.sweep",
    __doc__,
    games=("ms_pacman", "breakout"),
    games_help="Games (ale-py's snake_case ROM names).",
    presets=PRESETS,
)
FLAGS = CLI.flags
CLI.integer("seeds", 2, "Seeds of each configuration: --seed, --seed+1, ...", lower_bound=1)
CLI.integer("seed", 0, "The first seed.", lower_bound=0)

_DECIDED_BY_THE_SWEEP = ("game", *sweep.DECIDED_BY_THE_SWEEP)


def grid(*, seeds: Sequence[int], **kwargs) -> list[tuple[str, AleConfig]]:
    """``(run name, config)`` of every seed's run: `experiments.common.sweep.grid` for each
    seed, named ``<game>/<run>/seed_<s>``, ordered by game, configuration, then seed."""
    out = []
    for name, config in sweep.grid(make_config, game_field="game", **kwargs):
        for seed in seeds:
            out.append((f"{name}/seed_{seed}", dataclasses.replace(config, seed=seed)))
    return out


def main(argv: Sequence[str]) -> list[str]:
    """Runs (or lists) the sweep (`experiments.common.sweep.todo_from_flags`); returns the
    names of the runs trained by this call."""
    CLI.parse(argv)
    seeds = range(FLAGS.seed, FLAGS.seed + FLAGS.seeds)
    root, todo = sweep.todo_from_flags(
        CLI,
        lambda **kwargs: grid(seeds=seeds, **kwargs),
        config_cls=AleConfig,
        choices=CHOICES,
        decided=_DECIDED_BY_THE_SWEEP,
        check_game=ale.check_game,
    )
    from experiments.atari import __main__ as atari

    return sweep.train_all(root, todo, lambda c, d: atari.run(c, d, quiet=FLAGS.quiet))


if __name__ == "__main__":
    CLI.run(main)
