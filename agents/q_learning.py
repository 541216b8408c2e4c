"""ε-greedy Q-learning with a meta-learned ε: BMG with K = 0 (paper, abstract and appendix).

One inner step φ collects a T-step rollout with the ε-greedy policy of the current Q-values,

    π_ε(a|s) = 1 − ε + ε/|A| for a = argmax_a q_θ(s, a), and ε/|A| otherwise,

and takes one SGD step on Peng's Q(λ) loss ½ (G^λ − q_θ(s, a))² (λ = 0: one-step Q-learning,
λ = 1: n-step returns; the targets bootstrap on max_a q_θ and are under ``stop_gradient``).
ε only decides which data are collected, so no meta-gradient can pass through an update.

BMG with K = 0 (as restated by Luketina et al., "Meta-Gradients in Non-Stationary
Environments", CoLLAs 2022, appendix A.1): the target x̃ is L − 1 further Q-learning steps and
one step on the outer objective (the same Q(λ) loss), and the meta-loss is KL(π_greedy(q_x̃) ‖
π_ε(q_θ)) on the target rollout's states. The learner's side of that matching is its
``behaviour`` (`bmg.Learner`): the ε-greedy policy, whose ε comes from the meta-parameters
directly. Its minimiser is ε = d · |A| / (|A| − 1), d the fraction of states where the
current and the bootstrapped greedy actions differ, so ε rises when the Q-values are changing
(after a reward swap) and falls when they have settled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
import rlax

import bmg
from agents.actor_critic import EnvReset, EnvStep
from agents.networks import Network


@dataclasses.dataclass(frozen=True)
class QLearningConfig:
    """Settings of the Q-learner (the actor-critic's where they have a counterpart).

    ``max_grad_norm`` clips the inner gradient by its global norm (0: no clipping).
    """

    rollout_length: int = 16
    discount: float = 0.99
    learning_rate: float = 0.1
    td_lambda: float = 0.5
    reward_history: int = 10
    max_grad_norm: float = 5.0

    def __post_init__(self):
        if self.rollout_length < 1:
            raise ValueError(f"rollout_length must be >= 1, got {self.rollout_length}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if not 0.0 <= self.td_lambda <= 1.0:
            raise ValueError(f"td_lambda must be in [0, 1], got {self.td_lambda}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.reward_history < 1:
            raise ValueError(f"reward_history must be >= 1, got {self.reward_history}")
        if not self.max_grad_norm >= 0:
            raise ValueError(
                f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}"
            )


class Rollout(NamedTuple):
    """A time-major rollout of one environment stream.

    Attributes:
      obs_t: ``[T+1, O]`` observations, the last one for bootstrapping.
      a_t: ``[T]`` int32 actions.
      r_t: ``[T]`` rewards.
      context: ``[H]`` the mean rewards of the H rollouts before this one: what ε was
        computed from when the rollout was collected (the behaviour's input).
    """

    obs_t: chex.Array
    a_t: chex.Array
    r_t: chex.Array
    context: chex.Array


class AgentState(NamedTuple):
    """The learner state x carried through inner steps.

    Attributes:
      params: the Q-network's parameters.
      opt_state: the inner optimizer's state.
      env_state: the environment's state.
      obs: the current observation ``[O]``.
      key: the PRNG key for actions and the environment.
      reward_history: ``[H]`` mean rewards of the last H rollouts, newest last (ε's input).
      epsilon: the ε of the last inner step; ``sample`` collects with it.
      updates: Q-learning updates taken so far (the input of a decaying ε schedule).
      reward_sum: rewards summed since the training loop last reset it (for logging).
      env_steps: environment steps taken since the training loop last reset it.
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.Array
    reward_history: chex.Array
    epsilon: chex.Array
    updates: chex.Array
    reward_sum: chex.Array
    env_steps: chex.Array


class StepAux(NamedTuple):
    """What an inner step reports: the step's ε, mean reward and π_ε's entropy."""

    entropy_weight: chex.Array
    mean_reward: chex.Array
    entropy: chex.Array


Epsilon = Callable[[Any, chex.Array, chex.Array], chex.Array]
"""``epsilon(meta_params, reward_history, updates) -> ε`` in [0, 1]."""


def epsilon_greedy_log_probs(q: chex.Array, epsilon: chex.Array) -> chex.Array:
    """log π_ε(·|s) ``[..., A]`` of the ε-greedy policy of Q-values ``q[..., A]``."""
    num_actions = q.shape[-1]
    greedy = jax.nn.one_hot(jnp.argmax(q, axis=-1), num_actions)
    return jnp.log((1.0 - epsilon) * greedy + epsilon / num_actions)


def greedy_logits(q: chex.Array) -> chex.Array:
    """The greedy policy of ``q[..., A]`` as logits: 0 for the argmax, ``-inf`` elsewhere."""
    best = jax.nn.one_hot(jnp.argmax(q, axis=-1), q.shape[-1]) > 0
    return jnp.where(best, 0.0, -jnp.inf)


def q_lambda_loss(q_net: Network, params, rollout: Rollout, *, discount, td_lambda):
    """½ mean over the T steps of Peng's Q(λ) TD error squared (targets stopped)."""
    q_t = q_net.apply(params, rollout.obs_t)
    discount_t = jnp.full_like(rollout.r_t, discount)
    td = rlax.q_lambda(
        q_t[:-1],
        rollout.a_t,
        rollout.r_t,
        discount_t,
        jax.lax.stop_gradient(q_t[1:]),
        jnp.asarray(td_lambda, rollout.r_t.dtype),
    )
    return 0.5 * jnp.mean(jnp.square(td))


def collect(q_net: Network, state: AgentState, env_step: EnvStep, *, length: int):
    """Runs the ε-greedy policy (ε = ``state.epsilon``) for ``length`` steps.

    Returns ``(state, Rollout)``; the rollout is data (no gradient reaches it).
    """
    params = jax.lax.stop_gradient(state.params)
    epsilon = jax.lax.stop_gradient(state.epsilon)
    key, explore_key, action_key, env_key = jax.random.split(state.key, 4)
    num_actions = q_net.apply(params, state.obs).shape[-1]
    explore = jax.random.uniform(explore_key, (length,)) < epsilon
    random_actions = jax.random.randint(action_key, (length,), 0, num_actions)

    def one_step(carry, inputs):
        env_state, obs = carry
        step_key, explore_t, random_t = inputs
        greedy = jnp.argmax(q_net.apply(params, obs))
        action = jnp.where(explore_t, random_t, greedy).astype(jnp.int32)
        next_obs, env_state, reward = env_step(step_key, env_state, action)
        return (env_state, next_obs), (obs, action, reward)

    inputs = (jax.random.split(env_key, length), explore, random_actions)
    (env_state, obs), (obs_t, a_t, r_t) = jax.lax.scan(
        one_step, (state.env_state, state.obs), inputs
    )
    rollout = Rollout(
        obs_t=jnp.concatenate([obs_t, obs[None]]),
        a_t=a_t,
        r_t=r_t,
        context=jax.lax.stop_gradient(state.reward_history),
    )
    state = state._replace(
        env_state=env_state,
        obs=obs,
        key=key,
        reward_history=jnp.concatenate([state.reward_history[1:], jnp.mean(r_t)[None]]),
        reward_sum=state.reward_sum + jnp.sum(r_t),
        env_steps=state.env_steps + length,
    )
    return state, rollout


def make_learner(
    q_net: Network, env_step: EnvStep, epsilon: Epsilon, config: QLearningConfig
) -> bmg.Learner:
    """The ε-greedy Q-learner as a `bmg.Learner`.

    Args:
      q_net: the Q-network.
      env_step: ``env_step(key, env_state, action) -> (obs, env_state, reward)``, jittable.
      epsilon: ``epsilon(meta_params, reward_history, updates) -> ε`` (a meta-network, a
        learned scalar, a fixed schedule); meta-gradients reach ``meta_params`` through the
        learner's ``behaviour`` only.
      config: the agent's settings.

    Returns:
      A `bmg.Learner` whose ``predict`` is the greedy policy (as logits with ``-inf``) and
      whose ``behaviour`` is the ε-greedy policy (as log-probabilities) on a rollout's states:
      use it with ``num_inner_steps=0``, ``matching=bmg.matching.kl`` (or a sum over states)
      and ``match_on="predictions"``.
    """
    optimizer = inner_optimizer(config)

    def loss(params, rollout):
        return q_lambda_loss(
            q_net, params, rollout, discount=config.discount, td_lambda=config.td_lambda
        )

    def inner_step(state: AgentState, meta_params):
        eps = epsilon(meta_params, jax.lax.stop_gradient(state.reward_history), state.updates)
        state = state._replace(epsilon=jax.lax.stop_gradient(eps))
        state, rollout = collect(q_net, state, env_step, length=config.rollout_length)
        grads = jax.grad(loss)(state.params, rollout)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        state = state._replace(
            params=optax.apply_updates(state.params, updates),
            opt_state=opt_state,
            updates=state.updates + 1,
        )
        log_pi = epsilon_greedy_log_probs(q_net.apply(state.params, rollout.obs_t[:-1]), eps)
        entropy = jnp.mean(-jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1))
        return state, StepAux(eps, jnp.mean(rollout.r_t), jax.lax.stop_gradient(entropy))

    def sample(state: AgentState):
        return collect(q_net, state, env_step, length=config.rollout_length)

    def predict(params, rollout: Rollout):
        return greedy_logits(q_net.apply(params, rollout.obs_t[:-1]))

    def behaviour(params, rollout: Rollout, meta_params):
        eps = epsilon(meta_params, rollout.context, jnp.zeros((), jnp.int32))
        return epsilon_greedy_log_probs(q_net.apply(params, rollout.obs_t[:-1]), eps)

    return bmg.Learner(
        inner_step=inner_step,
        sample=sample,
        outer_loss=loss,
        get_params=lambda state: state.params,
        predict=predict,
        behaviour=behaviour,
    )


def inner_optimizer(config: QLearningConfig) -> optax.GradientTransformation:
    """SGD, on gradients clipped to ``max_grad_norm`` when it is > 0."""
    return bmg.optimizers.sgd(config.learning_rate, max_grad_norm=config.max_grad_norm or None)


def initial_state(
    q_net: Network, env_reset: EnvReset, key: jax.Array, config: QLearningConfig
) -> AgentState:
    """A fresh agent in a freshly reset environment (ε is set by the first inner step)."""
    params_key, env_key, key = jax.random.split(key, 3)
    obs, env_state = env_reset(env_key)
    params = q_net.init(params_key, obs)
    return AgentState(
        params=params,
        opt_state=inner_optimizer(config).init(params),
        env_state=env_state,
        obs=obs,
        key=key,
        reward_history=jnp.zeros((config.reward_history,), jnp.float32),
        epsilon=jnp.ones((), jnp.float32),
        updates=jnp.zeros((), jnp.int32),
        reward_sum=jnp.zeros((), jnp.float32),
        env_steps=jnp.zeros((), jnp.int32),
    )


def linear_schedule(initial: float, final: float, decay_updates: int) -> Epsilon:
    """ε from ``initial`` to ``final`` linearly over ``decay_updates`` updates, then constant
    (``decay_updates=0``: ``initial`` throughout); no meta-parameters."""

    def epsilon(meta_params, history, updates):
        del meta_params, history
        if decay_updates == 0:
            return jnp.float32(initial)
        fraction = jnp.minimum(updates.astype(jnp.float32) / decay_updates, 1.0)
        return jnp.float32(initial) + fraction * jnp.float32(final - initial)

    return epsilon
