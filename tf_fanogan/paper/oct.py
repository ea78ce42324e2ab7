"""The paper's OCT setting: patches inside the retina of a B-scan, B-scan scores, stitched heatmaps.

Schlegl et al. (2019) trained f-AnoGAN on 64x64 patches sampled inside the retina of SD-OCT
B-scans of healthy eyes and scored unseen scans patch-wise. This module does the image side:

1. :func:`retina_mask` -- the retina region, from intensity and smoothing only: the scan
   is smoothed (after blanking the white padding wedges), thresholded (Otsu), vertical
   gaps between bright layers closed, the largest bright component kept, and per column the band between its first and last row is the
   retina; the band's edges are median-filtered across columns.
2. :func:`patch_positions` / :func:`extract_patches` -- overlapping patches on a grid with a
   configurable stride, kept where the patch centre lies in the retina and at least
   ``min_inside`` of the patch does.
3. :func:`score_bscan` -- the general tiled scoring (:mod:`tf_fanogan.scoring.tiled`) with the
   retina as the tile filter; the B-scan score is the max and the top-k mean of its patch scores.
4. :func:`stitch_heatmap` -- the patches' residual maps averaged where they overlap, giving an
   anomaly heatmap over the whole B-scan (NaN outside the scored area).
"""

from __future__ import annotations

import numpy as np

from tf_fanogan import signatures as sig
from tf_fanogan.data import tiles
from tf_fanogan.scoring import tiled

SATURATING = 240  # Kermany scans are padded with white wedges where the scan was rotated.


def _otsu(values: np.ndarray) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist); w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    return float(centres[int(np.argmax(w0 * w1 * (m0 - m1) ** 2))])


def retina_mask(bscan: np.ndarray, sigma: float = 4.0, edge_filter: int = 31) -> np.ndarray:
    """Boolean (H, W) mask of the retina band of a grayscale B-scan.

    Args:
        bscan: (H, W) uint8/uint16/float B-scan.
        sigma: Gaussian smoothing (pixels) before thresholding.
        edge_filter: Width (columns) of the median filter applied to the band's edges.
    """
    from scipy import ndimage

    img = np.asarray(bscan, np.float32)
    if img.ndim != 2:
        raise ValueError(f"a B-scan must be a 2-D grayscale image, got shape {img.shape}")
    if bscan.dtype == np.uint8:  # blank out the white padding wedges and their JPEG fringe
        pad = ndimage.binary_dilation(img >= SATURATING, iterations=6)
        img = np.where(pad, np.median(img[~pad]) if (~pad).any() else 0.0, img)
    smooth = ndimage.gaussian_filter(img, sigma)
    bright = smooth > _otsu(smooth)
    # The retina's layers alternate bright and dark (e.g. the outer nuclear layer, or fluid):
    # close vertical gaps so that its bright layers form one component.
    bright = ndimage.binary_closing(bright, structure=np.ones((41, 9), bool), border_value=0)
    labelled, n = ndimage.label(bright)
    if n > 1:  # the retina is the largest bright component
        sizes = ndimage.sum(bright, labelled, range(1, n + 1))
        bright = labelled == 1 + int(np.argmax(sizes))
    h, w = bright.shape
    has = bright.any(axis=0)
    top = np.where(has, bright.argmax(axis=0), h)
    bottom = np.where(has, h - 1 - bright[::-1].argmax(axis=0), -1)
    if has.sum() >= edge_filter:
        top = ndimage.median_filter(top, edge_filter, mode="nearest")
        bottom = ndimage.median_filter(bottom, edge_filter, mode="nearest")
    rows = np.arange(h)[:, None]
    return (rows >= top[None, :]) & (rows <= bottom[None, :]) & has[None, :]


def patch_positions(mask: np.ndarray, patch_size: int = 64, stride: int = 32,
                    min_inside: float = 0.5) -> np.ndarray:
    """Top-left corners (N, 2) of grid patches inside ``mask`` (centre inside, ``min_inside`` covered):
    :func:`tf_fanogan.data.tiles.tile_positions` with the retina as the tile filter."""
    return tiles.tile_positions(mask.shape, patch_size, stride, mask=mask, min_inside=min_inside)


def extract_patches(bscan: np.ndarray, positions: np.ndarray, patch_size: int = 64) -> np.ndarray:
    """(N, patch_size, patch_size) patches of ``bscan`` at ``positions``."""
    return tiles.cut(bscan, positions, patch_size)


def bscan_patches(bscan: np.ndarray, patch_size: int = 64, stride: int = 32, min_inside: float = 0.5):
    """Patches inside the retina of one B-scan: ``(patches, positions, mask)``."""
    mask = retina_mask(bscan)
    positions = patch_positions(mask, patch_size, stride, min_inside)
    return extract_patches(bscan, positions, patch_size), positions, mask


def aggregate(patch_scores: np.ndarray, top_k: int = 5) -> dict:
    """B-scan scores from patch scores: ``max`` and ``top_k_mean``."""
    try:
        return tiles.aggregate(patch_scores, top_k)
    except ValueError:
        raise ValueError("no patches to aggregate (is the retina found in this B-scan?)") from None


stitch_heatmap = tiles.stitch  # averages patch maps into an (H, W) heatmap; NaN where no patch lies


def score_bscan(detector, bscan: np.ndarray, patch_size: int = 64, stride: int = 32,
                min_inside: float = 0.5, top_k: int = 5, heatmap: bool = True) -> dict:
    """Scores one B-scan with a detector trained on normal patches: the general tiled path
    (:mod:`tf_fanogan.scoring.tiled`) with the retina as the tile filter.

    Patches are resized to the detector's input size by the detector itself. Returns the
    B-scan scores (``max``, ``top_k_mean``), the patch ``positions`` and ``patch_scores``,
    the retina ``mask`` and, with ``heatmap``, the stitched residual ``heatmap`` at B-scan
    resolution.
    """
    mask = retina_mask(bscan)
    where = dict(masks=[mask], min_inside=min_inside, names=["B-scan"])
    try:
        res = tiled.score_tiled(detector.score, [bscan], patch_size, stride, with_tiles=True, **where)
    except ValueError as e:
        if "inside its mask" not in str(e):
            raise
        raise ValueError("no patch of this B-scan lies inside the retina; check the scan or lower min_inside") from None
    scores = res["tile_scores"][0]
    out = {"positions": res["tile_positions"][0], "patch_scores": scores, "mask": mask, **aggregate(scores, top_k)}
    if heatmap:
        def maps(patches):  # back to B-scan resolution
            m = detector.residual_maps(patches)[sig.RESIDUAL_MAP]
            if m.shape[1] != patch_size:
                import tensorflow as tf
                m = tf.image.resize(m, (patch_size, patch_size), "bilinear").numpy()
            return {sig.RESIDUAL_MAP: m}

        out["heatmap"] = tiled.stitched_maps(maps, [bscan], patch_size, stride, **where)[sig.RESIDUAL_MAP][0]
    return out
