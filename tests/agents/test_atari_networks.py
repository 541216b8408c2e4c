"""The Atari torsos of `agents.networks.atari_multihead` on ale-py's uint8 frame stacks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from agents import networks

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
