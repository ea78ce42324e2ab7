"""Image-level detection metrics (the paper's columns) from scores and labels."""

from __future__ import annotations

import numpy as np


def image_metrics(labels, scores, threshold: float | None = None) -> dict:
    """AUROC and AUPR, and at ``threshold`` precision, sensitivity, specificity and F1.

    Args:
        labels: 1 = anomalous, 0 = normal.
        scores: Anomaly scores (higher = more anomalous).
        threshold: Decision threshold (score > threshold is anomalous); state where it came
            from (normal-only calibration or a validation split), never the test set.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if labels.all() or not labels.any():
        raise ValueError("labels must contain both normal (0) and anomalous (1) images")
    out = {"n_normal": int((~labels).sum()), "n_anomalous": int(labels.sum()),
           "auroc": float(roc_auc_score(labels, scores)),
           "aupr": float(average_precision_score(labels, scores))}
    if threshold is not None:
        pred = scores > threshold
        tp = int((pred & labels).sum()); fp = int((pred & ~labels).sum())
        fn = int((~pred & labels).sum()); tn = int((~pred & ~labels).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        sensitivity = tp / (tp + fn)
        out.update(threshold=float(threshold), precision=precision, sensitivity=sensitivity,
                   specificity=tn / (tn + fp),
                   f1=2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0)
    return out
