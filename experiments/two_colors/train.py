"""The two-colors training program: A2C, MG and BMG on one population of seeds.

`build` wires the environment (`experiments.envs.two_colors`), the actor-critic
(`agents.actor_critic`) and the meta-optimizers (`bmg`) into pure functions:

* ``init(key) -> TrainState`` for one seed;
* ``update(TrainState) -> (TrainState, UpdateMetrics)`` for one seed: one A2C step, or one
  MG / BMG meta-step (K inner steps, the meta-gradient, the meta-update);
* ``chunk(TrainState) -> (TrainState, UpdateMetrics[U, S])``: ``updates_per_row`` updates of
  the whole population (``vmap`` over seeds inside a ``lax.scan``), the unit that `train`
  jits once and calls between metric rows and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bmg
from agents import actor_critic
from agents.networks import actor_critic_mlp, sigmoid_meta_net
from experiments.common import trainer
from experiments.envs import two_colors
from experiments.two_colors.config import TwoColorsConfig


class TrainState(NamedTuple):
    """One seed's state: the learner, its meta-parameters and the meta-optimizer state.

    For A2C ``meta_params`` and ``meta_opt_state`` are empty tuples.
    """

    learner: actor_critic.AgentState
    meta_params: Any
    meta_opt_state: Any


class UpdateMetrics(NamedTuple):
    """What one update reports (per seed).

    Attributes:
      reward: the sum of the rewards of all the update's environment steps.
      env_steps: the update's environment steps.
      entropy_weight: the mean ε of the update's inner steps (including bootstrap steps).
      entropy: the mean policy entropy on the inner steps' rollouts.
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


def build(config: TwoColorsConfig) -> trainer.Program:
    """The pure functions of a run of ``config`` (nothing is jitted here)."""
    env_params = two_colors.EnvParams(
        step_reward=config.step_reward, swap_period=config.swap_period
    )
    nets = actor_critic_mlp(
        num_actions=two_colors.num_actions(env_params),
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

    def env_reset(key):
        return two_colors.reset(key, env_params)

    def env_step(key, env_state, action):
        obs, env_state, reward, _, _ = two_colors.step(key, env_state, action, env_params)
        return obs, env_state, reward

    if config.method == "a2c":
        meta_net = None

        def entropy_weight(meta_params, history):
            del meta_params, history
            return jnp.float32(config.entropy_weight)

    else:
        meta_net = sigmoid_meta_net(
            hidden_size=config.meta_hidden_size,
            initial_value=config.entropy_weight,
            init=config.init,
        )
        entropy_weight = meta_net.apply

    learner = actor_critic.make_learner(nets, env_step, entropy_weight, agent_config)
    meta_opt = None if meta_net is None else _meta_optimizer(config, learner)

    def init(key):
        agent_key, meta_key = jax.random.split(key)
        agent = actor_critic.initial_state(nets, env_reset, agent_key, agent_config)
        if meta_net is None:
            return TrainState(agent, (), ())
        meta_params = meta_net.init(meta_key, agent.reward_history)
        return TrainState(agent, meta_params, meta_opt.init(meta_params, agent))

    def update(state: TrainState):
        agent = state.learner._replace(
            reward_sum=jnp.zeros_like(state.learner.reward_sum),
            env_steps=jnp.zeros_like(state.learner.env_steps),
        )
        if meta_opt is None:
            agent, aux = learner.inner_step(agent, ())
            step_aux, meta_loss = jax.tree.map(lambda x: x[None], aux), jnp.zeros(())
            meta_grad_norm = jnp.zeros(())
            state = TrainState(agent, (), ())
        else:
            out = trainer.meta_step(meta_opt, agent, state.meta_opt_state, state.meta_params)
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
