"""The latent prior p(z) of the generator, and the encoder head that matches it.

f-AnoGAN's encoder must be able to reach the points the generator was trained on. The
authors' code (Schlegl et al. 2019) defaults to z ~ N(0, I) with a **linear** encoder head;
with a uniform prior z ~ U(-1, 1) the head is ``tanh``. Everything that draws z (stage 1,
the ``ziz`` encoder loss, sample and interpolation grids, the Turing test, the iterative
AnoGAN search) draws it from here, so one setting (``ModelConfig.latent_prior``) decides.

A 128-d normal draw lies inside (-1, 1)^128 with probability ~1e-22, so a tanh-bounded
encoder under a normal prior (what detectors saved before ``latent_prior`` existed used)
cannot reach the prior's typical set; such detectors still load and score as they did
(their encoder head is recorded as ``tanh``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan.config import ENCODER_HEADS, LATENT_PRIORS  # noqa: F401 -- re-exported


def encoder_head(prior: str, head: str = "auto") -> str:
    """The encoder's output activation: ``linear`` for the normal prior, ``tanh`` for the
    uniform one, unless ``head`` names one explicitly."""
    if head != "auto":
        return head
    return "tanh" if prior == "uniform" else "linear"


def sample(shape, prior: str, seed=None):
    """z drawn from the prior with Keras' seeded random ops (graph-safe, for train steps)."""
    if prior == "uniform":
        return keras.random.uniform(shape, minval=-1.0, maxval=1.0, seed=seed)
    return keras.random.normal(shape, seed=seed)


def sample_numpy(rng: np.random.Generator, shape, prior: str) -> np.ndarray:
    """z drawn from the prior with a NumPy generator (fixed grids, Turing test, warm-up)."""
    if prior == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def support_radius(latent_dim: int) -> float:
    """Radius beyond which a N(0, I) draw is very unlikely: sqrt(d) + 3.

    ||z|| of a d-dimensional standard normal has mean ~sqrt(d) and standard deviation
    ~1/sqrt(2), so sqrt(d) + 3 is more than four standard deviations out."""
    return math.sqrt(latent_dim) + 3.0


def project(z, prior: str):
    """Puts z back on the prior's support: clipped to [-1, 1] for the uniform prior; for the
    normal prior, rows whose norm exceeds :func:`support_radius` are scaled back onto it."""
    if prior == "uniform":
        return tf.clip_by_value(z, -1.0, 1.0)
    radius = support_radius(int(z.shape[-1]))
    return tf.clip_by_norm(z, radius, axes=[1])
