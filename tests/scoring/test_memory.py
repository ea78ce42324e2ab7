"""scoring.method critic_nn: the critic-feature memory, its distance, and the paths that carry it
(in process, saved and loaded, exported and served, the CLI)."""

import json
import os

import numpy as np
import pytest

from tf_fanogan import signatures as sig
from helpers import blobs


def _brute_force(f, memory):
    """RMS distance to the nearest memory row, in float64, one pair at a time."""
    f, memory = np.asarray(f, np.float64), np.asarray(memory, np.float64)
    return np.array([min(np.sqrt(np.mean((a - b) ** 2)) for b in memory) for a in f])


@pytest.fixture(scope="module")
def nn_detector(trained_detector, normal_images):
    """The session's trained detector, scored by critic_nn against its own training images."""
    from tf_fanogan.detector import FAnoGAN

    cfg = type(trained_detector.config).from_dict(trained_detector.config.to_dict())
    cfg.scoring.method = "critic_nn"
    det = FAnoGAN.from_networks(cfg, *trained_detector.networks.values())
    return det.memorize(normal_images).calibrate(blobs(20, seed=2), fpr=0.1)


def test_critic_features_are_the_features_of_a_d(trained_detector):
    from tf_fanogan.scoring.memory import critic_features

    det = trained_detector
    x = det.prepare(blobs(7, seed=4))
    f = critic_features(det.critic, x, batch_size=3)
    assert f.shape[0] == 7 and f.dtype == np.float32
    np.testing.assert_allclose(critic_features(det.critic, x, batch_size=256), f, rtol=1e-5, atol=1e-6)
    recon = det.residual_maps(x)[sig.RECONSTRUCTION]
    a_d = np.mean((f - critic_features(det.critic, recon)) ** 2, axis=1)
    np.testing.assert_allclose(a_d, det.score(x)[sig.FEATURE_SCORE], rtol=1e-4, atol=1e-7)
    assert critic_features(det.critic, x[:0]).shape == (0, f.shape[1])


def test_nearest_memory_distance_matches_brute_force_far_from_the_origin():
    """Features with a large common offset, and near-duplicates (where |a|^2 - 2ab + |b|^2 loses digits)."""
    import tensorflow as tf

    from tf_fanogan.scoring.forward import nearest_memory_distance
    from tf_fanogan.scoring.memory import centred

    rng = np.random.default_rng(0)
    memory = 50.0 + rng.normal(size=(40, 32)).astype(np.float32)
    f = np.concatenate([memory[[3, 17]] + 1e-3 * rng.normal(size=(2, 32)), 50.0 + rng.normal(size=(5, 32))])
    got = nearest_memory_distance(tf.constant(f, tf.float32), *map(tf.constant, centred(memory))).numpy()
    want = _brute_force(f.astype(np.float32), memory)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert got.dtype == np.float32


def test_critic_nn_scores_the_distance_to_the_nearest_training_image(nn_detector, trained_detector, normal_images):
    from tf_fanogan.scoring.memory import critic_features

    det = nn_detector
    assert det.memory_.shape == (len(normal_images), det.critic.output_shape[1][-1])
    x = det.prepare(np.concatenate([normal_images[:3], blobs(4, seed=8, anomalous=True)]))
    s = det.score(x, batch_size=3)
    want = _brute_force(critic_features(det.critic, x), det.memory_)
    np.testing.assert_allclose(s[sig.ANOMALY_SCORE], want, rtol=1e-5, atol=1e-7)
    assert np.all(s[sig.ANOMALY_SCORE][:3] < 1e-6)  # training images are in the memory: distance ~0
    # the other outputs are the f-AnoGAN detector's, unchanged
    paper = trained_detector.score(x)
    for key in (sig.RESIDUAL_SCORE, sig.FEATURE_SCORE, sig.Z_DISTANCE):
        np.testing.assert_allclose(s[key], paper[key], rtol=1e-5, atol=1e-7)
    # per image: the batch does not change a score (beyond the critic's float32 features changing in
    # their last bits with the batch shape, which a training image's distance to itself, ~0, shows)
    for i in range(len(x)):
        np.testing.assert_allclose(det.score(x[i:i + 1])[sig.ANOMALY_SCORE][0], s[sig.ANOMALY_SCORE][i],
                                   rtol=1e-5, atol=1e-6)
    assert s[sig.P_VALUE].shape == (7,) and s[sig.IS_ANOMALY].dtype == bool


def test_memory_keeps_a_seeded_subset_up_to_memory_size(trained_detector, normal_images):
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.scoring.memory import chosen, critic_features

    cfg = type(trained_detector.config).from_dict(trained_detector.config.to_dict())
    cfg.scoring.method, cfg.scoring.memory_size = "critic_nn", 10
    det = FAnoGAN.from_networks(cfg, *trained_detector.networks.values()).memorize(normal_images)
    idx = chosen(len(normal_images), 10, cfg.seed)
    assert len(set(idx)) == 10 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, chosen(len(normal_images), 10, cfg.seed))
    np.testing.assert_allclose(det.memory_, critic_features(det.critic, det.prepare(normal_images)[idx]), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(chosen(5, 10, 0), np.arange(5))


def test_critic_nn_needs_a_memory_and_a_calibration_of_its_own(trained_detector, normal_images):
    from tf_fanogan.config import ConfigError
    from tf_fanogan.detector import FAnoGAN, DetectorError
    from tf_fanogan.scoring.scorer import ScoringMismatch

    cfg = type(trained_detector.config).from_dict(trained_detector.config.to_dict())
    cfg.scoring.method = "critic_nn"
    det = FAnoGAN.from_networks(cfg, *trained_detector.networks.values())
    with pytest.raises(DetectorError, match=r"critic_nn .*memorize\(normal_train_images\)"):
        det.score(blobs(2, seed=3))
    # the paper's calibration does not belong to the critic_nn score
    paper = FAnoGAN.from_networks(type(cfg).from_dict(trained_detector.config.to_dict()),
                                  *trained_detector.networks.values())
    paper.calibrate(blobs(20, seed=2), fpr=0.1).memorize(normal_images)  # memorize under fanogan keeps it
    assert paper.threshold_ is not None
    paper.config.scoring.method = "critic_nn"
    with pytest.raises(ScoringMismatch, match="calibrate it again"):
        paper.score(blobs(2, seed=3))
    paper.calibrate(blobs(20, seed=2), fpr=0.1)
    assert paper.calibration_["scoring"]["method"] == "critic_nn"
    paper.memorize(normal_images[:30])  # under critic_nn a new memory changes the scores: calibration reset
    assert paper.threshold_ is None and paper.holdout_scores_ is None
    with pytest.raises(ConfigError, match="scoring.method must be one of fanogan, critic_nn; got 'knn'"):
        type(cfg).from_dict({**cfg.to_dict(), "scoring": {"method": "knn"}})
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="memory_size"):
            type(cfg).from_dict({**cfg.to_dict(), "scoring": {"method": "critic_nn", "memory_size": bad}})
    with pytest.raises(ConfigError, match="scoring.normalize .* critic_nn"):
        type(cfg).from_dict({**cfg.to_dict(), "scoring": {"method": "critic_nn", "normalize": True}})
    untrained = FAnoGAN(cfg)
    with pytest.raises(DetectorError, match="train stage 1"):
        untrained.memorize(normal_images)


def test_fit_under_critic_nn_memorizes_its_training_images(normal_images):
    from helpers import tiny_config

    from tf_fanogan.detector import FAnoGAN

    cfg = tiny_config()
    cfg.scoring.method, cfg.gan.iterations, cfg.encoder.iterations = "critic_nn", 2, 2
    det = FAnoGAN(cfg).fit(normal_images[:24], verbose=0)
    assert det.memory_.shape[0] == 24
    s = det.score(normal_images[:4])
    assert np.all(s[sig.ANOMALY_SCORE] < 1e-6)


def test_memory_survives_save_and_load_and_is_verified(nn_detector, tmp_path):
    from tf_fanogan.detector import FAnoGAN, DetectorError

    path = nn_detector.save(str(tmp_path / "det"))
    assert os.path.isfile(os.path.join(path, "memory.npy"))
    again = FAnoGAN.load(path)
    np.testing.assert_array_equal(again.memory_, nn_detector.memory_)
    x = blobs(5, seed=8, anomalous=True)
    np.testing.assert_array_equal(again.score(x)[sig.ANOMALY_SCORE], nn_detector.score(x)[sig.ANOMALY_SCORE])
    assert again.summary()["memory"] == {"images": len(nn_detector.memory_), "features": nn_detector.memory_.shape[1]}
    memory = np.load(os.path.join(path, "memory.npy"))
    memory[0, 0] += 1.0
    np.save(os.path.join(path, "memory.npy"), memory)
    with pytest.raises(DetectorError, match="memory.npy: SHA-256 does not match"):
        FAnoGAN.load(path)


def test_a_detector_without_memory_saves_none_and_refuses_an_unlisted_one(trained_detector, tmp_path):
    from tf_fanogan.detector import FAnoGAN, DetectorError

    path = trained_detector.save(str(tmp_path / "plain"))
    assert not os.path.exists(os.path.join(path, "memory.npy"))
    assert FAnoGAN.load(path).memory_ is None
    np.save(os.path.join(path, "memory.npy"), np.zeros((2, 3), np.float32))
    with pytest.raises(DetectorError, match="memory.npy: not in the detector's manifest"):
        FAnoGAN.load(path)


def test_exported_critic_nn_scores_equal_in_process_ones(nn_detector, tmp_path):
    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.servable import Servable

    path = export_detector(nn_detector, str(tmp_path / "sm"), "m", warmup=False)
    x = nn_detector.prepare(np.concatenate([blobs(3, seed=5), blobs(3, seed=8, anomalous=True)]))
    here = nn_detector.score(x)
    served = Servable(path).run("score", {"images": x})
    for key in (sig.ANOMALY_SCORE, sig.P_VALUE, sig.FEATURE_SCORE):
        np.testing.assert_allclose(served[key], here[key], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(served[sig.IS_ANOMALY], here[sig.IS_ANOMALY])
    info = json.load(open(os.path.join(path, "assets.extra", "model_info.json")))
    assert info["scoring"]["method"] == "critic_nn"
    assert info["scoring"]["memory"]["images"] == len(nn_detector.memory_)


def test_an_export_stores_the_memory_once_and_maps_skip_it(nn_detector, tmp_path):
    """Four signatures use the scorer; the memory lives in variables/, not copied into each graph."""
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.serving.export import export_detector
    from tf_fanogan.serving.servable import Servable

    det = FAnoGAN.from_networks(nn_detector.config, *nn_detector.networks.values())
    det.memory_ = np.random.default_rng(0).normal(size=(3000, nn_detector.memory_.shape[1])).astype(np.float32)
    det.calibrate(blobs(20, seed=2), fpr=0.1)
    path = export_detector(det, str(tmp_path / "sm"), "m", warmup=False)
    variables = sum(os.path.getsize(os.path.join(path, "variables", f)) for f in os.listdir(path + "/variables"))
    assert os.path.getsize(os.path.join(path, "saved_model.pb")) < det.memory_.nbytes < variables < 2 * det.memory_.nbytes
    x = det.prepare(blobs(3, seed=8, anomalous=True))
    served = Servable(path)
    np.testing.assert_allclose(served.run("score", {"images": x})[sig.ANOMALY_SCORE], det.score(x)[sig.ANOMALY_SCORE],
                               rtol=1e-5)
    np.testing.assert_allclose(served.run("residual_map", {"images": x})[sig.RESIDUAL_MAP],
                               det.residual_maps(x)[sig.RESIDUAL_MAP], rtol=1e-5, atol=1e-6)


def test_cli_calibrate_memorizes_and_switches_method(trained_detector, normal_images, tmp_path, capsys):
    from tf_fanogan.cli import main
    from tf_fanogan.detector import FAnoGAN

    path = trained_detector.save(str(tmp_path / "det"))
    train, hold = str(tmp_path / "train.npy"), str(tmp_path / "hold.npy")
    np.save(train, normal_images)
    np.save(hold, blobs(20, seed=2))
    assert main(["calibrate", path, "--data", hold, "--fpr", "0.1", "--set", "scoring.method=critic_nn",
                 "--memory", train]) == 0
    assert "nearest of 80 normal training images" in capsys.readouterr().out
    det = FAnoGAN.load(path)
    assert det.config.scoring.method == "critic_nn" and det.memory_.shape[0] == 80
    assert main(["calibrate", path, "--data", hold, "--fpr", "0.1"]) == 0  # the stored memory is used


def test_a_tiled_detector_memorizes_every_tile_and_scores_an_image_by_its_tiles(trained_detector):
    from helpers import tiny_config

    from tf_fanogan.data import tiles
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.scoring.memory import critic_features

    rng = np.random.default_rng(4)
    train = rng.integers(40, 90, (3, 40, 24), dtype=np.uint8)
    cfg = tiny_config(data__tile_stride=8)
    cfg.scoring.method = "critic_nn"
    det = FAnoGAN.from_networks(cfg, *trained_detector.networks.values()).memorize(train)
    assert len(det.memory_) == 3 * len(tiles.tile_positions((40, 24), 16, 8))
    image = train[1]
    got = det.score(image[None], tiles=True)
    assert float(np.max(got["tile_scores"][0])) < 1e-6  # each of its tiles is in the memory
    other = rng.integers(120, 200, (40, 24), dtype=np.uint8)
    positions = tiles.tile_positions(other.shape, 16, 8)
    f = critic_features(det.critic, tiles.cut(other[..., None] / 255.0, positions, 16).astype(np.float32))
    want = _brute_force(f, det.memory_)
    np.testing.assert_allclose(det.score(other[None])[sig.ANOMALY_SCORE][0], want.max(), rtol=1e-5)
