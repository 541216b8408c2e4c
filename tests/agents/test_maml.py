"""Tests of the MAML few-shot learner on `bmg` (paper, section 6)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from agents import maml, networks

NUM_TASKS, SHOTS, QUERIES = 3, 4, 5


def _regression(dtype=jnp.float32, **config):
    """A tiny MLP learner and a meta-batch of random regression tasks."""
    net = networks.mlp_regressor(hidden_sizes=(6,))
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (NUM_TASKS, SHOTS + QUERIES, 1))
    y = np.sin(x * rng.uniform(0.5, 2, (NUM_TASKS, 1, 1)))
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    episodes = maml.Episode(x[:, :SHOTS], y[:, :SHOTS], x[:, SHOTS:], y[:, SHOTS:])
    cfg = maml.MamlConfig(loss="mse", **{"inner_lr": 0.3, **config})
    return net, maml.make_learner(net, cfg), _init(net, x[0, :SHOTS], cfg, dtype), episodes


def _classification(dtype=jnp.float32, ways=3, **config):
    """A tiny conv learner and a meta-batch of random 6x6 image episodes."""
    net = networks.conv_classifier(num_classes=ways, channels=(3,))
    images = jnp.asarray(np.random.default_rng(1).uniform(size=(NUM_TASKS, 2 * ways, 6, 6, 1)))
    images = images.astype(dtype)
    labels = jnp.tile(jnp.arange(ways, dtype=jnp.int32), (NUM_TASKS, 2))
    episodes = maml.Episode(images[:, :ways], labels[:, :ways], images[:, ways:], labels[:, ways:])
    cfg = maml.MamlConfig(loss="cross_entropy", **{"inner_lr": 0.5, **config})
    return net, maml.make_learner(net, cfg), _init(net, images[0, :ways], cfg, dtype), episodes


def _init(net, inputs, cfg, dtype):
    init = jax.jit(lambda x: maml.init_meta_params(net, jax.random.key(2), x, config=cfg))
    return jax.tree.map(lambda p: p.astype(dtype), init(inputs))


def _maml_grad(learner, w, episodes, *, k):
    meta_opt = maml.make_meta_optimizer(
        learner, method="maml", num_inner_steps=k, meta_optimizer=optax.sgd(1.0)
    )
    state = maml.initial_state(w, episodes)
    return jax.grad(meta_opt.loss, has_aux=True)(w, state, ())[0]


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


def test_learner_shapes_and_prepare_broadcasts_the_initialisation():
    net, learner, w, episodes = _classification()
    state = learner.prepare(maml.initial_state(w, episodes), w)
    for p, p0 in zip(jax.tree.leaves(state.params), jax.tree.leaves(w.init), strict=True):
        assert p.shape == (NUM_TASKS, *p0.shape)
        np.testing.assert_array_equal(p, np.broadcast_to(p0, p.shape))
    state, aux = jax.eval_shape(learner.inner_step, state, w)
    assert aux.support_loss.shape == ()
    _, batch = learner.sample(state)
    params = learner.get_params(state)
    assert jax.eval_shape(learner.predict, params, batch).shape == (NUM_TASKS, 3, 3)
    assert jax.eval_shape(learner.outer_loss, params, batch).shape == ()


def test_inner_step_is_one_sgd_step_per_task():
    net, learner, w, episodes = _regression()
    state = learner.prepare(maml.initial_state(w, episodes), w)
    new_state, _ = jax.jit(learner.inner_step)(state, w)
    grad = jax.jit(jax.grad(functools.partial(maml.task_loss, net, loss="mse")))
    for i in range(NUM_TASKS):
        grads = grad(w.init, episodes.support_x[i], episodes.support_y[i])
        expected = jax.tree.map(lambda p, g: p - 0.3 * g, w.init, grads)
        got = [np.asarray(p)[i] for p in jax.tree.leaves(new_state.params)]
        np.testing.assert_allclose(_flat(got), _flat(expected), rtol=1e-5, atol=1e-6)


def test_first_order_gradient_differs_from_second_order():
    _, learner, w, episodes = _classification()
    _, learner_fo, _, _ = _classification(first_order=True)

    @jax.jit
    def gradients(w, episodes):
        second = _maml_grad(learner, w, episodes, k=2)
        first = _maml_grad(learner_fo, w, episodes, k=2)
        # First order: d x^(K) / d w is the identity, so the meta-gradient is the sum over
        # tasks of the query gradients at the adapted parameters.
        x0 = learner_fo.prepare(maml.initial_state(w, episodes), w)
        x_k, _ = bmg.unroll(learner_fo.inner_step, x0, w, num_steps=2)
        _, query = learner_fo.sample(x_k)
        per_task = jax.grad(learner_fo.outer_loss)(x_k.params, query)
        return second, first, jax.tree.map(lambda g: g.sum(axis=0), per_task)

    second, first, expected = gradients(w, episodes)
    second, first, expected = _flat(second), _flat(first), _flat(expected)
    assert np.abs(second).max() > 1e-4
    assert np.linalg.norm(first - second) > 1e-3 * np.linalg.norm(second)
    np.testing.assert_allclose(first[: expected.size], expected, rtol=1e-4, atol=1e-6)
    # The inner rates come after the initialisation and are not learned: zero gradient.
    np.testing.assert_array_equal(first[expected.size :], 0.0)


def test_maml_meta_gradient_matches_central_finite_differences():
    with jax.enable_x64(True):
        _, learner, w, episodes = _regression(jnp.float64, learn_inner_lr=True)
        grad_fn = jax.jit(functools.partial(_maml_grad, learner, k=3))
        analytic = grad_fn(w, episodes)
        meta_opt = maml.make_meta_optimizer(
            learner, method="maml", num_inner_steps=3, meta_optimizer=optax.sgd(1.0)
        )
        loss = jax.jit(lambda w: meta_opt.loss(w, maml.initial_state(w, episodes), ())[0])
        assert np.abs(_flat(analytic.inner_lr)).max() > 1e-4  # Meta-SGD rates are learned
        directions = jax.random.split(jax.random.key(3), 3)
        leaves, treedef = jax.tree.flatten(w)
        eps = 1e-6
        for key in directions:
            keys = jax.random.split(key, len(leaves))
            v = jax.tree.unflatten(
                treedef,
                [
                    jax.random.normal(k, x.shape, jnp.float64)
                    for k, x in zip(keys, leaves, strict=True)
                ],
            )
            shift = lambda s, v=v: jax.tree.map(lambda a, b: a + s * b, w, v)
            numeric = (loss(shift(eps)) - loss(shift(-eps))) / (2 * eps)
            np.testing.assert_allclose(
                np.dot(_flat(analytic), _flat(v)), numeric, rtol=1e-6, atol=1e-9
            )


@pytest.mark.parametrize(("make", "k"), [(_regression, 3), (_classification, 1)])
def test_reduction_bmg_l1_l2_sgd_target_is_alpha_times_maml(make, k):
    alpha = 0.23
    with jax.enable_x64(True):
        _, learner, w, episodes = make(jnp.float64)
        state = maml.initial_state(w, episodes)
        meta_bmg = maml.make_meta_optimizer(
            learner, method="bmg", num_inner_steps=k, bootstrap_steps=1, matching="l2",
            target_lr=alpha, meta_optimizer=optax.sgd(1.0),
        )  # fmt: skip
        target_state = meta_bmg.init(w, state).target_opt_state
        g_bmg = jax.jit(jax.grad(meta_bmg.loss, has_aux=True))(w, state, target_state)[0]
        g_maml = jax.jit(functools.partial(_maml_grad, learner, k=k))(w, episodes)
        assert np.abs(_flat(g_maml)).max() > 1e-3  # not vacuous
        np.testing.assert_allclose(_flat(g_bmg), alpha * _flat(g_maml), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize(("make", "matching"), [(_regression, "mse"), (_classification, "kl")])
def test_bmg_prediction_matching_moves_the_initialisation(make, matching):
    _, learner, w, episodes = make()
    meta_opt = maml.make_meta_optimizer(
        learner, method="bmg", num_inner_steps=1, bootstrap_steps=3, matching=matching,
        target_lr=0.5, meta_optimizer=optax.adam(1e-3),
    )  # fmt: skip
    state = maml.initial_state(w, episodes)
    out = jax.jit(meta_opt.update)(state, meta_opt.init(w, state), w)
    assert np.isfinite(float(out.meta_loss)) and float(out.meta_loss) > 0
    assert np.abs(_flat(out.meta_updates.init)).max() > 0
    np.testing.assert_array_equal(_flat(out.meta_updates.inner_lr), 0.0)  # not learned


@pytest.mark.parametrize("target_optimizer", ["rmsprop", "adam"])
def test_stateful_target_optimizers_keep_a_state_per_task(target_optimizer):
    """The target state has the meta-batch's task axis and is carried across meta-steps;
    Adam's first target step moves every parameter by its rate (a sign step)."""
    _, learner, w, episodes = _regression()
    lr = 0.05
    meta_opt = maml.make_meta_optimizer(
        learner, method="bmg", num_inner_steps=1, bootstrap_steps=2, matching="l2",
        target_lr=lr, target_optimizer=target_optimizer, meta_optimizer=optax.adam(1e-3),
    )  # fmt: skip
    state = maml.initial_state(w, episodes)
    meta_state = meta_opt.init(w, state)
    for leaf, param in zip(
        jax.tree.leaves(meta_state.target_opt_state)[-len(jax.tree.leaves(w.init)) :],
        jax.tree.leaves(w.init),
        strict=True,
    ):
        assert leaf.shape == (NUM_TASKS, *param.shape)
    update = jax.jit(meta_opt.update)
    out = update(state, meta_state, w)
    again = update(maml.initial_state(w, episodes), out.meta_opt_state, w)
    assert np.isfinite(float(out.meta_loss)) and np.isfinite(float(again.meta_loss))
    assert jax.tree.structure(again.meta_opt_state) == jax.tree.structure(meta_state)
    if target_optimizer == "adam":
        count = jax.tree.leaves(again.meta_opt_state.target_opt_state)[0]
        assert int(count) == 2  # the state is carried, not rebuilt
        x_1 = learner.inner_step(learner.prepare(state, w), w)[0]
        z = learner.inner_step(x_1, w)[0]  # L - 1 = 1 step past x^(1)
        target = bmg.bootstrap_target(
            learner, x_1, w, meta_state.target_opt_state, bootstrap_steps=2,
            target_optimizer=optax.adam(lr),
        )  # fmt: skip
        step = np.abs(_flat(target.params) - _flat(z.params))
        moved = step > 1e-4  # parameters with a zero gradient move by rounding only
        assert moved.mean() > 0.5
        np.testing.assert_allclose(step[moved], lr, rtol=1e-3)


def test_adapt_and_evaluate_scores_the_adapted_model():
    net, learner, w, episodes = _classification()

    @jax.jit
    def scores(w, episodes):
        evaluate = functools.partial(
            maml.adapt_and_evaluate, net, learner, w, episodes, loss="cross_entropy"
        )
        direct = jax.vmap(functools.partial(maml.task_loss, net, w.init, loss="cross_entropy"))
        return evaluate(num_steps=0), evaluate(num_steps=5), direct(*episodes[2:])

    initial, adapted, expected = scores(w, episodes)
    assert initial.loss.shape == initial.accuracy.shape == (NUM_TASKS,)
    np.testing.assert_allclose(initial.loss, expected, rtol=1e-5)
    assert np.all((initial.accuracy >= 0) & (initial.accuracy <= 1))
    assert np.abs(adapted.loss - initial.loss).min() > 1e-4  # adaptation changed the model
    _, reg_learner, reg_w, reg_episodes = _regression()
    reg = jax.jit(
        functools.partial(
            maml.adapt_and_evaluate, networks.mlp_regressor(hidden_sizes=(6,)), reg_learner,
            num_steps=1, loss="mse",
        )
    )(reg_w, reg_episodes)  # fmt: skip
    assert np.all(np.isnan(reg.accuracy)) and np.all(reg.loss > 0)


def test_invalid_settings_raise():
    _, learner, _, _ = _regression()
    with pytest.raises(ValueError, match="method"):
        maml.make_meta_optimizer(
            learner, method="reptile", num_inner_steps=1, meta_optimizer=optax.sgd(1.0)
        )
    with pytest.raises(ValueError, match="matching"):
        maml.make_meta_optimizer(
            learner, method="bmg", num_inner_steps=1, matching="cosine",
            meta_optimizer=optax.sgd(1.0),
        )  # fmt: skip
    with pytest.raises(ValueError, match="loss"):
        maml.MamlConfig(loss="hinge")
    with pytest.raises(ValueError, match="inner_lr"):
        maml.MamlConfig(inner_lr=0.0)
