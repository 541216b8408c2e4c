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
from pathlib import Path

from experiments.atari.config import CHOICES, PRESETS, AleConfig, make_config
from experiments.common import cli, stacx_settings, sweep

CLI = cli.Cli("experiments.atari.sweep", __doc__)
FLAGS = CLI.flags
CLI.string("root", None, "Folder of the sweep's run directories.")
CLI.string_list("games", ["ms_pacman", "breakout"], "Games (ale-py's snake_case ROM names).")
CLI.string_list(
    "target_optimizers",
    list(stacx_settings.CHOICES["target_optimizer"]),
    "BMG target optimizers.",
)
CLI.string_list("matchings", list(stacx_settings.MATCHINGS), "BMG matching functions.")
CLI.string_list("bootstrap_steps", ["1", "2", "4"], "BMG bootstrap steps L.")
CLI.boolean("stacx", True, "Include the STACX baseline of each game.")
CLI.integer("seeds", 2, "Seeds of each configuration: --seed, --seed+1, ...", lower_bound=1)
CLI.integer("seed", 0, "The first seed.", lower_bound=0)
CLI.enum("preset", "quick", PRESETS, "Preset of every run.")
CLI.string_list("set", [], "Overrides for every run: name=value,name=value.")
CLI.integer("only", None, "Train only the run of this index in the list (0-based).", lower_bound=0)
CLI.boolean("dry_run", False, "List the runs and their state; train nothing.")
CLI.boolean("quiet", False, "No progress bars.")

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
    """Runs (or lists) the sweep; returns the names of the runs trained by this call.

    Raises:
      cli.UsageError, ConfigError: bad flags or settings (checked for every run first).
      runs.RunDirError: a ``--root`` or run directory that cannot be used.
      runs.NonFiniteError: a run went NaN or infinite.
    """
    CLI.parse(argv)
    root = Path(CLI.required(FLAGS["root"], "the folder of the sweep's run directories"))
    for game in FLAGS.games:
        if game not in CHOICES["game"]:
            raise cli.UsageError(
                f"--games: unknown Atari game {game!r} (snake_case, e.g. ms_pacman)"
            )
    plan = grid(
        seeds=range(FLAGS.seed, FLAGS.seed + FLAGS.seeds),
        games=FLAGS.games,
        target_optimizers=FLAGS.target_optimizers,
        matchings=FLAGS.matchings,
        bootstrap_steps=sweep.bootstrap_steps_from(FLAGS.bootstrap_steps),
        preset=FLAGS.preset,
        overrides=sweep.overrides_from(AleConfig, FLAGS.set, CHOICES, _DECIDED_BY_THE_SWEEP),
        stacx=FLAGS.stacx,
    )
    if FLAGS.only is not None:
        if FLAGS.only >= len(plan):
            raise cli.UsageError(f"--only={FLAGS.only}: the sweep has {len(plan)} runs (0-based)")
        plan = [plan[FLAGS.only]]
    todo = sweep.plan(root, plan, dry_run=FLAGS.dry_run)
    from experiments.atari import __main__ as atari

    for i, (name, config) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name}", flush=True)
        atari.run(config, root / name, quiet=FLAGS.quiet)
    return [name for name, _ in todo]


if __name__ == "__main__":
    CLI.run(main)
