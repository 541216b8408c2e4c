"""N-way K-shot classification episodes from an array of classes of images.

Datasets are stored as ``uint8 [C, M, H, W, Ch]``: C classes of M images each (readers keep
the first M images of every class, M the smallest class size). An episode picks N distinct
classes at random, labels them 0..N-1 in the order drawn (so labels are a random assignment),
and draws ``shots + queries`` distinct images of each; images become float32 in [0, 1].
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from agents.maml import Episode


class DataError(ValueError):
    """Few-shot data is missing, malformed or too small for the requested episodes."""


class ClassSplit(NamedTuple):
    """Disjoint meta-train and meta-test classes.

    Attributes:
      train: ``uint8 [C_train, M, H, W, Ch]`` meta-training classes.
      test: ``uint8 [C_test, M', H, W, Ch]`` held-out meta-test classes.
      train_names: a name per meta-training class.
      test_names: a name per meta-test class.
    """

    train: np.ndarray
    test: np.ndarray
    train_names: tuple[str, ...]
    test_names: tuple[str, ...]


def check_enough(images: np.ndarray, *, ways: int, shots: int, queries: int, name: str) -> None:
    """Raises `DataError` unless ``images`` has ≥ ``ways`` classes of ≥ shots+queries images."""
    if images.ndim != 5:
        raise DataError(
            f"{name}: expected images [classes, per_class, H, W, C], got shape {images.shape}"
        )
    num_classes, per_class = images.shape[:2]
    if num_classes < ways:
        raise DataError(f"{name}: {ways}-way episodes need {ways} classes, found {num_classes}")
    if per_class < shots + queries:
        raise DataError(
            f"{name}: {shots} shots + {queries} queries need {shots + queries} "
            f"images per class, found {per_class}"
        )


def sample_episodes(
    key: jax.Array,
    images: chex.Array,
    *,
    num_tasks: int,
    ways: int,
    shots: int,
    queries: int,
) -> Episode:
    """Draws ``num_tasks`` N-way K-shot episodes.

    Args:
      key: PRNG key; the same key and images give the same episodes.
      images: ``uint8 [C, M, H, W, Ch]`` classes of images (a traced argument under jit).
      num_tasks: B, the leading axis of every array.
      ways: N classes per episode.
      shots: K support images per class.
      queries: query images per class.

    Returns:
      An `Episode` with ``support_x: [B, N*K, H, W, Ch]`` float32, ``support_y: [B, N*K]``
      int32 labels in [0, N), ``query_x: [B, N*Q, H, W, Ch]``, ``query_y: [B, N*Q]``.
    """
    chex.assert_rank(images, 5)
    num_classes, per_class = images.shape[:2]
    class_key, image_key = jax.random.split(key)
    # The indices of the k largest of i.i.d. uniforms are a uniformly random ordered subset
    # (cheaper to compile than `jax.random.choice(..., replace=False)`).
    classes = jax.lax.top_k(jax.random.uniform(class_key, (num_tasks, num_classes)), ways)[1]
    draws = jax.random.uniform(image_key, (num_tasks, ways, per_class))
    index = jax.lax.top_k(draws, shots + queries)[1]  # [B, N, S+Q]
    x = images[classes[..., None], index].astype(jnp.float32) / 255.0  # [B, N, S+Q, H, W, C]
    y = jnp.broadcast_to(jnp.arange(ways, dtype=jnp.int32)[:, None], index.shape)

    def flat(a, start, stop):
        part = a[:, :, start:stop]
        return part.reshape(num_tasks, ways * (stop - start), *a.shape[3:])

    n = shots + queries
    return Episode(
        support_x=flat(x, 0, shots),
        support_y=flat(y, 0, shots),
        query_x=flat(x, shots, n),
        query_y=flat(y, shots, n),
    )


def with_rotations(images: np.ndarray, names: tuple[str, ...]):
    """Adds the 90/180/270-degree rotations of every class as new classes (Omniglot practice).

    Args:
      images: ``[C, M, H, W, Ch]`` with H == W.
      names: the C class names.

    Returns:
      ``(images [4C, M, H, W, Ch], names)``; class ``r*C + c`` is class c rotated by
      90·r degrees counter-clockwise and is named ``"<name>@<90·r>"``.
    """
    rotated = [np.rot90(images, k=r, axes=(2, 3)) for r in range(4)]
    names = tuple(f"{n}@{90 * r}" for r in range(4) for n in names)
    return np.ascontiguousarray(np.concatenate(rotated, axis=0)), names
