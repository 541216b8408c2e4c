"""Inner optimizers that are safe to differentiate through (DESIGN section 3).

Meta-gradients backpropagate through the inner optimizer's update. Square roots of second
moments have an infinite derivative at zero, which turns a parameter whose gradient is exactly
zero (a dead ReLU, an unused input) into NaN meta-gradients. These factories return optax
transformations configured so that every square root is taken of a strictly positive number:
RMSProp with ``eps`` inside the square root, Adam with ``eps_root > 0``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax


def clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """Scales the updates by ``min(1, max_norm / ‖g‖)``, ‖g‖ the norm over all leaves.

    Unlike ``optax.clip_by_global_norm`` the norm is ``sqrt(max(Σg², tiny))``, so the
    transformation stays differentiable (finite derivatives) when every gradient is exactly
    zero. The derivative is that of the identity below the threshold and of ``max_norm · g /
    ‖g‖`` above it.

    Raises:
      ValueError: if ``max_norm`` is not strictly positive.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")

    def update(updates, state, params=None):
        del params
        squares = [jnp.sum(jnp.square(u)) for u in jax.tree.leaves(updates)]
        norm = jnp.sqrt(jnp.maximum(sum(squares, jnp.zeros(())), jnp.finfo(jnp.float32).tiny))
        scale = jnp.minimum(1.0, max_norm / norm)
        return jax.tree.map(lambda u: u * scale.astype(u.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def sgd(
    learning_rate, *, momentum: float | None = None, max_grad_norm: float | None = None
) -> optax.GradientTransformation:
    """Plain (or heavy-ball) SGD, optionally on gradients clipped to ``max_grad_norm``
    (`clip_by_global_norm`); smooth in everything but the clipping threshold."""
    optimizer = optax.sgd(learning_rate, momentum=momentum)
    if max_grad_norm is None:
        return optimizer
    return optax.chain(clip_by_global_norm(max_grad_norm), optimizer)


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


INNER_OPTIMIZERS = {
    "sgd": sgd,
    "sgd_clipped": functools.partial(sgd, max_grad_norm=0.5),
    "rmsprop": rmsprop,
    "adam": adam,
}
"""Differentiable optimizer factories by the names used in flags and configs."""
