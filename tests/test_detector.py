import json
import os

import numpy as np
import pytest

from tf_fanogan import signatures as sig
from tf_fanogan.detector import DetectorError, FAnoGAN
from tests.conftest import blobs, tiny_config


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


def test_calibration_uses_normal_images_and_hits_the_target_fpr(trained_detector):
    holdout = blobs(40, seed=11)
    det = trained_detector
    old = det.threshold_, det.calibration_
    try:
        det.calibrate(holdout, fpr=0.1)
        assert det.calibration_["fpr_on_holdout"] <= 0.1
        assert det.predict(holdout).mean() <= 0.1
        assert det.score(holdout[:3])[sig.IS_ANOMALY].dtype == bool
        np.testing.assert_array_equal(det.decision_function(holdout), det.score(holdout)[sig.ANOMALY_SCORE])
    finally:
        det.threshold_, det.calibration_ = old


def test_obvious_anomalies_score_higher(trained_detector):
    normal = trained_detector.decision_function(blobs(20, seed=12))
    odd = trained_detector.decision_function(blobs(20, seed=12, anomalous=True))
    assert np.median(odd) > np.median(normal)


def test_out_of_order_use_is_a_clear_error():
    det = FAnoGAN(tiny_config())
    with pytest.raises(DetectorError, match="fit"):
        det.score(blobs(2))
    with pytest.raises(DetectorError, match="stage 1"):
        det.fit(blobs(8), stage="encoder", verbose=0)


def test_fit_resumes_from_workdir_and_records_history(tmp_path, normal_images):
    det = FAnoGAN(tiny_config(gan__epochs=2))
    det.fit(normal_images[:40], stage="gan", workdir=str(tmp_path / "work"), verbose=0)
    assert len(det.history_["gan"]["c_loss"]) == 2
    assert os.path.isfile(tmp_path / "work" / "gan_log.csv")
    assert det.trained_ == {"gan": True, "encoder": False}


def test_summary_reports_parameters(trained_detector):
    info = trained_detector.summary()
    assert info["trainable_parameters"]["total"] == sum(
        info["trainable_parameters"][k] for k in ("generator", "critic", "encoder"))
    json.dumps(info)
