"""Keras callbacks the trainers use: the NaN/inf guard.

Keras' ``TerminateOnNaN`` watches only a ``loss`` entry (our train steps report ``c_loss``,
``g_loss``, ``gp``, ``w_dist`` and ``enc_loss``) and stops "gracefully", which runs
``BackupAndRestore.on_train_end`` and deletes the last good backup. :class:`NaNGuard` checks
every metric after each step and every weight at each epoch end (before the backup is
written), and raises, so the previous epoch's backup stays on disk for a resume.
"""

from __future__ import annotations

import math

import keras
import numpy as np


class TrainingDiverged(RuntimeError):
    """A loss, metric or weight became NaN or infinite; training stopped."""


class NaNGuard(keras.callbacks.Callback):
    """Stops training with :class:`TrainingDiverged` on the first non-finite metric or weight.

    Place it before ``BackupAndRestore`` in the callback list so that a diverged epoch is never
    backed up.

    Args:
        stage: Name used in the message (e.g. ``"stage 1 (WGAN-GP)"``).
        backup_dir: Where the last good state lives, for the message.
    """

    def __init__(self, stage: str, backup_dir: str | None = None):
        super().__init__()
        self.stage = stage
        self.backup_dir = backup_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _fail(self, what: str):
        done = self._epoch  # epochs completed before this one
        where = (f" The last good state (end of epoch {done}) is kept in {self.backup_dir}; rerunning the same "
                 "command resumes from it, with a smaller learning rate if you change the config."
                 if self.backup_dir and done > 0 else "")
        raise TrainingDiverged(f"{self.stage}: {what} in epoch {self._epoch + 1}; training stopped.{where}")

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(v):
                self._fail(f"metric {key!r} became {v} at step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        for w in self.model.weights:
            value = keras.ops.convert_to_numpy(w.value)
            if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
                self._fail(f"weight {w.path!r} became non-finite")
