"""Matching functions μ(x̃, x): how far the learner is from its bootstrapped target.

Every matching function has the signature ``matching(target, prediction) -> scalar``:
``target`` is the bootstrapped target (the core passes it under ``stop_gradient``) and
``prediction`` the K-step learner, both in the same matching space. Any function with this
signature can be passed to `bmg.bootstrapped_meta_gradient`.

* `l2`: half the squared Euclidean distance over any pytree (parameter space, or outputs).
  The factor 1/2 makes BMG with L=1 and an SGD target step of rate α give exactly α times the
  MG meta-gradient (paper, section 3).
* `kl`: KL(π_target ‖ π), from logits, averaged over a batch of states (paper, section 5).
  A target logit may be ``-inf`` (an action the target never takes, as in a greedy policy).
* `kl_and_value`: `kl` plus a weighted squared error between value predictions (the paper's
  "KL & V" matching, section 5.2; the weighting is not given in the paper).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp


class PolicyAndValue(NamedTuple):
    """Predictions of an actor-critic for KL&V matching.

    Attributes:
      logits: policy logits ``[..., A]``; all axes but the last are batch axes.
      value: value predictions with the batch shape of ``logits`` (``logits.shape[:-1]``).
    """

    logits: chex.Array
    value: chex.Array


def l2(target: Any, prediction: Any) -> chex.Array:
    """Half the squared Euclidean distance ½‖target − prediction‖² summed over all leaves.

    Args:
      target: any pytree of arrays.
      prediction: a pytree of the same structure and shapes as ``target``.

    Returns:
      A scalar; gradients flow into both arguments (the core stops them at the target).
    """
    chex.assert_trees_all_equal_shapes(target, prediction)
    squares = jax.tree.map(lambda t, p: jnp.sum(jnp.square(t - p)), target, prediction)
    return 0.5 * sum(jax.tree.leaves(squares), jnp.zeros(()))


def _kl_per_state(target_logits: chex.Array, logits: chex.Array) -> chex.Array:
    target_log_probs = jax.nn.log_softmax(target_logits, axis=-1)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    # Actions the target never takes (logit -inf, e.g. a greedy target) add 0, not 0 · inf.
    terms = jnp.exp(target_log_probs) * (target_log_probs - log_probs)
    return jnp.sum(jnp.where(target_log_probs > -jnp.inf, terms, 0.0), axis=-1)


def kl(target: chex.Array, prediction: chex.Array) -> chex.Array:
    """KL(π_target ‖ π) between categorical policies given by logits, averaged over states.

    Args:
      target: target logits ``[..., A]``; leading axes index states (e.g. ``[T, B, A]``).
      prediction: learner logits of the same shape.

    Returns:
      The mean over all leading axes of Σ_a π_target(a) (log π_target(a) − log π(a)).
    """
    chex.assert_equal_shape([target, prediction])
    chex.assert_rank(target, {1, 2, 3, 4, 5})
    return jnp.mean(_kl_per_state(target, prediction))


def kl_and_value(
    target: PolicyAndValue, prediction: PolicyAndValue, *, value_weight: float = 1.0
) -> chex.Array:
    """KL matching of policies plus ``value_weight`` × ½ mean squared value error.

    Args:
      target: target `PolicyAndValue`.
      prediction: learner `PolicyAndValue` of the same shapes.
      value_weight: the weight of the value term (keyword-only; bind it with
        ``functools.partial`` to obtain the two-argument matching signature).

    Returns:
      ``kl(target.logits, prediction.logits) + value_weight * ½ mean (v_target − v)²``.
    """
    chex.assert_equal_shape([target.logits, prediction.logits])
    chex.assert_equal_shape([target.value, prediction.value])
    chex.assert_equal_shape_prefix([target.logits, target.value], target.value.ndim)
    value_error = 0.5 * jnp.mean(jnp.square(target.value - prediction.value))
    return kl(target.logits, prediction.logits) + value_weight * value_error


MATCHING_FUNCTIONS = {"l2": l2, "kl": kl, "kl_v": kl_and_value}
"""Matching functions by the names used in flags and configs."""
