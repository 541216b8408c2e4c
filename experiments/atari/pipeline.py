"""STACX or BMG on the real ALE: actor threads on the host, the meta-step jitted on a device.

`Pipeline(config)` builds the emulators, the Atari torso, the fed STACX learner
(`agents.stacx.make_learner(nets, None, ...)`) and its meta-optimizer (`agents.stacx_meta`).
``fresh()`` collects a first rollout and returns the initial `TrainState`; ``start(state)``
starts the actors (`experiments.atari.actors`) acting with its parameters; ``meta_step(state)``
runs one jitted meta-step on the next segment they deliver and publishes the parameters.
Observations cross to the device as uint8. A meta-step whose meta-loss or parameters are not
finite stops with `NonFiniteError` (the state it returns is the last good one).

`run(config, meta_steps)` is the whole loop without a run directory (tests, benchmarks);
`experiments.atari.train` adds run directories, resume and progress.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

import bmg
from agents import rollout_feed, stacx
from agents.networks import atari_multihead
from experiments.atari import actors
from experiments.atari.config import AleConfig
from experiments.common import distributed, trainer
from experiments.common.config_checks import ConfigError
from experiments.common.guard import NonFiniteError
from experiments.envs import ale


class TrainState(NamedTuple):
    """What a checkpoint holds: the learner (with the rollout its next inner step learns
    from), the meta-parameters and the meta-optimizer state."""

    learner: stacx.AgentState
    meta_params: stacx.Hypers
    meta_opt_state: Any


class Pipeline:
    """The emulators, the actors and the jitted meta-step of one seed's run.

    Build it, then ``open(start)`` the emulators, then ``fresh()`` (a new run) or take a
    restored state, then ``start(state)`` the actors and call ``meta_step``; ``close()`` at
    the end.

    Raises:
      ConfigError: the game is not one of the 57, or ale-py has no ROM for it.
    """

    def __init__(self, config: AleConfig):
        try:
            ale.check_game(config.game)
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self.config, self.agent_config = config, config.agent_config()
        self.num_actions = ale.num_actions(config.game, config.settings)
        self.nets = atari_multihead(
            num_actions=self.num_actions,
            num_heads=config.num_heads,
            torso=config.torso,
            conv=config.conv,
        )
        self.learner = stacx.make_learner(self.nets, None, self.agent_config)
        self.meta_opt = config.meta_optimizer(self.learner)
        self._shard_learner(config.learner_devices)
        shardings = None
        if self._state_shardings is not None:  # the state keeps its layout from step to step
            r = self._replicated
            shardings = (self._state_shardings, r, r, r)
        self._meta_step = jax.jit(self._meta_step_fn, out_shardings=shardings)
        self.envs: list = []
        self._threads: list[threading.Thread] = []
        self.first_returns: list[float] = []  # games that ended in `fresh`'s first rollout
        self._steps0 = 0

    def _shard_learner(self, count: int) -> None:
        """Data parallelism over ``count`` local devices of each of the run's processes.

        One mesh axis spans the learner devices of every process (process 0's first): the
        rollouts' environment axis is split over it, each process's actors filling its own
        devices' share, and the parameters and optimizer states are replicated on it, so
        the jitted meta-step runs each device's share of the global batch and XLA inserts
        the all-reduce that averages the gradients (what ``pmean`` does in a ``pmap``, here
        from the shardings alone). The state's per-environment parts (the rollout its next
        inner step learns from, the current observations) are split like the rollouts.
        The actors receive parameters on their process's first device.
        """
        devices = jax.local_devices()
        processes = jax.process_count()
        if count > len(devices):
            raise ConfigError(
                f"learner_devices={count}, but this process has {len(devices)} local device(s)"
            )
        self._actor_device = devices[0]
        self._state_shardings = self._batch_sharding = None
        if count == 1 and processes == 1:
            return
        by_process = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
        mesh_devices = [
            d
            for p in range(processes)
            for d in [x for x in by_process if x.process_index == p][:count]
        ]
        mesh = Mesh(np.array(mesh_devices), ("batch",))
        replicated = NamedSharding(mesh, PartitionSpec())
        # Rollouts are [T(+1), B, ...] and segments [rollouts, T(+1), B, ...].
        per_env = {
            axis: NamedSharding(mesh, PartitionSpec(*[None] * axis, "batch")) for axis in (0, 1, 2)
        }
        self._batch_sharding, self._per_env = per_env[2], per_env
        template = self.template()
        shardings = jax.tree.map(lambda _: replicated, template)
        learner = shardings.learner._replace(
            rollout=jax.tree.map(lambda _: per_env[1], template.learner.rollout),
            obs=per_env[0],
            episode_return=per_env[0],
        )
        self._state_shardings = shardings._replace(learner=learner)
        self._replicated = replicated

    def place_state(self, state: TrainState) -> TrainState:
        """``state`` (host or device arrays; in a multi-process run the same whole state on
        every process, e.g. restored from a checkpoint) put on the learner's devices."""
        if self._state_shardings is None:
            return jax.device_put(state)
        if self._placed(state):
            return state
        return distributed.place(state, self._state_shardings)

    def _placed(self, state: TrainState) -> bool:
        leaves = jax.tree.leaves(state)
        shardings = jax.tree.leaves(self._state_shardings)
        return all(
            isinstance(x, jax.Array) and x.sharding == s
            for x, s in zip(leaves, shardings, strict=True)
        )

    def _place(self, state: TrainState, rollouts):
        if self._batch_sharding is None:
            return state, jax.device_put(rollouts)
        state = self.place_state(state)
        # This process's actors' share of the global batch.
        return state, jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(self._batch_sharding, x), rollouts
        )

    def open(self, start: int = 0) -> None:
        """Starts the emulators (reset) and builds the policies.

        Args:
          start: the metric row this process starts at (0 for a new run): the emulators'
            seeds and the policies' keys come from ``(seed, start, actor)``, so a resumed
            run plays new episodes rather than its first ones again.
        """
        config = self.config
        self.envs = [
            ale.make(
                config.game,
                config.num_envs,
                config.settings,
                seed=actors.emulator_seed(config.seed, start, self._actor_index(i)),
            )
            for i in range(config.num_actors)
        ]
        self.policies = [
            actors.make_policy(self.nets, config.seed, self._actor_index(i), start)
            for i in range(config.num_actors)
        ]

    def _actor_index(self, i: int) -> int:
        """The run-wide index of this process's actor ``i`` (its emulators' and policy's
        seeds)."""
        return i + self.config.num_actors * jax.process_index()

    # --- the state -------------------------------------------------------------------------

    def initial_state(self, params: Any, first: stacx.Rollout) -> TrainState:
        """The state of a new run with ``params``, its first inner step learning from
        ``first``."""
        learner = stacx.initial_state_from_rollout(params, first, self.agent_config)
        meta_params = stacx.initial_meta_params(self.agent_config, self.config.num_heads)
        return TrainState(learner, meta_params, self.meta_opt.init(meta_params, learner))

    def template(self) -> TrainState:
        """The state's structure (`jax.ShapeDtypeStruct` leaves), for a checkpoint."""
        c = self.config
        t, b = c.rollout_length, c.num_envs * jax.process_count()  # the global batch
        obs = jax.ShapeDtypeStruct((b, c.frame_stack, c.size, c.size), jnp.uint8)
        first = stacx.Rollout(
            obs_t=jax.ShapeDtypeStruct((t + 1, *obs.shape), obs.dtype),
            a_t=jax.ShapeDtypeStruct((t, b), jnp.int32),
            r_t=jax.ShapeDtypeStruct((t, b), jnp.float32),
            done_t=jax.ShapeDtypeStruct((t, b), jnp.bool_),
            logits_t=jax.ShapeDtypeStruct((t, b, self.num_actions), jnp.float32),
        )
        params = jax.eval_shape(self.nets.init, jax.random.PRNGKey(0), obs)
        return jax.eval_shape(self.initial_state, params, first)

    def fresh(self) -> TrainState:
        """A new run's state: initial parameters, and a first rollout from actor 0."""
        env0, obs0 = self.envs[0]
        params = jax.jit(self.nets.init)(jax.random.PRNGKey(self.config.seed), obs0)
        returns, self.first_returns = ale.EpisodeReturns(self.config.num_envs), []
        obs0, self._steps0, first = actors.collect_rollout(
            env0,
            obs0,
            self.policies[0],
            params,
            0,
            self.config.rollout_length,
            returns,
            self.first_returns,
            reward_clip=self.config.reward_clip,
        )
        self.envs[0] = (env0, obs0)
        if self._state_shardings is None:
            return jax.jit(self.initial_state)(params, jax.device_put(first))
        # Every process has the same initial parameters; each brings its share of the first
        # rollout (the global one is the processes' rollouts side by side).
        params = distributed.place(params, self._replicated)
        first = jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(self._per_env[1], x), first
        )
        return jax.jit(self.initial_state, out_shardings=self._state_shardings)(params, first)

    # --- the actors --------------------------------------------------------------------------

    def start(self, state: TrainState) -> None:
        """Starts the actor threads, acting first with ``state``'s parameters."""
        config = self.config
        self._slot = actors.ParamsSlot(state.learner.params, history=config.num_actors + 1)
        self._queue: queue.Queue = queue.Queue(maxsize=2 * config.num_actors)
        self._stop = threading.Event()
        tickets = actors.Tickets()
        self._threads = [
            threading.Thread(
                target=actors.run_actor,
                args=(i, env, obs, self.policies[i], self._slot, self._queue, tickets),
                kwargs=dict(
                    rollouts_per_segment=config.rollouts_per_update,
                    rollout_length=config.rollout_length,
                    stop=self._stop,
                    reward_clip=config.reward_clip,
                    steps=self._steps0 if i == 0 else 0,
                ),
                daemon=True,
                name=f"ale-actor-{i}",
            )
            for i, (env, obs) in enumerate(self.envs)
        ]
        for thread in self._threads:
            thread.start()
        self._version = 0

    def close(self) -> None:
        """Stops the actors and closes the emulators."""
        if self._threads:
            self._stop.set()
            self._slot.close()
            for thread in self._threads:
                thread.join(timeout=30)
            self._threads = []
        for env, _ in self.envs:
            env.close()
        self.envs = []

    # --- one meta-step -----------------------------------------------------------------------

    def _meta_step_fn(self, state: TrainState, rollouts):
        out = trainer.meta_step(
            self.meta_opt,
            rollout_feed.feed(state.learner, rollouts),
            state.meta_opt_state,
            state.meta_params,
        )
        # The fed rollouts are all taken: the state keeps the structure of a fresh one (a
        # checkpoint's template, and one compilation).
        learner = out.learner_state._replace(env_state=None)
        leaves = jax.tree.leaves((out.meta_loss, learner.params, out.meta_params))
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
        spec = stacx.hyper_spec(self.agent_config, self.config.num_heads)
        hypers = bmg.hyper.constrain(out.meta_params, spec)
        new = TrainState(learner, out.meta_params, out.meta_opt_state)
        stats = {
            "meta_loss": out.meta_loss,
            "meta_grad_norm": out.meta_grad_norm,
            "entropy": jnp.mean(out.step_aux.entropy),
        }
        return new, stats, hypers, finite

    def learn(self, state: TrainState, rollouts):
        """The jitted meta-step on given rollouts (stacked ``[rollouts_per_update, ...]``, as
        the actors deliver them), without the queue, publishing or checks: what
        `meta_step` runs, for callers that bring their own data (the benchmark).

        Returns:
          ``(state, stats, hyperparameters, finite)``: ``stats`` the meta-loss, the raw
          meta-gradient's global norm and the main head's mean policy entropy in the step's
          inner (and bootstrap) updates, ``finite`` a boolean array.
        """
        return self._meta_step(*self._place(state, rollouts))

    def learn_cost(self, state: TrainState, rollouts) -> dict[str, float]:
        """XLA's cost analysis of the compiled meta-step on ``rollouts`` (as `learn`): its
        ``flops`` and ``bytes accessed``, for the benchmark. A loop's body is counted once,
        so with ``bootstrap_steps`` > 2 (a scan over the target's steps) it is a lower
        bound."""
        cost = self._meta_step.lower(*self._place(state, rollouts)).compile().cost_analysis()
        if isinstance(cost, list):  # older JAX: one dict per computation
            cost = cost[0]
        return {k: float(cost.get(k, 0.0)) for k in ("flops", "bytes accessed")}

    def meta_step(
        self, state: TrainState, *, check: bool = True
    ) -> tuple[TrainState, dict[str, Any]]:
        """One meta-step on the next segment the actors deliver; publishes the parameters.

        Returns:
          The new state and what the step reports: the raw returns of the games that ended
          in its segment, the segment's actor and policy lag (learner version − the version
          it acted with), the meta-loss, the meta-gradient's norm, the main head's policy
          entropy in the step's updates and the main and auxiliary heads' hyperparameters.

        Raises:
          NonFiniteError: (if ``check``) the meta-loss, the parameters or the meta-parameters
            are not finite. Without ``check`` the non-finite state is returned for the
            caller's guard (`runs.train_rows`). Non-finite parameters are never published.
        """
        segment = self._queue.get()
        new, stats, hypers, finite = self.learn(state, segment.rollouts)
        lag = self._version - segment.version
        if bool(finite):
            params = new.learner.params
            if self._batch_sharding is not None:  # the local copy of the replicated params
                params = jax.tree.map(lambda x: x.addressable_data(0), params)
            self._version = self._slot.publish(params)
        elif check:
            raise NonFiniteError(
                f"meta-step {self._version + 1} of this process: non-finite meta-loss or parameters"
            )
        report = {
            "episode_returns": segment.episode_returns,
            "actor": segment.actor,
            "lag": lag,
            "meta_loss": float(stats["meta_loss"]),
            "meta_grad_norm": float(stats["meta_grad_norm"]),
            "entropy": float(stats["entropy"]),
            **{name: np.asarray(v).round(6).tolist() for name, v in hypers._asdict().items()},
        }
        return new, report


def run(config: AleConfig, meta_steps: int, *, on_step=None) -> list[dict[str, Any]]:
    """Trains a new run for ``meta_steps`` meta-steps; returns one row per meta-step.

    A row is `Pipeline.meta_step`'s report with the meta-step's number and the frames so far
    (the first rollout's and the segments'); the first row's ``episode_returns`` include the
    games that ended in the first rollout. ``on_step(row)`` is called after each meta-step.
    """
    pipe = Pipeline(config)
    try:
        pipe.open()
        state = pipe.fresh()
        pipe.start(state)
        frames, rows = config.frames_per_rollout, []
        for step in range(meta_steps):
            state, report = pipe.meta_step(state)
            frames += config.frames_per_update
            if step == 0:
                report["episode_returns"] = pipe.first_returns + report["episode_returns"]
            row = {"meta_step": step + 1, "frames": frames, **report}
            rows.append(row)
            if on_step is not None:
                on_step(row)
    finally:
        pipe.close()
    return rows
