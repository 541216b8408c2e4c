"""The two-colors experiment: configs and flags, smoke runs, resume, recompilation, plots."""

import dataclasses
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.common import population, runs
from experiments.two_colors import __main__ as two_colors
from experiments.two_colors import analysis as two_colors_analysis
from experiments.two_colors import plot
from experiments.two_colors import train as two_colors_train
from experiments.two_colors.config import METHODS, PRESETS, TwoColorsConfig, make_config


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("method", METHODS)
def test_presets_are_valid(preset, method):
    config = make_config(preset=preset, method=method)
    assert config.method == method
    assert config.num_rows * config.updates_per_row * config.env_steps_per_update >= (
        config.total_steps
    )


def test_paper_preset_values():
    bmg_cfg = make_config(preset="paper", method="bmg")
    mg_cfg = make_config(preset="paper", method="mg")
    assert (bmg_cfg.num_inner_steps, bmg_cfg.bootstrap_steps) == (7, 9)
    assert mg_cfg.num_inner_steps == 7 + 9 - 1  # MG unrolls as far as BMG's target reaches
    assert bmg_cfg.seeds == mg_cfg.seeds == 50
    assert bmg_cfg.env_steps_per_update == mg_cfg.env_steps_per_update == 256


@pytest.mark.parametrize("preset", ["paper", "lifetime", "quick"])
def test_full_size_presets_clip_each_method_at_its_largest_norm_without_a_collapse(preset):
    norms = {m: make_config(preset=preset, method=m).max_grad_norm for m in ("a2c", "mg", "bmg")}
    assert norms == {"a2c": 5.0, "mg": 5.0, "bmg": 10.0}
    assert make_config(preset=preset, method="mg", max_grad_norm=0.0).max_grad_norm == 0.0


@pytest.mark.parametrize("preset", ["paper", "lifetime", "quick"])
def test_full_size_presets_give_each_q_learner_its_best_pilot_settings(preset):
    configs = {m: make_config(preset=preset, method=m) for m in ("q", "q_bmg")}
    got = {m: (c.rollout_length, c.discount, c.epsilon) for m, c in configs.items()}
    assert got == {"q": (4, 0.9, 0.4), "q_bmg": (4, 0.9, 0.3)}
    assert make_config(preset=preset, method="q", rollout_length=16).rollout_length == 16
    assert make_config(preset=preset, method="a2c").discount == 0.99  # the paper's, unchanged


@pytest.mark.parametrize(
    ("method", "overrides", "message"),
    [
        ("mg", {"bootstrap_steps": 3}, "bootstrap_steps applies to --method=bmg/q_bmg only"),
        ("a2c", {"num_inner_steps": 3}, "num_inner_steps applies to --method=mg/bmg/q_bmg only"),
        ("a2c", {"matching": "kl"}, "matching applies"),
        ("bmg", {"matching": "cosine"}, "matching must be one of"),
        ("bmg", {"seeds": 0}, "seeds must be an integer >= 1"),
        ("bmg", {"entropy_weight": 1.5}, r"must be in \(0, 1\)"),
        ("bmg", {"discount": 1.2}, "discount must be in"),
        ("bmg", {"learning_rate": -0.1}, "learning_rate must be > 0"),
        ("bmg", {"colour": 1}, "unknown two-colors setting"),
        ("a2c", {"epsilon": 0.3}, "epsilon applies to --method=q/q_bmg only"),
        ("q", {"value_cost": 1.0}, "value_cost applies to --method=a2c/mg/bmg only"),
        ("q", {"epsilon": 1.5}, r"epsilon must be in \[0, 1\]"),
        ("q_bmg", {"num_inner_steps": 1}, "q_bmg meta-learns ε with K = 0"),
        ("q_bmg", {"bootstrap_steps": 1}, "bootstrap_steps must be >= 2"),
        ("q_bmg", {"matching": "l2"}, "matching must be kl"),
        ("q_bmg", {"epsilon": 0.0}, r"initial ε\) must be in \(0, 1\)"),
        ("bmg", {"num_inner_steps": 0}, "num_inner_steps must be an integer >= 1 for bmg"),
        ("q_bmg", {"num_inner_steps": -1}, "num_inner_steps must be an integer >= 0"),
    ],
)
def test_invalid_settings_are_clear_errors(method, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_config(preset="smoke", method=method, **overrides)


def test_cli_rejects_a_bad_flag_combination_without_running(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.two_colors",
            "--method=mg",
            "--bootstrap_steps=4",
            f"--run_dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2  # a usage error
    assert "bootstrap_steps applies to --method=bmg/q_bmg only" in result.stderr
    assert not (tmp_path / "run").exists()


def test_cli_requires_a_run_dir():
    result = subprocess.run(
        [sys.executable, "-m", "experiments.two_colors", "--preset=smoke"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "--run_dir is required" in result.stderr


def _numbers(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("method", METHODS)
def test_smoke_run_of_main(method, tmp_path, capsys):
    run_dir = tmp_path / method
    argv = ["two_colors", f"--method={method}", "--preset=smoke", f"--run_dir={run_dir}", "--quiet"]
    two_colors.main(argv)
    config = runs.read_config(run_dir)
    rows = runs.read_metrics(run_dir)
    smoke = make_config(preset="smoke", method=method)
    assert config["method"] == method and config["seeds"] == smoke.seeds
    assert len(rows) == smoke.num_rows
    assert [r["env_steps"] for r in rows] == [
        (i + 1) * smoke.updates_per_row * smoke.env_steps_per_update for i in range(len(rows))
    ]
    for row in rows:
        assert len(row["reward_per_step"]) == smoke.seeds
        assert all(0.0 < h <= np.log(4) + 1e-6 for h in row["entropy"])
    # A stuck agent (a NaN policy's argmax is action 0: it walks into the top wall for ever)
    # earns exactly the step cost in every row; a live one collects objects now and then.
    r = np.array([row["reward_per_step"] for row in rows])
    assert np.all(np.any(np.abs(r - smoke.step_reward) > 1e-6, axis=0))
    final = np.array(rows[-1]["cumulative_reward"])
    per_row = (
        np.array([r["reward_per_step"] for r in rows])
        * np.diff([0] + [r["env_steps"] for r in rows])[:, None]
    )
    np.testing.assert_allclose(final, per_row.sum(axis=0), atol=1e-3)
    eps = np.array([r["entropy_weight"] for r in rows])
    if method in ("a2c", "q"):
        fixed = smoke.entropy_weight if method == "a2c" else smoke.epsilon
        np.testing.assert_allclose(eps, fixed, rtol=1e-6)
    else:
        assert np.all((eps > 0) & (eps < 1))
        assert np.any(np.array([r["meta_loss"] for r in rows]) != 0)
    assert "mean total return" in capsys.readouterr().out
    # The same flags again: the run is complete, nothing changes (not a byte).
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    two_colors.main(argv)
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    assert _numbers(runs.read_metrics(run_dir)) == _numbers(rows)


@pytest.mark.parametrize("method", ["bmg", "q_bmg"])
def test_resume_gives_exactly_the_numbers_of_an_uninterrupted_run(method, tmp_path):
    config = make_config(preset="smoke", method=method, total_steps=1024)
    full = two_colors_train.train(config, tmp_path / "full")
    assert len(full) == config.num_rows >= 6
    partial = two_colors_train.train(config, tmp_path / "cut", stop_after_rows=3)
    assert len(partial) == 3
    # Rows written after the last checkpoint of a crashed run are dropped on resume.
    runs.append_metrics(tmp_path / "cut", [{"env_steps": -1, "junk": True}])
    resumed = two_colors_train.train(config, tmp_path / "cut")
    assert _numbers(resumed) == _numbers(full)
    template = (
        jax.eval_shape(
            lambda: two_colors_train.init_population(two_colors_train.build(config), config)
        ),
        jax.ShapeDtypeStruct((config.seeds,), np.float64),
    )
    a, _, _ = runs.load_checkpoint(tmp_path / "full", template)
    b, _, _ = runs.load_checkpoint(tmp_path / "cut", template)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_a_run_dir_with_another_config_is_refused(tmp_path):
    runs.prepare(tmp_path, make_config(preset="smoke", method="bmg"))
    with pytest.raises(runs.RunDirError, match="another config"):
        runs.prepare(tmp_path, make_config(preset="smoke", method="bmg", seed=3))


def test_a_setting_added_later_at_its_default_does_not_block_resuming(tmp_path):
    config = make_config(preset="smoke", method="bmg")
    runs.prepare(tmp_path, config)
    stored = json.loads((tmp_path / "config.json").read_text())
    del stored["epsilon_meta"], stored["epsilon"]  # as written before the Q-learners existed
    (tmp_path / "config.json").write_text(json.dumps(stored))
    assert runs.check_config(tmp_path, config)
    with pytest.raises(runs.RunDirError, match=r"differs in \['epsilon'\]"):
        runs.check_config(tmp_path, dataclasses.replace(config, epsilon=0.5))


@pytest.mark.slow  # 50 s; run with -m slow
def test_chunk_compiles_once_and_seeds_do_not_depend_on_population_size():
    config = make_config(preset="smoke", method="bmg")
    sharding = population.population_sharding(config.seeds)
    program, chunk = two_colors_train.compiled(config, sharding)
    states = jax.device_put(two_colors_train.init_population(program, config), sharding)
    states, first = chunk(states)
    states, second = chunk(states)
    assert chunk._cache_size() == 1
    assert not np.array_equal(first.reward, second.reward)
    # Member 1 of a population of 2 is the seed-1 member of any population.
    one = TwoColorsConfig(**{**config.__dict__, "seeds": 3})
    program3, chunk3 = two_colors_train.compiled(one, population.population_sharding(3))
    states3 = two_colors_train.init_population(program3, one)
    _, first3 = chunk3(jax.device_put(states3, population.population_sharding(3)))
    np.testing.assert_allclose(first3.reward[:, :2], first.reward, rtol=1e-6, atol=1e-6)


def test_population_is_sharded_over_devices():
    assert jax.device_count() == 2  # tests/conftest.py asks for two CPU devices
    assert population.population_sharding(50).mesh.size == 2
    assert population.population_sharding(7).mesh.size == 1  # 7 seeds do not split in two
    assert population.population_sharding(50, max_devices=1).mesh.size == 1
    with pytest.raises(ValueError, match="at least one member"):
        population.population_sharding(0)


def test_plot_from_run_dirs(tmp_path):
    dirs = []
    for method in ("a2c", "bmg"):
        config = make_config(preset="smoke", method=method)
        two_colors_train.train(config, tmp_path / method)
        dirs.append(str(tmp_path / method))
    out = tmp_path / "figs" / "two_colors"
    saved = tmp_path / "summaries"
    plot.main(["plot", f"--run_dirs={','.join(dirs)}", f"--out={out}", f"--save_summaries={saved}"])
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert out.with_suffix(".pdf").stat().st_size > 1_000
    table = two_colors_analysis.table([two_colors_analysis.Run(d) for d in dirs])
    assert "| A2C | 2 |" in table and "| BMG | 2 |" in table
    # The summaries redraw the figure and give the same table without the run directories.
    summaries = [str(saved / "a2c.npz"), str(saved / "bmg.npz")]
    assert table == two_colors_analysis.table([two_colors_analysis.Run(s) for s in summaries])
    again = tmp_path / "again"
    plot.main(["plot", f"--run_dirs={','.join(summaries)}", f"--out={again}"])
    assert again.with_suffix(".png").stat().st_size > 10_000
    json.loads((tmp_path / "bmg" / "config.json").read_text())


def test_a_run_directory_held_by_another_writer_gets_no_config(tmp_path):
    with runs.lock(tmp_path):  # flock: a second open file conflicts even in one process
        with pytest.raises(runs.RunDirError, match="another process"):
            two_colors_train.train(make_config(preset="smoke", method="a2c"), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


def test_two_processes_cannot_write_one_run(tmp_path):
    runs.prepare(tmp_path, make_config(preset="smoke", method="a2c"))
    with runs.lock(tmp_path):
        code = (
            "import sys; from pathlib import Path; from experiments.common import runs\n"
            "try:\n    runs.lock(Path(sys.argv[1]))\nexcept runs.RunDirError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 3 and "another process is writing" in result.stdout
    with runs.lock(tmp_path):  # released: it can be taken again
        pass
