"""IMPALA's V-trace losses of one policy/value head (Espeholt et al. 2018), on a time-major
rollout (`agents.stacx.Rollout`: ``obs_t [T+1, B, ...]``, ``a_t``, ``r_t``, ``done_t``,
behaviour ``logits_t``)."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import rlax


def vtrace_losses(logits_t, v_t, rollout, *, discount, lambda_):
    """V-trace policy-gradient, value and entropy losses of one head (IMPALA).

    Args:
      logits_t: ``[T, B, A]`` the head's logits on ``rollout.obs_t[:-1]``.
      v_t: ``[T+1, B]`` the head's values on ``rollout.obs_t``.
      rollout: the data; ``rollout.logits_t`` is the behaviour policy.
      discount, lambda_: scalars (may carry meta-gradients).

    The policy-gradient advantage is rlax's: ``ρ̄_t (r_t + γ (λ v_{s,t+1} + (1 − λ) V(x_{t+1}))
    − V(x_t))``, which for λ < 1 mixes in the value estimate (IMPALA's paper writes
    ``r_t + γ v_{s,t+1}``), so λ reaches the policy loss as well as the value targets.

    Returns:
      ``(pg_loss, value_loss, entropy)``, means over time and batch. Gradients reach the
      parameters through ``logits_t`` and ``v_t`` as predictions only; the V-trace targets
      and the importance weights are computed from stopped values and logits and carry
      gradients to ``discount`` and ``lambda_`` alone.
    """
    chex.assert_rank([logits_t, v_t, rollout.r_t], [3, 2, 2])
    chex.assert_equal_shape([logits_t, rollout.logits_t])
    chex.assert_equal(v_t.shape[0], rollout.r_t.shape[0] + 1)
    log_pi = jax.nn.log_softmax(logits_t)
    log_pi_a = jnp.take_along_axis(log_pi, rollout.a_t[..., None], axis=-1)[..., 0]
    log_mu = jax.nn.log_softmax(rollout.logits_t)
    log_mu_a = jnp.take_along_axis(log_mu, rollout.a_t[..., None], axis=-1)[..., 0]
    rho_tm1 = jnp.exp(jax.lax.stop_gradient(log_pi_a) - log_mu_a)
    discount_t = discount * (1.0 - rollout.done_t.astype(v_t.dtype))
    values = jax.lax.stop_gradient(v_t)
    vtrace = functools.partial(
        rlax.vtrace_td_error_and_advantage, lambda_=lambda_, stop_target_gradients=False
    )
    # rlax is single-stream [T]; the batch axis is 1.
    out = jax.vmap(vtrace, in_axes=1, out_axes=1)(
        values[:-1], values[1:], rollout.r_t, discount_t, rho_tm1
    )
    vs = out.errors + values[:-1]  # V-trace targets v_s
    pg_loss = -jnp.mean(log_pi_a * out.pg_advantage)
    value_loss = 0.5 * jnp.mean(jnp.square(vs - v_t[:-1]))
    entropy = jnp.mean(-jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1))
    return pg_loss, value_loss, entropy
