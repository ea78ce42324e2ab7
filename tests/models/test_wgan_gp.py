"""`WGANGP`: the custom train_step (critic steps, XLA, mixed precision, state round trip) and that it learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_fanogan.scoring import forward as scoring
from tf_fanogan.models.networks import dtype_policy
from tf_fanogan.models.encoder_trainer import EncoderTrainer
from tf_fanogan.models.networks import build_networks
from tf_fanogan.models.wgan_gp import WGANGP
from helpers.models import CFG, adam, changed, gan_fit, images


@pytest.fixture(scope="module")
def fitted_gan():
    return gan_fit()


def test_one_gan_epoch_changes_both_networks_with_finite_losses(fitted_gan):
    gan, g0, c0, hist = fitted_gan
    assert changed(g0, gan.generator) and changed(c0, gan.critic)
    for key in ("c_loss", "g_loss", "gp", "w_dist"):
        assert np.isfinite(hist.history[key][0]), key
    # Two generator updates, each after five critic updates.
    assert int(gan.g_optimizer.iterations.numpy()) == 2
    assert int(gan.c_optimizer.iterations.numpy()) == 10


def test_gan_train_step_runs_under_xla():
    # Two critic updates: XLA compiles the same step; five would add ~25 s of compiling.
    gan, g0, _, hist = gan_fit(jit=True, critic_steps=2)
    assert changed(g0, gan.generator) and np.isfinite(hist.history["c_loss"][0])
    assert int(gan.c_optimizer.iterations.numpy()) == 2 * int(gan.g_optimizer.iterations.numpy()) == 10


def test_gan_weights_and_optimizer_state_round_trip(fitted_gan, tmp_path):
    gan, *_ = fitted_gan
    path = str(tmp_path / "gan.weights.h5")
    gan.save_weights(path)
    g, c, _ = build_networks(CFG)
    other = WGANGP(g, c)
    other.compile(g_optimizer=adam(), c_optimizer=adam())
    other.load_weights(path)
    assert int(other.c_optimizer.iterations.numpy()) == 10
    for a, b in zip(gan.c_optimizer.variables, other.c_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(gan.generator.weights, other.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_mixed_precision_loss_scales_both_optimizers_and_keeps_float32_outputs():
    with dtype_policy("mixed_float16"):
        g, c, e = build_networks(CFG)
        gan = WGANGP(g, c, critic_steps=2)
        gan.compile(g_optimizer=adam(), c_optimizer=adam())
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.c_optimizer, keras.optimizers.LossScaleOptimizer)
    assert g.layers[-2].compute_dtype == "float16"
    hist = gan.fit(tf.data.Dataset.from_tensor_slices(images(16)).batch(8), epochs=1, verbose=0)
    assert np.isfinite(hist.history["c_loss"][0])
    out = scoring.score_batch(g, c, e, images(3), 1.0)
    assert all(v.dtype == tf.float32 for v in out.values())
    assert all(w.dtype == "float32" for w in g.weights)


def test_each_critic_step_gets_its_own_real_images():
    """The 5 critic updates of one train step see 5 disjoint real batches (every 5th image),
    not one batch five times."""
    keras.utils.set_random_seed(0)
    g, c, _ = build_networks(CFG)
    gan = WGANGP(g, c, critic_steps=5)
    gan.compile(g_optimizer=adam(), c_optimizer=adam())
    seen = []
    real_step = gan._critic_step

    def spy(real):
        seen.append(real.numpy().copy())
        return real_step(real)

    gan._critic_step = spy
    x = images(20, seed=3)
    gan.train_step(tf.constant(x))
    assert len(seen) == 5 and all(s.shape == (4, 16, 16, 1) for s in seen)
    for i, s in enumerate(seen):
        np.testing.assert_array_equal(s, x[i::5])
    flat = np.concatenate(seen).reshape(20, -1)
    assert len(np.unique(flat, axis=0)) == 20


def test_wgan_gp_and_encoder_learn_a_toy_distribution():
    """Normal data: a bright square at one of two places on a dark background. The WGAN-GP's
    samples move towards it (the critic's Wasserstein estimate falls) and the encoder trained
    on the GAN lowers the held-out izi_f."""
    rng = np.random.default_rng(0)

    def squares(n):
        x = np.full((n, 16, 16, 1), -1.0, "float32")
        for i in range(n):
            r, q = (2, 2) if rng.random() < 0.5 else (8, 8)
            x[i, r:r + 6, q:q + 6] = 1.0
        return x + rng.normal(0, 0.05, x.shape).astype("float32")

    keras.utils.set_random_seed(0)
    g, c, e = build_networks(CFG)
    gan = WGANGP(g, c, critic_steps=2)
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-3, 0.0, 0.9),
                c_optimizer=keras.optimizers.Adam(1e-3, 0.0, 0.9))
    data = tf.data.Dataset.from_tensor_slices(squares(512)).repeat().batch(32)
    hist = gan.fit(data, epochs=6, steps_per_epoch=25, verbose=0)
    real_mean = squares(256).mean(axis=0)
    fake = g(tf.random.normal((256, 16)), training=False).numpy()
    assert np.abs(fake.mean(axis=0) - real_mean).mean() < 0.35
    assert hist.history["w_dist"][-1] < hist.history["w_dist"][0]
    held_out = squares(64)
    trainer = EncoderTrainer(g, c, e, mode="izi_f")
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    before = trainer.evaluate(held_out, batch_size=32, verbose=0, return_dict=True)["izi_f"]
    trainer.fit(tf.data.Dataset.from_tensor_slices(squares(512)).repeat().batch(32), epochs=1, steps_per_epoch=150,
                verbose=0)
    after = trainer.evaluate(held_out, batch_size=32, verbose=0, return_dict=True)["izi_f"]
    assert after < 0.7 * before, (before, after)
