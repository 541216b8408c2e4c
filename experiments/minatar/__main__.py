r"""STACX and BMG on the MinAtar games (paper, section 5.2, at MinAtar scale).

A STACX-style V-trace actor-critic with a main and two auxiliary heads meta-learns its
per-head discount, V-trace λ and loss weights, by plain meta-gradients (``--method=stacx``,
the baseline) or by BMG (``--method=bmg``: a target ``--bootstrap_steps`` ahead, built with
an SGD or RMSProp ``--target_optimizer`` step and compared by ``--matching``). Environment
steps, rollouts, updates and meta-updates run as one jitted program, vmapped over the
environments and the seeds and sharded over the CPU cores.

  python -m experiments.minatar --env=breakout --method=stacx --run_dir=runs/atari/breakout/stacx
  python -m experiments.minatar --env=breakout --method=bmg --target_optimizer=rmsprop \
      --matching=kl_v --bootstrap_steps=4 --run_dir=runs/atari/breakout/bmg-rmsprop-kl_v-L4

Presets: ``paper`` (3 seeds, 10M frames), ``quick`` (2 seeds, 1M frames), ``smoke`` (a second,
for tests). Any flag overrides its preset; a BMG flag with ``--method=stacx`` is an error.
Running again with the same flags and ``--run_dir`` resumes from the last checkpoint; a
finished run is left as it is (nothing is written). The whole ablation grid:
``python -m experiments.minatar.sweep``. Bad flags or settings are one line on stderr with exit
status 2; a run directory that cannot be used, or a run that went NaN, one line with status
1. The flags live in this module's own ``FLAGS`` (not absl's global ones).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from experiments.common import cli
from experiments.minatar.config import CHOICES, PRESETS, AtariConfig, make_config

CLI = cli.Cli("experiments.minatar", __doc__)
FLAGS = CLI.flags
CLI.enum("preset", "quick", PRESETS, "Named preset the flags override.")
CLI.string("run_dir", None, "Run directory (config, metrics, checkpoints).")
CLI.run_flags()
CLI.boolean("quiet", False, "No progress bar.")
CLI.boolean(
    "tensorboard", False, "Also write the rows as TensorBoard scalars (needs tensorboardX)."
)
_CONFIG = CLI.config_flags(AtariConfig, choices=CHOICES, defaults={"method": "bmg"})


def config_from_flags() -> AtariConfig:
    """The config named by the flags of the last `main` (`ConfigFlags.config`)."""
    return _CONFIG.config(make_config, preset=FLAGS.preset)


def main(argv: Sequence[str]) -> list[dict]:
    """Parses ``argv`` (program name first) into flags, then trains into ``--run_dir``.

    Raises:
      cli.UsageError, ConfigError: bad flags, stray arguments, an invalid setting or
        combination (e.g. ``--matching`` with stacx); nothing is written.
      runs.RunDirError: ``--run_dir`` cannot be used (a file, read-only, corrupt files, or
        holding another config).
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``--run_dir``).

    Returns:
      All metric rows of the run.
    """
    CLI.parse(argv)
    run_dir = CLI.required(FLAGS["run_dir"], "where the config, metrics, checkpoints go")
    config = config_from_flags()
    CLI.start_jax()
    from experiments.common import distributed

    rows = run(config, run_dir, quiet=FLAGS.quiet, tensorboard=FLAGS.tensorboard)
    if not distributed.is_writer():  # process 0 reports for all
        return rows
    returns = [r for r in rows[-1]["episode_return"] if r is not None]
    mean = f"{sum(returns) / len(returns):.2f}" if returns else "n/a"
    print(
        f"{config.env} {config.describe()}: {rows[-1]['frames']:,} frames x {config.seeds} "
        f"seeds; mean episode return of the last row {mean}; metrics in {run_dir}"
    )
    return rows


def run(
    config: AtariConfig, run_dir: str, *, quiet: bool = False, tensorboard: bool = False
) -> list[dict]:
    """Trains (or resumes) ``config`` in ``run_dir`` with a progress bar unless ``quiet``,
    and TensorBoard scalars if ``tensorboard``."""
    from experiments.common.progress import feedback
    from experiments.minatar import train as atari_train

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    desc = f"{config.env} {config.describe()} x{config.seeds}"
    shown = dict(quiet=quiet, tensorboard=tensorboard, step_key="frames")
    with feedback(run_dir, total=config.num_rows, desc=desc, **shown) as kwargs:
        return atari_train.train(config, run_dir, **kwargs)


if __name__ == "__main__":
    CLI.run(main)
