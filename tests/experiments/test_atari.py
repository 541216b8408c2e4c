"""The MinAtar STACX / BMG experiment: configs and flags, smoke runs per flag family, the
run-level STACX reduction, resume, and the ablation sweep."""

import json
import subprocess
import sys

import jax
import numpy as np
import pytest
from absl import flags

from experiments.common import population, runs
from experiments.minatar import __main__ as atari
from experiments.minatar import sweep as atari_sweep
from experiments.minatar import train as atari_train
from experiments.minatar.config import PRESETS, make_config

HYPERS = ("discount", "lambda_", "policy_cost", "value_cost", "entropy_cost")
BOUNDS = {
    "discount": 1.0,
    "lambda_": 1.0,
    "policy_cost": 2.0,
    "value_cost": 1.0,
    "entropy_cost": 0.05,
}


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("method", ["stacx", "bmg"])
def test_presets_are_valid(preset, method):
    config = make_config(preset=preset, method=method)
    assert config.method == method
    per_row = config.updates_per_row * config.frames_per_update
    assert config.num_rows * per_row >= config.total_frames > (config.num_rows - 1) * per_row


def test_frames_per_update_counts_every_collected_rollout():
    stacx = make_config(preset="quick", method="stacx")
    bmg4 = make_config(preset="quick", method="bmg", bootstrap_steps=4)
    rollout = stacx.num_envs * stacx.rollout_length
    assert stacx.frames_per_update == rollout  # K = 1; the outer loss reuses the next rollout
    assert bmg4.frames_per_update == 4 * rollout  # K + L - 1 rollouts


@pytest.mark.parametrize(
    ("method", "overrides", "message"),
    [
        ("stacx", {"matching": "kl"}, "matching applies to --method=bmg only"),
        ("stacx", {"bootstrap_steps": 2}, "bootstrap_steps applies to --method=bmg only"),
        ("stacx", {"target_optimizer": "rmsprop"}, "target_optimizer applies"),
        ("bmg", {"matching": "cosine"}, "matching must be one of"),
        ("bmg", {"target_optimizer": "adam"}, "target_optimizer must be one of"),
        ("bmg", {"env": "pong"}, "env must be one of"),
        ("bmg", {"bootstrap_steps": 0}, "bootstrap_steps must be an integer >= 1"),
        ("bmg", {"seeds": 0}, "seeds must be an integer >= 1"),
        ("bmg", {"learned": "discount,gamma"}, "unknown hyperparameters"),
        ("bmg", {"target_learning_rate": 0.0}, "target_learning_rate must be > 0"),
        ("bmg", {"outer_discount": 1.5}, "outer_discount"),
        ("bmg", {"colour": 1}, "unknown MinAtar setting"),
    ],
)
def test_invalid_settings_are_clear_errors(method, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(preset="smoke", method=method, **overrides)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method=stacx", "--matching=kl", "--run_dir={d}"], "matching applies"),
        (["--method=bmg"], "--run_dir is required"),
        (["--env=pong", "--run_dir={d}"], "should be one of"),
        (["--run_dir={d}", "stray"], "unexpected arguments"),
        (["--bootstrap_steps=two", "--run_dir={d}"], "bootstrap_steps"),
    ],
)
def test_cli_errors_write_nothing(tmp_path, args, message):
    run_dir = tmp_path / "run"
    argv = ["atari", "--preset=smoke", *[a.format(d=run_dir) for a in args]]
    with pytest.raises((ValueError, flags.Error), match=message):
        atari.main(argv)
    assert not run_dir.exists()


def test_cli_exits_with_a_message_not_a_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.minatar",
            "--method=stacx",
            "--matching=kl",
            f"--run_dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "error: matching applies to --method=bmg only" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def _run(tmp_path, name, *args):
    run_dir = tmp_path / name
    rows = atari.main(["atari", "--preset=smoke", "--quiet", f"--run_dir={run_dir}", *args])
    return run_dir, rows


def _check_rows(rows, config):
    assert len(rows) == config.num_rows
    per_row = config.updates_per_row * config.frames_per_update
    assert [r["frames"] for r in rows] == [per_row * (i + 1) for i in range(config.num_rows)]
    for row in rows:
        assert len(row["episode_return"]) == len(row["episodes"]) == config.seeds
        for name in HYPERS:
            values = np.asarray(row[name])
            assert values.shape == (config.seeds, config.num_heads)
            assert np.all((values > 0) & (values < BOUNDS[name]))
        assert np.all(np.isfinite(row["meta_loss"]))
    # Episodes end in smoke runs (Breakout's first episodes are short), so returns exist.
    assert sum(sum(r["episodes"]) for r in rows) > 0
    return np.asarray([[r[n] for n in HYPERS] for r in rows])


# One smoke run per family of flag combinations: STACX; BMG with each target optimizer,
# each matching function and L = 1 / L > 1.
FAMILIES = {
    "stacx": ["--method=stacx"],
    "bmg-sgd-l2-L1": [
        "--method=bmg",
        "--target_optimizer=sgd",
        "--matching=l2",
        "--bootstrap_steps=1",
    ],
    "bmg-rmsprop-kl-L2": [
        "--method=bmg",
        "--target_optimizer=rmsprop",
        "--matching=kl",
        "--bootstrap_steps=2",
        "--target_learning_rate=0.001",
    ],
    "bmg-sgd-kl_v-L3": [
        "--method=bmg",
        "--target_optimizer=sgd",
        "--matching=kl_v",
        "--bootstrap_steps=3",
        "--env=space_invaders",
    ],
}


# The STACX and BMG-SGD-L2-L1 runs are also made in the default run by
# test_bmg_sgd_l2_l1_run_is_the_stacx_run; their full checks run with -m slow, as does the
# KL&V family (28 s; the KL family's run covers a BMG flag family in the default run).
_COVERED = ("stacx", "bmg-sgd-l2-L1", "bmg-sgd-kl_v-L3")


@pytest.mark.parametrize(
    "family",
    [pytest.param(f, marks=pytest.mark.slow) if f in _COVERED else f for f in FAMILIES],
)
def test_smoke_run_per_flag_family(tmp_path, family):
    run_dir, rows = _run(tmp_path, family, *FAMILIES[family])
    config = atari.config_from_flags()
    assert runs.read_config(run_dir)["method"] == config.method
    hypers = _check_rows(rows, config)
    # The meta-learned hyperparameters move (every one is learned by default).
    assert np.all(np.abs(hypers[-1] - hypers[0]).max(axis=-1) > 0)
    # Running again leaves a finished run as it is.
    before = (run_dir / runs.METRICS).read_text()
    _run(tmp_path, family, *FAMILIES[family])
    assert (run_dir / runs.METRICS).read_text() == before


def test_unlearned_hyperparameters_stay_fixed(tmp_path):
    _, rows = _run(tmp_path, "mask", "--method=stacx", "--learned=discount")
    agent = make_config(preset="smoke", method="stacx").agent_config()
    initial = {
        "lambda_": agent.initial_lambda,
        "policy_cost": agent.initial_policy_cost,
        "value_cost": agent.initial_value_cost,
        "entropy_cost": agent.initial_entropy_cost,
    }
    for name, value in initial.items():
        values = np.asarray([r[name] for r in rows])
        np.testing.assert_allclose(values, value, rtol=1e-5)
    discounts = np.asarray([r["discount"] for r in rows])
    assert np.abs(discounts - agent.initial_discount).max() > 0  # rows keep 5 decimals


def test_bmg_sgd_l2_l1_run_is_the_stacx_run(tmp_path):
    """The paper's reduction at the level of whole runs: BMG with an SGD target of rate α,
    L2 matching and L = 1 has meta-gradients exactly α times STACX's; Adam (eps 1e-8) is
    invariant to that scale, so the two runs coincide up to float32 rounding."""
    _, stacx_rows = _run(tmp_path, "stacx", *FAMILIES["stacx"])
    _, bmg_rows = _run(tmp_path, "bmg", *FAMILIES["bmg-sgd-l2-L1"], "--target_learning_rate=0.3")
    stacx_h = np.asarray([[r[n] for n in HYPERS] for r in stacx_rows])
    bmg_h = np.asarray([[r[n] for n in HYPERS] for r in bmg_rows])
    initial = stacx_h[0]
    assert np.abs(stacx_h[-1] - initial).max() > 1e-3  # the hyperparameters did move
    np.testing.assert_allclose(bmg_h, stacx_h, atol=2e-4)
    # A KL target is a different meta-objective: it must not reproduce STACX.
    _, kl_rows = _run(tmp_path, "kl", "--method=bmg", "--matching=kl", "--bootstrap_steps=1")
    kl_h = np.asarray([[r[n] for n in HYPERS] for r in kl_rows])
    assert np.abs(kl_h - stacx_h).max() > 1e-3


def test_resume_equals_uninterrupted_run(tmp_path):
    config = make_config(preset="smoke", method="bmg", matching="kl_v", bootstrap_steps=2)
    full = atari_train.train(config, tmp_path / "full")
    part = tmp_path / "part"
    atari_train.train(config, part, stop_after_rows=2)
    with open(part / runs.METRICS, "a") as f:  # a row written after the checkpoint
        f.write(json.dumps({"frames": -1}) + "\n")
    resumed = atari_train.train(config, part)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(full)
    program, _ = atari_train.compiled(config, population.population_sharding(config.seeds))
    template = jax.eval_shape(lambda: atari_train.init_population(program, config))
    a, _, _ = runs.load_checkpoint(tmp_path / "full", template)
    b, _, _ = runs.load_checkpoint(part, template)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_chunk_compiles_once_per_config(tmp_path):
    config = make_config(preset="smoke", method="stacx")
    sharding = population.population_sharding(config.seeds)
    program, chunk = atari_train.compiled(config, sharding)
    states = jax.device_put(atari_train.init_population(program, config), sharding)
    for _ in range(2):
        states, _ = chunk(states)
    assert chunk._cache_size() == 1
    assert atari_train.compiled(config, sharding)[1] is chunk


def test_sweep_lists_the_grid_and_skips_complete_runs(tmp_path, capsys):
    root = tmp_path / "sweep"
    base = ["sweep", f"--root={root}", "--preset=smoke", "--quiet"]
    assert atari_sweep.main([*base, "--dry_run"]) == []
    out = capsys.readouterr().out
    assert "38 runs, 0 complete, 38 to run" in out  # 2 games x (STACX + 2 x 3 x 3)
    assert "space_invaders/bmg-rmsprop-kl_v-L4" in out
    small = [
        *base,
        "--games=breakout",
        "--target_optimizers=sgd",
        "--matchings=l2",
        "--bootstrap_steps=1",
    ]
    assert atari_sweep.main(small) == ["breakout/stacx", "breakout/bmg-sgd-l2-L1"]
    assert atari_sweep.main(small) == []  # everything complete: nothing trains
    assert "2 runs, 2 complete, 0 to run" in capsys.readouterr().out
    config = runs.read_config(root / "breakout/bmg-sgd-l2-L1")
    assert (config["target_optimizer"], config["matching"], config["bootstrap_steps"]) == (
        "sgd",
        "l2",
        1,
    )


def test_sweep_only_and_no_stacx_select_part_of_the_grid(tmp_path, capsys):
    """The shared sweep flags (`experiments.common.sweep.command`): ``--nostacx`` drops the
    baseline, ``--only=I`` keeps the I-th run of the list alone (one cluster task)."""
    base = ["sweep", f"--root={tmp_path / 's'}", "--preset=smoke", "--games=breakout", "--dry_run"]
    atari_sweep.main([*base, "--nostacx", "--bootstrap_steps=1"])
    out = capsys.readouterr().out
    assert "6 runs, 0 complete, 6 to run" in out and "breakout/stacx " not in out
    atari_sweep.main([*base, "--only=1"])
    out = capsys.readouterr().out
    assert "1 run, 0 complete, 1 to run" in out
    assert "breakout/bmg-sgd-l2-L1 " in out  # the list: stacx, then L=1 sgd l2, ...
    with pytest.raises(ValueError, match="the sweep has 19 runs"):
        atari_sweep.main([*base, "--only=19"])


def test_sweep_rmsprop_target_rate_defaults_to_the_inner_rate():
    plan = dict(
        atari_sweep.grid(
            games=["breakout"],
            target_optimizers=["sgd", "rmsprop"],
            matchings=["kl"],
            bootstrap_steps=[2],
            preset="smoke",
            overrides={"learning_rate": 5e-4},
        )
    )
    assert plan["breakout/bmg-rmsprop-kl-L2"].target_learning_rate == 5e-4
    assert plan["breakout/bmg-sgd-kl-L2"].target_learning_rate == 0.1
    assert plan["breakout/stacx"].learning_rate == 5e-4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set=method=bmg"], "decided by the sweep"),
        (["--set=seeds"], "name=value"),
        (["--set=seeds=two"], "seeds needs an? int"),
        (["--set=colour=1"], "unknown setting"),
        (["--matchings=cosine"], "matching must be one of"),
        (["--games=pong"], "--games: unknown MinAtar game 'pong'; choose from breakout"),
        ([], "--root is required"),
    ],
)
def test_sweep_errors(tmp_path, args, message):
    root = [] if not args else [f"--root={tmp_path / 's'}"]
    with pytest.raises(ValueError, match=message):
        atari_sweep.main(["sweep", "--preset=smoke", "--dry_run", *root, *args])
    assert not (tmp_path / "s").exists()


def test_rmsprop_target_rate_defaults_to_the_inner_rate_in_single_runs_too():
    rms = make_config(preset="smoke", method="bmg", target_optimizer="rmsprop", learning_rate=5e-4)
    assert rms.target_learning_rate == 5e-4
    given = make_config(
        preset="smoke", method="bmg", target_optimizer="rmsprop", target_learning_rate=0.01
    )
    assert given.target_learning_rate == 0.01
    assert make_config(preset="smoke", method="bmg").target_learning_rate == 0.1  # SGD


@pytest.mark.slow  # 30 s; the core check is tests/bmg/test_warm_target.py
def test_rmsprop_target_starts_from_the_learners_statistics_by_default():
    """K = L = 1: the target step is taken at z = x^(1), the state the learner continues from,
    so a warm target's second moments are decay·ν(z) + (1 - decay)·g² and an own (cold)
    one's decay·ν_target + (1 - decay)·g², with the same g: they differ by exactly
    decay·(ν(z) - ν_target).
    """
    settings = dict(preset="smoke", method="bmg", target_optimizer="rmsprop", seeds=1)
    assert make_config(**settings).target_statistics == "learner"
    warm = atari_train.build(make_config(**settings))
    cold = atari_train.build(make_config(**settings, target_statistics="own"))
    warm_update, cold_update = jax.jit(warm.update), jax.jit(cold.update)
    state = warm.init(jax.random.PRNGKey(0))
    for _ in range(3):
        state, _ = warm_update(state)
    after_warm, _ = warm_update(state)
    after_cold, _ = cold_update(state)
    decay = make_config(**settings).rmsprop_decay
    z_nu = jax.tree.leaves(after_warm.learner.opt_state)
    jax.tree.map(np.testing.assert_array_equal, after_warm.learner, after_cold.learner)
    before = jax.tree.leaves(state.meta_opt_state.target_opt_state)
    nu_warm = jax.tree.leaves(after_warm.meta_opt_state.target_opt_state)
    nu_cold = jax.tree.leaves(after_cold.meta_opt_state.target_opt_state)
    assert len(z_nu) == len(before) == len(nu_warm) == len(nu_cold) > 0
    for z, b, w, c in zip(z_nu, before, nu_warm, nu_cold, strict=True):
        np.testing.assert_allclose(w - c, decay * (z - b), rtol=1e-4, atol=1e-10)
    # The learner's statistics are not the cold target's: the comparison can fail.
    assert max(float(np.max(np.abs(z - b))) for z, b in zip(z_nu, before, strict=True)) > 1e-8
