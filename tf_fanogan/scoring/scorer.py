"""``Scorer``: the f-AnoGAN forward pass as a ``tf.Module`` with input specs.

The shape of TF Model Garden's ``ExportModule``: the module holds the three networks, kappa
and the threshold, and exposes ``score``, ``residual_map``, ``encode`` and ``generate`` as
``tf.function``s with fixed input signatures. :class:`~tf_fanogan.detector.FAnoGAN` scores
through it and :mod:`tf_fanogan.serving.export` publishes its endpoints, so in-process and
served scores are one computation, and ``is_anomaly`` is decided here and nowhere else.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tf_fanogan import signatures as sig
from tf_fanogan.errors import DetectorError
from tf_fanogan.scoring import forward
from tf_fanogan.scoring import memory as scoring_memory


def conformal_p_values(scores, sorted_holdout):
    """``(1 + #{hold-out scores >= s}) / (n + 1)`` per score, for ``sorted_holdout`` ascending.

    The conformal p-value (Vovk et al. 2005; Bates et al., "Testing for outliers with conformal
    p-values", Ann. Statist. 2023): when a test image and the n hold-out images are
    exchangeable (drawn alike from the normal distribution), P(p <= alpha) <= alpha, so flagging
    p <= alpha has a false-positive rate of at most alpha. It holds only for images like the
    hold-out set; drift in acquisition breaks it. The smallest p-value is 1 / (n + 1)."""
    sorted_holdout = tf.cast(sorted_holdout, tf.float32)
    n = tf.size(sorted_holdout)
    below = tf.searchsorted(sorted_holdout, tf.cast(scores, tf.float32), side="left")  # #{h < s}
    return (1.0 + tf.cast(n - below, tf.float32)) / tf.cast(n + 1, tf.float32)


class Scorer(tf.Module):
    """Scoring endpoints of a trained detector (inputs in [0, 1], outputs batch-major).

    Args:
        generator, critic, encoder: The trained networks (any dtype policy; outputs float32).
        image_shape: (S, S, C) of the model input.
        kappa: Weight of the critic-feature residual A_D in the anomaly score.
        threshold: Calibrated anomaly-score threshold; without it ``score`` has no
            ``is_anomaly``.
        holdout_scores: Anomaly scores of the normal hold-out images of the calibration; with
            them ``score`` adds ``p_value``, the conformal p-value
            ``(1 + #{hold-out scores >= s}) / (n + 1)`` (see :func:`conformal_p_values`).
        pooling, topk_fraction, normalization: The ``scoring`` options
            (:func:`tf_fanogan.scoring.forward.score_batch`); :func:`build_scorer` takes them
            from a config and a calibration.
        memory: Critic features of normal training images, (M, F): the anomaly score becomes
            the RMS distance of f(x) to the nearest of them (``scoring.method: critic_nn``,
            :mod:`tf_fanogan.scoring.memory`). Held in non-trainable variables, so an export
            stores it once (in ``variables/``) however many signatures use it.

    Example:
        >>> scorer = Scorer(g, c, e, (32, 32, 1), kappa=1.0, threshold=0.12)
        >>> scorer.score(images01)["is_anomaly"]
    """

    def __init__(self, generator, critic, encoder, image_shape, kappa: float, threshold: float | None = None,
                 holdout_scores=None, pooling: str = "mean", topk_fraction: float = 0.01,
                 normalization: dict | None = None, memory=None, name: str = "fanogan_scorer"):
        super().__init__(name=name)
        self.memory = None
        if memory is not None:
            centred, centre = scoring_memory.centred(scoring_memory.check(memory, int(critic.output_shape[1][-1])))
            self.memory = (tf.Variable(centred, trainable=False, name="critic_nn_memory"),
                           tf.Variable(centre, trainable=False, name="critic_nn_memory_centre"))
        self.pooling, self.topk_fraction = pooling, float(topk_fraction)
        self.normalization = None if normalization is None else {k: float(v) for k, v in normalization.items()}
        self.generator, self.critic, self.encoder = generator, critic, encoder
        self.image_shape = tuple(int(v) for v in image_shape)
        self.latent_dim = int(generator.input_shape[-1])
        self.kappa = float(kappa)
        self.threshold = None if threshold is None else float(threshold)
        self.holdout_scores = None if holdout_scores is None else np.sort(np.asarray(holdout_scores, np.float32))
        images = tf.TensorSpec((None,) + self.image_shape, tf.float32, name=sig.IMAGES)
        self.score = tf.function(self.score_images, input_signature=[images])
        self.residual_map = tf.function(self.residual_map_images, input_signature=[images])
        self.encode = tf.function(self.encode_images, input_signature=[images])
        self.generate = tf.function(self.generate_images, input_signature=[
            tf.TensorSpec((None, self.latent_dim), tf.float32, name=sig.Z_INPUT)])

    @property
    def input_specs(self) -> dict:
        """Endpoint name -> input signature."""
        return {name: getattr(self, name).input_signature
                for name in ("score", "residual_map", "encode", "generate")}

    def _checked(self, images01):
        """The images, or an INVALID_ARGUMENT error naming the input and the problem: an empty
        batch, NaN/inf or values outside [0, 1] are refused in the graph (in process, by TF Serving, by the
        local server alike), never scored."""
        images01 = tf.ensure_shape(tf.cast(images01, tf.float32), (None,) + self.image_shape)
        nonempty = tf.debugging.Assert(tf.shape(images01)[0] > 0,
                                       [f"{sig.IMAGES}: empty batch (0 images); send at least one image"])
        with tf.control_dependencies([nonempty]):
            finite = tf.debugging.Assert(tf.reduce_all(tf.math.is_finite(images01)),
                                         [f"{sig.IMAGES}: NaN or infinite pixel values"])
        with tf.control_dependencies([finite]):
            in_range = tf.debugging.Assert(
                tf.reduce_all((images01 >= 0.0) & (images01 <= 1.0)),
                [f"{sig.IMAGES}: pixel values outside [0, 1] (min", tf.reduce_min(images01), "max",
                 tf.reduce_max(images01), "); scale images to [0, 1] or send uint8 to score_uint8"])
        with tf.control_dependencies([in_range]):
            return tf.identity(images01)

    def _forward(self, images01, anomaly_score: bool = True):
        """The scoring function's outputs; without ``anomaly_score`` (the maps) no memory distances."""
        images01 = self._checked(images01)
        return forward.score_batch(self.generator, self.critic, self.encoder, forward.to_model_units(images01),
                                   self.kappa, pooling=self.pooling, topk_fraction=self.topk_fraction,
                                   normalization=self.normalization, memory=self.memory if anomaly_score else None)

    def decide(self, anomaly_score):
        """``is_anomaly``: the anomaly score above the calibrated threshold. Written as "not at
        or below" so that a non-finite score can never come out as normal."""
        return tf.logical_not(anomaly_score <= tf.constant(self.threshold, tf.float32))

    def score_images(self, images01) -> dict:
        """``anomaly_score``, ``residual_score``, ``feature_score``, ``z_distance`` (N,), and
        ``is_anomaly`` when calibrated (not traced: the building block of every score endpoint)."""
        out = self._forward(images01)
        result = {k: out[k] for k in sig.SCORE_OUTPUTS}
        return {**result, **self.judge(result[sig.ANOMALY_SCORE])}

    def judge(self, anomaly_score) -> dict:
        """``p_value`` (when calibrated with hold-out scores) and ``is_anomaly`` (when a
        threshold is set) of anomaly scores; also what a tiled image's aggregated score gets
        (:mod:`tf_fanogan.scoring.tiled`)."""
        anomaly_score = tf.cast(anomaly_score, tf.float32)
        out = {}
        if self.holdout_scores is not None:
            out[sig.P_VALUE] = conformal_p_values(anomaly_score, tf.constant(self.holdout_scores))
        if self.threshold is not None:
            out[sig.IS_ANOMALY] = self.decide(anomaly_score)
        return out

    def residual_map_images(self, images01) -> dict:
        out = self._forward(images01, anomaly_score=False)
        return {k: out[k] for k in sig.MAP_OUTPUTS}

    def encode_images(self, images01) -> dict:
        images01 = self._checked(images01)
        return {sig.Z: tf.cast(self.encoder(forward.to_model_units(images01), training=False), tf.float32)}

    def generate_images(self, z) -> dict:
        z = tf.ensure_shape(z, (None, self.latent_dim))
        return {sig.GENERATED_IMAGES: forward.to_input_units(self.generator(z, training=False))}


class ScoringMismatch(DetectorError):
    """A calibration made with other ``scoring`` settings than the config's."""


def build_scorer(networks, config, threshold=None, holdout_scores=None, normalization=None,
                 calibrated_scoring: dict | None = None, memory=None) -> Scorer:
    """The :class:`Scorer` of a detector: its networks (generator, critic, encoder), its
    config's kappa and ``scoring`` options, its calibration and (for ``scoring.method:
    critic_nn``) its critic-feature memory. What ``FAnoGAN.score`` and the export both run.

    Raises:
        ScoringMismatch: the calibration (``calibrated_scoring``, the settings it was made
            with) does not belong to the config's ``scoring`` settings, or ``scoring.normalize``
            is on for a calibrated detector without hold-out statistics.
        DetectorError: ``scoring.method`` is ``critic_nn`` and there is no memory.
    """
    import dataclasses

    from tf_fanogan.config import ScoringConfig

    s = config.scoring
    if threshold is not None:  # a calibration without a record predates the options: the defaults
        made_with = calibrated_scoring or dataclasses.asdict(ScoringConfig())
        now = dataclasses.asdict(s)
        differ = [k for k in now if k in made_with and made_with[k] != now[k] and k != "memory_size"
                  and not (k == "topk_fraction" and now["residual_pooling"] == made_with["residual_pooling"] == "mean")]
        if made_with.get("method", "fanogan") != s.method and "method" not in differ:
            differ.append("method")  # a calibration recorded before methods existed was made with fanogan
        if differ or (s.normalize and normalization is None):
            raise ScoringMismatch(f"the detector was calibrated with scoring {made_with} but its config says {now}; "
                                  "calibrate it again (the threshold and hold-out scores belong to one score)")
    if s.method == "critic_nn" and memory is None:
        raise DetectorError("scoring.method critic_nn scores against a memory of normal training images' critic "
                            "features, and this detector has none: call memorize(normal_train_images) "
                            "(fanogan calibrate --memory TRAIN_IMAGES)")
    g, c, e = networks
    return Scorer(g, c, e, config.model.image_shape, config.encoder.kappa, threshold, holdout_scores,
                  pooling=s.residual_pooling, topk_fraction=s.topk_fraction,
                  normalization=normalization if s.normalize else None,
                  memory=memory if s.method == "critic_nn" else None)


def run_batches(fn, images01, batch_size: int, progress=None) -> dict:
    """Runs an endpoint over (N, ...) images in batches of ``batch_size`` (the last one short,
    every image scored once); returns NumPy arrays of N rows. ``progress.update(n)`` after each."""
    from tf_fanogan.data.images import batches

    parts = []
    for s in batches(len(images01), batch_size):
        parts.append({k: v.numpy() for k, v in fn(tf.constant(images01[s])).items()})
        if progress is not None:
            progress.update(s.stop - s.start)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
