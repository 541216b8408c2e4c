"""Host-side actors for the real ALE: threads that step emulators, a learner that consumes.

The split is Sebulba's (Podracer, Hessel et al. 2021; as in cleanba and Stoix): each actor
thread owns an `AtariVectorEnv`, acts with the latest parameters it has (a jitted policy), and
pushes *segments* — the K + L − 1 consecutive time-major rollouts one meta-step learns from —
into a bounded queue. The learner pops one segment per meta-step and publishes its new
parameters to a `ParamsSlot`.

Every segment gets a global ticket g in the order actors start collecting; an actor collects
segment g with parameter version g − 1 (version v = the parameters after v meta-steps;
segments 0 and 1 use version 0), waiting for it if need be. With one actor the learner
consumes segment g at its meta-step g, so the behaviour policy is exactly one version behind
the learner's (V-trace corrects for it; the lag is reported per segment), and the actor
collecting segment g + 1 works while the learner is on segment g: emulation and learning
overlap.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from agents.stacx import Rollout
from experiments.envs.ale import EpisodeReturns


def emulator_seed(*numbers: int) -> int:
    """An emulator seed (a non-negative int32) from ``numbers``, e.g. (seed, start row, actor)."""
    return int(np.random.SeedSequence(list(numbers)).generate_state(1)[0] >> 1)  # an int32


def make_policy(nets, seed: int, actor: int, start: int = 0):
    """``policy(params, obs, step) -> (actions, logits)``: the main head's softmax policy,
    jitted, with keys from ``(seed, start, actor, step)`` (``start``: the metric row the
    process began at, so a resumed run does not replay its first actions' randomness)."""
    base = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), start), actor)

    @jax.jit
    def act(params, obs, key):
        logits = nets.apply(params, obs)[0][:, 0]
        return jax.random.categorical(key, logits).astype(jnp.int32), logits

    def policy(params, obs, step):
        actions, logits = act(params, obs, jax.random.fold_in(base, step))
        return np.asarray(actions), np.asarray(logits)

    return policy


class ParamsSlot:
    """Published parameters by version (the last ``history`` of them); actors wait for one.

    Handing out exactly the version asked for, not merely the latest, makes what each segment
    acts with independent of thread timing, so a seed gives the same run every time.
    """

    def __init__(self, params: Any, history: int = 2):
        self._versions = {0: params}
        self._latest, self._history = 0, history
        self._changed = threading.Condition()
        self._closed = False

    def publish(self, params: Any) -> int:
        """Adds the next version of the parameters; returns its number."""
        with self._changed:
            self._latest += 1
            self._versions[self._latest] = params
            self._versions.pop(self._latest - self._history, None)
            self._changed.notify_all()
            return self._latest

    def wait_for(self, version: int) -> tuple[Any, int] | None:
        """``(params, version)`` once ``version`` is published (the oldest kept one if it is
        no longer kept); ``None`` if the slot was closed first."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._latest >= version)
            if self._closed:
                return None
            version = max(version, min(self._versions))
            return self._versions[version], version

    def close(self) -> None:
        """Releases every waiting actor (the run is over or failed)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()


@dataclasses.dataclass
class Segment:
    """What one meta-step learns from, and where it came from.

    Attributes:
      rollouts: a `Rollout` with a leading ``[N]`` axis of N = K + L − 1 consecutive
        rollouts (numpy; observations uint8).
      actor: the actor's index.
      sequence: the segment's index among that actor's segments (0, 1, ...).
      ticket: the segment's global index.
      version: the parameter version the actor acted with.
      episode_returns: raw returns of the games that ended during the segment.
    """

    rollouts: Rollout
    actor: int
    sequence: int
    ticket: int
    version: int
    episode_returns: list[float]


class Tickets:
    """Global segment numbers, handed out in the order actors start collecting."""

    def __init__(self):
        self._next, self._lock = 0, threading.Lock()

    def take(self) -> int:
        with self._lock:
            ticket, self._next = self._next, self._next + 1
            return ticket


def clip_rewards(rewards: np.ndarray, reward_clip: float) -> np.ndarray:
    """``rewards`` clipped to ``[-reward_clip, reward_clip]``, unchanged if ``reward_clip`` is
    0 (IMPALA and STACX learn from rewards clipped to [-1, 1])."""
    return np.clip(rewards, -reward_clip, reward_clip) if reward_clip else rewards


def collect_rollout(
    env: Any,
    obs: np.ndarray,
    policy: Callable,
    params: Any,
    steps: int,
    length: int,
    returns: EpisodeReturns,
    finished: list[float],
    *,
    reward_clip: float,
) -> tuple[np.ndarray, int, Rollout]:
    """Acts ``length`` steps in ``env`` from ``obs``; appends ended games' raw returns to
    ``finished``. Returns the next observations, the step count and the time-major rollout,
    whose rewards (what the agent learns from) are clipped to ``[-reward_clip, reward_clip]``
    (``0``: raw, unclipped); the returns in ``finished`` are the raw game scores."""
    columns: dict[str, list] = {"obs": [], "a": [], "r": [], "done": [], "logits": []}
    for _ in range(length):
        actions, logits = policy(params, obs, steps)
        actions = np.asarray(actions)
        next_obs, reward, terminated, truncated, _ = env.step(actions)
        done = np.logical_or(terminated, truncated)
        values = (obs, actions, reward, done, np.asarray(logits))
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
        finished += returns.update(reward, done)
        obs, steps = next_obs, steps + 1
    rollout = Rollout(
        obs_t=np.stack([*columns["obs"], obs]),
        a_t=np.stack(columns["a"]).astype(np.int32),
        r_t=clip_rewards(np.stack(columns["r"]).astype(np.float32), reward_clip),
        done_t=np.stack(columns["done"]),
        logits_t=np.stack(columns["logits"]).astype(np.float32),
    )
    return obs, steps, rollout


def run_actor(
    index: int,
    env: Any,
    obs: np.ndarray,
    policy: Callable[[Any, np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    slot: ParamsSlot,
    out: queue.Queue,
    tickets: Tickets,
    *,
    rollouts_per_segment: int,
    rollout_length: int,
    stop: threading.Event,
    reward_clip: float,
    steps: int = 0,
) -> None:
    """The body of one actor thread (until ``stop`` is set or ``slot`` is closed).

    Args:
      index: the actor's index.
      env: a vector environment with ale-py's ``step(actions) -> (obs, reward, terminated,
        truncated, info)``, resetting in the same step.
      obs: its current observations ``[B, ...]``.
      policy: ``policy(params, obs, step) -> (actions [B], logits [B, A])`` (the main head);
        ``step`` counts the actor's environment steps, for its random keys.
      slot: where the learner publishes parameters.
      out: the bounded queue of `Segment`s.
      tickets: the global segment counter shared by the actors.
      rollouts_per_segment: N = K + L − 1.
      rollout_length: T.
      stop: set to end the loop.
      reward_clip: the rollouts' rewards are clipped to ``[-reward_clip, reward_clip]``
        (`clip_rewards`).
      steps: environment steps the actor's env has taken already (its policy's step count).
    """
    returns = EpisodeReturns(obs.shape[0])
    sequence = 0
    while not stop.is_set():
        ticket = tickets.take()
        latest = slot.wait_for(max(0, ticket - 1))
        if latest is None:
            return
        params, version = latest
        finished: list[float] = []
        rollouts = []
        for _ in range(rollouts_per_segment):
            obs, steps, rollout = collect_rollout(
                env,
                obs,
                policy,
                params,
                steps,
                rollout_length,
                returns,
                finished,
                reward_clip=reward_clip,
            )
            rollouts.append(rollout)
        segment = Segment(
            rollouts=Rollout(*(np.stack(leaves) for leaves in zip(*rollouts, strict=True))),
            actor=index,
            sequence=sequence,
            ticket=ticket,
            version=version,
            episode_returns=finished,
        )
        while not stop.is_set():
            try:
                out.put(segment, timeout=0.1)
                break
            except queue.Full:
                continue
        sequence += 1
