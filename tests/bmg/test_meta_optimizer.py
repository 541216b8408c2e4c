"""The optax-shaped meta-optimizers `bmg.bootstrapped_meta_gradient` and `bmg.meta_gradient`."""

import functools

import jax
import numpy as np
import optax
import pytest

import bmg
from tests.bmg import toy

K, L = 2, 3
META_LR = 0.01


def _learner(**kwargs):
    return toy.make_learner(bmg.optimizers.rmsprop(0.05), **kwargs)


def _state():
    return toy.initial_state(bmg.optimizers.rmsprop(0.05))


def _bmg(learner=None, meta_optimizer=None, **kwargs):
    settings = dict(
        num_inner_steps=K,
        bootstrap_steps=L,
        target_optimizer=optax.adam(0.1),
        meta_optimizer=meta_optimizer or optax.adam(META_LR),
    )
    settings.update(kwargs)
    return bmg.bootstrapped_meta_gradient(learner or _learner(), **settings)


def _mg(learner=None, meta_optimizer=None, **kwargs):
    return bmg.meta_gradient(
        learner or _learner(),
        num_inner_steps=kwargs.pop("num_inner_steps", K),
        meta_optimizer=meta_optimizer or optax.adam(META_LR),
        **kwargs,
    )


FACTORIES = {"bmg": _bmg, "mg": _mg}


@functools.cache
def _built(method):
    """One meta-optimizer and its jitted update per method, shared by tests (compile once)."""
    meta_opt = FACTORIES[method]()
    return meta_opt, jax.jit(meta_opt.update)


def _leaves_close(a, b, **kwargs):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_allclose(x, y, **kwargs)


def _leaves_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _adam_count(target_opt_state):
    return int(target_opt_state[0].count)


@pytest.mark.parametrize("method", ["bmg", "mg"])
def test_init_and_update(method):
    meta_opt, update = _built(method)
    state, meta_params = _state(), toy.META_PARAMS
    meta_state = meta_opt.init(meta_params, state)
    assert isinstance(meta_state, bmg.MetaOptState)
    if method == "bmg":
        assert _adam_count(meta_state.target_opt_state) == 0
    else:
        assert meta_state.target_opt_state == ()

    out = update(state, meta_state, meta_params)
    assert isinstance(out, bmg.MetaUpdate)
    new_meta_params = optax.apply_updates(meta_params, out.meta_updates)
    assert np.abs(np.asarray(new_meta_params - meta_params)).min() > 1e-4

    # The reported meta-loss and gradient norm are those of the bound pure loss.
    (loss, _), grads = jax.jit(jax.value_and_grad(meta_opt.loss, has_aux=True))(
        meta_params, state, meta_state.target_opt_state
    )
    np.testing.assert_allclose(out.meta_loss, loss, rtol=1e-6)
    np.testing.assert_allclose(out.meta_grad_norm, optax.tree.norm(grads), rtol=1e-6)
    assert float(out.meta_loss) > 0.0
    assert out.aux.inner_aux["loss"].shape == (K,)
    if method == "bmg":
        assert out.aux.bootstrap_aux["loss"].shape == (L - 1,)
    else:
        assert out.aux.bootstrap_aux is None

    # A second step: the target optimizer's (Adam) state is carried; MG has none.
    out2 = update(out.learner_state, out.meta_opt_state, new_meta_params)
    if method == "bmg":
        assert _adam_count(out.meta_opt_state.target_opt_state) == 1
        assert _adam_count(out2.meta_opt_state.target_opt_state) == 2
    else:
        assert out.meta_opt_state.target_opt_state == ()
        assert out2.meta_opt_state.target_opt_state == ()
    assert int(out2.meta_opt_state.meta_opt_state[0].count) == 2  # meta Adam advanced too


@pytest.mark.parametrize("method", ["bmg", "mg"])
def test_jit_and_no_jit_agree(method):
    meta_opt, update = _built(method)
    state = _state()
    meta_state = meta_opt.init(toy.META_PARAMS, state)
    jitted = update(state, meta_state, toy.META_PARAMS)
    eager = meta_opt.update(state, meta_state, toy.META_PARAMS)
    _leaves_close(jitted, eager, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["bmg", "mg"])
def test_same_inputs_give_bitwise_identical_outputs(method):
    meta_opt, update = _built(method)
    state = _state()
    meta_state = meta_opt.init(toy.META_PARAMS, state)
    _leaves_equal(
        update(state, meta_state, toy.META_PARAMS), update(state, meta_state, toy.META_PARAMS)
    )


def test_jitted_update_compiles_once():
    traces = []
    base = _learner()

    def counting_inner_step(state, meta_params):
        traces.append(None)  # runs only while JAX traces the function
        return base.inner_step(state, meta_params)

    learner = base._replace(inner_step=counting_inner_step)
    meta_opt = _bmg(learner)
    update = jax.jit(meta_opt.update)
    state, meta_params = _state(), toy.META_PARAMS
    meta_state = meta_opt.init(meta_params, state)

    out = update(state, meta_state, meta_params)
    traced_after_first_call = len(traces)
    assert traced_after_first_call > 0
    losses = [float(out.meta_loss)]
    for _ in range(3):
        meta_params = optax.apply_updates(meta_params, out.meta_updates)
        out = update(out.learner_state, out.meta_opt_state, meta_params)
        losses.append(float(out.meta_loss))
    assert len(traces) == traced_after_first_call
    assert update._cache_size() == 1
    assert len(set(losses)) == 4  # the calls did see different values


@pytest.mark.parametrize(
    ("method", "continue_from", "steps", "samples"),
    [
        ("bmg", "bootstrap", K + L - 1, 1),
        ("bmg", "inner", K, 0),
        ("mg", None, K, 1),
    ],
)
def test_where_the_learner_continues(method, continue_from, steps, samples):
    learner = _learner()
    if method == "bmg":
        meta_opt = _bmg(learner, continue_from=continue_from)
    else:
        meta_opt = _mg(learner)
    state, meta_params = _state(), toy.META_PARAMS
    out = jax.jit(meta_opt.update)(state, meta_opt.init(meta_params, state), meta_params)

    expected, _ = bmg.unroll(learner.inner_step, state, meta_params, num_steps=steps)
    _leaves_close(out.learner_state.params, expected.params, rtol=1e-6, atol=1e-7)
    _leaves_close(out.learner_state.opt_state, expected.opt_state, rtol=1e-6, atol=1e-7)
    # Each inner step increments the toy's counter, and so does each `sample`.
    assert int(out.learner_state.count) == int(state.count) + steps + samples
    # Not vacuous: a different number of steps gives different parameters.
    other, _ = bmg.unroll(learner.inner_step, state, meta_params, num_steps=steps + 1)
    assert np.abs(np.asarray(out.learner_state.params["x"] - other.params["x"])).max() > 1e-4


@pytest.mark.parametrize("method", ["bmg", "mg"])
def test_remat_gives_the_same_meta_gradient(method):
    state = _state()
    updates = {}
    for remat in (False, True):
        meta_opt = FACTORIES[method](meta_optimizer=optax.sgd(1.0), remat=remat)
        meta_state = meta_opt.init(toy.META_PARAMS, state)
        updates[remat] = jax.jit(meta_opt.update)(state, meta_state, toy.META_PARAMS)
    assert np.abs(np.asarray(updates[False].meta_updates)).max() > 1e-4
    _leaves_close(updates[True].meta_updates, updates[False].meta_updates, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(updates[True].meta_loss, updates[False].meta_loss, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_inner_steps": 0},
        {"bootstrap_steps": 0},
        {"num_inner_steps": True},
        {"bootstrap_steps": True},
        {"num_inner_steps": 2.0},
        {"match_on": "x"},
        {"continue_from": "x"},
        {"matching": "nope"},
    ],
    ids=lambda kw: "-".join(f"{k}={v!r}" for k, v in kw.items()),
)
def test_bmg_validation(kwargs):
    with pytest.raises(ValueError):
        _bmg(**kwargs)


@pytest.mark.parametrize("num_inner_steps", [0, -1, True, 1.0])
def test_mg_validation(num_inner_steps):
    with pytest.raises(ValueError):
        _mg(num_inner_steps=num_inner_steps)


def test_predictions_need_a_predict_function():
    with pytest.raises(ValueError, match="predict"):
        _bmg(_learner(predict=None), match_on="predictions")
    _bmg(_learner(predict=None), match_on="parameters")  # parameter matching does not need it


@pytest.mark.parametrize(
    ("name", "function", "predict", "match_on"),
    [
        ("l2", bmg.matching.l2, toy.predict, "parameters"),
        ("kl_v", bmg.matching.kl_and_value, toy.predict, "predictions"),
    ],
)
def test_matching_by_name(name, function, predict, match_on):
    learner = _learner(predict=predict)
    state = _state()
    meta_opt = _bmg(learner, matching=name, match_on=match_on)
    out = jax.jit(meta_opt.update)(state, meta_opt.init(toy.META_PARAMS, state), toy.META_PARAMS)
    assert float(out.meta_loss) > 0.0
    assert np.abs(np.asarray(out.meta_updates)).min() > 1e-4
    # The named matching is the one evaluated: check the loss against a direct evaluation.
    x_k, _ = bmg.unroll(learner.inner_step, state, toy.META_PARAMS, num_steps=K)
    target = bmg.bootstrap_target(
        learner,
        x_k,
        toy.META_PARAMS,
        optax.adam(0.1).init(state.params),
        bootstrap_steps=L,
        target_optimizer=optax.adam(0.1),
    )
    if match_on == "parameters":
        expected = function(target.params, x_k.params)
    else:
        expected = function(predict(target.params, target.batch), predict(x_k.params, target.batch))
    np.testing.assert_allclose(out.meta_loss, expected, rtol=1e-5)


def test_from_meta_loss_with_a_user_written_loss():
    learner = _learner()

    def doubled_mg_loss(meta_params, learner_state, target_opt_state):
        loss, aux = bmg.meta_gradient_loss(
            meta_params, learner_state, target_opt_state, learner=learner, num_inner_steps=K
        )
        return 2.0 * loss, aux

    custom = bmg.from_meta_loss(doubled_mg_loss, learner=learner, meta_optimizer=optax.sgd(1.0))
    reference = _mg(learner, meta_optimizer=optax.sgd(1.0))
    state = _state()
    meta_state = custom.init(toy.META_PARAMS, state)
    assert meta_state.target_opt_state == ()
    out = jax.jit(custom.update)(state, meta_state, toy.META_PARAMS)
    ref = jax.jit(reference.update)(state, reference.init(toy.META_PARAMS, state), toy.META_PARAMS)
    assert np.abs(np.asarray(ref.meta_updates)).max() > 1e-4
    np.testing.assert_allclose(out.meta_updates, 2.0 * ref.meta_updates, rtol=1e-5)
    np.testing.assert_allclose(out.meta_loss, 2.0 * ref.meta_loss, rtol=1e-6)
    _leaves_equal(out.learner_state, ref.learner_state)

    # With a target optimizer, `init` builds its state from the learner's parameters.
    with_target = bmg.from_meta_loss(
        doubled_mg_loss,
        learner=learner,
        meta_optimizer=optax.sgd(1.0),
        target_optimizer=optax.adam(0.1),
    )
    target_state = with_target.init(toy.META_PARAMS, state).target_opt_state
    _leaves_equal(target_state, optax.adam(0.1).init(state.params))
