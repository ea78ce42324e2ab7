"""Pure loss functions of WGAN-GP (Gulrajani et al. 2017) and f-AnoGAN (Schlegl et al. 2019)."""

from __future__ import annotations

import tensorflow as tf

GP_EPSILON = 1e-12


def critic_loss(real_scores, fake_scores):
    """WGAN critic loss E[C(G(z))] - E[C(x)] (negative Wasserstein estimate)."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)


def generator_loss(fake_scores):
    """WGAN generator loss -E[C(G(z))]."""
    return -tf.reduce_mean(fake_scores)


def wasserstein_estimate(real_scores, fake_scores):
    """E[C(x)] - E[C(G(z))]: the critic's estimate of the Wasserstein-1 distance."""
    return tf.reduce_mean(real_scores) - tf.reduce_mean(fake_scores)


def gradient_penalty(score_fn, real, fake, alpha):
    """Two-sided gradient penalty E[(||grad C(x_hat)||_2 - 1)^2].

    Args:
        score_fn: Callable mapping a batch of images to a batch of scores, shape (N,).
        real, fake: Batches of the same shape (N, H, W, C).
        alpha: Interpolation weights, shape (N, 1, 1, 1), drawn from U(0, 1) per sample.

    Returns:
        Scalar penalty. The square root carries an epsilon so that its gradient stays
        finite where the critic's gradient vanishes.
    """
    real = tf.cast(real, tf.float32)
    fake = tf.cast(fake, tf.float32)
    interpolates = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        scores = tf.cast(score_fn(interpolates), tf.float32)
    grads = tf.cast(tape.gradient(scores, interpolates), tf.float32)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + GP_EPSILON)
    return tf.reduce_mean(tf.square(norms - 1.0))


def ziz_loss(z, z_reconstructed):
    """MSE(z, E(G(z))) of the ziz encoder training."""
    return tf.reduce_mean(tf.square(tf.cast(z, tf.float32) - tf.cast(z_reconstructed, tf.float32)))
