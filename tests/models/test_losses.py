import numpy as np
import tensorflow as tf

from tf_fanogan.models import losses


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


def test_gradient_penalty_with_a_nonlinear_critic_interpolates_per_sample():
    """C(x) = 0.5 * sum(w * x^2): grad C(x_hat) = w * x_hat, whose norm depends on where each
    sample is interpolated, so a wrong interpolation (e.g. fake + alpha * (real - fake) swapped
    weights) or one alpha for the whole batch gives another value."""
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 1.5, size=(1, 6, 6, 1)).astype("float32")
    score_fn = lambda x: 0.5 * tf.reduce_sum(w * tf.square(x), axis=[1, 2, 3])  # noqa: E731
    real = rng.normal(size=(5, 6, 6, 1)).astype("float32")
    fake = rng.normal(size=(5, 6, 6, 1)).astype("float32") * 0.3
    alpha = np.array([0.0, 0.2, 0.5, 0.9, 1.0], "float32").reshape(5, 1, 1, 1)
    x_hat = real + alpha * (fake - real)
    norms = np.sqrt(((w * x_hat) ** 2).sum(axis=(1, 2, 3)))
    expected = np.mean((norms - 1.0) ** 2)
    got = losses.gradient_penalty(score_fn, tf.constant(real), tf.constant(fake), tf.constant(alpha)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    one_alpha = np.full_like(alpha, alpha.mean())
    x_one = real + one_alpha * (fake - real)
    wrong = np.mean((np.sqrt(((w * x_one) ** 2).sum(axis=(1, 2, 3))) - 1.0) ** 2)
    assert abs(got - wrong) > 1e-2  # the check above can tell the two apart


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
