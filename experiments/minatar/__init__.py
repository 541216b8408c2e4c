"""STACX and BMG on MinAtar (paper, section 5.2): ``python -m experiments.minatar``.

`config` (presets, the ablation's settings), `train` (the population program), `sweep`
(``python -m experiments.minatar.sweep``, the ablation grid), `scores` (final and normalised
scores, tables) and `plot` (``python -m experiments.minatar.plot``, the figures); the command
itself is `experiments.minatar.__main__`.
"""
