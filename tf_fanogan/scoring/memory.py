"""The feature memory of ``scoring.method: critic_nn``.

f-AnoGAN's score compares an image with its reconstruction G(E(x)). The critic's last feature
layer f (the features of A_D) can also be compared with the normal training images directly:
the memory holds f(x) of (up to ``scoring.memory_size``) normal training images, and an image's
anomaly score is the RMS distance of its f to the nearest of them
(:func:`tf_fanogan.scoring.forward.nearest_memory_distance`). This is beyond the paper; the
quality benchmark measures both scores on the same detectors (BENCHMARKS.md).

The memory is stored centred (minus the mean of its rows, kept beside it), so that the
distance's ``|a|^2 - 2 a.b + |b|^2`` works on small numbers. A scorer holds it in non-trainable
variables: an export stores it once, in the SavedModel's ``variables/``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_fanogan.errors import DetectorError


def critic_features(critic, images01, batch_size: int = 256) -> np.ndarray:
    """f(x), the critic's last feature layer (the features of A_D), for float32 images
    (N, H, W, C) in [0, 1]: an (N, F) float32 array, computed in batches."""
    from tf_fanogan.scoring.forward import to_model_units

    return _features(critic, np.asarray(images01, np.float32), batch_size, to_model_units)


def _features(critic, x, batch_size: int, to_model=lambda t: t) -> np.ndarray:
    from tf_fanogan.data.images import batches

    parts = [tf.cast(critic(to_model(tf.constant(x[s])), training=False)[1], tf.float32).numpy()
             for s in batches(len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, critic.output_shape[1][-1]), np.float32)


def chosen(n_images: int, memory_size: int, seed: int) -> np.ndarray:
    """Indices of the images the memory keeps: all of them, or a seeded random subset of
    ``memory_size`` (in their original order) when there are more."""
    if n_images <= memory_size:
        return np.arange(n_images)
    return np.sort(np.random.default_rng(seed).choice(n_images, memory_size, replace=False))


def build(critic, images, memory_size: int, seed: int, batch_size: int = 256) -> np.ndarray:
    """The memory: f(x) of the chosen normal images, (M, F) float32. ``images`` are the training
    input in model units ([-1, 1]), as ``fit`` has them; only the chosen ones are read."""
    if len(images) == 0:
        raise DetectorError("the critic-feature memory needs at least one normal training image; got none")
    return _features(critic, np.asarray(images, np.float32)[chosen(len(images), memory_size, seed)], batch_size)


def check(memory, n_features: int, source: str = "memory") -> np.ndarray:
    """The memory as (M, F) float32, or an error naming ``source`` and what is wrong with it."""
    memory = np.asarray(memory)
    if memory.ndim != 2 or memory.shape[0] < 1 or memory.shape[1] != n_features:
        raise DetectorError(f"{source}: a critic-feature memory must be (images >= 1, {n_features}) for this "
                            f"critic; got shape {memory.shape}")
    if not np.all(np.isfinite(memory)):
        raise DetectorError(f"{source}: the critic-feature memory holds NaN or infinite values")
    return memory.astype(np.float32)


def centred(memory: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(memory - centre, centre)``, float32, with the centre the mean of its rows rounded to
    float32 first: the features are centred by that same float32 centre when scored."""
    centre = np.asarray(memory, np.float64).mean(axis=0).astype(np.float32)
    return (np.asarray(memory, np.float64) - centre.astype(np.float64)).astype(np.float32), centre
