"""The paper's experiments: ``two_colors`` (section 5.1), ``minatar`` (5.2), ``fewshot`` (6).

Each is a package run as ``python -m experiments.<name>``; ``common`` holds what they share
(the command line, run directories, the population trainer) and ``envs`` the environments.
Importing any of them registers nothing with gymnasium: call
`experiments.envs.register_envs` for ``bmg/TwoColors-v0``.
"""
