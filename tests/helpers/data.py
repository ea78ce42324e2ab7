"""A labelled folder on disk (normal/, anomalous/, masks/ and a pixel-calibration set), as a fixture."""

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
