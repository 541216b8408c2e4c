"""Configuration and presets of the two-colors experiment (paper, section 5.1).

Sources of the defaults (the README says what each choice was measured against):

* Environment, network sizes (2x256 ReLU, separate policy and value), SGD with learning rate
  0.1, 16-step rollouts, discount 0.99, the entropy meta-network (10 mean rewards -> 32 ReLU ->
  sigmoid) and Adam with eps 1e-4 as its meta-optimizer: the paper and its public
  replications.
* K=7, L=9 for BMG and K+L-1=15 unrolled steps for MG, and the 6.4M-step lifetime: one public
  replication (the paper's appendix could not be checked; another replication uses K=3, L=5).
* The step cost -0.04 and "only the collected object respawns": both public replications
  (unconfirmed by the paper).
* Ours, chosen by measurement (4 seeds, 100k to 2M steps; see the README): PyTorch's
  default initialisation (the replication's; with Haiku's, |∇θ v|² is 3.7x larger and more
  seeds collapse), λ-returns with λ = 0.5 and value cost 1 (the replication's one-step TD
  targets re-learn fast after a swap but learn slowly from scratch; n-step returns the
  opposite, and unclipped with value cost 1 they diverged), the inner gradient clipped to
  global norm 5 (at 6.4M steps without clipping 4 of 10 A2C seeds and 1 of 10 BMG seeds
  collapsed; norm 1 stops that but costs BMG 40% of its total return; at norm 5 no seed of
  A2C, MG or BMG collapsed and BMG kept 91% of its unclipped return), A2C's
  ε = 0.1 and the meta-network's initial ε = 0.1 (at 0.01 three of four A2C seeds never
  learn before the first swap; at 0.3 the plateau is 0.10–0.14 per step against about
  0.24), KL summed
  over the target rollout's 16 states (the replication's; the mean's meta-gradient is often
  below Adam's eps), the meta-learning rate 1e-3 (the replications' 1e-4 moved ε from 0.100
  to 0.103 in the first 450k steps of a lifetime), and one outer objective pg − 0.01 ·
  entropy for both MG's meta-loss and BMG's target step.
"""

from __future__ import annotations

import dataclasses

from agents.actor_critic import REDUCTIONS, VALUE_TARGETS
from agents.networks import INITS
from experiments.common.config_checks import ConfigError, check_fields, check_non_negative

METHODS = ("a2c", "mg", "bmg", "q", "q_bmg")
Q_METHODS = ("q", "q_bmg")
"""The ε-greedy Q-learning methods (`agents.q_learning`); the others are actor-critics."""
MATCHINGS = ("kl", "l2", "kl_v")
EPSILON_META = ("network", "scalar")
PRESETS = ("paper", "lifetime", "quick", "smoke")
CHOICES = {
    "method": METHODS,
    "matching": MATCHINGS,
    "matching_reduction": REDUCTIONS,
    "value_target": VALUE_TARGETS,
    "init": INITS,
    "epsilon_meta": EPSILON_META,
}
"""The allowed values of the config's choice fields (flags take them as enums)."""


@dataclasses.dataclass(frozen=True)
class TwoColorsConfig:
    """Everything that decides a two-colors run.

    Attributes:
      method: ``a2c`` (fixed entropy weight), ``mg`` (meta-gradient) or ``bmg``
        (actor-critics); ``q`` (ε-greedy Q(λ) with a fixed or decaying ε) or ``q_bmg`` (its ε
        meta-learned by BMG with K = 0).
      seeds: population size; seeds run as one vmapped program.
      seed: base seed; member i of the population uses ``fold_in(PRNGKey(seed), i)``.
      total_steps: environment steps per seed.
      num_inner_steps: K, the inner steps backpropagated through (MG and BMG; 0 for q_bmg).
      bootstrap_steps: L, how far ahead the BMG target is.
      matching: BMG matching function: ``kl`` (policies), ``l2`` (parameters) or ``kl_v``.
      value_match_weight: weight of the value term of ``kl_v`` matching.
      target_learning_rate: SGD rate of BMG's target step (policy-gradient loss only).
      entropy_weight: A2C's fixed ε; the meta-network's ε at initialisation (MG, BMG).
      outer_entropy_cost: weight of the entropy bonus in the outer objective f = pg −
        c · entropy, which is both MG's meta-loss and the loss of BMG's target step.
      matching_reduction: how BMG's ``kl``/``kl_v`` matching combines the target rollout's
        states: ``sum`` or ``mean``.
      learning_rate: inner SGD learning rate.
      discount: γ of the n-step returns.
      rollout_length: T, environment steps per inner update.
      value_cost: weight of the value loss.
      value_target: critic targets and advantages: ``n_step`` (bootstrapped returns over the
        rollout), ``td0`` (one-step TD) or ``lambda`` (λ-returns, λ = ``td_lambda``).
      td_lambda: λ of the ``lambda`` value target (1: n-step returns, 0: one-step TD), and
        of the Q-learners' Peng's Q(λ) targets.
      max_grad_norm: clip the inner gradient to this global norm (0: no clipping). The
        ``paper``, ``lifetime`` and ``quick`` presets set each method's best norm of {5, 10}
        at the lifetime (10 seeds x 6.4M steps, README): 10 for A2C and BMG, 5 for MG.
      init: initialisation of the networks: ``torch`` (PyTorch's nn.Linear default) or
        ``haiku``.
      hidden_size: width of the two hidden layers of the policy and value MLPs.
      meta_hidden_size: width of the entropy meta-network's hidden layer.
      reward_history: how many rollouts' mean rewards the meta-network sees.
      meta_learning_rate: Adam learning rate of the meta-optimizer.
      meta_eps: Adam eps of the meta-optimizer.
      epsilon: the ε of the ε-greedy Q-learners: q's fixed ε (or its schedule's start),
        q_bmg's ε at initialisation.
      epsilon_final: q's ε at the end of its linear decay.
      epsilon_decay_steps: environment steps over which q's ε decays linearly from
        ``epsilon`` to ``epsilon_final`` (0: ε stays fixed).
      epsilon_meta: what q_bmg meta-learns: ``network`` (a sigmoid meta-network of the mean
        rewards, like the actor-critic's entropy weight) or ``scalar`` (one learned logit).
      step_reward: reward of a step that collects nothing.
      swap_period: steps between two swaps of the objects' rewards.
      log_every: environment steps (per seed) between two metric rows.
      checkpoint_every: metric rows between two checkpoints.
      seed_group: seeds updated together (``vmap``) on a device; a device runs its groups
        one after the other (``lax.map``), so a group's networks stay in the CPU cache.
        A performance setting, but not bit-exact across values: vmapped and unbatched XLA
        kernels round differently in the last bits, which an RL run can amplify (10 quick
        seeds: 8 identical, the 2 leftover seeds differed between groups of 5 and of 2).
    """

    method: str = "bmg"
    seeds: int = 50
    seed: int = 0
    total_steps: int = 6_400_000
    num_inner_steps: int = 7
    bootstrap_steps: int = 9
    matching: str = "kl"
    value_match_weight: float = 1.0
    target_learning_rate: float = 0.1
    entropy_weight: float = 0.1
    outer_entropy_cost: float = 0.01
    matching_reduction: str = "sum"
    learning_rate: float = 0.1
    discount: float = 0.99
    rollout_length: int = 16
    value_cost: float = 1.0
    value_target: str = "lambda"
    td_lambda: float = 0.5
    max_grad_norm: float = 5.0
    init: str = "torch"
    hidden_size: int = 256
    meta_hidden_size: int = 32
    reward_history: int = 10
    meta_learning_rate: float = 1e-3
    meta_eps: float = 1e-4
    epsilon: float = 0.3
    epsilon_final: float = 0.01
    epsilon_decay_steps: int = 0
    epsilon_meta: str = "network"
    step_reward: float = -0.04
    swap_period: int = 100_000
    log_every: int = 4096
    checkpoint_every: int = 25
    seed_group: int = 2

    def __post_init__(self):
        fail = check_fields(
            self,
            "invalid two-colors config: ",
            choices=CHOICES,
            counts=(
                "seeds",
                "total_steps",
                "bootstrap_steps",
                "rollout_length",
                "hidden_size",
                "meta_hidden_size",
                "reward_history",
                "swap_period",
                "log_every",
                "checkpoint_every",
                "seed_group",
            ),
            positive=("learning_rate", "meta_learning_rate", "meta_eps"),
            non_negative=(
                "target_learning_rate",
                "value_cost",
                "outer_entropy_cost",
                "value_match_weight",
                "max_grad_norm",
                "epsilon_decay_steps",
            ),
            unit=("discount", "td_lambda", "epsilon", "epsilon_final"),
        )
        k = self.num_inner_steps
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            fail(f"num_inner_steps must be an integer >= 0, got {k!r}")
        if self.method == "q_bmg":
            if k != 0:
                fail(f"q_bmg meta-learns ε with K = 0 (num_inner_steps=0), got {k}")
            if self.bootstrap_steps < 2:
                fail(
                    "q_bmg learns only in its L - 1 bootstrap steps: bootstrap_steps must be "
                    f">= 2, got {self.bootstrap_steps}"
                )
            if self.matching != "kl":
                fail(f"q_bmg matches greedy policies: matching must be kl, got {self.matching}")
            if not 0.0 < self.epsilon < 1.0:
                fail(f"epsilon (q_bmg's initial ε) must be in (0, 1), got {self.epsilon}")
        elif self.method in ("mg", "bmg") and k < 1:
            fail(f"num_inner_steps must be an integer >= 1 for {self.method}, got {k}")
        if self.method == "a2c":
            check_non_negative(self, ("entropy_weight",), fail)
        elif self.method in ("mg", "bmg") and not 0.0 < self.entropy_weight < 1.0:
            fail(
                f"entropy_weight (the initial ε of the sigmoid meta-network) must be in (0, 1), "
                f"got {self.entropy_weight}"
            )

    @property
    def env_steps_per_update(self) -> int:
        """Environment steps per seed in one update (one meta-step for MG and BMG).

        A2C: one rollout. MG: K rollouts, then the meta-loss rollout. BMG: K rollouts, L-1
        bootstrap rollouts and the target step's rollout (the learner continues from the
        bootstrapped state, so none of them is wasted).
        """
        if self.method in ("a2c", "q"):
            return self.rollout_length
        if self.method == "mg":
            return (self.num_inner_steps + 1) * self.rollout_length
        return (self.num_inner_steps + self.bootstrap_steps) * self.rollout_length

    @property
    def updates_per_row(self) -> int:
        """Updates between two metric rows (one jitted chunk)."""
        return max(1, self.log_every // self.env_steps_per_update)

    @property
    def num_rows(self) -> int:
        """Metric rows (chunks) of the whole run; the last one may pass ``total_steps``."""
        per_row = self.updates_per_row * self.env_steps_per_update
        return -(-self.total_steps // per_row)


_PAPER = {"seeds": 50, "total_steps": 6_400_000}
_LIFETIME = {"seeds": 10, "total_steps": 6_400_000}
_QUICK = {"seeds": 10, "total_steps": 819_200}
# Per-method settings of the full-size presets. The clipping norm is the largest of {5, 10}
# at which none of 10 seeds collapses over 6.4M steps (README): one A2C seed collapses at 10
# (same total return as at 5), two MG seeds at 10; BMG loses none at 10.
_STEPS = {
    "a2c": {"max_grad_norm": 5.0},
    "mg": {"num_inner_steps": 15, "max_grad_norm": 5.0},
    "bmg": {"num_inner_steps": 7, "bootstrap_steps": 9, "max_grad_norm": 10.0},
    # The Q-learners' best settings in 4-seed pilots of 1.6M steps (seeds 100-103, README):
    # updates every 4 steps and discount 0.9 for both (at the actor-critic's 0.99 neither
    # learns to collect the object that pays after odd swaps); fixed ε 0.4 of {0.1, ..., 0.5}.
    "q": {"rollout_length": 4, "discount": 0.9, "epsilon": 0.4},
    "q_bmg": {"num_inner_steps": 0, "bootstrap_steps": 9, "rollout_length": 4, "discount": 0.9},
}
PRESET_VALUES = {
    # The paper's population and lifetime: 50 seeds x 6.4M steps (64 reward swaps).
    "paper": {method: {**_PAPER, **steps} for method, steps in _STEPS.items()},
    # The paper's lifetime with 10 seeds: what the README's figure and table are made with.
    "lifetime": {method: {**_LIFETIME, **steps} for method, steps in _STEPS.items()},
    # 8 reward swaps in an 8x shorter lifetime. Long enough to show that each agent learns
    # before the first swap (A2C reaches about 0.2 reward per step) and that BMG's ε rises
    # after swaps; too short for the paper's comparison, which takes the 6.4M lifetime
    # (the replication's cumulative reward is still negative at 0.6M-1.7M steps).
    "quick": {method: {**_QUICK, **steps} for method, steps in _STEPS.items()},
    "smoke": {
        method: {
            "seeds": 2,
            "total_steps": 512,
            "hidden_size": 16,
            "meta_hidden_size": 8,
            "rollout_length": 8,
            "swap_period": 200,
            "log_every": 128,
            "checkpoint_every": 1,
            **({"num_inner_steps": 2, "bootstrap_steps": 2} if method == "bmg" else {}),
            **({"num_inner_steps": 3} if method == "mg" else {}),
            **({"num_inner_steps": 0, "bootstrap_steps": 3} if method == "q_bmg" else {}),
        }
        for method in METHODS
    },
}
"""Preset values by preset and method; everything else takes the dataclass defaults."""

_AC, _META = ("a2c", "mg", "bmg"), ("mg", "bmg", "q_bmg")
METHOD_ONLY_FIELDS = {
    "num_inner_steps": ("mg", "bmg", "q_bmg"),
    "bootstrap_steps": ("bmg", "q_bmg"),
    "matching": ("bmg", "q_bmg"),
    "value_match_weight": ("bmg",),
    "target_learning_rate": ("bmg", "q_bmg"),
    "outer_entropy_cost": ("mg", "bmg"),
    "matching_reduction": ("bmg", "q_bmg"),
    "meta_hidden_size": _META,
    "reward_history": _META,
    "meta_learning_rate": _META,
    "meta_eps": _META,
    "entropy_weight": _AC,
    "value_cost": _AC,
    "value_target": _AC,
    "epsilon": Q_METHODS,
    "epsilon_final": ("q",),
    "epsilon_decay_steps": ("q",),
    "epsilon_meta": ("q_bmg",),
}
"""Settings that only some methods use; setting one for another method is an error."""


def make_config(*, preset: str, method: str, **overrides) -> TwoColorsConfig:
    """The config of ``preset`` for ``method`` with ``overrides`` on top.

    Raises:
      ConfigError: for an unknown preset or method, an override that the method does not
        use (for instance ``bootstrap_steps`` with ``method="mg"``), or an invalid value.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {PRESETS}, got {preset!r}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {METHODS}, got {method!r}")
    for name in overrides:
        if name in METHOD_ONLY_FIELDS and method not in METHOD_ONLY_FIELDS[name]:
            users = "/".join(METHOD_ONLY_FIELDS[name])
            raise ConfigError(f"{name} applies to --method={users} only, not to {method}")
        if name not in {f.name for f in dataclasses.fields(TwoColorsConfig)}:
            raise ConfigError(f"unknown two-colors setting {name!r}")
    values = {**PRESET_VALUES[preset][method], **overrides, "method": method}
    return TwoColorsConfig(**values)
