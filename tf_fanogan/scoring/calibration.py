"""What calibration on normal hold-out images learns: the threshold at a target FPR, the sorted
hold-out scores behind the conformal p-values, and the two terms' hold-out statistics."""

from __future__ import annotations

import numpy as np

from tf_fanogan import signatures as sig
from tf_fanogan.errors import DetectorError
from tf_fanogan.evaluation.metrics import threshold_at_fpr


def check_fpr(fpr: float) -> None:
    """A target false-positive rate must lie in (0, 1)."""
    if isinstance(fpr, bool) or not isinstance(fpr, (int, float, np.floating)) or not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr!r}")


def check_holdout(n_images: int, fpr: float) -> None:
    """A hold-out of n images resolves FPRs in steps of 1/n, so fewer than ``1 / fpr`` images
    (20 for 5%) cannot calibrate that FPR at all: refused, with the count needed."""
    check_fpr(fpr)
    needed = int(np.ceil(1.0 / fpr - 1e-9))
    if n_images < needed:
        raise DetectorError(f"calibrating at FPR {fpr:g} needs at least {needed} normal hold-out images (it "
                            f"resolves FPR in steps of 1/n); got {n_images}")


def normalization_of(raw_scores: dict) -> dict:
    """Hold-out statistics for ``scoring.normalize`` from the raw ``residual_score`` and
    ``feature_score`` of the normal hold-out images (a zero spread counts as 1e-12)."""
    out = {}
    for term, key in (("residual", sig.RESIDUAL_SCORE), ("feature", sig.FEATURE_SCORE)):
        values = np.asarray(raw_scores[key], np.float64)
        out[f"{term}_mean"], out[f"{term}_std"] = float(values.mean()), max(float(values.std()), 1e-12)
    return out


def fitted(scores, fpr: float, scoring, terms: dict):
    """``(threshold, sorted hold-out scores, calibration facts)`` from the hold-out anomaly scores."""
    scores = np.asarray(scores)
    threshold = threshold_at_fpr(scores, fpr)
    facts = {
        "fpr_target": fpr, "fpr_on_holdout": float(np.mean(scores > threshold)), "n_images": int(len(scores)),
        "threshold": threshold, "score_mean": float(scores.mean()), "score_std": float(scores.std()),
        "score_percentiles": {str(p): float(np.percentile(scores, p)) for p in (1, 5, 50, 95, 99)},
        "scoring": dict(scoring.__dict__), "term_statistics": terms}
    return threshold, np.sort(scores.astype(np.float32)), facts
