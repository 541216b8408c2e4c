"""BMG with K = 0: the meta-parameters reach the matching space without an update.

With K = 0 nothing is differentiated through ``inner_step`` (paper, ε-greedy exploration): the
learner's side of the matching is ``behaviour(x0, batch, w)`` (here an ε-smoothed policy whose
ε and temperature come from w) or the prepared state ``prepare(state, w)`` (a MAML-like
initialisation). These tests hold K = 0 to the same standards as K ≥ 1: finite differences,
no leak into the target, no derivative of the update rule, the direction of the meta-step.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from tests.bmg import toy
from tests.bmg.test_direction import assert_first_order_decrease

L = 3
TARGET_OPTIMIZER = optax.sgd(0.5)


def behaviour(params, batch, meta_params):
    """log of (1 − ε) softmax(logits · τ) + ε / A with ε = sigmoid(w0), τ = softplus(w1)."""
    logits = toy.predict_logits(params, batch) * jax.nn.softplus(meta_params[1])
    epsilon = jax.nn.sigmoid(meta_params[0])
    probs = (1 - epsilon) * jax.nn.softmax(logits) + epsilon / logits.shape[-1]
    return jnp.log(probs)


def greedy(params, batch):
    """The greedy policy of the toy's logits as logits: 0 for the argmax, -inf elsewhere."""
    logits = toy.predict_logits(params, batch)
    best = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1]) > 0
    return jnp.where(best, 0.0, -jnp.inf)


def prepare(state, meta_params):
    """A MAML-like start: the bias parameters are the meta-parameters."""
    return state._replace(params={**state.params, "b": meta_params})


def _learner(kind, inner_step_wrapper=None):
    inner_opt = toy.INNER_OPTIMIZERS["rmsprop"]()
    if kind == "prepare":
        learner = toy.make_learner(inner_opt)._replace(prepare=prepare)
    else:  # the target's policy: the toy's softmax policy, or its greedy policy
        predict = greedy if kind == "greedy" else toy.predict_logits
        learner = toy.make_learner(inner_opt, predict=predict)._replace(behaviour=behaviour)
    if inner_step_wrapper is not None:
        learner = learner._replace(inner_step=inner_step_wrapper(learner.inner_step))
    return inner_opt, learner


def _setting(kind):
    """(matching, match_on) of a kind of K = 0 learner."""
    if kind == "prepare":
        return bmg.matching.l2, "parameters"
    return bmg.matching.kl, "predictions"


def _loss(learner, kind, num_inner_steps=0):
    matching, match_on = _setting(kind)
    return functools.partial(
        bmg.bootstrapped_meta_loss,
        learner=learner,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=L,
        target_optimizer=TARGET_OPTIMIZER,
        matching=matching,
        match_on=match_on,
    )


def _frozen(learner, kind, state, w0, tstate):
    """w -> μ(x̃(w0), x^(0)(w)), the target built once at w0 from the core's building blocks."""
    matching, match_on = _setting(kind)
    x0 = bmg.learner.prepared(learner, state, w0)
    target = bmg.bootstrap_target(
        learner, x0, w0, tstate, bootstrap_steps=L, target_optimizer=TARGET_OPTIMIZER
    )
    target_params = jax.tree.map(np.asarray, target.params)
    batch = jax.tree.map(np.asarray, target.batch)

    def loss(w):
        params = bmg.learner.prepared(learner, state, w).params
        if match_on == "parameters":
            return matching(target_params, params)
        return matching(learner.predict(target_params, batch), behaviour(params, batch, w))

    return loss


def _leaky(learner, kind, state, tstate):
    """The K = 0 meta-loss with the target built from w itself (no stop-gradient)."""
    matching, match_on = _setting(kind)

    def loss(w):
        x0 = bmg.learner.prepared(learner, state, w)
        z, _ = bmg.unroll(learner.inner_step, x0, w, num_steps=L - 1)
        z, batch = learner.sample(z)
        grads = jax.grad(learner.outer_loss)(z.params, batch)
        updates, _ = TARGET_OPTIMIZER.update(grads, tstate, z.params)
        target = optax.apply_updates(z.params, updates)
        if match_on == "parameters":
            return matching(target, x0.params)
        return matching(learner.predict(target, batch), behaviour(x0.params, batch, w))

    return loss


def _central_difference(f, w, eps):
    return jnp.stack(
        [(f(w + e) - f(w - e)) / (2 * eps) for e in jnp.eye(w.shape[0], dtype=w.dtype) * eps]
    )


@pytest.mark.parametrize("kind", ["behaviour", "greedy", "prepare"])
def test_zero_inner_steps_meta_gradient_matches_finite_differences(kind):
    with jax.enable_x64(True):
        inner_opt, learner = _learner(kind)
        state = toy.initial_state(inner_opt, jnp.float64)
        w = toy.META_PARAMS.astype(jnp.float64)
        tstate = TARGET_OPTIMIZER.init(state.params)
        loss = _loss(learner, kind)
        value, _ = loss(w, state, tstate)
        analytic = jax.jit(jax.grad(loss, has_aux=True))(w, state, tstate)[0]
        frozen = jax.jit(_frozen(learner, kind, state, w, tstate))
        np.testing.assert_allclose(frozen(w), value, rtol=1e-12)
        numeric = _central_difference(frozen, w, 1e-6)
        assert np.isfinite(value) and np.abs(analytic).max() > 1e-3, analytic
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
        if kind != "greedy":  # a greedy target is piecewise constant: a leak changes nothing
            # Teeth: the same loss with a target that depends on w has another gradient.
            leaky = jax.jit(jax.grad(_leaky(learner, kind, state, tstate)))(w)
            assert np.abs(leaky - analytic).max() > 1e-4


class DifferentiatedUpdateRule(AssertionError):
    pass


def _guarded(inner_step):
    """``inner_step`` whose meta-parameters pass through an identity that may not be
    differentiated: its backward pass raises."""

    @jax.custom_vjp
    def guard(w):
        return w

    def backward(_, cotangent):
        raise DifferentiatedUpdateRule("a meta-gradient flowed through inner_step")

    guard.defvjp(lambda w: (w, None), backward)
    return lambda state, meta_params: inner_step(state, guard(meta_params))


@pytest.mark.parametrize("kind", ["behaviour", "prepare"])
def test_zero_inner_steps_never_differentiates_the_update_rule(kind):
    inner_opt, learner = _learner(kind, inner_step_wrapper=_guarded)
    state = toy.initial_state(inner_opt)
    tstate = TARGET_OPTIMIZER.init(state.params)
    w = toy.META_PARAMS
    # K = 0 runs L - 1 = 2 inner steps (for the target) and differentiates none of them.
    grads, aux = jax.jit(jax.grad(_loss(learner, kind), has_aux=True))(w, state, tstate)
    assert np.all(np.isfinite(grads)) and np.abs(grads).max() > 1e-4
    assert aux.inner_aux is None and aux.bootstrap_aux["loss"].shape == (L - 1,)
    # Teeth: with K = 1 the same guard is hit.
    with pytest.raises(DifferentiatedUpdateRule):
        jax.grad(_loss(learner, kind, num_inner_steps=1), has_aux=True)(w, state, tstate)


@pytest.mark.parametrize("kind", ["behaviour", "greedy", "prepare"])
def test_zero_inner_steps_meta_step_lowers_the_frozen_target_loss(kind):
    """One small SGD meta-step of the K = 0 optimizer goes downhill (fails if flipped)."""
    step_size = 1e-2
    with jax.enable_x64(True):
        inner_opt, learner = _learner(kind)
        state = toy.initial_state(inner_opt, jnp.float64)
        w = toy.META_PARAMS.astype(jnp.float64)
        matching, match_on = _setting(kind)
        meta_opt = bmg.bootstrapped_meta_gradient(
            learner,
            num_inner_steps=0,
            bootstrap_steps=L,
            target_optimizer=TARGET_OPTIMIZER,
            meta_optimizer=optax.sgd(step_size),
            matching=matching,
            match_on=match_on,
        )
        meta_state = meta_opt.init(w, state)
        out = jax.jit(meta_opt.update)(state, meta_state, w)
        frozen = _frozen(learner, kind, state, w, meta_state.target_opt_state)
        new_w = optax.apply_updates(w, out.meta_updates)
        grads = jax.grad(frozen)(w)
        np.testing.assert_allclose(out.meta_loss, frozen(w), rtol=1e-12)
        assert_first_order_decrease(frozen(w), frozen(new_w), grads, step_size, noise=1e-10)


def test_zero_inner_steps_needs_a_way_for_the_meta_parameters_to_reach_the_matching():
    inner_opt = toy.INNER_OPTIMIZERS["sgd"]()
    plain = toy.make_learner(inner_opt)
    settings = dict(
        bootstrap_steps=L, target_optimizer=TARGET_OPTIMIZER, meta_optimizer=optax.sgd(0.1)
    )
    with pytest.raises(ValueError, match="num_inner_steps=0 differentiates no update"):
        bmg.bootstrapped_meta_gradient(plain, num_inner_steps=0, **settings)
    # A behaviour only counts when the predictions are matched.
    with pytest.raises(ValueError, match="num_inner_steps=0"):
        bmg.bootstrapped_meta_gradient(
            plain._replace(behaviour=behaviour), num_inner_steps=0, **settings
        )
    with pytest.raises(ValueError, match="num_inner_steps must be an int >= 0, got -1"):
        bmg.bootstrapped_meta_gradient(plain, num_inner_steps=-1, **settings)
    with pytest.raises(ValueError, match="num_inner_steps must be an int >= 1, got 0"):
        bmg.meta_gradient(plain, num_inner_steps=0, meta_optimizer=optax.sgd(0.1))
    with pytest.raises(ValueError, match=r"num_inner_steps \(K\) must be >= 1, got 0"):
        bmg.meta_gradient_loss(toy.META_PARAMS, None, (), learner=plain, num_inner_steps=0)


def test_kl_with_a_greedy_target_is_minus_the_log_probability_of_its_action():
    target = jnp.array([[0.0, -jnp.inf, -jnp.inf], [-jnp.inf, -jnp.inf, 0.0]])
    logits = jnp.array([[1.0, 2.0, 0.5], [0.3, -1.0, 0.0]])
    expected = -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), jnp.array([0, 2])])
    np.testing.assert_allclose(bmg.matching.kl(target, logits), expected, rtol=1e-6)
    grads = jax.grad(lambda x: bmg.matching.kl(target, x))(logits)
    assert np.all(np.isfinite(grads))
