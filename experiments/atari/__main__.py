r"""STACX and BMG on the real Arcade Learning Environment (paper, section 5.2).

The STACX-style V-trace agent of the MinAtar experiment, on ale-py's emulators stepped by
actor threads on the host (the Sebulba split): the learner runs one jitted meta-step per
segment of K + L − 1 rollouts the actors deliver, and publishes its parameters back to them.
``--method=stacx`` is plain meta-gradients, ``--method=bmg`` bootstraps a target
``--bootstrap_steps`` ahead with an SGD or RMSProp ``--target_optimizer`` and compares it
by ``--matching``.

  python -m experiments.atari --game=ms_pacman --method=bmg --preset=smoke --run_dir=DIR
  python -m experiments.atari --game=ms_pacman --method=stacx --preset=quick --seeds=2 \
      --run_dir=runs/ale/ms_pacman/stacx

Presets: ``paper`` (200M frames, IMPALA's batch), ``quick`` (500k frames, the Nature torso),
``smoke`` (a few thousand frames, for tests); any flag overrides its preset. One learner
over several hosts: start the same command on each with ``--distributed`` (see
`experiments.atari.train`). ``--seeds=N``
trains seeds ``--seed`` .. ``--seed``+N−1 one after another, each in ``DIR/seed_<s>`` (a run
directory of its own: config, metrics, checkpoints). Running again with the same flags
resumes each seed from its last checkpoint (the learner and meta-learner exactly; new
emulators, see `experiments.atari.train`); a finished seed is left as it is. The whole
ablation grid: ``python -m experiments.atari.sweep``; figures: ``python -m
experiments.atari.plot``. Bad flags, an unknown game or a missing ROM are one line on stderr
with exit status 2; a run directory that cannot be used, or a run that went NaN, one line
with status 1.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from experiments.atari.config import CHOICES, PRESETS, AleConfig, make_config
from experiments.common import cli

CLI = cli.Cli("experiments.atari", __doc__)
FLAGS = CLI.flags
CLI.enum("preset", "quick", PRESETS, "Named preset the flags override.")
CLI.string("run_dir", None, "Directory of the seeds' run directories (DIR/seed_<s>).")
CLI.integer("seeds", 1, "Seeds to train, one after another: --seed, --seed+1, ...", lower_bound=1)
CLI.boolean("quiet", False, "No progress bar.")
CLI.run_flags(num_devices=False)
_CONFIG = CLI.config_flags(AleConfig, choices=CHOICES, defaults={"method": "bmg"})


def config_from_flags() -> AleConfig:
    """The config named by the flags of the last `main` (`ConfigFlags.config`)."""
    return _CONFIG.config(make_config, preset=FLAGS.preset)


def seed_dir(run_dir: str | Path, seed: int) -> Path:
    """The run directory of one seed."""
    return Path(run_dir) / f"seed_{seed}"


def main(argv: Sequence[str]) -> dict[int, list[dict]]:
    """Parses ``argv`` (program name first) into flags, then trains each seed.

    Raises:
      cli.UsageError, ConfigError: bad flags, an invalid setting or combination, an unknown
        game or a missing ROM; nothing is written.
      runs.RunDirError: a run directory cannot be used.
      runs.NonFiniteError: a run went NaN or infinite (now, or earlier).

    Returns:
      ``{seed: all metric rows of its run}``.
    """
    CLI.parse(argv)
    run_dir = CLI.required(FLAGS["run_dir"], "where the seeds' run directories go")
    config = config_from_flags()
    # CPU runs ask for one device per learner share (no effect on GPUs); --distributed joins
    # the other processes of a multi-host run.
    CLI.start_jax(cpu_devices=config.learner_devices)
    from experiments.common import distributed

    seeds = range(config.seed, config.seed + FLAGS.seeds)
    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    results = {}
    for member in configs:
        rows = run(member, seed_dir(run_dir, member.seed), quiet=FLAGS.quiet)
        results[member.seed] = rows
        if not distributed.is_writer():  # process 0 reports for all
            continue
        last = [r["episode_return"] for r in rows[-10:] if r["episode_return"] is not None]
        mean = f"{sum(last) / len(last):,.1f}" if last else "n/a (no game ended)"
        print(
            f"{config.game} {config.describe()} seed {member.seed}: {rows[-1]['frames']:,} "
            f"frames; mean episode return of the last {len(rows[-10:])} rows {mean}; "
            f"metrics in {seed_dir(run_dir, member.seed)}"
        )
    return results


def run(config: AleConfig, run_dir: str | Path, *, quiet: bool = False) -> list[dict]:
    """Trains (or resumes) one seed's ``config`` in ``run_dir`` with a progress bar (frames/s
    and the last row's mean episode return) unless ``quiet``."""
    from experiments.atari import train
    from experiments.common.progress import feedback

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    desc = f"{config.game} {config.describe()} seed {config.seed}"

    def note(record):
        value = record.get("episode_return")
        return None if value is None else f"return {value:,.0f}"

    with feedback(
        run_dir, total=config.num_rows, desc=desc, quiet=quiet, unit="frames", note=note
    ) as kwargs:
        return train.train(config, run_dir, **kwargs)


if __name__ == "__main__":
    CLI.run(main)
