"""Few-shot tasks for MAML and BMG (paper, section 6).

``python -m experiments.fewshot`` (`experiments.fewshot.__main__`) trains; ``python -m
experiments.fewshot.plot`` draws the figure. The tasks are in ``data/``:

* `sinusoid`: the regression tasks of Finn et al. 2017, sampled in JAX from PRNG keys.
* `episodes`: N-way K-shot classification episodes from an array of classes of images.
* `digits`: scikit-learn's bundled 8x8 digits with rotations as new classes (offline).
* `omniglot`, `miniimagenet`: readers of the standard layouts from a local directory.
* `config`: the experiment's frozen configuration and presets; `train`: the training loop;
  `run_dir`: its run directory.
"""
