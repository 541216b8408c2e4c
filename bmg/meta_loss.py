"""Meta-losses of BMG and of the meta-gradient (MG) baseline, with one signature.

Both are pure functions ``loss(meta_params, learner_state, target_opt_state, *, ...) ->
(scalar, MetaLossAux)``, differentiable in ``meta_params``; `jax.grad(..., has_aux=True)` of
either is the meta-gradient. Which one a run uses is an argument, never a copy of the code.

* BMG (paper, section 3): μ(x̃, x^(K)(w)) with x̃ from `bmg.bootstrap_target`.
* MG (the baseline of sections 5 and 6): f(x^(K)(w)) on a fresh batch drawn after K steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import optax

from bmg.learner import Learner, prepared
from bmg.matching import l2
from bmg.target import bootstrap_target
from bmg.unroll import unroll

stop_gradient = jax.lax.stop_gradient

MatchSpace = Literal["parameters", "predictions"]
ContinueFrom = Literal["bootstrap", "inner"]


class MetaLossAux(NamedTuple):
    """What a meta-loss returns beside its value (all under ``stop_gradient``).

    Attributes:
      learner_state: where the learner continues after this meta-step.
      target_opt_state: the target optimizer's state (unchanged by MG).
      inner_aux: ``aux`` of the K differentiable steps, stacked on a leading axis (``None``
        when K = 0).
      bootstrap_aux: ``aux`` of the L-1 bootstrap steps (BMG), or ``None`` (MG).
    """

    learner_state: Any
    target_opt_state: Any
    inner_aux: Any
    bootstrap_aux: Any


def _inner_unroll(learner, learner_state, meta_params, num_inner_steps, remat, *, min_steps):
    if isinstance(num_inner_steps, bool) or not isinstance(num_inner_steps, int):
        raise ValueError(f"num_inner_steps (K) must be a Python int, got {num_inner_steps!r}")
    if num_inner_steps < min_steps:
        raise ValueError(f"num_inner_steps (K) must be >= {min_steps}, got {num_inner_steps}")
    x0 = prepared(learner, learner_state, meta_params)
    if num_inner_steps == 0:  # not even a zero-length scan: no update rule is traced
        return x0, None
    return unroll(learner.inner_step, x0, meta_params, num_steps=num_inner_steps, remat=remat)


def learner_prediction(learner: Learner, params: Any, batch: Any, meta_params: Any) -> Any:
    """The K-step learner's side of prediction-space matching: ``learner.behaviour(params,
    batch, meta_params)`` if the learner has one, else ``learner.predict(params, batch)``."""
    if learner.behaviour is not None:
        return learner.behaviour(params, batch, meta_params)
    return learner.predict(params, batch)


def bootstrapped_meta_loss(
    meta_params: Any,
    learner_state: Any,
    target_opt_state: Any,
    *,
    learner: Learner,
    num_inner_steps: int,
    bootstrap_steps: int,
    target_optimizer: optax.GradientTransformation,
    matching: Callable[[Any, Any], Any] = l2,
    match_on: MatchSpace = "parameters",
    continue_from: ContinueFrom = "bootstrap",
    remat: bool = False,
    target_state_from: Callable[[Any], Any] | None = None,
) -> tuple[jax.Array, MetaLossAux]:
    """The BMG meta-loss μ(x̃, x^(K)(w)) (paper, section 3).

    Gradients flow into ``meta_params`` through the K inner steps, ``learner.prepare`` and
    ``learner.behaviour`` only; the target is built from stopped copies of x^(K) and w. With
    K = 0 no update is differentiated (not even traced): x^(0) is the prepared state, and w
    must reach the matching space through ``prepare`` or ``behaviour``.

    Args:
      meta_params: w, the differentiated argument.
      learner_state: the state the K-step unroll starts from (before ``learner.prepare``).
      target_opt_state: the target optimizer's state.
      learner: the learner's pure functions.
      num_inner_steps: K ≥ 0, steps backpropagated through.
      bootstrap_steps: L ≥ 1, how far ahead of x^(K) the target is.
      target_optimizer: the optimizer of the target's final step on the outer loss.
      matching: ``matching(target, prediction) -> scalar``, e.g. `bmg.matching.l2`.
      match_on: ``"parameters"`` compares x̃ with x^(K); ``"predictions"`` compares
        ``learner.predict(x̃, batch)`` with `learner_prediction` at x^(K) (``predict``, or
        ``behaviour`` with w) on the target step's batch.
      continue_from: ``"bootstrap"`` continues from z (L-1 steps past x^(K), so those steps
        are not wasted); ``"inner"`` continues from x^(K).
      remat: rematerialise each of the K steps in the backward pass (less memory).
      target_state_from: reads the target optimizer's state off the bootstrapped learner
        state (see `bmg.bootstrap_target`); ``None`` carries ``target_opt_state``.

    Returns:
      ``(meta_loss, MetaLossAux)``.
    """
    x_k, inner_aux = _inner_unroll(
        learner, learner_state, meta_params, num_inner_steps, remat, min_steps=0
    )
    target = bootstrap_target(
        learner,
        x_k,
        meta_params,
        target_opt_state,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=target_optimizer,
        target_state_from=target_state_from,
    )
    params_k = learner.get_params(x_k)
    if match_on == "parameters":
        loss = matching(target.params, params_k)
    elif match_on == "predictions":
        target_prediction = stop_gradient(learner.predict(target.params, target.batch))
        prediction = learner_prediction(learner, params_k, target.batch, meta_params)
        loss = matching(target_prediction, prediction)
    else:
        raise ValueError(f"match_on must be 'parameters' or 'predictions', got {match_on!r}")
    if continue_from == "bootstrap":
        next_state = target.state
    elif continue_from == "inner":
        next_state = stop_gradient(x_k)
    else:
        raise ValueError(f"continue_from must be 'bootstrap' or 'inner', got {continue_from!r}")
    aux = MetaLossAux(next_state, target.target_opt_state, stop_gradient(inner_aux), target.aux)
    return loss, aux


def meta_gradient_loss(
    meta_params: Any,
    learner_state: Any,
    target_opt_state: Any,
    *,
    learner: Learner,
    num_inner_steps: int,
    remat: bool = False,
) -> tuple[jax.Array, MetaLossAux]:
    """The MG meta-loss f(x^(K)(w)) on a batch drawn after the K steps.

    Gradients flow into ``meta_params`` through the outer loss at x^(K)(w) and the K inner
    steps; the batch itself is data (under ``stop_gradient``). The learner continues from the
    state after that batch was drawn.

    Args:
      meta_params: w, the differentiated argument.
      learner_state: the state the K-step unroll starts from.
      target_opt_state: passed through unchanged (MG has no target); kept so that MG and BMG
        share one signature.
      learner: the learner's pure functions.
      num_inner_steps: K ≥ 1.
      remat: rematerialise each of the K steps in the backward pass.

    Returns:
      ``(meta_loss, MetaLossAux)`` with ``bootstrap_aux=None``.
    """
    x_k, inner_aux = _inner_unroll(
        learner, learner_state, meta_params, num_inner_steps, remat, min_steps=1
    )
    next_state, batch = learner.sample(x_k)
    loss = learner.outer_loss(learner.get_params(x_k), stop_gradient(batch))
    aux = MetaLossAux(stop_gradient(next_state), target_opt_state, stop_gradient(inner_aux), None)
    return loss, aux
