"""Contract over `bmg.optimizers.INNER_OPTIMIZERS`: safe to differentiate through.

The meta-parameter is the log learning rate of the inner optimizer; the parameters have a
direction whose gradient is exactly zero at every inner step (``x[1]`` starts at the minimum of
its quadratic and never moves) and a leaf the inner loss does not use at all. Square roots of
zero second moments have an infinite derivative there, which plain optax Adam turns into NaN
meta-gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg

CURVATURE = jnp.array([1.0, 2.0])
PARAMS = {"x": jnp.array([1.0, 0.0]), "unused": jnp.array([1.0, -0.5])}
LOG_LR = jnp.log(jnp.float32(0.1))


def inner_loss(params):
    return 0.5 * jnp.sum(CURVATURE * params["x"] ** 2)


def outer_loss(params):
    return 0.5 * jnp.sum((params["x"] - 0.2) ** 2) + 0.5 * jnp.sum(params["unused"] ** 2)


def meta_gradient_fn(optimizer_factory, num_steps=3):
    """∇ of the outer loss after ``num_steps`` inner steps w.r.t. the log learning rate."""

    def meta_loss(log_lr):
        optimizer = optimizer_factory(jnp.exp(log_lr))

        def step(state, _):
            params, opt_state = state
            grads = jax.grad(inner_loss)(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), grads

        (params, _), grads = bmg.unroll(
            step, (PARAMS, optimizer.init(PARAMS)), None, num_steps=num_steps
        )
        return outer_loss(params), grads

    return jax.jit(jax.grad(meta_loss, has_aux=True))


@pytest.mark.parametrize("name", sorted(bmg.optimizers.INNER_OPTIMIZERS))
def test_meta_gradient_is_finite_with_zero_gradient_components(name):
    factory = bmg.optimizers.INNER_OPTIMIZERS[name]
    meta_grad, inner_grads = meta_gradient_fn(factory)(LOG_LR)
    # The setting is what it claims: the x[1] and "unused" gradients are zero at every step.
    np.testing.assert_array_equal(inner_grads["x"][:, 1], 0.0)
    np.testing.assert_array_equal(inner_grads["unused"], 0.0)
    assert np.all(np.asarray(inner_grads["x"][:, 0]) != 0.0)
    assert np.isfinite(meta_grad)
    assert abs(float(meta_grad)) > 1e-2  # and it is a real meta-gradient, not a vacuous zero


def test_plain_optax_adam_gives_non_finite_meta_gradient():
    """Why the factories exist: optax.adam's default eps_root=0 differentiates sqrt at 0."""
    meta_grad, _ = meta_gradient_fn(optax.adam)(LOG_LR)
    assert not np.isfinite(meta_grad)
    # The same Adam with eps_root > 0 (what bmg.optimizers.adam enforces) is finite.
    safe, _ = meta_gradient_fn(lambda lr: optax.adam(lr, eps_root=1e-8))(LOG_LR)
    assert np.isfinite(safe)


@pytest.mark.parametrize(
    ("factory", "kwargs"),
    [
        (bmg.optimizers.rmsprop, {"eps": 0.0}),
        (bmg.optimizers.rmsprop, {"eps": -1e-6}),
        (bmg.optimizers.adam, {"eps_root": 0.0}),
        (bmg.optimizers.adam, {"eps_root": -1e-8}),
    ],
)
def test_non_differentiable_settings_raise(factory, kwargs):
    with pytest.raises(ValueError, match="differentiable"):
        factory(0.1, **kwargs)


def test_factories_are_the_optax_updates():
    """The factories only fix the differentiability settings: their updates are optax's."""
    grads = {"x": jnp.array([0.5, -2.0]), "unused": jnp.array([0.0, 1.0])}
    pairs = [
        (bmg.optimizers.sgd(0.1, momentum=0.9), optax.sgd(0.1, momentum=0.9)),
        (
            bmg.optimizers.rmsprop(0.1, eps=1e-3),
            optax.rmsprop(0.1, eps=1e-3, eps_in_sqrt=True),
        ),
        (bmg.optimizers.adam(0.1, eps_root=1e-6), optax.adam(0.1, eps_root=1e-6)),
    ]
    for ours, reference in pairs:
        got, _ = ours.update(grads, ours.init(PARAMS), PARAMS)
        want, _ = reference.update(grads, reference.init(PARAMS), PARAMS)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    # RMSProp's first update with ν = 0.1 g², eps inside the square root, by hand.
    got, _ = pairs[1][0].update(grads, pairs[1][0].init(PARAMS), PARAMS)
    expected = -0.1 * grads["x"] / np.sqrt(0.1 * np.asarray(grads["x"]) ** 2 + 1e-3)
    np.testing.assert_allclose(got["x"], expected, rtol=1e-5)
