"""STACX or BMG on the real ALE: actor threads on the host, the meta-step jitted on a device.

`run(config, meta_steps)` builds the emulators, the Atari torso, the fed STACX learner
(`agents.stacx.make_learner(nets, None, ...)`) and its meta-optimizer (`agents.stacx_meta`),
collects a first rollout, starts the actors (`experiments.atari.actors`) and runs meta-steps
on the segments they deliver, publishing the parameters after each one. Observations cross to
the device as uint8. A meta-step whose meta-loss or parameters are not finite stops the run
with `NonFiniteError`.

This is the pipeline only: run directories, resume and the command line build on it.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import bmg
from agents import rollout_feed, stacx, stacx_meta
from agents.networks import atari_multihead
from experiments.atari import actors
from experiments.common import trainer
from experiments.envs import ale


class NonFiniteError(RuntimeError):
    """A meta-step produced NaN or infinite values."""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The settings of a real-ALE run (the experiment's flags; unconfirmed ones documented in
    ``docs/atari.md``).

    Attributes:
      game: one of the 57 games (ale-py's ROM name).
      method: ``stacx`` or ``bmg``.
      seed: the parameters', the policies' and the emulators' seed.
      num_actors: actor threads, each with its own `AtariVectorEnv`.
      num_envs: emulators per actor (the batch B of a rollout).
      rollout_length: T.
      num_inner_steps, bootstrap_steps: K and L (BMG); a meta-step learns from K + L − 1
        rollouts.
      target_optimizer, target_learning_rate, target_statistics, matching,
        value_match_weight: BMG's target step and matching (`agents.stacx_meta`);
        ``target_learning_rate=None`` is the inner rate for RMSProp, 0.1 for SGD.
      torso: ``impala`` (STACX's deep ResNet) or ``nature``.
      num_heads: main head + auxiliary heads.
      learning_rate: the inner RMSProp's rate.
      meta_learning_rate, meta_eps: the Adam meta-optimizer's.
      settings: the emulator protocol.
    """

    game: str = "ms_pacman"
    method: str = "bmg"
    seed: int = 0
    num_actors: int = 1
    num_envs: int = 8
    rollout_length: int = 20
    num_inner_steps: int = 1
    bootstrap_steps: int = 1
    target_optimizer: str = "rmsprop"
    target_learning_rate: float | None = None
    target_statistics: str = "learner"
    matching: str = "kl_v"
    value_match_weight: float = 1.0
    torso: str = "impala"
    num_heads: int = 3
    learning_rate: float = 6e-4
    meta_learning_rate: float = 1e-3
    meta_eps: float = 1e-8
    settings: ale.AleSettings = ale.AleSettings()

    @property
    def rollouts_per_meta_step(self) -> int:
        """K + L − 1 for BMG, K for STACX."""
        extra = self.bootstrap_steps - 1 if self.method == "bmg" else 0
        return self.num_inner_steps + extra

    def agent_config(self) -> stacx.StacxConfig:
        return stacx.StacxConfig(
            num_envs=self.num_envs,
            rollout_length=self.rollout_length,
            learning_rate=self.learning_rate,
        )


def _meta_optimizer(config: PipelineConfig, learner):
    target_lr = config.target_learning_rate
    if target_lr is None:
        target_lr = config.learning_rate if config.target_optimizer == "rmsprop" else 0.1
    bmg_only = {}
    if config.method == "bmg":
        bmg_only = dict(
            bootstrap_steps=config.bootstrap_steps,
            target_optimizer=config.target_optimizer,
            target_learning_rate=target_lr,
            target_statistics=config.target_statistics,
            matching=config.matching,
            value_match_weight=config.value_match_weight,
        )
    return stacx_meta.make_meta_optimizer(
        learner,
        config.agent_config(),
        num_heads=config.num_heads,
        method=config.method,
        num_inner_steps=config.num_inner_steps,
        meta_learning_rate=config.meta_learning_rate,
        meta_eps=config.meta_eps,
        **bmg_only,
    )


def make_policy(nets, seed: int, actor: int):
    """``policy(params, obs, step) -> (actions, logits)``: the main head's softmax policy,
    jitted, with the key ``fold_in(fold_in(PRNGKey(seed), actor), step)``."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), actor)

    @jax.jit
    def act(params, obs, key):
        logits = nets.apply(params, obs)[0][:, 0]
        return jax.random.categorical(key, logits).astype(jnp.int32), logits

    def policy(params, obs, step):
        actions, logits = act(params, obs, jax.random.fold_in(base, step))
        return np.asarray(actions), np.asarray(logits)

    return policy


def run(config: PipelineConfig, meta_steps: int, *, on_step=None) -> list[dict[str, Any]]:
    """Trains for ``meta_steps`` meta-steps; returns one row per meta-step.

    A row holds the frames so far, the raw returns of the games that ended in the segment,
    the policy lag (learner version − the segment's version), the meta-loss and the main
    head's hyperparameters. ``on_step(row)`` is called after each meta-step.
    """
    ale.check_game(config.game)
    agent_config = config.agent_config()
    envs = [
        ale.make(config.game, config.num_envs, config.settings, seed=config.seed * 1000 + i)
        for i in range(config.num_actors)
    ]
    num_actions = int(envs[0][0].single_action_space.n)
    nets = atari_multihead(num_actions=num_actions, num_heads=config.num_heads, torso=config.torso)
    params = jax.jit(nets.init)(jax.random.PRNGKey(config.seed), envs[0][1][0])
    policies = [make_policy(nets, config.seed, i) for i in range(config.num_actors)]
    learner = stacx.make_learner(nets, None, agent_config)
    meta_opt = _meta_optimizer(config, learner)

    # The rollout the first inner step learns from, from actor 0's emulators.
    returns0, finished0 = ale.EpisodeReturns(config.num_envs), []
    env0, obs0 = envs[0]
    obs0, steps0, first = actors.collect_rollout(
        env0, obs0, policies[0], params, 0, config.rollout_length, returns0, finished0
    )
    envs[0] = (env0, obs0)
    state = stacx.initial_state_from_rollout(params, jax.device_put(first), agent_config)
    meta_params = stacx.initial_meta_params(agent_config, config.num_heads)
    meta_opt_state = meta_opt.init(meta_params, state)

    @jax.jit
    def meta_step(state, meta_opt_state, meta_params, rollouts):
        out = trainer.meta_step(
            meta_opt, rollout_feed.feed(state, rollouts), meta_opt_state, meta_params
        )
        leaves = jax.tree.leaves((out.meta_loss, out.learner_state.params, out.meta_params))
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
        hypers = bmg.hyper.constrain(
            out.meta_params, stacx.hyper_spec(agent_config, config.num_heads)
        )
        return out.learner_state, out.meta_opt_state, out.meta_params, out.meta_loss, hypers, finite

    slot = actors.ParamsSlot(params, history=config.num_actors + 1)
    out: queue.Queue = queue.Queue(maxsize=2 * config.num_actors)
    tickets, stop = actors.Tickets(), threading.Event()
    threads = [
        threading.Thread(
            target=actors.run_actor,
            args=(i, env, obs, policies[i], slot, out, tickets),
            kwargs=dict(
                rollouts_per_segment=config.rollouts_per_meta_step,
                rollout_length=config.rollout_length,
                stop=stop,
                steps=steps0 if i == 0 else 0,
            ),
            daemon=True,
            name=f"ale-actor-{i}",
        )
        for i, (env, obs) in enumerate(envs)
    ]
    for thread in threads:
        thread.start()
    frames_per_rollout = config.rollout_length * config.num_envs * config.settings.frame_skip
    frames, rows = frames_per_rollout, []
    try:
        for step in range(meta_steps):
            segment = out.get()
            rollouts = jax.device_put(segment.rollouts)
            state, meta_opt_state, meta_params, meta_loss, hypers, finite = meta_step(
                state, meta_opt_state, meta_params, rollouts
            )
            if not bool(finite):
                raise NonFiniteError(f"meta-step {step + 1}: non-finite meta-loss or parameters")
            slot.publish(state.params)
            frames += config.rollouts_per_meta_step * frames_per_rollout
            row = {
                "meta_step": step + 1,
                "frames": frames,
                "episode_returns": (finished0 if step == 0 else []) + segment.episode_returns,
                "actor": segment.actor,
                "lag": step - segment.version,
                "meta_loss": float(meta_loss),
                **{name: np.asarray(v).round(6).tolist() for name, v in hypers._asdict().items()},
            }
            rows.append(row)
            if on_step is not None:
                on_step(row)
    finally:
        stop.set()
        slot.close()
        for thread in threads:
            thread.join(timeout=30)
        for env, _ in envs:
            env.close()
    return rows
