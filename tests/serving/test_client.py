"""The thin clients: client-side validation, message-size splitting, no TensorFlow import."""

import subprocess
import sys

import numpy as np
import pytest

from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument
from helpers.serving import TOL, images01


def test_output_filter_and_client_side_validation(trained_detector, client):
    x = images01(trained_detector, 2, 60)
    out = client.score(x, output_filter=["anomaly_score"])
    assert list(out) == ["anomaly_score"]
    with pytest.raises(InvalidArgument, match="shape"):
        client.score(x[:, :8])
    with pytest.raises(InvalidArgument, match="dtype"):
        client.score(x.astype(np.float64))


def test_residual_maps_are_split_under_the_message_limit(trained_detector, server):
    x = images01(trained_detector, 9, 61)
    small = FAnoGANClient(server.target, "fanogan", max_message_bytes=4 * 16 * 16 * 2 * 3)  # ~3 images a reply
    maps = small.residual_maps(x)
    np.testing.assert_allclose(maps["residual_map"], trained_detector.residual_maps(x)["residual_map"], **TOL)
    small.close()


def test_client_import_does_not_load_tensorflow():
    code = ("import sys, time; t = time.time(); import tf_fanogan.serving.client; "
            "print('tensorflow.python' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_images_of_another_size_are_sent_as_png_and_scored_as_in_process(trained_detector, client):
    """The server applies the detector's data.small_images / data.color policies to PNG bytes: a
    12x12 batch, and a list of differently sized images, score as ``FAnoGAN.score`` scores them."""
    from helpers import blobs

    small = blobs(3, size=12, seed=61)
    np.testing.assert_allclose(client.score(small)["anomaly_score"], trained_detector.score(small)["anomaly_score"],
                               rtol=1e-5)
    mixed = [blobs(1, size=12, seed=62)[0], blobs(1, size=30, seed=63)[0], (blobs(1, size=9, seed=64)[0]
                                                                            .astype(np.uint16) * 257)]
    np.testing.assert_allclose(client.score(mixed)["anomaly_score"], trained_detector.score(mixed)["anomaly_score"],
                               rtol=1e-5)
    with pytest.raises(InvalidArgument, match=r"images\[0\]: a float32 image of shape \(12, 12\) is not at the model "
                                              r"size"):
        client.score(small.astype(np.float32) / 255)
