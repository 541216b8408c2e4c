"""The actor-critic's losses, rollouts and matching functions, with hand-computed numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bmg
from agents import actor_critic
from agents.networks import ActorCriticNets


def _linear_nets():
    """Policy logits = obs @ W, value = obs @ v: small enough to check by hand."""
    return ActorCriticNets(
        init=lambda key, obs: {"w": jnp.zeros((obs.shape[-1], 2)), "v": jnp.zeros(obs.shape[-1])},
        policy=lambda p, obs: obs @ p["w"],
        value=lambda p, obs: obs @ p["v"],
        num_actions=2,
    )


def _rollout():
    obs_t = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # T+1 = 3
    return actor_critic.Rollout(obs_t=obs_t, a_t=jnp.array([0, 1]), r_t=jnp.array([1.0, -0.5]))


PARAMS = {"w": jnp.array([[0.5, -0.5], [0.0, 1.0]]), "v": jnp.array([0.2, 0.4])}


def test_losses_hand_values():
    nets, rollout, gamma = _linear_nets(), _rollout(), 0.9
    pg, value_loss, entropy = actor_critic.losses(nets, PARAMS, rollout, discount=gamma)
    v = np.array([0.2, 0.4, 0.6])
    g1 = -0.5 + gamma * v[2]  # bootstrapped 1-step return at t=1
    g0 = 1.0 + gamma * g1
    adv = np.array([g0 - v[0], g1 - v[1]])
    logits = np.array([[0.5, -0.5], [0.0, 1.0]])
    log_pi = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        pg, -np.mean([log_pi[0, 0] * adv[0], log_pi[1, 1] * adv[1]]), rtol=1e-6
    )
    np.testing.assert_allclose(value_loss, 0.5 * np.mean(adv**2), rtol=1e-6)
    np.testing.assert_allclose(entropy, np.mean(-(np.exp(log_pi) * log_pi).sum(-1)), rtol=1e-6)


def test_policy_gradient_does_not_reach_the_value_and_value_loss_not_the_policy():
    nets, rollout = _linear_nets(), _rollout()
    pg_grads = jax.grad(lambda p: actor_critic.losses(nets, p, rollout, discount=0.9)[0])(PARAMS)
    v_grads = jax.grad(lambda p: actor_critic.losses(nets, p, rollout, discount=0.9)[1])(PARAMS)
    np.testing.assert_array_equal(pg_grads["v"], 0.0)  # advantages are data
    np.testing.assert_array_equal(v_grads["w"], 0.0)
    assert np.abs(pg_grads["w"]).max() > 0 and np.abs(v_grads["v"]).max() > 0
    # The bootstrap value v(s_T) is a target too: only v(s_0), v(s_1) receive gradient.
    expected = (
        np.array([[1.0, 0.0], [0.0, 1.0]]).T
        @ -(np.array([1.0 + 0.9 * (-0.5 + 0.9 * 0.6), -0.5 + 0.9 * 0.6]) - np.array([0.2, 0.4]))
        / 2
    )
    np.testing.assert_allclose(v_grads["v"], expected, rtol=1e-5)


def _env_step(key, env_state, action):
    """A counter environment: reward = action, obs = one-hot of the step count mod 2."""
    del key
    env_state = env_state + 1
    return jax.nn.one_hot(env_state % 2, 2), env_state, action.astype(jnp.float32)


def test_collect_updates_history_counters_and_is_data():
    nets = _linear_nets()
    config = actor_critic.ActorCriticConfig(rollout_length=4, reward_history=3)
    state = actor_critic.initial_state(
        nets, lambda key: (jnp.array([1.0, 0.0]), jnp.int32(0)), jax.random.PRNGKey(0), config
    )
    state = state._replace(params=PARAMS)
    new, rollout = actor_critic.collect(nets, state, _env_step, length=4)
    shapes = (rollout.obs_t.shape, rollout.a_t.shape, rollout.r_t.shape)
    assert shapes == ((5, 2), (4,), (4,))
    np.testing.assert_allclose(new.reward_history, [0.0, 0.0, float(jnp.mean(rollout.r_t))])
    assert int(new.env_steps) == 4 and int(new.env_state) == 4
    np.testing.assert_allclose(new.reward_sum, jnp.sum(rollout.r_t))
    np.testing.assert_array_equal(rollout.obs_t[1:, 0], [0.0, 1.0, 0.0, 1.0])
    # Rollouts carry no gradient to the parameters they were collected with.
    grads = jax.grad(
        lambda p: jnp.sum(
            actor_critic.collect(nets, state._replace(params=p), _env_step, length=4)[1].obs_t
        )
    )(PARAMS)
    assert all(np.all(leaf == 0) for leaf in jax.tree.leaves(grads))


def test_inner_step_uses_the_meta_learned_entropy_weight():
    nets = _linear_nets()
    config = actor_critic.ActorCriticConfig(rollout_length=4, learning_rate=0.5)
    learner = actor_critic.make_learner(nets, _env_step, lambda w, history: w, config)
    state = actor_critic.initial_state(
        nets, lambda key: (jnp.array([1.0, 0.0]), jnp.int32(0)), jax.random.PRNGKey(1), config
    )
    state = state._replace(params=PARAMS)
    more, aux = learner.inner_step(state, jnp.float32(0.3))
    less, _ = learner.inner_step(state, jnp.float32(0.0))
    assert float(aux.entropy_weight) == pytest.approx(0.3)
    # More entropy regularisation moves the policy towards uniform: higher entropy.
    obs = jnp.eye(2)

    def entropy(params):
        log_pi = jax.nn.log_softmax(nets.policy(params, obs))
        return -jnp.sum(jnp.exp(log_pi) * log_pi)

    assert entropy(more.params) > entropy(less.params)
    # So the meta-gradient of the next policy's entropy with respect to ε is positive.
    d_entropy = jax.grad(lambda w: entropy(learner.inner_step(state, w)[0].params))(0.1)
    assert float(d_entropy) > 0


@pytest.mark.parametrize(
    ("name", "match_on"), [("kl", "predictions"), ("kl_v", "predictions"), ("l2", "parameters")]
)
def test_matching_by_name(name, match_on):
    fn, space = actor_critic.matching(name, value_weight=2.0)
    assert space == match_on
    a = bmg.matching.PolicyAndValue(jnp.array([[0.0, 1.0]]), jnp.array([1.0]))
    b = bmg.matching.PolicyAndValue(jnp.array([[1.0, 0.0]]), jnp.array([0.0]))
    kl = bmg.matching.kl(a.logits, b.logits)
    expected = {"kl": kl, "kl_v": kl + 2.0 * 0.5, "l2": 0.5 * (2.0 + 1.0)}[name]
    np.testing.assert_allclose(
        fn(a, b) if name != "l2" else fn(a._asdict(), b._asdict()), expected, rtol=1e-6
    )


def test_unknown_matching_raises():
    with pytest.raises(ValueError, match="matching must be"):
        actor_critic.matching("cosine")


def test_td0_losses_hand_values():
    nets, rollout, gamma = _linear_nets(), _rollout(), 0.9
    pg, value_loss, _ = actor_critic.losses(
        nets, PARAMS, rollout, discount=gamma, value_target="td0"
    )
    v = np.array([0.2, 0.4, 0.6])
    adv = np.array([1.0 + gamma * v[1] - v[0], -0.5 + gamma * v[2] - v[1]])
    logits = np.array([[0.5, -0.5], [0.0, 1.0]])
    log_pi = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        pg, -np.mean([log_pi[0, 0] * adv[0], log_pi[1, 1] * adv[1]]), rtol=1e-6
    )
    np.testing.assert_allclose(value_loss, 0.5 * np.mean(adv**2), rtol=1e-6)
    # Only v(s_0), v(s_1) are predictions; v(s_1), v(s_2) inside the targets get no gradient.
    grads = jax.grad(
        lambda p: actor_critic.losses(nets, p, rollout, discount=gamma, value_target="td0")[1]
    )(PARAMS)
    np.testing.assert_allclose(grads["v"], np.array([[1.0, 0.0], [0.0, 1.0]]).T @ -adv / 2)


def test_lambda_returns_hand_values_and_their_two_ends():
    nets, rollout, gamma = _linear_nets(), _rollout(), 0.9

    def value_loss(value_target, td_lambda=1.0):
        return actor_critic.losses(
            nets, PARAMS, rollout, discount=gamma, value_target=value_target, td_lambda=td_lambda
        )[1]

    # λ = 0 is one-step TD and λ = 1 the n-step return bootstrapped from the last state.
    np.testing.assert_allclose(value_loss("lambda", 0.0), value_loss("td0"), rtol=1e-6)
    np.testing.assert_allclose(value_loss("lambda", 1.0), value_loss("n_step"), rtol=1e-6)
    # By hand at λ = 0.5: G_1 = r_1 + γ v_2, G_0 = r_0 + γ ((1 − λ) v_1 + λ G_1).
    v, r, lam = np.array([0.2, 0.4, 0.6]), np.array([1.0, -0.5]), 0.5
    g1 = r[1] + gamma * v[2]
    g0 = r[0] + gamma * ((1 - lam) * v[1] + lam * g1)
    expected = 0.5 * np.mean((np.array([g0, g1]) - v[:2]) ** 2)
    np.testing.assert_allclose(value_loss("lambda", lam), expected, rtol=1e-6)
    assert not np.isclose(expected, float(value_loss("td0")))
    with pytest.raises(ValueError, match="td_lambda must be in"):
        actor_critic.ActorCriticConfig(value_target="lambda", td_lambda=1.5)


@pytest.mark.parametrize("name", ["kl", "kl_v"])
def test_summed_matching_is_the_number_of_states_times_the_mean(name):
    key1, key2 = jax.random.split(jax.random.PRNGKey(3))
    target = bmg.matching.PolicyAndValue(jax.random.normal(key1, (16, 4)), jnp.ones(16))
    pred = bmg.matching.PolicyAndValue(jax.random.normal(key2, (16, 4)), jnp.zeros(16))
    mean_fn, space = actor_critic.matching(name, reduction="mean")
    sum_fn, _ = actor_critic.matching(name, reduction="sum")
    assert space == "predictions"
    assert float(mean_fn(target, pred)) > 0
    np.testing.assert_allclose(sum_fn(target, pred), 16 * mean_fn(target, pred), rtol=1e-6)
    with pytest.raises(ValueError, match="reduction must be one of"):
        actor_critic.matching(name, reduction="median")


def test_clipped_inner_optimizer_bounds_the_step():
    config = actor_critic.ActorCriticConfig(learning_rate=0.1, max_grad_norm=1.0)
    optimizer = actor_critic.inner_optimizer(config)
    grads = {"w": jnp.full((3,), 10.0), "v": jnp.full((2,), -10.0)}
    updates, _ = optimizer.update(grads, optimizer.init(grads), grads)
    norm = np.sqrt(sum(float(jnp.sum(u**2)) for u in jax.tree.leaves(updates)))
    np.testing.assert_allclose(norm, 0.1, rtol=1e-6)  # lr x max_grad_norm
    small = jax.tree.map(lambda g: g / 1000, grads)  # below the threshold: plain SGD
    updates, _ = optimizer.update(small, optimizer.init(small), small)
    np.testing.assert_allclose(updates["w"], -0.1 * small["w"], rtol=1e-6)
    with pytest.raises(ValueError, match="max_grad_norm must be >= 0"):
        actor_critic.ActorCriticConfig(max_grad_norm=-1.0)
