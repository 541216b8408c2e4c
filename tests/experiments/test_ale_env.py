"""The real ALE environment (ale-py, real ROMs): scores table, settings, stepping, returns."""

import re

import numpy as np
import pytest

from experiments.envs import ale


def test_the_57_games_have_scores_and_roms():
    assert len(ale.GAMES) == len(set(ale.GAMES)) == 57
    import ale_py.roms

    assert [g for g in ale.GAMES if not ale_py.roms.get_rom_path(g)] == []


@pytest.mark.parametrize(
    ("game", "random", "human"),
    [  # checked by hand against the Agent57 paper's table of random and human scores
        ("breakout", 1.7, 30.5),
        ("pong", -20.7, 14.6),
        ("ms_pacman", 307.3, 6951.6),
        ("montezuma_revenge", 0.0, 4753.3),
        ("skiing", -17098.1, -4336.9),
        ("space_invaders", 148.0, 1668.7),
    ],
)
def test_normalisation_table_entries(game, random, human):
    assert ale.RANDOM_HUMAN[game] == (random, human)
    assert ale.human_normalised(game, random) == 0.0
    assert ale.human_normalised(game, human) == pytest.approx(1.0)
    assert ale.human_normalised(game, 2 * human - random) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("game", "message"),
    [
        ("MsPacman", "unknown Atari game 'MsPacman' (did you mean 'ms_pacman'?)"),
        ("tetris", "unknown Atari game 'tetris'; the 57 games"),
    ],
)
def test_unknown_games_are_one_line_errors(game, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        ale.check_game(game)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("frame_skip", 0), ("sticky_actions", 1.0), ("noop_max", -1), ("size", True)],
)
def test_bad_settings(field, value):
    with pytest.raises(ValueError, match=field):
        ale.AleSettings(**{field: value})


def test_vector_env_steps_with_raw_rewards_and_reports_game_scores():
    """Ms. Pac-Man under a random policy: dots are worth 10 (rewards are not clipped), and
    episodes cut at 800 frames (200 agent steps) give one return per emulator per 200 steps,
    equal to the sum of that emulator's raw rewards."""
    settings = ale.AleSettings(max_episode_frames=800)
    env, obs = ale.make("ms_pacman", 3, settings, seed=0)
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    returns = ale.EpisodeReturns(3)
    rng = np.random.default_rng(0)
    totals, finished = np.zeros(3), []
    for _ in range(450):
        obs, reward, terminated, truncated, _ = env.step(rng.integers(0, 9, size=3))
        totals += reward
        finished += returns.update(reward, np.logical_or(terminated, truncated))
    env.close()
    assert obs.shape == (3, 4, 84, 84)
    assert 6 <= len(finished) <= 9  # two complete 200-step episodes per emulator, maybe a third
    assert max(finished) >= 100 and all(r % 10 == 0 for r in finished)
    assert sum(finished) <= totals.sum()
