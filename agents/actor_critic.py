"""An online actor-critic whose entropy-regularisation weight is meta-learned (paper, 5.1).

One inner step φ (a `bmg.Learner.inner_step`) collects a T-step rollout from a JAX-native
environment carried in the state, then takes one SGD step on

    loss = policy-gradient + value_cost · value loss − ε · entropy,

with bootstrapped n-step returns or one-step TD targets (``value_target``), on gradients
optionally clipped by global norm (``max_grad_norm``). ε comes from
``entropy_weight(meta_params, history)``: a small meta-network of the mean rewards of the
last rollouts (BMG, MG), or a constant (A2C).
The outer objective f is the policy-gradient loss minus ``outer_entropy_cost`` · entropy on a
fresh rollout; it is both MG's meta-loss and the loss of BMG's target step, so the two methods
differ only in how they use it.

Data never carries gradients: actions are sampled, observations come from the environment,
and the losses recompute logits and values from the parameters.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

import bmg
from agents.networks import ActorCriticNets

EnvReset = Callable[[jax.Array], tuple[jax.Array, Any]]
EnvStep = Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array]]


VALUE_TARGETS = ("n_step", "td0", "lambda")
"""Targets of the critic and the advantages: bootstrapped returns over the whole rollout
(``n_step``), one-step TD targets r + γ v(s') (``td0``, as the public PyTorch replication), or
λ-returns between the two (``lambda``, with ``td_lambda``; λ = 1 is ``n_step``, λ = 0 is
``td0``)."""


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
    """Settings of the actor-critic (paper, section 5.1; unconfirmed values are flags).

    ``max_grad_norm`` clips the inner gradient by its global norm (`bmg.optimizers.sgd`);
    0 means no clipping.
    """

    rollout_length: int = 16
    discount: float = 0.99
    learning_rate: float = 0.1
    value_cost: float = 0.5
    outer_entropy_cost: float = 0.0
    reward_history: int = 10
    value_target: str = "n_step"
    td_lambda: float = 1.0
    max_grad_norm: float = 0.0

    def __post_init__(self):
        if self.value_target not in VALUE_TARGETS:
            raise ValueError(
                f"value_target must be one of {VALUE_TARGETS}, got {self.value_target!r}"
            )
        if not 0.0 <= self.td_lambda <= 1.0:
            raise ValueError(f"td_lambda must be in [0, 1], got {self.td_lambda}")
        if not self.max_grad_norm >= 0:
            raise ValueError(
                f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}"
            )
        if self.rollout_length < 1:
            raise ValueError(f"rollout_length must be >= 1, got {self.rollout_length}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.reward_history < 1:
            raise ValueError(f"reward_history must be >= 1, got {self.reward_history}")


class Rollout(NamedTuple):
    """A time-major rollout of one environment stream.

    Attributes:
      obs_t: ``[T+1, O]`` observations, the last one for bootstrapping.
      a_t: ``[T]`` int32 actions.
      r_t: ``[T]`` rewards.
    """

    obs_t: chex.Array
    a_t: chex.Array
    r_t: chex.Array


class AgentState(NamedTuple):
    """The learner state x carried through inner steps.

    Attributes:
      params: ``{"policy": ..., "value": ...}``.
      opt_state: the inner optimizer's state.
      env_state: the environment's state.
      obs: the current observation ``[O]``.
      key: the PRNG key for actions and the environment.
      reward_history: ``[H]`` mean rewards of the last H rollouts, newest last (the
        meta-network's input).
      reward_sum: rewards summed since the training loop last reset it (for logging).
      env_steps: environment steps taken since the training loop last reset it.
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.Array
    reward_history: chex.Array
    reward_sum: chex.Array
    env_steps: chex.Array


class StepAux(NamedTuple):
    """What an inner step reports."""

    entropy_weight: chex.Array
    mean_reward: chex.Array
    entropy: chex.Array


def losses(
    nets: ActorCriticNets,
    params,
    rollout: Rollout,
    *,
    discount: float,
    value_target="n_step",
    td_lambda: float = 1.0,
):
    """Policy-gradient, value and entropy losses of one rollout (single stream).

    Gradients reach ``params`` through the recomputed logits and values; returns and
    advantages are under ``stop_gradient``. ``value_target`` is ``"n_step"`` (discounted
    returns bootstrapped from the last state's value), ``"td0"`` (r_t + γ v(s_{t+1})) or
    ``"lambda"`` (λ-returns with λ = ``td_lambda``).

    Returns:
      ``(pg_loss, value_loss, entropy)`` scalars, each a mean over the T steps.
    """
    chex.assert_rank([rollout.obs_t, rollout.a_t, rollout.r_t], [2, 1, 1])
    chex.assert_equal(rollout.obs_t.shape[0], rollout.a_t.shape[0] + 1)
    logits_t = nets.policy(params, rollout.obs_t[:-1])
    v_t = nets.value(params, rollout.obs_t)
    discount_t = jnp.full_like(rollout.r_t, discount)
    if value_target == "td0":
        returns = rollout.r_t + discount_t * v_t[1:]
    elif value_target == "lambda":
        returns = rlax.lambda_returns(rollout.r_t, discount_t, v_t[1:], td_lambda)
    else:
        returns = rlax.discounted_returns(rollout.r_t, discount_t, v_t[-1])
    returns = jax.lax.stop_gradient(returns)
    advantages = jax.lax.stop_gradient(returns - v_t[:-1])
    log_pi = jax.nn.log_softmax(logits_t)
    log_pi_a = jnp.take_along_axis(log_pi, rollout.a_t[:, None], axis=-1)[:, 0]
    pg_loss = -jnp.mean(log_pi_a * advantages)
    value_loss = 0.5 * jnp.mean(jnp.square(returns - v_t[:-1]))
    entropy = jnp.mean(-jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1))
    return pg_loss, value_loss, entropy


def collect(nets: ActorCriticNets, state: AgentState, env_step: EnvStep, *, length: int):
    """Runs the current policy for ``length`` steps; returns ``(state, Rollout)``.

    The rollout is data: it carries no gradient to ``state.params``.
    """
    params = jax.lax.stop_gradient(state.params)
    # All the rollout's randomness is drawn at once, outside the time loop: Gumbel noise for
    # the actions (argmax(logits + g) samples the policy) and one key per environment step.
    key, noise_key, env_key = jax.random.split(state.key, 3)
    env_keys = jax.random.split(env_key, length)
    noise = jax.random.gumbel(noise_key, (length, nets.num_actions))

    def one_step(carry, inputs):
        env_state, obs = carry
        step_key, gumbel = inputs
        action = jnp.argmax(nets.policy(params, obs) + gumbel).astype(jnp.int32)
        next_obs, env_state, reward = env_step(step_key, env_state, action)
        return (env_state, next_obs), (obs, action, reward)

    (env_state, obs), (obs_t, a_t, r_t) = jax.lax.scan(
        one_step, (state.env_state, state.obs), (env_keys, noise)
    )
    rollout = Rollout(obs_t=jnp.concatenate([obs_t, obs[None]]), a_t=a_t, r_t=r_t)
    history = jnp.concatenate([state.reward_history[1:], jnp.mean(r_t)[None]])
    state = state._replace(
        env_state=env_state,
        obs=obs,
        key=key,
        reward_history=history,
        reward_sum=state.reward_sum + jnp.sum(r_t),
        env_steps=state.env_steps + length,
    )
    return state, rollout


def make_learner(
    nets: ActorCriticNets,
    env_step: EnvStep,
    entropy_weight: Callable[[Any, chex.Array], chex.Array],
    config: ActorCriticConfig,
) -> bmg.Learner:
    """The actor-critic as a `bmg.Learner`.

    Args:
      nets: policy and value networks.
      env_step: ``env_step(key, env_state, action) -> (obs, env_state, reward)``, jittable.
      entropy_weight: ``entropy_weight(meta_params, reward_history) -> ε``; meta-gradients
        reach ``meta_params`` through it. Its input is under ``stop_gradient``.
      config: the agent's settings.

    Returns:
      A `bmg.Learner` whose ``predict`` gives `bmg.matching.PolicyAndValue` on a rollout's
      states (use ``.logits`` for KL matching).
    """
    optimizer = inner_optimizer(config)
    losses_of = functools.partial(
        losses,
        nets,
        discount=config.discount,
        value_target=config.value_target,
        td_lambda=config.td_lambda,
    )

    def inner_step(state: AgentState, meta_params):
        epsilon = entropy_weight(meta_params, jax.lax.stop_gradient(state.reward_history))
        state, rollout = collect(nets, state, env_step, length=config.rollout_length)

        def loss(params):
            pg, value, entropy = losses_of(params, rollout)
            return pg + config.value_cost * value - epsilon * entropy, entropy

        grads, entropy = jax.grad(loss, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        state = state._replace(
            params=optax.apply_updates(state.params, updates), opt_state=opt_state
        )
        return state, StepAux(epsilon, jnp.mean(rollout.r_t), entropy)

    def sample(state: AgentState):
        return collect(nets, state, env_step, length=config.rollout_length)

    def outer_loss(params, rollout: Rollout):
        pg, _, entropy = losses_of(params, rollout)
        return pg - config.outer_entropy_cost * entropy

    def predict(params, rollout: Rollout):
        obs = rollout.obs_t[:-1]
        return bmg.matching.PolicyAndValue(nets.policy(params, obs), nets.value(params, obs))

    return bmg.Learner(
        inner_step=inner_step,
        sample=sample,
        outer_loss=outer_loss,
        get_params=lambda state: state.params,
        predict=predict,
    )


def inner_optimizer(config: ActorCriticConfig) -> optax.GradientTransformation:
    """The inner optimizer: SGD, on gradients clipped to ``max_grad_norm`` when it is > 0."""
    return bmg.optimizers.sgd(config.learning_rate, max_grad_norm=config.max_grad_norm or None)


def initial_state(
    nets: ActorCriticNets, env_reset: EnvReset, key: jax.Array, config: ActorCriticConfig
) -> AgentState:
    """A fresh agent in a freshly reset environment."""
    params_key, env_key, key = jax.random.split(key, 3)
    obs, env_state = env_reset(env_key)
    params = nets.init(params_key, obs)
    return AgentState(
        params=params,
        opt_state=inner_optimizer(config).init(params),
        env_state=env_state,
        obs=obs,
        key=key,
        reward_history=jnp.zeros((config.reward_history,), jnp.float32),
        reward_sum=jnp.zeros((), jnp.float32),
        env_steps=jnp.zeros((), jnp.int32),
    )


REDUCTIONS = ("sum", "mean")


def matching(name: str, *, value_weight: float = 1.0, reduction: str = "mean"):
    """The matching function of this learner's BMG by name, and the space it compares in.

    * ``"kl"``: KL(π_target ‖ π) on the target rollout's states (``predict(...).logits``);
    * ``"kl_v"``: that KL plus ``value_weight`` × ½ squared value difference;
    * ``"l2"``: ½‖x̃ − x‖² over the policy and value parameters.

    ``reduction`` says how ``kl`` and ``kl_v`` combine the T states of the rollout: ``"mean"``
    (the paper's "averaged over a batch") or ``"sum"`` (T times the mean, as the public
    PyTorch replication). The two differ only in scale, which matters for Adam: the raw
    meta-gradient of the mean KL is often below Adam's eps of 1e-4, so the meta-network
    barely moves.

    Returns:
      ``(matching_fn, match_on)`` for `bmg.bootstrapped_meta_gradient`.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")

    def scaled(fn):
        if reduction == "mean":
            return fn
        return lambda target, prediction: prediction.logits.shape[0] * fn(target, prediction)

    if name == "kl":
        return (
            scaled(lambda target, prediction: bmg.matching.kl(target.logits, prediction.logits)),
            "predictions",
        )
    if name == "kl_v":
        return (
            scaled(functools.partial(bmg.matching.kl_and_value, value_weight=value_weight)),
            "predictions",
        )
    if name == "l2":
        return bmg.matching.l2, "parameters"
    raise ValueError(f"matching must be 'kl', 'kl_v' or 'l2', got {name!r}")
