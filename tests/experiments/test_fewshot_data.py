"""Tests of the few-shot task samplers: sinusoids, episodes, digits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.fewshot.data import digits, episodes, sinusoid

WAYS, SHOTS, QUERIES, TASKS = 3, 2, 3, 40


def _coded_images(num_classes=6, per_class=10):
    """Images whose pixels encode (class, index): value = 10 * class + index."""
    codes = 10 * np.arange(num_classes)[:, None] + np.arange(per_class)[None, :]
    return np.broadcast_to(codes[:, :, None, None, None], (num_classes, per_class, 2, 2, 1)).astype(
        np.uint8
    )


@functools.lru_cache
def _sampled_episodes():
    sample = jax.jit(
        functools.partial(
            episodes.sample_episodes, num_tasks=TASKS, ways=WAYS, shots=SHOTS, queries=QUERIES
        )
    )
    images = jnp.asarray(_coded_images())
    return sample(jax.random.key(0, impl="rbg"), images), sample(
        jax.random.key(1, impl="rbg"), images
    )


def test_episode_shapes_and_labels():
    ep, _ = _sampled_episodes()
    assert ep.support_x.shape == (TASKS, WAYS * SHOTS, 2, 2, 1)
    assert ep.query_x.shape == (TASKS, WAYS * QUERIES, 2, 2, 1)
    assert ep.support_x.dtype == jnp.float32 and ep.support_y.dtype == jnp.int32
    for y, per_class in ((ep.support_y, SHOTS), (ep.query_y, QUERIES)):
        assert int(y.min()) == 0 and int(y.max()) == WAYS - 1
        counts = np.stack([np.sum(np.asarray(y) == c, axis=1) for c in range(WAYS)])
        np.testing.assert_array_equal(counts, per_class)


def test_episodes_draw_distinct_classes_and_distinct_images():
    ep, other = _sampled_episodes()
    codes_s = np.rint(np.asarray(ep.support_x[..., 0, 0, 0]) * 255).astype(int)
    codes_q = np.rint(np.asarray(ep.query_x[..., 0, 0, 0]) * 255).astype(int)
    for t in range(TASKS):
        classes = []
        for label in range(WAYS):
            s = codes_s[t][np.asarray(ep.support_y[t]) == label]
            q = codes_q[t][np.asarray(ep.query_y[t]) == label]
            both = np.concatenate([s, q])
            assert len(set(both // 10)) == 1  # one class per label
            assert len(set(both)) == SHOTS + QUERIES  # no image twice (support or query)
            classes.append(both[0] // 10)
        assert len(set(classes)) == WAYS
    # Labels are a random assignment of classes, and another key gives other episodes.
    first_class = codes_s[:, 0] // 10
    assert len(set(first_class)) > 1
    assert not np.array_equal(np.asarray(ep.support_x), np.asarray(other.support_x))


def test_check_enough_rejects_small_datasets():
    images = _coded_images(num_classes=4, per_class=5)
    episodes.check_enough(images, ways=4, shots=2, queries=3, name="ok")
    with pytest.raises(episodes.DataError, match="5-way episodes need 5 classes"):
        episodes.check_enough(images, ways=5, shots=1, queries=1, name="x")
    with pytest.raises(episodes.DataError, match="6 images per class, found 5"):
        episodes.check_enough(images, ways=2, shots=1, queries=5, name="x")


def test_sinusoid_tasks():
    sample = jax.jit(functools.partial(sinusoid.sample_episodes, num_tasks=200, shots=5, queries=7))
    ep = sample(jax.random.key(0, impl="rbg"))
    assert ep.support_x.shape == ep.support_y.shape == (200, 5, 1)
    assert ep.query_x.shape == (200, 7, 1)
    x = np.concatenate([ep.support_x, ep.query_x], axis=1)[..., 0]
    y = np.concatenate([ep.support_y, ep.query_y], axis=1)[..., 0]
    assert x.min() >= -5 and x.max() <= 5 and np.abs(y).max() <= 5
    # Each task is one sinusoid A sin(x - φ): recover (a, b) = (A cos φ, -A sin φ) by least
    # squares on the support set and predict the query set exactly.
    for t in range(20):
        design = np.stack([np.sin(x[t]), np.cos(x[t])], axis=1)
        coef = np.linalg.lstsq(design[:5], y[t, :5], rcond=None)[0]
        np.testing.assert_allclose(design[5:] @ coef, y[t, 5:], atol=1e-4)
        amplitude = np.hypot(*coef)
        assert 0.1 - 1e-4 <= amplitude <= 5 + 1e-4
    again = sample(jax.random.key(0, impl="rbg"))
    np.testing.assert_array_equal(again.query_y, ep.query_y)


def test_digits_split_is_disjoint_and_rotations_are_new_classes():
    split = digits.load_split()
    assert split.train.shape == (28, 174, 8, 8, 1) and split.test.shape == (12, 174, 8, 8, 1)
    assert split.train.dtype == np.uint8 and split.train.max() == 255
    assert len(split.train_names) + len(split.test_names) == 40
    assert not set(split.train_names) & set(split.test_names)
    train_digits = {n.split("@")[0] for n in split.train_names}
    test_digits = {n.split("@")[0] for n in split.test_names}
    assert not train_digits & test_digits and test_digits == {"2", "3", "7"}
    # Class r*C + c is class c rotated by 90·r degrees, and differs from it.
    c = len(digits.TEST_DIGITS)
    for r in range(1, 4):
        np.testing.assert_array_equal(split.test[r * c], np.rot90(split.test[0], k=r, axes=(1, 2)))
        assert not np.array_equal(split.test[r * c], split.test[0])
        assert split.test_names[r * c] == f"2@{90 * r}"
    plain = digits.load_split(rotations=False)
    assert plain.train.shape[0] == 7 and plain.test.shape[0] == 3
