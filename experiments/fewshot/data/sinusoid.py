"""Sinusoid regression tasks (Finn et al. 2017, section 5.1), sampled in JAX.

A task is y = A sin(x − φ) with amplitude A ~ U[0.1, 5], phase φ ~ U[0, π] and inputs
x ~ U[−5, 5]. The support set holds ``shots`` points, the query set ``queries`` others.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from agents.maml import Episode


@dataclasses.dataclass(frozen=True)
class SinusoidSpec:
    """The task distribution: ranges of amplitude, phase and inputs."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)


def sample_episodes(
    key: jax.Array,
    *,
    num_tasks: int,
    shots: int,
    queries: int,
    spec: SinusoidSpec = SinusoidSpec(),
) -> Episode:
    """Draws ``num_tasks`` sinusoid tasks.

    Args:
      key: PRNG key; the same key gives the same tasks.
      num_tasks: B, the leading axis of every array.
      shots: support points per task.
      queries: query points per task.
      spec: the task distribution.

    Returns:
      An `Episode` with ``support_x, support_y: [B, shots, 1]`` and ``query_x, query_y:
      [B, queries, 1]`` (float32).
    """
    amp_key, phase_key, x_key = jax.random.split(key, 3)
    amplitude = jax.random.uniform(
        amp_key, (num_tasks, 1, 1), minval=spec.amplitude[0], maxval=spec.amplitude[1]
    )
    phase = jax.random.uniform(
        phase_key, (num_tasks, 1, 1), minval=spec.phase[0], maxval=spec.phase[1]
    )
    x = jax.random.uniform(
        x_key, (num_tasks, shots + queries, 1), minval=spec.x_range[0], maxval=spec.x_range[1]
    )
    y = amplitude * jnp.sin(x - phase)
    return Episode(x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:])
