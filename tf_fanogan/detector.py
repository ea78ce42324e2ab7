"""``FAnoGAN``: the detector facade -- fit, calibrate, score, predict, save and load."""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np

from tf_fanogan import persistence
from tf_fanogan import signatures as sig
from tf_fanogan.config import FAnoGANConfig
from tf_fanogan.data import images as data_lib
from tf_fanogan.models.networks import build_networks, dtype_policy
from tf_fanogan.errors import DetectorError
from tf_fanogan.scoring import calibration, tiled
from tf_fanogan.scoring import memory as scoring_memory
from tf_fanogan.scoring.scorer import Scorer, build_scorer, run_batches
from tf_fanogan.training import distribute, stages
from tf_fanogan.training.monitoring import stage_monitors
from tf_fanogan.training.workdir import STAGE_LABELS, Workdir, for_worker

__all__ = ["FAnoGAN", "DetectorError"]


class FAnoGAN:
    """f-AnoGAN anomaly detector (Schlegl et al., Medical Image Analysis 54, 2019).

    Stage 1 trains a WGAN-GP on normal images; stage 2 trains an encoder with G and the
    critic frozen; scoring is one forward pass ``A(x) = A_R(x) + kappa * A_D(x)``.

    Images may be arrays (N, H, W[, C]) of uint8, uint16 or floats in [0, 1], lists of such
    per-image arrays, or a folder / ``.npy`` path. They are resized to the model size, or
    with ``data.tile_stride`` cut into model-size tiles at native resolution
    (:mod:`tf_fanogan.scoring.tiled`: trained on every tile, an image scored by its tiles).

    Args:
        config: A :class:`~tf_fanogan.config.FAnoGANConfig` (defaults: the paper's).
        strategy: ``"none"`` (default), ``"mirrored"``, ``"multi_worker"`` or a
            ``tf.distribute.Strategy``: both training stages run under it (see
            :mod:`tf_fanogan.training.distribute`); the batch sizes are global batch sizes.

    Attributes (learned state, reset by :meth:`fit`):
        threshold_: Anomaly-score threshold set by :meth:`calibrate` (None before).
        memory_: Critic features of normal training images, (M, F), for ``scoring.method:
            critic_nn`` (:meth:`memorize`; :meth:`fit` fills it under that method), else None.
        calibration_: Facts of the calibration (FPR, image count, score statistics).
        history_: Keras training histories per stage.
        updates_: Optimizer updates each stage made (generator updates for stage 1).
        trained_: Which stages are trained.

    Example:
        >>> det = FAnoGAN(FAnoGANConfig(model=ModelConfig(image_size=32, dim=16)))
        >>> det.fit(normal_train).calibrate(normal_holdout, fpr=0.05)
        >>> det.score(test_images)["anomaly_score"]; det.predict(test_images)
        >>> det.save("detector"); same = FAnoGAN.load("detector")
    """

    def __init__(self, config: FAnoGANConfig | None = None, strategy="none"):
        self.config = (config if config is not None else FAnoGANConfig()).validate()
        self.strategy = distribute.make_strategy(strategy)
        self._reset_learned_state()
        keras.utils.set_random_seed(self.config.seed)
        with dtype_policy(self.policy_name), self.strategy.scope():
            self.generator, self.critic, self.encoder = build_networks(self.config.model)
        self._scorer = None

    def _reset_learned_state(self) -> None:
        self.threshold_: float | None = None
        self.holdout_scores_: np.ndarray | None = None
        self.normalization_: dict | None = None  # hold-out statistics of both terms (scoring.normalize)
        self.memory_: np.ndarray | None = None  # critic features of normal training images (critic_nn)
        self.calibration_: dict | None = None
        self.history_: dict = {}
        self.updates_: dict = {}
        self.trained_ = {"gan": False, "encoder": False}
        self.data_fingerprint_: str | None = None

    @classmethod
    def from_networks(cls, config: FAnoGANConfig, generator=None, critic=None, encoder=None,
                      threshold: float | None = None, strategy="none") -> "FAnoGAN":
        """A detector around existing networks (their weights are copied): G and the critic
        make stage 1 trained, an encoder stage 2. For baselines, benchmarks and retraining one
        stage with other settings."""
        det = cls(config, strategy=strategy)
        for name, net in (("generator", generator), ("critic", critic), ("encoder", encoder)):
            if net is not None:
                getattr(det, name).set_weights(net.get_weights())
        det.trained_ = {"gan": generator is not None and critic is not None, "encoder": encoder is not None}
        det.threshold_ = threshold
        return det

    @property
    def policy_name(self) -> str:
        return "mixed_float16" if self.config.mixed_precision else "float32"

    @property
    def networks(self) -> dict:
        return {"generator": self.generator, "critic": self.critic, "encoder": self.encoder}

    @property
    def scorer(self) -> Scorer:
        """The :class:`~tf_fanogan.scoring.scorer.Scorer` of the current config and calibration."""
        held = None if self.holdout_scores_ is None else hashlib.sha256(self.holdout_scores_.tobytes()).hexdigest()
        mem = None if self.memory_ is None else hashlib.sha256(self.memory_.tobytes()).hexdigest()
        key = json.dumps([self.config.encoder.kappa, self.config.scoring.__dict__, self.threshold_, held,
                          self.normalization_, (self.calibration_ or {}).get("scoring"), mem], sort_keys=True)
        if self._scorer is None or self._scorer_key != key:
            self._scorer = build_scorer(self.networks.values(), self.config, self.threshold_, self.holdout_scores_,
                                        self.normalization_, (self.calibration_ or {}).get("scoring"), self.memory_)
            self._scorer_key = key
        return self._scorer

    def prepare(self, images, names=None, native: bool = False):
        """Validates and converts images to float32 (N, S, S, C) in [0, 1]; with ``native``
        (what ``data.tile_stride`` scores) to a list of (H, W, C) at their own resolution."""
        images, names = data_lib.read_named(images, names)
        m, convert = self.config.model, data_lib.to_unit_native if native else data_lib.to_unit_range
        return convert(images, m.image_size, m.channels, names, **self.config.data.image_policy())

    # ----------------------------------------------------------------- training
    def fit(self, normal_images, validation=None, stage: str = "both", workdir: str | None = None,
            callbacks=None, verbose="auto", tensorboard: str | None = None, image_interval: int = 1) -> "FAnoGAN":
        """Trains stage 1 (WGAN-GP), stage 2 (encoder) or both on normal images only.

        A fit resets the calibration (``threshold_``, ``calibration_``) and the critic-feature
        memory: calibrate again after it. Under ``scoring.method: critic_nn`` it ends by
        memorizing the training images (:meth:`memorize`).

        Args:
            normal_images: Normal training images (see the class docstring).
            validation: Optional normal images for the encoder's validation losses (and its
                early stopping).
            stage: ``"both"``, ``"gan"`` or ``"encoder"``.
            workdir: If given, each stage backs up its state there every epoch and a finished
                stage publishes its weights there, so a rerun after a kill resumes from the last
                completed epoch and skips finished stages (:mod:`tf_fanogan.training.workdir`).
                A workdir is refused for other data or settings than the run it holds.
            callbacks: Extra Keras callbacks for both stages.
            verbose: Passed to ``keras.Model.fit`` (progress bar by default).
            tensorboard: If given, a TensorBoard directory: per stage (``gan/``, ``encoder/``)
                the losses and, from :class:`~tf_fanogan.training.monitoring.TrainingMonitor`,
                sample grids, validation triptychs and GAN-health warnings.
            image_interval: Write the image summaries every this many epochs.
        """
        if stage not in ("both", "gan", "encoder"):
            raise ValueError(f"stage must be 'both', 'gan' or 'encoder', got {stage!r}")
        if stage == "encoder" and not self.trained_["gan"]:
            raise DetectorError("train stage 1 (the GAN) before the encoder")
        x = tiled.training_input(self.prepare, normal_images, self.config)
        val = None if validation is None else tiled.training_input(self.prepare, validation, self.config)
        self.threshold_ = self.calibration_ = self.holdout_scores_ = self.normalization_ = self.memory_ = None
        self.data_fingerprint_ = hashlib.sha256(x.tobytes()).hexdigest()[:16]
        work = Workdir(for_worker(workdir, self.strategy))
        if not distribute.is_chief(self.strategy):
            tensorboard = None  # other workers of a multi-worker run write no logs
        todo = ["gan", "encoder"] if stage == "both" else [stage]
        stages.check_inputs(self.config, todo, val, self.strategy)
        work.claim(self.config, self.data_fingerprint_, todo)
        for name in todo:
            history = work.restore(name, self.networks)
            if history is not None:
                if verbose:
                    print(f"{STAGE_LABELS[name]} already finished in {work.path}; reusing it (start over with --fresh)")
                self.history_[name] = history
                self.trained_[name] = True
                continue
            cbs = list(callbacks or []) + stage_monitors(
                tensorboard, name, self.networks, x if name == "gan" or val is None else val, self.config, image_interval)
            if name == "gan":
                hist, updates = stages.train_gan(self.generator, self.critic, self.config, x, self.strategy, work,
                                                 cbs, verbose)
            else:
                hist, updates = stages.train_encoder(self.generator, self.critic, self.encoder, self.config, x, val,
                                                     self.strategy, work, cbs, verbose)
            self.history_[name], self.updates_[name], self.trained_[name] = hist, updates, True
            work.publish(name, self.networks, hist)
        if self.config.scoring.method == "critic_nn" and self.trained_["gan"]:
            self._memorize(x)
        return self

    def memorize(self, normal_images, batch_size: int | None = None) -> "FAnoGAN":
        """Stores the critic features f(x) of normal training images (at most
        ``scoring.memory_size``, a seeded subset when there are more; every tile of them with
        ``data.tile_stride``): the memory that ``scoring.method: critic_nn`` scores against
        (:mod:`tf_fanogan.scoring.memory`). Use the images the detector was trained on, never
        the hold-out or test images. Under ``critic_nn`` it resets the calibration (the scores
        change): calibrate again after it."""
        if not self.trained_["gan"]:
            raise DetectorError("the memory holds the trained critic's features: train stage 1 (the GAN) first")
        return self._memorize(tiled.training_input(self.prepare, normal_images, self.config), batch_size)

    def _memorize(self, x, batch_size=None):
        """``x``: training input in model units ([-1, 1], :func:`tiled.training_input`)."""
        s = self.config.scoring
        self.memory_ = scoring_memory.build(self.critic, x, s.memory_size, self.config.seed,
                                            int(batch_size or self.config.score_batch_size))
        if s.method == "critic_nn":
            self.threshold_ = self.calibration_ = self.holdout_scores_ = self.normalization_ = None
        return self

    # ----------------------------------------------------------------- scoring
    def _require(self):
        if not self.trained_["encoder"]:
            raise DetectorError("the detector has no trained encoder yet: call fit() first")

    def _run(self, endpoint: str, images, batch_size, progress=None, tiles: bool = False):
        fn, bs = getattr(self.scorer, endpoint), int(batch_size or self.config.score_batch_size)
        if self.config.data.tile_stride is None:
            return run_batches(fn, self.prepare(images), bs, progress)
        images, names = data_lib.read_named(images)  # a folder's files are named in errors
        return tiled.run(fn, self.prepare(images, names, native=True), self.config, bs, self.scorer.judge,
                         endpoint == "residual_map", tiles, progress, names)

    def score(self, images, batch_size: int | None = None, progress=None, alpha: float | None = None,
              tiles: bool = False) -> dict[str, np.ndarray]:
        """Scores every image: ``anomaly_score``, ``residual_score``, ``feature_score``,
        ``z_distance``, and once calibrated ``p_value`` and ``is_anomaly``, each of shape (N,).
        With ``data.tile_stride``, ``tiles`` adds per image ``tile_positions``, ``tile_scores``,
        ``tile_max`` and ``tile_top_k_mean``.

        Args:
            alpha: Decide ``is_anomaly`` as ``p_value <= alpha`` (false-positive rate at most
                alpha for images like the hold-out set) instead of by the threshold.
            progress: An object with ``update(n)`` (e.g. :class:`tf_fanogan.utils.progress.Progress`),
                told after each batch.
        """
        self._require()
        if alpha is not None:
            if not 0.0 < alpha < 1.0:
                raise ValueError(f"alpha must be in (0, 1), got {alpha}")
            if self.holdout_scores_ is None:
                raise DetectorError("p-values need a calibrated detector: call calibrate(normal_holdout) first")
        out = self._run("score", images, batch_size, progress, tiles)
        if alpha is not None:
            out[sig.IS_ANOMALY] = out[sig.P_VALUE] <= alpha
        return out

    def residual_maps(self, images, batch_size: int | None = None, progress=None) -> dict[str, np.ndarray]:
        """``residual_map`` |x - G(E(x))| and ``reconstruction``, (N, S, S, C) in [0, 1]; with
        ``data.tile_stride`` lists of (H, W) and (H, W, C), stitched from the tiles'."""
        self._require()
        return self._run("residual_map", images, batch_size, progress)

    def decision_function(self, images, batch_size: int | None = None) -> np.ndarray:
        """The anomaly score A(x) (higher = more anomalous), as in PyOD."""
        return self.score(images, batch_size)[sig.ANOMALY_SCORE]

    def calibrate(self, normal_holdout, fpr: float = 0.05) -> "FAnoGAN":
        """Sets ``threshold_`` so that about ``fpr`` of clean normal images are flagged
        (:func:`~tf_fanogan.evaluation.metrics.threshold_at_fpr`: the smallest observed score
        whose exceedance rate on the hold-out is <= ``fpr``). Normal images only.

        Fewer than ``1 / fpr`` images (20 for 5%) cannot resolve that FPR: refused
        (:func:`~tf_fanogan.scoring.calibration.check_holdout`)."""
        calibration.check_fpr(fpr)  # before reading any image
        x = self.prepare(normal_holdout, native=self.config.data.tile_stride is not None)
        calibration.check_holdout(len(x), fpr)
        self.threshold_ = self.holdout_scores_ = self.normalization_ = None
        raw = self.score(x)  # raw terms: the hold-out statistics of both come from them
        terms = calibration.normalization_of(raw)
        self.normalization_ = terms if self.config.scoring.normalize else None
        scores = (self.score(x) if self.normalization_ else raw)[sig.ANOMALY_SCORE]
        self.threshold_, self.holdout_scores_, self.calibration_ = calibration.fitted(
            scores, fpr, self.config.scoring, terms)
        return self

    def predict(self, images, batch_size: int | None = None, alpha: float | None = None) -> np.ndarray:
        """Boolean anomaly decisions (needs :meth:`calibrate`): above the threshold, or with
        ``alpha`` a conformal p-value <= alpha."""
        if self.threshold_ is None:
            raise DetectorError("the detector is not calibrated: call calibrate(normal_holdout) first")
        return self.score(images, batch_size, alpha=alpha)[sig.IS_ANOMALY]

    # ----------------------------------------------------------------- persistence
    def save(self, path: str) -> str:
        """Writes config, weights, calibration, the critic-feature memory (if any) and a hash manifest to
        ``path`` atomically."""
        return persistence.save(path, self.config, self.networks, persistence.state_of(self), self.memory_)

    @classmethod
    def load(cls, path: str, mixed_precision: bool | None = None, strategy="none") -> "FAnoGAN":
        """Loads a detector saved by :meth:`save`, verifying every file's SHA-256.

        Args:
            path: The detector directory.
            mixed_precision: Override the saved compute policy (e.g. ``False`` to score a
                GPU-trained mixed-precision detector in float32 on a CPU).
            strategy: ``tf.distribute`` strategy for further training (see ``__init__``).
        """
        persistence.verify(path)
        config = persistence.load_config(path)
        if mixed_precision is not None:
            config.mixed_precision = bool(mixed_precision)
        det = cls(config, strategy=strategy)
        persistence.load_weights(path, det.networks)
        persistence.apply_state(det, persistence.load_state(path))
        det.memory_ = persistence.load_memory(path)
        return det

    def summary(self) -> dict:
        """Facts for ``fanogan info``: config, parameter counts, training and calibration."""
        return persistence.summary(self)

