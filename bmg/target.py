"""The bootstrapped target x̃ (paper, section 3, "bootstrapped meta-gradients").

From the K-step learner x^(K) the target takes L-1 more steps of the meta-learned update rule
and then one step on the outer objective f with its own optimizer:

    z = φ^(L-1)(x^(K)),   x̃ = z − target_optimizer(∇f(z)).

Everything here is computed from ``stop_gradient(x^(K))`` and ``stop_gradient(w)``, and the
result is returned under ``stop_gradient``: no meta-gradient flows through the target.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from bmg.learner import Learner
from bmg.unroll import unroll

stop_gradient = jax.lax.stop_gradient


class Target(NamedTuple):
    """A bootstrapped target and what was needed to build it.

    Attributes:
      params: the target parameters x̃ (under ``stop_gradient``).
      batch: the data the target step was taken on; prediction-space matching compares the
        target and the learner on it.
      state: the learner state z after L-1 bootstrap steps and after ``sample`` drew ``batch``
        (its parameters are those of z, not x̃): where the learner continues by default.
      target_opt_state: the target optimizer's state after this step.
      aux: the ``aux`` of the L-1 bootstrap steps, stacked on a leading axis.
    """

    params: Any
    batch: Any
    state: Any
    target_opt_state: Any
    aux: Any


def bootstrap_target(
    learner: Learner,
    state: Any,
    meta_params: Any,
    target_opt_state: Any,
    *,
    bootstrap_steps: int,
    target_optimizer: optax.GradientTransformation,
    target_state_from: Callable[[Any], Any] | None = None,
) -> Target:
    """Builds the target L steps ahead of ``state``.

    Args:
      learner: the learner's pure functions.
      state: the K-step learner state x^(K); gradients are stopped here.
      meta_params: the meta-parameters w; gradients are stopped here.
      target_opt_state: the target optimizer's state (from ``target_optimizer.init``).
      bootstrap_steps: L ≥ 1: L-1 steps of ``learner.inner_step``, then one target step.
      target_optimizer: the optax transformation of the final step on ``learner.outer_loss``
        (SGD, RMSProp, Adam, ...).
      target_state_from: if given, ``target_state_from(z)`` replaces ``target_opt_state``: the
        target step then starts from statistics read off the learner state z, e.g. the
        learner's own RMSProp second moments (a warm start; an RMSProp state begun at zero
        and updated once per meta-step makes the first target steps up to
        ``1 / sqrt(1 - decay)`` times too large). ``None`` uses ``target_opt_state``.

    Returns:
      A `Target`; every field is free of gradients with respect to ``state`` and
      ``meta_params``.
    """
    if not isinstance(bootstrap_steps, int) or bootstrap_steps < 1:
        raise ValueError(f"bootstrap_steps (L) must be a Python int >= 1, got {bootstrap_steps!r}")
    state = stop_gradient(state)
    meta_params = stop_gradient(meta_params)
    z, aux = unroll(learner.inner_step, state, meta_params, num_steps=bootstrap_steps - 1)
    if target_state_from is not None:
        target_opt_state = target_state_from(z)
    z, batch = learner.sample(z)
    batch = stop_gradient(batch)
    params = learner.get_params(z)
    grads = jax.grad(learner.outer_loss)(params, batch)
    updates, target_opt_state = target_optimizer.update(grads, target_opt_state, params)
    target_params = optax.apply_updates(params, updates)
    return Target(
        params=stop_gradient(target_params),
        batch=batch,
        state=stop_gradient(z),
        target_opt_state=stop_gradient(target_opt_state),
        aux=stop_gradient(aux),
    )
