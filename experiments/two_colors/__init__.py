"""The two-colors experiment (paper, section 5.1): ``python -m experiments.two_colors``.

`config` (presets and settings), `train` (the population program), `analysis` (the table
beside the public replication) and `plot` (``python -m experiments.two_colors.plot``, the
figure); the command itself is `experiments.two_colors.__main__`.
"""
