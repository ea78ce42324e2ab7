"""``FAnoGAN``: the detector facade -- fit, calibrate, score, predict, save and load."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os

import keras
import numpy as np
import tensorflow as tf

from tf_fanogan import data as data_lib
from tf_fanogan import distribute, pipeline, schedule
from tf_fanogan.atomic import recover_directory, write_directory_atomically, write_file_atomically
from tf_fanogan.callbacks import NaNGuard
from tf_fanogan import scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import FAnoGANConfig, resolve_jit_compile
from tf_fanogan.encoder_trainer import EncoderTrainer
from tf_fanogan.networks import build_networks
from tf_fanogan.wgan_gp import WGANGP

FORMAT = "tf_fanogan.detector"
FORMAT_VERSION = 1
NETWORK_FILES = {"generator": "generator.weights.h5", "critic": "critic.weights.h5",
                 "encoder": "encoder.weights.h5"}
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"


class DetectorError(RuntimeError):
    """A detector is used out of order or a detector directory is unusable."""


@contextlib.contextmanager
def dtype_policy(name: str):
    """Temporarily sets the global Keras dtype policy."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FAnoGAN:
    """f-AnoGAN anomaly detector (Schlegl et al., Medical Image Analysis 54, 2019).

    Stage 1 trains a WGAN-GP on normal images; stage 2 trains an encoder with G and the
    critic frozen; scoring is one forward pass ``A(x) = A_R(x) + kappa * A_D(x)``.

    Images may be arrays (N, H, W[, C]) of uint8, uint16 or floats in [0, 1], lists of such
    per-image arrays, or a folder / ``.npy`` path. They are resized to the model size.

    Args:
        config: A :class:`~tf_fanogan.config.FAnoGANConfig` (defaults: the paper's).
        strategy: ``"none"`` (default), ``"mirrored"``, ``"multi_worker"`` or a
            ``tf.distribute.Strategy``: both training stages run under it (see
            :mod:`tf_fanogan.distribute`); the batch sizes are global batch sizes.

    Attributes:
        threshold_: Anomaly-score threshold set by :meth:`calibrate` (None before).
        calibration_: Facts of the calibration (FPR, image count, score statistics).
        history_: Keras training histories per stage.
        updates_: Optimizer updates each stage made (generator updates for stage 1), as
            counted by the optimizers; with a budget in ``iterations`` it equals the budget.

    Example:
        >>> det = FAnoGAN(FAnoGANConfig(model=ModelConfig(image_size=32, dim=16)))
        >>> det.fit(normal_train).calibrate(normal_holdout, fpr=0.05)
        >>> det.score(test_images)["anomaly_score"]; det.predict(test_images)
        >>> det.save("detector"); same = FAnoGAN.load("detector")
    """

    def __init__(self, config: FAnoGANConfig | None = None, strategy="none"):
        self.config = (config if config is not None else FAnoGANConfig()).validate()
        self.strategy = distribute.make_strategy(strategy)
        self.threshold_: float | None = None
        self.calibration_: dict | None = None
        self.history_: dict = {}
        self.updates_: dict = {}
        self.trained_ = {"gan": False, "encoder": False}
        self.data_fingerprint_: str | None = None
        self.generator = self.critic = self.encoder = None
        self._score_fn = self._maps_fn = None
        self._build()

    # ----------------------------------------------------------------- networks
    @property
    def policy_name(self) -> str:
        return "mixed_float16" if self.config.mixed_precision else "float32"

    def _build(self) -> None:
        keras.utils.set_random_seed(self.config.seed)
        with dtype_policy(self.policy_name), self.strategy.scope():
            self.generator, self.critic, self.encoder = build_networks(self.config.model)
        shape = (None,) + self.config.model.image_shape
        kappa = self.config.encoder.kappa

        def forward(images01):
            return scoring.score_batch(self.generator, self.critic, self.encoder,
                                       scoring.to_model_units(images01), kappa)

        spec = [tf.TensorSpec(shape, tf.float32, name=sig.IMAGES)]
        self._score_fn = tf.function(
            lambda x: {k: v for k, v in forward(x).items() if k in sig.SCORE_OUTPUTS},
            input_signature=spec)
        self._maps_fn = tf.function(
            lambda x: {k: v for k, v in forward(x).items() if k in sig.MAP_OUTPUTS},
            input_signature=spec)

    def prepare(self, images, names=None) -> np.ndarray:
        """Validates and converts images to float32 (N, S, S, C) in [0, 1]."""
        if isinstance(images, (str, os.PathLike)):
            images, names, _ = data_lib.read_any(images)
        m = self.config.model
        return data_lib.to_unit_range(images, m.image_size, m.channels, names)

    # ----------------------------------------------------------------- training
    def fit(self, normal_images, validation=None, stage: str = "both", workdir: str | None = None,
            callbacks=None, verbose="auto", tensorboard: str | None = None, image_interval: int = 1) -> "FAnoGAN":
        """Trains stage 1 (WGAN-GP), stage 2 (encoder) or both on normal images only.

        Args:
            normal_images: Normal training images (see the class docstring).
            validation: Optional normal images for the encoder's validation losses.
            stage: ``"both"``, ``"gan"`` or ``"encoder"``.
            workdir: If given, each stage backs up its state there every epoch
                (``BackupAndRestore``: weights, optimizer and noise-generator state) and logs
                a CSV, and a finished stage publishes its weights there, so a rerun after a
                kill resumes from the last completed epoch and skips finished stages. A
                workdir is refused for other data or settings than the run it holds.
            callbacks: Extra Keras callbacks for both stages.
            verbose: Passed to ``keras.Model.fit`` (progress bar by default).
            tensorboard: If given, a TensorBoard directory: per stage (``gan/``, ``encoder/``)
                the losses as scalars and, from :class:`~tf_fanogan.monitoring.TrainingMonitor`,
                fixed-z sample and interpolation grids, validation triptychs and GAN-health
                warnings.
            image_interval: Write the image summaries every this many epochs.
        """
        if stage not in ("both", "gan", "encoder"):
            raise ValueError(f"stage must be 'both', 'gan' or 'encoder', got {stage!r}")
        x = self.prepare(normal_images) * 2.0 - 1.0
        self.data_fingerprint_ = hashlib.sha256(x.tobytes()).hexdigest()[:16]
        val = None if validation is None else self.prepare(validation) * 2.0 - 1.0
        if not distribute.is_chief(self.strategy):
            # Other workers of a multi-worker run keep their own backups and write no logs.
            workdir = os.path.join(workdir, f"worker_{distribute.worker_index(self.strategy)}") if workdir else None
            tensorboard = None
        if workdir:
            self._claim_workdir(workdir, ["gan", "encoder"] if stage == "both" else [stage])
        if stage in ("both", "gan") and not self._restore_stage(workdir, "gan", verbose):
            cbs = list(callbacks or []) + self._monitors(tensorboard, "gan", x, image_interval)
            self.fit_gan(x, workdir=workdir, callbacks=cbs, verbose=verbose)
            self._save_stage(workdir, "gan")
        if stage in ("both", "encoder") and not self._restore_stage(workdir, "encoder", verbose):
            cbs = list(callbacks or []) + self._monitors(tensorboard, "encoder", val if val is not None else x,
                                                        image_interval)
            self.fit_encoder(x, val, workdir=workdir, callbacks=cbs, verbose=verbose)
            self._save_stage(workdir, "encoder")
        return self

    def _monitors(self, tensorboard: str | None, stage: str, fixed_images, interval: int) -> list:
        """Keras' TensorBoard (scalars) and the TrainingMonitor (images, health) for a stage."""
        if not tensorboard:
            return []
        from tf_fanogan.monitoring import TrainingMonitor

        log_dir = os.path.join(tensorboard, stage)
        return [keras.callbacks.TensorBoard(log_dir, write_graph=False, update_freq="epoch"),
                TrainingMonitor(os.path.join(log_dir, "monitor"), stage, self.generator, self.critic,
                                self.encoder if stage == "encoder" else None, fixed_images[:16],
                                kappa=self.config.encoder.kappa, interval=interval, seed=self.config.seed,
                                latent_prior=self.config.model.latent_prior)]

    # A workdir holds one run per stage: these settings and this data. Resuming with others
    # would silently mix two trainings, so it is refused.
    _RUN_FILE = "run.json"
    _STAGE_NETWORKS = {"gan": ("generator", "critic"), "encoder": ("encoder",)}

    # Settings that may change between a run and its resumption: more epochs, another
    # learning rate (e.g. after a divergence), XLA on or off.
    _RESUMABLE = {"epochs", "iterations", "learning_rate", "beta_1", "beta_2", "rho", "epsilon", "jit_compile",
                  "early_stopping"}

    def _stage_identity(self, stage: str) -> dict:
        c = self.config.to_dict()
        keep = lambda section: {k: v for k, v in section.items() if k not in self._RESUMABLE}  # noqa: E731
        ident = {"data_fingerprint": self.data_fingerprint_, "model": c["model"], "gan": keep(c["gan"]),
                 "seed": c["seed"], "mixed_precision": c["mixed_precision"]}
        if stage == "encoder":
            ident["encoder"] = keep(c["encoder"])
        return _jsonable(ident)

    def _claim_workdir(self, workdir: str, stages) -> None:
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, self._RUN_FILE)
        runs = {}
        if os.path.exists(path):
            with open(path) as f:
                runs = json.load(f)
        for stage in stages:
            ident = self._stage_identity(stage)
            previous = runs.get(stage)
            if previous is not None and previous != ident:
                changed = sorted(k for k in ident if previous.get(k) != ident[k])
                raise DetectorError(f"{workdir} holds a {stage} run with other {', '.join(changed)}; resume it with "
                                    "the same data and settings, or start over (--fresh or another --workdir)")
            runs[stage] = ident
        write_file_atomically(path, lambda f: json.dump(runs, f, indent=2))

    def _stage_dir(self, workdir: str, stage: str) -> str:
        return os.path.join(workdir, f"{stage}_done")

    def _save_stage(self, workdir: str | None, stage: str) -> None:
        """Publishes a finished stage's weights so that a rerun skips the stage."""
        if not workdir:
            return

        def write(tmp):
            for name in self._STAGE_NETWORKS[stage]:
                getattr(self, name).save_weights(os.path.join(tmp, NETWORK_FILES[name]))
            with open(os.path.join(tmp, "history.json"), "w") as f:
                json.dump(_jsonable(self.history_.get(stage, {})), f)

        write_directory_atomically(self._stage_dir(workdir, stage), write)

    def _restore_stage(self, workdir: str | None, stage: str, verbose) -> bool:
        """Loads a stage finished by an earlier run in ``workdir``; False if there is none."""
        path = self._stage_dir(workdir, stage) if workdir else None
        if not path or not os.path.isdir(path):
            return False
        for name in self._STAGE_NETWORKS[stage]:
            getattr(self, name).load_weights(os.path.join(path, NETWORK_FILES[name]))
        with open(os.path.join(path, "history.json")) as f:
            self.history_[stage] = json.load(f)
        self.trained_[stage] = True
        if verbose:
            print(f"{'stage 1 (WGAN-GP)' if stage == 'gan' else 'stage 2 (encoder)'} already finished in "
                  f"{workdir}; reusing it (start over with --fresh)")
        return True

    def _callbacks(self, workdir, name, extra, plan):
        label = "stage 1 (WGAN-GP)" if name == "gan" else "stage 2 (encoder)"
        backup = os.path.join(workdir, f"backup_{name}") if workdir else None
        cbs = [schedule.StopAfterUpdates(plan), NaNGuard(label, backup)]
        # (NaNGuard before BackupAndRestore: a diverged epoch is never backed up)
        if workdir:
            os.makedirs(workdir, exist_ok=True)
            cbs += [keras.callbacks.BackupAndRestore(backup, double_checkpoint=True),
                    keras.callbacks.CSVLogger(os.path.join(workdir, f"{name}_log.csv"), append=True)]
        return cbs + list(extra or [])

    def _jit(self, value) -> bool:
        return resolve_jit_compile(value, distributed=distribute.is_distributed(self.strategy))

    def _check_global_batch(self, batch_size: int, field: str) -> None:
        n = self.strategy.num_replicas_in_sync
        if batch_size % n:
            raise DetectorError(f"{field}={batch_size} is the global batch; it must be a multiple of the "
                                f"{n} replicas of the strategy")

    def fit_gan(self, x, workdir=None, callbacks=None, verbose="auto"):
        """Stage 1 on float32 images in [-1, 1] (use :meth:`fit` for raw images)."""
        c = self.config.gan
        self._check_global_batch(c.batch_size, "gan.batch_size")
        per_step = c.batch_size * c.critic_steps
        plan = schedule.plan(len(x), per_step, c.epochs, c.iterations)
        with dtype_policy(self.policy_name), self.strategy.scope():
            gan = WGANGP(self.generator, self.critic, critic_steps=c.critic_steps,
                         gp_weight=c.gp_weight, seed=self.config.seed,
                         latent_prior=self.config.model.latent_prior, augment=c.augment)
            g_lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates)
            c_lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates * c.critic_steps)
            ema = dict(use_ema=True, ema_momentum=c.ema) if c.ema > 0 else {}
            gan.compile(g_optimizer=keras.optimizers.Adam(g_lr, c.beta_1, c.beta_2, **ema),
                        c_optimizer=keras.optimizers.Adam(c_lr, c.beta_1, c.beta_2),
                        jit_compile=self._jit(c.jit_compile))
        ds = pipeline.training_dataset(x, per_step, self.config.seed,
                                       skip_batches=plan.steps_per_epoch * _backed_up_epochs(workdir, "gan"))
        hist = gan.fit(ds, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                       callbacks=self._callbacks(workdir, "gan", callbacks, plan), verbose=verbose,
                       shuffle=False)
        if c.ema > 0:
            # The generator takes its averaged weights; its batch-norm statistics, gathered
            # on the live weights, are then re-estimated for them.
            gan.g_optimizer.finalize_variable_values(self.generator.trainable_variables)
            schedule.refresh_batch_norm(self.generator, self.config.model.latent_prior, c.batch_size,
                                        self.config.seed)
        self.history_["gan"] = hist.history
        self.updates_["gan"] = int(gan.g_optimizer.iterations.numpy())
        self.trained_["gan"] = True
        return hist

    def fit_encoder(self, x, validation=None, workdir=None, callbacks=None, verbose="auto"):
        """Stage 2 on float32 images in [-1, 1] (use :meth:`fit` for raw images)."""
        if not self.trained_["gan"]:
            raise DetectorError("train stage 1 (the GAN) before the encoder")
        c = self.config.encoder
        self._check_global_batch(c.batch_size, "encoder.batch_size")
        if c.early_stopping and validation is None:
            raise DetectorError("encoder.early_stopping needs normal validation images (fit(..., validation=...) "
                                "or --validation)")
        plan = schedule.plan(len(x), c.batch_size, c.epochs, c.iterations)
        with dtype_policy(self.policy_name), self.strategy.scope():
            trainer = EncoderTrainer(self.generator, self.critic, self.encoder, mode=c.mode,
                                     kappa=c.kappa, seed=self.config.seed,
                                     latent_prior=self.config.model.latent_prior)
            lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates)
            trainer.compile(optimizer=keras.optimizers.RMSprop(lr, rho=c.rho, epsilon=c.epsilon),
                            jit_compile=self._jit(c.jit_compile))
        ds = pipeline.training_dataset(x, c.batch_size, self.config.seed,
                                       skip_batches=plan.steps_per_epoch * _backed_up_epochs(workdir, "encoder"))
        val_ds = None
        if validation is not None:
            val_ds = distribute.distribute_options(tf.data.Dataset.from_tensor_slices(validation).batch(c.batch_size))
        extra = list(callbacks or [])
        if c.early_stopping:
            extra.append(schedule.KeepBest(c.early_stopping))
        hist = trainer.fit(ds, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                           validation_data=val_ds,
                           callbacks=self._callbacks(workdir, "encoder", extra, plan), verbose=verbose,
                           shuffle=False)
        self.history_["encoder"] = hist.history
        self.updates_["encoder"] = int(trainer.optimizer.iterations.numpy())
        self.trained_["encoder"] = True
        return hist

    # ----------------------------------------------------------------- scoring
    def _require(self, what="encoder"):
        if not self.trained_[what]:
            raise DetectorError(f"the detector has no trained {'encoder' if what == 'encoder' else 'GAN'} yet: call fit() first")

    def _run(self, fn, images, batch_size, progress=None):
        x = self.prepare(images)
        bs = int(batch_size or self.config.score_batch_size)
        parts = []
        for s in data_lib.batches(len(x), bs):
            parts.append({k: v.numpy() for k, v in fn(tf.constant(x[s])).items()})
            if progress is not None:
                progress.update(s.stop - s.start)
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def score(self, images, batch_size: int | None = None, progress=None) -> dict[str, np.ndarray]:
        """Scores every image: ``anomaly_score``, ``residual_score``, ``feature_score``,
        ``z_distance`` (and ``is_anomaly`` once calibrated), each of shape (N,).
        ``progress``: an object with ``update(n)`` (e.g. :class:`tf_fanogan.progress.Progress`),
        told after each batch."""
        self._require()
        out = self._run(self._score_fn, images, batch_size, progress)
        if self.threshold_ is not None:
            out[sig.IS_ANOMALY] = out[sig.ANOMALY_SCORE] > self.threshold_
        return out

    def residual_maps(self, images, batch_size: int | None = None, progress=None) -> dict[str, np.ndarray]:
        """``residual_map`` |x - G(E(x))| and ``reconstruction``, (N, S, S, C) in [0, 1]."""
        self._require()
        return self._run(self._maps_fn, images, batch_size, progress)

    def decision_function(self, images, batch_size: int | None = None) -> np.ndarray:
        """The anomaly score A(x) (higher = more anomalous), as in PyOD."""
        return self.score(images, batch_size)[sig.ANOMALY_SCORE]

    def calibrate(self, normal_holdout, fpr: float = 0.05) -> "FAnoGAN":
        """Sets ``threshold_`` so that about ``fpr`` of clean normal images are flagged.

        Uses normal images only (never anomalies or test labels). The threshold is the
        smallest observed score whose exceedance rate on the hold-out is <= ``fpr``.
        """
        if not 0.0 < fpr < 1.0:
            raise ValueError(f"fpr must be in (0, 1), got {fpr}")
        scores = self.score(normal_holdout)[sig.ANOMALY_SCORE]
        threshold = float(np.quantile(scores, 1.0 - fpr, method="higher"))
        self.threshold_ = threshold
        self.calibration_ = {
            "fpr_target": fpr,
            "fpr_on_holdout": float(np.mean(scores > threshold)),
            "n_images": int(len(scores)),
            "threshold": threshold,
            "score_mean": float(scores.mean()),
            "score_std": float(scores.std()),
            "score_percentiles": {str(p): float(np.percentile(scores, p)) for p in (1, 5, 50, 95, 99)},
        }
        return self

    def predict(self, images, batch_size: int | None = None) -> np.ndarray:
        """Boolean anomaly decisions (needs :meth:`calibrate`)."""
        if self.threshold_ is None:
            raise DetectorError("the detector is not calibrated: call calibrate(normal_holdout) first")
        return self.decision_function(images, batch_size) > self.threshold_

    # ----------------------------------------------------------------- persistence
    def _state(self) -> dict:
        return {"threshold": self.threshold_, "calibration": self.calibration_,
                "trained": self.trained_, "data_fingerprint": self.data_fingerprint_,
                "history": self.history_}

    def save(self, path: str) -> str:
        """Writes config, weights, calibration and a hash manifest to ``path`` atomically."""
        from tf_fanogan import __version__

        def write(tmp):
            self.config.save(os.path.join(tmp, CONFIG_FILE))
            for name, fname in NETWORK_FILES.items():
                getattr(self, name).save_weights(os.path.join(tmp, fname))
            with open(os.path.join(tmp, STATE_FILE), "w") as f:
                json.dump(_jsonable(self._state()), f, indent=2)
            files = {n: sha256_file(os.path.join(tmp, n))
                     for n in [CONFIG_FILE, STATE_FILE, *NETWORK_FILES.values()]}
            manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                        "tf_fanogan": __version__, "tensorflow": tf.__version__,
                        "keras": keras.__version__, "sha256": files}
            with open(os.path.join(tmp, MANIFEST_FILE), "w") as f:
                json.dump(manifest, f, indent=2)

        write_directory_atomically(path, write)
        return path

    @classmethod
    def load(cls, path: str, mixed_precision: bool | None = None, strategy="none") -> "FAnoGAN":
        """Loads a detector saved by :meth:`save`, verifying every file's SHA-256.

        Args:
            path: The detector directory.
            mixed_precision: Override the saved compute policy (e.g. ``False`` to score a
                GPU-trained mixed-precision detector in float32 on a CPU).
            strategy: ``tf.distribute`` strategy for further training (see ``__init__``).
        """
        recover_directory(path)
        if not os.path.isdir(path):
            raise DetectorError(f"{path}: not a detector directory")
        manifest_path = os.path.join(path, MANIFEST_FILE)
        if not os.path.isfile(manifest_path):
            raise DetectorError(f"{path}: missing {MANIFEST_FILE}; not a saved detector")
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
            expected = manifest["sha256"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DetectorError(f"{manifest_path}: unreadable manifest ({e})") from None
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise DetectorError(f"{manifest_path}: unsupported format {manifest.get('format')!r} "
                                f"version {manifest.get('format_version')!r}")
        for name in [CONFIG_FILE, STATE_FILE, *NETWORK_FILES.values()]:
            file = os.path.join(path, name)
            if not os.path.isfile(file):
                raise DetectorError(f"{file}: missing from the detector directory")
            if sha256_file(file) != expected.get(name):
                raise DetectorError(f"{file}: SHA-256 does not match the manifest (file changed or corrupt)")
        config = _load_config(os.path.join(path, CONFIG_FILE))
        if mixed_precision is not None:
            config.mixed_precision = bool(mixed_precision)
        det = cls(config, strategy=strategy)
        for name, fname in NETWORK_FILES.items():
            getattr(det, name).load_weights(os.path.join(path, fname))
        with open(os.path.join(path, STATE_FILE)) as f:
            state = json.load(f)
        det.threshold_ = state["threshold"]
        det.calibration_ = state["calibration"]
        det.trained_ = state["trained"]
        det.data_fingerprint_ = state.get("data_fingerprint")
        det.history_ = state.get("history", {})
        return det

    def summary(self) -> dict:
        """Facts for ``fanogan info``: config, parameter counts, training and calibration."""
        counts = {n: int(sum(np.prod(w.shape) for w in getattr(self, n).trainable_weights))
                  for n in NETWORK_FILES}
        counts["total"] = sum(counts.values())
        return {"config": self.config.to_dict(), "trainable_parameters": counts,
                "trained": self.trained_, "threshold": self.threshold_,
                "calibration": self.calibration_, "data_fingerprint": self.data_fingerprint_}


def _load_config(path: str) -> FAnoGANConfig:
    """A saved detector's config. Detectors saved before ``model.latent_prior`` existed were
    trained on z ~ N(0, I) with a tanh encoder head: their config says so once loaded, so they
    score exactly as before."""
    from tf_fanogan.config import read_mapping

    raw = read_mapping(path)
    model = raw.get("model") if isinstance(raw, dict) else None
    if isinstance(model, dict) and "latent_prior" not in model:
        raw["model"] = {**model, "latent_prior": "normal", "encoder_head": "tanh"}
    return FAnoGANConfig.from_dict(raw, source=path)


def _backed_up_epochs(workdir: str | None, name: str) -> int:
    """Epochs completed by an interrupted run (``BackupAndRestore`` metadata), 0 if none.

    A resumed run skips the batches those epochs used, so it sees the same data order as an
    uninterrupted run.
    """
    if not workdir:
        return 0
    path = os.path.join(workdir, f"backup_{name}", "training_metadata.json")
    try:
        with open(path) as f:
            return max(0, int(json.load(f)["epoch"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
