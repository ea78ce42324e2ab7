"""A training run's work directory: run identity, per-epoch backups, finished stages.

``<workdir>/run.json`` records, per stage, the data fingerprint and the settings that define
the run; resuming with other data or settings is refused (it would mix two trainings).
``backup_<stage>/`` holds Keras' ``BackupAndRestore`` state after every epoch (weights,
optimizers, noise-generator state); ``<stage>_log.csv`` the epoch metrics; ``<stage>_done/``
the weights and history of a finished stage, so a rerun skips it. On a multi-worker run the
chief uses the directory itself and worker ``i`` uses ``<workdir>/worker_<i>/``.
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from tf_fanogan.errors import DetectorError
from tf_fanogan.training import distribute
from tf_fanogan.training.callbacks import NaNGuard
from tf_fanogan.utils.atomic import write_directory_atomically, write_file_atomically

RUN_FILE = "run.json"
STAGE_NETWORKS = {"gan": ("generator", "critic"), "encoder": ("encoder",)}
STAGE_LABELS = {"gan": "stage 1/2 (WGAN-GP)", "encoder": "stage 2/2 (encoder)"}
WEIGHT_FILES = {"generator": "generator.weights.h5", "critic": "critic.weights.h5",
                "encoder": "encoder.weights.h5"}
# Settings that may change between a run and its resumption: longer budgets, another learning
# rate (e.g. after a divergence), XLA on or off, early-stopping patience.
RESUMABLE = {"epochs", "iterations", "learning_rate", "beta_1", "beta_2", "rho", "epsilon", "jit_compile",
             "early_stopping"}


class WorkdirError(DetectorError):
    """The work directory holds another run."""


def for_worker(workdir: str | None, strategy) -> str | None:
    """The directory this process uses: the workdir on the chief, ``worker_<i>/`` elsewhere."""
    if not workdir or distribute.is_chief(strategy):
        return workdir
    return os.path.join(workdir, f"worker_{distribute.worker_index(strategy)}")


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def stage_identity(config, data_fingerprint: str, stage: str) -> dict:
    c = config.to_dict()
    keep = lambda section: {k: v for k, v in section.items() if k not in RESUMABLE}  # noqa: E731
    ident = {"data_fingerprint": data_fingerprint, "model": c["model"], "gan": keep(c["gan"]),
             "seed": c["seed"], "mixed_precision": c["mixed_precision"]}
    if stage == "encoder":
        ident["encoder"] = keep(c["encoder"])
    return jsonable(ident)


class Workdir:
    """One run's directory (``path`` may be None: then nothing is written or resumed)."""

    def __init__(self, path: str | None):
        self.path = path

    def claim(self, config, data_fingerprint: str, stages) -> None:
        """Records the run's identity per stage, refusing a directory that holds another run."""
        if not self.path:
            return
        os.makedirs(self.path, exist_ok=True)
        file = os.path.join(self.path, RUN_FILE)
        runs = {}
        if os.path.exists(file):
            with open(file) as f:
                runs = json.load(f)
        for stage in stages:
            ident = stage_identity(config, data_fingerprint, stage)
            previous = runs.get(stage)
            if previous is not None and previous != ident:
                changed = sorted(k for k in ident if previous.get(k) != ident[k])
                raise WorkdirError(f"{self.path} holds a {stage} run with other {', '.join(changed)}; resume it with "
                                   "the same data and settings, or start over (--fresh or another --workdir)")
            runs[stage] = ident
        write_file_atomically(file, lambda f: json.dump(runs, f, indent=2))

    def _done(self, stage: str) -> str:
        return os.path.join(self.path, f"{stage}_done")

    def publish(self, stage: str, networks: dict, history: dict) -> None:
        """Writes a finished stage's weights and history, so that a rerun skips the stage."""
        if not self.path:
            return

        def write(tmp):
            for name in STAGE_NETWORKS[stage]:
                networks[name].save_weights(os.path.join(tmp, WEIGHT_FILES[name]))
            with open(os.path.join(tmp, "history.json"), "w") as f:
                json.dump(jsonable(history), f)

        write_directory_atomically(self._done(stage), write)

    def restore(self, stage: str, networks: dict) -> dict | None:
        """Loads a stage finished by an earlier run into ``networks``: its history, or None."""
        if not self.path or not os.path.isdir(self._done(stage)):
            return None
        for name in STAGE_NETWORKS[stage]:
            networks[name].load_weights(os.path.join(self._done(stage), WEIGHT_FILES[name]))
        with open(os.path.join(self._done(stage), "history.json")) as f:
            return json.load(f)

    def backed_up_epochs(self, stage: str) -> int:
        """Epochs completed by an interrupted run (``BackupAndRestore`` metadata), 0 if none.

        A resumed run skips the batches those epochs used, so it sees the same data order as an
        uninterrupted run."""
        if not self.path:
            return 0
        try:
            with open(os.path.join(self.path, f"backup_{stage}", "training_metadata.json")) as f:
                return max(0, int(json.load(f)["epoch"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def callbacks(self, stage: str, plan, extra=None) -> list:
        """The stage's callbacks: exact budget, NaN guard, then (with a directory) backups and
        the CSV log, then ``extra``."""
        from tf_fanogan.training import schedule

        backup = os.path.join(self.path, f"backup_{stage}") if self.path else None
        cbs = [schedule.StopAfterUpdates(plan), NaNGuard(STAGE_LABELS[stage], backup)]
        # (NaNGuard before BackupAndRestore: a diverged epoch is never backed up)
        if self.path:
            os.makedirs(self.path, exist_ok=True)
            cbs += [keras.callbacks.BackupAndRestore(backup, double_checkpoint=True),
                    keras.callbacks.CSVLogger(os.path.join(self.path, f"{stage}_log.csv"), append=True)]
        return cbs + list(extra or [])
