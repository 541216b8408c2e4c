"""The run directory of a few-shot run: resolved config, metrics and checkpoints.

* ``config.json``: the resolved `Config`; a rerun in the same directory must match it except
  for ``meta_steps``.
* ``metrics.jsonl``: one JSON record per line (see `experiments.fewshot.train`).
* ``checkpoint.npz``: the leaves of (meta-parameters, optimizer state, PRNG key data) with the
  step and training time, replaced atomically after every chunk.
* ``fault.json``: only if the run went NaN or infinite (`experiments.runs.check_finite`); the
  directory then refuses to resume (`experiments.runs.check_no_fault`) until it is deleted.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.fewshot.config import Config, ConfigError


def config_json(config: Config) -> dict[str, Any]:
    """The config as JSON-compatible values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_checkpoint(path: str, tree, *, step: int, train_time: float) -> None:
    leaves = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}
    tmp = path + ".tmp.npz"
    np.savez(tmp, step=step, train_time=train_time, **leaves)
    os.replace(tmp, path)  # atomic: a crash leaves the previous checkpoint intact


def load_checkpoint(path: str, template):
    with np.load(path) as data:
        treedef = jax.tree.structure(template)
        leaves = [jnp.asarray(data[f"leaf_{i}"]) for i in range(treedef.num_leaves)]
        return jax.tree.unflatten(treedef, leaves), int(data["step"]), float(data["train_time"])


def resume_or_start(config: Config, run_dir: str) -> bool:
    """Checks a stored run against ``config``; returns whether there is a checkpoint."""
    config_path = os.path.join(run_dir, "config.json")
    has_checkpoint = os.path.exists(os.path.join(run_dir, "checkpoint.npz"))
    if has_checkpoint and os.path.exists(config_path):
        with open(config_path) as f:
            stored = json.load(f)
        current = config_json(config)
        changed = sorted(k for k in current if k != "meta_steps" and stored.get(k) != current[k])
        if changed:
            raise ConfigError(
                f"{run_dir} holds a run with different settings ({', '.join(changed)}); only "
                "meta_steps may change on resume: use a new --run_dir"
            )
    with open(config_path, "w") as f:
        json.dump(config_json(config), f, indent=2)
    return has_checkpoint


def truncate_metrics(path: str, step: int) -> None:
    """Drops records after ``step`` (written after the last checkpoint of a crashed run)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(path, "w") as f:
        for r in records:
            if r.get("step", 0) <= step and r["kind"] != "compile":
                f.write(json.dumps(r) + "\n")


def read_metrics(run_dir: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (of one ``kind`` if given)."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if kind is None or r["kind"] == kind]
