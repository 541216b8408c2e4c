"""Memory figures of a compiled XLA program, shared by the benchmark scripts."""

from __future__ import annotations


def compiled_memory(compiled) -> tuple[int | None, int | None]:
    """``(temp bytes, total bytes)`` from XLA's memory analysis, or Nones if unavailable.

    ``temp`` is the scratch arena (activations kept for the backward pass live there);
    ``total`` is arguments + outputs + temp - aliased bytes. Both are the compiler's static
    figures for this backend, not the process's resident memory.
    """
    try:
        stats = compiled.memory_analysis()
    except Exception:  # some backends do not implement it
        return None, None
    if stats is None:
        return None, None
    temp = stats.temp_size_in_bytes
    total = (
        stats.argument_size_in_bytes + stats.output_size_in_bytes + temp - stats.alias_size_in_bytes
    )
    return temp, total
