"""Session fixtures of the Beam tests: one exported version, an image folder, `fanogan score`'s rows on it."""

import numpy as np
import pytest
from PIL import Image

from helpers import blobs
from helpers.beam import read_csv
from tf_fanogan.cli import main
from helpers.serving import publish


@pytest.fixture(scope="session")
def version(trained_export, tmp_path_factory):
    return publish(trained_export, str(tmp_path_factory.mktemp("saved_models")), "fanogan", warmup=False)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """PNG 8-bit, PNG 16-bit and JPEG (grayscale, larger than the model: resized), in sub-folders,
    plus a hidden file that a folder source leaves out, as `fanogan score` does."""
    root = tmp_path_factory.mktemp("beam") / "imgs"
    (root / "png").mkdir(parents=True)
    (root / "jpeg").mkdir()
    for i, img in enumerate(blobs(12, size=24, seed=11)):
        if i < 4:
            Image.fromarray(img).save(root / "png" / f"{i:02d}.png")
        elif i < 8:
            Image.fromarray(img.astype(np.uint16) * 257).save(root / "png" / f"{i:02d}_16bit.png")
        else:
            Image.fromarray(img).save(root / "jpeg" / f"{i:02d}.jpg", quality=90)
    (root / ".hidden.png").write_bytes(b"not scored")
    return root


@pytest.fixture(scope="session")
def reference(trained_detector, images, tmp_path_factory):
    """`fanogan score` on the same folder, through a saved detector (the user's path)."""
    d = tmp_path_factory.mktemp("ref")
    trained_detector.save(str(d / "det"))
    assert main(["score", str(d / "det"), "--data", str(images), "--output", str(d / "scores.csv")]) == 0
    return read_csv(d / "scores.csv")
