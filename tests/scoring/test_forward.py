import numpy as np
import pytest

from tf_fanogan import signatures as sig
from helpers import blobs


def test_scores_do_not_depend_on_the_batch(trained_detector):
    normal, odd = blobs(5, seed=7), blobs(4, seed=8, anomalous=True)
    mixed = np.concatenate([normal[:2], odd, normal[2:]])
    together = trained_detector.score(mixed, batch_size=9)
    for i, img in enumerate(mixed):
        alone = trained_detector.score(img[None], batch_size=1)
        for key in sig.SCORE_OUTPUTS:
            np.testing.assert_allclose(alone[key][0], together[key][i], rtol=1e-5, atol=1e-7)


def test_every_image_is_scored_and_scoring_is_deterministic(trained_detector):
    x = blobs(11, seed=9)
    a = trained_detector.score(x, batch_size=4)  # 4 + 4 + 3: the last short batch counts
    b = trained_detector.score(x, batch_size=11)
    assert a[sig.ANOMALY_SCORE].shape == (11,)
    for key in sig.SCORE_OUTPUTS:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7)
    c = trained_detector.score(x, batch_size=4)
    np.testing.assert_array_equal(a[sig.ANOMALY_SCORE], c[sig.ANOMALY_SCORE])


def test_anomaly_score_combines_residual_and_feature_terms(trained_detector):
    """With kappa = 0.37 (not the default 1, which code ignoring kappa would also pass)."""
    from tf_fanogan.detector import FAnoGAN

    cfg = type(trained_detector.config).from_dict(trained_detector.config.to_dict())
    cfg.encoder.kappa = 0.37
    det = FAnoGAN.from_networks(cfg, *trained_detector.networks.values())
    s = det.score(blobs(6, seed=3))
    np.testing.assert_allclose(s[sig.ANOMALY_SCORE], s[sig.RESIDUAL_SCORE] + 0.37 * s[sig.FEATURE_SCORE], rtol=1e-6)
    assert np.all(s[sig.RESIDUAL_SCORE] > 0) and np.all(s[sig.FEATURE_SCORE] > 0)
    one = trained_detector.score(blobs(6, seed=3))
    np.testing.assert_allclose(one[sig.FEATURE_SCORE], s[sig.FEATURE_SCORE], rtol=1e-6)
    assert not np.allclose(one[sig.ANOMALY_SCORE], s[sig.ANOMALY_SCORE])


def test_changing_kappa_on_a_loaded_detector_changes_in_process_and_exported_scores_alike(trained_detector, tmp_path):
    """kappa is read when scoring (not frozen at build time): in-process == exported after a change."""
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.servable import Servable

    det = FAnoGAN.load(trained_detector.save(str(tmp_path / "det")))
    x = det.prepare(blobs(4, seed=8))
    before = det.score(x)[sig.ANOMALY_SCORE]
    det.config.encoder.kappa = 4.0
    after = det.score(x)
    np.testing.assert_allclose(after[sig.ANOMALY_SCORE], after[sig.RESIDUAL_SCORE] + 4.0 * after[sig.FEATURE_SCORE],
                               rtol=1e-6)
    assert not np.allclose(before, after[sig.ANOMALY_SCORE])
    path = export_detector(det, str(tmp_path / "sm"), "m", warmup=False)
    served = Servable(path).run("score", {"images": x})
    np.testing.assert_allclose(served[sig.ANOMALY_SCORE], after[sig.ANOMALY_SCORE], rtol=1e-5)


def test_residual_map_is_the_absolute_reconstruction_error(trained_detector):
    x = blobs(3, seed=4)
    maps = trained_detector.residual_maps(x)
    x01 = trained_detector.prepare(x)
    assert maps[sig.RESIDUAL_MAP].shape == (3, 16, 16, 1)
    np.testing.assert_allclose(maps[sig.RESIDUAL_MAP], np.abs(x01 - maps[sig.RECONSTRUCTION]), atol=1e-5)
    s = trained_detector.score(x)
    # A_R is the mean squared residual in model units ([-1, 1]), i.e. 4x the [0, 1] map's.
    np.testing.assert_allclose(s[sig.RESIDUAL_SCORE], 4 * (maps[sig.RESIDUAL_MAP] ** 2).mean(axis=(1, 2, 3)), rtol=1e-4)


def test_topk_pooling_ranks_a_small_defect_above_diffuse_noise_of_the_same_mean():
    """A 3x3 defect and noise spread over the image have the same mean squared residual; the
    mean cannot tell them apart, top-k pooling of the smoothed map can."""
    import tensorflow as tf

    from tf_fanogan.scoring.forward import pooled_residual

    local = np.zeros((1, 16, 16, 1), np.float32)
    local[0, 6:9, 6:9] = 1.0
    diffuse = np.full((1, 16, 16, 1), np.sqrt(9 / 256), np.float32)
    mean = [float(pooled_residual(tf.constant(r))[0]) for r in (local, diffuse)]
    assert mean[0] == pytest.approx(mean[1], rel=1e-5)
    top = [float(pooled_residual(tf.constant(r), "topk", 0.01)[0]) for r in (local, diffuse)]
    assert top[0] > 10 * top[1]
    # k = round(0.01 * 256) = 3 pixels of the 3x3 box-filtered map: the centre (1) and two edge
    # neighbours (6/9 each)
    assert top[0] == pytest.approx((1 + 6 / 9 + 6 / 9) / 3, rel=1e-5)
    assert float(pooled_residual(tf.constant(local), "topk", 1.0)[0]) == pytest.approx(
        float(tf.reduce_mean(tf.nn.avg_pool2d(tf.constant(local), 3, 1, "SAME"))), rel=1e-5)


def test_normalization_combines_the_z_scored_terms(trained_detector):
    from tf_fanogan.scoring import forward

    det = trained_detector
    x = forward.to_model_units(det.prepare(blobs(5, seed=12)))
    raw = forward.score_batch(det.generator, det.critic, det.encoder, x, 0.37)
    n = {"residual_mean": 0.02, "residual_std": 0.5, "feature_mean": 0.3, "feature_std": 2.0}
    z = forward.score_batch(det.generator, det.critic, det.encoder, x, 0.37, normalization=n)
    expected = (raw["residual_score"] - 0.02) / 0.5 + 0.37 * (raw["feature_score"] - 0.3) / 2.0
    np.testing.assert_allclose(z["anomaly_score"].numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(z["residual_score"].numpy(), raw["residual_score"].numpy())  # terms stay raw
