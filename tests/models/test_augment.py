"""Critic-input augmentation: shapes, seeding, gradients, and a GAN that trains with it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from tf_fanogan.models.augment import augment
from tf_fanogan.detector import FAnoGAN


def test_augmentation_keeps_shapes_is_seeded_and_passes_gradients():
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 1)).astype("float32"))
    for mode in ("flip", "translate", "flip_translate"):
        a = augment(x, mode, keras.random.SeedGenerator(1)).numpy()
        b = augment(x, mode, keras.random.SeedGenerator(1)).numpy()
        np.testing.assert_array_equal(a, b)
        assert a.shape == x.shape and not np.allclose(a, x.numpy())
    flipped = augment(x, "flip", keras.random.SeedGenerator(2)).numpy()
    for i in range(6):  # each image is itself or its mirror
        assert np.allclose(flipped[i], x.numpy()[i]) or np.allclose(flipped[i], x.numpy()[i, :, ::-1])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(augment(x, "flip_translate", keras.random.SeedGenerator(3)))
    g = tape.gradient(y, x).numpy()
    assert np.all(np.isfinite(g)) and g.sum() == pytest.approx(x.numpy().size, rel=0.3)
    assert augment(x, "none", keras.random.SeedGenerator(0)) is x


def test_augmented_gan_trains(normal_images):
    det = FAnoGAN(tiny_config(gan__augment="flip_translate", gan__lr_decay="linear"))
    det.fit(normal_images[:40], stage="gan", verbose=0)
    assert np.isfinite(det.history_["gan"]["c_loss"][-1])
