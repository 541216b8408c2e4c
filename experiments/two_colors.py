r"""The two-colors experiment of the paper (section 5.1): A2C, MG and BMG over many seeds.

An actor-critic learns in a non-stationary 5x5 grid world whose two objects swap rewards every
100,000 steps; MG and BMG meta-learn its entropy-regularisation weight ε online. All seeds run
as one vmapped program, sharded over the machine's devices (every CPU core is a device).

  python -m experiments.two_colors --method=bmg --preset=quick --run_dir=runs/tc/bmg
  python -m experiments.two_colors --method=mg --preset=quick --run_dir=runs/tc/mg
  python -m experiments.two_colors --method=a2c --preset=quick --run_dir=runs/tc/a2c
  python -m experiments.plot --run_dirs=runs/tc/a2c,runs/tc/mg,runs/tc/bmg --out=runs/tc/fig

Presets: ``paper`` (50 seeds, 6.4M steps, BMG K=7 L=9, MG K=15), ``lifetime`` (the paper's
6.4M steps with 10 seeds: the README's figure and table), ``quick`` (10 seeds, 819,200 steps:
each agent learns and BMG's ε moves, but too short for the paper's comparison), ``smoke``
(seconds, for tests). Any flag overrides its preset; a flag the method does not use
(``--bootstrap_steps`` with ``--method=mg``) is an error. Running again with the same flags
and ``--run_dir`` resumes from the last checkpoint; a finished run is left as it is. A run
that goes NaN or infinite stops with one line naming the seed, row and quantity (exit status
1), keeps its last good checkpoint and writes ``fault.json``, which stops later runs in that
directory.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

from absl import app, flags

from experiments import population, runs, two_colors_train
from experiments.progress import ProgressBar
from experiments.two_colors_config import (
    MATCHINGS,
    METHODS,
    PRESETS,
    TwoColorsConfig,
    make_config,
)

_METHOD = flags.DEFINE_enum("method", "bmg", METHODS, "a2c (fixed ε), mg or bmg.")
_PRESET = flags.DEFINE_enum("preset", "quick", PRESETS, "Named preset the flags override.")
_RUN_DIR = flags.DEFINE_string("run_dir", None, "Run directory (config, metrics, checkpoints).")
_DEVICES = flags.DEFINE_integer(
    "num_devices", None, "CPU devices to split the seeds over (default: one per core)."
)
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bar.")

_HELP = {
    "seeds": "Population size (seeds run as one program).",
    "seed": "Base seed; member i uses fold_in(PRNGKey(seed), i).",
    "total_steps": "Environment steps per seed.",
    "num_inner_steps": "K: inner steps backpropagated through (mg, bmg).",
    "bootstrap_steps": "L: how far ahead the BMG target is (bmg).",
    "matching": f"BMG matching function: one of {MATCHINGS}.",
}

_OVERRIDES = {}
for _field in dataclasses.fields(TwoColorsConfig):
    if _field.name == "method":
        continue
    _define = {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}
    _kind = {"int": int, "float": float, "str": str}[_field.type]
    _OVERRIDES[_field.name] = _define[_kind](
        _field.name,
        None,
        _HELP.get(_field.name, f"Override of the preset's {_field.name}.")
        + f" (default {_field.default!r} unless the preset sets it)",
    )


def config_from_flags() -> TwoColorsConfig:
    """The config named by the flags: the preset's values, then every flag that was set."""
    overrides = {name: flag.value for name, flag in _OVERRIDES.items() if flag.value is not None}
    return make_config(preset=_PRESET.value, method=_METHOD.value, **overrides)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _RUN_DIR.value is None:
        raise app.UsageError("--run_dir is required (where the config, metrics and checkpoints go)")
    try:
        config = config_from_flags()
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    population.request_cpu_devices(_DEVICES.value)
    bar = (
        None
        if _QUIET.value
        else ProgressBar(total=config.num_rows, desc=f"{config.method} x{config.seeds}")
    )
    try:
        rows = two_colors_train.train(config, _RUN_DIR.value, progress=bar)
    except runs.RunDirError as e:
        raise app.UsageError(str(e)) from e
    except runs.NonFiniteError as e:  # the run diverged: one line, no traceback, status 1
        sys.exit(f"error: {e}")
    finally:
        if bar is not None:
            bar.close()
    last = rows[-1]
    mean_return = sum(last["cumulative_reward"]) / len(last["cumulative_reward"])
    print(
        f"{config.method}: {last['env_steps']:,} steps x {config.seeds} seeds; "
        f"mean total return {mean_return:.1f}; metrics in {_RUN_DIR.value}"
    )


if __name__ == "__main__":
    app.run(main)
