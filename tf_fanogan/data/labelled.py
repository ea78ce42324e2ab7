"""Labelled evaluation data: images with 0/1 labels and optional ground-truth defect masks,
from a ``normal/`` + ``anomalous/`` (+ ``masks/``) folder or a ``path,label[,mask]`` CSV."""

from __future__ import annotations

import os

import numpy as np

from tf_fanogan.data.images import IMAGE_EXTENSIONS, DataError, list_images, load_image


def resize_masks(masks, image_size: int) -> np.ndarray:
    """Ground-truth masks (list of (H, W[, C]) arrays, nonzero = defect) -> (N, S, S) bool.

    Box-filtered: a model pixel is a defect when at least a quarter of its footprint is,
    so thin defects survive down-sampling without inflating large ones much.
    """
    import tensorflow as tf

    out = np.empty((len(masks), image_size, image_size), bool)
    for i, m in enumerate(masks):
        m = np.asarray(m)
        m = (m.max(axis=-1) if m.ndim == 3 else m) > 0
        out[i] = tf.image.resize(m[None, ..., None].astype(np.float32), (image_size, image_size),
                                 method="area").numpy()[0, ..., 0] >= 0.25
    return out


def masks_like(masks, maps, small_images: str = "upsample") -> list[np.ndarray]:
    """Ground-truth masks (nonzero = defect) as bool arrays of their maps' (H, W) at native
    resolution. A mask of another shape belongs to an image smaller than one tile that
    ``data.small_images`` enlarged: it is enlarged alike (nearest-neighbour up-sampling, or
    centred padding with no defect)."""
    out = []
    for mask, m in zip(masks, maps):
        mask = np.asarray(mask)
        mask = (mask.max(-1) if mask.ndim == 3 else mask) > 0
        (h, w), (th, tw) = mask.shape, np.shape(m)[:2]
        if (h, w) != (th, tw):
            if small_images == "pad":
                top, left = (th - h) // 2, (tw - w) // 2
                mask = np.pad(mask, ((top, th - h - top), (left, tw - w - left)))
            else:
                mask = mask[(np.arange(th) * h // th)[:, None], (np.arange(tw) * w // tw)[None, :]]
        out.append(mask)
    return out


def _find_mask(mask_dir: str, image_path: str) -> str | None:
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for ext in IMAGE_EXTENSIONS:
        for candidate in (stem + ext, stem + "_mask" + ext):
            if os.path.isfile(os.path.join(mask_dir, candidate)):
                return os.path.join(mask_dir, candidate)
    return None


def read_labelled(source: str, progress=None):
    """Labelled images for evaluation: a folder with ``normal/`` and ``anomalous/`` (and
    optionally ``masks/``, one mask per anomalous image with the same file stem, nonzero =
    defect), or a CSV with columns ``path,label[,mask]`` (label 0 = normal, 1 = anomalous;
    relative paths are relative to the CSV).

    Returns:
        ``(images, labels, masks, names)``; ``masks`` is None when no masks are given, else a
        list with an all-zero mask for normal images. ``progress``: an object with
        ``update(n)``, told after each image read.
    """
    import csv

    if os.path.isdir(source):
        normal_dir, anomalous_dir = os.path.join(source, "normal"), os.path.join(source, "anomalous")
        for d in (normal_dir, anomalous_dir):
            if not os.path.isdir(d):
                raise DataError(f"{source}: expected sub-folders normal/ and anomalous/ ({d} is missing)")
        entries = [(p, 0, None) for p in list_images(normal_dir)] + [(p, 1, None) for p in list_images(anomalous_dir)]
        mask_dir = os.path.join(source, "masks")
        if os.path.isdir(mask_dir):
            entries = [(p, y, _find_mask(mask_dir, p) if y else None) for p, y, _ in entries]
            missing = [p for p, y, m in entries if y and m is None]
            if missing:
                raise DataError(f"{missing[0]}: no mask in {mask_dir} (masks/ must hold one per anomalous image)")
        has_masks = os.path.isdir(mask_dir)
    elif os.path.isfile(source) and source.lower().endswith(".csv"):
        base = os.path.dirname(os.path.abspath(source))
        entries = []
        with open(source, newline="") as f:
            rows = list(csv.reader(f))
        first = 1
        if rows and rows[0] and rows[0][0].strip().lower() == "path":
            rows, first = rows[1:], 2
        for n, row in enumerate(rows, start=first):
            if not row:
                continue
            if len(row) not in (2, 3) or row[1].strip() not in ("0", "1"):
                raise DataError(f"{source}, line {n}: expected path,label[,mask] with label 0 or 1, got {row}")
            path = row[0] if os.path.isabs(row[0]) else os.path.join(base, row[0])
            mask = (row[2] if os.path.isabs(row[2]) else os.path.join(base, row[2])) if len(row) == 3 and row[2] else None
            entries.append((path, int(row[1]), mask))
        has_masks = any(m for _, _, m in entries)
    else:
        raise DataError(f"{source}: expected a folder with normal/ and anomalous/, or a .csv of path,label[,mask]")
    if not entries:
        raise DataError(f"{source}: no images")
    images = []
    for p, _, _ in entries:
        images.append(load_image(p))
        if progress is not None:
            progress.update(1)
    masks = None
    if has_masks:
        masks = []
        for (p, _, m), img in zip(entries, images):
            mask = load_image(m) if m else np.zeros(img.shape[:2], np.uint8)
            if mask.shape[:2] != img.shape[:2]:
                raise DataError(f"{m}: mask of {mask.shape[:2]} does not match its image {p} of {img.shape[:2]}")
            masks.append(mask)
    return images, np.array([y for _, y, _ in entries]), masks, [p for p, _, _ in entries]
