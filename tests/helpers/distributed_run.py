"""Trains a tiny f-AnoGAN (both stages) under a strategy and saves every network weight.

Run by tests/test_distribute.py in separate processes:

    python distributed_run.py OUT.npz none|mirrored|multi_worker

``multi_worker`` reads TF_CONFIG; ``mirrored`` splits this process' CPU into two logical
devices. The data, config and seeds are fixed, so every mode trains on the same global batches.

The trainers' Adam and RMSprop are swapped for plain SGD at the configured learning rates:
adaptive optimizers divide each gradient by its own magnitude, so on the first steps a
parameter whose gradient is numerically zero (e.g. a bias before a norm) moves by +-lr on the
sign of rounding noise, and they are invariant to the loss's scale, which would hide a missing
1/replicas scaling. With SGD, equal gradients mean equal weights.
"""

import sys

import numpy as np
import tensorflow as tf

out, mode = sys.argv[1], sys.argv[2]
if mode == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from tf_fanogan import EncoderTrainingConfig, FAnoGAN, FAnoGANConfig, GANTrainingConfig, ModelConfig  # noqa: E402

keras.optimizers.Adam = lambda learning_rate, *args, **kwargs: keras.optimizers.SGD(learning_rate)
keras.optimizers.RMSprop = lambda learning_rate, *args, **kwargs: keras.optimizers.SGD(learning_rate)

strategy = {"none": "none", "multi_worker": "multi_worker",
            "mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}[mode]
strategy = strategy() if callable(strategy) else strategy
config = FAnoGANConfig(model=ModelConfig(image_size=16, dim=8, latent_dim=16),
                       gan=GANTrainingConfig(epochs=1, batch_size=8, critic_steps=2, learning_rate=0.005,
                                             jit_compile=False),
                       encoder=EncoderTrainingConfig(epochs=1, batch_size=8, learning_rate=0.005,
                                                     jit_compile=False), seed=3)
images = np.random.default_rng(0).random((48, 16, 16, 1), dtype=np.float32)
det = FAnoGAN(config, strategy=strategy)
initial = {f"{n}/{i}": np.asarray(w.numpy()) for n in ("generator", "critic", "encoder")
           for i, w in enumerate(getattr(det, n).weights)}
det.fit(images, verbose=0)
trained = {f"{n}/{i}": np.asarray(w.numpy()) for n in ("generator", "critic", "encoder")
           for i, w in enumerate(getattr(det, n).weights)}
np.savez(out, replicas=det.strategy.num_replicas_in_sync,
         **{f"initial:{k}": v for k, v in initial.items()}, **{f"trained:{k}": v for k, v in trained.items()})
print("done", mode, det.strategy.num_replicas_in_sync, flush=True)
