"""Reading classes of images from folders into ``uint8 [C, M, H, W, Ch]`` arrays.

Shared by the Omniglot and mini-ImageNet readers. Images are read with Pillow (a dependency
of matplotlib), converted to grey ("L") or colour ("RGB"), and resized to ``size x size``.
Every class keeps its first M images in sorted filename order, M the smallest class size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from experiments.fewshot.data.episodes import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def list_images(folder: str) -> list[str]:
    """The image files directly inside ``folder``, sorted."""
    return sorted(
        os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES)
    )


def subfolders(folder: str) -> list[str]:
    """The sub-directories of ``folder``, sorted (hidden ones skipped)."""
    return sorted(
        os.path.join(folder, d)
        for d in os.listdir(folder)
        if not d.startswith(".") and os.path.isdir(os.path.join(folder, d))
    )


def read_image(path: str, *, size: int, mode: str, invert: bool = False) -> np.ndarray:
    """One image as ``uint8 [size, size, channels]``; `DataError` if it cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise DataError(f"cannot read image {path}: {e}") from e
    if invert:
        array = 255 - array
    return array.reshape(size, size, -1)


def read_classes(
    files_per_class: Sequence[Sequence[str]],
    *,
    size: int,
    mode: str,
    invert: bool = False,
    what: str,
) -> np.ndarray:
    """Reads the first M files of every class, M the smallest class size.

    Args:
      files_per_class: image paths per class.
      size: the side of the resized square images.
      mode: ``"L"`` (grey) or ``"RGB"``.
      invert: replace each value v by 255 - v (Omniglot: bright strokes on black).
      what: a description for error messages.

    Returns:
      ``uint8 [C, M, size, size, channels]``.
    """
    if not files_per_class:
        raise DataError(f"{what}: no classes found")
    empty = [i for i, files in enumerate(files_per_class) if not files]
    if empty:
        raise DataError(f"{what}: {len(empty)} class(es) without images")
    per_class = min(len(files) for files in files_per_class)
    return np.stack(
        [
            np.stack(
                [read_image(f, size=size, mode=mode, invert=invert) for f in files[:per_class]]
            )
            for files in files_per_class
        ]
    )
