"""Tests of the few-shot networks added to agents/networks.py."""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import networks, patches


def test_conv3x3_equals_haiku_conv2d_with_the_same_kernel():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 5, 3)), jnp.float32)
    ours = hk.without_apply_rng(hk.transform(lambda x: networks._conv3x3(x, 4, name="c")))
    params = jax.jit(ours.init)(jax.random.key(0), x)
    reference = hk.without_apply_rng(hk.transform(lambda x: hk.Conv2D(4, 3, name="c")(x)))
    ref_params = {"c": {"w": params["~"]["c_w"], "b": params["~"]["c_b"]}}
    np.testing.assert_allclose(
        jax.jit(ours.apply)(params, x), jax.jit(reference.apply)(ref_params, x), atol=1e-5
    )


def test_max_pool_equals_haiku_same_padding_on_odd_sides():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 7, 6, 3)), jnp.float32)
    expected = hk.max_pool(x, window_shape=(1, 2, 2, 1), strides=(1, 2, 2, 1), padding="SAME")
    np.testing.assert_array_equal(patches.max_pool2x2(x), expected)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_conv_classifier_shapes(norm):
    net = networks.conv_classifier(num_classes=5, channels=(4, 4), norm=norm)
    x = jnp.zeros((6, 9, 9, 1))
    params = jax.eval_shape(net.init, jax.random.key(0), x)
    assert jax.eval_shape(net.apply, params, x).shape == (6, 5)


def test_mlp_regressor_shapes_and_bad_norm():
    net = networks.mlp_regressor(hidden_sizes=(40, 40))
    params = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((5, 1)))
    assert jax.eval_shape(net.apply, params, jnp.zeros((5, 1))).shape == (5, 1)
    with pytest.raises(ValueError, match="norm"):
        networks.conv_classifier(num_classes=2, channels=(1,), norm="layer")
