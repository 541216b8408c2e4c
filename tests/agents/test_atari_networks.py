"""The Atari torsos of `agents.networks.atari_multihead` on ale-py's uint8 frame stacks."""

import chex
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import networks, patches

A, HEADS = 9, 3


def _size(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize(
    ("torso", "expected"),
    [
        # By hand: 3 sections (conv + 2 residual blocks of 2 convs; 3x3 kernels, biases), 84 ->
        # 42 -> 21 -> 11 by the stride-2 pools, 11*11*32 -> 256, heads 256 -> 3*(9+1).
        ("impala", 592 + 9280 + 4640 + 36992 + 9248 + 36992 + 991_488 + 7710),
        # conv 8x8/4 (84 -> 20), 4x4/2 (-> 9), 3x3/1 (-> 7), 7*7*64 -> 512, heads 512 -> 30.
        ("nature", 8224 + 32_832 + 36_928 + 1_606_144 + 15_390),
    ],
)
def test_shapes_and_parameter_counts(torso, expected):
    nets = networks.atari_multihead(num_actions=A, num_heads=HEADS, torso=torso)
    frames = jnp.zeros((4, 84, 84), jnp.uint8)
    params = jax.jit(nets.init)(jax.random.PRNGKey(0), frames)
    assert _size(params) == expected
    obs = jax.random.randint(jax.random.PRNGKey(1), (3, 2, 4, 84, 84), 0, 256).astype(jnp.uint8)
    logits, values = jax.jit(nets.apply)(params, obs)
    assert logits.shape == (3, 2, HEADS, A) and values.shape == (3, 2, HEADS)
    assert np.all(np.isfinite(logits)) and np.all(np.isfinite(values))
    # The frames are scaled in the graph: a white screen is not a black one.
    white = jax.jit(nets.apply)(params, jnp.full((1, 4, 84, 84), 255, jnp.uint8))[0]
    black = jax.jit(nets.apply)(params, jnp.zeros((1, 4, 84, 84), jnp.uint8))[0]
    assert float(jnp.max(jnp.abs(white - black))) > 1e-3


def test_unknown_torso():
    with pytest.raises(ValueError, match="torso must be one of"):
        networks.atari_multihead(num_actions=A, torso="resnet50")


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "side"),
    [
        (8, 4, "VALID", 84),
        (4, 2, "VALID", 20),
        (3, 1, "VALID", 9),
        (3, 1, "SAME", 11),
        (3, 2, "SAME", 21),
    ],
)
def test_matmul_conv_is_haiku_conv2d(kernel, stride, padding, side):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, side, side + 1, 3)), jnp.float32)

    def net(layer):
        return hk.without_apply_rng(
            hk.transform(lambda x: layer(5, kernel, stride, padding=padding, name="c")(x))
        )

    ours, ref = net(networks.MatmulConv2D), net(hk.Conv2D)
    params = ours.init(jax.random.PRNGKey(0), x)
    ref_params = ref.init(jax.random.PRNGKey(0), x)
    # The same parameters, initialised alike, and the same function of them.
    chex.assert_trees_all_equal(params, ref_params)
    out, expected = jax.jit(ours.apply)(params, x), jax.jit(ref.apply)(params, x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("side", [84, 21, 11, 8])
def test_max_pool_is_haiku_max_pool(side):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, side, side, 3)), jnp.float32)
    expected = hk.max_pool(x, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME")
    np.testing.assert_array_equal(patches.max_pool(x, 3, 2), expected)


@pytest.mark.parametrize("torso", networks.ATARI_TORSOS)
def test_matmul_and_xla_convolutions_give_the_same_torso(torso):
    """The two `networks.CONVS` are two ways of computing one network: same parameters, same
    outputs, same gradients and the same second-order (meta-)gradient through an update."""
    obs = jax.random.randint(jax.random.PRNGKey(2), (3, 4, 84, 84), 0, 256).astype(jnp.uint8)
    nets = {c: networks.atari_multihead(num_actions=A, torso=torso, conv=c) for c in networks.CONVS}
    params = nets["matmul"].init(jax.random.PRNGKey(0), obs)
    chex.assert_trees_all_equal(params, nets["xla"].init(jax.random.PRNGKey(0), obs))

    def loss(params, conv, scale=1.0):
        logits, values = nets[conv].apply(params, obs)
        return scale * jnp.sum(jax.nn.log_softmax(logits)[..., 0]) + jnp.sum(values**2)

    def meta(scale, conv):
        grads = jax.grad(loss)(params, conv, scale)
        updated = jax.tree.map(lambda p, g: p - 1e-3 * g, params, grads)
        return loss(updated, conv)

    for conv in networks.CONVS:
        np.testing.assert_allclose(loss(params, conv), loss(params, "xla"), rtol=1e-5)
    chex.assert_trees_all_close(
        jax.jit(jax.grad(loss), static_argnums=1)(params, "matmul"),
        jax.jit(jax.grad(loss), static_argnums=1)(params, "xla"),
        rtol=1e-4,
        atol=1e-5,
    )
    meta_grads = [jax.jit(jax.grad(meta), static_argnums=1)(1.0, c) for c in networks.CONVS]
    np.testing.assert_allclose(meta_grads[0], meta_grads[1], rtol=1e-4)
    assert abs(float(meta_grads[0])) > 0


def test_unknown_conv():
    with pytest.raises(ValueError, match="conv must be one of"):
        networks.atari_multihead(num_actions=A, conv="fft")
