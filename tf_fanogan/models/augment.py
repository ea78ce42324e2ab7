"""Differentiable augmentation of the critic's inputs for small training sets.

Applied alike to real and generated images before the critic, with random parameters per
image (Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training", NeurIPS
2020): because the generator's images pass through the same random transform and the
gradient flows through it, the generator is pushed towards the un-augmented distribution and
is not taught the augmentation. Never used in scoring.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_fanogan.config import AUGMENTATIONS

SHIFT_FRACTION = 0.125


def _flip(images, seed):
    n = tf.shape(images)[0]
    flip = keras.random.uniform((n, 1, 1, 1), seed=seed) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def _translate(images, seed):
    """Shifts each image by up to 1/8 of its side in x and y (edges mirrored)."""
    n = tf.shape(images)[0]
    size = int(images.shape[1])
    pad = max(1, int(round(size * SHIFT_FRACTION)))
    shifts = keras.random.randint((n, 2), -pad, pad + 1, seed=seed)
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="SYMMETRIC")
    base = tf.range(size)[None, :] + pad
    rows = base - shifts[:, :1]
    cols = base - shifts[:, 1:]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def augment(images, mode: str, seed):
    """Randomly transforms a batch (N, H, W, C); ``mode`` is one of :data:`AUGMENTATIONS`.

    Args:
        images: Float tensor in model units.
        mode: ``none``, ``flip``, ``translate`` or ``flip_translate``.
        seed: A ``keras.random.SeedGenerator`` (the trainer's own, so runs are seeded and
            resume where they stopped).
    """
    if mode not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {mode!r}")
    if "flip" in mode:
        images = _flip(images, seed)
    if "translate" in mode:
        images = _translate(images, seed)
    return images
