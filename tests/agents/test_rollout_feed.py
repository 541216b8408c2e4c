"""The STACX learner fed rollouts from outside its program (host-side actors, the real ALE).

The fed learner is the same `bmg.Learner` as the in-graph one; only where an inner step gets
its next rollout differs. So, fed the rollouts the in-graph learner collected, it gives the
same meta-gradient and the same next state (to float32 rounding: the two programs are
compiled differently); it hands out every fed rollout once and in order, bit for bit; and the
(SGD α, L2, L = 1) reduction to STACX holds on it.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import bmg
from agents import rollout_feed, stacx
from tests.agents.test_stacx import ENV, NETS, _assert_trees_equal, _config, _initial

K = 2


def _stack(rollouts):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *rollouts)


def _in_graph_rollouts(learner, state, w, steps):
    """The rollouts the in-graph learner collects in its next ``steps`` inner steps."""
    rollouts = []
    for _ in range(steps):
        state, _ = learner.inner_step(state, w)
        rollouts.append(state.rollout)
    return rollouts


def _setup():
    config = _config()
    in_graph = stacx.make_learner(NETS, ENV, config)
    fed = stacx.make_learner(NETS, None, config)
    state = _initial(seed=5)
    w = stacx.initial_meta_params(config, NETS.num_heads)
    return config, in_graph, fed, state, w


def _assert_trees_close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-8), a, b)


def test_fed_rollouts_give_the_in_graph_meta_gradient():
    config, in_graph, fed, state, w = _setup()
    rollouts = _in_graph_rollouts(in_graph, state, w, K)
    fed_state = stacx.initial_state_from_rollout(state.params, state.rollout, config)
    fed_state = rollout_feed.feed(fed_state, _stack(rollouts))

    def meta_gradient(learner, s):
        mg = bmg.meta_gradient(learner, num_inner_steps=K, meta_optimizer=optax.sgd(1.0))
        return jax.grad(mg.loss, has_aux=True)(w, s, ())

    (g_graph, aux_graph), (g_fed, aux_fed) = (
        jax.jit(meta_gradient, static_argnums=0)(learner, s)
        for learner, s in ((in_graph, state), (fed, fed_state))
    )
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(g_graph)) > 0
    _assert_trees_close(g_fed, g_graph)
    _assert_trees_close(aux_fed.learner_state.params, aux_graph.learner_state.params)
    # The fed learner ends holding the last fed rollout; the in-graph one collected the same
    # actions and rewards inside its program (its stored logits differ by rounding only).
    _assert_trees_equal(aux_fed.learner_state.rollout, rollouts[-1])
    _assert_trees_close(aux_fed.learner_state.rollout, aux_graph.learner_state.rollout)
    # Both count the K rollouts the meta-step learned from (the fed state starts at 0).
    graph_steps = int(aux_graph.learner_state.env_steps) - int(state.env_steps)
    assert int(aux_fed.learner_state.env_steps) == graph_steps
    assert graph_steps == K * config.num_envs * config.rollout_length


def test_each_fed_rollout_is_taken_once_in_order():
    config, in_graph, fed, state, w = _setup()
    rollouts = _in_graph_rollouts(in_graph, state, w, 3)
    fed_state = stacx.initial_state_from_rollout(state.params, state.rollout, config)
    fed_state = rollout_feed.feed(fed_state, _stack(rollouts))
    step = jax.jit(fed.inner_step)
    for i, expected in enumerate(rollouts):
        fed_state, _ = step(fed_state, w)
        assert int(fed_state.env_state.cursor) == i + 1
        _assert_trees_equal(fed_state.rollout, expected)
    steps = config.num_envs * config.rollout_length
    assert int(fed_state.env_steps) == 3 * steps
    # sample and the outer loss read the held rollout and take none.
    sampled_state, batch = fed.sample(fed_state)
    assert int(sampled_state.env_state.cursor) == 3
    _assert_trees_equal(batch, rollouts[-1])


def test_bmg_l1_sgd_l2_on_fed_rollouts_is_alpha_times_stacx():
    config, in_graph, fed, state, w = _setup()
    alpha = 0.3
    rollouts = _in_graph_rollouts(in_graph, state, w, 1)
    fed_state = stacx.initial_state_from_rollout(state.params, state.rollout, config)
    fed_state = rollout_feed.feed(fed_state, _stack(rollouts))
    mg = bmg.meta_gradient(fed, num_inner_steps=1, meta_optimizer=optax.sgd(1.0))
    matching, match_on = stacx.matching("l2")
    bootstrapped = bmg.bootstrapped_meta_gradient(
        fed,
        num_inner_steps=1,
        bootstrap_steps=1,
        target_optimizer=optax.sgd(alpha),
        meta_optimizer=optax.sgd(1.0),
        matching=matching,
        match_on=match_on,
    )

    @jax.jit
    def both(s):
        target_state = bootstrapped.init(w, s).target_opt_state
        return (
            jax.grad(mg.loss, has_aux=True)(w, s, ())[0],
            jax.grad(bootstrapped.loss, has_aux=True)(w, s, target_state)[0],
        )

    g_mg, g_bmg = both(fed_state)
    for name in ("discount", "lambda_", "policy_cost", "value_cost", "entropy_cost"):
        mg_leaf, bmg_leaf = np.asarray(getattr(g_mg, name)), np.asarray(getattr(g_bmg, name))
        assert np.abs(mg_leaf).max() > 0, name
        np.testing.assert_allclose(bmg_leaf, alpha * mg_leaf, rtol=2e-3, atol=1e-9, err_msg=name)
