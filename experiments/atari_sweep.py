r"""The paper's Atari ablation grid on MinAtar: STACX and BMG over {SGD, RMSProp} target
optimizers x {L2, KL, KL&V} matching x L in {1, 2, 4}, for each game.

  python -m experiments.atari_sweep --root=runs/atari --games=breakout,space_invaders
  python -m experiments.plot --atari_root=runs/atari --out=runs/atari/ablation

Each run goes to ``<root>/<game>/stacx`` or ``<root>/<game>/bmg-<optimizer>-<matching>-L<L>``.
Runs already complete are skipped, unfinished ones resume from their checkpoint, so the same
command continues an interrupted sweep. The order is by game, STACX first, then the BMG
configurations; ``--dry_run`` lists the runs and their state without training. Flags of
`experiments.atari` that are not BMG-specific (``--seeds``, ``--total_frames``, ...) pass
through to every run with ``--set=name=value,...``.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

from absl import flags

from experiments import runs
from experiments.atari_config import (
    BMG_ONLY_FIELDS,
    GAMES,
    MATCHINGS,
    PRESETS,
    TARGET_OPTIMIZERS,
    AtariConfig,
    make_config,
)

FLAGS = flags.FlagValues()
_IN = dict(flag_values=FLAGS)
flags.DEFINE_string("root", None, "Folder of the sweep's run directories.", **_IN)
flags.DEFINE_list("games", ["breakout", "space_invaders"], f"Games, from {GAMES}.", **_IN)
flags.DEFINE_list("target_optimizers", list(TARGET_OPTIMIZERS), "BMG target optimizers.", **_IN)
flags.DEFINE_list("matchings", list(MATCHINGS), "BMG matching functions.", **_IN)
flags.DEFINE_list("bootstrap_steps", ["1", "2", "4"], "BMG bootstrap steps L.", **_IN)
flags.DEFINE_enum("preset", "quick", PRESETS, "Preset of every run.", **_IN)
flags.DEFINE_list("set", [], "Overrides for every run: name=value,name=value.", **_IN)
flags.DEFINE_bool("dry_run", False, "List the runs and their state; train nothing.", **_IN)
flags.DEFINE_bool("quiet", False, "No progress bars.", **_IN)


def _parse_value(name: str, text: str):
    field = next((f for f in AtariConfig.__dataclass_fields__.values() if f.name == name), None)
    if field is None:
        raise ValueError(f"--set: unknown setting {name!r}")
    kind = {"int": int, "float": float}.get(field.type, str)
    try:
        return kind(text)
    except ValueError as e:
        raise ValueError(f"--set: {name} needs a {kind.__name__}, got {text!r}") from e


def grid(
    *,
    games: Sequence[str],
    target_optimizers: Sequence[str],
    matchings: Sequence[str],
    bootstrap_steps: Sequence[int],
    preset: str,
    overrides: dict,
) -> list[tuple[str, AtariConfig]]:
    """``(run name, config)`` of every run of the sweep, in order.

    Raises:
      ValueError: for an invalid setting (checked for every run before any trains).
    """
    out = []
    for game in games:
        shared = {k: v for k, v in overrides.items() if k not in BMG_ONLY_FIELDS}
        out.append(
            (f"{game}/stacx", make_config(preset=preset, method="stacx", env=game, **shared))
        )
        for steps, optimizer, matching in itertools.product(
            bootstrap_steps, target_optimizers, matchings
        ):
            config = make_config(
                preset=preset,
                method="bmg",
                env=game,
                target_optimizer=optimizer,
                matching=matching,
                bootstrap_steps=steps,
                **overrides,
            )
            out.append((f"{game}/bmg-{optimizer}-{matching}-L{steps}", config))
    return out


def status(run_dir: Path, config: AtariConfig) -> str:
    """``"complete"``, ``"partial (n/N rows)"``, ``"new"``; or raises `runs.RunDirError` if
    the directory holds another config."""
    if not (run_dir / runs.CONFIG).exists():
        return "new"
    runs.prepare(run_dir, config)  # raises on a different config
    rows = len(runs.read_metrics(run_dir))
    if rows >= config.num_rows:
        return "complete"
    return f"partial ({rows}/{config.num_rows} rows)"


def main(argv: Sequence[str]) -> list[str]:
    """Runs (or lists) the sweep; returns the names of the runs trained by this call."""
    FLAGS.unparse_flags()
    extra = FLAGS(list(argv))
    if len(extra) > 1:
        raise flags.Error(f"unexpected arguments: {extra[1:]}")
    if not FLAGS.root:
        raise runs.RunDirError("--root is required (the folder of the sweep's run directories)")
    overrides = {}
    for item in FLAGS.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes name=value items, got {item!r}")
        overrides[name] = _parse_value(name, value)
    for name in ("env", "method", "target_optimizer", "matching", "bootstrap_steps"):
        if name in overrides:
            raise ValueError(f"--set={name}=... is decided by the sweep; use its own flag")
    try:
        steps = [int(s) for s in FLAGS.bootstrap_steps]
    except ValueError as e:
        raise ValueError(f"--bootstrap_steps takes integers, got {FLAGS.bootstrap_steps}") from e
    plan = grid(
        games=FLAGS.games,
        target_optimizers=FLAGS.target_optimizers,
        matchings=FLAGS.matchings,
        bootstrap_steps=steps,
        preset=FLAGS.preset,
        overrides=overrides,
    )
    root = Path(FLAGS.root)
    states = [(name, config, status(root / name, config)) for name, config in plan]
    todo = [(name, config) for name, config, state in states if state != "complete"]
    print(f"{len(plan)} runs, {len(plan) - len(todo)} complete, {len(todo)} to run", flush=True)
    if FLAGS.dry_run:
        for name, _, state in states:
            print(f"  {name:<36} {state}")
        return []
    from experiments import atari, population

    population.request_cpu_devices()
    for i, (name, config) in enumerate(todo, 1):
        print(f"[{i}/{len(todo)}] {name}", flush=True)
        atari.run(config, str(root / name), quiet=FLAGS.quiet)
    return [name for name, _ in todo]


def _cli():
    if any(a in ("--help", "-h", "--helpfull") for a in sys.argv[1:]):
        print(__doc__)
        print(FLAGS.module_help(__name__) or FLAGS.get_help())
        return
    try:
        main(sys.argv)
    except (flags.Error, ValueError) as e:
        sys.exit(f"error: {e}\n(see python -m experiments.atari_sweep --help)")


if __name__ == "__main__":
    _cli()
