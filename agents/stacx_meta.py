"""The meta-optimizers of the STACX agent: STACX's own meta-gradient, or BMG.

Both meta-learn the agent's per-head `agents.stacx.Hypers` with Adam, masked to the learned
ones, optionally after clipping the meta-gradient's global norm. BMG's target step is SGD or
RMSProp; an RMSProp target starts from the learner's own RMSProp statistics unless
``target_statistics="own"`` (see `bmg.bootstrapped_meta_gradient`'s ``target_state_from``).
Shared by the MinAtar and the real-ALE experiments.
"""

from __future__ import annotations

import optax

import bmg
from agents import stacx

METHODS = ("stacx", "bmg")
TARGET_OPTIMIZERS = ("sgd", "rmsprop")
TARGET_STATISTICS = ("learner", "own")


def make_meta_optimizer(
    learner: bmg.Learner,
    agent_config: stacx.StacxConfig,
    *,
    num_heads: int,
    method: str,
    num_inner_steps: int,
    meta_learning_rate: float,
    meta_eps: float,
    meta_max_grad_norm: float = 0.0,
    bootstrap_steps: int = 1,
    target_optimizer: str = "sgd",
    target_learning_rate: float = 0.1,
    target_statistics: str = "learner",
    matching: str = "l2",
    value_match_weight: float = 1.0,
) -> bmg.MetaOptimizer:
    """STACX (``method="stacx"``: MG through K inner steps) or BMG (``"bmg"``).

    The RMSProp target shares the inner optimizer's decay and eps (`agent_config`), so its
    state has the learner's structure and can start from it. ``meta_max_grad_norm`` > 0 clips
    the learned hyperparameters' meta-gradient to that global norm before Adam (0: off): one
    rare, huge meta-gradient fills Adam's second-moment estimate and, with its decay of 0.999,
    shrinks every later step for thousands of steps.
    """
    if meta_max_grad_norm < 0:
        raise ValueError(f"meta_max_grad_norm must be >= 0 (0: off), got {meta_max_grad_norm}")
    mask = stacx.learned_mask(agent_config, num_heads)
    adam = optax.adam(meta_learning_rate, eps=meta_eps)
    if meta_max_grad_norm > 0:
        adam = optax.chain(optax.clip_by_global_norm(meta_max_grad_norm), adam)
    adam = optax.masked(adam, mask)
    if method == "stacx":
        return bmg.meta_gradient(learner, num_inner_steps=num_inner_steps, meta_optimizer=adam)
    if method != "bmg":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if target_optimizer == "sgd":
        target = optax.sgd(target_learning_rate)
    elif target_optimizer == "rmsprop":
        target = bmg.optimizers.rmsprop(
            target_learning_rate, decay=agent_config.rmsprop_decay, eps=agent_config.rmsprop_eps
        )
    else:
        raise ValueError(
            f"target_optimizer must be one of {TARGET_OPTIMIZERS}, got {target_optimizer!r}"
        )
    if target_statistics not in TARGET_STATISTICS:
        raise ValueError(
            f"target_statistics must be one of {TARGET_STATISTICS}, got {target_statistics!r}"
        )
    warm = target_optimizer == "rmsprop" and target_statistics == "learner"
    matching_fn, match_on = stacx.matching(matching, value_weight=value_match_weight)
    return bmg.bootstrapped_meta_gradient(
        learner,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=target,
        meta_optimizer=adam,
        matching=matching_fn,
        match_on=match_on,
        target_state_from=stacx.inner_opt_state if warm else None,
    )
