"""The latent prior and the encoder head agree: under each prior E can reach the prior's
typical points, every draw of z uses the prior, and detectors saved before the prior existed
still score as they did."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from tf_fanogan.models import latent
from tf_fanogan.config import ConfigError, FAnoGANConfig, ModelConfig
from tf_fanogan.models.encoder_trainer import EncoderTrainer
from tf_fanogan.models.networks import build_networks
from tf_fanogan.models.wgan_gp import WGANGP

PRIOR_STD = {"normal": 1.0, "uniform": 1.0 / np.sqrt(3.0)}


@pytest.mark.parametrize("prior, head", [("normal", "linear"), ("uniform", "tanh")])
def test_the_encoder_head_follows_the_prior(prior, head):
    _, _, e = build_networks(ModelConfig(16, 1, 8, 4, latent_prior=prior))
    assert e.head == head and e.get_layer("z").get_config()["activation"] == head
    assert latent.encoder_head(prior) == head


@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_stage_1_and_ziz_draw_z_from_the_prior(prior):
    g, c, e = build_networks(ModelConfig(16, 1, 8, 16, latent_prior=prior))
    z = WGANGP(g, c, latent_prior=prior, seed=1)._noise(4096).numpy()
    trainer = EncoderTrainer(g, c, e, mode="ziz", latent_prior=prior, seed=1)
    drawn = latent.sample((4096, 16), trainer.latent_prior, seed=trainer.seed_generator).numpy()
    for sample in (z, drawn):
        assert abs(sample.std() - PRIOR_STD[prior]) < 0.02 and abs(sample.mean()) < 0.02
        if prior == "uniform":
            assert sample.min() >= -1.0 and sample.max() <= 1.0
        else:
            assert np.mean(np.abs(sample) > 1.0) == pytest.approx(0.3173, abs=0.01)  # P(|z| > 1) of N(0, 1)


@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_after_a_short_ziz_training_E_of_G_of_z_spreads_like_the_prior(prior):
    """Not only a structural check: E learns to invert a toy generator, and the per-coordinate
    spread of E(G(z)) approaches the prior's (a tanh head under the normal prior could not)."""
    keras.utils.set_random_seed(0)
    g, c, e = build_networks(ModelConfig(16, 1, 8, 4, latent_prior=prior))
    trainer = EncoderTrainer(g, c, e, mode="ziz", latent_prior=prior, seed=0)
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    dummy = tf.data.Dataset.from_tensors(tf.zeros((32, 16, 16, 1))).repeat()
    trainer.fit(dummy, epochs=1, steps_per_epoch=300, verbose=0)
    z = latent.sample_numpy(np.random.default_rng(5), (512, 4), prior)
    z_hat = e(g(z, training=False), training=False).numpy()
    ratio = z_hat.std(axis=0) / PRIOR_STD[prior]
    assert np.all(ratio > 0.8) and np.all(ratio < 1.2), ratio
    corr = [np.corrcoef(z[:, k], z_hat[:, k])[0, 1] for k in range(4)]
    assert min(corr) > 0.9, corr


def test_unknown_prior_and_head_are_one_line_errors():
    with pytest.raises(ConfigError, match="model.latent_prior must be one of normal, uniform; got 'gauss'"):
        FAnoGANConfig().with_overrides(["model.latent_prior=gauss"])
    with pytest.raises(ConfigError, match="model.encoder_head"):
        FAnoGANConfig().with_overrides(["model.encoder_head=relu"])


def test_a_detector_saved_before_latent_prior_loads_and_scores_as_before(tmp_path, normal_images):
    """Before the prior existed, detectors drew z ~ N(0, I) and ended the encoder in tanh; their
    config.json has neither key. Loaded now, such a detector keeps its tanh head and scores
    exactly as it did."""
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.persistence import MANIFEST_FILE, sha256_file

    cfg = tiny_config(model__encoder_head="tanh")
    det = FAnoGAN.from_networks(cfg, *FAnoGAN(cfg).networks.values())  # weights need no training here
    path = det.save(str(tmp_path / "old"))
    before = det.score(normal_images[:10])["anomaly_score"]
    cfg_path = os.path.join(path, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    for key in ("latent_prior", "encoder_head"):
        del cfg["model"][key]
    for section, keys in {"gan": ("iterations", "lr_decay", "ema", "augment"),
                          "encoder": ("iterations", "lr_decay", "early_stopping")}.items():
        for key in keys:
            del cfg[section][key]
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    with open(os.path.join(path, MANIFEST_FILE)) as f:
        manifest = json.load(f)
    manifest["sha256"]["config.json"] = sha256_file(cfg_path)
    with open(os.path.join(path, MANIFEST_FILE), "w") as f:
        json.dump(manifest, f)
    old = FAnoGAN.load(path)
    assert (old.config.model.latent_prior, old.config.model.encoder_head) == ("normal", "tanh")
    assert old.encoder.head == "tanh"
    np.testing.assert_array_equal(old.score(normal_images[:10])["anomaly_score"], before)
    # A new detector by default has the linear head of the normal prior.
    assert FAnoGAN(tiny_config()).encoder.head == "linear"


def test_prior_draws_and_projection_onto_the_support():
    """Uniform draws stay inside [-1, 1], normal ones do not; projection clips or rescales."""
    rng = np.random.default_rng(0)
    assert np.abs(latent.sample_numpy(rng, (1000, 8), "uniform")).max() <= 1.0
    assert np.abs(latent.sample_numpy(rng, (1000, 8), "normal")).max() > 2.0
    z = tf.constant([[100.0] * 16, [0.5] * 16])
    projected = latent.project(z, "normal").numpy()
    assert np.linalg.norm(projected[0]) == pytest.approx(latent.support_radius(16), rel=1e-5)
    np.testing.assert_array_equal(projected[1], z.numpy()[1])
    assert latent.project(tf.constant([[3.0, -0.5, -2.0]]), "uniform").numpy().tolist() == [[1.0, -0.5, -1.0]]
