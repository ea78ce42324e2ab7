"""`Servable`: one version loaded as TF Serving loads it; unload waits for requests in flight;
warm-up records are replayed and a bad one fails the load; runtime errors become one line."""

import os
import shutil

import pytest
import tensorflow as tf

from helpers.serving import images01
from tf_fanogan.serving.protos import prediction_log_pb2
from tf_fanogan.serving.servable import WARMUP_PATH, Servable, ServingError, error_message


@pytest.fixture()
def servable(base):
    s = Servable(os.path.join(base, "fanogan", "1"))
    yield s
    s.close()


def test_output_filter_and_the_internal_signatures_are_hidden(servable, trained_detector):
    x = images01(trained_detector, 3, seed=8)
    out = servable.run("score", {"images": x}, output_filter=["anomaly_score"])
    assert list(out) == ["anomaly_score"] and out["anomaly_score"].shape == (3,)
    assert not [k for k in servable.public_signatures if k.startswith("__")]
    with pytest.raises(ServingError, match='Serving signature key "__saved_model_init_op" not found'):
        servable.run("__saved_model_init_op", {})


def test_unload_waits_for_the_request_in_flight(servable, trained_detector):
    x = images01(trained_detector, 2, seed=9)
    servable.acquire()
    servable.close()  # a request is in flight: the session must stay open for it
    assert servable.run("score", {"images": x})["anomaly_score"].shape == (2,)
    with pytest.raises(ServingError) as e:
        servable.acquire()  # no new request once unloading has begun
    assert e.value.code == "UNAVAILABLE"
    servable.release()  # the last one out closes the session
    with pytest.raises(RuntimeError):
        servable.session.run([])


def test_warmup_replays_the_records_and_a_record_that_is_not_a_predict_log_fails(base, tmp_path):
    version = str(tmp_path / "1")
    shutil.copytree(os.path.join(base, "fanogan", "1"), version)
    assert Servable(version).warmup() == 12  # what export writes: 6 signatures x 2 batch sizes
    with tf.io.TFRecordWriter(os.path.join(version, WARMUP_PATH)) as w:
        log = prediction_log_pb2.PredictionLog()
        log.classify_log.SetInParent()
        w.write(log.SerializeToString())
    with pytest.raises(ServingError, match="only predict_log warmup records are supported") as e:
        Servable(version).warmup()
    assert e.value.code == "UNIMPLEMENTED"


def test_error_message_keeps_the_assertion_text_only():
    tf_text = ("Graph execution error:\n\nDetected at node Assert defined at (most recent call last):\n"
               "  File \"x.py\", line 1\n\nassertion failed: [images: NaN or infinite pixel values]\n"
               "\t [[{{node Assert}}]]")
    assert error_message(tf_text) == "images: NaN or infinite pixel values"
    assert error_message("Graph execution error:\nInvalid PNG data, size 30") == "Invalid PNG data, size 30"
    assert error_message("") == ""
