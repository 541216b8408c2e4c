"""Configuration and presets of the MinAtar STACX / BMG experiment (paper, section 5.2).

Sources of the defaults:

* The agent: STACX (Zahavy et al. 2020) on IMPALA (Espeholt et al. 2018): V-trace, a main and
  two auxiliary heads, per-head meta-learned γ, λ and loss weights starting at IMPALA's values,
  inner RMSProp, meta Adam; STACX's outer loss has γ = 0.995, λ = 1 and no entropy term.
* BMG: K = 1 and L in {1, 2, 4}, target optimizer SGD or RMSProp, matching L2 / KL / KL&V
  (paper, section 5.2 and its ablation figure).
* Scale, network and learning rates: chosen here for MinAtar on a 2-core CPU (the paper runs
  57 Atari games for 200M frames); the MinAtar torso is Young and Tian's (2019). Unconfirmed
  values are flags.
"""

from __future__ import annotations

import dataclasses

from agents.stacx import HYPER_NAMES, StacxConfig
from agents.stacx_meta import METHODS, TARGET_OPTIMIZERS, TARGET_STATISTICS
from experiments.common.config_checks import ConfigError, check_fields

GAMES = ("breakout", "asterix", "freeway", "space_invaders", "seaquest")
MATCHINGS = ("l2", "kl", "kl_v")
PRESETS = ("paper", "quick", "smoke")
CHOICES = {
    "env": GAMES,
    "method": METHODS,
    "matching": MATCHINGS,
    "target_optimizer": TARGET_OPTIMIZERS,
    "target_statistics": TARGET_STATISTICS,
}
"""The allowed values of the config's choice fields (flags take them as enums)."""


@dataclasses.dataclass(frozen=True)
class AtariConfig:
    """Everything that decides a MinAtar run.

    Attributes:
      env: the MinAtar game.
      method: ``stacx`` (meta-gradients through K steps on the outer loss) or ``bmg``.
      seeds: population size; seeds run as one vmapped program.
      seed: base seed; member i uses ``fold_in(PRNGKey(seed), i)``.
      total_frames: frames (= environment steps, MinAtar has no frame skip) per seed.
      num_inner_steps: K, inner steps backpropagated through.
      bootstrap_steps: L (bmg): L-1 steps of the meta-learned rule, then one target step.
      target_optimizer: ``sgd`` or ``rmsprop``, the optimizer of BMG's target step.
      target_learning_rate: its learning rate. `make_config` sets it to ``learning_rate``
        for an RMSProp target unless it is given (SGD on raw gradients and RMSProp on
        normalised ones need rates of different scales); 0.1 is the SGD default.
      target_statistics: where an RMSProp target step's second moments come from:
        ``learner`` (the learner's own inner RMSProp statistics at the bootstrapped state, so
        the target step is one more learner step on the outer loss) or ``own`` (the target
        keeps its own state, started at zero and updated once per meta-step: its first steps
        are up to 1/sqrt(1 - rmsprop_decay) = 10 times larger). No effect on an SGD target.
      matching: ``l2`` (parameters), ``kl`` (main-head policies) or ``kl_v`` (KL + values).
      value_match_weight: weight of the value term of ``kl_v``.
      num_envs: B, environments per seed.
      rollout_length: T, environment steps per rollout.
      learning_rate: learning rate of the inner RMSProp.
      rmsprop_decay: decay of the inner RMSProp's mean squared gradient, in [0, 1).
      rmsprop_eps: eps of the inner RMSProp (inside the square root, so it is differentiable).
      channels: 3x3 conv channels of the MinAtar torso.
      hidden_size: width of the MinAtar torso's hidden layer.
      num_heads: main head + auxiliary heads.
      learned: comma-separated hyperparameters that are meta-learned (the mask); from
        discount, lambda_, policy_cost, value_cost, entropy_cost.
      meta_learning_rate: learning rate of the Adam meta-optimizer.
      meta_eps: eps of the Adam meta-optimizer. Meta-gradients of the hyperparameters are
        ~1e-5..1e-4 per element, so a larger eps would make Adam scale-dependent (and BMG's
        (SGD, L2, L=1) corner a different meta-learning rate than STACX rather than the same
        run).
      outer_discount: γ of the outer loss (STACX's meta-loss, BMG's target step), fixed.
      outer_lambda: V-trace λ of the outer loss, fixed.
      outer_value_cost: weight of the value loss in the outer loss, fixed.
      outer_entropy_cost: weight of the entropy bonus in the outer loss, fixed.
      log_every: frames per seed between two metric rows.
      checkpoint_every: metric rows between two checkpoints.
      seed_group: seeds vmapped together on a device (a performance setting).
    """

    env: str = "breakout"
    method: str = "bmg"
    seeds: int = 2
    seed: int = 0
    total_frames: int = 2_000_000
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
    channels: int = 16
    hidden_size: int = 128
    num_heads: int = 3
    learned: str = ",".join(HYPER_NAMES)
    meta_learning_rate: float = 1e-3
    meta_eps: float = 1e-8
    outer_discount: float = 0.995
    outer_lambda: float = 1.0
    outer_value_cost: float = 0.5
    outer_entropy_cost: float = 0.0
    log_every: int = 50_000
    checkpoint_every: int = 10
    seed_group: int = 1

    def __post_init__(self):
        fail = check_fields(
            self,
            "invalid MinAtar config: ",
            choices=CHOICES,
            counts=(
                "seeds",
                "total_frames",
                "num_inner_steps",
                "bootstrap_steps",
                "num_envs",
                "rollout_length",
                "channels",
                "hidden_size",
                "num_heads",
                "log_every",
                "checkpoint_every",
                "seed_group",
            ),
            positive=(
                "target_learning_rate",
                "learning_rate",
                "rmsprop_eps",
                "meta_learning_rate",
                "meta_eps",
            ),
            non_negative=("value_match_weight", "outer_value_cost", "outer_entropy_cost"),
            unit=("outer_discount", "outer_lambda"),
            unit_left=("rmsprop_decay",),
        )
        try:
            self.agent_config()
        except ValueError as e:
            fail(str(e))

    def agent_config(self) -> StacxConfig:
        """The agent's settings."""
        return StacxConfig(
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
    def frames_per_update(self) -> int:
        """Frames per seed of one meta-step: K rollouts (STACX), K + L - 1 rollouts (BMG).

        The outer loss and the target step use the rollout the next inner step learns from,
        so no rollout is collected for them alone.
        """
        rollouts = self.num_inner_steps
        if self.method == "bmg":
            rollouts += self.bootstrap_steps - 1
        return rollouts * self.num_envs * self.rollout_length

    @property
    def updates_per_row(self) -> int:
        """Meta-steps between two metric rows (one jitted chunk)."""
        return max(1, self.log_every // self.frames_per_update)

    @property
    def num_rows(self) -> int:
        """Metric rows of the whole run; the last one may pass ``total_frames``."""
        per_row = self.updates_per_row * self.frames_per_update
        return -(-self.total_frames // per_row)


PRESET_VALUES = {
    # The paper runs 3 seeds for 200M frames on 57 games; here: 2M frames of a MinAtar game.
    "paper": {"seeds": 3, "total_frames": 10_000_000},
    "quick": {"seeds": 2, "total_frames": 1_000_000},
    "smoke": {
        "seeds": 2,
        "total_frames": 960,
        "num_envs": 4,
        "rollout_length": 5,
        "channels": 4,
        "hidden_size": 16,
        "log_every": 160,
        "checkpoint_every": 1,
    },
}
"""Preset values; everything else takes the dataclass defaults."""

BMG_ONLY_FIELDS = (
    "bootstrap_steps",
    "target_optimizer",
    "target_learning_rate",
    "target_statistics",
    "matching",
    "value_match_weight",
)
"""Settings only BMG uses; setting one with ``method="stacx"`` is an error."""


def make_config(*, preset: str, method: str, **overrides) -> AtariConfig:
    """The config of ``preset`` for ``method`` with ``overrides`` on top.

    Raises:
      ConfigError: for an unknown preset, method or setting, a BMG setting with
        ``method="stacx"``, or an invalid value.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    names = {f.name for f in dataclasses.fields(AtariConfig)}
    for name in overrides:
        if name not in names:
            raise ConfigError(f"unknown MinAtar setting {name!r}")
        if method == "stacx" and name in BMG_ONLY_FIELDS:
            raise ConfigError(f"{name} applies to --method=bmg only, not to stacx")
    values = {**PRESET_VALUES[preset], **overrides, "method": method}
    if values.get("target_optimizer") == "rmsprop" and "target_learning_rate" not in values:
        values["target_learning_rate"] = values.get("learning_rate", AtariConfig.learning_rate)
    return AtariConfig(**values)
