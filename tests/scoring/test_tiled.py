"""Native-resolution tiling (``data.tile_stride``): training tiles, image scores from tile scores,
stitched maps, the settings' checks, and the same numbers from the served model's client."""

import os

import numpy as np
import pytest

from helpers import blobs, tiny_config
from tf_fanogan import signatures as sig
from tf_fanogan.config import ConfigError
from tf_fanogan.data import tiles
from tf_fanogan.data.images import DataError
from tf_fanogan.scoring import tiled


def large(n, seed=0, h=40, w=24):
    """Images larger than the 16x16 model: a 2x2 grid of blob images, cropped."""
    parts = blobs(4 * n, size=20, seed=seed).reshape(n, 2, 2, 20, 20)
    return np.stack([np.block([[p[0, 0], p[0, 1]], [p[1, 0], p[1, 1]]])[:h, :w] for p in parts])


@pytest.fixture(scope="module")
def tiled_detector(trained_detector):
    """The trained 16x16 networks under a tiled config (stride 8), calibrated on large images."""
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN.from_networks(tiny_config(data__tile_stride=8), *trained_detector.networks.values())
    det.calibrate(large(12, seed=3), fpr=0.1)
    return det


def tile_outputs(det, image01):
    """The untiled scorer on the image's tiles, cut by hand (the reference)."""
    positions = tiles.tile_positions(image01.shape[:2], 16, det.config.data.tile_stride)
    return positions, det.scorer.score(tiles.cut(image01, positions, 16))


def test_settings_are_checked():
    for bad in (0, -8, 1.5, True, "8"):
        with pytest.raises(ConfigError, match="data.tile_stride must be a positive integer"):
            tiny_config(data__tile_stride=bad)
    with pytest.raises(ConfigError, match="data.tile_score must be one of max, top_k_mean"):
        tiny_config(data__tile_stride=8, data__tile_score="mean")
    with pytest.raises(ConfigError, match="data.tile_top_k"):
        tiny_config(data__tile_stride=8, data__tile_top_k=0)


def test_training_uses_every_tile_of_every_image(trained_detector):
    from tf_fanogan.detector import FAnoGAN

    cfg = tiny_config(data__tile_stride=8)
    images = large(3)
    x = tiled.training_input(FAnoGAN(cfg).prepare, images, cfg)
    per_image = len(tiles.tile_positions((40, 24), 16, 8))  # 4 rows x 2 columns (the last moved in)
    assert per_image == 8 and x.shape == (3 * per_image, 16, 16, 1)
    np.testing.assert_allclose(x[per_image + 1], images[1, 0:16, 8:24, None] / 255.0 * 2 - 1, atol=1e-6)
    det = FAnoGAN(tiny_config(data__tile_stride=8, gan__iterations=1, encoder__iterations=1))
    det.fit(images, verbose=0)  # trains on tiles: a 40x24 image is never squashed to 16x16
    assert det.trained_ == {"gan": True, "encoder": True}


def test_image_score_is_its_top_tile(tiled_detector):
    images = large(5, seed=7)
    out = tiled_detector.score(images, tiles=True)
    for i, image in enumerate(images):
        positions, ref = tile_outputs(tiled_detector, image[..., None] / 255.0)
        top = int(np.argmax(ref[sig.ANOMALY_SCORE]))
        for key in (*sig.SCORE_OUTPUTS, sig.P_VALUE, sig.IS_ANOMALY):
            np.testing.assert_allclose(out[key][i], np.asarray(ref[key])[top], rtol=1e-6)
        # The image's p-value is its smallest tile p-value; it is flagged iff a tile is.
        assert out[sig.P_VALUE][i] == np.min(ref[sig.P_VALUE])
        assert out[sig.IS_ANOMALY][i] == np.any(ref[sig.IS_ANOMALY])
        np.testing.assert_array_equal(out["tile_positions"][i], positions)
        top5 = np.sort(np.asarray(ref[sig.ANOMALY_SCORE], np.float64))[::-1][:5]
        assert out["tile_max"][i] == pytest.approx(top5[0], rel=1e-6)
        assert out["tile_top_k_mean"][i] == pytest.approx(top5.mean(), rel=1e-6)
    # Batch composition does not change a score; every image is scored.
    again = tiled_detector.score(list(images[::-1]), batch_size=3)
    np.testing.assert_allclose(again[sig.ANOMALY_SCORE][::-1], out[sig.ANOMALY_SCORE], rtol=1e-6)


def test_top_k_mean_and_its_p_value(tiled_detector):
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN.from_networks(tiny_config(data__tile_stride=8, data__tile_score="top_k_mean", data__tile_top_k=3),
                                *tiled_detector.networks.values())
    det.calibrate(large(12, seed=3), fpr=0.1)
    images = large(4, seed=8)
    out = det.score(images)
    hold = det.holdout_scores_
    for i, image in enumerate(images):
        _, ref = tile_outputs(det, image[..., None] / 255.0)
        top3 = np.sort(np.asarray(ref[sig.ANOMALY_SCORE], np.float64))[::-1][:3]
        assert out[sig.ANOMALY_SCORE][i] == pytest.approx(top3.mean(), rel=1e-6)
        s = out[sig.ANOMALY_SCORE][i]
        assert out[sig.P_VALUE][i] == pytest.approx((1 + np.sum(hold >= s)) / (len(hold) + 1))
        assert out[sig.IS_ANOMALY][i] == (s > det.threshold_)
    # Calibration ran on image-level (top-3 mean) scores of the hold-out images.
    assert np.allclose(np.sort(det.score(large(12, seed=3))[sig.ANOMALY_SCORE]), hold, rtol=1e-6)


def test_maps_are_stitched_at_native_resolution(tiled_detector):
    images = large(2, seed=9)
    maps = tiled_detector.residual_maps(images)
    assert [m.shape for m in maps[sig.RESIDUAL_MAP]] == [(40, 24)] * 2
    assert [m.shape for m in maps[sig.RECONSTRUCTION]] == [(40, 24, 1)] * 2
    image01 = images[1][..., None] / 255.0
    positions = tiles.tile_positions((40, 24), 16, 8)
    ref = tiled_detector.scorer.residual_map(tiles.cut(image01, positions, 16))
    np.testing.assert_allclose(maps[sig.RESIDUAL_MAP][1], tiles.stitch((40, 24), positions, ref[sig.RESIDUAL_MAP]),
                               rtol=1e-5, atol=1e-7)


def test_small_images_and_bad_strides_are_refused_by_name(tiled_detector, trained_detector, tmp_path):
    from PIL import Image

    from tf_fanogan.detector import FAnoGAN

    refuse = FAnoGAN.from_networks(tiny_config(data__tile_stride=8, data__small_images="refuse"),
                                   *trained_detector.networks.values())
    with pytest.raises(DataError, match=r"image\[1\]: images of 12x30 are smaller than the model input"):
        refuse.score([large(1)[0], np.zeros((12, 30), np.uint8)])
    out = tiled_detector.score([np.full((12, 30), 90, np.uint8)])  # upsample (the default): 16x40
    assert np.isfinite(out[sig.ANOMALY_SCORE]).all()
    wide = FAnoGAN.from_networks(tiny_config(data__tile_stride=64), *trained_detector.networks.values())
    with pytest.raises(DataError, match=r"image\[0\]: tile stride 64 is larger than the 40x24 image"):
        wide.score(large(1))
    Image.fromarray(large(1)[0]).save(tmp_path / "b_scan.png")  # from a folder: named by its file
    with pytest.raises(DataError, match=r"b_scan\.png: tile stride 64 is larger than the 40x24 image"):
        wide.score(str(tmp_path))


def test_fanogan_score_csv_matches_in_process(tiled_detector, tmp_path):
    from PIL import Image

    from tf_fanogan.scoring.streaming import score_to_csv

    folder = tmp_path / "imgs"
    folder.mkdir()
    images = [large(1, seed=11)[0], large(1, seed=12, h=24, w=40)[0]]
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i}.png")
    score_to_csv(tiled_detector, str(folder), str(tmp_path / "s.csv"), progress=False)
    rows = (tmp_path / "s.csv").read_text().splitlines()
    got = [float(r.split(",")[1]) for r in rows[1:]]
    np.testing.assert_allclose(got, tiled_detector.score(images)[sig.ANOMALY_SCORE], rtol=1e-5)
    # A stride the image cannot take is that file's error: named, and skipped with on_error="skip".
    from tf_fanogan.detector import FAnoGAN

    wide = FAnoGAN.from_networks(tiny_config(data__tile_stride=45), *tiled_detector.networks.values())
    wide.calibrate([np.pad(x, 4, mode="edge") for x in large(12, seed=3, h=40, w=40)], fpr=0.1)  # 48x48
    Image.fromarray(np.pad(large(1, seed=13, h=40, w=40)[0], 4, mode="edge")).save(folder / "2.png")
    counts = score_to_csv(wide, str(folder), str(tmp_path / "w.csv"), on_error="skip", progress=False)
    assert counts["scored"] == 1 and counts["errors"] == 2
    errors = (tmp_path / "w.csv.errors.csv").read_text()
    assert "0.png: tile stride 45 is larger than the 40x24 image" in errors


def test_aupro_and_pixel_metrics_take_maps_of_any_sizes():
    from tf_fanogan.evaluation import metrics as ev

    rng = np.random.default_rng(0)
    a_mask, b_mask = np.zeros((12, 10), bool), np.zeros((12, 7), bool)
    a_mask[2:5, 2:5], b_mask[6:9, 2:4] = True, True  # away from the seam
    a_map, b_map = rng.random((12, 10)) + a_mask, rng.random((12, 7)) + 0.5 * b_mask
    joined = ev.pixel_metrics([np.hstack([a_mask, b_mask])], [np.hstack([a_map, b_map])])
    apart = ev.pixel_metrics([a_mask, b_mask], [a_map, b_map])
    assert apart == pytest.approx(joined)
    b_map[0, 0] = np.nan  # a pixel no tile covers counts nowhere
    assert np.isfinite(ev.pixel_metrics([a_mask, b_mask], [a_map, b_map])["aupro_0.3"])


def test_evaluate_gives_pixel_metrics_on_stitched_maps(tiled_detector, tmp_path):
    from tf_fanogan.evaluation.metrics import evaluate_detector, pixel_metrics

    normal, anomalous = large(6, seed=13), large(6, seed=14)
    anomalous[:, 10:14, 4:20] = 250
    masks = [np.zeros((40, 24), np.uint8)] * 6 + [np.pad(np.full((4, 16), 255, np.uint8), ((10, 26), (4, 4)))] * 6
    result = evaluate_detector(tiled_detector, list(normal) + list(anomalous), [0] * 6 + [1] * 6, masks=masks,
                               bootstrap=10, out_dir=str(tmp_path / "eval"))
    assert 0.0 <= result["pixel"]["pixel_auroc"] <= 1.0 and "aupro_0.3" in result["pixel"]
    # The stripe is where the stitched maps are compared with the full-resolution masks.
    maps = tiled_detector.residual_maps(list(anomalous))["residual_map"]
    assert result["pixel"]["pixel_auroc"] == pytest.approx(
        pixel_metrics(masks, tiled_detector.residual_maps(list(normal))["residual_map"] + maps)["pixel_auroc"])
    assert (tmp_path / "eval" / "top_anomalies.png").is_file() and (tmp_path / "eval" / "scores.csv").is_file()


def test_served_tiles_give_the_in_process_numbers(tiled_detector, tmp_path):
    from tf_fanogan.beam.handler import ExportedModelError, read_export
    from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument, encode_png
    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.manager import ModelEntry
    from tf_fanogan.serving.server import ModelServer

    export_detector(tiled_detector, str(tmp_path), "tiled")
    with pytest.raises(ExportedModelError, match="tiled detector .data.tile_stride 8.; beam-score"):
        read_export(os.path.join(str(tmp_path), "tiled", "1"))
    image = large(1, seed=15, h=37, w=29)[0]
    want = tiled_detector.score([image], tiles=True)
    want_maps = tiled_detector.residual_maps([image])
    with ModelServer([ModelEntry("tiled", os.path.join(str(tmp_path), "tiled"))], port=0, poll_interval=0) as srv:
        assert srv.manager.wait_for("tiled", 60)
        with FAnoGANClient(srv.target, "tiled", timeout=30) as client:
            got = client.score_tiled(image, stride=8, residual_map=True, batch_size=5)
            with pytest.raises(InvalidArgument, match=r"37x29 is larger than one tile \(16x16\).*score_tiled"):
                client.score_image_bytes([encode_png(image)])
    for key in (*sig.SCORE_OUTPUTS, sig.P_VALUE, sig.IS_ANOMALY):
        np.testing.assert_allclose(got[key], want[key][0], rtol=1e-5)
    np.testing.assert_allclose(got["tile_scores"], want["tile_scores"][0], rtol=1e-5)
    np.testing.assert_allclose(got[sig.RESIDUAL_MAP], want_maps[sig.RESIDUAL_MAP][0], rtol=1e-4, atol=1e-6)


def test_a_large_image_is_cut_and_scored_a_batch_at_a_time():
    seen = []

    def score_fn(t):  # a stand-in scorer: the tile's mean as its score
        seen.append(len(t))
        return {sig.ANOMALY_SCORE: t.reshape(len(t), -1).mean(1)}

    image = np.random.default_rng(0).random((1000, 700)).astype(np.float32)
    image[504:520, 304:320] = 5.0  # exactly one tile of the stride-8 grid
    out = tiled.score_tiled(score_fn, [image], 16, 8, batch_size=64, with_tiles=True)
    n = len(tiles.tile_positions((1000, 700), 16, 8))
    assert max(seen) == 64 and sum(seen) == n == len(out["tile_scores"][0])
    assert out[sig.ANOMALY_SCORE][0] == pytest.approx(5.0)
    maps = tiled.stitched_maps(lambda t: {sig.RESIDUAL_MAP: t}, [image], 16, 8, batch_size=64)[sig.RESIDUAL_MAP]
    np.testing.assert_allclose(maps[0], image, rtol=1e-6)  # identity maps stitch back to the image
