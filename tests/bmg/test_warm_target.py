"""A target step that starts from the learner's own optimizer statistics (``target_state_from``).

An RMSProp target whose state starts at zero and is updated once per meta-step takes a first
step of about ``lr / sqrt(1 - decay)`` per coordinate (10·lr at decay 0.99, 3.2·lr at 0.9),
whatever the gradient's scale. Read off the learner state, the target step is one more step
of the learner's own RMSProp on the outer loss.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bmg
from tests.bmg import toy

LR, DECAY, EPS = 0.01, 0.9, 1e-6


def _rmsprop():
    return bmg.optimizers.rmsprop(LR, decay=DECAY, eps=EPS)


def _plain_learner():
    """A learner whose inner step is the learner's RMSProp on the outer loss itself (scaled
    by 1 + w[0], so w matters), with the same batch every step: its statistics settle."""
    batch = {"x": jnp.array([2.0, -3.0, 2.5, 4.0]), "b": jnp.array([1.5, -2.0])}
    optimizer = _rmsprop()

    def inner_step(state, meta_params):
        grads = jax.grad(toy.outer_loss)(state.params, batch)
        grads = jax.tree.map(lambda g: g * (1.0 + meta_params[0]), grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return toy.State(optax.apply_updates(state.params, updates), opt_state, state.count), {}

    learner = bmg.Learner(
        inner_step=inner_step,
        sample=lambda state: (state, batch),
        outer_loss=toy.outer_loss,
        get_params=lambda state: state.params,
    )
    params = {"x": jnp.zeros(4), "b": jnp.zeros(2)}
    state = toy.State(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    return learner, state, optimizer


def _target(learner, state, meta_params, warm):
    optimizer = _rmsprop()
    return bmg.bootstrap_target(
        learner,
        state,
        meta_params,
        optimizer.init(learner.get_params(state)),
        bootstrap_steps=2,
        target_optimizer=optimizer,
        target_state_from=(lambda z: z.opt_state) if warm else None,
    )


def _warmed(learner, state, steps=50):
    w = jnp.array([0.0, 0.0])
    for _ in range(steps):
        state, _ = learner.inner_step(state, w)
    return state


def test_warm_target_step_is_one_more_step_of_the_learners_rmsprop():
    learner, state, optimizer = _plain_learner()
    state = _warmed(learner, state, steps=20)
    w = jnp.array([0.0, 0.0])
    target = _target(learner, state, w, warm=True)
    z, _ = learner.inner_step(state, w)
    grads = jax.grad(toy.outer_loss)(z.params, learner.sample(z)[1])
    updates, expected_state = optimizer.update(grads, z.opt_state, z.params)
    expected = optax.apply_updates(z.params, updates)
    for got, want in zip(jax.tree.leaves(target.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    for got, want in zip(
        jax.tree.leaves(target.target_opt_state), jax.tree.leaves(expected_state), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_first_target_step_size_warm_against_cold():
    learner, state, _ = _plain_learner()
    state = _warmed(learner, state)
    w = jnp.array([0.0, 0.0])
    z, _ = learner.inner_step(state, w)

    def step_size(warm):
        target = _target(learner, state, w, warm)
        return jnp.abs(target.params["x"] - z.params["x"])

    cold, warm = step_size(False), step_size(True)
    # Cold: nu = (1 - decay)·g², so each coordinate moves lr / sqrt(1 - decay) = 3.2·lr.
    np.testing.assert_allclose(cold, LR / np.sqrt(1 - DECAY), rtol=1e-3)
    # Warm: the learner's statistics (50 steps at decay 0.9) have seen this gradient's scale,
    # so steps stay about lr (a little under: the gradient shrinks as x converges).
    assert float(jnp.max(warm)) < 1.05 * LR
    assert float(jnp.min(warm)) > 0.8 * LR


def test_warm_target_carries_no_meta_gradient():
    learner, state, _ = _plain_learner()
    state = _warmed(learner, state, steps=5)

    def through_target(meta_params):
        target = _target(learner, state, meta_params, warm=True)
        return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(target.params))

    grads = jax.grad(through_target)(jnp.array([0.3, -0.2]))
    np.testing.assert_array_equal(grads, 0.0)


def test_meta_optimizer_with_a_warm_target():
    learner, state, _ = _plain_learner()
    state = _warmed(learner, state, steps=5)
    meta = bmg.bootstrapped_meta_gradient(
        learner,
        num_inner_steps=1,
        bootstrap_steps=2,
        target_optimizer=_rmsprop(),
        meta_optimizer=optax.sgd(0.1),
        target_state_from=lambda z: z.opt_state,
    )
    w = jnp.array([0.0, 0.0])
    out = meta.update(state, meta.init(w, state), w)
    assert np.isfinite(float(out.meta_loss))
    assert float(jnp.abs(out.meta_updates[0])) > 0.0
    # The carried target state is the learner's, one outer-loss step further.
    nu = jax.tree.leaves(out.meta_opt_state.target_opt_state)[0]
    assert float(jnp.min(nu)) > 0.0
