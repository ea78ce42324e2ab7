"""What calibration learns from normal hold-out scores: the size check, the threshold, the sorted
scores behind the p-values, the terms' statistics."""

import numpy as np
import pytest

from tf_fanogan import signatures as sig
from tf_fanogan.config import ScoringConfig
from tf_fanogan.errors import DetectorError
from tf_fanogan.scoring import calibration


def test_a_holdout_too_small_for_the_fpr_is_refused_with_the_count():
    calibration.check_holdout(20, 0.05)  # 1 / 0.05 images resolve 5%
    with pytest.raises(DetectorError, match="needs at least 20 normal hold-out images .* got 19"):
        calibration.check_holdout(19, 0.05)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="fpr must be in"):
            calibration.check_holdout(100, bad)


def test_calibrate_checks_the_fpr_before_reading_images(trained_detector, tmp_path):
    for bad in (1.5, True, "0.05"):  # not a missing-folder error: the setting is named first
        with pytest.raises(ValueError, match="fpr must be in"):
            trained_detector.calibrate(str(tmp_path / "no_such_folder"), fpr=bad)


def test_fitted_threshold_flags_at_most_the_fpr_and_keeps_the_scores_sorted():
    scores = np.random.default_rng(0).permutation(np.arange(1, 101, dtype=np.float32))  # 1..100
    threshold, held, facts = calibration.fitted(scores, 0.05, ScoringConfig(), {"residual_mean": 0.0})
    assert threshold == 95.0 and np.mean(scores > threshold) == pytest.approx(0.05)
    assert held.dtype == np.float32 and np.array_equal(held, np.arange(1, 101))
    assert facts["n_images"] == 100 and facts["fpr_on_holdout"] == pytest.approx(0.05)
    assert facts["scoring"]["residual_pooling"] == "mean" and facts["term_statistics"] == {"residual_mean": 0.0}


def test_term_statistics_and_a_zero_spread():
    raw = {sig.RESIDUAL_SCORE: np.array([1.0, 3.0]), sig.FEATURE_SCORE: np.array([2.0, 2.0])}
    terms = calibration.normalization_of(raw)
    assert terms["residual_mean"] == 2.0 and terms["residual_std"] == 1.0
    assert terms["feature_mean"] == 2.0 and terms["feature_std"] == 1e-12  # never a division by zero
