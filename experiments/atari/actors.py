"""Host-side actors for the real ALE: threads that step emulators, a learner that consumes.

The split is Sebulba's (Podracer, Hessel et al. 2021; as in cleanba and Stoix): each actor
thread owns an `AtariVectorEnv`, acts with the latest parameters it has (a jitted policy), and
pushes *segments* — the K + L − 1 consecutive time-major rollouts one meta-step learns from —
into a bounded queue. The learner pops one segment per meta-step and publishes its new
parameters to a `ParamsSlot`.

Every segment gets a global ticket g in the order actors start collecting; an actor collects
segment g only once the learner has published version g − 1 (version v = the parameters
after v meta-steps). With one actor the learner consumes segment g at its meta-step g, so the
behaviour policy is at most one version behind the learner's (V-trace corrects for it; the
lag is reported per segment). The actor collecting segment g + 1 works while the learner is
on segment g: emulation and learning overlap.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from agents.stacx import Rollout
from experiments.envs.ale import EpisodeReturns


class ParamsSlot:
    """The latest published parameters and their version; readers can wait for a version."""

    def __init__(self, params: Any):
        self._params, self._version = params, 0
        self._changed = threading.Condition()
        self._closed = False

    def publish(self, params: Any) -> int:
        """Replaces the parameters by the next version; returns its number."""
        with self._changed:
            self._params, self._version = params, self._version + 1
            self._changed.notify_all()
            return self._version

    def wait_for(self, version: int) -> tuple[Any, int] | None:
        """The latest ``(params, version)`` once ``version`` or a later one is published;
        ``None`` if the slot was closed first."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or self._version >= version)
            return None if self._closed else (self._params, self._version)

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
    """
    returns = EpisodeReturns(obs.shape[0])
    steps = sequence = 0
    while not stop.is_set():
        ticket = tickets.take()
        latest = slot.wait_for(max(0, ticket - 1))
        if latest is None:
            return
        params, version = latest
        finished: list[float] = []
        rollouts = []
        for _ in range(rollouts_per_segment):
            columns: dict[str, list] = {"obs": [], "a": [], "r": [], "done": [], "logits": []}
            for _ in range(rollout_length):
                actions, logits = policy(params, obs, steps)
                actions = np.asarray(actions)
                next_obs, reward, terminated, truncated, _ = env.step(actions)
                done = np.logical_or(terminated, truncated)
                for name, value in zip(
                    columns, (obs, actions, reward, done, np.asarray(logits)), strict=True
                ):
                    columns[name].append(value)
                finished += returns.update(reward, done)
                obs, steps = next_obs, steps + 1
            rollouts.append(
                Rollout(
                    obs_t=np.stack([*columns["obs"], obs]),
                    a_t=np.stack(columns["a"]).astype(np.int32),
                    r_t=np.stack(columns["r"]).astype(np.float32),
                    done_t=np.stack(columns["done"]),
                    logits_t=np.stack(columns["logits"]).astype(np.float32),
                )
            )
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
