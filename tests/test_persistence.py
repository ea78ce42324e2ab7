"""Saving and loading a detector: identical scores, atomic overwrite, tampered or incomplete directories refused."""

import os

import numpy as np
import pytest

from tf_fanogan.detector import DetectorError, FAnoGAN
from helpers import blobs


def test_saved_and_reloaded_detector_scores_identically(trained_detector, tmp_path):
    path = trained_detector.save(str(tmp_path / "det"))
    loaded = FAnoGAN.load(path)
    x = blobs(7, seed=5)
    a, b = trained_detector.score(x), loaded.score(x)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert loaded.threshold_ == trained_detector.threshold_
    assert loaded.config == trained_detector.config
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")], "no temporary directories left"


def test_save_overwrites_atomically(trained_detector, tmp_path):
    path = str(tmp_path / "det")
    trained_detector.save(path)
    trained_detector.save(path)
    assert FAnoGAN.load(path).threshold_ == trained_detector.threshold_
    assert sorted(os.listdir(tmp_path)) == ["det"]


def test_tampered_or_incomplete_directories_are_rejected(trained_detector, tmp_path):
    path = trained_detector.save(str(tmp_path / "det"))
    with open(os.path.join(path, "encoder.weights.h5"), "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"0123456789")
    with pytest.raises(DetectorError, match="encoder.weights.h5.*SHA-256"):
        FAnoGAN.load(path)
    os.remove(os.path.join(path, "encoder.weights.h5"))
    with pytest.raises(DetectorError, match="missing"):
        FAnoGAN.load(path)
    os.remove(os.path.join(path, "manifest.json"))
    with pytest.raises(DetectorError, match="manifest"):
        FAnoGAN.load(path)
