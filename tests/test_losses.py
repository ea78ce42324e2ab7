import numpy as np
import tensorflow as tf

from tf_fanogan import losses


def test_gradient_penalty_matches_closed_form_for_a_linear_critic():
    rng = np.random.default_rng(0)
    for scale in (0.2, 1.0, 3.0):
        w = tf.constant(rng.normal(size=(1, 8, 8, 2)).astype("float32") * scale / 8)
        score_fn = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])
        real = tf.constant(rng.normal(size=(4, 8, 8, 2)).astype("float32"))
        fake = tf.constant(rng.normal(size=(4, 8, 8, 2)).astype("float32"))
        alpha = tf.constant(rng.uniform(size=(4, 1, 1, 1)).astype("float32"))
        expected = (np.linalg.norm(w.numpy()) - 1.0) ** 2
        np.testing.assert_allclose(losses.gradient_penalty(score_fn, real, fake, alpha).numpy(), expected, rtol=1e-5)


def test_gradient_penalty_is_finite_where_the_gradient_vanishes():
    x = tf.zeros((2, 4, 4, 1))
    with tf.GradientTape() as tape:
        v = tf.Variable(0.0)
        gp = losses.gradient_penalty(lambda y: tf.reduce_sum(y, axis=[1, 2, 3]) * v, x, x, tf.ones((2, 1, 1, 1)))
    grad = tape.gradient(gp, v)
    assert np.isfinite(gp.numpy()) and np.isfinite(grad.numpy())


def test_wasserstein_losses():
    real, fake = tf.constant([3.0, 5.0]), tf.constant([1.0, -1.0])
    assert losses.critic_loss(real, fake).numpy() == -4.0
    assert losses.generator_loss(fake).numpy() == 0.0
    assert losses.wasserstein_estimate(real, fake).numpy() == 4.0
