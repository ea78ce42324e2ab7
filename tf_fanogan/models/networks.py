"""The f-AnoGAN networks: ResNet ``Generator``, layer-norm ``Critic`` and ``Encoder``.

The architecture follows the authors' 64x64 ResNet (Gulrajani et al. 2017, as used by
Schlegl et al. 2019), generalised to square images of 16-256 pixels and 1 or 3 channels:

* Generator: z -> dense to 4x4x(m*dim) -> up-sampling pre-activation residual blocks
  (nearest-neighbour up-sample, then conv) -> BN -> ReLU -> 3x3 conv -> tanh.
* Critic: 3x3 conv -> down-sampling residual blocks (conv, then 2x2 mean-pool) with
  per-sample layer norm -> features f(x) (the flattened last block) -> linear score.
* Encoder: the critic's trunk with batch norm -> linear, then the head that matches the
  latent prior (identity for z ~ N(0, I), tanh for z ~ U(-1, 1); see :mod:`tf_fanogan.models.latent`).

Residual blocks have a bias-free first conv, a biased second conv and a biased 1x1 shortcut;
every norm has one scale and one offset per channel. With the paper's settings
(64x64x1, dim 64, latent 128) the three networks hold 24,561,218 trainable parameters.
"""

from __future__ import annotations

import contextlib

import keras
import tensorflow as tf
from keras import layers

from tf_fanogan.models import latent
from tf_fanogan.config import ModelConfig


@contextlib.contextmanager
def dtype_policy(name: str):
    """Temporarily sets the global Keras dtype policy (``float32`` or ``mixed_float16``)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def channel_multipliers(num_blocks: int) -> list[tuple[int, int]]:
    """(in, out) width multipliers of the critic's down-sampling blocks.

    For 64x64 (4 blocks) this is the paper's 1->2->4->8->8; the generator mirrors it.
    """
    return [(min(8, 2**i), min(8, 2 ** (i + 1))) for i in range(num_blocks)]


def _norm(kind: str, name: str) -> layers.Layer:
    if kind == "batch":
        # Built under a tf.distribute strategy, batch statistics are taken over the global
        # batch (all replicas), as on one device.
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name,
                                         synchronized=tf.distribute.has_strategy())
    # One group over all channels: statistics per sample over H, W, C, with a scale and an
    # offset per channel -- the authors' layer norm. LayerNormalization(axis=[1, 2, 3])
    # would instead learn a scale per pixel.
    return layers.GroupNormalization(groups=1, epsilon=1e-5, name=name)


def _up_block(x, filters_in: int, filters_out: int, name: str):
    shortcut = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_shortcut_up")(x)
    shortcut = layers.Conv2D(filters_out, 1, name=f"{name}_shortcut")(shortcut)
    y = _norm("batch", f"{name}_norm1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(y)
    y = layers.Conv2D(filters_out, 3, padding="same", use_bias=False,
                      kernel_initializer="he_uniform", name=f"{name}_conv1")(y)
    y = _norm("batch", f"{name}_norm2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters_out, 3, padding="same",
                      kernel_initializer="he_uniform", name=f"{name}_conv2")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def _down_block(x, filters_in: int, filters_out: int, norm: str, name: str):
    shortcut = layers.AveragePooling2D(2, name=f"{name}_shortcut_pool")(x)
    shortcut = layers.Conv2D(filters_out, 1, name=f"{name}_shortcut")(shortcut)
    y = _norm(norm, f"{name}_norm1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters_in, 3, padding="same", use_bias=False,
                      kernel_initializer="he_uniform", name=f"{name}_conv1")(y)
    y = _norm(norm, f"{name}_norm2")(y)
    y = layers.ReLU(name=f"{name}_relu2")(y)
    y = layers.Conv2D(filters_out, 3, padding="same",
                      kernel_initializer="he_uniform", name=f"{name}_conv2")(y)
    y = layers.AveragePooling2D(2, name=f"{name}_pool")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def _trunk(images, config: ModelConfig, norm: str, prefix: str):
    x = layers.Conv2D(config.dim, 3, padding="same", name=f"{prefix}_input_conv")(images)
    for i, (m_in, m_out) in enumerate(channel_multipliers(config.num_blocks)):
        x = _down_block(x, m_in * config.dim, m_out * config.dim, norm, f"{prefix}_res{i + 1}")
    return layers.Flatten(name=f"{prefix}_flatten")(x)


class _ConfigurableNetwork(keras.Model):
    """Functional network whose constructor arguments are its config."""

    def __init__(self, inputs, outputs, image_size, channels, dim, latent_dim, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.image_size = image_size
        self.channels = channels
        self.dim = dim
        self.latent_dim = latent_dim

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_size": self.image_size,
            "channels": self.channels,
            "dim": self.dim,
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @property
    def model_config(self) -> ModelConfig:
        return ModelConfig(self.image_size, self.channels, self.dim, self.latent_dim)


@keras.saving.register_keras_serializable(package="tf_fanogan")
class Generator(_ConfigurableNetwork):
    """Maps z in R^latent_dim to an image in [-1, 1] of shape (image_size, image_size, channels).

    Reference: Schlegl et al., "f-AnoGAN", Medical Image Analysis 54 (2019);
    Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
    """

    def __init__(self, image_size=64, channels=1, dim=64, latent_dim=128, name="generator", **kwargs):
        cfg = ModelConfig(image_size, channels, dim, latent_dim)
        cfg.validate()
        mults = channel_multipliers(cfg.num_blocks)[::-1]
        z = keras.Input((latent_dim,), name="z")
        x = layers.Dense(4 * 4 * mults[0][1] * dim, name="generator_dense")(z)
        x = layers.Reshape((4, 4, mults[0][1] * dim), name="generator_reshape")(x)
        for i, (m_out, m_in) in enumerate(mults):
            x = _up_block(x, m_in * dim, m_out * dim, f"generator_res{i + 1}")
        x = _norm("batch", "generator_out_norm")(x)
        x = layers.ReLU(name="generator_out_relu")(x)
        x = layers.Conv2D(channels, 3, padding="same", name="generator_out_conv")(x)
        images = layers.Activation("tanh", dtype="float32", name="images")(x)
        super().__init__(z, images, image_size, channels, dim, latent_dim, name=name, **kwargs)


@keras.saving.register_keras_serializable(package="tf_fanogan")
class Critic(_ConfigurableNetwork):
    """WGAN critic returning ``(score, features)``; features f(x) feed izi_f and A_D.

    Uses per-sample layer norm (never batch norm: the gradient penalty is per sample).
    Both outputs are float32 under a mixed-precision policy.
    """

    def __init__(self, image_size=64, channels=1, dim=64, latent_dim=128, name="critic", **kwargs):
        cfg = ModelConfig(image_size, channels, dim, latent_dim)
        cfg.validate()
        images = keras.Input(cfg.image_shape, name="images")
        features = _trunk(images, cfg, "layer", "critic")
        score = layers.Dense(1, dtype="float32", name="critic_score")(features)
        score = layers.Reshape((), dtype="float32", name="score")(score)
        features = layers.Activation("linear", dtype="float32", name="features")(features)
        super().__init__(images, [score, features], image_size, channels, dim, latent_dim,
                         name=name, **kwargs)


@keras.saving.register_keras_serializable(package="tf_fanogan")
class Encoder(_ConfigurableNetwork):
    """Maps an image in [-1, 1] to z = head(linear(trunk(x))).

    Args:
        head: ``linear`` (z unbounded, for the normal prior; the authors' default) or
            ``tanh`` (z in (-1, 1), for the uniform prior).
    """

    def __init__(self, image_size=64, channels=1, dim=64, latent_dim=128, head="linear", name="encoder",
                 **kwargs):
        cfg = ModelConfig(image_size, channels, dim, latent_dim)
        cfg.validate()
        if head not in ("linear", "tanh"):
            raise ValueError(f"encoder head must be 'linear' or 'tanh', got {head!r}")
        images = keras.Input(cfg.image_shape, name="images")
        features = _trunk(images, cfg, "batch", "encoder")
        z = layers.Dense(latent_dim, name="encoder_dense")(features)
        z = layers.Activation(head, dtype="float32", name="z")(z)
        super().__init__(images, z, image_size, channels, dim, latent_dim, name=name, **kwargs)
        self.head = head

    def get_config(self):
        return {**super().get_config(), "head": self.head}


def build_networks(config: ModelConfig) -> tuple[Generator, Critic, Encoder]:
    """Builds the three networks for ``config`` under the current dtype policy."""
    config.validate()
    kwargs = dict(image_size=config.image_size, channels=config.channels,
                  dim=config.dim, latent_dim=config.latent_dim)
    head = latent.encoder_head(config.latent_prior, config.encoder_head)
    return Generator(**kwargs), Critic(**kwargs), Encoder(**kwargs, head=head)
