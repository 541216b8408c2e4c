"""Configuration and presets of the real-ALE STACX / BMG experiment (paper, section 5.2).

The agent and meta-optimizer settings are the MinAtar experiment's
(`experiments.common.stacx_settings.StacxSettings`); this adds the game, the emulator
protocol (`experiments.envs.ale.AleSettings`, one flag per field), the torso, the actors and
the run's scale. Sources and unconfirmed choices: ``docs/atari.md``.
"""

from __future__ import annotations

import dataclasses

from agents import networks
from experiments.common import stacx_settings
from experiments.common.stacx_settings import StacxSettings
from experiments.envs import ale

TORSOS = networks.ATARI_TORSOS
CONVS = networks.CONVS
PRESETS = ("paper", "quick", "smoke")
CHOICES = {"game": ale.GAMES, "torso": TORSOS, "conv": CONVS, **stacx_settings.CHOICES}
"""The allowed values of the config's choice fields (flags take them as enums)."""


@dataclasses.dataclass(frozen=True)
class AleConfig(StacxSettings):
    """Everything that decides one seed's real-ALE run: the shared agent and meta-optimizer
    settings (`experiments.common.stacx_settings.StacxSettings`) and these.

    Attributes:
      game: one of the 57 games (ale-py's ROM name, snake_case).
      seed: the parameters', the policies' and the emulators' seed.
      total_frames: emulator frames of the run (agent steps x frame_skip).
      torso: ``impala`` (STACX's deep ResNet) or ``nature`` (the DQN torso).
      conv: how the torso's convolutions are computed, not what they compute: ``matmul``
        (one matmul of the patches; on CPU the meta-step is about 19 times faster) or ``xla``
        (XLA's convolution, which a GPU may run faster).
      num_actors: actor threads, each with its own `AtariVectorEnv` of num_envs emulators.
      target_optimizer: ``sgd`` or ``rmsprop``, the optimizer of BMG's target step.
      matching: ``l2`` (parameters), ``kl`` (main-head policies) or ``kl_v`` (KL + values).
      num_envs: B, emulators per actor (the batch of a rollout).
      reward_clip: the agent learns from rewards clipped to [-reward_clip, reward_clip]
        (IMPALA and STACX: 1); 0 learns from raw game rewards. Episode returns, and every
        score, are raw.
      learning_rate: learning rate of the inner RMSProp (IMPALA's 6e-4).
      meta_max_grad_norm: clip the meta-gradient to this global norm before Adam (0: off).
        On by default here: in the first meta-steps, before the inner RMSProp's second
        moments have grown (they start at zero), BMG's meta-gradient spikes (4,318 at
        meta-step 5 of BMG RMSProp KL&V L = 1 on Ms. Pac-Man, median 0.30), and one such
        gradient fills Adam's second moment and freezes every later step of the run.
      frame_skip: emulator frames per agent step (action repeat; IMPALA and STACX: 4).
      sticky_actions: probability that the emulator repeats the previous action.
      noop_max: at most this many no-op actions at the start of each episode.
      full_action_space: all 18 actions instead of the game's minimal set.
      max_episode_frames: episodes are cut after this many frames (108,000 = 30 minutes).
      episodic_life: a lost life ends the episode for learning (not for the scores).
      frame_stack: observations stacked as channels.
      size: side of the grayscale observation after resizing.
      log_every: frames between two metric rows (at least one meta-step a row).
      checkpoint_every: metric rows between two checkpoints.
      learner_devices: local devices the meta-step is split over (data parallel: each takes
        num_envs / learner_devices of every rollout's environments, the parameters are
        replicated and XLA averages the gradients across devices); num_envs must be a
        multiple of it. A CPU run asks for that many CPU devices itself.
    """

    game: str = "ms_pacman"
    total_frames: int = 2_000_000
    torso: str = "impala"
    conv: str = "matmul"
    num_actors: int = 1
    target_optimizer: str = "rmsprop"
    target_learning_rate: float = 6e-4
    matching: str = "kl_v"
    num_envs: int = 8
    reward_clip: float = 1.0
    learning_rate: float = 6e-4
    meta_max_grad_norm: float = 1.0
    frame_skip: int = 4
    sticky_actions: float = 0.0
    noop_max: int = 30
    full_action_space: bool = False
    max_episode_frames: int = 108_000
    episodic_life: bool = False
    frame_stack: int = 4
    size: int = 84
    log_every: int = 20_000
    checkpoint_every: int = 5
    learner_devices: int = 1

    def __post_init__(self):
        fail = self.check(
            "invalid ALE config: ",
            {"game": ale.GAMES, "torso": TORSOS, "conv": CONVS},
            counts=(
                "total_frames",
                "num_actors",
                "log_every",
                "checkpoint_every",
                "learner_devices",
            ),
            non_negative=("reward_clip",),
        )
        if self.num_envs % self.learner_devices:
            fail(
                f"num_envs ({self.num_envs}) must be a multiple of learner_devices "
                f"({self.learner_devices}): each device takes an equal share of the batch"
            )
        try:
            _ = self.settings
        except ValueError as e:
            fail(str(e))

    @property
    def settings(self) -> ale.AleSettings:
        """The emulator protocol."""
        names = [f.name for f in dataclasses.fields(ale.AleSettings)]
        return ale.AleSettings(**{name: getattr(self, name) for name in names})

    @property
    def frames_per_step(self) -> int:
        """Emulator frames of one agent step (the action repeat)."""
        return self.frame_skip


PRESET_VALUES = {
    # IMPALA / STACX: 200M frames a game, batch 32 of unrolls of 20 (docs/atari.md).
    "paper": {"total_frames": 200_000_000, "num_envs": 32, "num_actors": 2, "log_every": 500_000},
    # What one 2-core machine runs in about ten minutes per configuration.
    "quick": {"total_frames": 500_000, "torso": "nature"},
    # A few thousand frames on a tiny batch: the pipeline end to end, for tests.
    "smoke": {
        "total_frames": 1_600,
        "num_envs": 2,
        "rollout_length": 5,
        "torso": "nature",
        "log_every": 400,
        "checkpoint_every": 1,
    },
}
"""Preset values; everything else takes the dataclass defaults."""


make_config = stacx_settings.config_maker(AleConfig, PRESET_VALUES, what="ALE")
