"""Loaders for real data sets that the project installs itself, with documented splits."""

from __future__ import annotations

import numpy as np


def load_elpv(seed: int = 0, holdout_fraction: float = 0.15, test_fraction: float = 0.15):
    """ELPV solar cells (Buerhop-Lutz et al. 2018; Deitsch et al. 2019), from ``elpv-dataset``.

    Split: normal = defect probability 0; anomalous = probability >= 2/3 (cells rated 1/3
    are left out as uncertain). The normal cells are shuffled with ``seed`` and split into
    ``train`` / ``holdout`` (for calibration) / ``test_normal``; every anomalous cell goes to
    ``test_anomalous``. Images are 300x300 uint8 grayscale.

    Returns:
        Dict with ``train``, ``holdout``, ``test_normal``, ``test_anomalous`` arrays and
        ``test_images`` / ``test_labels`` (1 = anomalous) concatenated.
    """
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        raise ImportError("ELPV needs the 'elpv-dataset' package: pip install elpv-dataset") from None
    images, probs, _ = load_dataset()
    normal = images[probs == 0]
    anomalous = images[probs >= 2 / 3 - 1e-6]
    order = np.random.default_rng(seed).permutation(len(normal))
    n_hold = int(round(holdout_fraction * len(normal)))
    n_test = int(round(test_fraction * len(normal)))
    test_normal = normal[order[:n_test]]
    holdout = normal[order[n_test:n_test + n_hold]]
    train = normal[order[n_test + n_hold:]]
    return {
        "train": train, "holdout": holdout, "test_normal": test_normal,
        "test_anomalous": anomalous,
        "test_images": np.concatenate([test_normal, anomalous]),
        "test_labels": np.concatenate([np.zeros(len(test_normal), int), np.ones(len(anomalous), int)]),
    }
