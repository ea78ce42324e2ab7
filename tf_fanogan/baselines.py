"""Baselines of the paper's comparison table (Schlegl et al. 2019, Table 2).

- :class:`ConvAutoencoder` -- the "AE" row: the f-AnoGAN encoder trunk and generator trained
  end to end on normal images with a pixel MSE; the score is the image residual.
- :class:`IterativeMapping` -- the "iterative" row (AnoGAN, Schlegl et al. 2017): for each
  image, z is optimised by back-propagation through the trained, frozen generator for
  ``steps`` updates, minimising the same izi_f objective the encoder is trained with
  (image residual + kappa * critic-feature residual); the final z is scored by the one
  scoring function. Batched and compiled into one graph, so its cost is the method's.
- The critic-feature score alone (A_D) and the izi / ziz encoders need no code here: they are
  ``feature_score`` of :func:`tf_fanogan.scoring.score_batch` and ``EncoderTrainingConfig.mode``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan import data as data_lib
from tf_fanogan import scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import ModelConfig
from tf_fanogan.networks import Encoder, Generator


class ConvAutoencoder(keras.Model):
    """Convolutional autoencoder with f-AnoGAN's trunk sizes: ``Generator(Encoder(x))``.

    Trained with ``fit`` on normal images in [-1, 1] (x -> x) under an MSE loss; scored by
    :meth:`score` as the mean squared image residual per image (batch-independent: batch
    norms run in inference mode).
    """

    def __init__(self, image_size=32, channels=1, dim=16, latent_dim=128, name="autoencoder", **kwargs):
        super().__init__(name=name, **kwargs)
        cfg = dict(image_size=image_size, channels=channels, dim=dim, latent_dim=latent_dim)
        self.model_config = ModelConfig(**cfg)
        self.encoder = Encoder(**cfg, name="ae_encoder")
        self.decoder = Generator(**cfg, name="ae_decoder")

    def call(self, images, training=False):
        return self.decoder(self.encoder(images, training=training), training=training)

    def get_config(self):
        c = self.model_config
        return {"name": self.name, "image_size": c.image_size, "channels": c.channels,
                "dim": c.dim, "latent_dim": c.latent_dim}

    def score(self, images, batch_size: int = 256) -> np.ndarray:
        """Per-image mean squared residual of images (uint8/uint16/[0, 1] floats)."""
        c = self.model_config
        x = data_lib.to_unit_range(images, c.image_size, c.channels)
        fn = self._score_fn()
        return np.concatenate([fn(tf.constant(x[s])).numpy() for s in data_lib.batches(len(x), batch_size)])

    def _score_fn(self):
        if getattr(self, "_compiled_score", None) is None:
            @tf.function(input_signature=[tf.TensorSpec((None,) + self.model_config.image_shape, tf.float32)])
            def fn(x01):
                x = scoring.to_model_units(x01)
                return tf.reduce_mean(tf.square(x - tf.cast(self(x, training=False), tf.float32)), axis=[1, 2, 3])
            self._compiled_score = fn
        return self._compiled_score


class IterativeMapping:
    """AnoGAN-style per-image latent search, batched and compiled; scored like f-AnoGAN.

    z starts at 0 (the prior's mode, so results are deterministic) and is updated ``steps``
    times with Adam on ``sum_i [MSE(x_i, G(z_i)) + kappa * MSE(f(x_i), f(G(z_i)))]``; the
    sum makes every image's update independent of the rest of its batch. Float rounding differs
    between batch shapes, and Adam amplifies it on near-zero gradients: scores for one image
    searched in batches of different sizes agree to ~1e-7 relative over 10 steps, ~2e-3 over
    40 (measured on CPU). The search is one
    compiled graph (traced once per instance), so timing it measures the method.

    Args:
        generator, critic: The trained, frozen f-AnoGAN networks.
        steps: Updates of z per image (300 in the paper's comparison).
        learning_rate: Adam step size for z.
        kappa: Weight of the critic-feature residual.
    """

    def __init__(self, generator, critic, steps: int = 300, learning_rate: float = 0.05, kappa: float = 1.0):
        self.generator, self.critic = generator, critic
        self.steps, self.learning_rate, self.kappa = int(steps), float(learning_rate), float(kappa)
        latent = generator.input_shape[-1]
        shape = (None,) + tuple(generator.output_shape[1:])
        lr, b1, b2, eps = self.learning_rate, 0.9, 0.999, 1e-8

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)])
        def search(x01):
            x = scoring.to_model_units(x01)
            z = tf.zeros((tf.shape(x)[0], latent))
            m = tf.zeros_like(z); v = tf.zeros_like(z)
            _, real_features = critic(x, training=False)
            real_features = tf.cast(real_features, tf.float32)
            for t in tf.range(1, self.steps + 1):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    fake = tf.cast(generator(z, training=False), tf.float32)
                    _, fake_features = critic(fake, training=False)
                    loss = tf.reduce_sum(
                        tf.reduce_mean(tf.square(x - fake), axis=[1, 2, 3])
                        + self.kappa * tf.reduce_mean(tf.square(real_features - tf.cast(fake_features, tf.float32)),
                                                      axis=1))
                g = tape.gradient(loss, z)
                m = b1 * m + (1 - b1) * g
                v = b2 * v + (1 - b2) * tf.square(g)
                tf_t = tf.cast(t, tf.float32)
                z = z - lr * (m / (1 - b1 ** tf_t)) / (tf.sqrt(v / (1 - b2 ** tf_t)) + eps)
            fixed = lambda _images, training=False: z  # noqa: E731 -- the searched z plays the encoder
            out = scoring.score_batch(generator, critic, fixed, x, self.kappa)
            return {k: out[k] for k in sig.SCORE_OUTPUTS}

        self._search = search

    def __call__(self, images01, batch_size: int = 64) -> dict[str, np.ndarray]:
        """Scores float32 images (N, H, W, C) in [0, 1]: the scoring function's outputs
        (``anomaly_score``, ``residual_score``, ``feature_score``, ``z_distance``) for the final z."""
        x = np.asarray(images01, np.float32)
        parts = [self._search(tf.constant(x[s])) for s in data_lib.batches(len(x), batch_size)]
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}


def iterative_mapping(generator, critic, images01, steps: int = 300, learning_rate: float = 0.05,
                      kappa: float = 1.0, batch_size: int = 64) -> dict[str, np.ndarray]:
    """One-off :class:`IterativeMapping` (reuse an instance to avoid retracing)."""
    return IterativeMapping(generator, critic, steps, learning_rate, kappa)(images01, batch_size)
