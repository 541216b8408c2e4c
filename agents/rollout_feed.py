"""Rollouts collected outside the learner's program (host-side actors, the real ALE).

With an in-graph environment (MinAtar) each inner step collects its next rollout itself.
With host-side actors the learner instead receives, before each meta-step, the K + L − 1
rollouts that meta-step will learn from, stacked on a leading axis and passed in as data
(`feed`); each inner step then takes the next one (`take`), in order, exactly once. The
environment steps are thus outside the differentiated program, and the `bmg.Learner`
contract is the same as on MinAtar: only where ``inner_step`` gets its next rollout differs.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class Feed(NamedTuple):
    """Rollouts waiting to be learned from.

    Attributes:
      rollouts: a `Rollout` whose leaves have a leading ``[N]`` axis.
      cursor: the index of the next rollout to hand out.
    """

    rollouts: Any
    cursor: jax.Array


def feed(state, rollouts) -> Any:
    """``state`` with ``rollouts`` (leading axis ``[N]``) queued for the next N inner steps.

    Any rollouts not yet taken are dropped: a meta-step takes exactly the ones it is fed.
    """
    return state._replace(env_state=Feed(rollouts, jnp.zeros((), jnp.int32)))


def take(state) -> tuple[Any, Any]:
    """The next queued rollout and ``state`` with the cursor moved past it.

    The rollout is data (under ``stop_gradient``); ``env_steps`` counts its transitions.
    An index past the end would be clamped (JAX's indexing), so the caller feeds exactly the
    K + L − 1 rollouts a meta-step takes.
    """
    queued: Feed = state.env_state
    rollout = jax.tree.map(lambda x: x[queued.cursor], queued.rollouts)
    length, num_envs = rollout.r_t.shape
    state = state._replace(
        env_state=queued._replace(cursor=queued.cursor + 1),
        obs=rollout.obs_t[-1],
        env_steps=state.env_steps + length * num_envs,
    )
    return state, jax.lax.stop_gradient(rollout)
