"""The one f-AnoGAN scoring function.

Used by the encoder's izi/izi_f loss, the detector, evaluation and the exported
SavedModel signatures, so that training, scoring and serving cannot drift apart.

For x in model units ([-1, 1]) and x_hat = G(E(x)) (Schlegl et al. 2019, eqs. 4-6)::

    A_R(x) = mean over pixels of (x - x_hat)^2                    residual_score
    A_D(x) = mean over features of (f(x) - f(x_hat))^2            feature_score
    A(x)   = A_R(x) + kappa * A_D(x)                              anomaly_score

where f is the critic's last feature layer. Every quantity is per image: the critic uses
layer norm and the generator and encoder run their batch norms in inference mode, so an
image's scores do not depend on the rest of its batch.

Two options beyond the paper (``scoring`` in :class:`~tf_fanogan.config.ScoringConfig`; the
training losses always use the paper's form): ``pooling="topk"`` replaces the mean in A_R by
the mean of the largest ``topk_fraction`` of the 3x3-smoothed squared residual map, and
``normalization`` (hold-out means and standard deviations of both terms) makes
``A = (A_R - m_R) / s_R + kappa * (A_D - m_D) / s_D``. A third, ``memory`` (``scoring.method:
critic_nn``, :mod:`tf_fanogan.scoring.memory`), makes A the RMS distance of f(x) to the nearest
normal training image's f instead; A_R, A_D and the maps stay as they are.
"""

from __future__ import annotations

import tensorflow as tf

from tf_fanogan import signatures as sig


def to_model_units(images01):
    """[0, 1] input range -> [-1, 1] model units."""
    return tf.cast(images01, tf.float32) * 2.0 - 1.0


def to_input_units(images):
    """[-1, 1] model units -> [0, 1] input range."""
    return (tf.cast(images, tf.float32) + 1.0) * 0.5


def pooled_residual(residual, pooling: str = "mean", topk_fraction: float = 0.01):
    """A_R per image from the residual x - G(E(x)) (N, H, W, C): the mean of its square, or with
    ``topk`` the mean of the largest ``topk_fraction`` of the channel-averaged squared map after
    a 3x3 box filter (borders average the pixels present)."""
    if pooling == "mean":
        return tf.reduce_mean(tf.square(residual), axis=[1, 2, 3])
    per_pixel = tf.nn.avg_pool2d(tf.reduce_mean(tf.square(residual), axis=-1, keepdims=True), 3, 1, "SAME")
    flat = tf.reshape(per_pixel, [tf.shape(per_pixel)[0], -1])
    pixels = int(residual.shape[1]) * int(residual.shape[2])
    k = max(1, min(pixels, int(round(topk_fraction * pixels))))
    return tf.reduce_mean(tf.math.top_k(flat, k=k, sorted=False).values, axis=1)


def nearest_memory_distance(features, memory, centre):
    """RMS distance of each row of ``features`` (N, F) to its nearest row of the memory:
    ``sqrt(min_m mean_f (f - memory_m)^2)``, (N,). ``memory`` (M, F) is stored minus ``centre``
    (F,) (:func:`tf_fanogan.scoring.memory.centred`), so both sides are centred alike; the
    squared distances come from one matrix product, ``|a|^2 - 2 a.b + |b|^2``, clipped at 0, in
    float64: in float32 its cancellation left ~1e-4 of noise on near-duplicates that changed
    with the batch size (an image's score must not depend on its batch)."""
    a = tf.cast(features, tf.float64) - tf.cast(centre, tf.float64)
    b = tf.cast(memory, tf.float64)
    squared = (tf.reduce_sum(tf.square(a), axis=1, keepdims=True) - 2.0 * tf.matmul(a, b, transpose_b=True)
               + tf.reduce_sum(tf.square(b), axis=1)[None, :])
    n_features = tf.cast(tf.shape(b)[1], tf.float64)
    return tf.cast(tf.sqrt(tf.maximum(tf.reduce_min(squared, axis=1), 0.0) / n_features), tf.float32)


def score_batch(generator, critic, encoder, images, kappa, encoder_training=False, pooling: str = "mean",
                topk_fraction: float = 0.01, normalization: dict | None = None, memory=None):
    """Scores a batch of images in model units.

    Args:
        generator, critic, encoder: The f-AnoGAN networks; G and the critic always run
            in inference mode.
        images: float tensor (N, H, W, C) in [-1, 1].
        kappa: Weight of the feature residual.
        encoder_training: Run the encoder in training mode (for stage-2 training only).
        pooling, topk_fraction: How A_R pools the squared residual (see :func:`pooled_residual`).
        normalization: ``residual_mean``, ``residual_std``, ``feature_mean``, ``feature_std``
            of the normal hold-out: the anomaly score combines the z-scored terms.
        memory: ``(centred memory (M, F), centre (F,))`` of normal training images' critic
            features: the anomaly score is :func:`nearest_memory_distance` of f(x).

    Returns:
        Dict of float32 tensors, all batch-major: ``anomaly_score``, ``residual_score``,
        ``feature_score``, ``z_distance`` (the L2 norm of E(x)) of shape (N,); ``z`` (N, d);
        ``reconstruction`` (N, H, W, C) and ``residual_map`` |x - G(E(x))| (N, H, W, C),
        both in the [0, 1] input range.
    """
    images = tf.cast(images, tf.float32)
    z = tf.cast(encoder(images, training=encoder_training), tf.float32)
    reconstruction = tf.cast(generator(z, training=False), tf.float32)
    _, real_features = critic(images, training=False)
    _, fake_features = critic(reconstruction, training=False)
    residual = images - reconstruction
    residual_score = pooled_residual(residual, pooling, topk_fraction)
    feature_score = tf.reduce_mean(
        tf.square(tf.cast(real_features, tf.float32) - tf.cast(fake_features, tf.float32)), axis=1
    )
    if memory is not None:
        anomaly_score = nearest_memory_distance(real_features, *memory)
    elif normalization is None:
        anomaly_score = residual_score + kappa * feature_score
    else:
        n = normalization
        anomaly_score = ((residual_score - n["residual_mean"]) / n["residual_std"]
                         + kappa * (feature_score - n["feature_mean"]) / n["feature_std"])
    return {
        sig.ANOMALY_SCORE: anomaly_score,
        sig.RESIDUAL_SCORE: residual_score,
        sig.FEATURE_SCORE: feature_score,
        sig.Z_DISTANCE: tf.norm(z, axis=1),
        sig.Z: z,
        sig.RECONSTRUCTION: to_input_units(reconstruction),
        sig.RESIDUAL_MAP: tf.abs(residual) * 0.5,
    }
