"""Networks of the agents: the only module of the project that imports haiku.

Each factory returns pure ``init`` / ``apply`` functions (``hk.without_apply_rng``) so that the
rest of the code sees parameters as plain pytrees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp


class ActorCriticNets(NamedTuple):
    """Separate policy and value networks.

    Attributes:
      init: ``init(key, obs) -> params`` with ``params = {"policy": ..., "value": ...}``.
      policy: ``policy(params, obs[..., O]) -> logits[..., A]``.
      value: ``value(params, obs[..., O]) -> v[...]``.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    policy: Callable[[Any, jax.Array], jax.Array]
    value: Callable[[Any, jax.Array], jax.Array]


def actor_critic_mlp(*, num_actions: int, hidden_sizes: Sequence[int]) -> ActorCriticNets:
    """Policy and value MLPs with ReLU hidden layers and no shared parameters (paper, 5.1)."""
    hidden_sizes = tuple(hidden_sizes)
    policy_net = hk.without_apply_rng(
        hk.transform(lambda obs: hk.nets.MLP((*hidden_sizes, num_actions), name="policy")(obs))
    )
    value_net = hk.without_apply_rng(
        hk.transform(lambda obs: hk.nets.MLP((*hidden_sizes, 1), name="value")(obs)[..., 0])
    )

    def init(key, obs):
        policy_key, value_key = jax.random.split(key)
        return {"policy": policy_net.init(policy_key, obs), "value": value_net.init(value_key, obs)}

    return ActorCriticNets(
        init=init,
        policy=lambda params, obs: policy_net.apply(params["policy"], obs),
        value=lambda params, obs: value_net.apply(params["value"], obs),
    )


class ScalarMetaNet(NamedTuple):
    """A small network mapping statistics to a scalar hyperparameter in (0, 1).

    Attributes:
      init: ``init(key, inputs[N]) -> meta_params``.
      apply: ``apply(meta_params, inputs[N]) -> scalar in (0, 1)``.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]


def sigmoid_meta_net(*, hidden_size: int, initial_value: float) -> ScalarMetaNet:
    """``sigmoid(MLP(inputs) + logit(initial_value))`` with one ReLU hidden layer.

    The output layer starts at zero, so the network outputs exactly ``initial_value`` at
    initialisation whatever its inputs; its gradients are non-zero from the start.
    """
    if not 0.0 < initial_value < 1.0:
        raise ValueError(f"initial_value must be in (0, 1), got {initial_value}")
    offset = float(jnp.log(initial_value) - jnp.log1p(-initial_value))

    def forward(inputs):
        hidden = jax.nn.relu(hk.Linear(hidden_size, name="hidden")(inputs))
        out = hk.Linear(1, w_init=jnp.zeros, name="out")(hidden)[..., 0]
        return jax.nn.sigmoid(out + offset)

    net = hk.without_apply_rng(hk.transform(forward))
    return ScalarMetaNet(init=net.init, apply=net.apply)
