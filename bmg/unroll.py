"""The K-step unroll of an inner update rule (paper, section 3, eq. for x^(K)(w))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def unroll(
    inner_step: Callable[[Any, Any], tuple[Any, Any]],
    state: Any,
    meta_params: Any,
    *,
    num_steps: int,
    remat: bool = False,
) -> tuple[Any, Any]:
    """Applies ``inner_step`` ``num_steps`` times with ``lax.scan``.

    Gradients flow from the final state back to ``meta_params`` and to ``state`` through every
    step; callers stop them where they should not flow (see `bmg.bootstrap_target`).

    Args:
      inner_step: pure ``(state, meta_params) -> (state, aux)``.
      state: the starting learner state (any pytree).
      meta_params: the meta-parameters w, closed over by every step.
      num_steps: how many steps to take; a Python int (it decides the program's structure).
        Zero returns ``state`` unchanged with zero-length ``aux``.
      remat: wrap each step in ``jax.checkpoint``: the backward pass recomputes a step's
        intermediate values instead of storing them, so memory grows with the number of steps
        only through the carried state, at roughly one extra forward pass of compute.

    Returns:
      ``(final_state, aux)`` where every leaf of ``aux`` gains a leading axis of ``num_steps``.
    """
    if not isinstance(num_steps, int) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative Python int, got {num_steps!r}")

    def body(carry, _):
        return inner_step(carry, meta_params)

    if remat:
        body = jax.checkpoint(body)
    return jax.lax.scan(body, state, xs=None, length=num_steps)
