"""The MinAtar games (Young and Tian 2019) as JAX-native environments, through gymnax.

`make(game)` returns an `agents.stacx.Environment`: batch-free ``reset`` / ``step`` functions
with automatic resets, jittable and vmappable, so the whole actor-learner loop runs inside
one XLA program. MinAtar has no frame skip: one environment step is one frame.

A host-side environment (the real ALE through ale-py) would supply rollouts from outside the
jitted program instead; the agent only needs its `Rollout` in the learner state.

`RANDOM_SCORES` holds the mean episode return of the uniformly random policy per game, the
zero of the normalised score (the one is the STACX baseline). Measure them again with

    python -m experiments.envs.minatar --episodes=1000
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from agents.stacx import Environment
from experiments.common import cli

CLI = cli.Cli("experiments.envs.minatar", __doc__)
_EPISODES = CLI.integer("episodes", 1000, "Episodes of the random policy per game.", lower_bound=1)

GAMES = {
    "breakout": "Breakout-MinAtar",
    "asterix": "Asterix-MinAtar",
    "freeway": "Freeway-MinAtar",
    "space_invaders": "SpaceInvaders-MinAtar",
    "seaquest": "Seaquest-MinAtar",
}

# Mean return of the uniformly random policy over the first 1,000 complete episodes (seed 0,
# gymnax 1.0.1 default parameters, episodes capped by its time limit), measured by this
# module's main.
RANDOM_SCORES: dict[str, float] = {
    "breakout": 0.3970,
    "asterix": 0.4620,
    "freeway": 0.4130,
    "space_invaders": 3.9340,
    "seaquest": 0.0640,
}


def make(game: str) -> Environment:
    """The MinAtar ``game`` (a key of `GAMES`) as an `Environment`.

    Raises:
      ValueError: for an unknown game.
    """
    if game not in GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; choose from {', '.join(GAMES)}")
    import gymnax  # imported here: only MinAtar runs need it

    env, params = gymnax.make(GAMES[game])

    def reset(key):
        return env.reset(key, params)

    def step(key, state, action):
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        # A time-limit truncation ends the episode like a termination (as in purejaxrl):
        # the next observation is already the reset one, so there is nothing to bootstrap from.
        done = jnp.logical_or(terminated, truncated)
        return obs, state, jnp.asarray(reward, jnp.float32), done

    obs_shape = tuple(env.observation_space(params).shape)
    return Environment(reset=reset, step=step, num_actions=env.num_actions, obs_shape=obs_shape)


def random_policy_return(game: str, *, episodes: int, seed: int = 0, envs: int = 100) -> float:
    """Mean return of the uniformly random policy over the first ``episodes`` episodes that
    finish in ``envs`` parallel environments."""
    environment = make(game)
    steps = 4000

    @jax.jit
    def run(key):
        reset_key, key = jax.random.split(key)
        obs, state = jax.vmap(environment.reset)(jax.random.split(reset_key, envs))

        def body(carry, step_key):
            state, ret = carry
            action_key, env_key = jax.random.split(step_key)
            actions = jax.random.randint(action_key, (envs,), 0, environment.num_actions)
            _, state, reward, done = jax.vmap(environment.step)(
                jax.random.split(env_key, envs), state, actions
            )
            ret = ret + reward
            return (state, jnp.where(done, 0.0, ret)), (jnp.where(done, ret, 0.0), done)

        _, (returns, dones) = jax.lax.scan(
            body, (state, jnp.zeros(envs)), jax.random.split(key, steps)
        )
        return returns, dones

    key = jax.random.PRNGKey(seed)
    finished: list[float] = []
    while len(finished) < episodes:
        key, run_key = jax.random.split(key)
        returns, dones = jax.device_get(run(run_key))
        finished.extend(returns[dones].tolist())
    return float(sum(finished[:episodes]) / episodes)


def main(argv: list[str]) -> None:
    """Prints the random policy's mean return per game, as lines of `RANDOM_SCORES`."""
    CLI.parse(argv)
    for game in GAMES:
        score = random_policy_return(game, episodes=_EPISODES.value)
        print(f'    "{game}": {score:.4f},', flush=True)


if __name__ == "__main__":
    CLI.run(main)
