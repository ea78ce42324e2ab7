"""Helpers shared by the tests (imported one way: ``from helpers import ...``): tiny configs,
synthetic images, and the reliability report hook."""

import json
import os

import numpy as np

from tf_fanogan.config import EncoderTrainingConfig, FAnoGANConfig, GANTrainingConfig, ModelConfig

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


def tiny_config(**overrides) -> FAnoGANConfig:
    cfg = FAnoGANConfig(
        model=ModelConfig(image_size=16, channels=1, dim=8, latent_dim=16),
        # XLA (the "auto" default) costs ~25 s of compiling per fit at these sizes, and tracing
        # five unrolled critic updates ~8 s more than two; test_trainers covers both at the paper's 5.
        gan=GANTrainingConfig(epochs=1, batch_size=4, critic_steps=2, jit_compile=False),
        encoder=EncoderTrainingConfig(epochs=1, batch_size=4, jit_compile=False),
        seed=0, score_batch_size=8,
    )
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            setattr(getattr(cfg, section), name, value)
        else:
            setattr(cfg, section, value)
    return cfg.validate()


def report(**figures):
    """Appends measured figures to ``$TF_FANOGAN_RELIABILITY_REPORT`` (JSON lines), if set;
    ``benchmarks/reliability.py`` runs the tests with it and writes BENCHMARKS.md."""
    path = os.environ.get("TF_FANOGAN_RELIABILITY_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(figures) + "\n")


def blobs(n, size=20, seed=0, anomalous=False):
    """Smooth normal images (a bright disc at a random place); anomalies add a dark stripe."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        img = 60 + 150 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 5) ** 2))
        if anomalous:
            img[:, size // 2 - 1:size // 2 + 1] = 250
        out[i] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255)
    return out
