"""Server-side batching: TF Serving's parameters file, batch formation, per-request isolation."""

import os
import threading

import numpy as np
import pytest

from tf_fanogan.serving.batching import BatchingParameters, parse_batching_parameters
from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument
from tf_fanogan.serving.servable import Servable
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.server import ModelServer
from helpers import REPO, blobs
from helpers.serving import publish


def test_parses_the_shipped_batching_parameters_file():
    path = os.path.join(REPO, "serving", "batching_parameters.txt")
    p = parse_batching_parameters(open(path).read(), path)
    assert (p.max_batch_size, p.batch_timeout_micros, p.max_enqueued_batches, p.num_batch_threads) == (1024, 2000, 100, 2)
    assert p.enable_large_batch_splitting and p.max_execution_batch_size == 64 == p.execution_batch_size
    assert p.allowed_batch_sizes == [1, 2, 4, 8, 16, 32, 64] and p.pad_variable_length_inputs is False


@pytest.mark.parametrize("text,match", [
    ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4", "must match max_batch_size"),
    ("max_batch_sise { value: 8 }", "unknown field 'max_batch_sise'"),
    ("max_batch_size { value: eight }", "max_batch_size wants an integer"),
    ("max_batch_size: {", "cannot parse"),
    ("allowed_batch_sizes: 8\nallowed_batch_sizes: 4\nmax_batch_size { value: 4 }", "strictly increasing"),
])
def test_bad_batching_parameters_name_the_file_and_field(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_batching_parameters(text, "b.txt")
    assert str(info.value).startswith("b.txt: ")


@pytest.fixture(scope="module")
def exported(trained_export, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("batching"))
    publish(trained_export, root, "fanogan", warmup=False)
    return os.path.join(root, "fanogan")


def test_concurrent_requests_are_batched_and_answer_as_unbatched(trained_detector, exported):
    # A long timeout makes the batch threads wait for company, so batches must form.
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=200_000, max_enqueued_batches=50,
                                num_batch_threads=1, allowed_batch_sizes=[4, 8])
    x = trained_detector.prepare(blobs(24, seed=5))
    reference = Servable(os.path.join(exported, "1")).run("score", {"images": x})
    sizes = [1, 2, 3, 1, 2, 1, 3, 2, 1, 2, 3, 3]  # 24 rows over 12 concurrent requests
    starts = np.cumsum([0] + sizes)
    with ModelServer([ModelEntry("fanogan", exported)], port=0, poll_interval=0, warmup=False,
                     batching=params) as server:
        assert server.manager.wait_for("fanogan", 60)
        results, errors = {}, []

        def call(i):
            try:
                with FAnoGANClient(server.target, "fanogan", timeout=60) as c:
                    results[i] = c.score(x[starts[i]:starts[i + 1]], batch_size=8)
            except Exception as e:  # surfaced below
                errors.append(e)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(sizes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        _, servable = server.manager.resolve(_spec("fanogan"))
        stats = dict(servable.scheduler.stats)
    assert not errors, errors
    assert stats["tasks"] == len(sizes) and stats["batches"] < len(sizes) and stats["largest_batch"] > 3
    for i in range(len(sizes)):
        for key in ("anomaly_score", "residual_score", "feature_score", "z_distance", "is_anomaly"):
            np.testing.assert_allclose(results[i][key], reference[key][starts[i]:starts[i + 1]],
                                       rtol=1e-5, atol=1e-6, err_msg=f"request {i} {key}")


def test_oversized_and_malformed_requests_fail_alone(trained_detector, exported):
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=100_000, num_batch_threads=1,
                                allowed_batch_sizes=[2, 4])
    good = trained_detector.prepare(blobs(2, seed=6))
    wrong = np.zeros((1, 8, 8, 1), np.float32)
    with ModelServer([ModelEntry("fanogan", exported)], port=0, poll_interval=0, warmup=False,
                     batching=params) as server:
        assert server.manager.wait_for("fanogan", 60)
        with FAnoGANClient(server.target, "fanogan", timeout=60) as c:
            with pytest.raises(InvalidArgument, match="Task size 6 is larger than maximum input batch size 4"):
                c.predict("score", {"images": np.concatenate([good] * 3)})
            # score() learns the limit the server states and sends pieces it accepts
            split = c.score(np.concatenate([good] * 3))["anomaly_score"]
            assert c.server_max_batch == 4
            np.testing.assert_allclose(split, np.tile(trained_detector.score(good)["anomaly_score"], 3), rtol=1e-5)
            outcome = {}

            def bad():
                try:
                    c.predict("score", {"images": wrong})
                except InvalidArgument as e:
                    outcome["bad"] = str(e)

            t = threading.Thread(target=bad)
            t.start()
            outcome["good"] = c.score(good)["anomaly_score"]
            t.join(60)
    assert "bad" in outcome and "shape" in outcome["bad"].lower()
    np.testing.assert_allclose(outcome["good"], trained_detector.score(good)["anomaly_score"],
                               rtol=1e-5, atol=1e-6)


def _spec(name):
    from tf_fanogan.serving.protos import predict_pb2

    return predict_pb2.PredictRequest(model_spec={"name": name}).model_spec


def test_large_batch_splitting_runs_a_big_request_in_pieces(trained_detector, exported):
    text = open(os.path.join(REPO, "serving", "batching_parameters.txt")).read()
    shipped = parse_batching_parameters(text, "batching_parameters.txt")
    assert shipped.enable_large_batch_splitting and shipped.execution_batch_size == 64
    assert shipped.max_batch_size >= 80  # the 80-image request that failed before is accepted
    params = BatchingParameters(max_batch_size=16, batch_timeout_micros=1000, num_batch_threads=1,
                                allowed_batch_sizes=[2, 4], enable_large_batch_splitting=True,
                                max_execution_batch_size=4)
    x = trained_detector.prepare(blobs(11, seed=12))
    with ModelServer([ModelEntry("fanogan", exported)], port=0, poll_interval=0, warmup=False,
                     batching=params) as server:
        assert server.manager.wait_for("fanogan", 60)
        with FAnoGANClient(server.target, "fanogan", timeout=60) as c:
            out = c.predict("score", {"images": x})
            with pytest.raises(InvalidArgument, match="Task size 17 is larger than maximum input batch size 16"):
                c.predict("score", {"images": np.concatenate([x, x[:6]])})
        _, servable = server.manager.resolve(_spec("fanogan"))
        stats = dict(servable.scheduler.stats)
    assert stats["largest_batch"] <= 4 and stats["tasks"] >= 3  # 11 rows ran as pieces of at most 4
    np.testing.assert_allclose(out["anomaly_score"], trained_detector.score(x)["anomaly_score"], rtol=1e-5)
    with pytest.raises(ValueError, match="last entry in allowed_batch_sizes must match max_execution_batch_size"):
        BatchingParameters(max_batch_size=16, allowed_batch_sizes=[2, 16], enable_large_batch_splitting=True,
                           max_execution_batch_size=4)
    with pytest.raises(ValueError, match="enable_large_batch_splitting wants true or false"):
        parse_batching_parameters("enable_large_batch_splitting { value: maybe }", "b.txt")
