"""The ε-greedy Q-learner: its policies and loss by hand, its rollouts, and BMG with K = 0 on it.

The meta-gradient checks run the real learner (`agents.q_learning` on two-colors, small
networks) with ε from `sigmoid_meta_net`, in float64: the K = 0 meta-loss is smooth in w (the
learner's side is π_ε on fixed states; only the target, built from stopped copies, depends on
sampled data), so central differences and the direction of a small SGD meta-step are exact
checks, and a flipped meta-update fails them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from agents import q_learning
from agents.networks import Network, q_mlp, sigmoid_meta_net
from experiments.envs import two_colors
from tests.agents.test_actor_critic_direction import ENV_PARAMS, _env_reset, _env_step, _float64
from tests.bmg.test_direction import assert_first_order_decrease, frozen_target_loss

L = 4


def test_epsilon_greedy_and_greedy_policies_hand_values():
    q = jnp.array([[1.0, 3.0, 2.0], [0.5, -1.0, 0.0]])
    probs = jnp.exp(q_learning.epsilon_greedy_log_probs(q, jnp.float32(0.3)))
    np.testing.assert_allclose(probs, [[0.1, 0.8, 0.1], [0.8, 0.1, 0.1]], rtol=1e-6)
    greedy = q_learning.greedy_logits(q)
    np.testing.assert_array_equal(greedy, [[-np.inf, 0.0, -np.inf], [0.0, -np.inf, -np.inf]])
    # KL(greedy ‖ ε-greedy) is -log π_ε(argmax): the matching BMG minimises.
    kl = bmg.matching.kl(greedy, jnp.log(probs))
    np.testing.assert_allclose(kl, -np.log(0.8), rtol=1e-6)


def _linear_q():
    return Network(init=lambda key, obs: jnp.zeros((obs.shape[-1], 2)), apply=lambda p, o: o @ p)


def test_q_lambda_loss_hand_values_and_its_two_ends():
    net, gamma = _linear_q(), 0.9
    w = jnp.array([[0.5, -0.5], [0.0, 1.0]])
    rollout = q_learning.Rollout(
        obs_t=jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        a_t=jnp.array([0, 1]),
        r_t=jnp.array([1.0, -0.5]),
        context=jnp.zeros(3),
    )
    q = np.asarray(rollout.obs_t @ w)  # [[0.5, -0.5], [0, 1], [0.5, 0.5]]
    v = q.max(-1)
    q_taken = np.array([q[0, 0], q[1, 1]])
    one_step = np.array([1.0 + gamma * v[1], -0.5 + gamma * v[2]])
    n_step = np.array([1.0 + gamma * (-0.5 + gamma * v[2]), -0.5 + gamma * v[2]])
    for lam, target in ((0.0, one_step), (1.0, n_step)):
        loss = q_learning.q_lambda_loss(net, w, rollout, discount=gamma, td_lambda=lam)
        np.testing.assert_allclose(loss, 0.5 * np.mean((target - q_taken) ** 2), rtol=1e-6)
    # Targets are data: the gradient reaches Q(s_t, a_t) only.
    grads = jax.grad(
        lambda p: q_learning.q_lambda_loss(net, p, rollout, discount=gamma, td_lambda=0.0)
    )(w)
    expected = np.zeros((2, 2))
    for t in range(2):
        expected[:, int(rollout.a_t[t])] += (
            -(one_step[t] - q_taken[t]) * np.asarray(rollout.obs_t[t]) / 2
        )
    np.testing.assert_allclose(grads, expected, rtol=1e-5)


@functools.cache
def _setup():
    """A small two-colors Q-learner with ε from a meta-network, and float64 states of two
    seeds 20 inner steps into training, with their meta-parameters."""
    q_net = q_mlp(num_actions=two_colors.num_actions(ENV_PARAMS), hidden_sizes=(32,))
    meta_net = sigmoid_meta_net(hidden_size=8, initial_value=0.3)
    config = q_learning.QLearningConfig(rollout_length=16, reward_history=4)

    def epsilon(meta_params, history, updates):
        return meta_net.apply(meta_params, history)

    learner = q_learning.make_learner(q_net, _env_step, epsilon, config)
    inner_step = jax.jit(learner.inner_step)
    starts = []
    with jax.enable_x64(True):
        for seed in range(2):
            agent_key, meta_key = jax.random.split(jax.random.PRNGKey(seed))
            state = _float64(q_learning.initial_state(q_net, _env_reset, agent_key, config))
            meta_params = _float64(meta_net.init(meta_key, state.reward_history))
            for _ in range(20):
                state, _ = inner_step(state, meta_params)
            starts.append((state, meta_params))
    return learner, starts


def test_collect_acts_greedily_at_epsilon_zero_and_is_data():
    learner, starts = _setup()
    state = starts[0][0]
    q_net = q_mlp(num_actions=4, hidden_sizes=(32,))
    with jax.enable_x64(True):
        greedy_state, rollout = q_learning.collect(
            q_net, state._replace(epsilon=jnp.zeros(())), _env_step, length=16
        )
        q = q_net.apply(state.params, rollout.obs_t[:-1])
        np.testing.assert_array_equal(rollout.a_t, jnp.argmax(q, axis=-1))
        np.testing.assert_array_equal(rollout.context, state.reward_history)
        assert int(greedy_state.env_steps) == int(state.env_steps) + 16
        _, random_rollout = q_learning.collect(
            q_net, state._replace(epsilon=jnp.ones(())), _env_step, length=64
        )
        q = q_net.apply(state.params, random_rollout.obs_t[:-1])
        assert np.mean(np.asarray(random_rollout.a_t) != np.asarray(jnp.argmax(q, -1))) > 0.4


def _settings():
    return dict(
        num_inner_steps=0,
        bootstrap_steps=L,
        target_optimizer=optax.sgd(0.1),
        matching=bmg.matching.kl,
        match_on="predictions",
    )


def test_zero_inner_steps_meta_gradient_on_the_q_learner_matches_finite_differences():
    learner, starts = _setup()
    loss = functools.partial(bmg.bootstrapped_meta_loss, learner=learner, **_settings())
    with jax.enable_x64(True):
        for state, w in starts[:1]:
            tstate = optax.sgd(0.1).init(state.params)
            grads, aux = jax.jit(jax.grad(loss, has_aux=True))(w, state, tstate)
            assert aux.inner_aux is None
            frozen = jax.jit(frozen_target_loss(learner, state, w, tstate, **_settings()))
            flat, unravel = jax.flatten_util.ravel_pytree(w)
            direction = jax.flatten_util.ravel_pytree(grads)[0]
            direction = direction / jnp.linalg.norm(direction)
            eps = 1e-5
            numeric = (
                frozen(unravel(flat + eps * direction)) - frozen(unravel(flat - eps * direction))
            ) / (2 * eps)
            analytic = jnp.dot(jax.flatten_util.ravel_pytree(grads)[0], direction)
            assert analytic > 1e-6
            np.testing.assert_allclose(numeric, analytic, rtol=1e-5)


@pytest.mark.parametrize("seed", range(2))
def test_sgd_meta_step_on_epsilon_lowers_the_frozen_target_kl(seed):
    learner, starts = _setup()
    state, w = starts[seed]
    step_size = 1.0
    meta_opt = bmg.bootstrapped_meta_gradient(
        learner, meta_optimizer=optax.sgd(step_size), **_settings()
    )
    with jax.enable_x64(True):
        meta_state = meta_opt.init(w, state)
        out = jax.jit(meta_opt.update)(state, meta_state, w)
        frozen = frozen_target_loss(learner, state, w, meta_state.target_opt_state, **_settings())
        grads = jax.grad(frozen)(w)
        new_w = optax.apply_updates(w, out.meta_updates)
        np.testing.assert_allclose(out.meta_loss, frozen(w), rtol=1e-10)
        assert_first_order_decrease(frozen(w), frozen(new_w), grads, step_size, noise=1e-12)
