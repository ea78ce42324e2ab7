"""``benchmarks.loaders``: the seeded subsets the iterative search runs on."""

import numpy as np

from benchmarks.loaders import Items, iterative_subsets


def test_iterative_subsets_are_balanced_seeded_and_sorted():
    labels = np.r_[np.zeros(300), np.ones(50)]
    items = Items({"test_labels": labels})
    a = iterative_subsets(items, 100, 64, 20, np.random.default_rng(3))
    b = iterative_subsets(items, 100, 64, 20, np.random.default_rng(3))
    sub_items, sub, owner, hold_sub, hold_items = a
    assert np.array_equal(sub_items, b[0]) and np.array_equal(hold_sub, b[3])
    assert (labels[sub_items] == 0).sum() == 32 and (labels[sub_items] == 1).sum() == 32
    assert np.array_equal(sub, sub_items) and owner is None
    assert len(hold_sub) == 20 and len(set(hold_sub)) == 20 and np.all(np.diff(hold_sub) > 0)
    assert hold_items.hold_owner is None


def test_iterative_subsets_take_whole_bscans_where_items_own_patches():
    owner = np.repeat(np.arange(10), 3)  # 10 B-scans of 3 patches each
    items = Items({"test_labels": np.r_[np.zeros(5), np.ones(5)], "test_owner": owner,
                   "holdout_owner": np.repeat(np.arange(4), 2)})
    sub_items, sub, sub_owner, hold_sub, hold_items = iterative_subsets(items, 8, 4, 2, np.random.default_rng(0))
    assert len(sub_items) == 4 and np.array_equal(sub_owner, owner[sub])
    assert sorted(set(sub_owner)) == sorted(sub_items) and len(sub) == 12  # every patch of each chosen scan
    assert np.array_equal(hold_sub, np.arange(8))  # OCT: every hold-out patch, grouped by its scan
    assert np.array_equal(hold_items.hold_owner, np.repeat(np.arange(4), 2))
