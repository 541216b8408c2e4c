"""Direction on the real learner: a small SGD meta-step on ε's meta-network lowers the meta-loss.

The two-colors actor-critic (`agents.actor_critic` on `experiments.envs.two_colors`, small
networks) with the entropy weight ε from `sigmoid_meta_net`. One MG or BMG (KL matching) update
with SGD, applied to the meta-network's parameters, must lower the MG meta-loss, and the BMG
KL to the target built from the old meta-parameters, at the same learner state (so the same
PRNG keys and environment state). The rollouts sample actions by Gumbel-argmax, so the losses
are smooth in w only while no action changes: the step is small (‖Δw‖ between about 1e-5 and
1e-3 on these seeds; the decrease matches lr·‖∇‖² to 0.1%, so no action changed) and everything
runs in float64, where that first-order decrease (1e-10 to 1e-7) is far above rounding noise. A
flipped meta-update raises the loss by as much, so these tests fail with the sign flipped. The
MG meta-loss has the two-colors experiment's entropy bonus (``outer_entropy_cost``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from agents import actor_critic
from agents.networks import actor_critic_mlp, sigmoid_meta_net
from experiments.envs import two_colors
from tests.bmg.test_direction import (
    assert_first_order_decrease,
    frozen_target_loss,
    tree_dot,
)

SEEDS = 4
K, L = 3, 2
TARGET_LR = 0.5
META_LR = {"mg": 1.0, "bmg": 30.0}
"""SGD rates giving steps of ‖Δw‖ ≲ 1e-3 (BMG's KL meta-gradient is smaller than MG's)."""

ENV_PARAMS = two_colors.EnvParams()


def _float64(tree):
    return jax.tree.map(
        lambda x: x.astype(jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def _env_reset(key):
    obs, env_state = two_colors.reset(key, ENV_PARAMS)
    return obs.astype(jnp.float64), env_state


def _env_step(key, env_state, action):
    obs, env_state, reward, _, _ = two_colors.step(key, env_state, action, ENV_PARAMS)
    return obs.astype(jnp.float64), env_state, reward.astype(jnp.float64)


@functools.cache
def _setup():
    """A small two-colors actor-critic learner and learner states of a few seeds, with their w.

    Each seed's state is 5 inner steps into training (so the meta-network's input, the reward
    history, is not all zeros); states and meta-parameters are float64.
    """
    nets = actor_critic_mlp(num_actions=two_colors.num_actions(ENV_PARAMS), hidden_sizes=(32,))
    meta_net = sigmoid_meta_net(hidden_size=8, initial_value=0.05)
    config = actor_critic.ActorCriticConfig(
        rollout_length=16, reward_history=4, outer_entropy_cost=0.01
    )
    learner = actor_critic.make_learner(
        nets=nets, env_step=_env_step, entropy_weight=meta_net.apply, config=config
    )
    inner_step = jax.jit(learner.inner_step)
    starts = []
    with jax.enable_x64(True):
        for seed in range(SEEDS):
            agent_key, meta_key = jax.random.split(jax.random.PRNGKey(seed))
            state = actor_critic.initial_state(
                nets=nets, env_reset=_env_reset, key=agent_key, config=config
            )
            state = _float64(state)
            meta_params = _float64(meta_net.init(meta_key, state.reward_history))
            for _ in range(5):
                state, _ = inner_step(state, meta_params)
            starts.append((state, meta_params))
    return learner, starts


def _meta_step(method):
    """Per seed: the meta-loss (frozen-target KL for BMG) before and after one SGD meta-step."""
    learner, starts = _setup()
    sgd = optax.sgd(META_LR[method])
    if method == "mg":
        meta_opt = bmg.meta_gradient(learner, num_inner_steps=K, meta_optimizer=sgd)
    else:
        matching, match_on = actor_critic.matching("kl")
        settings = dict(
            num_inner_steps=K,
            bootstrap_steps=L,
            target_optimizer=optax.sgd(TARGET_LR),
            matching=matching,
            match_on=match_on,
        )
        meta_opt = bmg.bootstrapped_meta_gradient(learner, meta_optimizer=sgd, **settings)

    @jax.jit
    def run(state, w):
        meta_state = meta_opt.init(w, state)
        out = meta_opt.update(state, meta_state, w)
        new_w = optax.apply_updates(w, out.meta_updates)
        if method == "mg":
            loss = lambda w: meta_opt.loss(w, state, meta_state.target_opt_state)[0]
        else:
            loss = frozen_target_loss(learner, state, w, meta_state.target_opt_state, **settings)
        grads = jax.grad(meta_opt.loss, has_aux=True)(w, state, meta_state.target_opt_state)[0]
        return dict(
            reported=out.meta_loss,
            before=loss(w),
            after=loss(new_w),
            grads=grads,
            step_norm=optax.tree.norm(out.meta_updates),
        )

    with jax.enable_x64(True):
        return [jax.tree.map(np.asarray, run(state, w)) for state, w in starts]


@pytest.mark.parametrize("method", ["mg", "bmg"])
def test_sgd_meta_step_on_the_entropy_meta_network_lowers_the_meta_loss(method):
    """On every seed one small SGD meta-step lowers the MG meta-loss / frozen-target BMG KL.

    The loss at the old w is the meta-loss the update reported; the decrease is far above
    float64 noise and within 10% of lr·‖∇‖² (∇ from ``jax.grad(meta_opt.loss)``): the loss is
    linear over the step, so no sampled action changed.
    """
    for r in _meta_step(method):
        np.testing.assert_allclose(r["reported"], r["before"], rtol=1e-10)
        assert r["step_norm"] < 1e-2  # small enough that no sampled action changes
        assert_first_order_decrease(
            r["before"], r["after"], r["grads"], META_LR[method], noise=1e-12
        )
        predicted = META_LR[method] * tree_dot(r["grads"], r["grads"])
        np.testing.assert_allclose(r["before"] - r["after"], predicted, rtol=0.1)
