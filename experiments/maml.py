"""MAML and BMG few-shot learning (paper, section 6): ``python -m experiments.maml``.

Examples::

    python -m experiments.maml --task=sinusoid --method=bmg --preset=quick --run_dir=runs/sin_bmg
    python -m experiments.maml --task=digits --method=maml --shots=5 --run_dir=runs/dig_maml
    python -m experiments.maml --task=omniglot --data_dir=path/to/omniglot --run_dir=runs/omni

The preset (``paper``, ``quick``, ``smoke``) gives a complete `Config` for the task; flags
that are set override it. ``--run_dir`` is required; rerunning with the same directory
resumes from its checkpoint. The flags live in this module's own ``FLAGS`` (not absl's
global one), so that other experiments can define flags of the same names.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import flags

from experiments import runs
from experiments.fewshot import config as config_lib
from experiments.fewshot.episodes import DataError

FLAGS = flags.FlagValues()

_STR = dict(flag_values=FLAGS)
flags.DEFINE_enum("task", None, config_lib.TASKS, "Few-shot task family.", **_STR)
flags.DEFINE_enum("method", "maml", config_lib.METHODS, "Meta-learning method.", **_STR)
flags.DEFINE_enum("preset", "quick", config_lib.PRESETS, "Named configuration.", **_STR)
flags.DEFINE_string(
    "run_dir", None, "Run directory (required): config, metrics, checkpoints.", **_STR
)
flags.DEFINE_string("data_dir", None, "Dataset directory (omniglot, miniimagenet).", **_STR)
flags.DEFINE_integer("ways", None, "N classes per episode.", **_STR)
flags.DEFINE_integer("shots", None, "K support examples per class (points for sinusoid).", **_STR)
flags.DEFINE_integer("queries", None, "Query examples per class (points for sinusoid).", **_STR)
flags.DEFINE_integer("num_inner_steps", None, "K: inner steps backpropagated through.", **_STR)
flags.DEFINE_integer("eval_inner_steps", None, "Inner steps on meta-test tasks.", **_STR)
flags.DEFINE_integer("bootstrap_steps", None, "L (BMG only).", **_STR)
flags.DEFINE_enum("matching", None, ("kl", "mse", "l2"), "BMG matching function.", **_STR)
flags.DEFINE_float("target_lr", None, "BMG target step's SGD rate.", **_STR)
flags.DEFINE_bool("first_order", None, "Stop gradients through inner gradients.", **_STR)
flags.DEFINE_bool("learn_inner_lr", None, "Meta-learn per-parameter inner rates.", **_STR)
flags.DEFINE_float("inner_lr", None, "Inner SGD learning rate.", **_STR)
flags.DEFINE_float("meta_lr", None, "Adam learning rate of the meta-parameters.", **_STR)
flags.DEFINE_integer("meta_batch_size", None, "Tasks per meta-step.", **_STR)
flags.DEFINE_integer("meta_steps", None, "Total meta-steps.", **_STR)
flags.DEFINE_integer("chunk_size", None, "Meta-steps per jitted call.", **_STR)
flags.DEFINE_integer("eval_every", None, "Meta-steps between evaluations.", **_STR)
flags.DEFINE_integer("eval_tasks", None, "Meta-test tasks per evaluation.", **_STR)
flags.DEFINE_integer("image_size", None, "Side of resized images.", **_STR)
flags.DEFINE_enum("eval_split", None, ("test", "val"), "mini-ImageNet held-out split.", **_STR)
flags.DEFINE_integer("seed", None, "PRNG seed.", **_STR)

_OVERRIDES = (
    "data_dir", "ways", "shots", "queries", "num_inner_steps", "eval_inner_steps",
    "bootstrap_steps", "matching", "target_lr", "first_order", "learn_inner_lr", "inner_lr",
    "meta_lr", "meta_batch_size", "meta_steps", "chunk_size", "eval_every", "eval_tasks",
    "image_size", "eval_split", "seed",
)  # fmt: skip
_BMG_ONLY = ("bootstrap_steps", "matching", "target_lr")


def config_from_flags(values: flags.FlagValues) -> config_lib.Config:
    """The preset of ``--preset`` and ``--task`` with the flags that were set applied.

    Raises:
      ConfigError: a missing ``--task``, a BMG-only flag with ``--method=maml``, or an
        invalid resulting config.
    """
    if values.task is None:
        raise config_lib.ConfigError(f"--task is required: one of {config_lib.TASKS}")
    overrides = {name: values[name].value for name in _OVERRIDES if values[name].present}
    if values.method == "maml":
        given = [f"--{name}" for name in _BMG_ONLY if name in overrides]
        if given:
            raise config_lib.ConfigError(f"{', '.join(given)} only apply to --method=bmg")
    return config_lib.preset(values.preset, values.task, method=values.method, **overrides)


def main(argv: Sequence[str]):
    """Parses ``argv`` (program name first) into flags, then trains into ``--run_dir``.

    Returns:
      The evaluation records of the run.

    Raises:
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``--run_dir``).
    """
    from experiments.fewshot import train  # imports JAX; keeps --help fast

    FLAGS.unparse_flags()
    extra = FLAGS(list(argv))
    if len(extra) > 1:
        raise flags.Error(f"unexpected arguments: {extra[1:]}")
    if not FLAGS.run_dir:
        raise config_lib.ConfigError("--run_dir is required (nothing is written elsewhere)")
    config = config_from_flags(FLAGS)
    return train.run(config, FLAGS.run_dir)


def _cli():
    if any(a in ("--help", "-h", "--helpfull") for a in sys.argv[1:]):
        print(__doc__)
        print(FLAGS.module_help(__name__) or FLAGS.get_help())
        return
    try:
        main(sys.argv)
    except (flags.Error, config_lib.ConfigError, DataError, runs.RunDirError) as e:
        sys.exit(f"error: {e}\n(see python -m experiments.maml --help)")
    except runs.NonFiniteError as e:  # the run diverged: one line, no traceback, status 1
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    _cli()
