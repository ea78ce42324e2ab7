"""Conformal p-values: the FPR guarantee on exchangeable scores, and the same p-values in
process, in the SavedModel and over gRPC."""

import numpy as np
import pytest
import tensorflow as tf

from helpers import blobs
from tf_fanogan import signatures as sig
from tf_fanogan.detector import DetectorError, FAnoGAN
from tf_fanogan.scoring.scorer import conformal_p_values


def test_p_values_by_definition_with_ties():
    held = np.sort(np.array([0.1, 0.2, 0.2, 0.3, 0.5], np.float32))
    s = np.array([0.05, 0.2, 0.25, 0.5, 0.9], np.float32)
    p = conformal_p_values(tf.constant(s), tf.constant(held)).numpy()
    expected = [(1 + np.sum(held >= v)) / (len(held) + 1) for v in s]
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    assert p.min() == pytest.approx(1 / 6)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_flagging_p_at_most_alpha_has_fpr_at_most_alpha_on_exchangeable_scores(alpha):
    """2000 draws of a hold-out of 49 and a test batch of 200 from the same distribution: the
    mean FPR of p <= alpha is at most alpha (+ 3 standard errors of the mean)."""
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(2000):
        held = np.sort(rng.gamma(2.0, 1.0, 49).astype(np.float32))
        test = rng.gamma(2.0, 1.0, 200).astype(np.float32)
        rates.append(np.mean(conformal_p_values(tf.constant(test), tf.constant(held)).numpy() <= alpha))
    rates = np.array(rates)
    assert rates.mean() <= alpha + 3 * rates.std() / np.sqrt(len(rates))
    assert rates.mean() > alpha * 0.6  # not vacuous: close to alpha (exactly floor(alpha*50)/50)


def test_detector_p_values_served_equal_in_process(trained_detector, tmp_path):
    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.servable import Servable

    det = FAnoGAN.load(trained_detector.save(str(tmp_path / "d")))
    assert det.holdout_scores_ is not None and len(det.holdout_scores_) == det.calibration_["n_images"]
    x = det.prepare(blobs(6, seed=13))
    out = det.score(x)
    assert np.all((out[sig.P_VALUE] > 0) & (out[sig.P_VALUE] <= 1))
    flags = det.predict(x, alpha=0.5)
    np.testing.assert_array_equal(flags, out[sig.P_VALUE] <= 0.5)
    path = export_detector(det, str(tmp_path / "sm"), "m", warmup=False)
    served = Servable(path).run("score", {"images": x})
    np.testing.assert_allclose(served[sig.P_VALUE], out[sig.P_VALUE], rtol=1e-6)
    uncalibrated = FAnoGAN.from_networks(det.config, *det.networks.values())
    assert sig.P_VALUE not in uncalibrated.score(x)
    with pytest.raises(DetectorError, match="p-values need a calibrated detector"):
        uncalibrated.score(x, alpha=0.05)
    with pytest.raises(ValueError, match="alpha must be in"):
        det.score(x, alpha=1.5)
