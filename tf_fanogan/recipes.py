"""Ready-made configurations: the CPU recipe that ``make demo`` and the benchmarks train.

The paper's settings (:class:`~tf_fanogan.config.FAnoGANConfig` defaults: 64x64, width 64,
batch 64, Adam 1e-4) need a GPU and tens of thousands of updates. :func:`cpu_recipe` is what
trains in minutes on two CPU cores: 32x32, width 16, batch 16 with Adam 2e-4 (the learning
rate of the WGAN-GP ResNet recipe of Gulrajani et al. 2017), budgets counted in updates. Which
of the optional training aids (learning-rate decay, generator EMA, augmentation, encoder early
stopping) it switches on is decided by ``benchmarks/recipe.py`` (BENCHMARKS.md, "Training
recipe"): an aid is on only where it won there over seeds.
"""

from __future__ import annotations

from tf_fanogan.config import EncoderTrainingConfig, FAnoGANConfig, GANTrainingConfig, ModelConfig

CPU_GAN_ITERATIONS = 1000
CPU_ENCODER_ITERATIONS = 1000


def cpu_recipe(image_size: int = 32, channels: int = 1, dim: int = 16, gan_iterations: int = CPU_GAN_ITERATIONS,
               encoder_iterations: int = CPU_ENCODER_ITERATIONS, seed: int = 0, **gan_options) -> FAnoGANConfig:
    """The CPU training recipe (about 12 minutes on 2 cores for ELPV at the default budget).

    Args:
        image_size, channels, dim: Model shape.
        gan_iterations: Generator updates (each with 5 critic updates).
        encoder_iterations: Encoder updates (izi_f, RMSprop 5e-5 as in the authors' code).
        seed: Weights, noise and data order.
        **gan_options: Overrides of :class:`GANTrainingConfig` fields (e.g. ``ema=0.999``).
    """
    gan = dict(iterations=gan_iterations, batch_size=16, learning_rate=2e-4)
    gan.update(gan_options)
    return FAnoGANConfig(
        model=ModelConfig(image_size=image_size, channels=channels, dim=dim, latent_dim=128),
        gan=GANTrainingConfig(**gan),
        encoder=EncoderTrainingConfig(iterations=encoder_iterations, batch_size=32),
        seed=seed,
    ).validate()
