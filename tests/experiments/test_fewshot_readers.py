"""Tests of the Omniglot and mini-ImageNet readers on tiny fixtures written here."""

import os

import numpy as np
import pytest
from PIL import Image

from experiments.fewshot.data import miniimagenet, omniglot
from experiments.fewshot.data.episodes import DataError


def _image(path, value, *, size, mode):
    """A tiny image whose left half is ``value`` and right half 255 - value."""
    channels = 1 if mode == "L" else 3
    array = np.full((size, size, channels), value, np.uint8)
    array[:, size // 2 :] = 255 - value
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array[..., 0] if mode == "L" else array, mode).save(path)


def write_omniglot(root, *, alphabets=None, per_character=4, size=10):
    """``root/images_{background,evaluation}/<alphabet>/<character>/*.png`` fixtures."""
    alphabets = alphabets or {
        "images_background": {"Alpha": 2, "Beta": 2},
        "images_evaluation": {"Gamma": 2},
    }
    value = 0
    for split, by_alphabet in alphabets.items():
        for alphabet, characters in by_alphabet.items():
            for c in range(characters):
                for i in range(per_character):
                    value = (value + 7) % 256
                    path = os.path.join(root, split, alphabet, f"character{c + 1:02d}", f"{i}.png")
                    _image(path, value, size=size, mode="L")
    return str(root)


def write_miniimagenet(root, *, layout, per_class=4, size=12):
    """The class-folder or the csv layout with 3 classes per split."""
    splits = {"train": ["n01", "n02", "n03"], "val": ["n04", "n05", "n06"],
              "test": ["n07", "n08", "n09"]}  # fmt: skip
    value = 0
    for split, classes in splits.items():
        rows = ["filename,label"]
        for label in classes:
            for i in range(per_class):
                value = (value + 11) % 256
                if layout == "folders":
                    path = os.path.join(root, split, label, f"{label}_{i}.jpg")
                else:
                    path = os.path.join(root, "images", f"{label}{i:08d}.jpg")
                    rows.append(f"{os.path.basename(path)},{label}")
                _image(path, value, size=size, mode="RGB")
        if layout == "csv":
            with open(os.path.join(root, f"{split}.csv"), "w") as f:
                f.write("\n".join(rows) + "\n")
    return str(root)


def test_omniglot_reads_the_standard_layout(tmp_path):
    root = write_omniglot(tmp_path)
    split = omniglot.load_split(root, image_size=6, rotations=False)
    assert split.train.shape == (4, 4, 6, 6, 1) and split.train.dtype == np.uint8
    assert split.test.shape == (2, 4, 6, 6, 1)
    assert split.train_names[0] == "Alpha/character01"
    assert not set(split.train_names) & set(split.test_names)
    # Inverted: the first image is 0 on the left (255 after inversion) and 255 on the right.
    first = split.train[0, 0, :, :, 0]
    assert first[:, 0].min() > first[:, -1].max()


def test_omniglot_rotations_are_new_classes(tmp_path):
    split = omniglot.load_split(write_omniglot(tmp_path), image_size=6, rotations=True)
    assert split.train.shape[0] == 16 and split.test.shape[0] == 8
    np.testing.assert_array_equal(split.train[4], np.rot90(split.train[0], k=1, axes=(1, 2)))
    assert split.train_names[4] == "Alpha/character01@90"
    assert len(set(split.train_names)) == 16


@pytest.mark.parametrize("layout", ["folders", "csv"])
def test_miniimagenet_reads_both_layouts(tmp_path, layout):
    root = write_miniimagenet(tmp_path, layout=layout)
    split = miniimagenet.load_split(root, image_size=8)
    assert split.train.shape == (3, 4, 8, 8, 3) and split.test.shape == (3, 4, 8, 8, 3)
    assert split.train_names == ("n01", "n02", "n03")
    assert split.test_names == ("n07", "n08", "n09")
    val = miniimagenet.load_split(root, image_size=8, eval_split="val")
    assert val.test_names == ("n04", "n05", "n06")


def test_the_two_miniimagenet_layouts_give_the_same_arrays(tmp_path):
    a = miniimagenet.load_split(write_miniimagenet(tmp_path / "a", layout="folders"), image_size=8)
    b = miniimagenet.load_split(write_miniimagenet(tmp_path / "b", layout="csv"), image_size=8)
    np.testing.assert_array_equal(a.train, b.train)


def test_missing_data_gives_clear_errors(tmp_path):
    with pytest.raises(DataError, match="images_background"):
        omniglot.load_split(str(tmp_path / "nowhere"))
    only_background = write_omniglot(tmp_path / "o", alphabets={"images_background": {"A": 1}})
    with pytest.raises(DataError, match="images_evaluation.*missing"):
        omniglot.load_split(only_background)
    with pytest.raises(DataError, match="nothing is downloaded"):
        miniimagenet.load_split(str(tmp_path / "nowhere"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match="no mini-ImageNet layout"):
        miniimagenet.load_split(str(tmp_path / "empty"))


def test_malformed_data_gives_clear_errors(tmp_path):
    root = write_omniglot(tmp_path / "o")
    os.makedirs(os.path.join(root, "images_evaluation", "Gamma", "character09"))
    with pytest.raises(DataError, match="without PNG images.*character09"):
        omniglot.load_split(root)
    root = write_omniglot(tmp_path / "p")
    bad = os.path.join(root, "images_background", "Alpha", "character01", "0.png")
    with open(bad, "wb") as f:
        f.write(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*0.png"):
        omniglot.load_split(root)

    root = write_miniimagenet(tmp_path / "m", layout="csv")
    with open(os.path.join(root, "test.csv"), "a") as f:
        f.write("missing.jpg,n07\n")
    with pytest.raises(DataError, match="missing.jpg"):
        miniimagenet.load_split(root)
    with open(os.path.join(root, "train.csv"), "w") as f:
        f.write("file,class\n")
    with pytest.raises(DataError, match="filename,label"):
        miniimagenet.load_split(root)
    root = write_miniimagenet(tmp_path / "n", layout="folders")
    os.rename(os.path.join(root, "test", "n07"), os.path.join(root, "test", "n01"))
    with pytest.raises(DataError, match="both train and test"):
        miniimagenet.load_split(root)
