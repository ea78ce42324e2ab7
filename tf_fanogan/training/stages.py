"""The two training stages of f-AnoGAN, each one ``keras.Model.fit`` of its trainer.

Stage 1 (:func:`train_gan`) fits :class:`~tf_fanogan.models.wgan_gp.WGANGP` on normal images;
stage 2 (:func:`train_encoder`) fits :class:`~tf_fanogan.models.encoder_trainer.EncoderTrainer`
with G and the critic frozen. Budgets, learning-rate schedules, the generator EMA and early
stopping come from the config (:mod:`tf_fanogan.training.schedule`); backups and resume from the
:class:`~tf_fanogan.training.workdir.Workdir`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tf_fanogan.config import FAnoGANConfig, resolve_jit_compile
from tf_fanogan.errors import DetectorError
from tf_fanogan.models.encoder_trainer import EncoderTrainer
from tf_fanogan.models.networks import dtype_policy
from tf_fanogan.models.wgan_gp import WGANGP
from tf_fanogan.training import distribute, pipeline, schedule
from tf_fanogan.training.workdir import Workdir


class StageError(DetectorError):
    """A stage cannot run with these settings."""


def _check_global_batch(strategy, batch_size: int, field: str) -> None:
    n = strategy.num_replicas_in_sync
    if batch_size % n:
        raise StageError(f"{field}={batch_size} is the global batch; it must be a multiple of the "
                         f"{n} replicas of the strategy")


def check_inputs(config: FAnoGANConfig, todo, validation, strategy) -> None:
    """Refuses, before any stage trains, what a stage would refuse after the ones before it had
    run (an encoder setting must not cost a finished stage 1 to learn about)."""
    if "gan" in todo:
        _check_global_batch(strategy, config.gan.batch_size, "gan.batch_size")
    if "encoder" in todo:
        _check_global_batch(strategy, config.encoder.batch_size, "encoder.batch_size")
        if config.encoder.early_stopping and validation is None:
            raise StageError("encoder.early_stopping needs normal validation images (fit(..., validation=...) "
                             "or --validation)")


def _jit(value, strategy) -> bool:
    return resolve_jit_compile(value, distributed=distribute.is_distributed(strategy),
                               accelerator=bool(tf.config.list_physical_devices("GPU")))


def _policy(config: FAnoGANConfig) -> str:
    return "mixed_float16" if config.mixed_precision else "float32"


def train_gan(generator, critic, config: FAnoGANConfig, x, strategy, workdir: Workdir, callbacks=None,
              verbose="auto"):
    """Stage 1 on float32 images in [-1, 1]. Returns ``(history, generator updates)``."""
    c = config.gan
    check_inputs(config, ["gan"], None, strategy)
    per_step = c.batch_size * c.critic_steps
    plan = schedule.plan(len(x), per_step, c.epochs, c.iterations)
    with dtype_policy(_policy(config)), strategy.scope():
        gan = WGANGP(generator, critic, critic_steps=c.critic_steps, gp_weight=c.gp_weight, seed=config.seed,
                     latent_prior=config.model.latent_prior, augment=c.augment)
        g_lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates)
        c_lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates * c.critic_steps)
        ema = dict(use_ema=True, ema_momentum=c.ema) if c.ema > 0 else {}
        gan.compile(g_optimizer=keras.optimizers.Adam(g_lr, c.beta_1, c.beta_2, **ema),
                    c_optimizer=keras.optimizers.Adam(c_lr, c.beta_1, c.beta_2),
                    jit_compile=_jit(c.jit_compile, strategy))
    ds = pipeline.training_dataset(x, per_step, config.seed,
                                   skip_batches=plan.steps_per_epoch * workdir.backed_up_epochs("gan"))
    hist = gan.fit(ds, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch,
                   callbacks=workdir.callbacks("gan", plan, callbacks), verbose=verbose, shuffle=False)
    if c.ema > 0:
        # The generator takes its averaged weights; its batch-norm statistics, gathered on the
        # live weights, are then re-estimated for them.
        gan.g_optimizer.finalize_variable_values(generator.trainable_variables)
        schedule.refresh_batch_norm(generator, config.model.latent_prior, c.batch_size, config.seed)
    return hist.history, int(gan.g_optimizer.iterations.numpy())


def train_encoder(generator, critic, encoder, config: FAnoGANConfig, x, validation, strategy, workdir: Workdir,
                  callbacks=None, verbose="auto"):
    """Stage 2 on float32 images in [-1, 1]. Returns ``(history, encoder updates)``."""
    c = config.encoder
    check_inputs(config, ["encoder"], validation, strategy)
    plan = schedule.plan(len(x), c.batch_size, c.epochs, c.iterations)
    with dtype_policy(_policy(config)), strategy.scope():
        trainer = EncoderTrainer(generator, critic, encoder, mode=c.mode, kappa=c.kappa, seed=config.seed,
                                 latent_prior=config.model.latent_prior)
        lr = schedule.learning_rate(c.learning_rate, c.lr_decay, plan.updates)
        trainer.compile(optimizer=keras.optimizers.RMSprop(lr, rho=c.rho, epsilon=c.epsilon),
                        jit_compile=_jit(c.jit_compile, strategy))
    ds = pipeline.training_dataset(x, c.batch_size, config.seed,
                                   skip_batches=plan.steps_per_epoch * workdir.backed_up_epochs("encoder"))
    val_ds = None
    if validation is not None:
        val_ds = distribute.distribute_options(tf.data.Dataset.from_tensor_slices(validation).batch(c.batch_size))
    extra = list(callbacks or [])
    if c.early_stopping:
        extra.append(schedule.KeepBest(c.early_stopping))
    hist = trainer.fit(ds, epochs=plan.epochs, steps_per_epoch=plan.steps_per_epoch, validation_data=val_ds,
                       callbacks=workdir.callbacks("encoder", plan, extra), verbose=verbose, shuffle=False)
    return hist.history, int(trainer.optimizer.iterations.numpy())
