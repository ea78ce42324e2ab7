"""Scoring at native resolution: tiles in, one score and one full-resolution map per image out.

With ``data.tile_stride`` (:class:`tf_fanogan.config.DataConfig`) an image is cut into tiles on
a grid (:func:`tf_fanogan.data.tiles.tile_positions`; an optional mask per image keeps only the
tiles inside it, as the OCT retina does), the tiles are scored in batches by a score function
-- the detector's :class:`~tf_fanogan.scoring.scorer.Scorer`, or a serving client's ``score``:
the aggregation below is the same code either way -- and the image gets the score of its tiles
by ``tile_score``:

- ``max``: every output of its highest-scoring tile. That tile's ``p_value`` and
  ``is_anomaly`` are the image's own: the p-value falls as the score rises, so the image's
  p-value (against hold-out *image* scores) is its smallest tile p-value, and the image is
  flagged iff one of its tiles is.
- ``top_k_mean``: each score output averaged over the ``top_k`` highest-scoring tiles; its
  ``p_value`` and ``is_anomaly`` are decided on the averaged score by ``judge`` (the scorer's
  :meth:`~tf_fanogan.scoring.scorer.Scorer.judge`) and left out where there is none (a client).

Residual maps of the tiles stitch into one map per image at its resolution, overlaps averaged.
Tiles are cut and scored one batch at a time: beyond the images themselves, memory holds one
batch of tiles and one image's stitched maps.
"""

from __future__ import annotations

import numpy as np

from tf_fanogan import signatures as sig
from tf_fanogan.data import tiles
from tf_fanogan.data.images import DataError

DECISIONS = (sig.P_VALUE, sig.IS_ANOMALY)


def _batches(images, size: int, stride: int, batch_size: int, masks=None, min_inside: float = 0.5, names=None):
    """Per image: ``(index, positions, iterator of (positions, tiles) batches)``."""
    for i, image in enumerate(images):
        image = np.asarray(image)
        try:
            positions = tiles.tile_positions(image.shape[:2], size, stride,
                                             None if masks is None else masks[i], min_inside)
        except ValueError as e:
            raise DataError(f"{names[i] if names else f'image[{i}]'}: {e}") from None
        if len(positions) == 0:
            raise DataError(f"{names[i] if names else f'image[{i}]'}: no {size}x{size} tile lies inside its mask")
        yield i, positions, ((positions[lo:lo + batch_size], tiles.cut(image, positions[lo:lo + batch_size], size))
                             for lo in range(0, len(positions), batch_size))


def training_tiles(images, size: int, stride: int) -> np.ndarray:
    """Every tile of every image, (sum of tile counts, size, size, C): what stage 1 and 2 train on."""
    return np.concatenate([t for _, _, parts in _batches(images, size, stride, 1 << 30) for _, t in parts])


def training_input(prepare, images, config) -> np.ndarray:
    """Model units (N, S, S, C) for training: the images (``prepare``: the detector's), or with
    ``data.tile_stride`` every tile of every image at native resolution."""
    stride = config.data.tile_stride
    x = prepare(images) if stride is None else training_tiles(prepare(images, native=True), config.model.image_size,
                                                              stride)
    return x * 2.0 - 1.0


def run(fn, images, config, batch_size: int, judge=None, residual_map: bool = False, with_tiles: bool = False,
        progress=None, names=None) -> dict:
    """What ``FAnoGAN.score`` (``fn``: the scorer's ``score``) or, with ``residual_map``,
    ``FAnoGAN.residual_maps`` run on native-resolution ``images`` under ``data.tile_stride``
    (``names``: the images' file names, for errors)."""
    d, size = config.data, config.model.image_size
    if residual_map:
        return stitched_maps(fn, images, size, d.tile_stride, batch_size, names=names, progress=progress)
    return score_tiled(fn, images, size, d.tile_stride, d.tile_score, d.tile_top_k, batch_size, judge,
                       with_tiles=with_tiles, names=names, progress=progress)


def aggregate(tile_outputs: dict, tile_score: str = "max", top_k: int = 5) -> dict:
    """One image's outputs from its tiles' (see the module docstring)."""
    order = np.argsort(-np.asarray(tile_outputs[sig.ANOMALY_SCORE], np.float64), kind="stable")
    if tile_score == "max":
        return {k: np.asarray(v)[order[0]] for k, v in tile_outputs.items()}
    if tile_score != "top_k_mean":
        raise ValueError(f"tile_score must be 'max' or 'top_k_mean', got {tile_score!r}")
    top = order[:top_k]
    return {k: np.float32(np.mean(np.asarray(v, np.float64)[top])) for k, v in tile_outputs.items()
            if k not in DECISIONS}


def score_tiled(score_fn, images, size: int, stride: int, tile_score: str = "max", top_k: int = 5,
                batch_size: int = 64, judge=None, masks=None, min_inside: float = 0.5, with_tiles: bool = False,
                names=None, progress=None) -> dict:
    """Image outputs (arrays of shape (N,)) from tile outputs; ``with_tiles`` adds per image
    ``tile_positions`` (T, 2) and ``tile_scores`` (T,), and both aggregates of the tile anomaly
    scores, ``tile_max`` and ``tile_top_k_mean`` (N,).

    Args:
        score_fn: Tiles (n, size, size[, C]) -> dict of (n,) outputs.
        images: Per-image arrays (H, W[, C]) at native resolution, in what ``score_fn`` takes.
        judge: Anomaly scores -> ``p_value`` / ``is_anomaly`` (``top_k_mean`` only).
        masks: Optional per-image (H, W) masks; only tiles inside them are scored.
        progress: An object with ``update(n)``, told after each image.
    """
    rows, positions_of, scores_of = [], [], []
    for _, positions, parts in _batches(images, size, stride, batch_size, masks, min_inside, names):
        outs = [score_fn(t) for _, t in parts]
        tile_outputs = {k: np.concatenate([np.asarray(o[k]) for o in outs]) for k in outs[0]}
        rows.append(aggregate(tile_outputs, tile_score, top_k))
        positions_of.append(positions)
        scores_of.append(tile_outputs[sig.ANOMALY_SCORE])
        if progress is not None:
            progress.update(1)
    result = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    if tile_score == "top_k_mean" and judge is not None:
        result.update({k: np.asarray(v) for k, v in judge(result[sig.ANOMALY_SCORE]).items()})
    if with_tiles:  # and both image aggregates, whichever is the anomaly score
        both = [tiles.aggregate(t, top_k) for t in scores_of]
        result.update(tile_positions=positions_of, tile_scores=scores_of,
                      tile_max=np.array([b["max"] for b in both]),
                      tile_top_k_mean=np.array([b["top_k_mean"] for b in both]))
    return result


def stitched_maps(map_fn, images, size: int, stride: int, batch_size: int = 64, masks=None,
                  min_inside: float = 0.5, names=None, progress=None) -> dict:
    """Per image, its tiles' maps (``map_fn``: tiles -> dict with ``residual_map`` and perhaps
    ``reconstruction``, (n, size, size[, C])) stitched to its resolution, overlaps averaged: a
    list of (H, W) residual maps (channels averaged) and, where given, of (H, W, C)
    reconstructions; NaN where no tile lies (outside a mask)."""
    out: dict = {}
    for i, _, parts in _batches(images, size, stride, batch_size, masks, min_inside, names):
        shape = np.asarray(images[i]).shape[:2]
        stitchers: dict = {}
        for positions, t in parts:
            for key, maps in map_fn(t).items():
                maps = np.asarray(maps)
                if key == sig.RESIDUAL_MAP and maps.ndim == 4:
                    maps = maps.mean(-1)
                stitchers.setdefault(key, tiles.Stitcher(shape)).add(positions, maps)
        for key, stitcher in stitchers.items():
            out.setdefault(key, []).append(stitcher.result())
        if progress is not None:
            progress.update(1)
    return out
