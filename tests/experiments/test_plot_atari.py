"""The MinAtar ablation plots: final scores, normalisation, improvement, table, figures, CLI.

Synthetic run directories: two games, STACX and three BMG configurations, 2 seeds, 5 rows at
frames 100..500. With ``final_fraction=0.4`` the final window is the rows at 400 and 500 (the
row at 300 is just outside it and holds decoys); random scores are breakout 1, asterix 2.
"""

import json

import numpy as np
import pytest

from experiments.common import cli, runs
from experiments.envs import minatar
from experiments.minatar import plot as plot_atari
from experiments.minatar import scores

N = None
RANDOM = {"breakout": 1.0, "asterix": 2.0}
KL_V4, KL_V2, L2_1 = ("rmsprop", "kl_v", 4), ("rmsprop", "kl_v", 2), ("sgd", "l2", 1)
# (game, configuration) -> per row [seed 0, seed 1]; the last two rows are the final window.
RETURNS = {
    ("breakout", "stacx"): [[N, N], [0, 1], [100, 100], [3, N], [5, 6]],  # final 4, 6
    ("breakout", KL_V4): [[N, 0], [1, 1], [100, N], [9, 7], [9, N]],  # final 9, 7
    ("breakout", KL_V2): [[0, 0], [N, N], [0, 0], [6, 6], [6, 6]],  # final 6, 6
    ("breakout", L2_1): [[N, N], [1, 1], [-50, -50], [4, 2], [4, 2]],  # final 4, 2
    ("asterix", "stacx"): [[1, 1], [2, 2], [50, 50], [12, 10], [12, 10]],  # final 12, 10
    ("asterix", KL_V4): [[N, N], [3, 3], [N, N], [20, 20], [20, 20]],  # final 20, 20
    ("asterix", L2_1): [[2, 2], [2, N], [9, 9], [2, 2], [2, 2]],  # final 2, 2 (= random)
}


def write_run(path, game, key, returns):
    opt, matching, steps = ("sgd", "l2", 1) if key == "stacx" else key
    config = {
        "env": game,
        "method": "stacx" if key == "stacx" else "bmg",
        "target_optimizer": opt,
        "matching": matching,
        "bootstrap_steps": steps,
        "seeds": 2,
        "total_frames": 100 * len(returns),
    }
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    rows = [
        {"frames": 100 * (i + 1), "episode_return": r, "episodes": [int(x is not None) for x in r]}
        for i, r in enumerate(returns)
    ]
    (path / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(minatar, "RANDOM_SCORES", RANDOM)
    for i, ((game, key), returns) in enumerate(RETURNS.items()):
        name = "stacx" if key == "stacx" else "_".join(map(str, key))
        write_run(tmp_path / "atari" / game / f"{i}_{name}", game, key, returns)
    return tmp_path / "atari"


@pytest.fixture
def loaded(root):
    return scores.load_runs(root, final_fraction=0.4)


def test_final_scores_window_and_nulls():
    frames = np.array([100.0, 200, 300, 400, 500])
    returns = np.array([[1, 1], [9, N], [8, 5], [N, N], [2, N]], dtype=float)
    # Last 10%: the last row only (a null there gives NaN).
    np.testing.assert_equal(scores.final_scores(frames, returns), [2.0, np.nan])
    # Last 40%: rows at 400 and 500 (300 = 0.6 * 500 is excluded); nulls are left out.
    np.testing.assert_equal(scores.final_scores(frames, returns, 0.4), [2.0, np.nan])
    np.testing.assert_equal(scores.final_scores(frames, returns, 0.5), [5.0, 5.0])
    np.testing.assert_equal(scores.final_scores(frames, returns, 1e-9), [2.0, np.nan])
    np.testing.assert_equal(scores.final_scores(frames, returns, 1.0), [5.0, 3.0])
    with pytest.raises(ValueError, match="final_fraction"):
        scores.final_scores(frames, returns, 0.0)


def test_load_runs_finds_run_dirs_recursively(root, loaded):
    assert len(loaded) == len(RETURNS)
    (stacx,) = [r for r in loaded if r.game == "breakout" and r.key == "stacx"]
    assert stacx.returns.shape == (5, 2) and np.isnan(stacx.returns[0]).all()
    np.testing.assert_equal(stacx.frames, [100, 200, 300, 400, 500])
    np.testing.assert_equal(stacx.final, [4.0, 6.0])
    (default,) = [r for r in scores.load_runs(root) if r.game == "breakout" and r.key == KL_V4]
    np.testing.assert_equal(default.final, [9.0, np.nan])  # last row only


def test_a_run_without_rows_is_an_error(tmp_path):
    write_run(tmp_path / "run", "breakout", "stacx", [])
    with pytest.raises(runs.RunDirError, match="no metric rows"):
        scores.load_runs(tmp_path)
    with pytest.raises(runs.RunDirError, match="no run directories"):
        scores.load_runs(tmp_path / "nothing")


def test_normalised_scores_are_0_for_random_and_1_for_stacx(loaded):
    norm = scores.normalised_scores(loaded)
    assert norm["stacx"] == pytest.approx({"breakout": 1.0, "asterix": 1.0})
    assert norm[L2_1] == {"breakout": (3 - 1) / (5 - 1), "asterix": 0.0}
    assert norm[KL_V4] == {"breakout": (8 - 1) / 4, "asterix": (20 - 2) / (11 - 2)}
    assert norm[KL_V2] == {"breakout": (6 - 1) / 4}
    medians = scores.median_normalised(loaded)
    assert medians == pytest.approx({"stacx": 1.0, L2_1: 0.25, KL_V4: 1.875, KL_V2: 1.25})
    assert scores.best_config(loaded) == KL_V4
    # Explicit random scores replace RANDOM_SCORES.
    other = scores.normalised_scores(loaded, random_scores={"breakout": 0.0, "asterix": 0.0})
    assert other[L2_1]["asterix"] == 2 / 11


def test_improvement_in_percent_of_stacx_margin(loaded):
    assert scores.improvement(loaded, KL_V4) == {"breakout": 75.0, "asterix": 100.0}
    gains = scores.improvement(loaded, L2_1)
    assert list(gains.items()) == [("asterix", -100.0), ("breakout", -50.0)]  # sorted
    with pytest.raises(ValueError, match="no runs of BMG SGD KL L=2"):
        scores.improvement(loaded, ("sgd", "kl", 2))


def test_missing_stacx_or_random_score_is_a_clear_error(root, loaded, monkeypatch):
    write_run(root / "seaquest_bmg", "seaquest", KL_V4, [[1, 2]])
    with pytest.raises(ValueError, match="no STACX run of seaquest"):
        plot_atari.ablation_figure(scores.load_runs(root), game_for_L="breakout")
    monkeypatch.setattr(minatar, "RANDOM_SCORES", {"breakout": 1.0})
    with pytest.raises(ValueError, match="no random-policy score of asterix"):
        scores.summary_table(loaded)


def test_summary_table(loaded):
    lines = scores.summary_table(loaded).splitlines()
    assert lines[0] == "| configuration | breakout | asterix | median normalised |"
    assert lines[2:] == [
        "| STACX | 5.00 ± 1.00 | 11.00 ± 1.00 | 1.00 |",
        "| BMG SGD L2 L=1 | 3.00 ± 1.00 | 2.00 ± 0.00 | 0.25 |",
        "| BMG RMSProp KL&V L=2 | 6.00 ± 0.00 | – | 1.25 |",
        "| BMG RMSProp KL&V L=4 | 8.00 ± 1.00 | 20.00 ± 0.00 | 1.88 |",
    ]


def test_standardised_groups(loaded):
    groups = scores.standardised_groups(loaded)
    names = ["SGD", "RMSProp", "L2", "KL&V", "L=1", "L=2", "L=4"]
    assert [name for _, name, _ in groups] == names
    assert [family for family, _, _ in groups] == ["optimizer"] * 2 + ["matching"] * 2 + ["L"] * 3
    # Breakout's 8 final scores have mean 5.5 and std 2: KL&V L=2's (6, 6) become 0.25.
    np.testing.assert_allclose(dict((n, v) for _, n, v in groups)["L=2"], [0.25, 0.25])
    assert sum(v.size for _, _, v in groups[:2]) == 10  # all BMG seeds, once per family


def test_ablation_figure_panels(loaded):
    fig = plot_atari.ablation_figure(loaded, game_for_L="breakout")
    left, centre, right = fig.axes
    heights = [bar.get_height() for bar in left.patches]
    assert heights == [0.25, 1.25, 1.875]  # L2 L=1, KL&V L=2, KL&V L=4
    assert [t.get_text() for t in left.get_xticklabels()] == ["L2\nL=1", "KL&V\nL=2", "KL&V\nL=4"]
    lines = {c.get_label(): c.lines[0] for c in centre.containers}
    np.testing.assert_equal(lines["RMSProp KL&V"].get_xdata(), [2, 4])
    np.testing.assert_equal(lines["RMSProp KL&V"].get_ydata(), [6.0, 8.0])
    np.testing.assert_equal(lines["SGD L2"].get_ydata(), [3.0])
    stacx = [line for line in centre.lines if line.get_label() == "STACX"]
    assert stacx[0].get_ydata()[0] == 5.0
    assert len(right.get_xticklabels()) == 7
    # A game without runs still gives a figure.
    fig = plot_atari.ablation_figure(loaded, game_for_L="seaquest")
    assert "no runs of seaquest" in [t.get_text() for t in fig.axes[1].texts]


def test_training_curves_and_improvement_figure(loaded):
    frames, line, low, high = plot_atari.training_curves(loaded, "stacx", smooth=1)
    np.testing.assert_equal(frames, [100, 200, 300, 400, 500])
    # Last row: breakout seeds (5, 6) -> (1, 1.25), asterix seeds (12, 10) -> (10/9, 8/9).
    assert line[-1] == pytest.approx(np.median([1.125, 1.0]))
    assert low[-1] == pytest.approx((1 + 10 / 9) / 2) and high[-1] == pytest.approx(
        (1.25 + 8 / 9) / 2
    )
    _, line2, _, _ = plot_atari.training_curves(loaded, "stacx", smooth=2)
    # Breakout: seed 0 averages rows 4-5 (3, 5), seed 1 has row 5 only (6).
    assert line2[-1] == pytest.approx(np.median([(0.75 + 1.25) / 2, 1.0]))
    fig = plot_atari.improvement_figure(loaded)  # default: the best configuration
    left, right = fig.axes
    assert [bar.get_height() for bar in left.patches] == [75.0, 100.0]
    assert left.get_title() == "BMG RMSProp KL&V L=4 vs STACX"
    assert [line.get_label() for line in right.lines[:2]] == ["STACX", "BMG RMSProp KL&V L=4"]
    fig = plot_atari.improvement_figure(loaded, bmg_config=L2_1)
    assert [bar.get_height() for bar in fig.axes[0].patches] == [-100.0, -50.0]


def test_cli_writes_both_figures_and_prints_the_table(root, tmp_path, capsys):
    out = tmp_path / "figs" / "atari_quick"
    plot_atari.main(["plot", f"--root={root}", f"--out={out}", "--game=asterix"])
    for name in ("atari_quick.png", "atari_quick.pdf"):
        assert (out.parent / name).stat().st_size > 10_000
    for name in ("atari_quick_improvement.png", "atari_quick_improvement.pdf"):
        assert (out.parent / name).stat().st_size > 10_000
    printed = capsys.readouterr().out
    # Default final_fraction 0.1: the last row only (breakout STACX 5, 6; asterix 12, 10).
    assert "| STACX | 5.50 ± 0.50 | 11.00 ± 1.00 | 1.00 |" in printed


def test_cli_final_fraction_sets_the_final_window(root, tmp_path, capsys):
    out = f"--out={tmp_path / 'fig'}"
    plot_atari.main(["plot", f"--root={root}", out, "--game=asterix", "--final_fraction=0.4"])
    # The last two rows (400 and 500 frames): breakout STACX's seeds 4 and 6.
    assert "| STACX | 5.00 ± 1.00 |" in capsys.readouterr().out
    with pytest.raises(cli.UsageError, match=r"--final_fraction must be in \(0, 1\], got 0.0"):
        plot_atari.main(["plot", f"--root={root}", out, "--final_fraction=0"])


def test_cli_needs_a_root_with_runs(root, tmp_path):
    out = f"--out={tmp_path / 'fig'}"
    with pytest.raises(cli.UsageError, match="--root is required"):
        plot_atari.main(["plot", out])
    with pytest.raises(runs.RunDirError, match="no run directories"):
        plot_atari.main(["plot", f"--root={tmp_path / 'empty'}", out])
    assert not (tmp_path / "fig.png").exists()


def test_stacx_only_gives_the_ablation_figure_without_improvement(tmp_path, monkeypatch):
    monkeypatch.setattr(minatar, "RANDOM_SCORES", RANDOM)
    write_run(tmp_path / "runs" / "a", "breakout", "stacx", RETURNS["breakout", "stacx"])
    text = plot_atari.write_figures(tmp_path / "runs", tmp_path / "out" / "fig", game_for_L="x")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fig.pdf", "fig.png"]
    assert text.splitlines()[2] == "| STACX | 5.50 ± 0.50 | 1.00 |"


def test_unfinished_runs_are_left_out_with_a_warning(root):
    partial = root / "breakout" / "partial"
    write_run(partial, "breakout", KL_V4, [[1, 1], [50, 50]])
    config = json.loads((partial / "config.json").read_text())
    (partial / "config.json").write_text(json.dumps({**config, "total_frames": 500}))
    with pytest.warns(UserWarning, match="unfinished"):
        loaded = scores.load_runs(root, final_fraction=0.4)
    assert len(loaded) == len(RETURNS)
    assert all(r.path != str(partial) for r in loaded)


def test_marginals_average_the_cells_of_each_setting(loaded):
    m = scores.marginals(loaded, random_scores=RANDOM)
    # Normalised seed-means: breakout STACX 5 -> unit 4; kl_v4 8 -> 1.75, kl_v2 6 -> 1.25,
    # l2_1 3 -> 0.5; asterix STACX 11 -> unit 9; kl_v4 20 -> 2.0, l2_1 2 -> 0.0.
    assert m["optimizer"] == pytest.approx({"rmsprop": (1.75 + 1.25 + 2.0) / 3, "sgd": 0.25})
    assert m["matching"] == pytest.approx({"kl_v": (1.75 + 1.25 + 2.0) / 3, "l2": 0.25})
    assert m["L"] == pytest.approx({4: 1.875, 2: 1.25, 1: 0.25})
    assert "- L: L=1 0.250" in scores.marginals_table(loaded, random_scores=RANDOM)
