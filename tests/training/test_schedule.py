"""Budgets in updates, linear learning-rate decay, the generator EMA, critic-input
augmentation and encoder early stopping."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import tiny_config
from tf_fanogan.training import schedule
from tf_fanogan.config import ConfigError, FAnoGANConfig
from tf_fanogan.detector import DetectorError, FAnoGAN


def test_plan_counts_updates_exactly():
    assert schedule.plan(100, 10, 3, None) == schedule.Plan(10, 3, 30)
    assert schedule.plan(100, 10, 3, 25) == schedule.Plan(10, 3, 25)  # last epoch cut at 5
    assert schedule.plan(100, 10, 3, 4) == schedule.Plan(4, 1, 4)
    assert schedule.plan(3, 10, 2, None) == schedule.Plan(1, 2, 2)


def test_iterations_budget_trains_exactly_that_many_updates(normal_images):
    det = FAnoGAN(tiny_config(gan__iterations=7, encoder__iterations=5))
    det.fit(normal_images[:40], verbose=0)  # 40 // (4 * 2) = 5 GAN updates per epoch, 10 encoder
    assert len(det.history_["gan"]["g_loss"]) == 2  # epochs of 5 and 2 updates
    assert len(det.history_["encoder"]["enc_loss"]) == 1
    assert det.updates_ == {"gan": 7, "encoder": 5}


@pytest.mark.parametrize("bad", ["gan.iterations=0", "gan.iterations=-3", "encoder.iterations=0",
                                 "gan.iterations=1.5", "gan.ema=1.0", "gan.lr_decay=cosine",
                                 "gan.augment=rotate", "encoder.early_stopping=-1", "encoder.kappa=.nan",
                                 "encoder.kappa=nan", "gan.learning_rate=.inf", "gan.gp_weight=-1"])
def test_bad_budget_and_option_values_are_one_line_errors(bad):
    key = bad.split("=")[0]
    with pytest.raises(ConfigError, match=key.split(".")[1]):
        FAnoGANConfig().with_overrides([bad])


def test_linear_decay_ends_at_zero_and_the_critic_decays_over_its_own_steps():
    lr = schedule.learning_rate(1e-3, "linear", 100)
    assert float(lr(0)) == pytest.approx(1e-3) and float(lr(50)) == pytest.approx(5e-4) and float(lr(100)) == 0.0
    assert schedule.learning_rate(1e-3, "none", 100) == 1e-3


def test_ema_generator_is_the_average_and_batch_norm_is_refreshed(normal_images):
    """With ema the generator ends with the optimizer's moving average of its weights (not the
    last weights), and its batch-norm moving statistics are re-estimated for them."""
    plain = FAnoGAN(tiny_config(gan__epochs=3))
    plain.fit(normal_images[:40], stage="gan", verbose=0)
    ema = FAnoGAN(tiny_config(gan__epochs=3, gan__ema=0.9))
    ema.fit(normal_images[:40], stage="gan", verbose=0)
    # same seed and data, so the live weights match the plain run's: the EMA run ends elsewhere
    assert any(not np.allclose(a.numpy(), b.numpy(), atol=1e-6)
               for a, b in zip(ema.generator.trainable_weights, plain.generator.trainable_weights))
    bn = lambda det: [lay for lay in det.generator.layers if isinstance(lay, keras.layers.BatchNormalization)][0]  # noqa: E731
    assert not np.allclose(bn(ema).moving_mean.numpy(), bn(plain).moving_mean.numpy())
    assert np.all(np.isfinite(ema.generator(tf.zeros((2, 16)), training=False).numpy()))


def test_early_stopping_keeps_the_best_validation_epoch(normal_images):
    det = FAnoGAN(tiny_config(encoder__epochs=6, encoder__early_stopping=1, encoder__learning_rate=0.05))
    with pytest.raises(DetectorError, match="early_stopping needs normal validation images"):
        det.fit(normal_images[:40], verbose=0)
    assert det.trained_ == {"gan": False, "encoder": False}  # refused before stage 1 ran, not after it
    det = FAnoGAN(tiny_config(encoder__epochs=6, encoder__early_stopping=1, encoder__learning_rate=0.05))
    val = normal_images[40:56]
    det.fit(normal_images[:40], validation=val, verbose=0)
    history = det.history_["encoder"]["val_izi_f"]
    best = min(history)
    measured = det.score(val)["anomaly_score"].mean()
    assert measured == pytest.approx(best, rel=1e-3)
