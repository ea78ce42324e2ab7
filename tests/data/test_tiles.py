"""Tiles at native resolution: the grid covers every pixel, a mask filters tiles, stitching
averages overlaps, aggregation; bad strides and too-small images are one-line errors."""

import numpy as np
import pytest

from tf_fanogan.data import tiles


@pytest.mark.parametrize("shape,size,stride", [((70, 100), 32, 16), ((64, 64), 32, 32), ((33, 90), 32, 7)])
def test_the_grid_covers_every_pixel_and_reaches_the_edges(shape, size, stride):
    pos = tiles.tile_positions(shape, size, stride)
    covered = np.zeros(shape, int)
    for y, x in pos:
        covered[y:y + size, x:x + size] += 1
    assert covered.min() >= 1
    assert pos[:, 0].max() == shape[0] - size and pos[:, 1].max() == shape[1] - size
    assert len({tuple(p) for p in pos}) == len(pos)


def test_cut_and_stitch_round_trip_and_overlaps_are_averaged():
    img = np.random.default_rng(0).uniform(size=(40, 56)).astype(np.float32)
    pos = tiles.tile_positions(img.shape, 16, 8)
    np.testing.assert_allclose(tiles.stitch(img.shape, pos, tiles.cut(img, pos, 16)), img, rtol=1e-6)
    ones = np.ones((len(pos), 16, 16, 1))
    ones[0] *= 3.0  # the first tile's pixels also lie in up to 3 other tiles
    stitched = tiles.stitch(img.shape, pos, ones)
    assert stitched[0, 0] == 3.0 and 1.0 < stitched[8, 8] < 3.0 and stitched[39, 55] == 1.0


def test_a_mask_keeps_the_tiles_centred_in_it_and_leaves_the_rest_unscored():
    mask = np.zeros((64, 96), bool)
    mask[16:48] = True
    pos = tiles.tile_positions(mask.shape, 16, 8, mask=mask, min_inside=1.0)
    assert len(pos) and all(mask[y:y + 16, x:x + 16].all() for y, x in pos)
    stitched = tiles.stitch(mask.shape, pos, np.zeros((len(pos), 16, 16)))
    assert np.isnan(stitched[:16]).all() and not np.isnan(stitched[16:48]).any()


def test_aggregate_max_and_top_k_mean():
    assert tiles.aggregate([0.1, 0.9, 0.5, 0.7], top_k=2) == {"max": 0.9, "top_k_mean": pytest.approx(0.8)}
    with pytest.raises(ValueError, match="no tiles"):
        tiles.aggregate([])


@pytest.mark.parametrize("shape,stride,words", [((64, 64), 0, "positive integer"), ((64, 64), 2.5, "positive integer"),
                                                 ((64, 64), 65, "larger than the 64x64 image"),
                                                 ((20, 64), 8, "a 20x64 image is smaller than one 32x32 tile")])
def test_bad_strides_and_small_images_are_one_line_errors(shape, stride, words):
    with pytest.raises(ValueError, match=words):
        tiles.tile_positions(shape, 32, stride)
