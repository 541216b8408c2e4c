r"""The two-colors experiment of the paper (section 5.1): A2C, MG and BMG over many seeds.

An actor-critic learns in a non-stationary 5x5 grid world whose two objects swap rewards every
100,000 steps; MG and BMG meta-learn its entropy-regularisation weight ε online. All seeds run
as one vmapped program, sharded over the machine's devices (every CPU core is a device).

  python -m experiments.two_colors --method=bmg --preset=quick --run_dir=runs/tc/bmg
  python -m experiments.two_colors --method=mg --preset=quick --run_dir=runs/tc/mg
  python -m experiments.two_colors --method=a2c --preset=quick --run_dir=runs/tc/a2c
  python -m experiments.two_colors.plot --run_dirs=runs/tc/a2c,runs/tc/mg,runs/tc/bmg \
      --out=runs/tc/fig

Presets: ``paper`` (50 seeds, 6.4M steps, BMG K=7 L=9, MG K=15), ``lifetime`` (the paper's
6.4M steps with 10 seeds: the README's figure and table), ``quick`` (10 seeds, 819,200 steps:
each agent learns and BMG's ε moves, but too short for the paper's comparison), ``smoke``
(seconds, for tests). Any flag overrides its preset; a flag the method does not use
(``--bootstrap_steps`` with ``--method=mg``) is an error. Running again with the same flags
and ``--run_dir`` resumes from the last checkpoint; a finished run is left as it is (nothing
is written, so it may be read-only). A run that goes NaN or infinite stops with one line
naming the seed, row and quantity (exit status 1), keeps its last good checkpoint and writes
``fault.json``, which stops later runs in that directory. Bad flags or settings are one line
on stderr with exit status 2; a run directory that cannot be used, one line with status 1.
"""

from __future__ import annotations

import logging

from experiments.common import cli
from experiments.two_colors.config import CHOICES, PRESETS, TwoColorsConfig, make_config

CLI = cli.Cli("experiments.two_colors", __doc__)
_PRESET = CLI.enum("preset", "quick", PRESETS, "Named preset the flags override.")
_RUN_DIR = CLI.string("run_dir", None, "Run directory (config, metrics, checkpoints).")
CLI.run_flags()
_QUIET = CLI.boolean("quiet", False, "No progress bar.")
_TENSORBOARD = CLI.boolean(
    "tensorboard", False, "Also write the rows as TensorBoard scalars (needs tensorboardX)."
)
_CONFIG = CLI.config_flags(TwoColorsConfig, choices=CHOICES, defaults={"method": "bmg"})


def config_from_flags() -> TwoColorsConfig:
    """The config named by the flags: the preset's values, then every flag that was set.

    Raises:
      ConfigError: an invalid value or combination (a usage error).
    """
    return _CONFIG.config(make_config, preset=_PRESET.value)


def main(argv: list[str]) -> list[dict]:
    """Parses ``argv`` (program name first) into flags, then trains into ``--run_dir``.

    Raises:
      cli.UsageError, ConfigError: bad flags or an invalid config (nothing is written).
      runs.RunDirError: ``--run_dir`` cannot be used (a file, read-only, corrupt files).
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``--run_dir``).

    Returns:
      All metric rows of the run.
    """
    CLI.parse(argv)
    run_dir = CLI.required(_RUN_DIR, "where the config, metrics and checkpoints go")
    config = config_from_flags()
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    CLI.start_jax()
    from experiments.common import distributed
    from experiments.common.progress import feedback
    from experiments.two_colors import train as two_colors_train

    desc = f"{config.method} x{config.seeds}"
    shown = dict(quiet=_QUIET.value, tensorboard=_TENSORBOARD.value)
    with feedback(run_dir, total=config.num_rows, desc=desc, **shown) as kwargs:
        rows = two_colors_train.train(config, run_dir, **kwargs)
    if not distributed.is_writer():  # process 0 reports for all
        return rows
    last = rows[-1]
    mean_return = sum(last["cumulative_reward"]) / len(last["cumulative_reward"])
    print(
        f"{config.method}: {last['env_steps']:,} steps x {config.seeds} seeds; "
        f"mean total return {mean_return:.1f}; metrics in {run_dir}"
    )
    return rows


if __name__ == "__main__":
    CLI.run(main)
