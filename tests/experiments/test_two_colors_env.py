"""Tests of the two-colors grid world and of its gymnasium adapter."""

import subprocess
import sys
import warnings

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from experiments.envs import register_envs, two_colors
from experiments.envs.gym_adapter import TwoColorsGymEnv

PARAMS = two_colors.EnvParams()
UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
STEP_REWARD = np.float32(-0.04)

_jit_step = jax.jit(two_colors.step, static_argnums=(3,))
_jit_reset = jax.jit(two_colors.reset, static_argnums=(1,))
_batched_reset = jax.jit(jax.vmap(two_colors.reset, in_axes=(0, None)), static_argnums=1)
# One state and action, a batch of keys.
_keys_step = jax.jit(jax.vmap(two_colors.step, in_axes=(0, None, None, None)), static_argnums=3)


def make_state(agent, obj0, obj1, time=0):
    return two_colors.EnvState(
        agent=jnp.asarray(agent, jnp.int32),
        objects=jnp.asarray([obj0, obj1], jnp.int32),
        time=jnp.asarray(time, jnp.int32),
    )


def test_public_sizes():
    assert two_colors.num_actions(PARAMS) == 4
    assert two_colors.observation_size(PARAMS) == 30
    assert two_colors.observation_size(two_colors.EnvParams(size=7)) == 42


@pytest.mark.parametrize(
    "agent, action, expected",
    [
        ((2, 2), UP, (1, 2)),
        ((2, 2), RIGHT, (2, 3)),
        ((2, 2), DOWN, (3, 2)),
        ((2, 2), LEFT, (2, 1)),
        ((0, 2), UP, (0, 2)),  # top wall
        ((2, 4), RIGHT, (2, 4)),  # right wall
        ((4, 2), DOWN, (4, 2)),  # bottom wall
        ((2, 0), LEFT, (2, 0)),  # left wall
        ((0, 0), UP, (0, 0)),  # corner, both walls
        ((0, 0), LEFT, (0, 0)),
        ((4, 4), DOWN, (4, 4)),
        ((4, 4), RIGHT, (4, 4)),
    ],
)
def test_moves_and_walls(agent, action, expected):
    state = make_state(agent, (1, 0), (3, 0), time=7)  # objects away from every target
    obs, new, reward, done, info = _jit_step(jax.random.PRNGKey(0), state, action, PARAMS)
    np.testing.assert_array_equal(new.agent, expected)
    np.testing.assert_array_equal(new.objects, state.objects)
    assert int(new.time) == 8
    assert reward.dtype == jnp.float32 and reward == STEP_REWARD
    assert done.dtype == jnp.bool_ and not bool(done)
    assert int(info["collected"]) == -1
    np.testing.assert_array_equal(obs, two_colors.observation(new, PARAMS))


def _collect(agent, obj0, obj1, action, time, params=PARAMS, key=0):
    state = make_state(agent, obj0, obj1, time)
    return _jit_step(jax.random.PRNGKey(key), state, action, params)


def test_collect_object_0_and_respawn():
    agent, obj0, obj1 = (2, 2), (2, 3), (0, 0)
    keys = jax.random.split(jax.random.PRNGKey(1), 500)
    state = make_state(agent, obj0, obj1)
    _, new, reward, done, info = _keys_step(keys, state, RIGHT, PARAMS)
    np.testing.assert_array_equal(reward, np.ones(500, np.float32))
    np.testing.assert_array_equal(info["collected"], np.zeros(500, np.int32))
    assert not np.any(done)
    np.testing.assert_array_equal(new.agent, np.tile(obj0, (500, 1)))  # agent stays on it
    np.testing.assert_array_equal(new.objects[:, 1], np.tile(obj1, (500, 1)))  # unchanged
    respawn = np.asarray(new.objects[:, 0])
    assert np.all((respawn >= 0) & (respawn < 5))
    cells = {tuple(c) for c in respawn.tolist()}
    assert obj0 not in cells  # the agent's cell
    assert obj1 not in cells
    assert len(cells) > 10  # 23 free cells; 500 draws cover most of them


def test_respawn_is_uniform_over_the_free_cells():
    agent, obj0, obj1 = (2, 2), (2, 3), (0, 0)
    draws = 23 * 400
    keys = jax.random.split(jax.random.PRNGKey(7), draws)
    _, new, _, _, _ = _keys_step(keys, make_state(agent, obj0, obj1), RIGHT, PARAMS)
    cells, counts = np.unique(np.asarray(new.objects[:, 0]), axis=0, return_counts=True)
    assert len(cells) == 23  # every free cell, and only free cells
    assert {tuple(c) for c in cells.tolist()}.isdisjoint({obj0, obj1})
    # Each count is Binomial(9200, 1/23): mean 400, std about 19.6; allow 5 std.
    assert np.all(np.abs(counts - 400) < 5 * 19.6), counts


def test_collect_object_1_gives_its_reward_and_respawns_it():
    _, new, reward, _, info = _collect((1, 1), (3, 3), (0, 1), UP, time=0)
    assert reward == np.float32(-1.0)
    assert int(info["collected"]) == 1
    np.testing.assert_array_equal(new.agent, (0, 1))
    np.testing.assert_array_equal(new.objects[0], (3, 3))
    assert tuple(new.objects[1].tolist()) not in {(0, 1), (3, 3)}


def test_respawn_never_on_occupied_cell_in_crowded_grid():
    # 2 x 2 grid: the agent moves from (0, 0) onto object 0 at (0, 1); object 1 holds
    # (1, 1), so the free cells are the agent's old cell (0, 0) and (1, 0).
    params = two_colors.EnvParams(size=2)
    state = make_state((0, 0), (0, 1), (1, 1))
    keys = jax.random.split(jax.random.PRNGKey(2), 64)
    _, new, reward, _, _ = _keys_step(keys, state, RIGHT, params)
    np.testing.assert_array_equal(reward, np.ones(64, np.float32))
    np.testing.assert_array_equal(new.agent, np.tile((0, 1), (64, 1)))
    cells = {tuple(c) for c in np.asarray(new.objects[:, 0]).tolist()}
    assert cells == {(0, 0), (1, 0)}


@pytest.mark.parametrize(
    "swap_period, time, expected",
    [
        (10, 0, 1.0),
        (10, 9, 1.0),
        (10, 10, -1.0),
        (10, 19, -1.0),
        (10, 20, 1.0),
        (100_000, 99_999, 1.0),
        (100_000, 100_000, -1.0),
        (100_000, 200_000, 1.0),
    ],
)
def test_reward_swap(swap_period, time, expected):
    params = two_colors.EnvParams(swap_period=swap_period)
    _, _, reward0, _, _ = _collect((2, 2), (2, 3), (4, 4), RIGHT, time, params)
    _, _, reward1, _, _ = _collect((2, 2), (4, 4), (2, 3), RIGHT, time, params)
    assert reward0 == np.float32(expected)
    assert reward1 == np.float32(-expected)


def test_non_default_rewards():
    params = two_colors.EnvParams(step_reward=-0.5, object_rewards=(2.0, 0.25), swap_period=3)
    _, _, r, _, _ = _collect((2, 2), (0, 0), (4, 4), UP, 0, params)
    assert r == np.float32(-0.5)
    _, _, r, _, _ = _collect((2, 2), (1, 2), (4, 4), UP, 2, params)
    assert r == np.float32(2.0)
    _, _, r, _, _ = _collect((2, 2), (1, 2), (4, 4), UP, 3, params)
    assert r == np.float32(0.25)


def test_observation_encoding():
    state = make_state((1, 4), (0, 2), (3, 0))
    obs = np.asarray(two_colors.observation(state, PARAMS))
    assert obs.shape == (30,) and obs.dtype == np.float32
    expected = [1, 5 + 4, 10 + 0, 15 + 2, 20 + 3, 25 + 0]
    np.testing.assert_array_equal(np.flatnonzero(obs), expected)
    assert obs.sum() == 6


def test_reset_three_distinct_cells():
    keys = jax.random.split(jax.random.PRNGKey(3), 1000)
    obs, state = _batched_reset(keys, PARAMS)
    assert obs.shape == (1000, 30)
    np.testing.assert_array_equal(state.time, np.zeros(1000, np.int32))
    cells = np.concatenate([np.asarray(state.agent)[:, None], np.asarray(state.objects)], 1)
    flat = cells[..., 0] * 5 + cells[..., 1]
    assert np.all((cells >= 0) & (cells < 5))
    assert np.all(flat[:, 0] != flat[:, 1])
    assert np.all(flat[:, 0] != flat[:, 2])
    assert np.all(flat[:, 1] != flat[:, 2])
    for i in range(3):  # each of the three is spread over the grid
        assert len(np.unique(flat[:, i])) == 25
    one_hot = np.eye(5, dtype=np.float32)[cells.reshape(1000, 6)].reshape(1000, 30)
    np.testing.assert_array_equal(obs, one_hot)


def _rollout(reset_fn, step_fn, key, actions):
    key, reset_key = jax.random.split(key)
    obs, state = reset_fn(reset_key, PARAMS)
    observations, rewards = [obs], []
    for action in actions:
        key, step_key = jax.random.split(key)
        obs, state, reward, _, _ = step_fn(step_key, state, int(action), PARAMS)
        observations.append(obs)
        rewards.append(reward)
    return np.stack(observations), np.stack(rewards), state


def test_jit_matches_no_jit():
    actions = np.random.default_rng(0).integers(0, 4, size=25)
    key = jax.random.PRNGKey(4)
    obs_a, rew_a, state_a = _rollout(two_colors.reset, two_colors.step, key, actions)
    obs_b, rew_b, state_b = _rollout(_jit_reset, _jit_step, key, actions)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    jax.tree.map(np.testing.assert_array_equal, state_a, state_b)
    assert int(state_b.time) == 25


def test_vmap_over_keys_states_actions():
    batch = 8
    keys = jax.random.split(jax.random.PRNGKey(5), batch)
    obs, state = _batched_reset(keys, PARAMS)
    assert obs.shape == (batch, 30)
    actions = jnp.arange(batch) % 4
    step = jax.jit(jax.vmap(two_colors.step, in_axes=(0, 0, 0, None)), static_argnums=(3,))
    obs2, state2, reward, done, info = step(keys, state, actions, PARAMS)
    assert obs2.shape == (batch, 30) and reward.shape == (batch,) and done.shape == (batch,)
    assert info["collected"].shape == (batch,)
    keys, state, actions = jax.tree.map(np.asarray, (keys, state, actions))
    for i in range(batch):
        single = jax.tree.map(lambda x, i=i: x[i], state)
        o, s, r, _, _ = _jit_step(keys[i], single, actions[i], PARAMS)
        np.testing.assert_array_equal(o, obs2[i])
        np.testing.assert_array_equal(s.agent, state2.agent[i])
        assert r == reward[i]


def test_importing_the_experiments_registers_nothing():
    code = (
        "import gymnasium, experiments, experiments.envs, experiments.two_colors.train\n"
        "assert 'bmg/TwoColors-v0' not in gymnasium.envs.registry\n"
        "experiments.envs.register_envs()\n"
        "assert 'bmg/TwoColors-v0' in gymnasium.envs.registry\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_register_envs_is_idempotent():
    register_envs()
    register_envs()
    assert "bmg/TwoColors-v0" in gymnasium.envs.registry


def test_gymnasium_check_env():
    register_envs()
    env = gymnasium.make("bmg/TwoColors-v0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker reports problems as warnings too
        check_env(env.unwrapped)
    assert env.observation_space == gymnasium.spaces.Box(0, 1, (30,), np.float32)
    assert env.action_space == gymnasium.spaces.Discrete(4)
    env.close()


def test_gymnasium_kwargs_and_render():
    register_envs()
    env = gymnasium.make("bmg/TwoColors-v0", size=4, swap_period=7, render_mode="ansi")
    assert env.unwrapped.params == two_colors.EnvParams(size=4, swap_period=7)
    assert env.observation_space.shape == (24,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (24,)
    text = env.render()
    assert text.count("A") == 1 and text.count("0") == 1 and text.count("1") == 1
    assert len(text.splitlines()) == 4
    with pytest.raises(ValueError):
        env.unwrapped.step(4)


def test_gym_adapter_matches_jax_functions():
    seed, num_steps = 17, 200
    env = TwoColorsGymEnv()
    actions = np.random.default_rng(1).integers(0, 4, size=num_steps)
    obs_jax, rew_jax, state_jax = _rollout(_jit_reset, _jit_step, jax.random.PRNGKey(seed), actions)
    obs, info = env.reset(seed=seed)
    assert isinstance(obs, np.ndarray) and obs.dtype == np.float32
    observations, rewards = [obs], []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert isinstance(reward, float)
        assert terminated is False and truncated is False
        observations.append(obs)
        rewards.append(reward)
    np.testing.assert_array_equal(np.stack(observations), obs_jax)
    np.testing.assert_array_equal(np.asarray(rewards, np.float32), rew_jax)
    assert info["time"] == num_steps
    assert np.any(rew_jax != STEP_REWARD)  # the sequence collected something
    jax.tree.map(np.testing.assert_array_equal, env.state, state_jax)


def test_gym_reset_seed_determinism():
    env = TwoColorsGymEnv()
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    np.testing.assert_array_equal(a, b)
    unseeded = [env.reset()[0] for _ in range(10)]
    assert len({u.tobytes() for u in unseeded}) > 1
