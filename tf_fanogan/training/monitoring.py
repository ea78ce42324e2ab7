"""Training you can watch: TensorBoard image summaries and GAN-health warnings.

:class:`TrainingMonitor` is a Keras callback for either stage. Scalars (the train steps'
``c_loss``, ``g_loss``, ``gp``, ``w_dist``, ``enc_loss``/``izi``/``izi_f``) are written by
Keras' own ``TensorBoard`` callback next to it; the monitor adds what Keras cannot know:

- stage 1: a grid of samples G(z) from a **fixed** z (the same noise every time, so epochs
  are comparable), a latent-interpolation grid between fixed pairs of z (the DCGAN check that
  G has a smooth, varied latent space), and health checks;
- stage 2: real / reconstruction / residual triptychs of fixed normal validation images and
  their izi (A_R) and izi_f (A_R + kappa * A_D) losses.

Health checks (printed, logged to ``<log_dir>/health.log`` and to TensorBoard as text):

- **collapsed diversity** -- the mean pairwise distance between fixed-z samples falls below
  ``collapse_ratio`` times that between real images (mode collapse: "all samples look alike");
- **diverging critic** -- the Wasserstein estimate rose for ``patience`` epochs in a row and is
  more than ``divergence_factor`` times its lowest value so far.

(NaN/inf is :class:`tf_fanogan.training.callbacks.NaNGuard`'s job: it stops training.)
"""

from __future__ import annotations

import logging
import os

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan.models import latent as latent_lib
from tf_fanogan.scoring import forward as scoring

logger = logging.getLogger("tf_fanogan")


def image_grid(images, ncols: int) -> np.ndarray:
    """(N, H, W, C) images in [0, 1] -> one (rows*H + gaps, ncols*W + gaps, C) grid, 1-px gaps."""
    images = np.asarray(images, np.float32)
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    grid = np.ones((nrows * (h + 1) - 1, ncols * (w + 1) - 1, c), np.float32)
    for i, img in enumerate(images):
        r, q = divmod(i, ncols)
        grid[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = img
    return grid


def mean_pairwise_distance(images) -> float:
    """Mean L2 distance between all pairs of images (N, ...)."""
    flat = np.asarray(images, np.float64).reshape(len(images), -1)
    sq = (flat ** 2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0.0)
    n = len(flat)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


class TrainingMonitor(keras.callbacks.Callback):
    """TensorBoard images and GAN-health warnings for stage ``"gan"`` or ``"encoder"``.

    Args:
        log_dir: TensorBoard directory for this stage.
        stage: ``"gan"`` or ``"encoder"``.
        generator, critic, encoder: The f-AnoGAN networks (encoder only for stage 2).
        real_images: Fixed normal images in [-1, 1] (N, H, W, C): diversity reference in
            stage 1, validation triptychs in stage 2.
        kappa: Weight of A_D in izi_f.
        interval: Write images every ``interval`` epochs (and after the last epoch).
        n_samples: Fixed z for the sample grid.
        collapse_ratio, divergence_factor, patience: Health thresholds (see the module).
        seed: Seed of the fixed z.
        latent_prior: The generator's prior (``normal`` or ``uniform``), which the fixed z are drawn from.
    """

    def __init__(self, log_dir, stage, generator, critic, encoder=None, real_images=None, kappa=1.0,
                 interval=1, n_samples=16, collapse_ratio=0.25, divergence_factor=3.0, patience=3, seed=0,
                 latent_prior="normal"):
        super().__init__()
        if stage not in ("gan", "encoder"):
            raise ValueError(f"stage must be 'gan' or 'encoder', got {stage!r}")
        if stage == "encoder" and (encoder is None or real_images is None):
            raise ValueError("the encoder monitor needs the encoder and fixed validation images")
        self.log_dir, self.stage = log_dir, stage
        self.generator, self.critic, self.encoder = generator, critic, encoder
        self.real = None if real_images is None else np.asarray(real_images[:n_samples], np.float32)
        self.kappa, self.interval = float(kappa), max(1, int(interval))
        self.collapse_ratio, self.divergence_factor, self.patience = collapse_ratio, divergence_factor, patience
        rng = np.random.default_rng(seed)
        latent = generator.input_shape[-1]
        self.z = latent_lib.sample_numpy(rng, (n_samples, latent), latent_prior)
        ends = latent_lib.sample_numpy(rng, (4, 2, latent), latent_prior)
        t = np.linspace(0, 1, 8, dtype=np.float32)[None, :, None]
        self.z_interp = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(-1, latent)
        self.warnings: list[str] = []
        self._w_history: list[float] = []
        self._writer = None

    # ------------------------------------------------------------------ plumbing
    def _w(self):
        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def _warn(self, epoch: int, message: str) -> None:
        text = f"GAN health, epoch {epoch + 1}: {message}"
        self.warnings.append(text)
        logger.warning(text)
        print(f"WARNING: {text}", flush=True)
        with open(os.path.join(self.log_dir, "health.log"), "a") as f:
            f.write(text + "\n")
        with self._w().as_default():
            tf.summary.text("health/warnings", text, step=epoch + 1)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        last = self.params and epoch + 1 == self.params.get("epochs")
        if self.stage == "gan":
            self._gan_epoch(epoch, logs, write_images=last or (epoch + 1) % self.interval == 0)
        elif last or (epoch + 1) % self.interval == 0:
            self._encoder_epoch(epoch)
        self._w().flush()

    # ------------------------------------------------------------------ stage 1
    def _gan_epoch(self, epoch, logs, write_images):
        samples = scoring.to_input_units(self.generator(self.z, training=False)).numpy()
        step = epoch + 1
        with self._w().as_default():
            if write_images:
                tf.summary.image("samples/fixed_z", image_grid(samples, 4)[None], step=step)
                interp = scoring.to_input_units(self.generator(self.z_interp, training=False)).numpy()
                tf.summary.image("samples/interpolation", image_grid(interp, 8)[None], step=step)
            if self.real is not None:
                ratio = mean_pairwise_distance(samples) / max(
                    mean_pairwise_distance(scoring.to_input_units(self.real).numpy()), 1e-12)
                tf.summary.scalar("health/sample_diversity_ratio", ratio, step=step)
                if ratio < self.collapse_ratio:
                    self._warn(epoch, f"sample diversity collapsed: fixed-z samples are {ratio:.2f}x as far apart "
                                      f"as real images (threshold {self.collapse_ratio}); likely mode collapse")
        if "w_dist" in logs:
            w = float(logs["w_dist"])
            self._w_history.append(w)
            h = self._w_history
            rising = len(h) > self.patience and all(h[-i] > h[-i - 1] for i in range(1, self.patience + 1))
            lowest = min(abs(v) for v in h)
            if rising and abs(w) > self.divergence_factor * max(lowest, 1e-6):
                self._warn(epoch, f"critic diverging: the Wasserstein estimate rose {self.patience} epochs in a row "
                                  f"to {w:.4g}, {abs(w) / max(lowest, 1e-6):.1f}x its lowest ({lowest:.4g})")

    # ------------------------------------------------------------------ stage 2
    def _encoder_epoch(self, epoch):
        out = scoring.score_batch(self.generator, self.critic, self.encoder, tf.constant(self.real), self.kappa)
        real01 = scoring.to_input_units(self.real).numpy()
        recon, resid = out["reconstruction"].numpy(), out["residual_map"].numpy()
        rows = np.concatenate([np.stack([a, b, c]) for a, b, c in zip(real01, recon, resid)])
        step = epoch + 1
        with self._w().as_default():
            tf.summary.image("reconstructions/real_reconstruction_residual", image_grid(rows, 6)[None], step=step)
            tf.summary.scalar("encoder/val_izi", float(out["residual_score"].numpy().mean()), step=step)
            tf.summary.scalar("encoder/val_izi_f", float(out["anomaly_score"].numpy().mean()), step=step)


def stage_monitors(tensorboard: str | None, stage: str, networks: dict, fixed_images, config, interval: int = 1) -> list:
    """Keras' TensorBoard callback (scalars) and a :class:`TrainingMonitor` (images, GAN health)
    for one stage, logging under ``<tensorboard>/<stage>/``; none without a directory."""
    if not tensorboard:
        return []
    log_dir = os.path.join(tensorboard, stage)
    return [keras.callbacks.TensorBoard(log_dir, write_graph=False, update_freq="epoch"),
            TrainingMonitor(os.path.join(log_dir, "monitor"), stage, networks["generator"], networks["critic"],
                            networks["encoder"] if stage == "encoder" else None, fixed_images[:16],
                            kappa=config.encoder.kappa, interval=interval, seed=config.seed,
                            latent_prior=config.model.latent_prior)]
