"""Direction: one small SGD meta-step lowers the MG meta-loss and the frozen-target BMG meta-loss.

The reduction and finite-difference checks (`test_reductions.py`) test the meta-gradient that a
meta-loss defines; these tests check that `MetaOptimizer.update` steps *against* it, so they fail
when the sign of the meta-update is flipped. They run in float64: the first-order decrease
lr·‖∇‖² of a small step is then far above rounding noise.

For BMG the quantity that must decrease is the matching loss to a target built once from the old
meta-parameters, μ(x̃(w_old), x^(K)(w)): the meta-gradient treats x̃ as a constant, so only this
frozen-target loss is promised to go down (recomputing x̃ at w_new moves the target too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from bmg.learner import prepared
from bmg.meta_loss import learner_prediction
from tests.bmg import toy

META_LR = 1e-2
"""Small enough that the loss is close to linear over the step (decrease ≈ lr·‖∇‖²)."""


def frozen_target_loss(
    learner,
    learner_state,
    meta_params,
    target_opt_state,
    *,
    num_inner_steps,
    bootstrap_steps,
    target_optimizer,
    matching,
    match_on,
):
    """``w -> μ(x̃, x^(K)(w))`` with x̃ built once, from ``meta_params`` (the old w).

    Uses the core's own building blocks (`bmg.unroll`, `bmg.bootstrap_target`), so that at
    ``w = meta_params`` it equals `bmg.bootstrapped_meta_loss`.
    """

    def inner(w):
        x0 = prepared(learner, learner_state, w)
        if num_inner_steps == 0:
            return x0
        x_k, _ = bmg.unroll(learner.inner_step, x0, w, num_steps=num_inner_steps)
        return x_k

    target = bmg.bootstrap_target(
        learner,
        inner(meta_params),
        meta_params,
        target_opt_state,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=target_optimizer,
    )

    def loss(w):
        params = learner.get_params(inner(w))
        if match_on == "parameters":
            return matching(target.params, params)
        prediction = learner_prediction(learner, params, target.batch, w)
        return matching(learner.predict(target.params, target.batch), prediction)

    return loss


def tree_dot(a, b) -> float:
    """Σ over all leaves of the elementwise products of two pytrees (in numpy's float64)."""
    products = jax.tree.map(lambda x, y: np.sum(np.asarray(x) * np.asarray(y)), a, b)
    return float(sum(jax.tree.leaves(products)))


def assert_first_order_decrease(before, after, grads, step_size, *, noise):
    """``before - after`` is positive, above ``noise`` and at least half of lr·‖∇‖².

    A flipped meta-update raises the loss by about lr·‖∇‖², so it fails both bounds.
    """
    predicted = step_size * tree_dot(grads, grads)
    decrease = float(before) - float(after)
    assert predicted > noise, f"vacuous check: predicted decrease {predicted:.3g} ≤ {noise:.3g}"
    assert decrease > noise, f"the meta-step did not lower the loss: {before} -> {after}"
    assert decrease > 0.5 * predicted, (
        f"decrease {decrease:.6g} is less than half the first-order prediction {predicted:.6g}"
    )


def _toy(opt_name, predict=toy.predict):
    """The toy learner and a float64 state a few steps into training (call under x64)."""
    inner_opt = toy.INNER_OPTIMIZERS[opt_name]()
    learner = toy.make_learner(inner_opt, predict=predict)
    state = toy.initial_state(inner_opt, jnp.float64)
    return learner, state, toy.META_PARAMS.astype(jnp.float64)


def _mg_step(opt_name, num_inner_steps, meta_optimizer):
    """One MG meta-step on the toy, in one jitted call (so one compilation per test).

    Returns the reported meta-loss, the meta-loss at the old and the new w (same learner
    state, so the same batches), ∇ from ``jax.grad(meta_opt.loss)`` and the meta-updates.
    """
    with jax.enable_x64(True):
        learner, state, w = _toy(opt_name)
        meta_opt = bmg.meta_gradient(
            learner, num_inner_steps=num_inner_steps, meta_optimizer=meta_optimizer
        )

        @jax.jit
        def run(w, state):
            meta_state = meta_opt.init(w, state)
            out = meta_opt.update(state, meta_state, w)
            new_w = optax.apply_updates(w, out.meta_updates)
            loss = lambda w: meta_opt.loss(w, state, meta_state.target_opt_state)[0]
            grads = jax.grad(meta_opt.loss, has_aux=True)(w, state, meta_state.target_opt_state)
            return dict(
                reported=out.meta_loss,
                before=loss(w),
                after=loss(new_w),
                grads=grads[0],
                updates=out.meta_updates,
            )

        return jax.tree.map(np.asarray, run(w, state))


TARGET_OPTIMIZERS = {"sgd": lambda: optax.sgd(0.5), "rmsprop": lambda: optax.rmsprop(0.1)}


def _bmg_step(
    *, matching, target, num_inner_steps, bootstrap_steps, meta_optimizer, opt_name="rmsprop"
):
    """One BMG meta-step on the toy and its frozen-target loss, in one jitted call.

    ``l2`` matches parameters, ``kl`` the toy's policy logits on the target batch. Two updates
    at fixed (w, learner state) first advance only the target optimizer's state, so that an
    RMSProp target is not at its zero initialisation (where its step is a sign step).

    Returns the reported meta-loss, μ(x̃(w_old), x^(K)(w)) at the old and the new w, its
    gradient at the old w, ∇ from ``jax.grad(meta_opt.loss)`` and the meta-updates.
    """
    kl = matching == "kl"
    with jax.enable_x64(True):
        learner, state, w = _toy(opt_name, predict=toy.predict_logits if kl else toy.predict)
        settings = dict(
            num_inner_steps=num_inner_steps,
            bootstrap_steps=bootstrap_steps,
            target_optimizer=TARGET_OPTIMIZERS[target](),
            matching=bmg.matching.MATCHING_FUNCTIONS[matching],
            match_on="predictions" if kl else "parameters",
        )
        meta_opt = bmg.bootstrapped_meta_gradient(
            learner, meta_optimizer=meta_optimizer, **settings
        )

        @jax.jit
        def run(w, state):
            meta_state = meta_opt.init(w, state)
            for _ in range(2):
                advanced = meta_opt.update(state, meta_state, w).meta_opt_state
                meta_state = meta_state._replace(target_opt_state=advanced.target_opt_state)
            out = meta_opt.update(state, meta_state, w)
            new_w = optax.apply_updates(w, out.meta_updates)
            loss = frozen_target_loss(learner, state, w, meta_state.target_opt_state, **settings)
            grads = jax.grad(meta_opt.loss, has_aux=True)(w, state, meta_state.target_opt_state)
            return dict(
                reported=out.meta_loss,
                before=loss(w),
                after=loss(new_w),
                frozen_grads=jax.grad(loss)(w),
                grads=grads[0],
                updates=out.meta_updates,
            )

        return jax.tree.map(np.asarray, run(w, state))


@pytest.mark.parametrize("opt_name", sorted(toy.INNER_OPTIMIZERS))
@pytest.mark.parametrize("num_inner_steps", [1, 3])
def test_mg_sgd_meta_step_lowers_the_meta_loss(opt_name, num_inner_steps):
    """One `bmg.meta_gradient` update with SGD, applied to w, lowers f(x^(K)(w)) to first order.

    The meta-loss is evaluated at the same learner state before and after (so on the same
    batch); the decrease is at least half of lr·‖∇f‖².
    """
    r = _mg_step(opt_name, num_inner_steps, optax.sgd(META_LR))
    np.testing.assert_allclose(r["reported"], r["before"], rtol=1e-12)
    assert_first_order_decrease(r["before"], r["after"], r["grads"], META_LR, noise=1e-12)


@pytest.mark.parametrize("num_inner_steps", [1, 3])
@pytest.mark.parametrize("bootstrap_steps", [1, 3])
@pytest.mark.parametrize("target", sorted(TARGET_OPTIMIZERS))
@pytest.mark.parametrize("matching", ["l2", "kl"])
def test_bmg_sgd_meta_step_lowers_the_frozen_target_matching_loss(
    matching, target, bootstrap_steps, num_inner_steps
):
    """One BMG update with SGD lowers μ(x̃, x^(K)(w)) for the target x̃ built from the old w.

    At the old w the frozen-target loss and its gradient are the meta-loss the update reported
    and ``jax.grad(meta_opt.loss)`` (so it is the objective the meta-gradient differentiates);
    at the new w it is lower by at least half of lr·‖∇μ‖².
    """
    r = _bmg_step(
        matching=matching,
        target=target,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=bootstrap_steps,
        meta_optimizer=optax.sgd(META_LR),
    )
    np.testing.assert_allclose(r["reported"], r["before"], rtol=1e-12)
    np.testing.assert_allclose(r["frozen_grads"], r["grads"], rtol=1e-9, atol=1e-15)
    assert_first_order_decrease(r["before"], r["after"], r["grads"], META_LR, noise=1e-12)


META_OPTIMIZERS = {
    "sgd": lambda: optax.sgd(META_LR),
    "momentum": lambda: optax.sgd(META_LR, momentum=0.9),
    "adam": lambda: optax.adam(META_LR),
    "rmsprop": lambda: optax.rmsprop(META_LR),
}


@pytest.mark.parametrize("meta_optimizer", sorted(META_OPTIMIZERS))
@pytest.mark.parametrize("method", ["mg", "bmg-l2", "bmg-kl"])
def test_meta_update_is_a_descent_direction(method, meta_optimizer):
    """``<meta_updates, ∇_w meta-loss> < 0`` for the first update of several meta-optimizers.

    ∇ is ``jax.grad(meta_opt.loss, has_aux=True)``, computed apart from ``update``; each optax
    optimizer here scales the gradient by a positive diagonal factor on its first step, so its
    update points downhill (K = L = 3, RMSProp inner and target optimizers).
    """
    if method == "mg":
        r = _mg_step("rmsprop", 3, META_OPTIMIZERS[meta_optimizer]())
    else:
        r = _bmg_step(
            matching=method.removeprefix("bmg-"),
            target="rmsprop",
            num_inner_steps=3,
            bootstrap_steps=3,
            meta_optimizer=META_OPTIMIZERS[meta_optimizer](),
        )
    assert np.abs(r["grads"]).max() > 1e-4  # not vacuous
    assert tree_dot(r["updates"], r["grads"]) < 0
