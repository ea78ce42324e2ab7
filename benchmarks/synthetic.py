"""Synthetic inputs shared by the throughput benchmarks (streaming, Beam): PNG folders at the
model size and a small calibrated detector, both seeded."""

from __future__ import annotations

import os

import numpy as np


def make_images(folder: str, n: int, size: int, seed: int = 0) -> list[str]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (64, size, size)).astype(np.uint8)
    paths = []
    for i in range(n):
        sub = os.path.join(folder, f"{i // 1000:03d}")
        os.makedirs(sub, exist_ok=True)
        img = np.clip(base[i % 64].astype(np.int16) + rng.integers(-8, 9, (size, size)), 0, 255).astype(np.uint8)
        path = os.path.join(sub, f"{i:06d}.png")
        Image.fromarray(img).save(path, compress_level=1)
        paths.append(path)
    return paths


def make_detector(path: str, size: int, dim: int, jit: bool = True) -> None:
    from tf_fanogan import EncoderTrainingConfig, FAnoGAN, FAnoGANConfig, GANTrainingConfig, ModelConfig

    rng = np.random.default_rng(1)
    x = rng.integers(40, 200, (320, size, size)).astype(np.uint8)
    det = FAnoGAN(FAnoGANConfig(model=ModelConfig(size, 1, dim, 128),
                                gan=GANTrainingConfig(epochs=1, batch_size=32, jit_compile=jit),
                                encoder=EncoderTrainingConfig(epochs=1, batch_size=32, jit_compile=jit)))
    det.fit(x, verbose=0)
    det.calibrate(x[:64], fpr=0.05)
    det.save(path)
