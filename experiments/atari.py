r"""STACX and BMG on the MinAtar games (paper, section 5.2, at MinAtar scale).

A STACX-style V-trace actor-critic with a main and two auxiliary heads meta-learns its
per-head discount, V-trace λ and loss weights, by plain meta-gradients (``--method=stacx``,
the baseline) or by BMG (``--method=bmg``: a target ``--bootstrap_steps`` ahead, built with
an SGD or RMSProp ``--target_optimizer`` step and compared by ``--matching``). Environment
steps, rollouts, updates and meta-updates run as one jitted program, vmapped over the
environments and the seeds and sharded over the CPU cores.

  python -m experiments.atari --env=breakout --method=stacx --run_dir=runs/atari/breakout/stacx
  python -m experiments.atari --env=breakout --method=bmg --target_optimizer=rmsprop \
      --matching=kl_v --bootstrap_steps=4 --run_dir=runs/atari/breakout/bmg-rmsprop-kl_v-L4

Presets: ``paper`` (3 seeds, 10M frames), ``quick`` (2 seeds, 1M frames), ``smoke`` (a second,
for tests). Any flag overrides its preset; a BMG flag with ``--method=stacx`` is an error.
Running again with the same flags and ``--run_dir`` resumes from the last checkpoint; a
finished run is left as it is. The whole ablation grid: ``python -m experiments.atari_sweep``.
The flags live in this module's own ``FLAGS`` (not absl's global ones).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence

from absl import flags

from experiments import runs
from experiments.atari_config import (
    GAMES,
    MATCHINGS,
    METHODS,
    PRESETS,
    TARGET_OPTIMIZERS,
    AtariConfig,
    make_config,
)

FLAGS = flags.FlagValues()
_IN = dict(flag_values=FLAGS)

flags.DEFINE_enum("env", None, GAMES, "The MinAtar game (default: the preset's, breakout).", **_IN)
flags.DEFINE_enum("method", "bmg", METHODS, "stacx (meta-gradients) or bmg.", **_IN)
flags.DEFINE_enum(
    "target_optimizer", None, TARGET_OPTIMIZERS, "BMG's target step optimizer (bmg).", **_IN
)
flags.DEFINE_enum("matching", None, MATCHINGS, "BMG matching: l2, kl or kl_v (bmg).", **_IN)
flags.DEFINE_enum("preset", "quick", PRESETS, "Named preset the flags override.", **_IN)
flags.DEFINE_string("run_dir", None, "Run directory (config, metrics, checkpoints).", **_IN)
flags.DEFINE_integer(
    "num_devices", None, "CPU devices to split the seeds over (default: one per core).", **_IN
)
flags.DEFINE_bool("quiet", False, "No progress bar.", **_IN)

_HELP = {
    "seeds": "Population size (seeds run as one program).",
    "seed": "Base seed; member i uses fold_in(PRNGKey(seed), i).",
    "total_frames": "Frames (= environment steps) per seed.",
    "bootstrap_steps": "L: how far ahead the BMG target is (bmg).",
    "num_inner_steps": "K: inner steps backpropagated through.",
    "learned": "Comma-separated meta-learned hyperparameters (the mask).",
}
_OVERRIDES = [
    f.name
    for f in dataclasses.fields(AtariConfig)
    if f.name not in ("env", "method", "target_optimizer", "matching")
]
for _name in _OVERRIDES:
    _field = next(f for f in dataclasses.fields(AtariConfig) if f.name == _name)
    _define = {"int": flags.DEFINE_integer, "float": flags.DEFINE_float}.get(
        _field.type, flags.DEFINE_string
    )
    _define(
        _name,
        None,
        _HELP.get(_name, f"Override of the preset's {_name}.")
        + f" (default {_field.default!r} unless the preset sets it)",
        **_IN,
    )


def config_from_flags(values: flags.FlagValues = FLAGS) -> AtariConfig:
    """The config named by the flags: the preset's values, then every flag that was set."""
    names = [*_OVERRIDES, "env", "target_optimizer", "matching"]
    overrides = {name: values[name].value for name in names if values[name].value is not None}
    return make_config(preset=values.preset, method=values.method, **overrides)


def main(argv: Sequence[str]) -> list[dict]:
    """Parses ``argv`` (program name first) into flags, then trains into ``--run_dir``.

    Raises:
      flags.Error: unknown flags or values, stray arguments.
      ValueError: an invalid setting or combination (e.g. ``--matching`` with stacx).
      runs.RunDirError: ``--run_dir`` missing, or holding another config.
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``--run_dir``).

    Returns:
      All metric rows of the run.
    """
    FLAGS.unparse_flags()
    extra = FLAGS(list(argv))
    if len(extra) > 1:
        raise flags.Error(f"unexpected arguments: {extra[1:]}")
    if not FLAGS.run_dir:
        raise runs.RunDirError("--run_dir is required (where the config, metrics, checkpoints go)")
    config = config_from_flags()
    from experiments import population

    population.request_cpu_devices(FLAGS.num_devices)
    rows = run(config, FLAGS.run_dir, quiet=FLAGS.quiet)
    returns = [r for r in rows[-1]["episode_return"] if r is not None]
    mean = f"{sum(returns) / len(returns):.2f}" if returns else "n/a"
    print(
        f"{config.env} {describe(config)}: {rows[-1]['frames']:,} frames x {config.seeds} "
        f"seeds; mean episode return of the last row {mean}; metrics in {FLAGS.run_dir}"
    )
    return rows


def describe(config: AtariConfig) -> str:
    """A short name of the method and its BMG settings, e.g. ``bmg rmsprop kl_v L=4``."""
    if config.method == "stacx":
        return "stacx"
    return f"bmg {config.target_optimizer} {config.matching} L={config.bootstrap_steps}"


def run(config: AtariConfig, run_dir: str, *, quiet: bool = False) -> list[dict]:
    """Trains (or resumes) ``config`` in ``run_dir`` with a progress bar unless ``quiet``."""
    from experiments import atari_train
    from experiments.progress import ProgressBar

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    bar = None
    if not quiet:
        desc = f"{config.env} {describe(config)} x{config.seeds}"
        bar = ProgressBar(total=config.num_rows, desc=desc)
    try:
        return atari_train.train(config, run_dir, progress=bar)
    finally:
        if bar is not None:
            bar.close()


def _cli():
    if any(a in ("--help", "-h", "--helpfull") for a in sys.argv[1:]):
        print(__doc__)
        print(FLAGS.module_help(__name__) or FLAGS.get_help())
        return
    try:
        main(sys.argv)
    except (flags.Error, ValueError) as e:  # RunDirError is a ValueError
        sys.exit(f"error: {e}\n(see python -m experiments.atari --help)")
    except runs.NonFiniteError as e:  # the run diverged: one line, no traceback, status 1
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    _cli()
