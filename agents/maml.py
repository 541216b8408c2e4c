"""MAML few-shot learners as a `bmg.Learner` (paper, section 6; Finn et al. 2017).

The meta-parameters w are a `MetaParams`: the network's initialisation and per-parameter inner
learning rates (Meta-SGD, Li et al. 2017). The rates are always present so that the structure
of w never depends on a flag; unless ``learn_inner_lr`` they sit under ``stop_gradient`` and
their meta-gradient is exactly zero.

The learner state `MamlState` holds a meta-batch of B tasks with a leading task axis:

* ``prepare(state, w)`` broadcasts the initialisation to every task, x0 = w: this is where the
  meta-gradient reaches the initialisation.
* ``inner_step`` takes one SGD step on each task's support loss, vmapped over tasks. With
  ``first_order`` the inner gradients are under ``stop_gradient`` (first-order MAML).
* ``sample`` returns the query sets (data, without gradients).
* ``outer_loss`` is the sum over tasks of each task's mean query loss. The sum (not the mean)
  makes the BMG target step move each task by its own query gradient at the target rate; the
  Adam meta-optimizer is invariant to the scale.
* ``predict`` gives the network's outputs on the query sets, ``[B, Q, ...]``.

MAML is `bmg.meta_gradient` with this learner (meta-loss: query loss after K steps); BMG is
`bmg.bootstrapped_meta_gradient` (target: L-1 more support steps and one SGD step on the query
loss; matching: KL on query predictions, squared error on regression outputs, or L2 on
parameters). `make_meta_optimizer` builds either from a method name.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

import bmg
from agents.networks import Network

stop_gradient = jax.lax.stop_gradient

LOSSES = ("cross_entropy", "mse")
METHODS = ("maml", "bmg")
MATCHINGS = ("kl", "mse", "l2")
TARGET_OPTIMIZERS = ("sgd", "rmsprop", "adam")


@dataclasses.dataclass(frozen=True)
class MamlConfig:
    """Settings of the few-shot learner.

    Attributes:
      loss: ``"cross_entropy"`` (classification, integer labels) or ``"mse"`` (regression).
      inner_lr: the initial inner SGD learning rate α_in of every parameter.
      first_order: stop the gradient through the inner gradients (first-order MAML).
      learn_inner_lr: meta-learn per-parameter inner learning rates (Meta-SGD).
    """

    loss: str = "cross_entropy"
    inner_lr: float = 0.01
    first_order: bool = False
    learn_inner_lr: bool = False

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if not self.inner_lr > 0:
            raise ValueError(f"inner_lr must be > 0, got {self.inner_lr}")


class Episode(NamedTuple):
    """A task's support and query sets (leading task axis when batched).

    Attributes:
      support_x: ``[S, ...]`` support inputs (images ``[S, H, W, C]`` or points ``[S, 1]``).
      support_y: ``[S]`` int32 labels (classification) or ``[S, 1]`` targets (regression).
      query_x: ``[Q, ...]`` query inputs.
      query_y: ``[Q]`` or ``[Q, 1]`` query labels or targets.
    """

    support_x: chex.Array
    support_y: chex.Array
    query_x: chex.Array
    query_y: chex.Array


class MetaParams(NamedTuple):
    """w: the initialisation and the per-parameter inner learning rates (same tree)."""

    init: Any
    inner_lr: Any


class MamlState(NamedTuple):
    """The learner state x: per-task parameters ``[B, ...]`` and the tasks' episodes."""

    params: Any
    episodes: Episode


class StepAux(NamedTuple):
    """What an inner step reports: the support loss before the step, averaged over tasks."""

    support_loss: chex.Array


def init_meta_params(net: Network, key: jax.Array, inputs: chex.Array, *, config: MamlConfig):
    """Fresh meta-parameters: a network initialisation and constant inner learning rates.

    Args:
      net: the network.
      key: PRNG key of the initialisation.
      inputs: example inputs of one task ``[S, ...]`` (their shape fixes the parameter shapes).
      config: the learner's settings (``inner_lr``).
    """
    init = net.init(key, inputs)
    inner_lr = jax.tree.map(lambda p: jnp.full_like(p, config.inner_lr), init)
    return MetaParams(init=init, inner_lr=inner_lr)


def _check_episodes(episodes: Episode) -> int:
    chex.assert_equal_shape_prefix([episodes.support_x, episodes.support_y], 2)
    chex.assert_equal_shape_prefix([episodes.query_x, episodes.query_y], 2)
    chex.assert_equal_shape_prefix(list(episodes), 1)
    return episodes.support_x.shape[0]


def broadcast_init(meta_params: MetaParams, num_tasks: int) -> Any:
    """The initialisation repeated on a leading task axis; its gradient sums over tasks."""
    return jax.tree.map(lambda p: jnp.broadcast_to(p, (num_tasks, *p.shape)), meta_params.init)


def initial_state(meta_params: MetaParams, episodes: Episode) -> MamlState:
    """A learner state for a meta-batch of episodes ``[B, ...]`` with params = w.init per task."""
    num_tasks = _check_episodes(episodes)
    return MamlState(broadcast_init(meta_params, num_tasks), episodes)


def task_loss(net: Network, params, x: chex.Array, y: chex.Array, *, loss: str) -> chex.Array:
    """The mean loss of one task's set ``(x, y)``; gradients reach ``params`` only."""
    outputs = net.apply(params, x)
    if loss == "cross_entropy":
        chex.assert_rank(y, 1)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, y))
    chex.assert_equal_shape([outputs, y])
    return jnp.mean(jnp.square(outputs - y))


def make_learner(net: Network, config: MamlConfig) -> bmg.Learner:
    """The few-shot learner as a `bmg.Learner` (see the module docstring)."""

    def support_step(params, lrs, episode: Episode):
        loss, grads = jax.value_and_grad(task_loss, argnums=1)(
            net, params, episode.support_x, episode.support_y, loss=config.loss
        )
        if config.first_order:
            grads = stop_gradient(grads)
        return jax.tree.map(lambda p, a, g: p - a * g, params, lrs, grads), loss

    def inner_step(state: MamlState, meta_params: MetaParams):
        lrs = meta_params.inner_lr
        if not config.learn_inner_lr:
            lrs = stop_gradient(lrs)
        params, losses = jax.vmap(support_step, in_axes=(0, None, 0))(
            state.params, lrs, state.episodes
        )
        return state._replace(params=params), StepAux(jnp.mean(losses))

    def sample(state: MamlState):
        return state, (state.episodes.query_x, state.episodes.query_y)

    def outer_loss(params, batch):
        x, y = batch
        per_task = jax.vmap(lambda p, x, y: task_loss(net, p, x, y, loss=config.loss))
        return jnp.sum(per_task(params, x, y))

    def predict(params, batch):
        return jax.vmap(net.apply)(params, batch[0])

    def prepare(state: MamlState, meta_params: MetaParams):
        return state._replace(params=broadcast_init(meta_params, _check_episodes(state.episodes)))

    return bmg.Learner(
        inner_step=inner_step,
        sample=sample,
        outer_loss=outer_loss,
        get_params=lambda state: state.params,
        predict=predict,
        prepare=prepare,
    )


def output_mse(target: chex.Array, prediction: chex.Array) -> chex.Array:
    """½ mean squared error between target and learner outputs (regression matching)."""
    chex.assert_equal_shape([target, prediction])
    return 0.5 * jnp.mean(jnp.square(target - prediction))


def make_meta_optimizer(
    learner: bmg.Learner,
    *,
    method: str,
    num_inner_steps: int,
    meta_optimizer: optax.GradientTransformation,
    bootstrap_steps: int = 1,
    matching: str = "kl",
    target_lr: float = 0.1,
    target_optimizer: str = "sgd",
    remat: bool = False,
) -> bmg.MetaOptimizer:
    """MAML (``method="maml"``) or BMG (``"bmg"``) on the few-shot learner.

    Args:
      learner: from `make_learner`.
      method: ``"maml"``: meta-loss = query loss after K steps (MG); ``"bmg"``: meta-loss =
        μ(x̃, x^(K)(w)) with x̃ = L-1 more support steps, then a step of
        ``target_optimizer`` at rate ``target_lr`` on the query loss, under ``stop_gradient``.
      num_inner_steps: K, support steps backpropagated through.
      meta_optimizer: the optax transformation applied to the meta-gradient.
      bootstrap_steps: L (BMG only).
      matching: BMG only: ``"kl"`` KL(target ‖ learner) of the query predictions
        (classification), ``"mse"`` `output_mse` of the query outputs (regression), ``"l2"``
        ½‖x̃ − x^(K)‖² in parameter space.
      target_lr: the rate of the target step (BMG only).
      target_optimizer: the target step's optimizer, ``"sgd"``, ``"rmsprop"`` or ``"adam"``
        (BMG only). A stateful target's state has one slot per task of the meta-batch and is
        carried across meta-steps, so each slot's statistics pool the tasks drawn into it.
      remat: rematerialise the K steps in the backward pass.
    """
    if method == "maml":
        return bmg.meta_gradient(
            learner, num_inner_steps=num_inner_steps, meta_optimizer=meta_optimizer, remat=remat
        )
    if method != "bmg":
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    matchings = {
        "kl": (bmg.matching.kl, "predictions"),
        "mse": (output_mse, "predictions"),
        "l2": (bmg.matching.l2, "parameters"),
    }
    if matching not in matchings:
        raise ValueError(f"matching must be one of {MATCHINGS}, got {matching!r}")
    matching_fn, match_on = matchings[matching]
    targets = {"sgd": bmg.optimizers.sgd, "rmsprop": optax.rmsprop, "adam": optax.adam}
    if target_optimizer not in targets:
        raise ValueError(
            f"target_optimizer must be one of {TARGET_OPTIMIZERS}, got {target_optimizer!r}"
        )
    return bmg.bootstrapped_meta_gradient(
        learner,
        num_inner_steps=num_inner_steps,
        bootstrap_steps=bootstrap_steps,
        target_optimizer=targets[target_optimizer](target_lr),
        meta_optimizer=meta_optimizer,
        matching=matching_fn,
        match_on=match_on,
        remat=remat,
    )


class TaskMetrics(NamedTuple):
    """Per-task query metrics ``[B]``; ``accuracy`` is NaN for regression."""

    loss: chex.Array
    accuracy: chex.Array


def adapt_and_evaluate(
    net: Network,
    learner: bmg.Learner,
    meta_params: MetaParams,
    episodes: Episode,
    *,
    num_steps: int,
    loss: str,
) -> TaskMetrics:
    """Adapts w to each task with ``num_steps`` support steps, then scores the query sets.

    Nothing here is differentiated; ``num_steps=0`` scores the initialisation itself.
    """
    _check_episodes(episodes)
    meta_params = stop_gradient(meta_params)
    state = learner.prepare(initial_state(meta_params, episodes), meta_params)
    state, _ = bmg.unroll(learner.inner_step, state, meta_params, num_steps=num_steps)

    def one(params, episode: Episode):
        outputs = net.apply(params, episode.query_x)
        value = task_loss(net, params, episode.query_x, episode.query_y, loss=loss)
        if loss == "cross_entropy":
            accuracy = jnp.mean(jnp.argmax(outputs, axis=-1) == episode.query_y)
        else:
            accuracy = jnp.full((), jnp.nan)
        return TaskMetrics(value, accuracy.astype(jnp.float32))

    return jax.vmap(one)(state.params, episodes)
