"""Configuration and presets of the MinAtar STACX / BMG experiment (paper, section 5.2).

Sources of the defaults:

* The agent: STACX (Zahavy et al. 2020) on IMPALA (Espeholt et al. 2018): V-trace, a main and
  two auxiliary heads, per-head meta-learned γ, λ and loss weights starting at IMPALA's values,
  inner RMSProp, meta Adam; STACX's outer loss has γ = 0.995, λ = 1 and no entropy term.
* BMG: K = 1 and L in {1, 2, 4}, target optimizer SGD or RMSProp, matching L2 / KL / KL&V
  (paper, section 5.2 and its ablation figure).
* Scale, network and learning rates: chosen here for MinAtar on a 2-core CPU (the paper runs
  57 Atari games for 200M frames); the MinAtar torso is Young and Tian's (2019). Unconfirmed
  values are flags.
"""

from __future__ import annotations

import dataclasses

from experiments.common import stacx_settings
from experiments.common.stacx_settings import (  # noqa: F401  (part of this module's API)
    BMG_ONLY_FIELDS,
    MATCHINGS,
    StacxSettings,
)

GAMES = ("breakout", "asterix", "freeway", "space_invaders", "seaquest")
PRESETS = ("paper", "quick", "smoke")
CHOICES = {"env": GAMES, **stacx_settings.CHOICES}
"""The allowed values of the config's choice fields (flags take them as enums)."""


@dataclasses.dataclass(frozen=True)
class AtariConfig(StacxSettings):
    """Everything that decides a MinAtar run: the shared agent and meta-optimizer settings
    (`experiments.common.stacx_settings.StacxSettings`) and these.

    Attributes:
      env: the MinAtar game.
      seeds: population size; seeds run as one vmapped program.
      seed: base seed; member i uses ``fold_in(PRNGKey(seed), i)``.
      total_frames: frames (= environment steps, MinAtar has no frame skip) per seed.
      channels: 3x3 conv channels of the MinAtar torso.
      hidden_size: width of the MinAtar torso's hidden layer.
      log_every: frames per seed between two metric rows.
      checkpoint_every: metric rows between two checkpoints.
      seed_group: seeds vmapped together on a device (a performance setting).
    """

    env: str = "breakout"
    seeds: int = 2
    total_frames: int = 2_000_000
    channels: int = 16
    hidden_size: int = 128
    log_every: int = 50_000
    checkpoint_every: int = 10
    seed_group: int = 1

    def __post_init__(self):
        self.check(
            "invalid MinAtar config: ",
            {"env": GAMES},
            counts=(
                "seeds",
                "total_frames",
                "channels",
                "hidden_size",
                "log_every",
                "checkpoint_every",
                "seed_group",
            ),
        )


PRESET_VALUES = {
    # The paper runs 3 seeds for 200M frames on 57 games; here: 2M frames of a MinAtar game.
    "paper": {"seeds": 3, "total_frames": 10_000_000},
    "quick": {"seeds": 2, "total_frames": 1_000_000},
    "smoke": {
        "seeds": 2,
        "total_frames": 960,
        "num_envs": 4,
        "rollout_length": 5,
        "channels": 4,
        "hidden_size": 16,
        "log_every": 160,
        "checkpoint_every": 1,
    },
}
"""Preset values; everything else takes the dataclass defaults."""


make_config = stacx_settings.config_maker(AtariConfig, PRESET_VALUES, what="MinAtar")
