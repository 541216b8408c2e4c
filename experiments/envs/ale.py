"""The real Arcade Learning Environment (ale-py) as a host-side vector environment.

`make(game, num_envs, settings)` returns ale-py's C++ `AtariVectorEnv`: frame skip, sticky
actions, grayscale, 84x84 resize, max-pooling of the last two frames, frame stacking, no-op
starts and automatic resets run in its own threads, outside Python and outside JAX. Actors
step it on the host and hand time-major rollouts to the jitted learner (the Sebulba split of
the Podracer paper, as in cleanba and Stoix); MinAtar, by contrast, runs inside the learner's
XLA program (`experiments.envs.minatar`).

Rewards come back raw (unclipped), so episode returns are game scores; the actors clip the
rewards the agent learns from (`experiments.atari.actors.clip_rewards`). Resets are "same
step": when an episode ends, the observation returned with ``done`` is already the first one
of the next episode (gymnax's convention, which the agent's rollouts assume), and the
finished episode's raw return is reported by `EpisodeReturns`.

The protocol follows IMPALA / STACX where they state it; each setting is a field of
`AleSettings` (and a flag of the experiment). See `docs/atari.md` for sources and what is
unconfirmed for the BMG paper.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Per game: (random, human) episode returns, the 0 and 1 of the human-normalised score. These
# are the 57-game figures used by Agent57 (Badia et al. 2020) and DeepMind's DQN Zoo: each the
# mean over episodes that start with up to 30 no-ops, capped at 108,000 frames; the random
# agent acts uniformly, the human is a professional game tester. Older papers (Mnih et al.
# 2015) give other human figures for some games; the random Video Pinball score is above the
# human one under some other protocols.
RANDOM_HUMAN: dict[str, tuple[float, float]] = {
    "alien": (227.8, 7127.7),
    "amidar": (5.8, 1719.5),
    "assault": (222.4, 742.0),
    "asterix": (210.0, 8503.3),
    "asteroids": (719.1, 47388.7),
    "atlantis": (12850.0, 29028.1),
    "bank_heist": (14.2, 753.1),
    "battle_zone": (2360.0, 37187.5),
    "beam_rider": (363.9, 16926.5),
    "berzerk": (123.7, 2630.4),
    "bowling": (23.1, 160.7),
    "boxing": (0.1, 12.1),
    "breakout": (1.7, 30.5),
    "centipede": (2090.9, 12017.0),
    "chopper_command": (811.0, 7387.8),
    "crazy_climber": (10780.5, 35829.4),
    "defender": (2874.5, 18688.9),
    "demon_attack": (152.1, 1971.0),
    "double_dunk": (-18.6, -16.4),
    "enduro": (0.0, 860.5),
    "fishing_derby": (-91.7, -38.7),
    "freeway": (0.0, 29.6),
    "frostbite": (65.2, 4334.7),
    "gopher": (257.6, 2412.5),
    "gravitar": (173.0, 3351.4),
    "hero": (1027.0, 30826.4),
    "ice_hockey": (-11.2, 0.9),
    "jamesbond": (29.0, 302.8),
    "kangaroo": (52.0, 3035.0),
    "krull": (1598.0, 2665.5),
    "kung_fu_master": (258.5, 22736.3),
    "montezuma_revenge": (0.0, 4753.3),
    "ms_pacman": (307.3, 6951.6),
    "name_this_game": (2292.3, 8049.0),
    "phoenix": (761.4, 7242.6),
    "pitfall": (-229.4, 6463.7),
    "pong": (-20.7, 14.6),
    "private_eye": (24.9, 69571.3),
    "qbert": (163.9, 13455.0),
    "riverraid": (1338.5, 17118.0),
    "road_runner": (11.5, 7845.0),
    "robotank": (2.2, 11.9),
    "seaquest": (68.4, 42054.7),
    "skiing": (-17098.1, -4336.9),
    "solaris": (1236.3, 12326.7),
    "space_invaders": (148.0, 1668.7),
    "star_gunner": (664.0, 10250.0),
    "surround": (-10.0, 6.5),
    "tennis": (-23.8, -8.3),
    "time_pilot": (3568.0, 5229.2),
    "tutankham": (11.4, 167.6),
    "up_n_down": (533.4, 11693.2),
    "venture": (0.0, 1187.5),
    "video_pinball": (16256.9, 17667.9),
    "wizard_of_wor": (563.5, 4756.5),
    "yars_revenge": (3092.9, 54576.9),
    "zaxxon": (32.5, 9173.3),
}
GAMES = tuple(RANDOM_HUMAN)
"""The 57 games of the Atari benchmark, in ale-py's ROM names."""


def human_normalised(game: str, score: float) -> float:
    """``(score - random) / (human - random)``: 0 is the random policy, 1 the human tester."""
    random, human = RANDOM_HUMAN[game]
    return (score - random) / (human - random)


@dataclasses.dataclass(frozen=True)
class AleSettings:
    """The emulator protocol.

    Attributes:
      frame_skip: emulator frames per agent step (action repeat; IMPALA and STACX: 4).
      sticky_actions: probability that the emulator repeats the previous action (Machado et
        al. 2018 recommend 0.25; IMPALA and STACX predate it and use 0).
      noop_max: at most this many no-op actions at the start of each episode (30).
      full_action_space: all 18 actions instead of the game's minimal set.
      max_episode_frames: episodes are cut after this many frames (108,000 = 30 minutes).
      episodic_life: a lost life ends the episode for learning (not for the scores).
      frame_stack: observations stacked as channels.
      size: side of the grayscale observation after resizing.
    """

    frame_skip: int = 4
    sticky_actions: float = 0.0
    noop_max: int = 30
    full_action_space: bool = False
    max_episode_frames: int = 108_000
    episodic_life: bool = False
    frame_stack: int = 4
    size: int = 84

    def __post_init__(self):
        for name in ("frame_skip", "frame_stack", "size", "max_episode_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        noop = self.noop_max
        if isinstance(noop, bool) or not isinstance(noop, int) or noop < 0:
            raise ValueError(f"noop_max must be an integer >= 0, got {self.noop_max!r}")
        if not 0.0 <= self.sticky_actions < 1.0:
            raise ValueError(f"sticky_actions must be in [0, 1), got {self.sticky_actions!r}")


def check_game(game: str) -> None:
    """Raises a one-line ``ValueError`` for a game that is not one of the 57 or whose ROM
    ale-py does not have."""
    if game not in GAMES:
        close = [g for g in GAMES if g.replace("_", "") == game.lower().replace("_", "")]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown Atari game {game!r}{hint}; the 57 games are snake_case, e.g. ms_pacman"
        )
    try:
        import ale_py.roms
    except ImportError as e:  # the experiments extra installs it
        raise ValueError(f"the real ALE needs ale-py: pip install -e '.[experiments]' ({e})") from e
    if not ale_py.roms.get_rom_path(game):
        raise ValueError(f"ale-py has no ROM for {game!r}")


def make(game: str, num_envs: int, settings: AleSettings = AleSettings(), *, seed: int = 0):
    """``num_envs`` emulators of ``game`` in one `ale_py.vector_env.AtariVectorEnv`, reset.

    Returns:
      ``(env, obs)``: the vector environment and its first observations ``[B, stack, size,
      size]`` uint8.
    """
    check_game(game)
    from ale_py.vector_env import AtariVectorEnv

    env = AtariVectorEnv(
        game,
        num_envs,
        frameskip=settings.frame_skip,
        repeat_action_probability=settings.sticky_actions,
        noop_max=settings.noop_max,
        full_action_space=settings.full_action_space,
        max_num_frames_per_episode=settings.max_episode_frames,
        episodic_life=settings.episodic_life,
        stack_num=settings.frame_stack,
        img_height=settings.size,
        img_width=settings.size,
        grayscale=True,
        maxpool=True,
        reward_clipping=False,
        autoreset_mode="SameStep",
    )
    obs, _ = env.reset(seed=seed)
    return env, obs


class EpisodeReturns:
    """Raw episode returns of a vector environment, accumulated on the host.

    With ``episodic_life``, a lost life ends the learner's episode but not the game: the
    return keeps accumulating until the game is over (ale-py reports that as a termination
    with no lives left), so the scores are game scores either way.
    """

    def __init__(self, num_envs: int):
        self._running = np.zeros(num_envs, np.float64)

    def update(self, rewards, game_over) -> list[float]:
        """Adds one step's raw ``rewards`` ``[B]``; returns the returns of the games that
        ended (``game_over`` ``[B]``) in this step."""
        self._running += np.asarray(rewards, np.float64)
        over = np.asarray(game_over, bool)
        finished = self._running[over].tolist()
        self._running[over] = 0.0
        return finished


def num_actions(game: str, settings: AleSettings = AleSettings()) -> int:
    """The size of ``game``'s action set under ``settings`` (18 with the full action space)."""
    env, _ = make(game, 1, settings)
    try:
        return int(env.single_action_space.n)
    finally:
        env.close()
