"""Tiles of an image at native resolution: grid positions, cutting, stitching, aggregation.

A large image is scored as model-size tiles cut on a grid of a given stride (the last row and
column of tiles are moved in to reach the far edges, so with a stride up to the tile size every
pixel is covered); an optional mask keeps only the
tiles whose centre lies in it and that it covers enough (the OCT retina is such a mask). Tile
scores aggregate to an image score (``max`` or the ``top_k_mean``) and tile maps stitch into a
full-resolution map, overlaps averaged.
"""

from __future__ import annotations

import numpy as np


def tile_positions(shape: tuple[int, int], size: int, stride: int, mask: np.ndarray | None = None,
                   min_inside: float = 0.5) -> np.ndarray:
    """Top-left corners (N, 2) of the ``size`` x ``size`` tiles of an (H, W) image.

    Raises:
        ValueError: a stride below 1 or larger than the image, or an image smaller than one tile.
    """
    h, w = int(shape[0]), int(shape[1])
    if not (isinstance(stride, (int, np.integer)) and not isinstance(stride, bool) and stride >= 1):
        raise ValueError(f"tile stride must be a positive integer, got {stride!r}")
    if stride > max(h, w):
        raise ValueError(f"tile stride {stride} is larger than the {h}x{w} image")
    if size > min(h, w):
        raise ValueError(f"a {h}x{w} image is smaller than one {size}x{size} tile")
    ys, xs = list(range(0, h - size + 1, stride)), list(range(0, w - size + 1, stride))
    if ys[-1] != h - size:
        ys.append(h - size)
    if xs[-1] != w - size:
        xs.append(w - size)
    grid = [(y, x) for y in ys for x in xs]
    if mask is not None:
        integral = np.pad(np.asarray(mask, bool).astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        c = size // 2

        def kept(y, x):
            inside = (integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x]
                      + integral[y, x]) / size ** 2
            return bool(mask[y + c, x + c]) and inside >= min_inside

        grid = [(y, x) for y, x in grid if kept(y, x)]
    return np.array(grid, dtype=np.int64).reshape(-1, 2)


def cut(image: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
    """(N, size, size[, C]) tiles of ``image`` (H, W[, C]) at ``positions``."""
    if len(positions) == 0:
        return np.zeros((0, size, size) + image.shape[2:], image.dtype)
    return np.stack([image[y:y + size, x:x + size] for y, x in positions])


class Stitcher:
    """Accumulates tile maps (N, P, P[, C]) into one (H, W[, C]) map, overlaps averaged, a batch
    of tiles at a time; NaN where no tile lies."""

    def __init__(self, shape: tuple[int, int]):
        self.shape, self.total, self.count = tuple(shape), None, np.zeros(shape)

    def add(self, positions: np.ndarray, maps: np.ndarray) -> None:
        maps = np.asarray(maps, np.float64)
        if self.total is None:
            self.total = np.zeros(self.shape + maps.shape[3:])
        p = maps.shape[1]
        for (y, x), m in zip(positions, maps):
            self.total[y:y + p, x:x + p] += m
            self.count[y:y + p, x:x + p] += 1

    def result(self) -> np.ndarray:
        count = self.count.reshape(self.count.shape + (1,) * (self.total.ndim - 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, self.total / np.maximum(count, 1), np.nan)


def stitch(shape: tuple[int, int], positions: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Averages tile maps (N, P, P[, C]; channels averaged) into an (H, W) map; NaN where no tile lies."""
    maps = np.asarray(maps, np.float64)
    stitcher = Stitcher(shape)
    stitcher.add(positions, maps.mean(-1) if maps.ndim == 4 else maps)
    return stitcher.result()


def aggregate(tile_scores: np.ndarray, top_k: int = 5) -> dict:
    """Image scores from its tile scores: ``max`` and ``top_k_mean`` (the mean of the ``top_k`` largest)."""
    s = np.sort(np.asarray(tile_scores, np.float64))[::-1]
    if s.size == 0:
        raise ValueError("no tiles to aggregate")
    return {"max": float(s[0]), "top_k_mean": float(s[:top_k].mean())}
