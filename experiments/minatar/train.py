"""The MinAtar training program: STACX (MG) and BMG meta-learning the agent's hyperparameters.

`build` wires a MinAtar game (`experiments.envs.minatar`), the STACX-style agent
(`agents.stacx`) and a meta-optimizer (`bmg`) into pure functions:

* ``init(key) -> TrainState`` for one seed;
* ``update(TrainState) -> (TrainState, UpdateMetrics)``: one meta-step of one seed (K inner
  steps, for BMG also the L-1 bootstrap steps and the target step, then the meta-update);
* ``chunk(TrainState) -> (TrainState, UpdateMetrics[U, S])``: ``updates_per_row`` meta-steps
  of the whole population inside one ``lax.scan``, the unit `train` jits once and calls
  between metric rows and checkpoints.

Environment steps, rollouts, inner updates and meta-updates all run inside that program:
the B environments of a seed are vmapped, the seeds are vmapped (in groups), and the
population is split over the devices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from agents import stacx
from agents.networks import minatar_multihead
from experiments.common import trainer
from experiments.envs import minatar
from experiments.minatar.config import AtariConfig


class TrainState(NamedTuple):
    """One seed's state: the agent, its meta-parameters and the meta-optimizer state."""

    learner: stacx.AgentState
    meta_params: stacx.Hypers
    meta_opt_state: Any


class UpdateMetrics(NamedTuple):
    """What one meta-step reports (per seed).

    Attributes:
      return_sum, episodes: returns and number of the episodes that ended in this meta-step.
      env_steps: the meta-step's environment steps.
      hypers: the hyperparameters (``[heads]`` each) averaged over its inner steps.
      entropy: the main head's policy entropy, averaged over its inner steps.
      meta_loss, meta_grad_norm: the meta-loss and the raw meta-gradient's norm.
    """

    return_sum: jax.Array
    episodes: jax.Array
    env_steps: jax.Array
    hypers: stacx.Hypers
    entropy: jax.Array
    meta_loss: jax.Array
    meta_grad_norm: jax.Array


def build(config: AtariConfig, env: stacx.Environment | None = None) -> trainer.Program:
    """The pure functions of a run of ``config`` (nothing is jitted here).

    Args:
      config: the run's config.
      env: the environment; by default the MinAtar game ``config.env``.
    """
    env = env or minatar.make(config.env)
    agent_config = config.agent_config()
    nets = minatar_multihead(
        num_actions=env.num_actions,
        num_heads=config.num_heads,
        channels=config.channels,
        hidden_size=config.hidden_size,
    )
    learner = stacx.make_learner(nets, env, agent_config)
    meta_opt = config.meta_optimizer(learner)

    def init(key):
        agent = stacx.initial_state(nets, env, key, agent_config)
        meta_params = stacx.initial_meta_params(agent_config, config.num_heads)
        return TrainState(agent, meta_params, meta_opt.init(meta_params, agent))

    def update(state: TrainState):
        zero = jnp.zeros_like
        agent = state.learner._replace(
            return_sum=zero(state.learner.return_sum),
            episodes=zero(state.learner.episodes),
            env_steps=zero(state.learner.env_steps),
        )
        out = trainer.meta_step(meta_opt, agent, state.meta_opt_state, state.meta_params)
        agent, step_aux = out.learner_state, out.step_aux
        metrics = UpdateMetrics(
            return_sum=agent.return_sum,
            episodes=agent.episodes,
            env_steps=agent.env_steps,
            hypers=jax.tree.map(lambda x: jnp.mean(x, axis=0), step_aux.hypers),
            entropy=jnp.mean(step_aux.entropy),
            meta_loss=out.meta_loss,
            meta_grad_norm=out.meta_grad_norm,
        )
        return TrainState(agent, out.meta_params, out.meta_opt_state), metrics

    return trainer.program(init, update, config)


def init_population(program: trainer.Program, config: AtariConfig) -> TrainState:
    """The initial states of all seeds, stacked on a leading axis."""
    return trainer.init_population(program, config)


def compiled(config: AtariConfig, sharding) -> tuple[trainer.Program, Callable]:
    """The program of ``config`` and its chunk, jitted once per config and sharding."""
    return trainer.compiled(build, config, sharding)


def metric_row(metrics: UpdateMetrics, *, frames: int) -> dict:
    """One row of ``metrics.jsonl`` from a chunk's ``[U, S]`` metrics (lists are per seed).

    ``episode_return`` is the mean return of the episodes that ended during the row (``None``
    for a seed where none did); hyperparameters are ``[seed][head]`` means over the row.
    """
    m = jax.tree.map(lambda x: np.asarray(x, np.float64), metrics)
    episodes = m.episodes.sum(axis=0)
    returns = m.return_sum.sum(axis=0)
    row = {
        "frames": int(frames),
        "episode_return": [
            round(float(r / n), 4) if n > 0 else None
            for r, n in zip(returns, episodes, strict=True)
        ],
        "episodes": episodes.astype(int).tolist(),
        "entropy": m.entropy.mean(axis=0).round(5).tolist(),
        "meta_loss": m.meta_loss.mean(axis=0).round(7).tolist(),
        "meta_grad_norm": m.meta_grad_norm.mean(axis=0).round(7).tolist(),
    }
    for name, values in m.hypers._asdict().items():
        row[name] = values.mean(axis=0).round(5).tolist()
    return row


def train(
    config: AtariConfig,
    run_dir: str | Path,
    *,
    progress: Callable[[int, int, float | None], None] | None = None,
    stop_after_rows: int | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Trains (or resumes) a run of ``config`` in ``run_dir`` (`trainer.train`);
    ``progress`` reports frames/s."""
    frames_per_row = config.updates_per_row * config.frames_per_update

    def row(metrics, index, extra):
        return extra, metric_row(metrics, frames=(index + 1) * frames_per_row)

    return trainer.train(
        config,
        run_dir,
        build=build,
        row=row,
        steps_per_row=frames_per_row,
        progress=progress,
        stop_after_rows=stop_after_rows,
        on_row=on_row,
    )
