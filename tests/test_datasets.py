import numpy as np

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
