"""`training_dataset`: every epoch a permutation of all images, seeded, the same after a resume by skipping."""

import numpy as np
import pytest

from tf_fanogan.training.pipeline import training_dataset


def _ids(n_batches, n=10, batch=4, seed=0, skip=0):
    images = np.arange(n, dtype=np.float32).reshape(n, 1, 1, 1)
    batches = training_dataset(images, batch, seed, skip_batches=skip).take(n_batches)
    return np.concatenate([b.numpy().reshape(-1) for b in batches]).astype(int)


def test_each_epoch_is_a_fresh_permutation_and_no_image_is_dropped():
    stream = _ids(10)  # 40 positions = 4 epochs of 10 images; batches span epochs
    epochs = stream.reshape(4, 10)
    for e in epochs:
        assert sorted(e) == list(range(10))
    assert len({tuple(e) for e in epochs}) == 4  # reshuffled every epoch
    assert not np.array_equal(epochs[0], np.arange(10))


def test_the_permutation_mixes_even_for_seed_0_in_its_first_epoch():
    """RandomIndexShuffle keyed (0, 0, 0) directly left most indices in place; the keys are hashed now."""
    for seed in (0, 1):
        epochs = _ids(20, n=1000, batch=100, seed=seed).reshape(2, 1000)
        for e in epochs:  # a uniform random permutation: ~1 fixed point, mean displacement n/3
            assert np.mean(e == np.arange(1000)) < 0.01
            assert 0.30 < np.abs(e - np.arange(1000)).mean() / 1000 < 0.37


def test_the_order_is_a_function_of_the_seed_and_a_resume_skips_exactly():
    np.testing.assert_array_equal(_ids(6, seed=3), _ids(6, seed=3))
    assert not np.array_equal(_ids(6, seed=3), _ids(6, seed=4))
    np.testing.assert_array_equal(_ids(6, seed=3, skip=2), _ids(8, seed=3)[8:])  # batches 3..8 of the same stream


def test_an_empty_training_set_is_refused():
    with pytest.raises(ValueError, match="no training images"):
        training_dataset(np.zeros((0, 4, 4, 1), np.float32), 2, 0)
