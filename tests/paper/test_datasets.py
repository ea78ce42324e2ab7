import os

import numpy as np
import pytest

from tf_fanogan.paper.datasets import load_elpv


def test_elpv_split_is_disjoint_and_normal_only_for_training():
    d = load_elpv(seed=0)
    assert d["train"].shape[1:] == (300, 300) and d["train"].dtype == np.uint8
    n_normal = len(d["train"]) + len(d["holdout"]) + len(d["test_normal"])
    assert n_normal == 1508
    assert len(d["test_anomalous"]) > 500
    assert d["test_labels"].sum() == len(d["test_anomalous"])
    # No held-out or test cell is also a training cell.
    train = {img.tobytes() for img in d["train"]}
    assert not any(img.tobytes() in train for img in d["holdout"])


def test_fashion_mnist_one_class_split():
    from tf_fanogan.paper import datasets

    if not os.path.isdir(datasets.FASHION_MNIST_DIR):
        pytest.skip(f"{datasets.FASHION_MNIST_DIR} absent: install with `make data` (apt-get install dataset-fashion-mnist)")
    d = datasets.load_fashion_mnist(3, seed=0)
    assert len(d["train"]) + len(d["holdout"]) == 6000 and len(d["holdout"]) == 600
    assert d["test_images"].shape == (10000, 28, 28) and d["test_labels"].sum() == 9000
    assert d["class_name"] == "Dress"
