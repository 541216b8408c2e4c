"""bmg: bootstrapped meta-gradients in JAX (Flennerhag et al., ICLR 2022, arXiv 2109.04504).

The public API:

* `Learner`: the pure functions through which the core drives an agent or a model.
* `bootstrapped_meta_gradient`, `meta_gradient`: optax-shaped meta-optimizers (BMG, MG).
* `bootstrapped_meta_loss`, `meta_gradient_loss`: the pure meta-losses they differentiate.
* `bootstrap_target`, `unroll`: the building blocks.
* `bmg.matching`: `l2`, `kl`, `kl_and_value`; `bmg.hyper`: hyperparameter maps;
  `bmg.optimizers`: inner optimizers that are safe to differentiate through.
"""

from bmg import hyper, matching, optimizers
from bmg.learner import Learner
from bmg.meta_loss import MetaLossAux, bootstrapped_meta_loss, meta_gradient_loss
from bmg.meta_optimizer import (
    MetaOptimizer,
    MetaOptState,
    MetaUpdate,
    bootstrapped_meta_gradient,
    from_meta_loss,
    meta_gradient,
)
from bmg.target import Target, bootstrap_target
from bmg.unroll import unroll

__all__ = [
    "Learner",
    "MetaLossAux",
    "MetaOptState",
    "MetaOptimizer",
    "MetaUpdate",
    "Target",
    "bootstrap_target",
    "bootstrapped_meta_gradient",
    "bootstrapped_meta_loss",
    "from_meta_loss",
    "hyper",
    "matching",
    "meta_gradient",
    "meta_gradient_loss",
    "optimizers",
    "unroll",
]

__version__ = "0.1.0"
