"""Training budgets and schedules: epochs or updates, learning-rate decay, EMA follow-up.

The authors' code counts training in updates (generator updates in stage 1, each with
``critic_steps`` critic updates; encoder updates in stage 2). A budget in updates runs as
Keras epochs of one pass over the training images each; the last epoch stops at the exact
update count (:class:`StopAfterUpdates`), so backups, logs and the resume arithmetic keep
their per-epoch meaning.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a stage runs under ``keras.Model.fit``."""

    steps_per_epoch: int
    epochs: int
    updates: int  # exact number of optimizer updates of the stage


def plan(n_images: int, images_per_update: int, epochs: int, iterations: int | None) -> Plan:
    """Epochs of one pass over ``n_images`` (at least one update each); with ``iterations``
    set, as many such epochs as the budget needs, the last one cut at the budget."""
    steps = max(1, n_images // images_per_update)
    if iterations is None:
        return Plan(steps, int(epochs), steps * int(epochs))
    steps = min(steps, int(iterations))
    return Plan(steps, math.ceil(iterations / steps), int(iterations))


def learning_rate(initial: float, decay: str, updates: int):
    """A constant rate, or one that decays linearly to 0 over ``updates`` optimizer steps."""
    if decay == "none":
        return float(initial)
    if decay == "linear":
        return keras.optimizers.schedules.PolynomialDecay(float(initial), decay_steps=max(1, int(updates)),
                                                          end_learning_rate=0.0, power=1.0)
    raise ValueError(f"lr_decay must be 'none' or 'linear', got {decay!r}")


class StopAfterUpdates(keras.callbacks.Callback):
    """Ends training after exactly ``plan.updates`` updates (the last epoch may be cut short)."""

    def __init__(self, plan: Plan):
        super().__init__()
        self.plan = plan
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch * self.plan.steps_per_epoch + batch + 1 >= self.plan.updates:
            self.model.stop_training = True


class KeepBest(keras.callbacks.EarlyStopping):
    """Early stopping on a validation metric (``val_izi_f`` for the encoder) that always ends
    with the best epoch's weights (Keras' own restores them only when it stops early)."""

    def __init__(self, patience: int, monitor: str = "val_izi_f"):
        super().__init__(monitor=monitor, mode="min", patience=int(patience), restore_best_weights=True)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.stopped_epoch == 0 and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


def refresh_batch_norm(generator, prior: str, batch_size: int, seed: int, batches: int = 64) -> None:
    """Re-estimates the generator's batch-norm moving statistics for its current weights.

    After the weights are replaced by their moving average, the statistics gathered during
    training belong to other weights. ``batches`` forward passes in training mode on z from
    the prior (momentum 0.9: 0.9^64 < 0.002 of the old statistics remain) replace them.
    """
    import tensorflow as tf

    from tf_fanogan.models import latent

    rng = np.random.default_rng(seed)
    forward = tf.function(lambda z: generator(z, training=True))  # traced once: eager calls cost ~0.1 s each
    for _ in range(batches):
        forward(tf.constant(latent.sample_numpy(rng, (max(2, batch_size), generator.input_shape[-1]), prior)))
