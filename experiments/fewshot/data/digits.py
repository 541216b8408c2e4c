"""Few-shot classes from scikit-learn's bundled 8x8 handwritten digits (offline).

`sklearn.datasets.load_digits` ships 1,797 8x8 images of the digits 0-9 (17 grey levels).
As in the Omniglot practice, the rotations by 0/90/180/270 degrees become new classes: 40
classes. The meta-train / meta-test split is by digit, so that all four rotations of a digit
fall on the same side:

* meta-test digits 2, 3, 7 (12 classes);
* meta-train digits 0, 1, 4, 5, 6, 8, 9 (28 classes).

6 and 9 (each roughly the other rotated by 180 degrees) are both in meta-train, so no meta-test
class is a rotated copy of a meta-train class. Within a split some classes look alike (0, 1
and 8 at 0 and 180 degrees; 6@180 and 9@0), which caps the attainable accuracy below 100%.
Every class keeps its first 174 images (the smallest digit count), in scikit-learn's order.
"""

from __future__ import annotations

import numpy as np

from experiments.fewshot.data.episodes import ClassSplit, with_rotations

TEST_DIGITS = (2, 3, 7)
TRAIN_DIGITS = (0, 1, 4, 5, 6, 8, 9)


def _digit_classes(images: np.ndarray, labels: np.ndarray, digits) -> np.ndarray:
    per_class = min(int(np.sum(labels == d)) for d in range(10))
    return np.stack([images[labels == d][:per_class] for d in digits])


def load_split(*, rotations: bool = True) -> ClassSplit:
    """The digits as disjoint meta-train and meta-test classes (see the module docstring).

    Args:
      rotations: add 90/180/270-degree rotations as new classes (4x the classes).

    Returns:
      A `ClassSplit` of ``uint8 [C, 174, 8, 8, 1]`` arrays (grey levels 0..16 scaled to
      0..255); class names are ``"<digit>@<degrees>"`` (``"<digit>"`` without rotations).
    """
    from sklearn.datasets import load_digits  # an experiments-only dependency

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = np.asarray(data.target)
    train = _digit_classes(images, labels, TRAIN_DIGITS)
    test = _digit_classes(images, labels, TEST_DIGITS)
    train_names = tuple(str(d) for d in TRAIN_DIGITS)
    test_names = tuple(str(d) for d in TEST_DIGITS)
    if rotations:
        train, train_names = with_rotations(train, train_names)
        test, test_names = with_rotations(test, test_names)
    return ClassSplit(train, test, train_names, test_names)
