"""The CPU recipe: the shapes and budgets it states, optional aids passed through, validated."""

import pytest

from tf_fanogan.config import ConfigError
from tf_fanogan.recipes import CPU_ENCODER_ITERATIONS, CPU_GAN_ITERATIONS, cpu_recipe


def test_cpu_recipe_is_what_its_docs_say():
    c = cpu_recipe()
    assert (c.model.image_size, c.model.channels, c.model.dim, c.model.latent_dim) == (32, 1, 16, 128)
    assert (c.gan.iterations, c.gan.batch_size, c.gan.learning_rate) == (CPU_GAN_ITERATIONS, 16, 2e-4)
    assert (c.encoder.iterations, c.encoder.batch_size, c.encoder.mode) == (CPU_ENCODER_ITERATIONS, 32, "izi_f")
    assert c.model.latent_prior == "normal" and c.gan.critic_steps == 5 and c.gan.gp_weight == 10.0


def test_gan_options_reach_the_config_and_bad_ones_are_refused():
    c = cpu_recipe(64, 3, 8, 10, 20, seed=4, ema=0.999, lr_decay="linear")
    assert (c.model.image_size, c.model.channels, c.gan.iterations, c.encoder.iterations, c.seed) == (64, 3, 10, 20, 4)
    assert c.gan.ema == 0.999 and c.gan.lr_decay == "linear"
    with pytest.raises(ConfigError, match="gan.ema"):
        cpu_recipe(ema=1.5)
