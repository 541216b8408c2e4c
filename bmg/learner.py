"""The learner interface: what the core needs to know about an agent or a model.

The core (`bmg.unroll`, `bmg.bootstrap_target`, the meta-losses) never looks inside a learner
state. It reaches it only through the pure functions bundled in a `Learner`:

* ``inner_step(state, meta_params) -> (state, aux)`` is one step φ of the meta-learned update
  rule (paper, section 3). It is differentiated with respect to ``meta_params`` through the
  K-step unroll. For RL the state carries the environment state and PRNG key, so the step
  collects its own data; data never carries gradients, losses recompute outputs from params.
* ``sample(state) -> (state, batch)`` draws the data on which the outer objective and the
  matching function are evaluated (a fresh rollout, a query set). The core applies
  ``stop_gradient`` to the batch.
* ``outer_loss(params, batch) -> scalar`` is the meta-objective f: the loss the target step
  descends (BMG) or the meta-loss itself (MG). It holds no meta-learned term.
* ``get_params(state) -> params`` reads the parameters x inside a state.
* ``predict(params, batch) -> pytree`` (optional) maps parameters to the matching space used
  by prediction-space matching (policy logits, ``PolicyAndValue``, regression outputs).
* ``prepare(state, meta_params) -> state`` (optional) runs before the unroll; it lets the
  starting point depend on the meta-parameters, e.g. a MAML initialisation x0 = w.
* ``behaviour(params, batch, meta_params) -> pytree`` (optional) is the learner's side of
  prediction-space matching when the meta-parameters shape it directly, e.g. an ε-greedy
  policy over Q-values with a meta-learned ε. Given one, BMG matches ``predict(x̃, batch)``
  against ``behaviour(x^(K), batch, w)``; it is what makes K = 0 meaningful (nothing is then
  differentiated through an update, paper, appendix on ε-greedy exploration).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

State = Any
MetaParams = Any
Params = Any
Batch = Any


class Learner(NamedTuple):
    """The pure functions through which the core drives a learner (see module docstring)."""

    inner_step: Callable[[State, MetaParams], tuple[State, Any]]
    sample: Callable[[State], tuple[State, Batch]]
    outer_loss: Callable[[Params, Batch], Any]
    get_params: Callable[[State], Params]
    predict: Callable[[Params, Batch], Any] | None = None
    prepare: Callable[[State, MetaParams], State] | None = None
    behaviour: Callable[[Params, Batch, MetaParams], Any] | None = None


def prepared(learner: Learner, state: State, meta_params: MetaParams) -> State:
    """Returns the unroll's starting state x0, applying ``learner.prepare`` if there is one."""
    if learner.prepare is None:
        return state
    return learner.prepare(state, meta_params)
