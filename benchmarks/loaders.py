"""The quality benchmark's data: each data set's normal training and hold-out images and its
labelled test items (per image, or per OCT B-scan of many patches), seeded class-balanced
subsets, and the small subsets of a ``--quick`` smoke run."""

from __future__ import annotations

import numpy as np


def load(name: str, args):
    """(data, description): ``train``/``holdout`` normal images, test images and labels; for
    OCT per-patch arrays with the B-scan each patch belongs to."""
    from tf_fanogan.paper import datasets

    if name == "elpv":
        return datasets.load_elpv(seed=0), "ELPV solar cells (normal: defect probability 0; anomalous: >= 2/3)"
    if name.startswith("fashion_mnist_c"):
        k = int(name.rsplit("c", 1)[1])
        d = datasets.load_fashion_mnist(k, seed=0, pad_to=args.image_size)
        return d, (f"Fashion-MNIST one-class, normal class {k} ({d['class_name']}); test = the whole 10 000-image "
                   "test set; 28×28 zero-padded to the model size")
    if name == "magnetic_tile":
        d = datasets.load_magnetic_tile(args.image_size, seed=0)
        return d, "Magnetic tile (MT_Free normal; five defect classes anomalous), squashed to the model size"
    if name == "oct":
        return load_oct(), ("OCT B-scans (oct_kermany_tiny), 64×64 patches inside the retina (stride 32) resized to "
                            "the model size, NORMAL patients split into train/holdout/test, B-scan score = top-5 "
                            "mean of patch scores")
    raise ValueError(name)


def load_oct():
    from tf_fanogan.paper import datasets
    from tf_fanogan.paper import oct

    split = datasets.split_oct_by_patient(datasets.load_oct_bscans(), seed=0)

    def patches(group):
        out, owner = [], []
        for i, s in enumerate(group):
            p, _, _ = oct.bscan_patches(s["image"], 64, 32)
            out.append(p)
            owner += [i] * len(p)
        return np.concatenate(out), np.array(owner)

    train, _ = patches(split["train"])
    holdout, holdout_owner = patches(split["holdout"])
    test, test_owner = patches(split["test"])
    return {"train": train, "holdout": holdout, "holdout_owner": holdout_owner, "test_images": test,
            "test_owner": test_owner, "test_labels": np.array([s["label"] for s in split["test"]]),
            "n_scans": {k: len(v) for k, v in split.items()}}


class Items:
    """Per-image scores -> per-test-item scores (identity, or B-scan top-5 mean for OCT)."""

    def __init__(self, data):
        self.owner, self.hold_owner = data.get("test_owner"), data.get("holdout_owner")
        self.labels = np.asarray(data["test_labels"])

    @staticmethod
    def _agg(scores, owner):
        from tf_fanogan.paper import oct

        return np.array([oct.aggregate(scores[owner == i])["top_k_mean"] for i in np.unique(owner)])

    def test(self, scores, owner=None):
        owner = self.owner if owner is None else owner
        return scores if owner is None else self._agg(scores, owner)

    def holdout(self, scores):
        return scores if self.hold_owner is None else self._agg(scores, self.hold_owner)


def balanced_subset(labels, size, rng):
    """Seeded subset of up to ``size`` items, half normal and half anomalous where possible."""
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    n_normal = min(len(normal), size // 2)
    n_anomalous = min(len(anomalous), size - n_normal)
    return np.sort(np.concatenate([rng.choice(normal, n_normal, replace=False),
                                   rng.choice(anomalous, n_anomalous, replace=False)]))


def iterative_subsets(items: Items, n_holdout: int, size: int, holdout_size: int, rng):
    """The iterative search's seeded test subset and hold-out subset. Returns ``(sub_items, sub,
    owner, hold_sub, hold_items)``: ``size`` class-balanced test items (OCT: B-scans) and the rows
    of their images, with the owner of each row (``None`` where items are images); up to
    ``holdout_size`` hold-out images (OCT: every hold-out patch) and the hold-out's :class:`Items`."""
    sub_items = balanced_subset(items.labels, size, rng)
    if items.owner is None:
        sub, owner = sub_items, None
    else:  # OCT: whole B-scans
        sub = np.flatnonzero(np.isin(items.owner, sub_items))
        owner = items.owner[sub]
    hold_sub = np.arange(n_holdout) if items.hold_owner is not None else np.sort(
        rng.choice(n_holdout, min(n_holdout, holdout_size), replace=False))
    hold_items = Items({"test_labels": np.zeros(1), "holdout_owner": None if items.hold_owner is None
                        else items.hold_owner[hold_sub]})
    return sub_items, sub, owner, hold_sub, hold_items


def subsample(data, n: int = 40) -> dict:
    """A smoke run's data (``--quick``): the first ``n`` training and hold-out images and ``n / 2``
    test images of each label (data sets scored per image only)."""
    labels = np.asarray(data["test_labels"])
    keep = np.r_[np.flatnonzero(labels == 0)[:n // 2], np.flatnonzero(labels == 1)[:n // 2]]
    test = data["test_images"]
    return {**data, "train": data["train"][:n], "holdout": data["holdout"][:n], "test_labels": labels[keep],
            "test_images": (test[keep] if isinstance(test, np.ndarray) else [test[i] for i in keep])}
