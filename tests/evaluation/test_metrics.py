"""Metrics against hand-computed values and brute-force references; `fanogan evaluate` end to end."""

import json
import re

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.evaluation import metrics as ev


def test_image_metrics_match_hand_computed_values():
    m = ev.image_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.3, threshold_source="normal_fpr")
    assert m["auroc"] == pytest.approx(0.75)
    # score > 0.3: predictions F T T T -> tp 2, fp 1, fn 0, tn 1
    assert (m["precision"], m["sensitivity"], m["specificity"]) == pytest.approx((2 / 3, 1.0, 0.5))
    assert m["f1"] == pytest.approx(0.8)
    assert m["threshold_source"] == "normal_fpr"


@pytest.mark.parametrize("bad, match", [
    (([0, 0], [0.1, 0.2]), "both normal"),
    (([0, 2], [0.1, 0.2]), "0 .normal. or 1"),
    (([0, 1], [0.1, np.nan]), "NaN"),
    (([0, 1, 1], [0.1, 0.2]), "one shape"),
])
def test_image_metrics_refuse_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        ev.image_metrics(*bad)


def test_rank_auroc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    neg, pos = rng.integers(0, 20, 300).astype(float), rng.integers(5, 25, 200).astype(float)
    labels = np.r_[np.zeros(300), np.ones(200)]
    assert ev._auroc_two_samples(neg, pos) == pytest.approx(roc_auc_score(labels, np.r_[neg, pos]))


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_data():
    rng = np.random.default_rng(1)

    def sample(n):
        labels = np.r_[np.zeros(n), np.ones(n)]
        return labels, np.r_[rng.normal(0, 1, n), rng.normal(1, 1, n)]

    small, large = sample(40), sample(800)
    lo, hi = ev.bootstrap_auroc(*small, n_resamples=400)
    assert lo < ev.image_metrics(*small)["auroc"] < hi
    lo2, hi2 = ev.bootstrap_auroc(*large, n_resamples=400)
    assert hi2 - lo2 < (hi - lo) / 2
    assert ev.bootstrap_auroc(*small, n_resamples=400) == (lo, hi)  # seeded


def test_f1_optimal_threshold_is_the_best_of_all_thresholds():
    rng = np.random.default_rng(2)
    labels = np.r_[np.zeros(200, int), np.ones(60, int)]
    scores = np.r_[rng.normal(0, 1, 200), rng.normal(1.5, 1, 60)]
    t = ev.f1_optimal_threshold(labels, scores)
    best = max(ev.image_metrics(labels, scores, c)["f1"] for c in np.r_[scores, scores.min() - 1])
    assert ev.image_metrics(labels, scores, t)["f1"] == pytest.approx(best)


def test_threshold_at_fpr_is_the_smallest_score_flagging_at_most_that_share():
    rng = np.random.default_rng(3)
    for normal, fpr in ((rng.normal(size=1000), 0.05), (np.arange(1.0, 101.0), 0.05),
                        (np.round(rng.normal(size=57), 1), 0.1), (np.ones(30), 0.05)):  # ties, all equal
        t = ev.threshold_at_fpr(normal, fpr)
        brute = min(v for v in normal if np.mean(normal > v) <= fpr)
        assert t == brute and np.mean(normal > t) <= fpr
    assert ev.threshold_at_fpr(np.arange(1.0, 101.0), 0.05) == 95.0  # 5 of 100 above it, not 4


def _regions_8(mask):
    """8-connected components by flood fill (independent of scipy)."""
    seen = np.zeros_like(mask, bool)
    regions = []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        stack, region = [start], np.zeros_like(mask, bool)
        seen[start] = True
        while stack:
            y, x = stack.pop()
            region[y, x] = True
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    q = (y + dy, x + dx)
                    if 0 <= q[0] < mask.shape[0] and 0 <= q[1] < mask.shape[1] and mask[q] and not seen[q]:
                        seen[q] = True
                        stack.append(q)
        regions.append(region)
    return regions


def _pro_reference(masks, maps, max_fpr):
    """Brute force by the MVTec definition: 8-connected regions, every distinct threshold,
    curve from (0, 0), integrated on a dense grid up to max_fpr, divided by max_fpr."""
    regions = [(i, reg) for i, m in enumerate(masks) for reg in _regions_8(m)]
    fprs, pros = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        pred = maps >= t
        fprs.append(pred[~masks].mean())
        pros.append(np.mean([pred[i][reg].mean() for i, reg in regions]))
    fprs, pros = np.array(fprs), np.array(pros)
    grid = np.linspace(0, max_fpr, 300001)
    return np.trapezoid(np.interp(grid, fprs, pros), grid) / max_fpr


def _defects():
    masks = np.zeros((6, 24, 24), bool)
    masks[0, 2:6, 2:6] = True
    masks[0, 15:22, 10:20] = True
    masks[3, 8:10, :] = True
    for k in range(14):  # a diagonal crack beside a blob: one region under 8-connectivity
        masks[4, 3 + k, 4 + k] = True
    masks[4, 18:22, 1:5] = True
    return masks


@pytest.mark.parametrize("case", ["continuous", "heavy_ties", "quantised"])
def test_aupro_matches_an_independent_reference(case):
    rng = np.random.default_rng(4)
    masks = _defects()
    maps = rng.random(masks.shape) + 0.6 * masks
    if case == "heavy_ties":  # 90% of the background exactly 0
        maps[(~masks) & (rng.random(masks.shape) < 0.9)] = 0.0
    if case == "quantised":  # maps in quarters: few distinct thresholds, many ties
        maps = np.round(maps * 4) / 4
    assert ev.aupro(masks, maps) == pytest.approx(_pro_reference(masks, maps, 0.3), abs=1e-4)


def test_aupro_closed_forms_and_8_connectivity():
    masks = _defects()
    # A constant map: one threshold flags everything, the curve is the diagonal (0,0)-(1,1),
    # whose area up to 0.3 is 0.045, i.e. 0.15 once normalised (a curve cut at the last
    # point before 0.3 but divided by 0.3 gives 0 here).
    assert ev.aupro(masks, np.zeros(masks.shape)) == pytest.approx(0.15)
    # The mask itself as the map: PRO 1 at FPR 0.
    assert ev.aupro(masks, masks.astype(float)) == pytest.approx(1.0)
    # A diagonal crack beside a blob, the blob found and the crack missed: two regions (PRO 0.5
    # at FPR 0, then the diagonal to (1, 1): area (0.5 + 0.65) / 2 once normalised). With
    # 4-connectivity the crack would be 14 one-pixel regions and PRO 1/15.
    one = np.zeros((1, 24, 24), bool)
    for k in range(14):
        one[0, 3 + k, 4 + k] = True
    one[0, 18:22, 16:20] = True
    found = np.zeros(one.shape)
    found[0, 18:22, 16:20] = 1.0
    assert ev.aupro(one, found) == pytest.approx(0.575)
    assert ev.aupro(masks, -masks.astype(float)) < 0.01


def test_pixel_metrics_dice_and_auroc():
    masks = np.zeros((3, 16, 16), bool)
    masks[1, 4:8, 4:8] = True
    perfect = ev.pixel_metrics(masks, masks[..., None].astype(np.float32), pixel_threshold=0.5)
    assert perfect["pixel_auroc"] == pytest.approx(1.0) and perfect["dice"] == pytest.approx(1.0)
    half = masks.copy(); half[1, 4:6, 4:8] = False  # predicts half the defect
    assert ev.pixel_metrics(masks, half.astype(np.float32), 0.5)["dice"] == pytest.approx(2 * 8 / (8 + 16))




def test_fanogan_evaluate_writes_metrics_and_plots(trained_detector, labelled_folder, tmp_path, capsys):
    from tf_fanogan.cli import main

    det_dir = str(tmp_path / "det")
    trained_detector.save(det_dir)
    out = tmp_path / "eval"
    rc = main(["evaluate", det_dir, "--data", str(labelled_folder / "data"), "--out", str(out),
               "--pixel-calibration", str(labelled_folder / "pixcal"), "--bootstrap", "50"])
    err = capsys.readouterr().err
    assert rc == 0, err
    # Progress on stderr: counts and rates of reading, scoring and residual maps, timed steps.
    for pattern in (r"reading \S+ 24 images in [\d.]+ s \([\d.]+ images/s\)",
                    r"scoring 24/24 images in [\d.]+ s \([\d.]+ images/s\)",
                    r"residual maps 24/24 images in [\d.]+ s \([\d.]+ images/s\)",
                    r"metrics \(50 bootstrap resamples for the AUROC interval\): [\d.]+ s",
                    r"plots and files in \S+: [\d.]+ s"):
        assert re.search(pattern, err), (pattern, err)
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_normal"] == 12 and m["n_anomalous"] == 12
    assert m["threshold"] == pytest.approx(trained_detector.threshold_) and m["threshold_source"].startswith("normal_fpr")
    assert m["auroc_ci95"][0] <= m["auroc"] <= m["auroc_ci95"][1]
    assert {"pixel_auroc", "aupro_0.3", "dice"} <= set(m["pixel"])
    assert m["display_scale"]["vmax"] > 0
    for png in ("roc.png", "pr.png", "histogram.png", "top_anomalies.png", "extremes.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] >= 300
    rows = (out / "scores.csv").read_text().splitlines()
    assert len(rows) == 25 and rows[0].startswith("name,label,anomaly_score")
    # A labelled validation split replaces the calibrated threshold with an F1-optimal one.
    rc = main(["evaluate", det_dir, "--data", str(labelled_folder / "data"), "--out", str(out),
               "--validation", str(labelled_folder / "data"), "--bootstrap", "0", "--quiet"])
    assert rc == 0 and capsys.readouterr().err == ""
    m2 = json.loads((out / "metrics.json").read_text())
    assert m2["threshold_source"].startswith("validation_f1") and "pixel" in m2 and "dice" not in m2["pixel"]


def test_fanogan_evaluate_bad_data_is_one_line(trained_detector, tmp_path, capsys):
    from tf_fanogan.cli import main

    det_dir = str(tmp_path / "det")
    trained_detector.save(det_dir)
    rc = main(["evaluate", det_dir, "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "normal/ and anomalous/" in err and len(err.splitlines()) == 1
