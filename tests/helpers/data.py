"""A labelled folder on disk (normal/, anomalous/, masks/ and a pixel-calibration set), as a fixture;
near-grey RGB pictures for the colour policy."""

import os

import numpy as np
import pytest
from PIL import Image

from helpers import blobs


def _write_png(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    for i, img in enumerate(blobs(12, seed=5)):
        _write_png(str(root / "data" / "normal" / f"n{i}.png"), img)
    for i, img in enumerate(blobs(12, seed=6, anomalous=True)):
        _write_png(str(root / "data" / "anomalous" / f"a{i}.png"), img)
        mask = np.zeros(img.shape, np.uint8); mask[:, 9:11] = 255
        _write_png(str(root / "data" / "masks" / f"a{i}.png"), mask)
    for i, img in enumerate(blobs(10, seed=7)):
        _write_png(str(root / "pixcal" / f"p{i}.png"), img)
    return root


def near_grey(spread: int, seed: int = 0) -> np.ndarray:
    """An RGB image whose channels differ by exactly ``spread`` levels at one pixel at least."""
    g = np.random.default_rng(seed).integers(20, 200, (20, 20), dtype=np.uint8)
    rgb = np.stack([g, g, g], -1).astype(np.int32)
    rgb[..., 1] += np.random.default_rng(seed + 1).integers(0, spread + 1, (20, 20))
    rgb[0, 0, 1] = rgb[0, 0, 0] + spread
    return rgb.astype(np.uint8)
