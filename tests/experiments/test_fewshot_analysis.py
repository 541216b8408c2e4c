"""Seeds pooled per few-shot setting, and the time to reach MAML's best value, on hand-made
evaluation records with known answers."""

import math

import numpy as np

from experiments.fewshot import analysis


def _run(values, seconds, metric="accuracy"):
    evals = [
        {"step": 10 * i, "train_time_s": t, "mean": v, "metric": metric}
        for i, (v, t) in enumerate(zip(values, seconds, strict=True))
    ]
    return {"evals": evals}


def test_reach_finds_the_first_evaluation_of_the_mean_curve_at_maml_s_final_value():
    maml = [_run([0.2, 0.6, 0.8], [0, 10, 20]), _run([0.2, 0.5, 0.6], [0, 12, 24])]
    # BMG's mean curve: 0.2, 0.75, 0.8; MAML's final (mean) is 0.7, reached by BMG at step
    # 10 after 5 s on average (MAML itself at step 20, after 22 s).
    bmg = [_run([0.2, 0.8, 0.8], [0, 4, 8]), _run([0.2, 0.7, 0.8], [0, 6, 12])]
    slow = [_run([0.2, 0.3, 0.4], [0, 1, 2]), _run([0.2, 0.3, 0.5], [0, 1, 2])]
    out = analysis.reach({"MAML": maml, "BMG": bmg, "slow": slow}, "MAML")
    assert out["MAML"]["target"] == 0.7
    assert (out["MAML"]["steps"], out["MAML"]["seconds"]) == (20, 22)
    assert (out["BMG"]["steps"], out["BMG"]["seconds"]) == (10, 5)
    np.testing.assert_allclose(out["BMG"]["ratio"], 5 / 22)
    assert out["BMG"]["reached"] == 1.0 and out["BMG"]["ratio_ci"][1] < 1
    assert math.isnan(out["slow"]["seconds"]) and out["slow"]["reached"] == 0.0
    assert out["slow"]["seconds_ci"] == (math.inf, math.inf)
    np.testing.assert_allclose(out["slow"]["final"], 0.45)


def test_reach_for_an_error_metric_looks_for_values_at_or_below_the_target():
    maml = [_run([5.0, 1.0, 0.5], [0, 1, 2], "mse"), _run([5.0, 1.0, 0.7], [0, 1, 2], "mse")]
    bmg = [_run([5.0, 0.6, 0.4], [0, 3, 6], "mse"), _run([5.0, 0.6, 0.5], [0, 3, 6], "mse")]
    out = analysis.reach({"MAML": maml, "BMG": bmg}, "MAML")
    assert out["MAML"]["target"] == 0.6 and out["BMG"]["seconds"] == 3


def test_the_target_is_maml_s_best_so_a_late_spike_does_not_make_it_easy():
    maml = [_run([0.2, 0.8, 0.5], [0, 10, 20]), _run([0.2, 0.8, 0.3], [0, 10, 20])]
    bmg = [_run([0.2, 0.6, 0.85], [0, 5, 10]), _run([0.2, 0.6, 0.85], [0, 5, 10])]
    out = analysis.reach({"MAML": maml, "BMG": bmg}, "MAML")
    assert out["MAML"]["target"] == 0.8 and out["MAML"]["seconds"] == 10
    assert out["BMG"]["steps"] == 20 and out["BMG"]["ratio"] == 1.0
    np.testing.assert_allclose(out["MAML"]["final"], 0.4)


def test_a_curve_ends_where_a_seed_diverged_and_the_legend_says_so():
    from experiments.fewshot import plot

    whole = _run([0.2, 0.5, 0.7], [0, 1, 2])
    stopped = {"evals": whole["evals"][:2], "diverged": True}
    steps, _, values = analysis.curve([whole, stopped])
    assert list(steps) == [0, 10] and values.shape == (2, 2)
    assert plot.seeds_text([whole, stopped]) == "2 seeds, 1 diverged"
    assert plot.seeds_text([whole]) == "1 seed"


def test_the_reference_is_the_maml_setting_with_the_best_curve():
    stable = [_run([5.0, 1.0, 0.3], [0, 1, 2], "mse")] * 2
    spiky = [_run([5.0, 0.5, 9.0], [0, 1, 2], "mse")] * 2
    settings = {"MAML": spiky, "MAML clip 10": stable}
    assert analysis.best_setting(settings, ["MAML", "MAML clip 10"]) == "MAML clip 10"
