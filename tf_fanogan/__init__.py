"""tf-fanogan: f-AnoGAN (Schlegl et al., Medical Image Analysis 54, 2019) in TensorFlow/Keras 3.

Public names are imported lazily, so that light modules (the serving client, the CLI's
argument parsing) do not load the TensorFlow runtime.
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "FAnoGAN": "tf_fanogan.detector",
    "FAnoGANConfig": "tf_fanogan.config",
    "ModelConfig": "tf_fanogan.config",
    "GANTrainingConfig": "tf_fanogan.config",
    "EncoderTrainingConfig": "tf_fanogan.config",
    "Generator": "tf_fanogan.models.networks",
    "Critic": "tf_fanogan.models.networks",
    "Encoder": "tf_fanogan.models.networks",
    "build_networks": "tf_fanogan.models.networks",
    "WGANGP": "tf_fanogan.models.wgan_gp",
    "EncoderTrainer": "tf_fanogan.models.encoder_trainer",
    "score_batch": "tf_fanogan.scoring.forward",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tf_fanogan' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
