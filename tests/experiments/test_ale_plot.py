"""The real-ALE figures and tables from run directories (written here, not trained)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from experiments.atari import plot, sweep
from experiments.common import runs
from experiments.envs import ale

GAMES = ("ms_pacman", "breakout")
# Final scores by configuration: STACX, then BMG L = 1, 2, 4 (RMSProp, KL&V), per game.
FINAL = {"ms_pacman": (600.0, 700.0, 800.0, 900.0), "breakout": (10.0, 12.0, 11.0, 15.0)}


def _write(root, name, config, final):
    run = root / name
    run.mkdir(parents=True)
    (run / runs.CONFIG).write_text(json.dumps(dataclasses.asdict(config)))
    frames = np.linspace(config.total_frames / 10, config.total_frames, 10).astype(int)
    rows = [
        {"frames": int(f), "episode_return": None if i == 0 else final * (i + 1) / 10}
        for i, f in enumerate(frames)
    ]
    (run / runs.METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ale")
    plan = sweep.grid(
        seeds=(0, 1),
        games=GAMES,
        target_optimizers=["rmsprop"],
        matchings=["kl_v"],
        bootstrap_steps=[1, 2, 4],
        preset="smoke",
        overrides={},
    )
    assert len(plan) == 2 * 4 * 2
    for i, (name, config) in enumerate(plan):
        game, configuration = name.split("/")[0], i % 8 // 2
        _write(root, name, config, FINAL[game][configuration] + config.seed)  # seeds differ by 1
    return root


def test_the_human_normalised_table_has_the_scores_of_every_cell(root):
    from experiments.minatar import scores

    table = plot.human_table(scores.load_runs(root))
    assert table.count("\n") == 1 + 4  # header, rule, four configurations
    # STACX on Ms. Pac-Man: seeds 600 and 601 -> 600.5 ± 0.5.
    norm = ale.human_normalised("ms_pacman", 600.5)
    assert f"600.5 ± 0.5 ({norm:.3f}), 2 seeds" in table
    assert "BMG RMSProp KL&V L=4" in table


def test_the_figures_are_written(root, tmp_path, capsys):
    plot.main(["experiments.atari.plot", f"--root={root}", f"--out={tmp_path / 'fig'}"])
    for name in ("fig.png", "fig.pdf", "fig_improvement.png", "fig_improvement.pdf"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_the_left_panel_is_the_median_over_games_of_human_normalised_scores(root):
    from experiments.minatar import scores

    norm = plot.human_normalised(scores.load_runs(root))
    stacx = {g: ale.human_normalised(g, FINAL[g][0] + 0.5) for g in GAMES}  # seeds +0, +1
    assert norm["stacx"] == pytest.approx(stacx)
    bmg_l4 = [ale.human_normalised(g, FINAL[g][3] + 0.5) for g in GAMES]
    assert np.median(list(norm["rmsprop", "kl_v", 4].values())) == pytest.approx(np.median(bmg_l4))


def test_the_improvement_is_the_difference_of_human_normalised_scores(root):
    from experiments.minatar import scores

    loaded = scores.load_runs(root)
    gains = plot.improvement(loaded, ("rmsprop", "kl_v", 4))
    for game in GAMES:
        stacx, bmg = FINAL[game][0] + 0.5, FINAL[game][3] + 0.5  # seed means
        expected = 100 * (ale.human_normalised(game, bmg) - ale.human_normalised(game, stacx))
        assert gains[game] == pytest.approx(expected)
    assert plot.best_config(loaded) == ("rmsprop", "kl_v", 4)
    # A STACX below the random policy (Breakout's 1.7) flips no sign: the unit is human - random.
    frames, line, low, high = plot.training_curves(loaded, ("rmsprop", "kl_v", 4), smooth=1)
    assert frames[-1] == max(r.frames[-1] for r in loaded)
    assert np.all(low[1:] <= line[1:] + 1e-12) and np.all(line[1:] <= high[1:] + 1e-12)


def test_the_aggregates_over_games_are_of_the_human_normalised_seed_scores(root):
    from experiments.common import stats
    from experiments.minatar import scores

    loaded = scores.load_runs(root)
    matrix = plot.score_matrices(loaded)[("rmsprop", "kl_v", 4)]
    games = scores.games(loaded)  # the matrix's column order
    assert sorted(games) == sorted(GAMES)
    expected = [[ale.human_normalised(g, FINAL[g][3] + s) for g in games] for s in (0, 1)]
    np.testing.assert_allclose(matrix, expected)  # [seeds, games]
    table = plot.aggregate_table(loaded)
    assert table.count("\n") == 1 + 4
    point = stats.median_of_means(matrix)
    assert f"| BMG RMSProp KL&V L=4 | {point:.3f} [" in table and "| 2 x 2 |" in table


def test_a_wider_final_window_averages_more_rows(root, tmp_path, capsys):
    # Rows at 10%, ..., 100% of the frames return 0.1, ..., 1.0 x the final score: the last
    # half of the frames is rows 6-10, whose mean is 0.8 x it.
    args = [f"--root={root}", f"--out={tmp_path / 'fig'}", "--final_fraction=0.5"]
    plot.main(["experiments.atari.plot", *args])
    printed = capsys.readouterr().out
    assert "the last 50% of frames" in printed
    assert f"{0.8 * 600.5:,.1f} ± {0.8 * 0.5:,.1f}" in printed
