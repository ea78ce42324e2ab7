"""Detection metrics: the paper's image-level columns, bootstrap intervals, pixel-level localisation.

Image level (Schlegl et al. 2019, Table 2): AUROC, AUPR, and at a threshold precision,
sensitivity, specificity and F1. The threshold must come from data that is not the test set:
either normal images only (:func:`threshold_at_fpr`, what :meth:`FAnoGAN.calibrate` does) or a
labelled validation split (:func:`f1_optimal_threshold`); every result records which.

Pixel level, where ground-truth masks exist: pixel AUROC, AUPRO up to FPR 0.3 (the MVTec AD
per-region overlap, Bergmann et al. 2021) and Dice at a pixel threshold calibrated on the
residual maps of normal images.
"""

from __future__ import annotations

import numpy as np

THRESHOLD_SOURCES = ("normal_fpr", "validation_f1")


def _check_labels(labels, scores):
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must be 1-D and of one shape")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomalous)")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("labels must contain both normal (0) and anomalous (1) images")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite")
    return labels, scores


def threshold_at_fpr(normal_scores, fpr: float = 0.05) -> float:
    """Smallest observed normal score whose exceedance rate is <= ``fpr`` (normal data only)."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    s = np.sort(np.asarray(normal_scores, np.float64).ravel())
    if s.size == 0:
        raise ValueError("no normal scores to set a threshold on")
    allowed = int(np.floor(fpr * s.size + 1e-9))  # scores above the threshold: at most fpr * n
    return float(s[s.size - 1 - min(allowed, s.size - 1)])


def f1_optimal_threshold(labels, scores) -> float:
    """The threshold maximising F1 on a labelled **validation** split (never the test set)."""
    from sklearn.metrics import precision_recall_curve

    labels, scores = _check_labels(labels, scores)
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    # precision_recall_curve counts score >= t as positive; decisions here are score > t,
    # so return the next lower observed score.
    t = thresholds[int(np.argmax(f1))]
    lower = scores[scores < t]
    return float(lower.max()) if lower.size else float(np.nextafter(t, -np.inf))


def image_metrics(labels, scores, threshold: float | None = None, threshold_source: str | None = None) -> dict:
    """AUROC and AUPR, and at ``threshold`` precision, sensitivity, specificity and F1.

    Args:
        labels: 1 = anomalous, 0 = normal.
        scores: Anomaly scores (higher = more anomalous).
        threshold: Decision threshold (score > threshold is anomalous).
        threshold_source: Where the threshold came from, recorded in the result: one of
            ``THRESHOLD_SOURCES`` or free text; never the test set.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, scores = _check_labels(labels, scores)
    out = {"n_normal": int((~labels).sum()), "n_anomalous": int(labels.sum()),
           "auroc": float(roc_auc_score(labels, scores)),
           "aupr": float(average_precision_score(labels, scores))}
    if threshold is not None:
        pred = scores > threshold
        tp = int((pred & labels).sum()); fp = int((pred & ~labels).sum())
        fn = int((~pred & labels).sum()); tn = int((~pred & ~labels).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        sensitivity = tp / (tp + fn)
        out.update(threshold=float(threshold), threshold_source=threshold_source,
                   precision=precision, sensitivity=sensitivity, specificity=tn / (tn + fp),
                   f1=2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0)
    return out


def bootstrap_auroc(labels, scores, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0):
    """Percentile bootstrap interval for AUROC, resampling normals and anomalies separately.

    Returns:
        ``(low, high)``.
    """
    labels, scores = _check_labels(labels, scores)
    neg, pos = scores[~labels], scores[labels]
    rng = np.random.default_rng(seed)
    aucs = np.empty(n_resamples)
    for i in range(n_resamples):
        aucs[i] = _auroc_two_samples(rng.choice(neg, neg.size), rng.choice(pos, pos.size))
    alpha = (1.0 - confidence) / 2
    return float(np.quantile(aucs, alpha)), float(np.quantile(aucs, 1 - alpha))


def _auroc_two_samples(neg: np.ndarray, pos: np.ndarray) -> float:
    """Mann-Whitney AUROC with ties counted half."""
    neg = np.sort(neg)
    below = np.searchsorted(neg, pos, side="left")
    not_above = np.searchsorted(neg, pos, side="right")
    return float((below + not_above).sum() / (2.0 * neg.size * pos.size))


# ----------------------------------------------------------------- pixel level
def anomaly_maps(residual_maps):
    """Per-pixel anomaly maps (N, H, W) from residual maps (N, H, W[, C]): mean over channels. A
    list of differently sized (H, W) maps (stitched tiles at native resolution) stays a list."""
    if isinstance(residual_maps, (list, tuple)) and len({np.shape(m) for m in residual_maps}) > 1:
        return [np.asarray(m, np.float32) for m in residual_maps]
    maps = np.asarray(residual_maps, np.float32)
    return maps.mean(axis=-1) if maps.ndim == 4 else maps


def _pairs(masks, maps):
    """Per image (mask, map), both (H, W), of the same shape; pixels without a map value (NaN:
    outside every tile) are left out of every pixel metric."""
    maps = anomaly_maps(maps)
    if len(masks) != len(maps):
        raise ValueError(f"{len(masks)} masks but {len(maps)} anomaly maps")
    out = []
    for i, (mask, m) in enumerate(zip(masks, maps)):
        mask, m = np.asarray(mask).astype(bool), np.asarray(m, np.float32)
        if mask.shape != m.shape:
            raise ValueError(f"mask {i} of {mask.shape} and its anomaly map of {m.shape} differ in shape")
        out.append((mask, m, np.isfinite(m)))
    return out


def pixel_threshold_at_fpr(normal_maps, fpr: float = 0.01) -> float:
    """Pixel threshold flagging about ``fpr`` of the pixels of normal images' anomaly maps."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    values = np.concatenate([np.ravel(m) for m in anomaly_maps(normal_maps)])
    return float(np.quantile(values[np.isfinite(values)], 1.0 - fpr, method="higher"))


def aupro(masks, maps, max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, normalised to [0, 1].

    The MVTec AD definition (Bergmann et al., IJCV 2021, and its evaluation code): defect
    regions are the **8-connected** components of each mask, each counts once (large defects
    do not dominate); the FPR is over all defect-free pixels of all images. Every distinct
    map value is a threshold (ties move FPR and PRO together, in one step); the curve starts
    at (0, 0), is interpolated linearly to exactly FPR = ``max_fpr`` and its area is divided
    by ``max_fpr``.
    """
    from scipy import ndimage

    pairs = _pairs(masks, maps)
    if not 0.0 < max_fpr <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr}")
    n_background = sum(int((~mask & ok).sum()) for mask, _, ok in pairs)
    if n_background == 0:
        raise ValueError("AUPRO needs defect-free pixels")
    shares, n_regions = [], 0  # each pixel's share of its region (1 / region size), 0 on background
    for mask, _, ok in pairs:
        labelled, n = ndimage.label(mask & ok, structure=np.ones((3, 3), bool))
        sizes = np.bincount(labelled.ravel(), minlength=n + 1).astype(np.float64)
        share = np.where(labelled > 0, 1.0 / np.maximum(sizes[labelled], 1.0), 0.0)
        shares.append(share[ok])
        n_regions += n
    if n_regions == 0:
        raise ValueError("AUPRO needs at least one defect region in the masks")
    fpr_weight = np.concatenate([np.where(mask[ok], 0.0, 1.0 / n_background) for mask, _, ok in pairs])
    pro_weight = np.concatenate(shares) / n_regions
    values = np.concatenate([m[ok] for _, m, ok in pairs])
    order = np.argsort(-values, kind="stable")
    values = values[order]
    fpr = np.cumsum(fpr_weight[order])
    pro = np.cumsum(pro_weight[order])
    # One point per distinct threshold: the last pixel of each run of equal values.
    last = np.r_[np.flatnonzero(np.diff(values) != 0), values.size - 1]
    fpr = np.clip(np.r_[0.0, fpr[last]], 0.0, 1.0)
    pro = np.clip(np.r_[0.0, pro[last]], 0.0, 1.0)
    return float(_area_up_to(fpr, pro, max_fpr) / max_fpr)


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under the increasing curve (x, y) from x[0] to ``x_max``, with y
    interpolated linearly at ``x_max``."""
    inside = x < x_max
    xs, ys = x[inside], y[inside]
    nxt = int(np.searchsorted(x, x_max, side="left"))  # first point at or beyond x_max
    if nxt >= x.size:
        y_at = float(y[-1])
    elif x[nxt] == x_max:
        y_at = float(y[nxt])
    else:
        w = (x_max - x[nxt - 1]) / (x[nxt] - x[nxt - 1])
        y_at = float(y[nxt - 1] + w * (y[nxt] - y[nxt - 1]))
    return float(np.trapezoid(np.r_[ys, y_at], np.r_[xs, x_max]))


def pixel_metrics(masks, maps, pixel_threshold: float | None = None, max_fpr: float = 0.3) -> dict:
    """Pixel AUROC, AUPRO (FPR <= ``max_fpr``) and, at ``pixel_threshold``, Dice.

    Args:
        masks: Ground truth (N, H, W), nonzero = defect; include defect-free images too.
        maps: Anomaly or residual maps (N, H, W[, C]) of the same images.
        pixel_threshold: From :func:`pixel_threshold_at_fpr` on normal images' maps.
    """
    from sklearn.metrics import roc_auc_score

    pairs = _pairs(masks, maps)
    truth = np.concatenate([mask[ok] for mask, _, ok in pairs])
    values = np.concatenate([m[ok] for _, m, ok in pairs])
    out = {"pixel_auroc": float(roc_auc_score(truth, values)), f"aupro_{max_fpr:g}": aupro(masks, maps, max_fpr)}
    if pixel_threshold is not None:
        pred = values > pixel_threshold
        out["pixel_threshold"] = float(pixel_threshold)
        out["dice"] = 2 * float((pred & truth).sum()) / max(float(pred.sum() + truth.sum()), 1.0)
        per = [2 * ((m[ok] > pixel_threshold) & mask[ok]).sum() / max((m[ok] > pixel_threshold).sum()
                                                                       + mask[ok].sum(), 1)
               for mask, m, ok in pairs if mask[ok].any()]
        out["dice_mean_per_image"] = float(np.mean(per)) if per else None
    return out


def evaluate(labels, scores, threshold: float, threshold_source: str, bootstrap: int = 1000,
             seed: int = 0, extra_scores: dict | None = None) -> dict:
    """Image metrics with a bootstrap AUROC interval; ``extra_scores`` get AUROC/AUPR only."""
    out = image_metrics(labels, scores, threshold, threshold_source)
    if bootstrap:
        out["auroc_ci95"] = list(bootstrap_auroc(labels, scores, bootstrap, seed=seed))
    for name, s in (extra_scores or {}).items():
        m = image_metrics(labels, s)
        out[f"{name}_auroc"], out[f"{name}_aupr"] = m["auroc"], m["aupr"]
    return out


def evaluate_detector(detector, images, labels, masks=None, validation=None, pixel_normal=None,
                      pixel_fpr: float = 0.01, bootstrap: int = 1000, seed: int = 0,
                      out_dir: str | None = None, names=None, progress: bool = False) -> dict:
    """Scores labelled images with a detector and computes the paper's metrics.

    The image threshold is the detector's calibrated one (normal data only) unless a labelled
    ``validation`` split ``(images, labels)`` is given, in which case it is F1-optimal on that
    split. Pixel metrics need ``masks`` (one per image, zeros for normal ones); Dice also needs
    ``pixel_normal``, normal images whose residual maps set the pixel threshold at
    ``pixel_fpr``. Neither threshold ever looks at the evaluated images' labels.

    With ``out_dir``, writes ``metrics.json``, ``scores.csv``, ``roc.png``, ``pr.png``,
    ``histogram.png``, ``top_anomalies.png`` (input / reconstruction / residual overlay of the
    six highest scores, colour scale fixed from normal images) and ``extremes.png`` there.
    ``progress`` prints counts and rates of each step on stderr.
    """

    from tf_fanogan import signatures as sig
    from tf_fanogan.data import labelled
    from tf_fanogan.utils.progress import Progress, stage

    labels = np.asarray(labels).astype(int)
    bar = Progress("scoring", len(labels), enabled=progress)
    scores = detector.score(images, progress=bar)
    bar.close()
    a = scores[sig.ANOMALY_SCORE]
    if validation is not None:
        v_images, v_labels = validation
        bar = Progress("scoring the validation split", len(v_labels), enabled=progress)
        threshold = f1_optimal_threshold(v_labels, detector.score(v_images, progress=bar)[sig.ANOMALY_SCORE])
        bar.close()
        source = "validation_f1: F1-optimal on a labelled validation split"
    elif detector.threshold_ is not None:
        threshold = detector.threshold_
        cal = detector.calibration_ or {}
        source = (f"normal_fpr: calibrated on {cal.get('n_images', '?')} normal images at "
                  f"{cal.get('fpr_target', '?')} FPR")
    else:
        raise ValueError("no threshold: calibrate the detector on normal images or give a labelled validation split")
    with stage(f"metrics ({bootstrap} bootstrap resamples for the AUROC interval)", progress):
        result = evaluate(labels, a, threshold, source, bootstrap=bootstrap, seed=seed,
                          extra_scores={"residual_only": scores[sig.RESIDUAL_SCORE],
                                        "feature_only": scores[sig.FEATURE_SCORE]})
    if masks is not None:
        bar = Progress("residual maps", len(labels), enabled=progress)
        maps = detector.residual_maps(images, progress=bar)[sig.RESIDUAL_MAP]
        bar.close()
        gt = (labelled.masks_like(masks, maps, detector.config.data.small_images)  # tiles: full resolution
              if detector.config.data.tile_stride is not None
              else labelled.resize_masks(masks, detector.config.model.image_size))
        pixel_threshold = None
        if pixel_normal is not None:
            bar = Progress("residual maps of the pixel-calibration images", len(pixel_normal), enabled=progress)
            pixel_threshold = pixel_threshold_at_fpr(
                detector.residual_maps(pixel_normal, progress=bar)[sig.RESIDUAL_MAP], pixel_fpr)
            bar.close()
        with stage(f"pixel metrics ({sum(np.asarray(g).size for g in gt)} pixels)", progress):
            result["pixel"] = pixel_metrics(gt, maps, pixel_threshold)
        result["pixel"]["pixel_threshold_source"] = (
            f"normal_fpr: {pixel_fpr} of the pixels of {len(pixel_normal)} normal images' residual maps"
            if pixel_normal is not None else "none given (no Dice)")
    if out_dir:
        with stage(f"plots and files in {out_dir}", progress):
            _write_outputs(detector, out_dir, images, labels, scores, threshold, result, names, pixel_normal)
    return result


def _write_outputs(detector, out_dir, images, labels, scores, threshold, result, names, pixel_normal) -> None:
    """The PNGs, scores.csv and metrics.json of :func:`evaluate_detector` (adds ``display_scale``)."""
    import json
    import os

    from tf_fanogan import signatures as sig
    from tf_fanogan.reporting import visualize
    from tf_fanogan.utils.atomic import write_file_atomically

    a = scores[sig.ANOMALY_SCORE]
    os.makedirs(out_dir, exist_ok=True)
    visualize.roc_curve_png(labels, a, os.path.join(out_dir, "roc.png"))
    visualize.pr_curve_png(labels, a, os.path.join(out_dir, "pr.png"))
    visualize.score_histogram_png(labels, a, os.path.join(out_dir, "histogram.png"), threshold)
    names = list(names) if names is not None else [str(i) for i in range(len(labels))]
    native = detector.config.data.tile_stride is not None  # a list of full-resolution images
    x01 = detector.prepare(images, native=native)
    scale_images = (detector.prepare(pixel_normal, native=native) if pixel_normal is not None
                    else [x01[i] for i in np.flatnonzero(labels == 0)[:256]])
    vmax = visualize.map_scale(detector.residual_maps(scale_images)[sig.RESIDUAL_MAP])
    result["display_scale"] = {"vmax": vmax, "source": "99.5th percentile of the residual maps of "
                               + ("the --pixel-calibration images" if pixel_normal is not None
                                  else "the normal evaluated images")}
    top = np.argsort(-a, kind="stable")[:6]
    top_maps = detector.residual_maps([x01[i] for i in top] if native else x01[top])
    visualize.triptychs_png([x01[i] for i in top], top_maps[sig.RECONSTRUCTION], top_maps[sig.RESIDUAL_MAP],
                            os.path.join(out_dir, "top_anomalies.png"), vmax,
                            titles=[f"{os.path.basename(names[i])} A={a[i]:.4g}" for i in top])
    visualize.extremes_png(x01, a, os.path.join(out_dir, "extremes.png"), names=names)

    from tf_fanogan.scoring.rows import write_score_rows

    decided = {k: scores[k] for k in sig.SCORE_OUTPUTS}
    decided[sig.IS_ANOMALY] = a > threshold  # the evaluation's threshold (calibrated or validation F1)
    write_score_rows(os.path.join(out_dir, "scores.csv"), names, decided, name_column="name",
                     extra={"label": np.asarray(labels).astype(int)})
    write_file_atomically(os.path.join(out_dir, "metrics.json"), lambda f: json.dump(result, f, indent=2))
