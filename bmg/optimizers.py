"""Inner optimizers that are safe to differentiate through (DESIGN section 3).

Meta-gradients backpropagate through the inner optimizer's update. Square roots of second
moments have an infinite derivative at zero, which turns a parameter whose gradient is exactly
zero (a dead ReLU, an unused input) into NaN meta-gradients. These factories return optax
transformations configured so that every square root is taken of a strictly positive number:
RMSProp with ``eps`` inside the square root, Adam with ``eps_root > 0``.
"""

from __future__ import annotations

import optax


def sgd(learning_rate, *, momentum: float | None = None) -> optax.GradientTransformation:
    """Plain (or heavy-ball) SGD; smooth in everything."""
    return optax.sgd(learning_rate, momentum=momentum)


def rmsprop(
    learning_rate, *, decay: float = 0.9, eps: float = 1e-6, centered: bool = False
) -> optax.GradientTransformation:
    """RMSProp with ``eps`` inside the square root: ``g / sqrt(ν + eps)``.

    Raises:
      ValueError: if ``eps`` is not strictly positive.
    """
    if not eps > 0:
        raise ValueError(f"rmsprop eps must be > 0 to be differentiable at zero, got {eps}")
    return optax.rmsprop(learning_rate, decay=decay, eps=eps, eps_in_sqrt=True, centered=centered)


def adam(
    learning_rate,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 1e-8,
) -> optax.GradientTransformation:
    """Adam with ``eps_root > 0`` inside the square root, as optax advises for meta-learning.

    Raises:
      ValueError: if ``eps_root`` is not strictly positive.
    """
    if not eps_root > 0:
        raise ValueError(f"adam eps_root must be > 0 to be differentiable at zero, got {eps_root}")
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root)


INNER_OPTIMIZERS = {"sgd": sgd, "rmsprop": rmsprop, "adam": adam}
"""Differentiable optimizer factories by the names used in flags and configs."""
