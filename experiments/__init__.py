"""Experiment scripts and the tasks of the paper (environments, data).

Importing this package registers the gymnasium environments (``bmg/TwoColors-v0``).
"""

from experiments.envs import register_envs

register_envs()
