"""Stage 2 of f-AnoGAN: ``EncoderTrainer``, training E with G and the critic frozen."""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_fanogan.training import distribute
from tf_fanogan.models import latent
from tf_fanogan.models import losses
from tf_fanogan.scoring import forward as scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import ENCODER_MODES
from tf_fanogan.models.rng_state import SeedStateMixin


@keras.saving.register_keras_serializable(package="tf_fanogan")
class EncoderTrainer(SeedStateMixin, keras.Model):
    """Trains the encoder E of f-AnoGAN (Schlegl et al. 2019, section 2.2).

    The generator and the critic are frozen: only E's variables receive gradients, and G
    and the critic run in inference mode. Modes:

    * ``izi_f`` (default): ``MSE(x, G(E(x))) + kappa * MSE(f(x), f(G(E(x))))``, the mean of
      the anomaly score A over the batch (the same function that scores images);
    * ``izi``: the image term ``MSE(x, G(E(x)))`` alone;
    * ``ziz``: ``MSE(z, E(G(z)))`` on z drawn from the generator's prior
      (``latent_prior``), which the encoder's head can reach (linear for N(0, I), tanh
      for U(-1, 1)).

    Metrics: ``enc_loss`` (the mode's loss), ``izi`` (mean A_R) and ``izi_f`` (mean A_R +
    kappa * A_D); for ``ziz`` the last two are measured on the real batch as well.
    ``evaluate``/validation reports the same keys on held-out normal images.
    """

    def __init__(self, generator, critic, encoder, mode="izi_f", kappa=1.0, seed=0, latent_prior="normal",
                 **kwargs):
        super().__init__(**kwargs)
        self.latent_prior = latent_prior
        if mode not in ENCODER_MODES:
            raise ValueError(f"mode must be one of {ENCODER_MODES}, got {mode!r}")
        self.generator = generator
        self.critic = critic
        self.encoder = encoder
        self.mode = mode
        self.kappa = float(kappa)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="enc_loss")
        self.izi_tracker = keras.metrics.Mean(name="izi")
        self.izif_tracker = keras.metrics.Mean(name="izi_f")
        self.built = True

    def compile(self, optimizer="rmsprop", **kwargs):
        """Compiles, then builds the optimizer on the encoder's variables only (the ones it
        updates), so that ``BackupAndRestore`` restores its state on resume."""
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.encoder.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.izi_tracker, self.izif_tracker]

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def _scores(self, images, training):
        return scoring.score_batch(self.generator, self.critic, self.encoder, images,
                                   self.kappa, encoder_training=training)

    def _ziz_loss(self, batch, training):
        z = distribute.replica_rows(latent.sample(
            (batch * distribute.num_replicas(), self.encoder.latent_dim), self.latent_prior,
            seed=self.seed_generator))
        fake = self.generator(z, training=False)
        return losses.ziz_loss(z, self.encoder(fake, training=training))

    def _loss(self, images, training):
        if self.mode == "ziz":
            return self._ziz_loss(tf.shape(images)[0], training), None
        scores = self._scores(images, training)
        if self.mode == "izi":
            return tf.reduce_mean(scores[sig.RESIDUAL_SCORE]), scores
        return tf.reduce_mean(scores[sig.ANOMALY_SCORE]), scores

    def _update_metrics(self, loss, scores, images):
        if scores is None:
            scores = self._scores(images, False)
        self.loss_tracker.update_state(loss)
        self.izi_tracker.update_state(tf.reduce_mean(scores[sig.RESIDUAL_SCORE]))
        self.izif_tracker.update_state(tf.reduce_mean(scores[sig.ANOMALY_SCORE]))
        return distribute.metric_results(self.metrics)

    def train_step(self, data):
        images = tf.cast(data[0] if isinstance(data, (tuple, list)) else data, tf.float32)
        variables = self.encoder.trainable_variables
        with tf.GradientTape() as tape:
            loss, scores = self._loss(images, training=True)
            scaled = self.optimizer.scale_loss(distribute.scale_loss(loss))
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update_metrics(loss, scores, images)

    def test_step(self, data):
        images = tf.cast(data[0] if isinstance(data, (tuple, list)) else data, tf.float32)
        loss, scores = self._loss(images, training=False)
        return self._update_metrics(loss, scores, images)

    def get_config(self):
        return {
            "name": self.name,
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "mode": self.mode,
            "kappa": self.kappa,
            "seed": self.seed,
            "latent_prior": self.latent_prior,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "critic", "encoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
