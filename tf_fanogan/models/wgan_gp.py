"""Stage 1 of f-AnoGAN: ``WGANGP``, a Keras model with a custom ``train_step``."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_fanogan.training import distribute
from tf_fanogan.models import latent
from tf_fanogan.models import losses
from tf_fanogan.models.augment import augment as augment_images
from tf_fanogan.models.rng_state import SeedStateMixin


def _is_mixed(model: keras.Model) -> bool:
    return model.dtype_policy.name == "mixed_float16" or model.compute_dtype == "float16"


def _loss_scaled(optimizer, mixed: bool):
    if mixed and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


@keras.saving.register_keras_serializable(package="tf_fanogan")
class WGANGP(SeedStateMixin, keras.Model):
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), trained through ``fit()``.

    Each ``train_step`` receives ``critic_steps * batch_size`` real images (in [-1, 1]) and
    makes ``critic_steps`` critic updates, each on its own ``batch_size`` real images as in
    the authors' code (every ``critic_steps``-th image of the batch, so that under
    ``tf.distribute`` each replica's share holds its share of every critic update), followed
    by one generator update.

    Args:
        generator: A :class:`~tf_fanogan.models.networks.Generator`.
        critic: A :class:`~tf_fanogan.models.networks.Critic`.
        critic_steps: Critic updates per generator update (5 in the paper).
        gp_weight: Gradient-penalty weight lambda (10 in the paper).
        seed: Seed of the model's own noise generator (z and alpha).
        latent_prior: ``normal`` (z ~ N(0, I)) or ``uniform`` (z ~ U(-1, 1)).
        augment: Augmentation of the critic's inputs, real and generated alike
            (see :mod:`tf_fanogan.models.augment`); ``none`` by default.

    Example:
        >>> gan = WGANGP(generator, critic)
        >>> gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9),
        ...             c_optimizer=keras.optimizers.Adam(1e-4, 0.0, 0.9))
        >>> gan.fit(dataset_of_5x_batches, epochs=10)

    Metrics: ``c_loss`` (critic loss without the penalty), ``g_loss``, ``gp`` and
    ``w_dist`` (the Wasserstein estimate E[C(x)] - E[C(G(z))]). WGAN losses are signed: a
    negative ``c_loss`` is normal and means the critic separates real from generated images.
    """

    def __init__(self, generator, critic, critic_steps=5, gp_weight=10.0, seed=0, latent_prior="normal",
                 augment="none", **kwargs):
        super().__init__(**kwargs)
        self.latent_prior = latent_prior
        self.augment = augment
        self.generator = generator
        self.critic = critic
        self.critic_steps = int(critic_steps)
        self.gp_weight = float(gp_weight)
        self.latent_dim = generator.latent_dim
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.c_loss_tracker = keras.metrics.Mean(name="c_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.w_dist_tracker = keras.metrics.Mean(name="w_dist")
        self.built = True

    def compile(self, g_optimizer, c_optimizer, **kwargs):
        """Sets both optimizers; under ``mixed_float16`` both are wrapped in loss scaling.

        Keras wraps only ``self.optimizer`` itself, so the two GAN optimizers are wrapped
        here. They are built now so that ``load_weights`` restores their state.
        """
        kwargs.setdefault("optimizer", None)  # no third, unused optimizer in checkpoints
        super().compile(**kwargs)
        mixed = _is_mixed(self.critic)
        self.g_optimizer = _loss_scaled(g_optimizer, mixed)
        self.c_optimizer = _loss_scaled(c_optimizer, mixed)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)

    @property
    def metrics(self):
        return [self.c_loss_tracker, self.g_loss_tracker, self.gp_tracker, self.w_dist_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def _noise(self, batch):
        # Drawn for the global batch on every replica, each keeping its own rows: the same
        # noise per image on N replicas as on one device (see tf_fanogan.training.distribute).
        n = distribute.num_replicas()
        z = latent.sample((batch * n, self.latent_dim), self.latent_prior, seed=self.seed_generator)
        return distribute.replica_rows(z)

    def _critic_input(self, images):
        if self.augment == "none":
            return images
        return augment_images(images, self.augment, self.seed_generator)

    def _critic_step(self, real):
        batch = tf.shape(real)[0]
        z = self._noise(batch)
        alpha = distribute.replica_rows(
            keras.random.uniform((batch * distribute.num_replicas(), 1, 1, 1), seed=self.seed_generator))
        fake = self.generator(z, training=True)
        real, fake = self._critic_input(real), self._critic_input(tf.cast(fake, tf.float32))
        variables = self.critic.trainable_variables
        with tf.GradientTape() as tape:
            real_scores, _ = self.critic(real, training=True)
            fake_scores, _ = self.critic(fake, training=True)
            c_loss = losses.critic_loss(real_scores, fake_scores)
            gp = losses.gradient_penalty(
                lambda x: self.critic(x, training=True)[0], real, fake, alpha
            )
            loss = c_loss + self.gp_weight * gp
            scaled = self.c_optimizer.scale_loss(distribute.scale_loss(loss))
        grads = tape.gradient(scaled, variables)
        self.c_optimizer.apply_gradients(zip(grads, variables))
        return c_loss, gp, losses.wasserstein_estimate(real_scores, fake_scores)

    def _generator_step(self, batch):
        z = self._noise(batch)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            fake = self._critic_input(tf.cast(self.generator(z, training=True), tf.float32))
            fake_scores, _ = self.critic(fake, training=True)
            g_loss = losses.generator_loss(fake_scores)
            scaled = self.g_optimizer.scale_loss(distribute.scale_loss(g_loss))
        grads = tape.gradient(scaled, variables)
        self.g_optimizer.apply_gradients(zip(grads, variables))
        return g_loss

    def train_step(self, data):
        real_all = data[0] if isinstance(data, (tuple, list)) else data
        real_all = tf.cast(real_all, tf.float32)
        batch = tf.shape(real_all)[0] // self.critic_steps
        for i in range(self.critic_steps):
            # Strided, so that a replica's share of the global batch holds its share of
            # every critic step's images (the same images per step on N replicas as on one).
            real = real_all[i::self.critic_steps]
            c_loss, gp, w_dist = self._critic_step(real)
            self.c_loss_tracker.update_state(c_loss)
            self.gp_tracker.update_state(gp)
            self.w_dist_tracker.update_state(w_dist)
        self.g_loss_tracker.update_state(self._generator_step(batch))
        return distribute.metric_results(self.metrics)

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "critic_steps": self.critic_steps,
            "gp_weight": self.gp_weight,
            "seed": self.seed,
            "latent_prior": self.latent_prior,
            "augment": self.augment,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["critic"] = keras.saving.deserialize_keras_object(config["critic"])
        return cls(**config)
