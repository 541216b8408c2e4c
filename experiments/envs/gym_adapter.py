"""Gymnasium adapter for the JAX two-colors grid world.

Registered as ``bmg/TwoColors-v0`` by :func:`experiments.envs.register_envs`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import numpy as np
from gymnasium import spaces

from experiments.envs import two_colors

# ``params`` decides array shapes, so it is a static (hashable) argument.
_jit_reset = jax.jit(two_colors.reset, static_argnums=(1,))
_jit_step = jax.jit(two_colors.step, static_argnums=(3,))


class TwoColorsGymEnv(gymnasium.Env):
    """The two-colors grid world behind the ``gymnasium.Env`` interface.

    The episode never terminates nor truncates; wrap it in a time limit if needed.

    Key scheme (the adapter reproduces the pure functions of
    :mod:`experiments.envs.two_colors` exactly):

    * ``reset(seed=s)`` sets ``key = jax.random.PRNGKey(s)``; with ``seed=None`` it draws
      ``s`` from ``self.np_random`` (seeded by gymnasium) instead. Then
      ``key, reset_key = jax.random.split(key)`` and
      ``obs, state = two_colors.reset(reset_key, params)``.
    * Each ``step(a)`` does ``key, step_key = jax.random.split(key)`` and
      ``obs, state, reward, done, info = two_colors.step(step_key, state, a, params)``.

    Observations are numpy float32 vectors of length ``6 * size``, rewards Python floats,
    and ``info`` holds ``collected`` (index of the collected object, -1 if none) and
    ``time`` (steps taken since the last reset) as Python ints.

    Attributes:
        params: The :class:`~experiments.envs.two_colors.EnvParams` of the environment.
        state: The current :class:`~experiments.envs.two_colors.EnvState` (None before
            the first reset).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        size: int = 5,
        step_reward: float = -0.04,
        object_rewards: tuple[float, float] = (1.0, -1.0),
        swap_period: int = 100_000,
        render_mode: str | None = None,
    ):
        """Builds the environment.

        Args:
            size: Side length of the grid.
            step_reward: Reward of a step that collects nothing.
            object_rewards: Rewards of objects 0 and 1 in the first phase.
            swap_period: Number of steps between two swaps of the objects' rewards.
            render_mode: None or ``"ansi"``.
        """
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"Unsupported render_mode {render_mode!r}.")
        if len(object_rewards) != 2:
            raise ValueError(f"object_rewards needs two values, got {object_rewards!r}.")
        self.params = two_colors.EnvParams(
            size=int(size),
            step_reward=float(step_reward),
            object_rewards=(float(object_rewards[0]), float(object_rewards[1])),
            swap_period=int(swap_period),
        )
        self.render_mode = render_mode
        self.observation_space = spaces.Box(
            0.0, 1.0, (two_colors.observation_size(self.params),), np.float32
        )
        self.action_space = spaces.Discrete(two_colors.num_actions(self.params))
        self._key = None
        self.state = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets the environment; see the class docstring for the key scheme."""
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        key, reset_key = jax.random.split(jax.random.PRNGKey(seed))
        obs, self.state = _jit_reset(reset_key, self.params)
        self._key = key
        return np.asarray(obs, dtype=np.float32), {"time": 0}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Takes one step; see the class docstring for the key scheme."""
        if self.state is None:
            raise RuntimeError("Call reset() before step().")
        if not self.action_space.contains(action):
            raise ValueError(f"Invalid action {action!r}.")
        self._key, step_key = jax.random.split(self._key)
        obs, self.state, reward, _, info = _jit_step(step_key, self.state, int(action), self.params)
        info = {"collected": int(info["collected"]), "time": int(self.state.time)}
        return np.asarray(obs, dtype=np.float32), float(reward), False, False, info

    def render(self) -> str | None:
        """Returns the grid as text (``A`` agent, ``0``/``1`` objects) in ``"ansi"`` mode."""
        if self.render_mode != "ansi" or self.state is None:
            return None
        grid = [["."] * self.params.size for _ in range(self.params.size)]
        for i, (row, col) in enumerate(np.asarray(self.state.objects)):
            grid[row][col] = str(i)
        row, col = np.asarray(self.state.agent)
        grid[row][col] = "A"
        return "\n".join("".join(line) for line in grid) + "\n"
