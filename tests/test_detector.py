import json

import numpy as np
import pytest

from tf_fanogan import signatures as sig
from tf_fanogan.detector import DetectorError, FAnoGAN
from helpers import blobs, tiny_config


def test_calibration_uses_normal_images_and_hits_the_target_fpr(trained_detector):
    holdout = blobs(40, seed=11)
    det = trained_detector
    old = det.threshold_, det.calibration_, det.holdout_scores_  # the session fixture must come back unchanged
    try:
        det.calibrate(holdout, fpr=0.1)
        assert det.calibration_["fpr_on_holdout"] <= 0.1
        assert det.predict(holdout).mean() <= 0.1
        assert det.score(holdout[:3])[sig.IS_ANOMALY].dtype == bool
        np.testing.assert_array_equal(det.decision_function(holdout), det.score(holdout)[sig.ANOMALY_SCORE])
    finally:
        det.threshold_, det.calibration_, det.holdout_scores_ = old


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


def test_fit_resumes_a_finished_stage_from_the_workdir(tmp_path, normal_images):
    """A second fit on the same workdir restores the finished stage instead of training it
    again: same weights, same history, no new log rows."""
    det = FAnoGAN(tiny_config(gan__epochs=2))
    det.fit(normal_images[:40], stage="gan", workdir=str(tmp_path / "work"), verbose=0)
    assert len(det.history_["gan"]["c_loss"]) == 2
    log = (tmp_path / "work" / "gan_log.csv").read_text()
    assert det.trained_ == {"gan": True, "encoder": False}
    again = FAnoGAN(tiny_config(gan__epochs=2))
    again.fit(normal_images[:40], stage="gan", workdir=str(tmp_path / "work"), verbose=0)
    for a, b in zip(det.generator.get_weights(), again.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert again.history_["gan"] == {k: list(map(float, v)) for k, v in det.history_["gan"].items()}
    assert (tmp_path / "work" / "gan_log.csv").read_text() == log


def test_fit_resets_the_calibration(trained_detector, normal_images):
    """scikit-learn's rule: a new fit discards learned state, the threshold included."""
    det = FAnoGAN.from_networks(trained_detector.config, *trained_detector.networks.values(),
                                threshold=trained_detector.threshold_)
    assert det.threshold_ is not None
    det.fit(normal_images[:16], stage="encoder", verbose=0)
    assert det.threshold_ is None and det.calibration_ is None
    with pytest.raises(DetectorError, match="not calibrated"):
        det.predict(normal_images[:2])


def test_summary_reports_parameters(trained_detector):
    info = trained_detector.summary()
    for name in ("generator", "critic", "encoder"):  # Keras' own count, less the batch-norm statistics
        net = getattr(trained_detector, name)
        frozen = sum(int(np.prod(w.shape)) for w in net.non_trainable_weights)
        assert info["trainable_parameters"][name] == net.count_params() - frozen
    assert info["updates"] == trained_detector.updates_ and info["threshold"] == trained_detector.threshold_
    json.dumps(info)


def test_calibration_refuses_a_hold_out_too_small_for_the_fpr(trained_detector):
    det = FAnoGAN.from_networks(trained_detector.config, *trained_detector.networks.values())
    with pytest.raises(DetectorError, match="needs at least 20 normal hold-out images .*got 1"):
        det.calibrate(blobs(1, seed=3), fpr=0.05)
    with pytest.raises(DetectorError, match="needs at least 10"):
        det.calibrate(blobs(9, seed=3), fpr=0.1)
    assert det.threshold_ is None
    det.calibrate(blobs(10, seed=3), fpr=0.1)
    assert det.threshold_ is not None
