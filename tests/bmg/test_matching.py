"""Matching functions μ(target, prediction): hand-computed values and a contract over all."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bmg
from bmg.matching import PolicyAndValue

LN2 = np.log(2.0)


def test_matching_functions_names():
    assert bmg.matching.MATCHING_FUNCTIONS == {
        "l2": bmg.matching.l2,
        "kl": bmg.matching.kl,
        "kl_v": bmg.matching.kl_and_value,
    }


# --- l2 -------------------------------------------------------------------------------------


def test_l2_hand_value_on_two_leaf_dict(maybe_jit):
    target = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([[3.0]])}
    prediction = {"a": jnp.array([0.0, 0.0]), "b": jnp.array([[1.0]])}
    # ½ (1² + 2² + 2²) = 4.5
    np.testing.assert_allclose(maybe_jit(bmg.matching.l2)(target, prediction), 4.5, rtol=1e-6)
    # Symmetric in its arguments.
    np.testing.assert_allclose(maybe_jit(bmg.matching.l2)(prediction, target), 4.5, rtol=1e-6)


def test_l2_is_zero_at_equality_and_non_negative():
    keys = jax.random.split(jax.random.key(0), 4)
    tree = {"w": jax.random.normal(keys[0], (3, 4)), "b": jax.random.normal(keys[1], (4,))}
    assert float(bmg.matching.l2(tree, tree)) == 0.0
    other = {"w": jax.random.normal(keys[2], (3, 4)), "b": jax.random.normal(keys[3], (4,))}
    value = float(bmg.matching.l2(tree, other))
    assert value > 0.0
    expected = 0.5 * sum(np.sum((np.asarray(tree[k]) - np.asarray(other[k])) ** 2) for k in tree)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_l2_shape_mismatch_raises():
    with pytest.raises(AssertionError):
        bmg.matching.l2({"a": jnp.zeros(3)}, {"a": jnp.zeros(4)})


# --- kl -------------------------------------------------------------------------------------

# Target logits [0, 0] give π = [½, ½]; logits [0, ln 3] give π = [¼, ¾].
HALF_HALF = jnp.array([0.0, 0.0])
QUARTER_THREE_QUARTERS = jnp.array([0.0, np.log(3.0)])


def test_kl_hand_value(maybe_jit):
    value = maybe_jit(bmg.matching.kl)(HALF_HALF, QUARTER_THREE_QUARTERS)
    expected = 0.5 * LN2 + 0.5 * np.log(2.0 / 3.0)  # ½ ln(½/¼) + ½ ln(½/¾)
    np.testing.assert_allclose(value, expected, rtol=1e-5)


def test_kl_is_asymmetric():
    forward = float(bmg.matching.kl(HALF_HALF, QUARTER_THREE_QUARTERS))
    backward = float(bmg.matching.kl(QUARTER_THREE_QUARTERS, HALF_HALF))
    np.testing.assert_allclose(backward, 0.25 * np.log(0.5) + 0.75 * np.log(1.5), rtol=1e-5)
    assert abs(forward - backward) > 1e-2


def _kl_reference(target_logits, logits):
    """KL(softmax(target) ‖ softmax(logits)) per state, in float64 numpy."""
    t = np.asarray(target_logits, np.float64)
    p = np.asarray(logits, np.float64)
    t = t - t.max(-1, keepdims=True)
    p = p - p.max(-1, keepdims=True)
    log_t = t - np.log(np.exp(t).sum(-1, keepdims=True))
    log_p = p - np.log(np.exp(p).sum(-1, keepdims=True))
    return (np.exp(log_t) * (log_t - log_p)).sum(-1)


def test_kl_is_the_mean_over_leading_axes(maybe_jit):
    k1, k2 = jax.random.split(jax.random.key(1))
    target = jax.random.normal(k1, (2, 3, 4))  # [T, B, A]
    logits = jax.random.normal(k2, (2, 3, 4))
    per_state = _kl_reference(target, logits)
    assert per_state.shape == (2, 3)
    assert per_state.std() > 1e-3  # a mean is distinguishable from e.g. a sum or one entry
    np.testing.assert_allclose(maybe_jit(bmg.matching.kl)(target, logits), per_state.mean(), 1e-5)


def test_kl_is_invariant_to_constant_shifts_of_logits():
    k1, k2 = jax.random.split(jax.random.key(2))
    target = jax.random.normal(k1, (5, 3))
    logits = jax.random.normal(k2, (5, 3))
    base = bmg.matching.kl(target, logits)
    shifted = bmg.matching.kl(target + 3.0, logits - 7.5)
    np.testing.assert_allclose(shifted, base, rtol=1e-5)
    # A per-state shift (different constant per row) is also a no-op.
    row_shift = jnp.arange(5.0)[:, None]
    np.testing.assert_allclose(bmg.matching.kl(target, logits + row_shift), base, rtol=1e-5)


def test_kl_is_zero_at_equality():
    logits = jax.random.normal(jax.random.key(3), (4, 6))
    np.testing.assert_allclose(bmg.matching.kl(logits, logits), 0.0, atol=1e-7)


def test_kl_shape_mismatch_raises():
    with pytest.raises(AssertionError):
        bmg.matching.kl(jnp.zeros((2, 3)), jnp.zeros((2, 4)))


# --- kl_and_value ---------------------------------------------------------------------------


def test_kl_and_value_hand_value(maybe_jit):
    target = PolicyAndValue(jnp.stack([HALF_HALF, HALF_HALF]), jnp.array([1.0, 2.0]))
    prediction = PolicyAndValue(
        jnp.stack([QUARTER_THREE_QUARTERS, HALF_HALF]), jnp.array([0.0, 0.0])
    )
    kl_part = 0.5 * (0.5 * LN2 + 0.5 * np.log(2.0 / 3.0))  # mean of [hand KL, 0]
    value_part = 0.5 * np.mean([1.0, 4.0])  # ½ mean (v_target − v)² = 1.25
    default = maybe_jit(bmg.matching.kl_and_value)(target, prediction)
    np.testing.assert_allclose(default, kl_part + value_part, rtol=1e-5)
    weighted = maybe_jit(functools.partial(bmg.matching.kl_and_value, value_weight=0.4))
    np.testing.assert_allclose(weighted(target, prediction), kl_part + 0.4 * value_part, 1e-5)


def test_kl_and_value_shape_mismatch_raises():
    target = PolicyAndValue(jnp.zeros((3, 2)), jnp.zeros(3))
    with pytest.raises(AssertionError):
        bmg.matching.kl_and_value(target, PolicyAndValue(jnp.zeros((3, 2)), jnp.zeros(4)))
    with pytest.raises(AssertionError):  # value batch shape differs from the logits' one
        bmg.matching.kl_and_value(
            PolicyAndValue(jnp.zeros((3, 2)), jnp.zeros(4)),
            PolicyAndValue(jnp.zeros((3, 2)), jnp.zeros(4)),
        )


# --- contract over every matching function --------------------------------------------------


def _random_inputs(name, key):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    if name == "l2":
        make = lambda ka, kb: {"w": jax.random.normal(ka, (3, 2)), "b": jax.random.normal(kb, (2,))}
    elif name == "kl":
        make = lambda ka, kb: 2.0 * jax.random.normal(ka, (2, 3, 4))
    elif name == "kl_v":
        make = lambda ka, kb: PolicyAndValue(
            2.0 * jax.random.normal(ka, (2, 3, 4)), jax.random.normal(kb, (2, 3))
        )
    else:
        raise AssertionError(f"no test inputs for matching function {name!r}; add them here")
    return make(k1, k2), make(k3, k4)


@pytest.mark.parametrize("name", sorted(bmg.matching.MATCHING_FUNCTIONS))
def test_matching_contract(name, maybe_jit):
    matching = maybe_jit(bmg.matching.MATCHING_FUNCTIONS[name])
    target, other = _random_inputs(name, jax.random.key(4))

    np.testing.assert_allclose(matching(target, target), 0.0, atol=1e-6)
    for i in range(3):
        t, p = _random_inputs(name, jax.random.key(10 + i))
        assert float(matching(t, p)) > 0.0
    assert float(matching(target, other)) > 0.0

    grad_at_equality = maybe_jit(jax.grad(bmg.matching.MATCHING_FUNCTIONS[name], argnums=1))(
        target, target
    )
    for leaf in jax.tree.leaves(grad_at_equality):
        np.testing.assert_allclose(leaf, 0.0, atol=1e-6)
    # Away from equality the gradient is not zero: the check above has teeth.
    grad_away = jax.grad(bmg.matching.MATCHING_FUNCTIONS[name], argnums=1)(target, other)
    assert max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(grad_away)) > 1e-3
