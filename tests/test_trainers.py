import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_fanogan.scoring import forward as scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import ModelConfig
from tf_fanogan.models.networks import dtype_policy
from tf_fanogan.models.encoder_trainer import EncoderTrainer
from tf_fanogan.models.networks import build_networks
from tf_fanogan.models.wgan_gp import WGANGP

CFG = ModelConfig(16, 1, 8, 16)


def images(n, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, 16, 16, 1)).astype("float32")


def adam():
    return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)


def snapshot(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model):
    return any(not np.allclose(a, b.numpy()) for a, b in zip(before, model.trainable_weights))


def gan_fit(jit=False, seed=0, critic_steps=5):
    keras.utils.set_random_seed(seed)
    g, c, _ = build_networks(CFG)
    gan = WGANGP(g, c, critic_steps=critic_steps, seed=seed)
    gan.compile(g_optimizer=adam(), c_optimizer=adam(), jit_compile=jit)
    g0, c0 = snapshot(g), snapshot(c)
    hist = gan.fit(tf.data.Dataset.from_tensor_slices(images(40)).batch(4 * critic_steps, drop_remainder=True),
                   epochs=1, verbose=0)
    return gan, g0, c0, hist


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


@pytest.mark.parametrize("mode", ["izi_f", "izi", "ziz"])
def test_encoder_epoch_trains_only_the_encoder(mode):
    keras.utils.set_random_seed(0)
    g, c, e = build_networks(CFG)
    trainer = EncoderTrainer(g, c, e, mode=mode, kappa=1.0)
    trainer.compile(optimizer=keras.optimizers.RMSprop(5e-5, rho=0.9, epsilon=1e-10))
    g0, c0, e0 = [w.numpy().copy() for w in g.weights], snapshot(c), snapshot(e)
    hist = trainer.fit(tf.data.Dataset.from_tensor_slices(images(16)).batch(4), epochs=1, verbose=0,
                       validation_data=tf.data.Dataset.from_tensor_slices(images(8, 1)).batch(4))
    assert changed(e0, e)
    assert not changed(c0, c)
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(g0, g.weights)), "G (incl. BN stats) must be frozen"
    for key in ("enc_loss", "izi", "izi_f", "val_enc_loss"):
        assert np.isfinite(hist.history[key][0]), key


def test_izif_loss_is_the_mean_anomaly_score():
    keras.utils.set_random_seed(0)
    g, c, e = build_networks(CFG)
    trainer = EncoderTrainer(g, c, e, mode="izi_f", kappa=0.7)
    trainer.compile(optimizer=keras.optimizers.RMSprop(5e-5))
    x = images(8)
    result = trainer.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    expected = scoring.score_batch(g, c, e, x, 0.7)[sig.ANOMALY_SCORE].numpy().mean()
    np.testing.assert_allclose(result["enc_loss"], expected, rtol=1e-5)


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


def test_trainers_round_trip_through_get_config_and_keras_files(tmp_path):
    keras.utils.set_random_seed(0)
    g, c, e = build_networks(ModelConfig(16, 1, 8, 16, latent_prior="uniform"))
    gan = WGANGP(g, c, critic_steps=3, gp_weight=7.0, seed=4, latent_prior="uniform", augment="flip")
    again = WGANGP.from_config(gan.get_config())
    assert (again.critic_steps, again.gp_weight, again.seed, again.latent_prior, again.augment) == (
        3, 7.0, 4, "uniform", "flip")
    assert again.generator.get_config() == g.get_config() and again.critic.get_config() == c.get_config()
    trainer = EncoderTrainer(g, c, e, mode="ziz", kappa=0.3, seed=2, latent_prior="uniform")
    back = EncoderTrainer.from_config(trainer.get_config())
    assert (back.mode, back.kappa, back.seed, back.latent_prior, back.encoder.head) == ("ziz", 0.3, 2, "uniform", "tanh")
    for net in (g, c, e):  # the networks themselves through .keras files
        path = str(tmp_path / f"{net.name}.keras")
        net.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.get_config() == net.get_config()
        for a, b in zip(net.get_weights(), loaded.get_weights()):
            np.testing.assert_array_equal(a, b)


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
