"""`EncoderTrainer`: izi_f / izi / ziz train only the encoder; the loss is the anomaly score; Keras round trips."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_fanogan.scoring import forward as scoring
from tf_fanogan import signatures as sig
from tf_fanogan.config import ModelConfig
from tf_fanogan.models.encoder_trainer import EncoderTrainer
from tf_fanogan.models.networks import build_networks
from tf_fanogan.models.wgan_gp import WGANGP
from helpers.models import CFG, changed, images, snapshot


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
