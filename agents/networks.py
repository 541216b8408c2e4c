"""Networks of the agents: the only module of the project that imports haiku.

Each factory returns pure ``init`` / ``apply`` functions (``hk.without_apply_rng``) so that the
rest of the code sees parameters as plain pytrees.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp

from agents.patches import max_pool, max_pool2x2, windows


class ActorCriticNets(NamedTuple):
    """Separate policy and value networks.

    Attributes:
      init: ``init(key, obs) -> params`` with ``params = {"policy": ..., "value": ...}``.
      policy: ``policy(params, obs[..., O]) -> logits[..., A]``.
      value: ``value(params, obs[..., O]) -> v[...]``.
      num_actions: A, the number of logits.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    policy: Callable[[Any, jax.Array], jax.Array]
    value: Callable[[Any, jax.Array], jax.Array]
    num_actions: int


INITS = ("torch", "haiku")
"""Initialisations of the MLPs: PyTorch's ``nn.Linear`` default, or Haiku's."""


def _linear(size: int, *, init: str, name: str) -> hk.Linear:
    """``hk.Linear`` with PyTorch's default initialisation (``init="torch"``: weights and
    biases uniform in ±1/√fan_in) or Haiku's (truncated normal of std 1/√fan_in, zero biases).

    PyTorch's weights have a √3 times smaller standard deviation, so at initialisation a
    2x256 ReLU value network has a smaller |∇θ v(s)|² (about 5 against 18 on two-colors
    observations): a plain-SGD critic then takes proportionally smaller steps on v.
    """
    if init == "haiku":
        return hk.Linear(size, name=name)
    if init != "torch":
        raise ValueError(f"init must be one of {INITS}, got {init!r}")

    class TorchLinear(hk.Linear):
        def __call__(self, inputs, *, precision=None):
            bound = 1.0 / math.sqrt(inputs.shape[-1])
            self.w_init = hk.initializers.RandomUniform(-bound, bound)
            self.b_init = hk.initializers.RandomUniform(-bound, bound)
            return super().__call__(inputs, precision=precision)

    return TorchLinear(size, name=name)


def _mlp(obs, sizes: Sequence[int], *, init: str, name: str):
    x = obs
    with hk.name_scope(name):
        for i, size in enumerate(sizes):
            x = _linear(size, init=init, name=f"linear_{i}")(x)
            if i < len(sizes) - 1:
                x = jax.nn.relu(x)
    return x


def actor_critic_mlp(
    *, num_actions: int, hidden_sizes: Sequence[int], init: str = "torch"
) -> ActorCriticNets:
    """Policy and value MLPs with ReLU hidden layers and no shared parameters (paper, 5.1).

    ``init`` is ``"torch"`` (PyTorch's default, as the public replication that learns) or
    ``"haiku"`` (see `_linear`).
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    hidden_sizes = tuple(hidden_sizes)
    policy_net = hk.without_apply_rng(
        hk.transform(lambda obs: _mlp(obs, (*hidden_sizes, num_actions), init=init, name="policy"))
    )
    value_net = hk.without_apply_rng(
        hk.transform(lambda obs: _mlp(obs, (*hidden_sizes, 1), init=init, name="value")[..., 0])
    )

    def init_fn(key, obs):
        policy_key, value_key = jax.random.split(key)
        return {"policy": policy_net.init(policy_key, obs), "value": value_net.init(value_key, obs)}

    return ActorCriticNets(
        init=init_fn,
        policy=lambda params, obs: policy_net.apply(params["policy"], obs),
        value=lambda params, obs: value_net.apply(params["value"], obs),
        num_actions=num_actions,
    )


def q_mlp(*, num_actions: int, hidden_sizes: Sequence[int], init: str = "torch") -> Network:
    """A Q-network: a ReLU MLP ``obs[..., O] -> q[..., A]`` (the actor-critic's policy MLP with
    Q-values for outputs; ``init`` as in `actor_critic_mlp`)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    sizes = (*tuple(hidden_sizes), num_actions)
    net = hk.without_apply_rng(hk.transform(lambda obs: _mlp(obs, sizes, init=init, name="q")))
    return Network(init=net.init, apply=net.apply)


class ScalarMetaNet(NamedTuple):
    """A small network mapping statistics to a scalar hyperparameter in (0, 1).

    Attributes:
      init: ``init(key, inputs[N]) -> meta_params``.
      apply: ``apply(meta_params, inputs[N]) -> scalar in (0, 1)``.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]


def sigmoid_meta_net(
    *, hidden_size: int, initial_value: float, init: str = "torch"
) -> ScalarMetaNet:
    """``sigmoid(MLP(inputs) + logit(initial_value))`` with one ReLU hidden layer.

    The output layer starts at zero, so the network outputs exactly ``initial_value`` at
    initialisation whatever its inputs; its gradients are non-zero from the start. The hidden
    layer takes ``init`` (`_linear`): with PyTorch's random biases the hidden units are active
    and of order 0.3 even when the inputs (mean rewards) are near zero, so each output weight,
    not only the output bias, can move the logit; with Haiku's zero biases the hidden units are
    of the inputs' size (about 0.04) and Adam can move the logit by little more than its
    learning rate per meta-step.
    """
    if not 0.0 < initial_value < 1.0:
        raise ValueError(f"initial_value must be in (0, 1), got {initial_value}")
    offset = math.log(initial_value) - math.log1p(-initial_value)

    def forward(inputs):
        hidden = jax.nn.relu(_linear(hidden_size, init=init, name="hidden")(inputs))
        out = hk.Linear(1, w_init=jnp.zeros, name="out")(hidden)[..., 0]
        return jax.nn.sigmoid(out + offset)

    net = hk.without_apply_rng(hk.transform(forward))
    return ScalarMetaNet(init=net.init, apply=net.apply)


class Network(NamedTuple):
    """A network as a pair of pure functions.

    Attributes:
      init: ``init(key, inputs) -> params``.
      apply: ``apply(params, inputs) -> outputs``; leading axes of ``inputs`` are batch axes.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]


def mlp_regressor(*, hidden_sizes: Sequence[int], output_size: int = 1) -> Network:
    """A ReLU MLP ``[..., D] -> [..., output_size]`` (MAML sinusoid: hidden sizes 40-40)."""
    sizes = (*tuple(hidden_sizes), output_size)
    net = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP(sizes, name="mlp")(x)))
    return Network(init=net.init, apply=net.apply)


def _transductive_norm(x: jax.Array, name: str) -> jax.Array:
    """Per-channel normalisation with the statistics of the current batch ``[N, H, W, C]``.

    MAML's batch normalisation without running averages (Finn et al. 2017): the statistics are
    those of the images passed together (a task's support set, or its query set), so it holds
    no state. Learned scale and offset per channel.
    """
    channels = x.shape[-1]
    mean = jnp.mean(x, axis=(0, 1, 2), keepdims=True)
    var = jnp.var(x, axis=(0, 1, 2), keepdims=True)
    scale = hk.get_parameter(f"{name}_scale", (channels,), init=jnp.ones)
    offset = hk.get_parameter(f"{name}_offset", (channels,), init=jnp.zeros)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + offset


def _conv3x3(x: jax.Array, channels: int, name: str, *, padding: str = "SAME") -> jax.Array:
    """A 3x3 convolution ``[N, H, W, C] -> [N, H', W', channels]`` as one matmul.

    With ``padding="SAME"`` (H' = H) the nine shifted copies of the zero-padded input, with
    ``"VALID"`` (H' = H - 2) those of the input itself, are concatenated into patches
    ``[N, H', W', 9C]`` and multiplied by the kernel ``[3, 3, C, channels]`` reshaped to
    ``[9C, channels]`` (the cross-correlation of ``hk.Conv2D``). Under ``vmap`` over per-task
    parameters this is a batched matmul; XLA's CPU backend runs the equivalent grouped
    convolution and its second derivatives more than ten times slower.
    """
    c = x.shape[-1]
    w_init = hk.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    kernel = hk.get_parameter(f"{name}_w", (3, 3, c, channels), init=w_init)
    bias = hk.get_parameter(f"{name}_b", (channels,), init=jnp.zeros)
    patches = jnp.concatenate(windows(x, 3, 1, padding), axis=-1)
    return patches @ kernel.reshape(9 * c, channels) + bias


class MatmulConv2D(hk.Module):
    """``hk.Conv2D`` (NHWC, square kernel, stride, ``SAME`` / ``VALID``, bias) computed as one
    matmul of the input's patches ``[N, H', W', k*k*C]`` by the kernel reshaped to
    ``[k*k*C, channels]``, with hk.Conv2D's parameters (``w [k, k, C, channels]``, ``b``) and
    initialisation, so the two are interchangeable.

    Why: on XLA's CPU backend the second derivatives of a convolution (a meta-gradient through
    an update of a conv net) are an order of magnitude slower than those of the same matmul
    (``benchmarks/atari.py --conv``); on a GPU the convolution may be the faster one.
    """

    def __init__(
        self,
        channels: int,
        kernel: int,
        stride: int = 1,
        padding: str = "SAME",
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.channels, self.kernel, self.stride, self.padding = channels, kernel, stride, padding

    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = self.kernel * self.kernel * x.shape[-1]
        w_init = hk.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(fan_in))
        w = hk.get_parameter(
            "w", (self.kernel, self.kernel, x.shape[-1], self.channels), x.dtype, init=w_init
        )
        b = hk.get_parameter("b", (self.channels,), x.dtype, init=jnp.zeros)
        patches = jnp.concatenate(windows(x, self.kernel, self.stride, self.padding), axis=-1)
        return patches @ w.reshape(fan_in, self.channels) + b


def conv_classifier(*, num_classes: int, channels: Sequence[int], norm: str = "none") -> Network:
    """The few-shot convolutional classifier of MAML, ``[N, H, W, C] -> logits[N, classes]``.

    Each block is a 3x3 convolution (`_conv3x3`), optional normalisation, ReLU and 2x2
    max-pooling with ``SAME`` padding; a linear layer maps the flattened features to logits.

    Args:
      num_classes: the number of ways N.
      channels: output channels of each block (MAML: four blocks of 64 for Omniglot, of 32
        for mini-ImageNet).
      norm: ``"none"`` or ``"batch"`` (transductive, stateless; see `_transductive_norm`).
        With ``"batch"`` an example's logits depend on the other images of its batch.
    """
    if norm not in ("none", "batch"):
        raise ValueError(f"norm must be 'none' or 'batch', got {norm!r}")
    channels = tuple(channels)

    def forward(images):
        x = images
        for i, c in enumerate(channels):
            x = _conv3x3(x, c, name=f"conv{i}")
            if norm == "batch":
                x = _transductive_norm(x, name=f"norm{i}")
            x = max_pool2x2(jax.nn.relu(x))
        return hk.Linear(num_classes, name="logits")(x.reshape(x.shape[0], -1))

    net = hk.without_apply_rng(hk.transform(forward))
    return Network(init=net.init, apply=net.apply)


class MultiHeadNets(NamedTuple):
    """A shared torso with several policy-and-value heads (STACX, Zahavy et al. 2020).

    Attributes:
      init: ``init(key, obs[H, W, C]) -> params``.
      apply: ``apply(params, obs[..., H, W, C]) -> (logits[..., heads, A], values[..., heads])``.
      num_actions: A.
      num_heads: the number of heads; head 0 is the main head (the one that acts).
    """

    init: Callable[[jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]]
    num_actions: int
    num_heads: int


def _heads(x: jax.Array, batch_shape, num_heads: int, num_actions: int):
    """``num_heads`` linear policy-and-value heads on torso features ``x[N, F]``: one layer
    named ``heads``, split into logits ``[*batch_shape, heads, A]`` and values
    ``[*batch_shape, heads]``."""
    out = hk.Linear(num_heads * (num_actions + 1), name="heads")(x)
    out = out.reshape(*batch_shape, num_heads, num_actions + 1)
    return out[..., :num_actions], out[..., num_actions]


def _multihead(forward, num_actions: int, num_heads: int) -> MultiHeadNets:
    net = hk.without_apply_rng(hk.transform(forward))
    return MultiHeadNets(
        init=net.init, apply=net.apply, num_actions=num_actions, num_heads=num_heads
    )


def minatar_multihead(
    *, num_actions: int, num_heads: int = 3, channels: int = 16, hidden_size: int = 128
) -> MultiHeadNets:
    """The MinAtar torso (one 3x3 ``VALID`` convolution, ReLU, one ReLU layer; Young and Tian
    2019) with ``num_heads`` linear heads, each giving A logits and one value."""

    def forward(obs):
        batch_shape = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:])
        x = jax.nn.relu(_conv3x3(x, channels, name="conv", padding="VALID"))
        x = jax.nn.relu(hk.Linear(hidden_size, name="hidden")(x.reshape(x.shape[0], -1)))
        return _heads(x, batch_shape, num_heads, num_actions)

    return _multihead(forward, num_actions, num_heads)


ATARI_TORSOS = ("impala", "nature")
"""Torsos of `atari_multihead`: IMPALA's deep ResNet (STACX's) or the Nature DQN's."""

CONVS = ("matmul", "xla")
"""How `atari_multihead` computes convolutions and pooling: `MatmulConv2D` and `max_pool`
(fast second derivatives on CPU) or ``hk.Conv2D`` and ``hk.max_pool`` (XLA's convolution and
reduce-window). Same parameters, same function."""


def _layers(conv: str):
    """The convolution and 3x3/2 max-pool of `CONVS` entry ``conv``."""
    if conv == "matmul":
        return MatmulConv2D, lambda x: max_pool(x, 3, 2)
    pool = functools.partial(
        hk.max_pool, window_shape=(1, 3, 3, 1), strides=(1, 2, 2, 1), padding="SAME"
    )
    return hk.Conv2D, pool


def _impala_torso(x: jax.Array, conv: str) -> jax.Array:
    """IMPALA's deep ResNet (Espeholt et al. 2018): three sections of 16, 32, 32 channels, each
    a 3x3 convolution, a 3x3 max-pool of stride 2 and two residual blocks; then 256 units."""
    conv2d, max_pool = _layers(conv)
    for i, channels in enumerate((16, 32, 32)):
        x = max_pool(conv2d(channels, 3, name=f"section{i}_conv")(x))
        for j in range(2):
            y = conv2d(channels, 3, name=f"section{i}_block{j}_a")(jax.nn.relu(x))
            x = x + conv2d(channels, 3, name=f"section{i}_block{j}_b")(jax.nn.relu(y))
    x = jax.nn.relu(x).reshape(x.shape[0], -1)
    return jax.nn.relu(hk.Linear(256, name="hidden")(x))


def _nature_torso(x: jax.Array, conv: str) -> jax.Array:
    """The Nature DQN torso (Mnih et al. 2015): 8x8/4, 4x4/2, 3x3/1 convolutions of 32, 64,
    64 channels (``VALID``), then 512 units."""
    conv2d, _ = _layers(conv)
    for i, (channels, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        x = jax.nn.relu(conv2d(channels, kernel, stride, padding="VALID", name=f"conv{i}")(x))
    return jax.nn.relu(hk.Linear(512, name="hidden")(x.reshape(x.shape[0], -1)))


def atari_multihead(
    *, num_actions: int, num_heads: int = 3, torso: str = "impala", conv: str = "matmul"
) -> MultiHeadNets:
    """An Atari torso with ``num_heads`` linear heads, each giving A logits and one value.

    Observations are ale-py's uint8 frame stacks ``[..., stack, H, W]``; they cross to the
    device as uint8 and are scaled to [0, 1] and made channels-last here, in the graph.
    ``conv`` (`CONVS`) chooses how the convolutions are computed, not what they compute.
    """
    if torso not in ATARI_TORSOS:
        raise ValueError(f"torso must be one of {ATARI_TORSOS}, got {torso!r}")
    if conv not in CONVS:
        raise ValueError(f"conv must be one of {CONVS}, got {conv!r}")
    body = functools.partial(_impala_torso if torso == "impala" else _nature_torso, conv=conv)

    def forward(obs):
        batch_shape = obs.shape[:-3]
        x = obs.reshape(-1, *obs.shape[-3:]).astype(jnp.float32) / 255.0
        x = body(jnp.transpose(x, (0, 2, 3, 1)))
        return _heads(x, batch_shape, num_heads, num_actions)

    return _multihead(forward, num_actions, num_heads)
