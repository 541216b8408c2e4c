"""The settings the MinAtar and the real-ALE experiments share: the STACX agent and its meta-
optimizer (STACX's meta-gradient or BMG).

`StacxSettings` is the base of both experiments' config dataclasses: the fields, their docs
(the flags' help), their checks, the agent's `agents.stacx.StacxConfig` and the meta-optimizer
are written once here, and each experiment adds its environment, scale and run fields (and
may change a default by declaring the field again). `make_config` is both experiments' preset
logic: a preset's values, the overrides, a BMG-only setting with STACX refused, and an
RMSProp target's learning rate defaulting to the inner one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import bmg
from agents import stacx, stacx_meta
from agents.stacx import HYPER_NAMES
from experiments.common.config_checks import ConfigError, check_fields

MATCHINGS = ("l2", "kl", "kl_v")
CHOICES = {
    "method": stacx_meta.METHODS,
    "matching": MATCHINGS,
    "target_optimizer": stacx_meta.TARGET_OPTIMIZERS,
    "target_statistics": stacx_meta.TARGET_STATISTICS,
}
"""The allowed values of the shared choice fields (flags take them as enums)."""

BMG_ONLY_FIELDS = (
    "bootstrap_steps",
    "target_optimizer",
    "target_learning_rate",
    "target_statistics",
    "matching",
    "value_match_weight",
)
"""Settings only BMG uses; setting one with ``method="stacx"`` is an error."""

SGD_TARGET_LEARNING_RATE = 0.1
"""An SGD target step's learning rate unless one is given."""


@dataclasses.dataclass(frozen=True)
class StacxSettings:
    """The STACX agent and its meta-optimizer.

    Attributes:
      method: ``stacx`` (meta-gradients through K steps on the outer loss) or ``bmg``.
      seed: base seed of the run.
      num_inner_steps: K, inner steps backpropagated through.
      bootstrap_steps: L (bmg): L-1 steps of the meta-learned rule, then one target step.
      target_optimizer: ``sgd`` or ``rmsprop``, the optimizer of BMG's target step.
      target_learning_rate: its learning rate. `make_config` sets it to ``learning_rate``
        for an RMSProp target unless it is given (SGD on raw gradients and RMSProp on
        normalised ones need rates of different scales), and to 0.1 for an SGD target.
      target_statistics: where an RMSProp target step's second moments come from:
        ``learner`` (the learner's own inner RMSProp statistics at the bootstrapped state, so
        the target step is one more learner step on the outer loss) or ``own`` (the target
        keeps its own state, started at zero and updated once per meta-step: its first steps
        are up to 1/sqrt(1 - rmsprop_decay) = 10 times larger). No effect on an SGD target.
      matching: ``l2`` (parameters), ``kl`` (main-head policies) or ``kl_v`` (KL + values).
      value_match_weight: weight of the value term of ``kl_v``.
      num_envs: B, environments per seed (per actor on the ALE).
      rollout_length: T, agent steps per rollout.
      learning_rate: learning rate of the inner RMSProp.
      rmsprop_decay: decay of the inner RMSProp's mean squared gradient, in [0, 1).
      rmsprop_eps: eps of the inner RMSProp (inside the square root, so it is differentiable).
      num_heads: main head + auxiliary heads.
      learned: comma-separated hyperparameters that are meta-learned (the mask); from
        discount, lambda_, policy_cost, value_cost, entropy_cost.
      meta_learning_rate: learning rate of the Adam meta-optimizer.
      meta_eps: eps of the Adam meta-optimizer. Meta-gradients of the hyperparameters are
        ~1e-5..1e-4 per element, so a larger eps would make Adam scale-dependent (and BMG's
        (SGD, L2, L=1) corner a different meta-learning rate than STACX rather than the same
        run).
      meta_max_grad_norm: clip the meta-gradient to this global norm before Adam (0: off).
        BMG's meta-gradient has rare spikes (one of 1,774 against a median of 0.23 in 150
        meta-steps of BMG RMSProp KL&V on Ms. Pac-Man) that freeze Adam's steps for thousands
        of meta-steps; STACX's are far milder (1.6 against 0.045).
      outer_discount: γ of the outer loss (STACX's meta-loss, BMG's target step), fixed.
      outer_lambda: V-trace λ of the outer loss, fixed.
      outer_value_cost: weight of the value loss in the outer loss, fixed.
      outer_entropy_cost: weight of the entropy bonus in the outer loss, fixed.
    """

    method: str = "bmg"
    seed: int = 0
    num_inner_steps: int = 1
    bootstrap_steps: int = 1
    target_optimizer: str = "sgd"
    target_learning_rate: float = 0.1
    target_statistics: str = "learner"
    matching: str = "l2"
    value_match_weight: float = 1.0
    num_envs: int = 32
    rollout_length: int = 20
    learning_rate: float = 1e-3
    rmsprop_decay: float = 0.99
    rmsprop_eps: float = 1e-6
    num_heads: int = 3
    learned: str = ",".join(HYPER_NAMES)
    meta_learning_rate: float = 1e-3
    meta_eps: float = 1e-8
    meta_max_grad_norm: float = 0.0
    outer_discount: float = 0.995
    outer_lambda: float = 1.0
    outer_value_cost: float = 0.5
    outer_entropy_cost: float = 0.0

    COUNTS = ("num_inner_steps", "bootstrap_steps", "num_envs", "rollout_length", "num_heads")
    POSITIVE = (
        "target_learning_rate",
        "learning_rate",
        "rmsprop_eps",
        "meta_learning_rate",
        "meta_eps",
    )
    NON_NEGATIVE = (
        "value_match_weight",
        "meta_max_grad_norm",
        "outer_value_cost",
        "outer_entropy_cost",
    )
    UNIT = ("outer_discount", "outer_lambda")
    UNIT_LEFT = ("rmsprop_decay",)

    def check(self, prefix: str, choices: Mapping, **more: tuple[str, ...]):
        """Checks the shared fields and ``more`` (``counts=``, ``positive=``, ... of the
        experiment's own fields, as `check_fields` takes them); returns ``fail``.

        Raises:
          ConfigError: for the first setting that fails.
        """
        kinds = {
            "counts": self.COUNTS,
            "positive": self.POSITIVE,
            "non_negative": self.NON_NEGATIVE,
            "unit": self.UNIT,
            "unit_left": self.UNIT_LEFT,
        }
        merged = {kind: names + tuple(more.get(kind, ())) for kind, names in kinds.items()}
        fail = check_fields(self, prefix, choices={**CHOICES, **choices}, **merged)
        try:
            self.agent_config()
        except ValueError as e:
            fail(str(e))
        return fail

    def agent_config(self) -> stacx.StacxConfig:
        """The agent's settings."""
        return stacx.StacxConfig(
            num_envs=self.num_envs,
            rollout_length=self.rollout_length,
            learning_rate=self.learning_rate,
            rmsprop_decay=self.rmsprop_decay,
            rmsprop_eps=self.rmsprop_eps,
            learned=tuple(name for name in self.learned.split(",") if name),
            outer_discount=self.outer_discount,
            outer_lambda=self.outer_lambda,
            outer_value_cost=self.outer_value_cost,
            outer_entropy_cost=self.outer_entropy_cost,
        )

    @property
    def rollouts_per_update(self) -> int:
        """Rollouts one meta-step learns from: K (STACX), K + L - 1 (BMG).

        The outer loss and the target step use the rollout the next inner step learns from,
        so no rollout is collected for them alone.
        """
        extra = self.bootstrap_steps - 1 if self.method == "bmg" else 0
        return self.num_inner_steps + extra

    # The run's frames and rows. An experiment's config adds ``total_frames`` and
    # ``log_every`` (frames per seed and actor) and, if an agent step is several frames,
    # overrides `frames_per_step`.
    @property
    def frames_per_step(self) -> int:
        """Frames of one agent step in one environment (MinAtar: 1; the ALE: frame skip)."""
        return 1

    @property
    def frames_per_rollout(self) -> int:
        """Frames of one rollout (T steps of B environments)."""
        return self.rollout_length * self.num_envs * self.frames_per_step

    @property
    def frames_per_update(self) -> int:
        """Frames of one meta-step: K rollouts (STACX), K + L - 1 rollouts (BMG)."""
        return self.rollouts_per_update * self.frames_per_rollout

    @property
    def updates_per_row(self) -> int:
        """Meta-steps between two metric rows (at least one)."""
        return max(1, self.log_every // self.frames_per_update)

    @property
    def frames_per_row(self) -> int:
        return self.updates_per_row * self.frames_per_update

    @property
    def num_rows(self) -> int:
        """Metric rows of the whole run; the last one may pass ``total_frames``."""
        return -(-self.total_frames // self.frames_per_row)

    def meta_optimizer(self, learner: bmg.Learner) -> bmg.MetaOptimizer:
        """STACX's meta-gradient or BMG with these target optimizer and matching settings."""
        return stacx_meta.make_meta_optimizer(
            learner,
            self.agent_config(),
            num_heads=self.num_heads,
            method=self.method,
            num_inner_steps=self.num_inner_steps,
            meta_learning_rate=self.meta_learning_rate,
            meta_eps=self.meta_eps,
            meta_max_grad_norm=self.meta_max_grad_norm,
            **{name: getattr(self, name) for name in BMG_ONLY_FIELDS},
        )

    def describe(self) -> str:
        """A short name of the method and its BMG settings, e.g. ``bmg rmsprop kl_v L=4``."""
        if self.method == "stacx":
            return "stacx"
        return f"bmg {self.target_optimizer} {self.matching} L={self.bootstrap_steps}"


def config_maker(cls: type, presets: Mapping[str, Mapping[str, Any]], *, what: str):
    """An experiment's ``make_config(*, preset, method, **overrides)``: `make_config` of
    ``cls`` with the presets ``presets``, named ``what`` in messages."""

    def make(*, preset: str, method: str, **overrides):
        return make_config(cls, presets, preset=preset, method=method, what=what, **overrides)

    make.__doc__ = (
        f"The {what} config of ``preset`` for ``method`` with ``overrides`` on top.\n\n"
        "Raises:\n  ConfigError: for an unknown preset, method or setting, a BMG setting "
        'with ``method="stacx"``, or an invalid value.'
    )
    return make


def make_config(
    cls: type,
    presets: Mapping[str, Mapping[str, Any]],
    *,
    preset: str,
    method: str,
    what: str,
    **overrides,
) -> Any:
    """The config ``cls`` of ``preset`` for ``method`` with ``overrides`` on top.

    Args:
      cls: a `StacxSettings` dataclass.
      presets: its presets' values (everything else takes the dataclass defaults).
      preset, method: the preset and the method.
      what: the experiment's name in messages (e.g. ``MinAtar``).
      **overrides: settings given explicitly.

    Raises:
      ConfigError: for an unknown preset, method or setting, a BMG setting with
        ``method="stacx"``, or an invalid value.
    """
    if preset not in presets:
        raise ConfigError(f"preset must be one of {', '.join(presets)}; got {preset!r}")
    if method not in stacx_meta.METHODS:
        raise ConfigError(f"method must be one of {', '.join(stacx_meta.METHODS)}; got {method!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    for name in overrides:
        if name not in names:
            raise ConfigError(f"unknown {what} setting {name!r}")
        if method == "stacx" and name in BMG_ONLY_FIELDS:
            raise ConfigError(f"{name} applies to --method=bmg only, not to stacx")
    values = {**presets[preset], **overrides, "method": method}
    if "target_learning_rate" not in values:  # a rate of the target optimizer's scale
        if values.get("target_optimizer", cls.target_optimizer) == "rmsprop":
            values["target_learning_rate"] = values.get("learning_rate", cls.learning_rate)
        else:
            values["target_learning_rate"] = SGD_TARGET_LEARNING_RATE
    return cls(**values)
