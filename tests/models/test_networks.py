import keras
import numpy as np
import pytest

from tf_fanogan.config import ConfigError, ModelConfig
from tf_fanogan.models.networks import Critic, Encoder, Generator, build_networks


def count(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_paper_configuration_has_the_published_parameter_count():
    g, c, e = build_networks(ModelConfig(image_size=64, channels=1, dim=64, latent_dim=128))
    assert (count(g), count(c), count(e)) == (8_539_329, 7_490_689, 8_531_200)
    assert count(g) + count(c) + count(e) == 24_561_218


@pytest.mark.parametrize("size,channels", [(16, 1), (32, 3), (128, 1)])
def test_shapes_follow_the_image_size(size, channels):
    g, c, e = build_networks(ModelConfig(size, channels, dim=4, latent_dim=8))
    z = np.random.default_rng(0).normal(size=(2, 8)).astype("float32")
    x = g(z)
    assert x.shape == (2, size, size, channels)
    assert np.all(np.abs(x) <= 1)
    score, features = c(x)
    assert score.shape == (2,)
    assert features.shape == (2, 4 * 4 * 4 * min(8, 2 ** (int(np.log2(size // 4)))))
    zz = e(x)
    assert zz.shape == (2, 8) and e.head == "linear"  # the normal prior's head is unbounded
    _, _, bounded = build_networks(ModelConfig(size, channels, dim=4, latent_dim=8, latent_prior="uniform"))
    assert np.all(np.abs(bounded(x)) < 1)


def test_critic_uses_layer_norm_and_encoder_batch_norm():
    _, c, e = build_networks(ModelConfig(16, 1, 4, 8))
    kinds = lambda m: {type(layer).__name__ for layer in m.layers}
    assert "BatchNormalization" not in kinds(c) and "GroupNormalization" in kinds(c)
    assert "BatchNormalization" in kinds(e)


def test_invalid_image_size_is_rejected():
    with pytest.raises(ConfigError, match="power of two"):
        Generator(image_size=48)


@pytest.mark.parametrize("cls", [Generator, Critic, Encoder])
def test_config_round_trip_and_keras_save_load(cls, tmp_path):
    model = cls(image_size=16, channels=1, dim=4, latent_dim=8)
    clone = cls.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    path = str(tmp_path / f"{cls.__name__}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    x = np.random.default_rng(0).normal(size=(3, 8) if cls is Generator else (3, 16, 16, 1)).astype("float32")
    a, b = model(x), loaded(x)
    for u, v in zip(keras.tree.flatten(a), keras.tree.flatten(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-6, atol=1e-6)
