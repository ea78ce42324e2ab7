"""Helpers of the trainer tests (tests/models/): a 16x16 width-8 config, random images, a short WGAN-GP fit."""

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan.config import ModelConfig
from tf_fanogan.models.networks import build_networks
from tf_fanogan.models.wgan_gp import WGANGP


CFG = ModelConfig(16, 1, 8, 16)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)).astype("float32")


def adam():
    return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)


def snapshot(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model):
    return any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights))


def gan_fit(jit=False, seed=0, critic_steps=5):
    keras.utils.set_random_seed(seed)
    g, c, _ = build_networks(CFG)
    gan = WGANGP(g, c, critic_steps=critic_steps, seed=seed)
    gan.compile(g_optimizer=adam(), c_optimizer=adam(), jit_compile=jit)
    g0, c0 = snapshot(g), snapshot(c)
    hist = gan.fit(tf.data.Dataset.from_tensor_slices(images(40)).batch(4 * critic_steps, drop_remainder=True),
                   epochs=1, verbose=0)
    return gan, g0, c0, hist
