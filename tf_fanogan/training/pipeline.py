"""``tf.data`` input of both training stages: seeded, stateless shuffling in whole batches.

Every epoch is a fresh permutation of the training images drawn with
``tf.random.experimental.index_shuffle`` from ``(seed, epoch)`` alone. Unlike
``Dataset.shuffle``, no random state lives in the pipeline, so the order is the same on one
device, under any ``tf.distribute`` strategy (whose dataset rewrites would re-seed a shuffle
buffer) and after a resume, where the batches already trained on are skipped by arithmetic
rather than by producing and discarding them. Batches are gathered from the in-memory
images, so there is no shuffle buffer to fill and nothing is decoded per step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_fanogan.training import distribute


def training_dataset(images: np.ndarray, batch_size: int, seed: int, skip_batches: int = 0) -> tf.data.Dataset:
    """An endless dataset of ``batch_size`` images, reshuffled every epoch.

    Args:
        images: float32 array (N, H, W, C), the training set (model units).
        batch_size: Images per element (the global batch); batches may span two epochs,
            so no image is ever dropped from the stream.
        seed: Shuffle seed.
        skip_batches: Batches to leave out at the start (those trained before a resume).

    Returns:
        A ``tf.data.Dataset`` of float32 (batch_size, H, W, C), with options set so that a
        multi-worker strategy shards it by element.
    """
    n = len(images)
    if n == 0:
        raise ValueError("no training images")
    table = tf.constant(np.asarray(images, np.float32))

    def gather(positions):
        epoch, index = positions // n, positions % n
        seeds = tf.stack([tf.fill(tf.shape(epoch), tf.cast(seed, tf.int64)), epoch, tf.zeros_like(epoch)], axis=-1)
        # The raw op takes one seed triple per index (the public wrapper wants one seed).
        order = tf.raw_ops.RandomIndexShuffle(index=index, seed=seeds, max_index=tf.constant(n - 1, tf.int64))
        return tf.gather(table, order)

    ds = (tf.data.Dataset.range(int(skip_batches) * batch_size, np.iinfo(np.int64).max)
          .batch(batch_size, drop_remainder=True)
          .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
          .prefetch(tf.data.AUTOTUNE))
    return distribute.distribute_options(ds)
