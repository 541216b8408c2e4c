"""Meta-parameters in unconstrained space and their maps to hyperparameters.

Meta-learned hyperparameters (an entropy weight, a discount, a loss weight) are stored as
unconstrained reals η and mapped to their valid range by a `Bijection` (DESIGN section 3):

    spec = MyHypers(discount=Hyperparameter(0.99, sigmoid()),
                    entropy=Hyperparameter(0.01, softplus(), learned=False))
    meta_params = init_meta_params(spec)          # MyHypers of unconstrained float32 arrays
    hypers = constrain(meta_params, spec)         # MyHypers of hyperparameter values

A hyperparameter with ``learned=False`` still lives in ``meta_params`` (so a population can
vmap over its value) but `constrain` stops its gradient, and `learned_mask` excludes it from
``optax.masked`` meta-updates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Bijection(NamedTuple):
    """A smooth invertible map from unconstrained reals to a hyperparameter's range."""

    forward: Callable[[jax.Array], jax.Array]
    inverse: Callable[[jax.Array], jax.Array]
    name: str


def sigmoid(low: float = 0.0, high: float = 1.0) -> Bijection:
    """``low + (high - low) * sigmoid(η)``: for discounts, λ, probabilities, bounded weights."""
    if not high > low:
        raise ValueError(f"sigmoid needs high > low, got low={low}, high={high}")
    scale = high - low

    def inverse(y):
        u = (jnp.asarray(y, jnp.float32) - low) / scale
        return jnp.log(u) - jnp.log1p(-u)

    return Bijection(lambda x: low + scale * jax.nn.sigmoid(x), inverse, f"sigmoid({low},{high})")


def softplus() -> Bijection:
    """``log(1 + exp(η))``: for positive weights that may need to grow without a bound."""

    def inverse(y):
        y = jnp.asarray(y, jnp.float32)
        return y + jnp.log(-jnp.expm1(-y))

    return Bijection(jax.nn.softplus, inverse, "softplus")


def exp() -> Bijection:
    """``exp(η)``: for positive scales (learning rates, weights) learned in log space."""
    return Bijection(jnp.exp, lambda y: jnp.log(jnp.asarray(y, jnp.float32)), "exp")


def identity() -> Bijection:
    """No constraint."""
    return Bijection(lambda x: x, lambda y: jnp.asarray(y, jnp.float32), "identity")


class Hyperparameter(NamedTuple):
    """The specification of one hyperparameter.

    Attributes:
      value: its initial value, in the constrained range (a float or an array).
      transform: the `Bijection` from unconstrained space to that range.
      learned: whether meta-gradients reach it.
    """

    value: Any
    transform: Bijection
    learned: bool = True


def _is_spec(x) -> bool:
    return isinstance(x, Hyperparameter)


def init_meta_params(spec: Any) -> Any:
    """Unconstrained float32 meta-parameters holding each hyperparameter's initial value.

    Args:
      spec: a NamedTuple (or any pytree) whose leaves are `Hyperparameter`s.

    Returns:
      The same structure with ``transform.inverse(value)`` at each leaf.
    """
    return jax.tree.map(
        lambda h: jnp.asarray(h.transform.inverse(h.value), jnp.float32), spec, is_leaf=_is_spec
    )


def constrain(meta_params: Any, spec: Any) -> Any:
    """Maps meta-parameters to hyperparameter values; unlearned ones carry no gradient.

    Args:
      meta_params: unconstrained values in the structure of ``spec``.
      spec: the `Hyperparameter` specification.

    Returns:
      The structure of ``spec`` holding ``transform.forward(meta_param)`` at each leaf, under
      ``stop_gradient`` where ``learned`` is False.
    """

    def one(h, eta):
        eta = eta if h.learned else jax.lax.stop_gradient(eta)
        return h.transform.forward(eta)

    return jax.tree.map(one, spec, meta_params, is_leaf=_is_spec)


def learned_mask(spec: Any) -> Any:
    """The structure of ``spec`` with ``learned`` at each leaf, for ``optax.masked``."""
    return jax.tree.map(lambda h: h.learned, spec, is_leaf=_is_spec)
