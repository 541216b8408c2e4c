"""Host-side actors: every rollout reaches the learner once and in order, the policy lag is
bounded, and a real ALE actor produces well-formed segments."""

import queue
import threading
import time

import numpy as np
import pytest

from experiments.atari import actors
from experiments.envs import ale

B, T, N = 2, 3, 2  # environments per actor, rollout length, rollouts per segment


class CountingEnv:
    """Observations number the steps: obs[b] is filled with (this env's step count) % 256."""

    def __init__(self, offset=0, reward=1.0):
        self.t, self.reward = offset, reward

    def step(self, actions):
        assert actions.shape == (B,)
        self.t += 1
        obs = np.full((B, 1, 2, 2), self.t % 256, np.uint8)
        done = np.array([self.t % 5 == 0] * B)
        return obs, np.full(B, self.reward, np.float32), done, np.zeros(B, bool), {}


def _policy(params, obs, step):
    """Acts 0; its logits carry the parameter version, so a segment says what it acted with."""
    return np.zeros(obs.shape[0], np.int32), np.full((obs.shape[0], 3), params, np.float32)


def _run(num_actors, meta_steps, learner_delay=0.0, reward=1.0, reward_clip=1.0):
    slot, out = actors.ParamsSlot(0, history=num_actors + 1), queue.Queue(maxsize=2)
    tickets, stop = actors.Tickets(), threading.Event()
    threads = [
        threading.Thread(
            target=actors.run_actor,
            args=(
                i,
                CountingEnv(reward=reward),
                np.zeros((B, 1, 2, 2), np.uint8),
                _policy,
                slot,
                out,
                tickets,
            ),
            kwargs=dict(
                rollouts_per_segment=N, rollout_length=T, stop=stop, reward_clip=reward_clip
            ),
            daemon=True,
        )
        for i in range(num_actors)
    ]
    for thread in threads:
        thread.start()
    consumed = []
    for step in range(meta_steps):
        segment = out.get(timeout=30)
        consumed.append((step, segment))
        time.sleep(learner_delay)  # the meta-step
        slot.publish(step + 1)
    stop.set()
    slot.close()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    return consumed


@pytest.mark.parametrize("learner_delay", [0.0, 0.01])
def test_one_actor_hands_over_every_rollout_once_in_order_one_version_behind(learner_delay):
    """(With no delay the actor could otherwise run ahead; with one, the learner lags.)"""
    consumed = _run(1, 12, learner_delay)
    frames = []
    for step, segment in consumed:
        assert segment.rollouts.obs_t.shape == (N, T + 1, B, 1, 2, 2)
        assert segment.rollouts.obs_t.dtype == np.uint8
        assert segment.sequence == segment.ticket == step
        # The learner is at version `step` when it consumes the segment; it was collected
        # with version step - 1 (segments 0 and 1 with version 0), whatever the timing.
        assert segment.version == max(0, step - 1)
        np.testing.assert_array_equal(segment.rollouts.logits_t, segment.version)
        for rollout_obs in segment.rollouts.obs_t:
            frames.append(rollout_obs[:, 0, 0, 0, 0])
    # Consecutive rollouts share their boundary observation, and no step is lost or repeated.
    for previous, current in zip(frames, frames[1:], strict=False):
        assert previous[-1] == current[0]
    steps = np.concatenate([frames[0][:1]] + [f[1:] for f in frames])
    np.testing.assert_array_equal(steps, np.arange(len(steps)) % 256)


def test_two_actors_each_stay_in_order_and_close_behind():
    consumed = _run(2, 16, 0.005)
    assert sorted(s.ticket for _, s in consumed) == sorted(set(s.ticket for _, s in consumed))
    for actor in (0, 1):
        sequences = [s.sequence for _, s in consumed if s.actor == actor]
        assert sequences == list(range(len(sequences))) and len(sequences) >= 2
    assert max(step - s.version for step, s in consumed) <= 2


def test_episode_returns_are_reported_with_the_segment():
    consumed = _run(1, 4)
    returns = [r for _, s in consumed for r in s.episode_returns]
    # Done every 5 steps with reward 1 in each of B environments: returns of 5 (the first 5).
    assert returns[: 2 * B] == [5.0] * (2 * B)


@pytest.mark.parametrize(
    ("reward", "reward_clip", "learnt"),
    [(10.0, 1.0, 1.0), (-3.0, 1.0, -1.0), (10.0, 0.0, 10.0), (0.5, 1.0, 0.5)],
)
def test_the_agent_learns_from_clipped_rewards_and_scores_are_raw(reward, reward_clip, learnt):
    consumed = _run(1, 4, reward=reward, reward_clip=reward_clip)
    for _, segment in consumed:
        np.testing.assert_array_equal(segment.rollouts.r_t, learnt)
    returns = [r for _, s in consumed for r in s.episode_returns]
    assert returns[: 2 * B] == [5 * reward] * (2 * B)  # game scores: the raw rewards


def test_a_real_ale_actor_makes_well_formed_segments():
    env, obs = ale.make("ms_pacman", B, seed=0)
    rng = np.random.default_rng(0)

    def random_policy(params, obs, step):
        return rng.integers(0, 9, size=obs.shape[0]), np.zeros((obs.shape[0], 9), np.float32)

    slot, out, tickets = actors.ParamsSlot(0), queue.Queue(1), actors.Tickets()
    stop = threading.Event()
    thread = threading.Thread(
        target=actors.run_actor,
        args=(0, env, obs, random_policy, slot, out, tickets),
        kwargs=dict(rollouts_per_segment=N, rollout_length=T, stop=stop, reward_clip=1.0),
        daemon=True,
    )
    thread.start()
    segment = out.get(timeout=60)
    stop.set()
    slot.close()
    thread.join(timeout=10)
    env.close()
    r = segment.rollouts
    assert r.obs_t.shape == (N, T + 1, B, 4, 84, 84) and r.obs_t.dtype == np.uint8
    assert r.a_t.shape == r.r_t.shape == r.done_t.shape == (N, T, B)
    assert r.logits_t.shape == (N, T, B, 9)
    np.testing.assert_array_equal(r.obs_t[0, -1], r.obs_t[1, 0])
