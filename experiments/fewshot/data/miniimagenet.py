"""mini-ImageNet (Vinyals et al. 2016; split of Ravi & Larochelle 2017) from a local directory.

Nothing is downloaded. Two layouts are accepted:

* class folders: ``data_dir/{train,val,test}/<class>/*.jpg`` (or ``.png``), one folder per
  class (64 / 16 / 20 classes of 600 images in the Ravi & Larochelle split);
* csv files: ``data_dir/{train,val,test}.csv`` with the header ``filename,label`` and the
  images in ``data_dir/images/<filename>`` (the layout of Ravi & Larochelle's release).

Meta-training uses ``train``; evaluation uses ``test`` (or ``val``). Images are converted to
RGB and resized (84x84 by default).
"""

from __future__ import annotations

import csv
import os

from experiments.fewshot.data import image_folders
from experiments.fewshot.data.episodes import ClassSplit, DataError

LAYOUT = (
    "expected either <data_dir>/{train,val,test}/<class>/*.jpg class folders or "
    "<data_dir>/{train,val,test}.csv (header 'filename,label') with images in "
    "<data_dir>/images/ (the Ravi & Larochelle split); nothing is downloaded"
)


def _from_folders(data_dir: str, split: str):
    root = os.path.join(data_dir, split)
    if not os.path.isdir(root):
        raise DataError(f"mini-ImageNet split folder {root} is missing: {LAYOUT}")
    classes = image_folders.subfolders(root)
    if not classes:
        raise DataError(f"mini-ImageNet split folder {root} holds no class folders: {LAYOUT}")
    files = [image_folders.list_images(c) for c in classes]
    return files, tuple(os.path.basename(c) for c in classes)


def _from_csv(data_dir: str, split: str):
    path = os.path.join(data_dir, f"{split}.csv")
    if not os.path.isfile(path):
        raise DataError(f"mini-ImageNet csv {path} is missing: {LAYOUT}")
    by_label: dict[str, list[str]] = {}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["filename", "label"]:
            raise DataError(f"{path}: the first line must be 'filename,label', got {header}")
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                raise DataError(f"{path}:{line}: expected 'filename,label', got {row}")
            image = os.path.join(data_dir, "images", row[0].strip())
            if not os.path.isfile(image):
                raise DataError(f"{path}:{line}: image {image} is missing: {LAYOUT}")
            by_label.setdefault(row[1].strip(), []).append(image)
    if not by_label:
        raise DataError(f"{path} lists no images: {LAYOUT}")
    labels = sorted(by_label)
    return [sorted(by_label[label]) for label in labels], tuple(labels)


def load_split(data_dir: str, *, image_size: int = 84, eval_split: str = "test") -> ClassSplit:
    """Reads the meta-train classes and the meta-test (or validation) classes.

    Args:
      data_dir: the dataset directory (either layout, see the module docstring).
      image_size: side of the resized images.
      eval_split: ``"test"`` or ``"val"``: the held-out classes used for evaluation.

    Returns:
      A `ClassSplit` of ``uint8 [C, M, image_size, image_size, 3]`` arrays.

    Raises:
      DataError: when files are missing, malformed or unreadable.
    """
    if eval_split not in ("test", "val"):
        raise ValueError(f"eval_split must be 'test' or 'val', got {eval_split!r}")
    if not data_dir or not os.path.isdir(data_dir):
        raise DataError(f"mini-ImageNet data_dir {data_dir!r} is not a directory: {LAYOUT}")
    if os.path.isdir(os.path.join(data_dir, "train")):
        read = _from_folders
    elif os.path.isfile(os.path.join(data_dir, "train.csv")):
        read = _from_csv
    else:
        raise DataError(f"no mini-ImageNet layout recognised in {data_dir}: {LAYOUT}")
    arrays, names = {}, {}
    for split in ("train", eval_split):
        files, names[split] = read(data_dir, split)
        arrays[split] = image_folders.read_classes(
            files, size=image_size, mode="RGB", what=f"mini-ImageNet {split} in {data_dir}"
        )
    overlap = set(names["train"]) & set(names[eval_split])
    if overlap:
        raise DataError(
            f"mini-ImageNet: classes in both train and {eval_split}: {sorted(overlap)[:3]}"
        )
    return ClassSplit(arrays["train"], arrays[eval_split], names["train"], names[eval_split])
