"""The Scorer module: one forward pass for the detector and the export; bad pixels are refused
in the graph (in process, SavedModel, gRPC and REST alike) and never scored."""

import json
import os
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from helpers import blobs
from tf_fanogan import signatures as sig
from tf_fanogan.scoring.scorer import Scorer
from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument
from tf_fanogan.serving.export import export_detector
from tf_fanogan.serving.servable import Servable, ServingError, error_message
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.server import ModelServer


@pytest.fixture(scope="module")
def served(trained_detector, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("scorer"))
    path = export_detector(trained_detector, root, "m", warmup=False)
    with ModelServer([ModelEntry("m", os.path.join(root, "m"))], port=0, rest_port=0, poll_interval=0) as srv:
        assert srv.manager.wait_for("m", 60)
        yield path, srv


def _bad_inputs(det):
    x = det.prepare(blobs(2, seed=3))
    nan, inf, high, low = x.copy(), x.copy(), x.copy(), x.copy()
    nan[0, 3, 3, 0] = np.nan
    inf[1, 0, 0, 0] = np.inf
    high[0, 1, 1, 0] = 5.0
    low[1, 2, 2, 0] = -3.0
    return {"NaN or infinite": [nan, inf], "outside \\[0, 1\\]": [high, low]}


def test_the_detector_and_the_export_share_the_scorer(trained_detector, served):
    path, _ = served
    x = trained_detector.prepare(blobs(5, seed=4))
    ref = trained_detector.scorer.score(tf.constant(x))
    out = Servable(path).run("score", {"images": x})
    for key in (*sig.SCORE_OUTPUTS, sig.IS_ANOMALY):
        np.testing.assert_allclose(out[key], ref[key].numpy(), rtol=1e-5)


def test_bad_pixels_are_invalid_argument_everywhere(trained_detector, served):
    path, srv = served
    servable = Servable(path)
    rest_url = f"http://127.0.0.1:{srv.rest_port}/v1/models/m:predict"
    with FAnoGANClient(srv.target, "m", timeout=30) as client:
        for problem, arrays in _bad_inputs(trained_detector).items():
            for x in arrays:
                with pytest.raises(tf.errors.InvalidArgumentError, match=f"images: .*{problem}"):
                    trained_detector.scorer.score(tf.constant(x))
                with pytest.raises(ServingError, match=f"images: .*{problem}") as e:
                    servable.run("score", {"images": x})
                assert e.value.code == "INVALID_ARGUMENT"
                with pytest.raises(InvalidArgument, match=f"images: .*{problem}"):
                    client.score(x)
                body = json.dumps({"signature_name": "score", "inputs": {"images": np.nan_to_num(
                    x, nan=0.5, posinf=9.0).tolist()}}).encode()
                if problem.startswith("outside"):
                    with pytest.raises(urllib.error.HTTPError) as http:
                        urllib.request.urlopen(urllib.request.Request(rest_url, data=body))
                    assert http.value.code == 400
                    assert "outside [0, 1]" in json.loads(http.value.read())["error"]


def test_a_non_finite_score_is_never_normal(trained_detector):
    s = Scorer(trained_detector.generator, trained_detector.critic, trained_detector.encoder, (16, 16, 1), 1.0, 0.5)
    decided = s.decide(tf.constant([np.nan, np.inf, 0.2, 0.5, 0.7], tf.float32)).numpy().tolist()
    assert decided == [True, True, False, False, True]


def test_error_messages_keep_the_informative_line():
    msg = ("Graph execution error:\n\nDetected at node assert/Assert defined at (most recent call last):\n"
           "assertion failed: [images: NaN or infinite pixel values]\n\t [[{{node Assert}}]]")
    assert error_message(msg) == "images: NaN or infinite pixel values"
    assert error_message("Graph execution error:\n\nsomething broke\n") == "something broke"


def test_client_refuses_an_empty_batch_and_honours_its_wait_timeout(served):
    import time

    _, srv = served
    with FAnoGANClient(srv.target, "m", timeout=30) as client:
        with pytest.raises(InvalidArgument, match="empty batch"):
            client.score(np.zeros((0, 16, 16, 1), np.float32))
    with FAnoGANClient(srv.target, "no_such_model", timeout=60) as missing:
        t = time.monotonic()
        with pytest.raises(Exception, match="not available after 1 s"):
            missing.wait_until_available(timeout=1.0)
        assert time.monotonic() - t < 5


def test_normalized_topk_scoring_is_calibrated_saved_and_exported_alike(trained_detector, tmp_path):
    from tf_fanogan.detector import FAnoGAN
    from tf_fanogan.scoring.scorer import ScoringMismatch

    det = FAnoGAN.load(trained_detector.save(str(tmp_path / "det")))
    holdout, x = blobs(20, seed=2), det.prepare(blobs(6, seed=40, anomalous=True))
    det.config.scoring.residual_pooling = "topk"
    with pytest.raises(ScoringMismatch, match="calibrate it again"):  # the threshold belongs to the mean score
        det.score(x)
    det.config.scoring.normalize, det.config.scoring.topk_fraction = True, 0.05
    det.calibrate(holdout, fpr=0.1)
    n = det.normalization_
    raw_hold = det.scorer.score(tf.constant(det.prepare(holdout)))
    assert abs(float(np.mean(raw_hold["residual_score"])) - n["residual_mean"]) < 1e-6
    assert abs(np.mean(det.holdout_scores_)) < 1e-4  # z-scored terms: mean 0 on the hold-out
    assert det.calibration_["scoring"] == {"normalize": True, "residual_pooling": "topk", "topk_fraction": 0.05,
                                             "method": "fanogan", "memory_size": 8192}
    again = FAnoGAN.load(det.save(str(tmp_path / "det2")))
    assert again.normalization_ == n
    local = det.score(x)
    np.testing.assert_array_equal(again.score(x)["anomaly_score"], local["anomaly_score"])
    path = export_detector(det, str(tmp_path / "sm"), "m", warmup=False)
    served = Servable(path).run("score", {"images": x})
    for key in ("anomaly_score", "residual_score", "feature_score", "p_value", "is_anomaly"):
        np.testing.assert_allclose(served[key], local[key], rtol=1e-5, atol=1e-6, err_msg=key)
    info = json.load(open(os.path.join(path, "assets.extra", "model_info.json")))
    assert info["scoring"]["normalization"] == n and info["scoring"]["residual_pooling"] == "topk"


def test_scoring_settings_are_checked():
    from tf_fanogan.config import ConfigError, FAnoGANConfig

    for bad, words in (({"topk_fraction": 0.0}, "scoring.topk_fraction must be > 0"),
                       ({"topk_fraction": 1.5}, "scoring.topk_fraction must be <= 1"),
                       ({"residual_pooling": "max"}, "scoring.residual_pooling must be one of mean, topk")):
        with pytest.raises(ConfigError, match=words):
            FAnoGANConfig.from_dict({"scoring": bad})
    with pytest.raises(ConfigError, match="normalize"):
        FAnoGANConfig.from_dict({"scoring": {"normalize": "yes"}})
