"""The local server under concurrent load while versions are published, retired and broken.

32 concurrent gRPC clients sending requests of mixed batch sizes on 127.0.0.1; mid-run a new
version is published (retiring the old one under ``latest {1}``) and then a broken version
whose warm-up fails. The clients keep sending until both swaps are over and 10 more requests
each have been answered, and each sends at least ``$FANOGAN_LOAD_REQUESTS`` (200 in
``benchmarks.reliability``, for its fixed workload; none in the default suite, which so runs
only as long as the swaps take). Target: no failed request, every reply from a version that was
available.
"""

import os
import random
import threading
import time

import numpy as np

from tf_fanogan.serving.client import FAnoGANClient
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.server import ModelServer
from helpers import blobs, report
from helpers.serving import publish

CLIENTS, MIN_REQUESTS, DEADLINE_S = 32, int(os.environ.get("FANOGAN_LOAD_REQUESTS", 0)), 300


def _break_warmup(version_dir):
    """A version whose warm-up record fails: TF Serving refuses to load it."""
    import tensorflow as tf

    from tf_fanogan.serving import tensors
    from tf_fanogan.serving.protos import prediction_log_pb2

    log = prediction_log_pb2.PredictionLog()
    req = log.predict_log.request
    req.model_spec.name, req.model_spec.signature_name = "m", "score"
    req.inputs["images"].CopyFrom(tensors.to_proto(np.zeros((1, 3, 3, 1), np.float32)))
    path = os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as w:
        w.write(log.SerializeToString())


def test_no_failed_request_under_load_with_version_swaps(trained_detector, trained_export, tmp_path):
    base = str(tmp_path / "m")
    publish(trained_export, str(tmp_path), "m")
    # Versions 2 and 3 are written beforehand and published mid-run by a rename, as
    # export_detector itself publishes (the export's tracing would otherwise hog this process).
    staged = str(tmp_path / "staging")
    publish(trained_export, staged, "m", version=2)
    publish(trained_export, staged, "m", version=3)
    _break_warmup(os.path.join(staged, "m", "3"))
    images = trained_detector.prepare(blobs(16, seed=21))
    events = {"published_2": None, "retired_1": None, "broken_3_refused": None}
    results, errors = [], []
    lock = threading.Lock()
    done = [0]
    stop = threading.Event()

    with ModelServer([ModelEntry("m", base)], port=0, poll_interval=0.1) as server:
        assert server.manager.wait_for("m", 60)

        def client_loop(seed):
            rng = random.Random(seed)
            with FAnoGANClient(server.target, "m", timeout=60) as client:
                sent = 0
                while (not stop.is_set() or sent < MIN_REQUESTS) and time.perf_counter() - t0 < DEADLINE_S:
                    sent += 1
                    n = rng.choice((1, 2, 4, 8))
                    start = time.perf_counter()
                    try:
                        out, version = client.predict("score", {"images": images[:n]}, return_version=True)
                        assert out["anomaly_score"].shape == (n,)
                        with lock:
                            results.append((start, time.perf_counter() - start, version))
                    except Exception as e:  # counted: the target is zero
                        with lock:
                            errors.append(repr(e))
                    with lock:
                        done[0] += 1

        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()

        def wait_done(count):
            while done[0] < count and time.perf_counter() - t0 < DEADLINE_S:
                time.sleep(0.01)

        wait_done(max(5 * CLIENTS, 0.1 * MIN_REQUESTS * CLIENTS))  # under load before the first swap
        os.rename(os.path.join(staged, "m", "2"), os.path.join(base, "2"))  # latest{1}: 2 replaces 1
        events["published_2"] = time.perf_counter()
        while time.perf_counter() - t0 < DEADLINE_S:
            if [v for v, _, _ in server.manager.status("m")] == [2]:
                events["retired_1"] = time.perf_counter()
                break
            time.sleep(0.005)
        done_at_retire = done[0]
        wait_done(max(done_at_retire + 5 * CLIENTS, 0.5 * MIN_REQUESTS * CLIENTS))
        os.rename(os.path.join(staged, "m", "3"), os.path.join(base, "3"))  # complete, but cannot load
        while time.perf_counter() - t0 < DEADLINE_S:
            states = {v: (s, e) for v, s, e in server.manager.status("m")}
            if 3 in states and states[3][1]:
                events["broken_3_refused"] = time.perf_counter()
                break
            time.sleep(0.01)
        done_at_refusal = done[0]
        wait_done(done_at_refusal + 10 * CLIENTS)  # and still under load after it
        stop.set()
        for t in threads:
            t.join(max(1.0, DEADLINE_S - (time.perf_counter() - t0)))
        elapsed = time.perf_counter() - t0
        final = server.manager.status("m")
        total = done[0]

    assert not errors, f"{len(errors)} failed requests, e.g. {errors[:3]}"
    assert len(results) == total and not any(t.is_alive() for t in threads), \
        f"{len(results)} of {total} requests answered within {DEADLINE_S} s"
    assert total >= MIN_REQUESTS * CLIENTS
    assert all(events.values()), events
    assert done_at_retire < total and done_at_refusal < total, "the swaps must happen under load"
    versions = {v for _, _, v in results}
    assert versions <= {1, 2} and 2 in versions
    # Every reply came from a version that was available when the request was made.
    assert all(start >= events["published_2"] for start, _, v in results if v == 2)
    assert not [1 for start, lat, v in results if v == 1 and start > events["retired_1"]]
    assert [(v, bool(e)) for v, _, e in final] == [(2, False), (3, True)]  # 3 refused, 2 still serving
    lat = sorted(lat for _, lat, _ in results)
    p50, p99 = lat[len(lat) // 2], lat[int(0.99 * (len(lat) - 1))]
    report(test="server_load", clients=CLIENTS, requests=total, failed=len(errors),
           p50_ms=round(1e3 * p50, 2), p99_ms=round(1e3 * p99, 2), requests_per_s=round(total / elapsed, 1),
           versions_seen=sorted(versions))
    print(f"\n{total} requests, {len(errors)} failed, p50 {1e3 * p50:.1f} ms, p99 {1e3 * p99:.1f} ms, "
          f"{total / elapsed:.0f} req/s")
