"""MAML and BMG few-shot learning (paper, section 6): ``python -m experiments.fewshot``.

Examples::

    python -m experiments.fewshot --task=sinusoid --method=bmg --preset=quick --run_dir=runs/sin_bmg
    python -m experiments.fewshot --task=digits --method=maml --shots=5 --run_dir=runs/dig_maml
    python -m experiments.fewshot --task=omniglot --data_dir=path/to/omniglot --run_dir=runs/omni

The preset (``paper``, ``quick``, ``smoke``) gives a complete `Config` for the task; flags
that are set override it (every field of `Config` is a flag). ``--run_dir`` is required;
rerunning with the same directory resumes from its checkpoint, and a finished run is left as
it is (nothing is written). Bad flags or settings are one line on stderr with exit status 2;
a run directory or data directory that cannot be used, or a run that went NaN, one line with
status 1. The flags live in this module's own ``FLAGS`` (not absl's global one), so that
other experiments can define flags of the same names.
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments.common import cli
from experiments.fewshot import config as config_lib
from experiments.fewshot.data.episodes import DataError

CLI = cli.Cli("experiments.fewshot", __doc__)
FLAGS = CLI.flags
CLI.enum("preset", "quick", config_lib.PRESETS, "Named configuration.")
CLI.string("run_dir", None, "Run directory (required): config, metrics, checkpoints.")
CLI.boolean("tensorboard", False, "Also write the records as TensorBoard scalars.")
_CONFIG = CLI.config_flags(
    config_lib.Config, choices=config_lib.CHOICES, defaults={"method": "maml"}
)
_BMG_ONLY = ("bootstrap_steps", "matching", "target_lr", "target_optimizer")


def config_from_flags() -> config_lib.Config:
    """The preset of ``--preset`` and ``--task`` with the flags that were set applied.

    Raises:
      ConfigError: a missing ``--task``, a BMG-only flag with ``--method=maml``, or an
        invalid resulting config.
    """
    task = CLI.required(_CONFIG["task"], f"one of {', '.join(config_lib.TASKS)}")
    method = FLAGS.method
    overrides = _CONFIG.given(exclude=["task", "method"])
    if method == "maml":
        given = [f"--{name}" for name in _BMG_ONLY if name in overrides]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise config_lib.ConfigError(f"{', '.join(given)} only {verb} to --method=bmg")
    return config_lib.preset(FLAGS.preset, task, method=method, **overrides)


def main(argv: Sequence[str]):
    """Parses ``argv`` (program name first) into flags, then trains into ``--run_dir``.

    Returns:
      The evaluation records of the run.

    Raises:
      cli.UsageError, ConfigError: bad flags or an invalid config (nothing is written).
      runs.RunDirError: ``--run_dir`` cannot be used (a file, read-only, corrupt files, or
        holding another config).
      DataError: the few-shot data is missing or too small.
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``--run_dir``).
    """
    CLI.parse(argv)
    run_dir = CLI.required(FLAGS["run_dir"], "nothing is written elsewhere")
    config = config_from_flags()
    from experiments.common.progress import feedback
    from experiments.fewshot import train  # imports JAX

    shown = dict(quiet=True, tensorboard=FLAGS.tensorboard, step_key="step")  # it logs lines
    with feedback(run_dir, total=config.meta_steps, desc="", **shown) as kwargs:
        return train.run(config, run_dir, on_record=kwargs["on_row"])


if __name__ == "__main__":
    CLI.run(main, runtime_errors=(DataError,))
