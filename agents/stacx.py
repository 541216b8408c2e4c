"""A STACX-style self-tuning actor-critic trained with V-trace (paper, section 5.2).

STACX (Zahavy et al. 2020) is an IMPALA agent with a main head and auxiliary heads on one
torso, each head with its own policy, value and hyperparameters: discount γ, V-trace λ, and
the policy, value and entropy loss weights. Those hyperparameters are meta-learned; STACX
itself uses plain meta-gradients (MG), the paper replaces them by BMG.

One inner step φ (a `bmg.Learner.inner_step`) takes one step of the inner optimizer on

    Σ_heads  c_p · pg_loss + c_v · value_loss − c_e · entropy          (per-head hypers)

on the rollout carried in the state, then collects the next rollout with the updated
policy (the main head acts). ``sample`` hands out that carried rollout without stepping the
environment, so the outer loss — the main head's V-trace loss with fixed hyperparameters —
is computed on the data the next inner step learns from (Xu et al. 2018). Every rollout is
learned from exactly once, and a BMG meta-step with K inner and L bootstrap steps uses
K + L − 1 rollouts.

Data never carries gradients: actions are sampled, observations come from the environment,
behaviour logits are stored under ``stop_gradient``. V-trace targets are computed from
stopped values, so gradients reach the hyperparameters γ and λ through the targets but the
parameters only through the predictions.
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

import bmg
from agents import rollout_feed
from agents.actor_critic import matching  # noqa: F401  (same spaces: predict is PolicyAndValue)
from agents.networks import MultiHeadNets
from agents.vtrace import vtrace_losses

HYPER_NAMES = ("discount", "lambda_", "policy_cost", "value_cost", "entropy_cost")


class Environment(NamedTuple):
    """A batch-free, JAX-native environment with automatic resets (gymnax semantics).

    Attributes:
      reset: ``reset(key) -> (obs, env_state)``.
      step: ``step(key, env_state, action) -> (obs, env_state, reward, done)``; when an
        episode ends, ``obs`` is already the first observation of the next one.
      num_actions: the number of discrete actions.
      obs_shape: the shape of one observation.
    """

    reset: Callable[[jax.Array], tuple[jax.Array, Any]]
    step: Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any, jax.Array, jax.Array]]
    num_actions: int
    obs_shape: tuple[int, ...]


class Hypers(NamedTuple):
    """The per-head hyperparameters of the inner loss; each field has shape ``[heads]``."""

    discount: Any
    lambda_: Any
    policy_cost: Any
    value_cost: Any
    entropy_cost: Any


@dataclasses.dataclass(frozen=True)
class StacxConfig:
    """Settings of the agent (the unconfirmed ones are flags of the experiment).

    The initial hyperparameters are IMPALA's (Espeholt et al. 2018) except λ, which starts at
    ``initial_lambda`` = 0.99 because IMPALA's λ = 1 is the limit of the sigmoid. Each
    hyperparameter is a sigmoid of its meta-parameter onto ``(0, bound)``.
    """

    num_envs: int = 32
    rollout_length: int = 20
    learning_rate: float = 1e-3
    rmsprop_decay: float = 0.99
    rmsprop_eps: float = 1e-6
    initial_discount: float = 0.99
    initial_lambda: float = 0.99
    initial_policy_cost: float = 1.0
    initial_value_cost: float = 0.5
    initial_entropy_cost: float = 0.01
    policy_cost_bound: float = 2.0
    value_cost_bound: float = 1.0
    entropy_cost_bound: float = 0.05
    learned: tuple[str, ...] = HYPER_NAMES
    outer_discount: float = 0.995
    outer_lambda: float = 1.0
    outer_policy_cost: float = 1.0
    outer_value_cost: float = 0.5
    outer_entropy_cost: float = 0.0

    def __post_init__(self):
        for name in ("num_envs", "rollout_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = set(self.learned) - set(HYPER_NAMES)
        if unknown:
            raise ValueError(
                f"learned: unknown hyperparameters {sorted(unknown)}; "
                f"choose from {', '.join(HYPER_NAMES)}"
            )
        for name in ("initial_discount", "initial_lambda"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        for cost in ("policy", "value", "entropy"):
            value, bound = (
                getattr(self, f"initial_{cost}_cost"),
                getattr(self, f"{cost}_cost_bound"),
            )
            if not 0.0 < value < bound:
                raise ValueError(
                    f"initial_{cost}_cost must be in (0, {cost}_cost_bound={bound}), got {value}"
                )
        if not 0.0 <= self.outer_discount <= 1.0 or not 0.0 <= self.outer_lambda <= 1.0:
            raise ValueError("outer_discount and outer_lambda must be in [0, 1]")
        if self.learning_rate <= 0 or self.rmsprop_eps <= 0:
            raise ValueError("learning_rate and rmsprop_eps must be > 0")


def hyper_spec(config: StacxConfig, num_heads: int) -> Hypers:
    """The `bmg.hyper` specification of the per-head hyperparameters."""

    def spec(name, value, bound):
        return bmg.hyper.Hyperparameter(
            jnp.full((num_heads,), value, jnp.float32),
            bmg.hyper.sigmoid(0.0, bound),
            learned=name in config.learned,
        )

    return Hypers(
        discount=spec("discount", config.initial_discount, 1.0),
        lambda_=spec("lambda_", config.initial_lambda, 1.0),
        policy_cost=spec("policy_cost", config.initial_policy_cost, config.policy_cost_bound),
        value_cost=spec("value_cost", config.initial_value_cost, config.value_cost_bound),
        entropy_cost=spec("entropy_cost", config.initial_entropy_cost, config.entropy_cost_bound),
    )


class Rollout(NamedTuple):
    """A time-major batch of B environment streams.

    Attributes:
      obs_t: ``[T+1, B, ...]`` observations, the last one for bootstrapping.
      a_t: ``[T, B]`` int32 actions.
      r_t: ``[T, B]`` rewards.
      done_t: ``[T, B]`` whether the episode ended with that transition.
      logits_t: ``[T, B, A]`` the behaviour policy's logits (main head), data.
    """

    obs_t: chex.Array
    a_t: chex.Array
    r_t: chex.Array
    done_t: chex.Array
    logits_t: chex.Array


class AgentState(NamedTuple):
    """The learner state x carried through inner steps.

    Attributes:
      params: the network's parameters.
      opt_state: the inner RMSProp state.
      env_state: the B environments' states.
      obs: ``[B, ...]`` the current observations.
      key: the PRNG key for actions and the environments.
      rollout: the rollout the next inner step learns from (and the outer loss is taken on).
      episode_return: ``[B]`` the return of each running episode so far.
      return_sum, episodes: returns and number of the episodes finished since the training
        loop last reset them (for logging).
      env_steps: environment steps since the training loop last reset it.
    """

    params: Any
    opt_state: Any
    env_state: Any
    obs: chex.Array
    key: chex.Array
    rollout: Rollout
    episode_return: chex.Array
    return_sum: chex.Array
    episodes: chex.Array
    env_steps: chex.Array


class StepAux(NamedTuple):
    """What an inner step reports: the hyperparameters used (``[heads]`` each) and the main
    head's losses and entropy."""

    hypers: Hypers
    pg_loss: chex.Array
    value_loss: chex.Array
    entropy: chex.Array


def collect(nets: MultiHeadNets, env: Environment, state: AgentState, *, length: int):
    """Runs the main head's policy in the B environments for ``length`` steps.

    Returns ``(state, Rollout)``; the rollout is data (no gradient reaches ``state.params``).
    """
    params = jax.lax.stop_gradient(state.params)
    num_envs = state.obs.shape[0]
    key, noise_key, env_key = jax.random.split(state.key, 3)
    env_keys = jax.random.split(env_key, (length, num_envs))
    noise = jax.random.gumbel(noise_key, (length, num_envs, nets.num_actions))

    def one_step(carry, inputs):
        env_state, obs, episode_return, return_sum, episodes = carry
        step_keys, gumbel = inputs
        logits = nets.apply(params, obs)[0][:, 0]
        action = jnp.argmax(logits + gumbel, axis=-1).astype(jnp.int32)
        next_obs, env_state, reward, done = jax.vmap(env.step)(step_keys, env_state, action)
        episode_return = episode_return + reward
        return_sum = return_sum + jnp.sum(jnp.where(done, episode_return, 0.0))
        episodes = episodes + jnp.sum(done, dtype=episodes.dtype)
        episode_return = jnp.where(done, 0.0, episode_return)
        carry = (env_state, next_obs, episode_return, return_sum, episodes)
        return carry, (obs, action, reward, done, logits)

    carry = (state.env_state, state.obs, state.episode_return, state.return_sum, state.episodes)
    carry, (obs_t, a_t, r_t, done_t, logits_t) = jax.lax.scan(one_step, carry, (env_keys, noise))
    env_state, obs, episode_return, return_sum, episodes = carry
    rollout = Rollout(jnp.concatenate([obs_t, obs[None]]), a_t, r_t, done_t, logits_t)
    state = state._replace(
        env_state=env_state,
        obs=obs,
        key=key,
        episode_return=episode_return,
        return_sum=return_sum,
        episodes=episodes,
        env_steps=state.env_steps + length * num_envs,
    )
    return state, jax.lax.stop_gradient(rollout)


def inner_optimizer(config: StacxConfig) -> optax.GradientTransformation:
    """The inner RMSProp (``eps`` inside the square root, so it is differentiable)."""
    return bmg.optimizers.rmsprop(
        config.learning_rate, decay=config.rmsprop_decay, eps=config.rmsprop_eps
    )


def inner_opt_state(state: AgentState) -> Any:
    """The inner RMSProp's state: what an RMSProp target step with the same decay and eps
    starts from when it takes the learner's own statistics (``target_state_from``)."""
    return state.opt_state


def make_learner(nets: MultiHeadNets, env: Environment | None, config: StacxConfig) -> bmg.Learner:
    """The agent as a `bmg.Learner` whose meta-parameters are unconstrained `Hypers`.

    With an ``env``, each inner step collects its next rollout in the environment (MinAtar,
    in-graph). With ``env=None`` the rollouts come from outside the program (host-side
    actors): each inner step takes the next of those `agents.rollout_feed.feed` put in the
    state. ``predict`` gives the main head's `bmg.matching.PolicyAndValue` on a rollout's
    states (``.logits`` for KL matching, both for KL&V).
    """
    spec = hyper_spec(config, nets.num_heads)
    optimizer = inner_optimizer(config)
    if env is None:
        next_rollout = rollout_feed.take
    else:
        next_rollout = functools.partial(collect, nets, env, length=config.rollout_length)

    def heads_loss(params, rollout: Rollout, hypers: Hypers):
        logits, values = nets.apply(params, rollout.obs_t)
        per_head = jax.vmap(
            lambda lg, v, g, lam: vtrace_losses(lg, v, rollout, discount=g, lambda_=lam),
            in_axes=(-2, -1, 0, 0),
        )(logits[:-1], values, hypers.discount, hypers.lambda_)
        pg, value, entropy = per_head
        total = jnp.sum(
            hypers.policy_cost * pg + hypers.value_cost * value - hypers.entropy_cost * entropy
        )
        return total, (pg[0], value[0], entropy[0])

    def inner_step(state: AgentState, meta_params):
        hypers = bmg.hyper.constrain(meta_params, spec)
        grads, (pg, value, entropy) = jax.grad(heads_loss, has_aux=True)(
            state.params, state.rollout, hypers
        )
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        state = state._replace(
            params=optax.apply_updates(state.params, updates), opt_state=opt_state
        )
        state, rollout = next_rollout(state)
        return state._replace(rollout=rollout), StepAux(hypers, pg, value, entropy)

    def sample(state: AgentState):
        return state, state.rollout

    def outer_loss(params, rollout: Rollout):
        logits, values = nets.apply(params, rollout.obs_t)
        pg, value, entropy = vtrace_losses(
            logits[:-1, :, 0],
            values[..., 0],
            rollout,
            discount=config.outer_discount,
            lambda_=config.outer_lambda,
        )
        return (
            config.outer_policy_cost * pg
            + config.outer_value_cost * value
            - config.outer_entropy_cost * entropy
        )

    def predict(params, rollout: Rollout):
        logits, values = nets.apply(params, rollout.obs_t[:-1])
        return bmg.matching.PolicyAndValue(logits[..., 0, :], values[..., 0])

    return bmg.Learner(
        inner_step=inner_step,
        sample=sample,
        outer_loss=outer_loss,
        get_params=lambda state: state.params,
        predict=predict,
    )


def initial_meta_params(config: StacxConfig, num_heads: int) -> Hypers:
    """Unconstrained meta-parameters at the initial hyperparameters."""
    return bmg.hyper.init_meta_params(hyper_spec(config, num_heads))


def learned_mask(config: StacxConfig, num_heads: int) -> Hypers:
    """Which meta-parameters the meta-optimizer updates (for ``optax.masked``)."""
    return bmg.hyper.learned_mask(hyper_spec(config, num_heads))


def initial_state(
    nets: MultiHeadNets, env: Environment, key: jax.Array, config: StacxConfig
) -> AgentState:
    """A fresh agent in B freshly reset environments, holding its first rollout."""
    params_key, env_key, key = jax.random.split(key, 3)
    obs, env_state = jax.vmap(env.reset)(jax.random.split(env_key, config.num_envs))
    params = nets.init(params_key, obs[0])
    state = AgentState(
        params=params,
        opt_state=inner_optimizer(config).init(params),
        env_state=env_state,
        obs=obs,
        key=key,
        rollout=None,  # `collect` does not read it; the first rollout fills it below
        episode_return=jnp.zeros((config.num_envs,), jnp.float32),
        return_sum=jnp.zeros((), jnp.float32),
        episodes=jnp.zeros((), jnp.int32),
        env_steps=jnp.zeros((), jnp.int32),
    )
    state, rollout = collect(nets, env, state, length=config.rollout_length)
    return state._replace(rollout=rollout)


def initial_state_from_rollout(params: Any, rollout: Rollout, config: StacxConfig) -> AgentState:
    """A fresh agent with ``params`` whose rollouts come from outside
    (``make_learner(nets, None, ...)``), holding ``rollout`` (collected by an actor) as the one
    its first inner step learns from."""
    return AgentState(
        params=params,
        opt_state=inner_optimizer(config).init(params),
        env_state=None,  # `rollout_feed.feed` queues each meta-step's rollouts here
        obs=rollout.obs_t[-1],
        key=jnp.zeros((2,), jnp.uint32),  # unused: the actors draw the actions
        rollout=jax.lax.stop_gradient(rollout),
        episode_return=jnp.zeros(rollout.r_t.shape[1:], jnp.float32),
        return_sum=jnp.zeros((), jnp.float32),
        episodes=jnp.zeros((), jnp.int32),
        env_steps=jnp.zeros((), jnp.int32),
    )
