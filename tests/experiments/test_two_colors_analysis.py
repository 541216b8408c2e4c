"""The numbers of the two-colors table, on hand-made metric rows with known answers."""

import json

import numpy as np
import pytest

from experiments.two_colors import analysis as analysis

PERIOD, ROW = 100, 10  # a swap every 100 steps, a metric row every 10


def _run(tmp_path, reward, entropy_weight, entropy=None, *, method="bmg"):
    """A run directory whose rows carry ``reward[rows, seeds]`` etc."""
    reward = np.asarray(reward, float)
    rows, seeds = reward.shape
    config = {"method": method, "swap_period": PERIOD, "entropy_weight": 0.1}
    (tmp_path / "config.json").write_text(json.dumps(config))
    entropy = np.ones_like(reward) if entropy is None else np.asarray(entropy, float)
    cumulative = np.cumsum(reward * ROW, axis=0)
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for i in range(rows):
            row = {
                "env_steps": (i + 1) * ROW,
                "reward_per_step": reward[i].tolist(),
                "cumulative_reward": cumulative[i].tolist(),
                "entropy_weight": np.asarray(entropy_weight, float)[i].tolist(),
                "entropy": entropy[i].tolist(),
            }
            f.write(json.dumps(row) + "\n")
    return analysis.Run(str(tmp_path))


def _swapping_reward(recover_rows):
    """400 steps (40 rows): plateau 0.2; after each swap at 100/200/300, -0.04 for
    ``recover_rows[k]`` rows, then 0.2 again."""
    r = np.full(40, 0.2)
    for k, swap_row in enumerate((10, 20, 30)):
        r[swap_row : swap_row + recover_rows[k]] = -0.04
    return r


def test_recovery_time_late_reward_and_epsilon_around_swaps(tmp_path):
    # Seed 0 is back in the 3rd, 4th and 5th row after the swaps (30, 40, 50 steps). Seed 1
    # in the 2nd row after the swap at 100 (20 steps); it does not recover from the swap at
    # 200 (the whole period, 100) and so has no positive plateau before the swap at 300 (100).
    seed0 = _swapping_reward([2, 3, 4])
    seed1 = _swapping_reward([1, 10, 1])
    reward = np.stack([seed0, seed1], axis=1)
    eps = np.where(np.arange(40)[:, None] % 10 < 2, 0.5, 0.1) * np.ones((1, 2))
    run = _run(tmp_path, reward, eps)
    assert run.last_swaps(300) == [100, 200, 300]
    assert run.last_swaps(200) == [200, 300]
    np.testing.assert_allclose(analysis.recovery_steps(run, window=300, plateau=20), [40, 220 / 3])
    late = analysis.late_reward(run, window=100)  # the last 100 steps: rows 30..39
    np.testing.assert_allclose(late, [(6 * 0.2 - 4 * 0.04) / 10, (9 * 0.2 - 0.04) / 10])
    before, after = analysis.epsilon_around_swaps(run, window=300, plateau=20)
    np.testing.assert_allclose(before, [0.1, 0.1])
    np.testing.assert_allclose(after, [0.5, 0.5])


def test_folded_averages_the_swap_periods_after_the_first(tmp_path):
    # ε is 0.5 in the first row after each swap and 0.1 elsewhere, but 0.9 throughout
    # the first period, which folding leaves out; seed 1 is seed 0 plus 1.
    eps = np.where(np.arange(40) % 10 < 1, 0.5, 0.1)
    eps[:10] = 0.9
    run = _run(tmp_path, np.zeros((40, 2)), np.stack([eps, eps + 1], axis=1))
    offsets, values = analysis.folded(run, run.entropy_weight, width=20)
    np.testing.assert_allclose(offsets, [10, 30, 50, 70, 90])
    np.testing.assert_allclose(values[:, 0], [0.3, 0.1, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(values[:, 1], values[:, 0] + 1)
    _, with_first = analysis.folded(run, run.entropy_weight, width=20, skip=0)
    assert with_first[0, 0] > values[0, 0]
    # Rows of 15 steps: the one from 195 to 210 straddles the swap at 200 and is left out.
    run.steps = np.arange(1, 41) * 15
    run.entropy_weight = np.where(run.starts == 195, 9.0, 0.0)[:, None] * np.ones((1, 2))
    _, values = analysis.folded(run, run.entropy_weight, width=20)
    assert np.nanmax(values) == 0.0


def test_a_seed_without_a_positive_plateau_never_counts_as_recovered(tmp_path):
    reward = np.full((40, 1), -0.04)
    run = _run(tmp_path, reward, np.full((40, 1), 0.1))
    np.testing.assert_allclose(analysis.recovery_steps(run, window=300, plateau=20), [PERIOD])


def test_collapsed_needs_both_low_entropy_and_the_step_cost(tmp_path):
    reward = np.array([[-0.04, -0.04, 0.2]] * 40)
    entropy = np.array([[0.01, 1.0, 0.01]] * 40)
    run = _run(tmp_path, reward, np.full((40, 3), 0.1), entropy)
    assert analysis.collapsed(run, window=100).tolist() == [True, False, False]


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_seeds():
    rng = np.random.default_rng(1)
    few, many = rng.normal(size=5), rng.normal(size=500)
    mean, low, high = analysis.bootstrap_ci(few)
    assert low < mean < high and mean == pytest.approx(few.mean())
    _, low_many, high_many = analysis.bootstrap_ci(many)
    assert high_many - low_many < high - low
    assert analysis.bootstrap_ci(few) == analysis.bootstrap_ci(few)  # seeded


def test_table_lists_every_method_beside_the_replication(tmp_path):
    reward = np.stack([_swapping_reward([2, 3, 4])] * 2, axis=1)
    dirs = []
    for method in ("a2c", "bmg"):
        (tmp_path / method).mkdir()
        dirs.append(_run(tmp_path / method, reward, np.full((40, 2), 0.1), method=method))
    table = analysis.table(dirs, window=300, plateau=20)
    assert "| A2C | 2 | 400 |" in table and "| BMG | 2 | 400 |" in table
    assert "≈ +960,000" in table and "0.1 (fixed)" in table


def test_two_runs_of_one_method_get_different_colours():
    from types import SimpleNamespace

    from experiments.two_colors import plot

    runs_ = [
        SimpleNamespace(method="a2c", label="A2C"),
        SimpleNamespace(method="a2c", label="A2C, clipped"),
        SimpleNamespace(method="bmg", label="BMG"),
    ]
    colors = plot._colors(runs_)
    assert colors["A2C"] == plot.COLORS["a2c"] and colors["BMG"] == plot.COLORS["bmg"]
    assert colors["A2C, clipped"] not in (colors["A2C"], colors["BMG"])


def test_a_summary_gives_the_same_arrays_and_table_as_its_run_directory(tmp_path):
    reward = np.stack([_swapping_reward([2, 3, 4]), _swapping_reward([1, 9, 2])], axis=1)
    eps = np.linspace(0.05, 0.4, 80).reshape(40, 2)
    (tmp_path / "run").mkdir()
    run = _run(tmp_path / "run", reward, eps, np.full((40, 2), 0.7), method="mg")
    run.label = "MG clip 5"
    path = run.save_summary(tmp_path / "summaries" / "mg.npz")
    loaded = analysis.Run(path)
    assert loaded.label == "MG clip 5" and loaded.config == run.config
    np.testing.assert_array_equal(loaded.steps, run.steps)
    np.testing.assert_array_equal(loaded.total_return, run.total_return)
    for name in ("reward_per_step", "entropy_weight", "entropy"):
        np.testing.assert_allclose(getattr(loaded, name), getattr(run, name), rtol=1e-7)
    assert analysis.table([loaded], window=300, plateau=20) == analysis.table(
        [run], window=300, plateau=20
    )
    assert analysis.Run(path, "other").label == "other"


@pytest.mark.parametrize("content", [b"", b"not a zip", None])
def test_an_unreadable_summary_is_one_run_dir_error(tmp_path, content):
    path = tmp_path / "s.npz"
    if content is None:  # a valid npz without the summary's arrays
        np.savez(path, steps=np.arange(3))
    else:
        path.write_bytes(content)
    with pytest.raises(analysis.runs.RunDirError, match="not a two-colors run summary"):
        analysis.Run(path)
    with pytest.raises(analysis.runs.RunDirError, match="no such summary file"):
        analysis.Run(tmp_path / "missing.npz")


def test_summary_names_are_ascii_file_names():
    from experiments.two_colors.plot import summary_name

    assert summary_name("BMG clip 10") == "bmg_clip_10.npz"
    assert summary_name("Q(λ) ε 0.4") == "q_lambda_eps_0_4.npz"
    assert summary_name("Q(λ)-BMG") == "q_lambda_bmg.npz"
    assert summary_name("λ") == "lambda.npz" and summary_name("???") == "run.npz"
