"""Omniglot (Lake et al. 2015) from a local directory; nothing is downloaded.

Accepted layout (the official ``images_background.zip`` and ``images_evaluation.zip``,
unzipped side by side)::

    data_dir/images_background/<alphabet>/<character>/*.png    meta-train (964 characters)
    data_dir/images_evaluation/<alphabet>/<character>/*.png    meta-test  (659 characters)

Every character is a class. The split is the background/evaluation split of Lake et al.: the
meta-test alphabets are disjoint from the meta-train ones. Images are converted to grey,
resized (28x28 by default, as in MAML) and inverted so that strokes are bright on black. With
``rotations`` the 90/180/270-degree rotations become new classes in both splits (Santoro et al.
2016; Finn et al. 2017).
"""

from __future__ import annotations

import os

from experiments.fewshot.data import image_folders
from experiments.fewshot.data.episodes import ClassSplit, DataError, with_rotations

SPLITS = {"train": "images_background", "test": "images_evaluation"}

LAYOUT = (
    "expected <data_dir>/images_background/<alphabet>/<character>/*.png and "
    "<data_dir>/images_evaluation/<alphabet>/<character>/*.png (the official Omniglot zips, "
    "unzipped); nothing is downloaded"
)


def _characters(root: str) -> tuple[list[list[str]], tuple[str, ...]]:
    if not os.path.isdir(root):
        raise DataError(f"Omniglot folder {root} is missing: {LAYOUT}")
    files, names = [], []
    for alphabet in image_folders.subfolders(root):
        for character in image_folders.subfolders(alphabet):
            files.append(image_folders.list_images(character))
            names.append(f"{os.path.basename(alphabet)}/{os.path.basename(character)}")
    if not names:
        raise DataError(f"Omniglot folder {root} holds no <alphabet>/<character> folders: {LAYOUT}")
    empty = [n for n, f in zip(names, files, strict=True) if not f]
    if empty:
        raise DataError(f"Omniglot characters without PNG images in {root}: {empty[:3]}: {LAYOUT}")
    return files, tuple(names)


def load_split(data_dir: str, *, image_size: int = 28, rotations: bool = True) -> ClassSplit:
    """Reads Omniglot as meta-train (background) and meta-test (evaluation) classes.

    Args:
      data_dir: the directory holding ``images_background`` and ``images_evaluation``.
      image_size: side of the resized images.
      rotations: add rotated copies of every character as new classes.

    Returns:
      A `ClassSplit` of ``uint8 [C, M, image_size, image_size, 1]`` arrays.

    Raises:
      DataError: when a folder is missing, empty or holds unreadable images.
    """
    if not data_dir or not os.path.isdir(data_dir):
        raise DataError(f"Omniglot data_dir {data_dir!r} is not a directory: {LAYOUT}")
    arrays, names = {}, {}
    for split, folder in SPLITS.items():
        files, names[split] = _characters(os.path.join(data_dir, folder))
        arrays[split] = image_folders.read_classes(
            files, size=image_size, mode="L", invert=True, what=f"Omniglot {folder}"
        )
        if rotations:
            arrays[split], names[split] = with_rotations(arrays[split], names[split])
    return ClassSplit(arrays["train"], arrays["test"], names["train"], names["test"])
