"""A small deterministic meta-learning problem for the core's tests.

Parameters x = {"x": (3,), "b": (2,)}; meta-parameters w = (2,). The inner loss is a quadratic
whose curvature and centre depend non-linearly on w; the outer loss pulls x towards a batch
drawn by ``sample`` (a counter in the state makes every batch different).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import bmg

A = jnp.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])
C = jnp.array([1.0, -2.0, 0.5])


class State(NamedTuple):
    params: Any
    opt_state: Any
    count: jax.Array


def inner_loss(params, meta_params):
    x, b = params["x"], params["b"]
    d = x - C * jnp.tanh(meta_params[1])
    reg = jax.nn.softplus(meta_params[0])
    return 0.5 * d @ A @ d + 0.5 * reg * jnp.sum(x**2) + 0.5 * jnp.sum((b - meta_params) ** 2)


def batch_at(count):
    c = count.astype(jnp.float32) if hasattr(count, "astype") else jnp.float32(count)
    return {
        "x": jnp.array([0.5, 0.5, -1.0]) + 0.1 * jnp.sin(c + jnp.arange(3.0)),
        "b": jnp.array([0.2, -0.1]) + 0.1 * jnp.cos(c + jnp.arange(2.0)),
        "features": jnp.array([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.0], [0.0, 1.0]]) * (1 + 0.1 * c),
    }


def outer_loss(params, batch):
    return 0.5 * jnp.sum((params["x"] - batch["x"]) ** 2) + jnp.sum((params["b"] - batch["b"]) ** 2)


def predict(params, batch):
    """Logits [4, 3] and values [4] on the batch's features."""
    features = batch["features"]
    logits = features[:, :1] * params["x"][None, :] + features[:, 1:] * params["x"][::-1][None]
    value = features @ params["b"]
    return bmg.matching.PolicyAndValue(logits, value)


def predict_logits(params, batch):
    return predict(params, batch).logits


def make_learner(inner_optimizer: optax.GradientTransformation, predict=predict) -> bmg.Learner:
    def inner_step(state, meta_params):
        loss, grads = jax.value_and_grad(inner_loss)(state.params, meta_params)
        updates, opt_state = inner_optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return State(params, opt_state, state.count + 1), {"loss": loss}

    def sample(state):
        return state._replace(count=state.count + 1), batch_at(state.count)

    return bmg.Learner(
        inner_step=inner_step,
        sample=sample,
        outer_loss=outer_loss,
        get_params=lambda s: s.params,
        predict=predict,
    )


def initial_state(inner_optimizer, dtype=jnp.float32, warmup_steps=3) -> State:
    """A state a few inner steps (with other meta-parameters) into training.

    The warm-up gives adaptive optimizers a history: Adam's first step is lr·sign(g), whose
    derivative is nearly zero, which would make meta-gradient checks vacuous.
    """
    params = {"x": jnp.array([0.3, -0.2, 0.1], dtype), "b": jnp.array([0.0, 0.4], dtype)}
    state = State(params, inner_optimizer.init(params), jnp.zeros((), jnp.int32))
    step = make_learner(inner_optimizer).inner_step
    for i in range(warmup_steps):
        state, _ = step(state, jnp.array([-1.0 + i, 0.2 * i], dtype))
    return state


META_PARAMS = jnp.array([0.3, 0.8])

INNER_OPTIMIZERS = {
    "sgd": lambda: bmg.optimizers.sgd(0.1),
    "sgd_momentum": lambda: bmg.optimizers.sgd(0.1, momentum=0.9),
    "sgd_clipped": lambda: bmg.optimizers.sgd(0.1, max_grad_norm=0.05),
    "rmsprop": lambda: bmg.optimizers.rmsprop(0.05),
    "adam": lambda: bmg.optimizers.adam(0.05),
}
