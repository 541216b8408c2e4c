"""Maps between unconstrained meta-parameters and hyperparameters (`bmg.hyper`)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from bmg import hyper


@pytest.mark.parametrize(
    ("bijection", "values"),
    [
        (hyper.sigmoid(), [0.01, 0.3, 0.5, 0.9, 0.995]),
        (hyper.sigmoid(-2.0, 3.0), [-1.9, -0.5, 0.0, 1.0, 2.9]),
        (hyper.softplus(), [1e-3, 0.1, 1.0, 5.0, 30.0]),
        (hyper.exp(), [1e-4, 0.01, 1.0, 20.0]),
        (hyper.identity(), [-3.0, 0.0, 0.25, 7.0]),
    ],
    ids=lambda x: x.name if isinstance(x, hyper.Bijection) else None,
)
def test_round_trip(bijection, values, maybe_jit):
    y = jnp.asarray(values, jnp.float32)
    eta = maybe_jit(bijection.inverse)(y)
    assert eta.dtype == jnp.float32
    np.testing.assert_allclose(maybe_jit(bijection.forward)(eta), y, rtol=1e-5, atol=1e-6)


def test_inverses_are_hand_values():
    np.testing.assert_allclose(hyper.sigmoid().inverse(0.5), 0.0, atol=1e-7)
    np.testing.assert_allclose(hyper.sigmoid(2.0, 4.0).forward(0.0), 3.0, rtol=1e-6)
    np.testing.assert_allclose(hyper.sigmoid().forward(np.log(3.0)), 0.75, rtol=1e-6)
    np.testing.assert_allclose(hyper.softplus().inverse(np.log(2.0)), 0.0, atol=1e-6)
    np.testing.assert_allclose(hyper.exp().inverse(np.e), 1.0, rtol=1e-6)


@pytest.mark.parametrize(("low", "high"), [(1.0, 1.0), (1.0, 0.0), (0.5, -0.5)])
def test_sigmoid_rejects_empty_range(low, high):
    with pytest.raises(ValueError, match="high > low"):
        hyper.sigmoid(low, high)


class Hypers(NamedTuple):
    discount: hyper.Hyperparameter
    entropy: hyper.Hyperparameter
    head_weights: hyper.Hyperparameter


def _spec(entropy_learned=True):
    return Hypers(
        discount=hyper.Hyperparameter(0.99, hyper.sigmoid()),
        entropy=hyper.Hyperparameter(0.01, hyper.softplus(), learned=entropy_learned),
        head_weights=hyper.Hyperparameter(jnp.array([0.5, 1.0, 2.0]), hyper.exp()),
    )


def test_init_meta_params_and_constrain_round_trip(maybe_jit):
    spec = _spec()
    meta_params = hyper.init_meta_params(spec)
    assert isinstance(meta_params, Hypers)
    assert meta_params.head_weights.shape == (3,)
    for leaf in meta_params:
        assert leaf.dtype == jnp.float32
    np.testing.assert_allclose(meta_params.head_weights, np.log([0.5, 1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(meta_params.discount, np.log(0.99 / 0.01), rtol=1e-4)

    hypers = maybe_jit(lambda m: hyper.constrain(m, spec))(meta_params)
    assert isinstance(hypers, Hypers)
    np.testing.assert_allclose(hypers.discount, 0.99, rtol=1e-6)
    np.testing.assert_allclose(hypers.entropy, 0.01, rtol=1e-4)
    np.testing.assert_allclose(hypers.head_weights, [0.5, 1.0, 2.0], rtol=1e-6)


def _objective(spec):
    def objective(meta_params):
        h = hyper.constrain(meta_params, spec)
        return h.discount + 3.0 * h.entropy + jnp.sum(jnp.arange(1.0, 4.0) * h.head_weights)

    return objective


def test_unlearned_fields_get_zero_gradient(maybe_jit):
    spec = _spec(entropy_learned=False)
    meta_params = hyper.init_meta_params(spec)
    grads = maybe_jit(jax.grad(_objective(spec)))(meta_params)
    assert isinstance(grads, Hypers)
    assert float(grads.entropy) == 0.0
    # d sigmoid(η)/dη = p (1 - p) at p = 0.99.
    np.testing.assert_allclose(grads.discount, 0.99 * 0.01, rtol=1e-4)
    # d exp(η)/dη = exp(η): the per-head weights times their coefficients 1, 2, 3.
    np.testing.assert_allclose(grads.head_weights, [0.5, 2.0, 6.0], rtol=1e-5)
    # With the entropy learned, its gradient is 3 · sigmoid(η) = 3 (1 - exp(-0.01)).
    learned_spec = _spec(entropy_learned=True)
    learned = jax.grad(_objective(learned_spec))(hyper.init_meta_params(learned_spec))
    np.testing.assert_allclose(learned.entropy, 3.0 * (1.0 - np.exp(-0.01)), rtol=1e-4)


def test_learned_mask_with_optax_masked():
    spec = _spec(entropy_learned=False)
    mask = hyper.learned_mask(spec)
    assert mask == Hypers(discount=True, entropy=False, head_weights=True)

    meta_params = hyper.init_meta_params(spec)
    grads = jax.grad(_objective(spec))(meta_params)  # zero for the unlearned entropy

    def step(optimizer):
        updates, _ = optimizer.update(grads, optimizer.init(meta_params), meta_params)
        return optax.apply_updates(meta_params, updates)

    # AdamW's weight decay moves every field, even one whose gradient is zero ...
    adamw = optax.adamw(0.1, weight_decay=0.5)
    assert float(jnp.abs(step(adamw).entropy - meta_params.entropy)) > 1e-2
    # ... unless the mask excludes it.
    new = step(optax.masked(adamw, mask))
    assert isinstance(new, Hypers)
    np.testing.assert_array_equal(new.entropy, meta_params.entropy)
    # The learned fields take Adam's first step, lr · sign(g), plus the decay lr · wd · η.
    expected_discount = meta_params.discount - 0.1 - 0.1 * 0.5 * meta_params.discount
    np.testing.assert_allclose(new.discount, expected_discount, rtol=1e-5)
    expected_heads = meta_params.head_weights - 0.1 - 0.05 * meta_params.head_weights
    np.testing.assert_allclose(new.head_weights, expected_heads, atol=1e-5)


def test_array_valued_hyperparameter_one_per_head():
    spec = Hypers(
        discount=hyper.Hyperparameter(jnp.array([0.9, 0.99, 0.999]), hyper.sigmoid()),
        entropy=hyper.Hyperparameter(jnp.full((3,), 0.05), hyper.softplus(), learned=False),
        head_weights=hyper.Hyperparameter(jnp.array([1.0, 2.0, 3.0]), hyper.sigmoid(0.0, 4.0)),
    )
    meta_params = hyper.init_meta_params(spec)
    assert all(leaf.shape == (3,) for leaf in meta_params)
    hypers = hyper.constrain(meta_params, spec)
    np.testing.assert_allclose(hypers.discount, [0.9, 0.99, 0.999], rtol=1e-5)
    np.testing.assert_allclose(hypers.head_weights, [1.0, 2.0, 3.0], rtol=1e-5)

    # Each head's gradient depends on its own value only (an elementwise map).
    grads = jax.grad(lambda m: jnp.sum(hyper.constrain(m, spec).discount))(meta_params)
    p = np.array([0.9, 0.99, 0.999])
    np.testing.assert_allclose(grads.discount, p * (1 - p), rtol=1e-3)
    np.testing.assert_array_equal(grads.entropy, np.zeros(3))
