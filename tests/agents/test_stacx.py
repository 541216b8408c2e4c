"""The STACX agent: V-trace losses by hand, its gradients, and the BMG-to-STACX reduction.

The learner tests run the real agent (`stacx.make_learner`) on a tiny JAX environment
written here. Compiling is most of the time of these tests, so the programs are compiled
once each, without XLA's backend optimisations (`_compile`).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import bmg
from agents import stacx
from agents.networks import minatar_multihead

FAST_XLA = {"xla_backend_optimization_level": 0}


def _compile(fn, *args):
    """``jax.jit(fn)`` compiled for the shapes of ``args``, quickly (the programs are tiny)."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_XLA)


def _assert_trees_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


# --------------------------------------------------------------------------------------
# 1-2. V-trace losses by hand (T = 2, B = 1, A = 2, float64) and their gradients.

V = np.array([0.5, -0.2, 0.3])  # v(s_0), v(s_1), v(s_2): T + 1 values
R = np.array([1.0, -1.0])
GAMMA, LAMBDA = 0.9, 0.8
LOGITS = np.array([[0.3, -0.4], [1.0, 0.5]])  # π's logits at s_0, s_1
ACTIONS = (1, 0)


def _rollout(behaviour_logits, actions=ACTIONS, done=(False, False)):
    return stacx.Rollout(
        obs_t=np.zeros((3, 1, 1)),
        a_t=np.array(actions, np.int32)[:, None],
        r_t=R[:, None],
        done_t=np.array(done)[:, None],
        logits_t=np.asarray(behaviour_logits, np.float64)[:, None],
    )


def _vtrace(pi_logits, v, rollout, discount, lambda_):
    """`stacx.vtrace_losses` on one stream: ``(pg_loss, value_loss, entropy)``."""
    return stacx.vtrace_losses(
        pi_logits[:, None], v[:, None], rollout, discount=discount, lambda_=lambda_
    )


def _vtrace_args(pi_logits, rollout, discount=GAMMA, lambda_=LAMBDA, v=V):
    # float64 scalars: a Python float discount times the float32 mask of ``done_t`` would
    # be float32 (weak typing), too coarse for the float64 hand values.
    return (
        np.asarray(pi_logits, np.float64),
        np.asarray(v, np.float64),
        rollout,
        np.float64(discount),
        np.float64(lambda_),
    )


@functools.cache
def _vtrace_programs():
    """The losses, their Jacobian w.r.t. (γ, λ) and w.r.t. (logits, values), in float64."""
    with jax.enable_x64(True):
        args = _vtrace_args(LOGITS, _rollout(LOGITS))
        return {
            "losses": _compile(_vtrace, *args),
            "by_hypers": _compile(jax.jacrev(_vtrace, argnums=(3, 4)), *args),
            "by_predictions": _compile(jax.jacrev(_vtrace, argnums=(0, 1)), *args),
        }


def _run(program, *args, **kwargs):
    with jax.enable_x64(True):
        return jax.device_get(_vtrace_programs()[program](*_vtrace_args(*args, **kwargs)))


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def _hand_vtrace(pi_logits, mu_logits, gammas, lam=LAMBDA, actions=ACTIONS, clip=1.0):
    """IMPALA's V-trace for T = 2 written out; ``gammas`` are the per-step discounts, ``clip``
    the ρ and policy-gradient ρ thresholds (rlax's defaults: 1).

    Returns ``(pg_loss, value_loss, entropy, rho, v_s)``.
    """
    log_pi, log_mu = _log_softmax(pi_logits), _log_softmax(mu_logits)
    rho = np.exp([log_pi[t, actions[t]] - log_mu[t, actions[t]] for t in range(2)])
    rho_bar = np.minimum(clip, rho)
    c = lam * np.minimum(1.0, rho)
    delta0 = rho_bar[0] * (R[0] + gammas[0] * V[1] - V[0])
    delta1 = rho_bar[1] * (R[1] + gammas[1] * V[2] - V[1])
    vs1 = V[1] + delta1
    vs0 = V[0] + delta0 + gammas[0] * c[0] * delta1
    q0 = R[0] + gammas[0] * (lam * vs1 + (1 - lam) * V[1])
    q1 = R[1] + gammas[1] * V[2]
    adv = rho_bar * np.array([q0 - V[0], q1 - V[1]])
    pg = -np.mean([log_pi[0, actions[0]] * adv[0], log_pi[1, actions[1]] * adv[1]])
    value_loss = 0.5 * np.mean([(vs0 - V[0]) ** 2, (vs1 - V[1]) ** 2])
    entropy = np.mean(-(np.exp(log_pi) * log_pi).sum(-1))
    return pg, value_loss, entropy, rho, np.array([vs0, vs1])


def test_vtrace_losses_on_policy_hand_values():
    out = _run("losses", LOGITS, _rollout(LOGITS))
    pg, value_loss, entropy, rho, _ = _hand_vtrace(LOGITS, LOGITS, [GAMMA, GAMMA])
    np.testing.assert_allclose(rho, 1.0)
    np.testing.assert_allclose(out, (pg, value_loss, entropy), rtol=1e-12)
    # On-policy V-trace is the λ-return: v_s0 = v0 + δ0 + γλ δ1, v_s1 = v1 + δ1.
    delta0, delta1 = R[0] + GAMMA * V[1] - V[0], R[1] + GAMMA * V[2] - V[1]
    expected = 0.5 * np.mean([(delta0 + GAMMA * LAMBDA * delta1) ** 2, delta1**2])
    np.testing.assert_allclose(out[1], expected, rtol=1e-12)


def test_vtrace_losses_clip_importance_weights_at_one():
    pi = np.array([[1.0, 0.0], [0.0, 0.0]])
    mu = np.array([[0.0, 0.0], [0.0, 1.0]])
    actions = (0, 1)
    out = _run("losses", pi, _rollout(mu, actions))
    pg, value_loss, entropy, rho, _ = _hand_vtrace(pi, mu, [GAMMA, GAMMA], actions=actions)
    assert rho[0] > 1.4 and rho[1] < 0.7  # one weight is clipped, the other is not
    np.testing.assert_allclose(out, (pg, value_loss, entropy), rtol=1e-12)
    # The clip shows in the numbers: unclipped weights would give other losses.
    unclipped = _hand_vtrace(pi, mu, [GAMMA, GAMMA], actions=actions, clip=np.inf)
    assert abs(unclipped[0] - pg) > 1e-3 and abs(unclipped[1] - value_loss) > 1e-3


@pytest.mark.parametrize("done", [(True, False), (False, True)])
def test_vtrace_losses_done_zeroes_the_discount(done):
    out = _run("losses", LOGITS, _rollout(LOGITS, done=done))
    gammas = [0.0 if d else GAMMA for d in done]
    np.testing.assert_allclose(out, _hand_vtrace(LOGITS, LOGITS, gammas)[:3], rtol=1e-12)
    not_done = _run("losses", LOGITS, _rollout(LOGITS))
    assert abs(out[1] - not_done[1]) > 1e-3
    if done[1]:  # the last transition ends the episode: v(s_T) is never used
        other = _run("losses", LOGITS, _rollout(LOGITS, done=done), v=V + [0, 0, 7])
        np.testing.assert_allclose(other, out, rtol=1e-12)


def test_meta_gradients_reach_discount_and_lambda_through_the_targets():
    (pg_gamma, pg_lambda), (d_gamma, d_lambda), _ = _run("by_hypers", LOGITS, _rollout(LOGITS))
    # value_loss = ¼ [(δ0 + γλ δ1)² + δ1²] with δ0 = r0 + γ v1 − v0, δ1 = r1 + γ v2 − v1.
    delta0, delta1 = R[0] + GAMMA * V[1] - V[0], R[1] + GAMMA * V[2] - V[1]
    e0 = delta0 + GAMMA * LAMBDA * delta1
    np.testing.assert_allclose(d_lambda, 0.5 * e0 * GAMMA * delta1, rtol=1e-12)
    expected_gamma = 0.5 * (e0 * (V[1] + LAMBDA * delta1 + GAMMA * LAMBDA * V[2]) + delta1 * V[2])
    np.testing.assert_allclose(d_gamma, expected_gamma, rtol=1e-12)
    assert abs(d_lambda) > 1e-3 and abs(d_gamma) > 1e-3
    assert abs(pg_gamma) > 1e-3 and abs(pg_lambda) > 1e-3  # the advantages carry them too


def test_targets_carry_no_gradient_to_the_values():
    pi = np.array([[1.0, 0.0], [0.0, 0.0]])
    mu = np.array([[0.0, 0.0], [0.0, 1.0]])
    actions = (0, 1)
    rollout = _rollout(mu, actions)
    jac = _run("by_predictions", pi, rollout)
    (pg_logits, pg_v), (value_logits, value_v), (_, entropy_v) = jac
    *_, vs = _hand_vtrace(pi, mu, [GAMMA, GAMMA], actions=actions)
    # Only the predictions v_0, v_1 receive gradient, -(v_s - v)/N; the bootstrap value v_2
    # is a target only.
    np.testing.assert_allclose(value_v, np.append(-(vs - V[:2]) / 2, 0.0), rtol=1e-12)
    assert value_v[2] == 0.0 and np.all(np.abs(value_v[:2]) > 1e-3)
    np.testing.assert_array_equal(pg_v, 0.0)  # advantages are targets
    np.testing.assert_array_equal(entropy_v, 0.0)
    np.testing.assert_array_equal(value_logits, 0.0)  # importance weights are stopped
    assert np.abs(pg_logits).max() > 1e-3


# --------------------------------------------------------------------------------------
# The learner on a tiny environment: 4 positions shown on a 3x3x2 image, 3 actions,
# episodes of 3 steps, a random start.


def _obs(pos, t):
    image = jnp.zeros((3, 3, 2), jnp.float32)
    image = image.at[pos // 2, pos % 2, 0].set(1.0)
    return image.at[:, :, 1].set(t.astype(jnp.float32) / 3.0)


def _reset(key):
    pos = jax.random.randint(key, (), 0, 4, jnp.int32)
    t = jnp.zeros((), jnp.int32)
    return _obs(pos, t), (pos, t)


def _step(key, state, action):
    del key  # deterministic dynamics (less to compile); the start and the policy are random
    pos, t = state
    reward = jnp.where(action == pos % 3, 1.0, -0.5).astype(jnp.float32)
    pos, t = (pos + action + 1) % 4, t + 1
    done = t >= 3
    pos, t = jnp.where(done, (3 * pos + 1) % 4, pos), jnp.where(done, 0, t)
    return _obs(pos, t), (pos, t), reward, done


ENV = stacx.Environment(reset=_reset, step=_step, num_actions=3, obs_shape=(3, 3, 2))
TINY = {"num_envs": 2, "rollout_length": 3, "channels": 2, "hidden_size": 8, "num_heads": 3}
NETS = minatar_multihead(
    num_actions=ENV.num_actions,
    num_heads=TINY["num_heads"],
    channels=TINY["channels"],
    hidden_size=TINY["hidden_size"],
)


def _config(**overrides) -> stacx.StacxConfig:
    """The agent's default settings at the tiny environment's sizes."""
    return stacx.StacxConfig(
        num_envs=TINY["num_envs"], rollout_length=TINY["rollout_length"], **overrides
    )


def _agent(agent_config):
    return agent_config, stacx.make_learner(NETS, ENV, agent_config)


@functools.cache
def _initial_program():
    agent_config = _config()
    return _compile(lambda key: stacx.initial_state(NETS, ENV, key, agent_config), _key(0))


def _key(seed):
    return jax.random.PRNGKey(seed)


def _initial(seed=0):
    """A fresh agent of ``_config()`` (the initial state does not depend on ``learned``)."""
    return _initial_program()(_key(seed))


def _to_float64(tree):
    return jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), tree)


def _float64_state(state):
    """``state`` with float64 parameters (call inside ``jax.enable_x64``).

    The environment's data (observations, rewards) stays float32 as the environment makes
    it; the behaviour logits become float64 as the next rollout's will.
    """
    return state._replace(
        params=_to_float64(state.params),
        opt_state=_to_float64(state.opt_state),
        rollout=state.rollout._replace(logits_t=_to_float64(state.rollout.logits_t)),
    )


# --------------------------------------------------------------------------------------
# 3. The STACX reduction: BMG (SGD target of rate α, L2, L = K = 1) = α · MG.


def test_bmg_l1_sgd_l2_is_alpha_times_stacx_meta_gradient():
    """In float64 on the real learner; ``entropy_cost`` is left out of ``learned``.

    (One compiled program checks the reduction, that the meta-gradient reaches every learned
    hyperparameter of every head, and that it is exactly zero for the unlearned one.)
    """
    alpha = 0.37
    agent_config, learner = _agent(
        _config(learned=("discount", "lambda_", "policy_cost", "value_cost"))
    )
    mask = stacx.learned_mask(agent_config, NETS.num_heads)
    assert mask == stacx.Hypers(True, True, True, True, False)
    adam = optax.masked(optax.adam(1e-3), mask)  # as experiments.minatar.train builds them
    mg = bmg.meta_gradient(learner, num_inner_steps=1, meta_optimizer=adam)
    matching, match_on = stacx.matching("l2")
    bootstrapped = bmg.bootstrapped_meta_gradient(
        learner,
        num_inner_steps=1,
        bootstrap_steps=1,
        target_optimizer=optax.sgd(alpha),
        meta_optimizer=adam,
        matching=matching,
        match_on=match_on,
    )
    state32 = _initial(seed=3)

    def meta_gradients(w, state, target_opt_state):
        return (
            jax.grad(mg.loss, has_aux=True)(w, state, ()),
            jax.grad(bootstrapped.loss, has_aux=True)(w, state, target_opt_state),
        )

    with jax.enable_x64(True):
        state = _float64_state(state32)
        w = _to_float64(stacx.initial_meta_params(agent_config, NETS.num_heads))
        target_opt_state = bootstrapped.init(w, state).target_opt_state
        args = (w, state, target_opt_state)
        out = jax.device_get(_compile(meta_gradients, *args)(*args))
    (g_mg, mg_aux), (g_bmg, bmg_aux) = out
    for name in stacx.HYPER_NAMES:
        mg_leaf, bmg_leaf = getattr(g_mg, name), getattr(g_bmg, name)
        assert mg_leaf.dtype == np.float64 and mg_leaf.shape == (NETS.num_heads,)
        if name in agent_config.learned:
            assert np.all(np.abs(mg_leaf) > 1e-10), name  # every head's value is reached
            np.testing.assert_allclose(bmg_leaf, alpha * mg_leaf, rtol=1e-9, atol=0, err_msg=name)
        else:
            np.testing.assert_array_equal(mg_leaf, 0.0)
            np.testing.assert_array_equal(bmg_leaf, 0.0)
    # A meta-step uses K + L - 1 = 1 rollout: neither the outer loss nor the target step
    # steps the environment, and both continue from x^(1) with the rollout it collected.
    steps = agent_config.num_envs * agent_config.rollout_length
    assert int(mg_aux.learner_state.env_steps) == int(state32.env_steps) + steps
    _assert_trees_equal(mg_aux.learner_state, bmg_aux.learner_state)


# --------------------------------------------------------------------------------------
# 4-8. The learner's functions.


@pytest.fixture(scope="module")
def tiny():
    agent_config, learner = _agent(_config())
    state, w = _initial(), stacx.initial_meta_params(agent_config, NETS.num_heads)
    return agent_config, learner, state, w, _compile(learner.inner_step, state, w)


def test_sample_and_outer_loss_do_not_step_the_environment(tiny):
    agent_config, learner, state, w, inner_step = tiny
    next_state, batch = learner.sample(state)
    _assert_trees_equal(next_state, state)
    _assert_trees_equal(batch, state.rollout)
    loss = learner.outer_loss(state.params, batch)
    assert np.isfinite(loss) and loss.shape == ()
    _assert_trees_equal(learner.sample(next_state), (state, state.rollout))

    stepped, aux = inner_step(state, w)
    steps = agent_config.num_envs * agent_config.rollout_length
    assert int(stepped.env_steps) == int(state.env_steps) + steps == 2 * steps  # init + step
    t, b = agent_config.rollout_length, agent_config.num_envs
    assert state.rollout.obs_t.shape == stepped.rollout.obs_t.shape == (t + 1, b, *ENV.obs_shape)
    changed = jax.tree.map(lambda a, b: np.abs(a - b).max(), stepped.params, state.params)
    assert all(c > 0 for c in jax.tree.leaves(changed))
    assert not np.array_equal(stepped.rollout.obs_t, state.rollout.obs_t)
    np.testing.assert_array_equal(stepped.rollout.obs_t[0], state.rollout.obs_t[-1])
    assert aux.pg_loss.shape == aux.value_loss.shape == aux.entropy.shape == ()


@pytest.mark.parametrize(
    ("name", "space"), [("l2", "parameters"), ("kl", "predictions"), ("kl_v", "predictions")]
)
def test_matching_spaces(name, space):
    fn, match_on = stacx.matching(name)
    assert match_on == space and callable(fn)


def test_matching_rejects_unknown_name():
    with pytest.raises(ValueError, match="matching"):
        stacx.matching("l1")


def test_predict_gives_main_head_policy_and_value(tiny):
    agent_config, learner, state, _, _ = tiny
    rollout = state.rollout
    prediction = learner.predict(state.params, rollout)
    t, b = agent_config.rollout_length, agent_config.num_envs
    assert isinstance(prediction, bmg.matching.PolicyAndValue)
    assert prediction.logits.shape == (t, b, ENV.num_actions)
    assert prediction.value.shape == (t, b)
    logits, values = NETS.apply(state.params, rollout.obs_t[:-1])
    np.testing.assert_array_equal(prediction.logits, logits[:, :, 0])
    np.testing.assert_array_equal(prediction.value, values[:, :, 0])
    assert not np.allclose(logits[:, :, 0], logits[:, :, 1])  # the heads differ
    # The main head acted: the rollout's behaviour logits are its logits.
    np.testing.assert_allclose(rollout.logits_t, prediction.logits, rtol=1e-5, atol=1e-6)


def test_hypers_at_init_are_the_configs_initial_values(tiny):
    agent_config, _, state, w, inner_step = tiny
    hypers = bmg.hyper.constrain(w, stacx.hyper_spec(agent_config, NETS.num_heads))
    _, aux = inner_step(state, w)
    for name in stacx.HYPER_NAMES:
        expected = np.full(NETS.num_heads, getattr(agent_config, f"initial_{name.rstrip('_')}"))
        np.testing.assert_allclose(getattr(hypers, name), expected, rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(getattr(aux.hypers, name), expected, rtol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    "bad",
    [
        {"learned": ("discount", "gamma")},
        {"initial_discount": 1.0},
        {"initial_lambda": 0.0},
        {"initial_policy_cost": 2.0},
        {"initial_value_cost": 0.0},
        {"initial_entropy_cost": 0.06},
        {"num_envs": 0},
        {"outer_lambda": 1.5},
    ],
)
def test_stacx_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        stacx.StacxConfig(**bad)
    stacx.StacxConfig(learned=("lambda_",), initial_entropy_cost=0.04)  # valid neighbours


def test_inner_step_is_deterministic_given_the_key(tiny):
    agent_config, _, _, w, inner_step = tiny

    def run(seed):
        return jax.device_get(inner_step(_initial(seed), w))

    first = run(1)
    _assert_trees_equal(run(1), first)
    assert not np.array_equal(run(2)[0].rollout.obs_t, first[0].rollout.obs_t)


def test_jitted_and_unjitted_inner_step_agree(tiny):
    _, learner, state, w, inner_step = tiny
    jitted = inner_step(state, w)
    eager = learner.inner_step(state, w)
    # The same actions and data; the floats agree closely.
    np.testing.assert_array_equal(jitted[0].rollout.a_t, eager[0].rollout.a_t)
    np.testing.assert_array_equal(jitted[0].env_steps, eager[0].env_steps)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), jitted, eager)
