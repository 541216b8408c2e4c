"""Environments of the paper's experiments.

:mod:`experiments.envs.two_colors` holds the JAX-native non-stationary two-colors grid
world (section 5.1 of "Bootstrapped Meta-Learning"); :mod:`experiments.envs.gym_adapter`
wraps it as a ``gymnasium.Env``, registered as ``bmg/TwoColors-v0`` by
:func:`register_envs`.
"""

from experiments.envs.two_colors import (
    EnvParams,
    EnvState,
    num_actions,
    observation,
    observation_size,
    reset,
    step,
)

TWO_COLORS_ID = "bmg/TwoColors-v0"

__all__ = [
    "TWO_COLORS_ID",
    "EnvParams",
    "EnvState",
    "num_actions",
    "observation",
    "observation_size",
    "register_envs",
    "reset",
    "step",
]


def register_envs() -> None:
    """Registers ``bmg/TwoColors-v0`` with gymnasium; calling it again does nothing.

    Keyword arguments of ``gymnasium.make("bmg/TwoColors-v0", ...)`` are those of
    :class:`experiments.envs.gym_adapter.TwoColorsGymEnv`. The task is non-episodic, so no
    time limit is attached.
    """
    import gymnasium  # here, so importing the environments needs no gymnasium

    if TWO_COLORS_ID not in gymnasium.envs.registry:
        gymnasium.register(
            id=TWO_COLORS_ID,
            entry_point="experiments.envs.gym_adapter:TwoColorsGymEnv",
        )
