"""The reduction checks of DESIGN.md section 1: they define what a correct meta-gradient is."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from tests.bmg import toy

OPTIMIZERS = sorted(toy.INNER_OPTIMIZERS)


def _losses(opt_name, *, num_inner_steps, bootstrap_steps=1, target_optimizer=None, **kwargs):
    inner_opt = toy.INNER_OPTIMIZERS[opt_name]()
    # KL compares policies: the learner predicts logits only.
    kl_only = kwargs.get("matching") is bmg.matching.kl
    learner = toy.make_learner(inner_opt, predict=toy.predict_logits if kl_only else toy.predict)
    target_optimizer = target_optimizer or optax.sgd(0.5)
    bmg_loss = functools.partial(
        bmg.bootstrapped_meta_loss,
        learner=learner,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=target_optimizer,
        **kwargs,
    )
    mg_loss = functools.partial(
        bmg.meta_gradient_loss, learner=learner, num_inner_steps=num_inner_steps
    )
    return inner_opt, learner, bmg_loss, mg_loss


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("num_inner_steps", [1, 3])
def test_reduction_bmg_l1_l2_sgd_target_is_alpha_times_mg(opt_name, num_inner_steps, maybe_jit):
    alpha = 0.37
    with jax.enable_x64(True):
        inner_opt, _, bmg_loss, mg_loss = _losses(
            opt_name, num_inner_steps=num_inner_steps, target_optimizer=optax.sgd(alpha)
        )
        state = toy.initial_state(inner_opt, jnp.float64)
        w = toy.META_PARAMS.astype(jnp.float64)
        tstate = optax.sgd(alpha).init(state.params)
        g_bmg, _ = maybe_jit(jax.grad(bmg_loss, has_aux=True))(w, state, tstate)
        g_mg, _ = maybe_jit(jax.grad(mg_loss, has_aux=True))(w, state, ())
        assert np.abs(g_mg).max() > 1e-3  # the check is not vacuous
        np.testing.assert_allclose(g_bmg, alpha * g_mg, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("matching", "match_on"),
    [("l2", "parameters"), ("l2", "predictions"), ("kl", "predictions"), ("kl_v", "predictions")],
)
def test_reduction_target_equal_to_learner_gives_zero_meta_gradient(matching, match_on):
    matching_fn = bmg.matching.MATCHING_FUNCTIONS[matching]
    # L=1 and a target step of rate zero: x̃ = x^(K).
    inner_opt, _, bmg_loss, _ = _losses(
        "rmsprop",
        num_inner_steps=3,
        target_optimizer=optax.sgd(0.0),
        matching=matching_fn,
        match_on=match_on,
    )
    state = toy.initial_state(inner_opt)
    tstate = optax.sgd(0.0).init(state.params)
    (loss, _), grads = jax.jit(jax.value_and_grad(bmg_loss, has_aux=True))(
        toy.META_PARAMS, state, tstate
    )
    np.testing.assert_allclose(loss, 0.0, atol=1e-7)
    np.testing.assert_allclose(grads, 0.0, atol=1e-7)
    # The same setting with a non-zero target step does move w.
    _, _, moving_loss, _ = _losses(
        "rmsprop", num_inner_steps=3, matching=matching_fn, match_on=match_on
    )
    moving = jax.jit(jax.grad(moving_loss, has_aux=True))(toy.META_PARAMS, state, tstate)[0]
    assert np.abs(moving).max() > 1e-4


def _central_difference(f, w, eps):
    grads = []
    for i in range(w.shape[0]):
        e = jnp.zeros_like(w).at[i].set(eps)
        grads.append((f(w + e) - f(w - e)) / (2 * eps))
    return jnp.stack(grads)


@pytest.mark.parametrize("opt_name", OPTIMIZERS)
@pytest.mark.parametrize("num_inner_steps", [1, 3, 5])
@pytest.mark.parametrize("method", ["bmg", "mg"])
def test_finite_difference_meta_gradient(opt_name, num_inner_steps, method):
    with jax.enable_x64(True):
        inner_opt, _, bmg_loss, mg_loss = _losses(
            opt_name,
            num_inner_steps=num_inner_steps,
            bootstrap_steps=3,
            target_optimizer=optax.rmsprop(0.1, eps_in_sqrt=True, eps=1e-4),
        )
        loss = bmg_loss if method == "bmg" else mg_loss
        state = toy.initial_state(inner_opt, jnp.float64)
        target_state = optax.rmsprop(0.1).init(state.params)
        w = toy.META_PARAMS.astype(jnp.float64)
        analytic = jax.jit(jax.grad(loss, has_aux=True))(w, state, target_state)[0]
        if method == "bmg":
            fd_fn = _bmg_with_frozen_target(inner_opt, state, target_state, w, num_inner_steps)
        else:
            fd_fn = lambda w: loss(w, state, target_state)[0]
        numeric = _central_difference(jax.jit(fd_fn), w, 1e-6)
        assert np.abs(analytic).max() > 1e-4
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def _bmg_with_frozen_target(inner_opt, state, target_state, w0, num_inner_steps):
    """μ(x̃(w0), x^(K)(w)): the BMG meta-loss with its target built once, at w0."""
    learner = toy.make_learner(inner_opt)
    x_k0, _ = bmg.unroll(learner.inner_step, state, w0, num_steps=num_inner_steps)
    target = bmg.bootstrap_target(
        learner,
        x_k0,
        w0,
        target_state,
        bootstrap_steps=3,
        target_optimizer=optax.rmsprop(0.1, eps_in_sqrt=True, eps=1e-4),
    )

    def loss(w):
        x_k, _ = bmg.unroll(learner.inner_step, state, w, num_steps=num_inner_steps)
        return bmg.matching.l2(target.params, x_k.params)

    return loss


def test_no_leak_into_target_jacobian_is_zero():
    inner_opt = toy.INNER_OPTIMIZERS["adam"]()
    learner = toy.make_learner(inner_opt)
    state = toy.initial_state(inner_opt)
    target_opt = optax.adam(0.1)

    def target_params(w):
        x_k, _ = bmg.unroll(learner.inner_step, state, w, num_steps=2)
        target = bmg.bootstrap_target(
            learner,
            x_k,
            w,
            target_opt.init(state.params),
            bootstrap_steps=4,
            target_optimizer=target_opt,
        )
        return target.params

    jacobian = jax.jit(jax.jacobian(target_params))(toy.META_PARAMS)
    for leaf in jax.tree.leaves(jacobian):
        np.testing.assert_array_equal(leaf, 0.0)
    # Without the stop-gradients the target does depend on w: the check has teeth.
    leaky = jax.jit(jax.jacobian(lambda w: _leaky_target_params(learner, state, w, target_opt)))(
        toy.META_PARAMS
    )
    assert max(np.abs(leaf).max() for leaf in jax.tree.leaves(leaky)) > 1e-3


def _leaky_target_params(learner, state, w, target_opt):
    x_k, _ = bmg.unroll(learner.inner_step, state, w, num_steps=2)
    z, _ = bmg.unroll(learner.inner_step, x_k, w, num_steps=3)
    z, batch = learner.sample(z)
    grads = jax.grad(learner.outer_loss)(z.params, batch)
    updates, _ = target_opt.update(grads, target_opt.init(z.params), z.params)
    return optax.apply_updates(z.params, updates)


@pytest.mark.parametrize("match_on", ["parameters", "predictions"])
def test_no_leak_into_target_meta_gradient_equals_frozen_target(match_on):
    """Changing w inside steps 2-3 (the target) changes nothing in ∇_w."""
    inner_opt = toy.INNER_OPTIMIZERS["rmsprop"]()
    learner = toy.make_learner(inner_opt)
    state = toy.initial_state(inner_opt)
    matching = bmg.matching.l2 if match_on == "parameters" else bmg.matching.kl_and_value
    loss = functools.partial(
        bmg.bootstrapped_meta_loss,
        learner=learner,
        num_inner_steps=2,
        bootstrap_steps=4,
        target_optimizer=optax.sgd(0.3),
        matching=matching,
        match_on=match_on,
    )
    w = toy.META_PARAMS
    tstate = optax.sgd(0.3).init(state.params)
    grads = jax.jit(jax.grad(loss, has_aux=True))(w, state, tstate)[0]

    x_k0, _ = bmg.unroll(learner.inner_step, state, w, num_steps=2)
    target = bmg.bootstrap_target(
        learner, x_k0, w, tstate, bootstrap_steps=4, target_optimizer=optax.sgd(0.3)
    )
    target_params = jax.tree.map(np.asarray, target.params)  # a constant, far from any trace
    target_batch = jax.tree.map(np.asarray, target.batch)

    def frozen(w):
        x_k, _ = bmg.unroll(learner.inner_step, state, w, num_steps=2)
        if match_on == "parameters":
            return matching(target_params, x_k.params)
        return matching(
            learner.predict(target_params, target_batch), learner.predict(x_k.params, target_batch)
        )

    expected = jax.jit(jax.grad(frozen))(w)
    np.testing.assert_allclose(grads, expected, rtol=1e-5, atol=1e-7)

    def leaky(w):
        x_k, _ = bmg.unroll(learner.inner_step, state, w, num_steps=2)
        z, _ = bmg.unroll(learner.inner_step, x_k, w, num_steps=3)
        z, batch = learner.sample(z)
        g = jax.grad(learner.outer_loss)(z.params, batch)
        tgt = jax.tree.map(lambda p, g: p - 0.3 * g, z.params, g)
        if match_on == "parameters":
            return matching(tgt, x_k.params)
        return matching(learner.predict(tgt, batch), learner.predict(x_k.params, batch))

    assert np.abs(jax.jit(jax.grad(leaky))(w) - grads).max() > 1e-4
