"""OCT B-scans: retina mask, patches, stitching, B-scan aggregation, the real scans split by patient."""


import numpy as np
import pytest

from tf_fanogan.paper import oct


def synthetic_bscan(h=160, w=192, top=50, bottom=110, seed=0):
    """Dark speckle with a bright band (the retina) between ``top`` and ``bottom``, and a white
    padding wedge in the top-left corner as in Kermany's rotated scans."""
    rng = np.random.default_rng(seed)
    img = rng.normal(30, 8, (h, w))
    img[top:bottom] += 120
    yy, xx = np.mgrid[:h, :w]
    img[(yy < 30 - xx * 0.3)] = 255
    return np.clip(img, 0, 255).astype(np.uint8)


def test_retina_mask_finds_the_band_and_ignores_padding():
    bscan = synthetic_bscan()
    mask = oct.retina_mask(bscan)
    band = np.zeros_like(mask); band[50:110] = True
    iou = (mask & band).sum() / (mask | band).sum()
    assert iou > 0.9
    assert not mask[:20, :20].any()  # the white wedge is not retina


def test_patches_lie_inside_the_retina_and_cover_it():
    bscan = synthetic_bscan()
    patches, positions, mask = oct.bscan_patches(bscan, patch_size=32, stride=16)
    assert patches.shape[1:] == (32, 32) and len(patches) == len(positions) > 0
    for (y, x), p in zip(positions, patches):
        assert mask[y + 16, x + 16] and mask[y:y + 32, x:x + 32].mean() >= 0.5
        assert np.array_equal(p, bscan[y:y + 32, x:x + 32])
    covered = np.zeros_like(mask)
    for y, x in positions:
        covered[y:y + 32, x:x + 32] = True
    assert covered[60:100].mean() > 0.95  # the band's interior is scored


def test_stitching_averages_overlaps_and_leaves_the_rest_unscored():
    positions = np.array([[0, 0], [0, 2]])
    maps = np.stack([np.full((4, 4), 1.0), np.full((4, 4), 3.0)])
    heat = oct.stitch_heatmap((6, 8), positions, maps)
    assert heat[0, 0] == 1.0 and heat[0, 2] == 2.0 and heat[0, 5] == 3.0
    assert np.isnan(heat[5, 0]) and np.isnan(heat[0, 7])


def test_aggregate_max_and_top_k_mean():
    assert oct.aggregate([1.0, 5.0, 3.0, 2.0], top_k=2) == {"max": 5.0, "top_k_mean": 4.0}
    with pytest.raises(ValueError, match="no patches"):
        oct.aggregate([])


def test_score_bscan_gives_a_full_resolution_heatmap(trained_detector):
    bscan = synthetic_bscan()
    r = oct.score_bscan(trained_detector, bscan, patch_size=32, stride=16, top_k=3)
    assert r["heatmap"].shape == bscan.shape
    assert np.isfinite(r["heatmap"][r["mask"]]).mean() > 0.9 and np.isnan(r["heatmap"][:10]).all()
    assert r["max"] == pytest.approx(r["patch_scores"].max())
    assert r["top_k_mean"] == pytest.approx(np.sort(r["patch_scores"])[-3:].mean())


def test_real_oct_scans_split_by_patient_and_patch():
    from tf_fanogan.paper import datasets

    try:
        scans = datasets.load_oct_bscans()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    assert len(scans) == 66 and {s["class"] for s in scans} == {"NORMAL", "CNV", "DME", "DRUSEN"}
    split = datasets.split_oct_by_patient(scans, seed=0)
    patients = {k: {s["patient"] for s in v} for k, v in split.items()}
    assert not (patients["train"] & patients["test"]) and not (patients["holdout"] & patients["test"])
    assert all(s["label"] == 0 for s in split["train"] + split["holdout"])
    assert sum(len(v) for v in split.values()) == 66
    for s in scans[::11]:  # the retina is found and patched in every kind of scan
        patches, _, mask = oct.bscan_patches(s["image"], 64, 32)
        assert len(patches) >= 10, s["path"]
        assert 0.1 < mask.mean() < 0.7, s["path"]
