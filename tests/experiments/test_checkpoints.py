"""Checkpoints on orbax: exact round trips, the last two kept, a damaged newest one skipped
with a warning, the pre-orbax ``checkpoint.npz`` still read, and a resumed run that fell back
ending with the numbers of an uninterrupted one."""

import shutil

import numpy as np
import pytest

from experiments.common import checkpoints, runs
from experiments.two_colors import train as two_colors_train
from experiments.two_colors.config import make_config


def _state(scale):
    return {
        "params": np.linspace(0, 1, 6).reshape(2, 3) * scale,  # float64 stays float64
        "key": np.array([7, 2**32 - 1], np.uint32),
        "count": np.asarray(np.int32(scale)),
        "done": np.array([True, False]),
    }


def _damage(step_dir):
    for item in step_dir.rglob("*"):
        if item.is_file():
            item.write_bytes(b"")


def test_round_trip_is_exact_and_keeps_the_last_two(tmp_path):
    for step in (1, 2, 3):
        checkpoints.save(tmp_path, step, _state(step), {"progress": step, "note": "x"})
    assert sorted(p.name for p in (tmp_path / checkpoints.DIR).iterdir()) == ["2", "3"]
    loaded = checkpoints.load(tmp_path, ("progress",))
    assert (loaded.step, loaded.meta) == (3, {"progress": 3, "note": "x"})
    restored = checkpoints.fit(loaded, _state(0))
    for name, value in _state(3).items():
        assert restored[name].dtype == value.dtype
        np.testing.assert_array_equal(restored[name], value)


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_with_one_warning(tmp_path, capsys):
    for step in (1, 2):
        checkpoints.save(tmp_path, step, _state(step), {"progress": step})
    _damage(tmp_path / checkpoints.DIR / "2")
    loaded = checkpoints.load(tmp_path)
    assert loaded.step == 1
    np.testing.assert_array_equal(checkpoints.fit(loaded, _state(0))["params"], _state(1)["params"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "checkpoints/2 cannot be read; resuming from" in err[0]
    # Saving that step again replaces the damaged one.
    checkpoints.save(tmp_path, 2, _state(2), {"progress": 2})
    assert checkpoints.load(tmp_path).step == 2
    assert capsys.readouterr().err == ""


def test_no_readable_checkpoint_is_an_error_and_none_is_none(tmp_path):
    assert checkpoints.load(tmp_path) is None
    assert not checkpoints.exists(tmp_path)
    checkpoints.save(tmp_path, 1, _state(1), {"progress": 1})
    assert checkpoints.exists(tmp_path)
    _damage(tmp_path / checkpoints.DIR / "1")
    with pytest.raises(runs.RunDirError, match="no checkpoint in .* can be read"):
        checkpoints.load(tmp_path)


def test_foreign_checkpoints_are_refused(tmp_path):
    checkpoints.save(tmp_path, 1, _state(1), {"epoch": 1})
    with pytest.raises(runs.RunDirError, match="it has no progress"):
        checkpoints.load(tmp_path, ("progress",))
    loaded = checkpoints.load(tmp_path)
    with pytest.raises(runs.RunDirError, match="structure"):
        checkpoints.fit(loaded, {"x": np.zeros(3)} | _state(0))  # five leaves, not four
    other = _state(0) | {"count": np.float32(0)}  # the leaves sort as count, done, key, params
    with pytest.raises(runs.RunDirError, match=r"leaf 0 is int32\[\], expected float32\[\]"):
        checkpoints.fit(loaded, other)


def test_the_pre_orbax_npz_is_read_and_replaced_at_the_first_save(tmp_path):
    leaves = [_state(1)[k] for k in sorted(_state(1))]
    np.savez(
        tmp_path / checkpoints.LEGACY,
        progress=4,
        metric_rows=4,
        **{f"leaf_{i}": x for i, x in enumerate(leaves)},  # the few-shot names: leaf_0, leaf_1
    )
    loaded = checkpoints.load(tmp_path, ("progress", "metric_rows"))
    assert loaded.meta == {"progress": 4, "metric_rows": 4}
    np.testing.assert_array_equal(checkpoints.fit(loaded, _state(0))["key"], _state(1)["key"])
    checkpoints.save(tmp_path, 5, _state(5), {"progress": 5})
    assert not (tmp_path / checkpoints.LEGACY).exists()
    assert checkpoints.load(tmp_path).step == 5


def test_a_run_resumed_from_the_fallback_checkpoint_ends_like_an_uninterrupted_one(
    tmp_path, capsys
):
    config = make_config(preset="smoke", method="a2c", total_steps=1024, checkpoint_every=3)
    full = two_colors_train.train(config, tmp_path / "full")
    shutil.copytree(tmp_path / "full", tmp_path / "cut")
    steps = sorted(int(p.name) for p in (tmp_path / "cut" / checkpoints.DIR).iterdir())
    assert steps == [6, 8]
    _damage(tmp_path / "cut" / checkpoints.DIR / "8")
    capsys.readouterr()
    resumed = two_colors_train.train(config, tmp_path / "cut")
    assert "resuming from" in capsys.readouterr().err
    assert len(runs.read_metrics(tmp_path / "cut")) == len(full) == 8

    def numbers(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert numbers(resumed) == numbers(full)
