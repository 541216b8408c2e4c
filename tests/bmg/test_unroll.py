"""`bmg.unroll`: the K-step scan of an inner update rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bmg


def affine_step(x, w):
    """x -> x·w + 1; the aux is the incoming x."""
    return x * w + 1.0, x


def test_unroll_hand_values(maybe_jit):
    x0, w = jnp.float32(2.0), jnp.float32(3.0)

    final, aux = maybe_jit(lambda x, w: bmg.unroll(affine_step, x, w, num_steps=3))(x0, w)
    # x1 = 2·3 + 1 = 7, x2 = 7·3 + 1 = 22, x3 = 22·3 + 1 = 67.
    np.testing.assert_allclose(final, 67.0)
    np.testing.assert_allclose(aux, [2.0, 7.0, 22.0])
    assert aux.shape == (3,)

    # x3 = x0·w³ + w² + w + 1, so dx3/dw = 3·x0·w² + 2w + 1 = 61 and dx3/dx0 = w³ = 27.
    final_of = lambda x, w: bmg.unroll(affine_step, x, w, num_steps=3)[0]
    dx0, dw = maybe_jit(jax.grad(final_of, argnums=(0, 1)))(x0, w)
    np.testing.assert_allclose(dw, 61.0)
    np.testing.assert_allclose(dx0, 27.0)


def test_unroll_pytree_state_and_aux():
    def step(state, w):
        new = {"x": state["x"] * w, "n": state["n"] + 1}
        return new, {"x": state["x"], "sum": jnp.sum(state["x"])}

    state = {"x": jnp.array([1.0, -2.0]), "n": jnp.int32(0)}
    final, aux = bmg.unroll(step, state, jnp.float32(2.0), num_steps=2)
    np.testing.assert_allclose(final["x"], [4.0, -8.0])
    assert int(final["n"]) == 2
    np.testing.assert_allclose(aux["x"], [[1.0, -2.0], [2.0, -4.0]])
    np.testing.assert_allclose(aux["sum"], [-1.0, -2.0])


def test_zero_steps_returns_state_unchanged():
    state = {"x": jnp.array([1.0, 2.0]), "n": jnp.int32(5)}
    calls = []

    def step(state, w):
        calls.append(None)
        return {"x": state["x"] * w, "n": state["n"] + 1}, state["x"]

    final, aux = bmg.unroll(step, state, jnp.float32(10.0), num_steps=0)
    np.testing.assert_array_equal(final["x"], [1.0, 2.0])
    assert int(final["n"]) == 5
    assert aux.shape == (0, 2)
    # Zero steps carry no gradient to w.
    grad = jax.grad(lambda w: jnp.sum(bmg.unroll(step, state, w, num_steps=0)[0]["x"]))(3.0)
    assert float(grad) == 0.0


def nonlinear_step(state, w):
    x, v = state
    g = jnp.tanh(x * w[0]) + w[1] * x**2
    v = 0.9 * v + g
    return (x - 0.1 * v, v), jnp.sum(g)


def test_remat_gives_identical_values_and_gradients():
    state = (jnp.array([0.5, -1.0, 2.0]), jnp.zeros(3))
    w = jnp.array([0.7, -0.2])

    def loss(w, remat):
        (x, _), aux = bmg.unroll(nonlinear_step, state, w, num_steps=5, remat=remat)
        return jnp.sum(x**2) + jnp.sum(aux), aux

    grad = lambda remat: jax.jit(jax.value_and_grad(lambda w: loss(w, remat), has_aux=True))(w)
    (value, aux), g = grad(False)
    (value_remat, aux_remat), g_remat = grad(True)
    assert np.abs(g).max() > 1e-2
    np.testing.assert_allclose(value_remat, value, rtol=1e-6)
    np.testing.assert_allclose(aux_remat, aux, rtol=1e-6)
    np.testing.assert_allclose(g_remat, g, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("num_steps", [-1, 2.0, "3", None])
def test_invalid_num_steps_raises(num_steps):
    with pytest.raises(ValueError, match="num_steps"):
        bmg.unroll(affine_step, jnp.float32(1.0), jnp.float32(2.0), num_steps=num_steps)
