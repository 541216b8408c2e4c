"""Optax-shaped meta-optimizers: `bootstrapped_meta_gradient` (BMG) and `meta_gradient` (MG).

A `MetaOptimizer` is a NamedTuple ``(init, update, loss)``:

    meta_opt = bmg.bootstrapped_meta_gradient(learner, num_inner_steps=3, bootstrap_steps=2,
                                              target_optimizer=optax.sgd(0.1),
                                              meta_optimizer=optax.adam(1e-3))
    meta_state = meta_opt.init(meta_params, learner_state)
    out = meta_opt.update(learner_state, meta_state, meta_params)      # jit this
    meta_params = optax.apply_updates(meta_params, out.meta_updates)
    learner_state, meta_state = out.learner_state, out.meta_opt_state

``loss`` is the pure meta-loss with the settings bound; ``jax.grad(meta_opt.loss,
has_aux=True)`` gives raw meta-gradients to chain with your own optax transformations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from bmg.learner import Learner
from bmg.matching import MATCHING_FUNCTIONS, l2
from bmg.meta_loss import (
    ContinueFrom,
    MatchSpace,
    MetaLossAux,
    bootstrapped_meta_loss,
    meta_gradient_loss,
)


class MetaOptState(NamedTuple):
    """State of a meta-optimizer: the meta optimizer's and the target optimizer's states."""

    meta_opt_state: Any
    target_opt_state: Any


class MetaUpdate(NamedTuple):
    """The result of one meta-step.

    Attributes:
      meta_updates: updates for ``optax.apply_updates(meta_params, meta_updates)``.
      meta_opt_state: the new `MetaOptState`.
      learner_state: where the learner continues.
      meta_loss: the meta-loss before the update.
      meta_grad_norm: the global norm of the raw meta-gradient.
      aux: the `MetaLossAux` of the meta-loss (inner and bootstrap step outputs).
    """

    meta_updates: Any
    meta_opt_state: MetaOptState
    learner_state: Any
    meta_loss: jax.Array
    meta_grad_norm: jax.Array
    aux: MetaLossAux


class MetaOptimizer(NamedTuple):
    """An optax-shaped meta-optimizer; see the module docstring."""

    init: Callable[[Any, Any], MetaOptState]
    update: Callable[[Any, MetaOptState, Any], MetaUpdate]
    loss: Callable[[Any, Any, Any], tuple[jax.Array, MetaLossAux]]


def from_meta_loss(
    loss: Callable[[Any, Any, Any], tuple[jax.Array, MetaLossAux]],
    *,
    learner: Learner,
    meta_optimizer: optax.GradientTransformation,
    target_optimizer: optax.GradientTransformation | None = None,
) -> MetaOptimizer:
    """Wraps a meta-loss of the shared signature into a `MetaOptimizer`.

    Args:
      loss: ``loss(meta_params, learner_state, target_opt_state) -> (scalar, MetaLossAux)``.
      learner: the learner (its ``get_params`` initialises the target optimizer).
      meta_optimizer: the optax transformation applied to the meta-gradient.
      target_optimizer: the target step's optimizer, or ``None`` when there is no target.
    """
    value_and_grad = jax.value_and_grad(loss, has_aux=True)

    def init(meta_params, learner_state):
        if target_optimizer is None:
            target_opt_state = ()
        else:
            target_opt_state = target_optimizer.init(learner.get_params(learner_state))
        return MetaOptState(meta_optimizer.init(meta_params), target_opt_state)

    def update(learner_state, state, meta_params):
        (meta_loss, aux), grads = value_and_grad(meta_params, learner_state, state.target_opt_state)
        updates, meta_opt_state = meta_optimizer.update(grads, state.meta_opt_state, meta_params)
        return MetaUpdate(
            meta_updates=updates,
            meta_opt_state=MetaOptState(meta_opt_state, aux.target_opt_state),
            learner_state=aux.learner_state,
            meta_loss=meta_loss,
            meta_grad_norm=_global_norm(grads),
            aux=aux,
        )

    return MetaOptimizer(init=init, update=update, loss=loss)


def _global_norm(tree) -> jax.Array:
    """The Euclidean norm of all the leaves of ``tree`` together."""
    squares = [jax.numpy.sum(jax.numpy.square(leaf)) for leaf in jax.tree.leaves(tree)]
    return jax.numpy.sqrt(sum(squares, jax.numpy.zeros(())))


def _resolve_matching(matching):
    if callable(matching):
        return matching
    if matching in MATCHING_FUNCTIONS:
        return MATCHING_FUNCTIONS[matching]
    raise ValueError(
        f"matching must be a callable or one of {sorted(MATCHING_FUNCTIONS)}, got {matching!r}"
    )


def bootstrapped_meta_gradient(
    learner: Learner,
    *,
    num_inner_steps: int,
    bootstrap_steps: int,
    target_optimizer: optax.GradientTransformation,
    meta_optimizer: optax.GradientTransformation,
    matching: Callable[[Any, Any], Any] | str = l2,
    match_on: MatchSpace = "parameters",
    continue_from: ContinueFrom = "bootstrap",
    remat: bool = False,
    target_state_from: Callable[[Any], Any] | None = None,
) -> MetaOptimizer:
    """The BMG meta-optimizer (paper, section 3).

    Args:
      learner: the learner's pure functions (`bmg.Learner`).
      num_inner_steps: K ≥ 0, inner steps backpropagated through. K = 0 differentiates no
        update: the meta-parameters must then reach the matching space directly, through
        ``learner.behaviour`` (with ``match_on="predictions"``) or ``learner.prepare``.
      bootstrap_steps: L ≥ 1, how far ahead the target is (L-1 inner steps + a target step).
      target_optimizer: optimizer of the target step on ``learner.outer_loss`` (its state is
        carried across meta-steps in `MetaOptState`).
      meta_optimizer: optax transformation applied to the meta-gradient.
      matching: a matching function or its name (``"l2"``, ``"kl"``, ``"kl_v"``).
      match_on: ``"parameters"`` or ``"predictions"`` (needs ``learner.predict``).
      continue_from: ``"bootstrap"`` (z, the default) or ``"inner"`` (x^(K)).
      remat: rematerialise the K steps in the backward pass.
      target_state_from: ``target_state_from(z)`` gives the target step's optimizer state
        from the learner state z, e.g. the learner's own RMSProp statistics (a warm start);
        ``None`` (the default) carries the target optimizer's own state across meta-steps.

    Returns:
      A `MetaOptimizer`.
    """
    _check_steps(bootstrap_steps=bootstrap_steps)
    _check_steps(minimum=0, num_inner_steps=num_inner_steps)
    if match_on not in ("parameters", "predictions"):
        raise ValueError(f"match_on must be 'parameters' or 'predictions', got {match_on!r}")
    if match_on == "predictions" and learner.predict is None:
        raise ValueError("match_on='predictions' needs a learner with a `predict` function")
    if continue_from not in ("bootstrap", "inner"):
        raise ValueError(f"continue_from must be 'bootstrap' or 'inner', got {continue_from!r}")
    reaches = learner.prepare is not None or (
        match_on == "predictions" and learner.behaviour is not None
    )
    if num_inner_steps == 0 and not reaches:
        raise ValueError(
            "num_inner_steps=0 differentiates no update, so the meta-gradient would be zero: "
            "give the learner a `behaviour` (with match_on='predictions') or a `prepare`"
        )
    loss = functools.partial(
        bootstrapped_meta_loss,
        learner=learner,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=target_optimizer,
        matching=_resolve_matching(matching),
        match_on=match_on,
        continue_from=continue_from,
        remat=remat,
        target_state_from=target_state_from,
    )
    return from_meta_loss(
        loss, learner=learner, meta_optimizer=meta_optimizer, target_optimizer=target_optimizer
    )


def meta_gradient(
    learner: Learner,
    *,
    num_inner_steps: int,
    meta_optimizer: optax.GradientTransformation,
    remat: bool = False,
) -> MetaOptimizer:
    """The meta-gradient (MG) baseline: meta-loss f(x^(K)(w)) on a batch drawn after K steps.

    Args:
      learner: the learner's pure functions (`bmg.Learner`).
      num_inner_steps: K ≥ 1, inner steps backpropagated through.
      meta_optimizer: optax transformation applied to the meta-gradient.
      remat: rematerialise the K steps in the backward pass.

    Returns:
      A `MetaOptimizer` whose target optimizer state is ``()``.
    """
    _check_steps(num_inner_steps=num_inner_steps)
    loss = functools.partial(
        meta_gradient_loss, learner=learner, num_inner_steps=num_inner_steps, remat=remat
    )
    return from_meta_loss(loss, learner=learner, meta_optimizer=meta_optimizer)


def _check_steps(minimum=1, **steps):
    for name, value in steps.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
