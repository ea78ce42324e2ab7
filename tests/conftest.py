"""Tiny shapes and session-scoped trained fixtures, so the suite stays fast on 2 CPU cores."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The shared real data beside the project (tests may run from any directory, notebooks from theirs).
os.environ.setdefault("TF_FANOGAN_SHARED_DATA", os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")))

import pytest

from helpers import blobs, tiny_config  # noqa: F401 -- the fixtures below use them


@pytest.fixture(scope="session")
def normal_images():
    return blobs(80, seed=1)


@pytest.fixture(scope="session")
def trained_detector(normal_images):
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN(tiny_config())
    det.fit(normal_images, validation=normal_images[:8], verbose=0)
    det.calibrate(blobs(20, seed=2), fpr=0.1)
    return det
