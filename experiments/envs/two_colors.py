"""Non-stationary two-colors grid world, as a pure-function JAX environment.

This is the task of section 5.1 of "Bootstrapped Meta-Learning" (Flennerhag et al.,
ICLR 2022). An agent moves on a ``size x size`` grid (5 x 5 by default) that holds two
objects of different colours. Dynamics, per step:

* Actions are ``0 = up`` (row - 1), ``1 = right`` (col + 1), ``2 = down`` (row + 1) and
  ``3 = left`` (col - 1). A move into a wall leaves the agent where it is.
* If the agent lands on an object it collects it and receives that object's current
  reward; otherwise it receives ``step_reward``.
* Object ``i`` is worth ``object_rewards[i]`` in phase 0 and ``object_rewards[1 - i]`` in
  phase 1, where ``phase = (time // swap_period) % 2`` and ``time`` is the number of steps
  taken before the current one. The default rewards are ``(+1, -1)`` and the two values
  swap every 100,000 steps, which makes the task non-stationary.
* A collected object respawns on a uniformly random free cell (neither the agent's cell
  nor the other object's cell); the agent stays where it is and the other object does not
  move.
* The task is non-episodic: ``done`` is always ``False``.

The paper does not state the reward of a step that collects nothing nor what happens to
the objects after a collection; the step reward of -0.04 and "only the collected object
respawns" follow public replications and are unconfirmed by the paper.

The observation is a float32 vector of length ``6 * size``: the one-hot row and one-hot
column of the agent, then of object 0, then of object 1.

The API is functional in the style of gymnax: there is no Python-side state, all
randomness comes from explicit PRNG keys, and every function can be wrapped in
``jax.jit`` (with ``params`` closed over or marked static, since ``params.size`` decides
array shapes) and ``jax.vmap`` over keys, states and actions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

NUM_ACTIONS = 4

# Row and column offsets of the actions up, right, down, left.
_MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


class EnvParams(NamedTuple):
    """Static configuration of the two-colors grid world.

    Attributes:
        size: Side length of the square grid; decides array shapes, so it must be a
            Python int.
        step_reward: Reward of a step that collects nothing.
        object_rewards: Rewards of collecting object 0 and object 1 in phase 0; they are
            swapped in phase 1.
        swap_period: Number of steps between two swaps of the objects' rewards.
    """

    size: int = 5
    step_reward: float = -0.04
    object_rewards: tuple[float, float] = (1.0, -1.0)
    swap_period: int = 100_000


DEFAULT_PARAMS = EnvParams()


class EnvState(NamedTuple):
    """State of the two-colors grid world.

    Attributes:
        agent: int32 (2,), the agent's ``[row, col]``.
        objects: int32 (2, 2), ``objects[i]`` is the ``[row, col]`` of object ``i``.
        time: int32 scalar, the number of steps taken so far.
    """

    agent: chex.Array
    objects: chex.Array
    time: chex.Array


def num_actions(params: EnvParams = DEFAULT_PARAMS) -> int:
    """Returns the number of discrete actions (4: up, right, down, left)."""
    del params
    return NUM_ACTIONS


def observation_size(params: EnvParams = DEFAULT_PARAMS) -> int:
    """Returns the length of the observation vector, ``6 * params.size``."""
    return 6 * params.size


def observation(state: EnvState, params: EnvParams = DEFAULT_PARAMS) -> chex.Array:
    """Encodes a state as one-hot rows and columns of the agent and the two objects.

    Args:
        state: An unbatched state.
        params: Environment parameters.

    Returns:
        float32 vector of length ``6 * params.size``: one-hot(row), one-hot(col) of the
        agent, then of object 0, then of object 1.
    """
    coords = jnp.concatenate([state.agent[None], state.objects], axis=0).reshape(-1)
    return jax.nn.one_hot(coords, params.size, dtype=jnp.float32).reshape(-1)


def current_object_rewards(time: chex.Array, params: EnvParams = DEFAULT_PARAMS) -> chex.Array:
    """Returns the float32 (2,) rewards of objects 0 and 1 at step count ``time``."""
    rewards = jnp.asarray(params.object_rewards, dtype=jnp.float32)
    phase = (jnp.asarray(time, jnp.int32) // params.swap_period) % 2
    return jnp.where(phase == 0, rewards, rewards[::-1])


def _cell_coords(index: chex.Array, size: int) -> chex.Array:
    """Converts flat cell indices to int32 ``[row, col]`` along a trailing axis."""
    index = jnp.asarray(index, jnp.int32)
    return jnp.stack([index // size, index % size], axis=-1)


def reset(key: chex.PRNGKey, params: EnvParams = DEFAULT_PARAMS) -> tuple[chex.Array, EnvState]:
    """Places the agent and the two objects on three distinct uniformly random cells.

    Args:
        key: PRNG key.
        params: Environment parameters.

    Returns:
        ``(obs, state)`` with ``state.time == 0``.
    """
    num_cells = params.size * params.size
    cells = jax.random.choice(key, num_cells, shape=(3,), replace=False)
    coords = _cell_coords(cells, params.size)
    state = EnvState(agent=coords[0], objects=coords[1:], time=jnp.zeros((), jnp.int32))
    return observation(state, params), state


def step(
    key: chex.PRNGKey,
    state: EnvState,
    action: chex.Array,
    params: EnvParams = DEFAULT_PARAMS,
) -> tuple[chex.Array, EnvState, chex.Array, chex.Array, dict[str, Any]]:
    """Moves the agent, pays the reward and respawns a collected object.

    Args:
        key: PRNG key, used to draw the respawn cell of a collected object.
        state: An unbatched state.
        action: int scalar in ``[0, 4)``: 0 = up, 1 = right, 2 = down, 3 = left.
        params: Environment parameters.

    Returns:
        ``(obs, state, reward, done, info)``: the next observation and state, a float32
        reward, a bool ``done`` that is always ``False``, and
        ``info = {"collected": c}`` with ``c`` the int32 index of the collected object, or
        -1 if nothing was collected.
    """
    size = params.size
    agent = jnp.asarray(state.agent, jnp.int32)
    objects = jnp.asarray(state.objects, jnp.int32)
    time = jnp.asarray(state.time, jnp.int32)
    action = jnp.asarray(action, jnp.int32)
    chex.assert_shape(agent, (2,))
    chex.assert_shape(objects, (2, 2))
    chex.assert_rank([time, action], 0)

    move = jnp.asarray(_MOVES, jnp.int32)[action]
    agent = jnp.clip(agent + move, 0, size - 1)

    hit = jnp.all(objects == agent[None], axis=-1)  # (2,); objects never share a cell.
    collected = jnp.where(hit[0], 0, jnp.where(hit[1], 1, -1)).astype(jnp.int32)
    object_reward = current_object_rewards(time, params)[jnp.maximum(collected, 0)]
    reward = jnp.where(collected >= 0, object_reward, params.step_reward).astype(jnp.float32)

    # Respawn: sample uniformly among the cells that hold neither the agent nor an object
    # (the collected object's old cell is the agent's cell).
    cells = jnp.arange(size * size, dtype=jnp.int32)
    occupied = (cells == agent[0] * size + agent[1]) | jnp.any(
        cells[:, None] == objects[:, 0] * size + objects[:, 1], axis=-1
    )
    # One uniform draw: the index of the new cell among the free ones, found by a cumulative
    # count (cheaper than a categorical over all cells, which draws a number per cell).
    free = (~occupied).astype(jnp.int32)
    rank = jax.random.randint(key, (), 0, jnp.sum(free))
    new_cell = _cell_coords(jnp.argmax(jnp.cumsum(free) > rank), size)
    objects = jnp.where(hit[:, None], new_cell[None], objects)

    next_state = EnvState(agent=agent, objects=objects, time=time + 1)
    done = jnp.zeros((), dtype=jnp.bool_)
    return observation(next_state, params), next_state, reward, done, {"collected": collected}
