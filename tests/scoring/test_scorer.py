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
