"""The two-colors training program: A2C, MG, BMG, Q and Q-BMG on one population of seeds.

`build` wires the environment (`experiments.envs.two_colors`), the actor-critic
(`agents.actor_critic`) or the ε-greedy Q-learner (`agents.q_learning`) and the
meta-optimizers (`bmg`) into pure functions:

* ``init(key) -> TrainState`` for one seed;
* ``update(TrainState) -> (TrainState, UpdateMetrics)`` for one seed: one A2C or Q step, or
  one MG / BMG / Q-BMG meta-step (K inner steps, the meta-gradient, the meta-update);
* ``chunk(TrainState) -> (TrainState, UpdateMetrics[U, S])``: ``updates_per_row`` updates of
  the whole population (``vmap`` over seeds inside a ``lax.scan``), the unit that `train`
  jits once and calls between metric rows and checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bmg
from agents import actor_critic, q_learning
from agents.networks import actor_critic_mlp, q_mlp, sigmoid_meta_net
from experiments.common import trainer
from experiments.envs import two_colors
from experiments.two_colors.config import Q_METHODS, TwoColorsConfig


class TrainState(NamedTuple):
    """One seed's state: the learner, its meta-parameters and the meta-optimizer state.

    For A2C and Q (fixed ε) ``meta_params`` and ``meta_opt_state`` are empty tuples.
    """

    learner: actor_critic.AgentState
    meta_params: Any
    meta_opt_state: Any


class UpdateMetrics(NamedTuple):
    """What one update reports (per seed).

    Attributes:
      reward: the sum of the rewards of all the update's environment steps.
      env_steps: the update's environment steps.
      entropy_weight: the mean ε of the update's inner steps (including bootstrap steps): the
        entropy weight of the actor-critics, the exploration rate of the Q-learners.
      entropy: the mean entropy of the acting policy on the inner steps' rollouts.
      meta_loss: the meta-loss (0 for A2C).
      meta_grad_norm: the global norm of the raw meta-gradient (0 for A2C).
    """

    reward: jax.Array
    env_steps: jax.Array
    entropy_weight: jax.Array
    entropy: jax.Array
    meta_loss: jax.Array
    meta_grad_norm: jax.Array


def _meta_optimizer(config: TwoColorsConfig, learner: bmg.Learner) -> bmg.MetaOptimizer:
    meta_optimizer = optax.adam(config.meta_learning_rate, eps=config.meta_eps)
    if config.method == "mg":
        return bmg.meta_gradient(
            learner, num_inner_steps=config.num_inner_steps, meta_optimizer=meta_optimizer
        )
    if config.method == "q_bmg":  # greedy target policy against the ε-greedy behaviour
        matching, match_on = _q_matching(config.matching_reduction), "predictions"
    else:
        matching, match_on = actor_critic.matching(
            config.matching,
            value_weight=config.value_match_weight,
            reduction=config.matching_reduction,
        )
    return bmg.bootstrapped_meta_gradient(
        learner,
        num_inner_steps=config.num_inner_steps,
        bootstrap_steps=config.bootstrap_steps,
        # The learner's own optimizer, clipping included, at the target's rate.
        target_optimizer=bmg.optimizers.sgd(
            config.target_learning_rate, max_grad_norm=config.max_grad_norm or None
        ),
        meta_optimizer=meta_optimizer,
        matching=matching,
        match_on=match_on,
    )


def _q_matching(reduction: str):
    """KL of policies given as ``[T, A]`` logits, averaged or summed over the T states."""
    if reduction == "mean":
        return bmg.matching.kl
    return lambda target, prediction: target.shape[0] * bmg.matching.kl(target, prediction)


def _environment(config: TwoColorsConfig):
    env_params = two_colors.EnvParams(
        step_reward=config.step_reward, swap_period=config.swap_period
    )

    def env_reset(key):
        return two_colors.reset(key, env_params)

    def env_step(key, env_state, action):
        obs, env_state, reward, _, _ = two_colors.step(key, env_state, action, env_params)
        return obs, env_state, reward

    return two_colors.num_actions(env_params), env_reset, env_step


class _Agent(NamedTuple):
    learner: bmg.Learner
    init: Callable[[jax.Array], Any]  # key -> the agent's first state
    meta_init: Callable[[jax.Array, jax.Array], Any] | None  # (key, history) -> w


def _actor_critic(config: TwoColorsConfig, num_actions, env_reset, env_step) -> _Agent:
    nets = actor_critic_mlp(
        num_actions=num_actions,
        hidden_sizes=(config.hidden_size, config.hidden_size),
        init=config.init,
    )
    agent_config = actor_critic.ActorCriticConfig(
        rollout_length=config.rollout_length,
        discount=config.discount,
        learning_rate=config.learning_rate,
        value_cost=config.value_cost,
        outer_entropy_cost=config.outer_entropy_cost,
        reward_history=config.reward_history,
        value_target=config.value_target,
        td_lambda=config.td_lambda,
        max_grad_norm=config.max_grad_norm,
    )
    if config.method == "a2c":
        meta_init = None

        def entropy_weight(meta_params, history):
            del meta_params, history
            return jnp.float32(config.entropy_weight)

    else:
        meta_net = sigmoid_meta_net(
            hidden_size=config.meta_hidden_size,
            initial_value=config.entropy_weight,
            init=config.init,
        )
        entropy_weight, meta_init = meta_net.apply, meta_net.init
    return _Agent(
        learner=actor_critic.make_learner(nets, env_step, entropy_weight, agent_config),
        init=lambda key: actor_critic.initial_state(nets, env_reset, key, agent_config),
        meta_init=meta_init,
    )


def _q_learner(config: TwoColorsConfig, num_actions, env_reset, env_step) -> _Agent:
    q_net = q_mlp(
        num_actions=num_actions,
        hidden_sizes=(config.hidden_size, config.hidden_size),
        init=config.init,
    )
    agent_config = q_learning.QLearningConfig(
        rollout_length=config.rollout_length,
        discount=config.discount,
        learning_rate=config.learning_rate,
        td_lambda=config.td_lambda,
        reward_history=config.reward_history,
        max_grad_norm=config.max_grad_norm,
    )
    if config.method == "q":
        meta_init = None
        epsilon = q_learning.linear_schedule(
            config.epsilon,
            config.epsilon_final,
            config.epsilon_decay_steps // config.rollout_length,
        )
    elif config.epsilon_meta == "network":
        meta_net = sigmoid_meta_net(
            hidden_size=config.meta_hidden_size, initial_value=config.epsilon, init=config.init
        )
        meta_init = meta_net.init

        def epsilon(meta_params, history, updates):
            del updates
            return meta_net.apply(meta_params, history)

    else:  # one learned logit, 0 at the initial ε
        offset = math.log(config.epsilon) - math.log1p(-config.epsilon)

        def meta_init(key, history):
            del key, history
            return jnp.zeros((), jnp.float32)

        def epsilon(meta_params, history, updates):
            del history, updates
            return jax.nn.sigmoid(meta_params + offset)

    return _Agent(
        learner=q_learning.make_learner(q_net, env_step, epsilon, agent_config),
        init=lambda key: q_learning.initial_state(q_net, env_reset, key, agent_config),
        meta_init=meta_init,
    )


def build(config: TwoColorsConfig) -> trainer.Program:
    """The pure functions of a run of ``config`` (nothing is jitted here)."""
    num_actions, env_reset, env_step = _environment(config)
    make = _q_learner if config.method in Q_METHODS else _actor_critic
    agent = make(config, num_actions, env_reset, env_step)
    learner = agent.learner
    meta_opt = None if agent.meta_init is None else _meta_optimizer(config, learner)

    def init(key):
        agent_key, meta_key = jax.random.split(key)
        first = agent.init(agent_key)
        if meta_opt is None:
            return TrainState(first, (), ())
        meta_params = agent.meta_init(meta_key, first.reward_history)
        return TrainState(first, meta_params, meta_opt.init(meta_params, first))

    def update(state: TrainState):
        learner_state = state.learner._replace(
            reward_sum=jnp.zeros_like(state.learner.reward_sum),
            env_steps=jnp.zeros_like(state.learner.env_steps),
        )
        if meta_opt is None:
            learner_state, aux = learner.inner_step(learner_state, ())
            step_aux, meta_loss = jax.tree.map(lambda x: x[None], aux), jnp.zeros(())
            meta_grad_norm = jnp.zeros(())
            state = TrainState(learner_state, (), ())
        else:
            out = trainer.meta_step(
                meta_opt, learner_state, state.meta_opt_state, state.meta_params
            )
            step_aux, meta_loss, meta_grad_norm = out.step_aux, out.meta_loss, out.meta_grad_norm
            state = TrainState(out.learner_state, out.meta_params, out.meta_opt_state)
        metrics = UpdateMetrics(
            reward=state.learner.reward_sum,
            env_steps=state.learner.env_steps,
            entropy_weight=jnp.mean(step_aux.entropy_weight),
            entropy=jnp.mean(step_aux.entropy),
            meta_loss=meta_loss,
            meta_grad_norm=meta_grad_norm,
        )
        return state, metrics

    return trainer.program(init, update, config)


def init_population(program: trainer.Program, config: TwoColorsConfig) -> TrainState:
    """The initial states of all seeds, stacked on a leading axis."""
    return trainer.init_population(program, config)


def compiled(config: TwoColorsConfig, sharding) -> tuple[trainer.Program, Callable]:
    """The program of ``config`` and its chunk, jitted once per config and sharding."""
    return trainer.compiled(build, config, sharding)


def metric_row(metrics: UpdateMetrics, *, env_steps: int, cumulative: np.ndarray) -> dict:
    """One row of ``metrics.jsonl`` from a chunk's ``[U, S]`` metrics (lists are per seed)."""
    m = jax.tree.map(lambda x: np.asarray(x, np.float64), metrics)
    steps = m.env_steps.sum(axis=0)
    return {
        "env_steps": int(env_steps),
        "reward_per_step": (m.reward.sum(axis=0) / steps).round(6).tolist(),
        "cumulative_reward": cumulative.round(4).tolist(),
        "entropy_weight": m.entropy_weight.mean(axis=0).round(7).tolist(),
        "entropy": m.entropy.mean(axis=0).round(6).tolist(),
        "meta_loss": m.meta_loss.mean(axis=0).round(7).tolist(),
        "meta_grad_norm": m.meta_grad_norm.mean(axis=0).round(9).tolist(),
    }


def train(
    config: TwoColorsConfig,
    run_dir: str | Path,
    *,
    progress: Callable[[int, int, float | None], None] | None = None,
    stop_after_rows: int | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Trains (or resumes) a run of ``config`` in ``run_dir`` (`trainer.train`).

    The checkpoint holds the states and the exact cumulative rewards of the seeds (the metric
    rows hold rounded ones). ``progress`` reports env-steps/s.
    """
    steps_per_row = config.updates_per_row * config.env_steps_per_update

    def row(metrics, index, cumulative):
        cumulative = cumulative + np.asarray(metrics.reward).sum(axis=0)
        env_steps = (index + 1) * steps_per_row
        return cumulative, metric_row(metrics, env_steps=env_steps, cumulative=cumulative)

    return trainer.train(
        config,
        run_dir,
        build=build,
        row=row,
        steps_per_row=steps_per_row,
        extra=np.zeros(config.seeds),
        progress=progress,
        stop_after_rows=stop_after_rows,
        on_row=on_row,
    )
