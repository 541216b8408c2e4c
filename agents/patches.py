"""Convolution windows and max-pooling written as shifted, strided views of an NHWC array.

Pure JAX (no parameters): `agents.networks` builds its matmul convolutions on `windows`, and
uses `max_pool` / `max_pool2x2` where XLA's pooling would put a select-and-scatter into the
meta-gradient's second derivatives.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, tuple[int, int]]:
    """Output side and (before, after) padding of a ``SAME`` window (XLA's convention: the odd
    pixel goes after)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, (total // 2, total - total // 2)


def windows(x: jax.Array, kernel: int, stride: int, padding: str, fill: float = 0.0):
    """The ``kernel * kernel`` shifted, strided views ``[N, H', W', C]`` of ``x [N, H, W, C]``
    that a ``kernel x kernel`` window of ``stride`` sees, in row-major kernel order; ``SAME``
    pads with ``fill``."""
    n, height, width, c = x.shape
    if padding == "SAME":
        out_h, pad_h = same_padding(height, kernel, stride)
        out_w, pad_w = same_padding(width, kernel, stride)
        x = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), constant_values=fill)
    elif padding == "VALID":
        out_h, out_w = (height - kernel) // stride + 1, (width - kernel) // stride + 1
    else:
        raise ValueError(f"padding must be 'SAME' or 'VALID', got {padding!r}")
    span_h, span_w = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
    return [
        x[:, i : i + span_h : stride, j : j + span_w : stride]
        for i in range(kernel)
        for j in range(kernel)
    ]


def max_pool(x: jax.Array, window: int, stride: int) -> jax.Array:
    """Max-pooling with ``SAME`` padding (by -inf) as an elementwise maximum of the shifted
    views, equal to ``hk.max_pool``; its derivatives are selects, not XLA's
    select-and-scatter."""
    views = windows(x, window, stride, "SAME", fill=-jnp.inf)
    out = views[0]
    for view in views[1:]:
        out = jnp.maximum(out, view)
    return out


def max_pool2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pooling with stride 2 and ``SAME`` padding (odd sides padded at the end)."""
    n, height, width, c = x.shape
    pad_h, pad_w = height % 2, width % 2
    x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=-jnp.inf)
    h2, w2 = (height + pad_h) // 2, (width + pad_w) // 2
    return jnp.max(x.reshape(n, h2, 2, w2, 2, c), axis=(2, 4))
