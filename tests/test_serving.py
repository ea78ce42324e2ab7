"""Export <-> TF Serving contract: layout, parity, errors, versions, labels, REST, CLI."""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import csv
from unittest import mock
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from PIL import Image

from tf_fanogan import signatures as sig
from tf_fanogan.serving.export import ExportError, export_detector, list_versions
from tf_fanogan.serving import tensors
from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument, NotFound, RestClient
from tf_fanogan.serving.protos import model_server_config_pb2, predict_pb2, types_pb2
from tf_fanogan.serving.servable import Servable
from tf_fanogan.serving.manager import ModelEntry, parse_models_config
from tf_fanogan.serving.server import ModelServer
from helpers import blobs, report

TOL = dict(rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def base(trained_detector, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("saved_models"))
    export_detector(trained_detector, root, "fanogan")
    return root


@pytest.fixture(scope="module")
def server(base):
    with ModelServer([ModelEntry("fanogan", os.path.join(base, "fanogan"))], port=0, rest_port=0,
                     poll_interval=0) as srv:
        assert srv.manager.wait_for("fanogan", 60)
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with FAnoGANClient(server.target, "fanogan", timeout=30) as c:
        yield c


def images01(trained_detector, n, seed):
    return trained_detector.prepare(blobs(n, seed=seed))


def test_layout_model_info_and_atomic_versions(trained_detector, base):
    model_dir = os.path.join(base, "fanogan")
    assert list_versions(model_dir) == [1]
    assert not [n for n in os.listdir(model_dir) if n.startswith(".")]
    v1 = os.path.join(model_dir, "1")
    assert os.path.isfile(os.path.join(v1, "saved_model.pb")) and os.path.isdir(os.path.join(v1, "variables"))
    info = json.load(open(os.path.join(v1, "assets.extra", "model_info.json")))
    assert info["image_shape"] == [16, 16, 1] and info["threshold"] == trained_detector.threshold_
    assert info["kappa"] == 1.0 and info["calibration_fpr"] == 0.1
    assert info["versions"]["tensorflow"].startswith("2.21")
    assert set(info["signatures"]) == {"score", "score_uint8", "score_image_bytes", "residual_map", "encode", "generate"}
    with pytest.raises(ExportError, match="never overwritten"):
        export_detector(trained_detector, base, "fanogan", version=1)


def test_uncalibrated_detector_is_not_exported(trained_detector, tmp_path):
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN.from_networks(trained_detector.config, *trained_detector.networks.values())
    assert det.threshold_ is None
    with pytest.raises(ExportError, match="calibrate"):
        export_detector(det, str(tmp_path), "m")
    assert not os.listdir(tmp_path / "m")


def _graph_attrs(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    mg = sm.meta_graphs[0]
    nodes = list(mg.graph_def.node) + [n for f in mg.graph_def.library.function for n in f.node_def]
    funcs = list(mg.graph_def.library.function)
    return mg, nodes, funcs


def test_mixed_precision_export_has_no_half_and_no_xla(trained_detector, tmp_path):
    from tf_fanogan.detector import FAnoGAN

    cfg = trained_detector.config
    mixed = FAnoGAN.from_networks(type(cfg).from_dict({**cfg.to_dict(), "mixed_precision": True}),
                                  *trained_detector.networks.values(), threshold=trained_detector.threshold_)
    path = export_detector(mixed, str(tmp_path), "mixed")
    mg, nodes, funcs = _graph_attrs(path)
    for name, s in mg.signature_def.items():
        for t in list(s.inputs.values()) + list(s.outputs.values()):
            assert t.dtype != types_pb2.DT_HALF, name
    assert not any(n.attr["_XlaMustCompile"].b for n in nodes)
    assert not any(f.attr["_XlaMustCompile"].b for f in funcs)
    variable_dtypes = {n.attr["dtype"].type for n in nodes if n.op in ("VarHandleOp",)}
    assert variable_dtypes == {types_pb2.DT_FLOAT}
    # Mixed-precision export agrees with the float32 detector it was copied from.
    s = Servable(path)
    x = images01(trained_detector, 3, 21)
    np.testing.assert_allclose(s.run("score", {"images": x})["anomaly_score"],
                               trained_detector.score(x)["anomaly_score"], **TOL)


@pytest.mark.parametrize("n", [1, 5])
def test_parity_in_process_session_loader_and_grpc(trained_detector, base, client, n):
    x = images01(trained_detector, n, 30 + n)
    x8 = blobs(n, size=16, seed=40 + n)
    servable = Servable(os.path.join(base, "fanogan", "1"))
    ref = trained_detector.score(x)
    ref_maps = trained_detector.residual_maps(x)
    for out in (servable.run("score", {"images": x}), client.score(x)):
        for key in sig.SCORE_OUTPUTS:
            np.testing.assert_allclose(out[key], ref[key], **TOL)
        np.testing.assert_array_equal(out[sig.IS_ANOMALY], ref[sig.IS_ANOMALY])
    ref8 = trained_detector.score(x8)
    np.testing.assert_allclose(client.score(x8)["anomaly_score"], ref8["anomaly_score"], **TOL)
    maps = client.residual_maps(x)
    for key in sig.MAP_OUTPUTS:
        np.testing.assert_allclose(maps[key], ref_maps[key], **TOL)
    z = client.encode(x)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), ref[sig.Z_DISTANCE], **TOL)
    gen = client.predict("generate", {"z": z.astype(np.float32)})["images"]
    np.testing.assert_allclose(gen, ref_maps[sig.RECONSTRUCTION], **TOL)


def test_encoded_image_bytes_match_the_detector(trained_detector, client, tmp_path):
    paths = []
    for i, img in enumerate(blobs(3, size=24, seed=50)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(paths[-1])
    out = client.score_files(paths)
    np.testing.assert_allclose(out["anomaly_score"], trained_detector.score(str(tmp_path))["anomaly_score"], rtol=1e-4)


def test_saved_model_cli_runs_every_signature(base, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    png = io.BytesIO()
    Image.fromarray(blobs(1, 16)[0]).save(png, format="PNG")
    rng = np.random.default_rng(0)
    arrays = {"f": rng.uniform(0, 1, (2, 16, 16, 1)).astype("float32"),
              "u": rng.integers(0, 255, (2, 16, 16, 1)).astype("uint8"),
              "z": rng.uniform(-1, 1, (2, 16)).astype("float32"),
              "b": np.array([png.getvalue()], dtype="S")}  # fixed-width bytes: no pickle needed
    for k, v in arrays.items():
        np.save(tmp_path / f"{k}.npy", v)
    args = {
        "score": ["--inputs", f"images={tmp_path}/f.npy"],
        "score_uint8": ["--inputs", f"images={tmp_path}/u.npy"],
        "score_image_bytes": ["--inputs", f"image_bytes={tmp_path}/b.npy"],
        "residual_map": ["--inputs", f"images={tmp_path}/f.npy"],
        "encode": ["--inputs", f"images={tmp_path}/f.npy"],
        "generate": ["--inputs", f"z={tmp_path}/z.npy"],
    }
    def run(name):
        return subprocess.run([cli, "run", "--dir", os.path.join(base, "fanogan", "1"), "--tag_set", "serve",
                               "--signature_def", name, *args[name]], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})

    # Two at a time: each run is mostly importing TensorFlow, on one core.
    with ThreadPoolExecutor(2) as pool:
        for name, r in zip(args, pool.map(run, args)):
            assert r.returncode == 0, (name, r.stderr[-2000:])
            assert "Result for output key" in r.stdout, name


def test_metadata_skips_internal_signatures(client):
    meta = client.metadata()
    assert not [k for k in meta if k.startswith("__")]
    assert meta["score"]["inputs"]["images"] == ("float", (-1, 16, 16, 1))
    assert meta["score_uint8"]["inputs"]["images"][0] == "uint8"
    assert set(meta["score"]["outputs"]) == {*sig.SCORE_OUTPUTS, sig.P_VALUE, sig.IS_ANOMALY}


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


def _raw(server, spec=None, inputs=None, signature="", output_filter=()):
    from tf_fanogan.serving.protos import prediction_service_pb2_grpc

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server.target))
    request = predict_pb2.PredictRequest()
    if spec is not None:
        request.model_spec.CopyFrom(spec)
        request.model_spec.signature_name = signature
    for k, v in (inputs or {}).items():
        request.inputs[k].CopyFrom(tensors.to_proto(v))
    request.output_filter.extend(output_filter)
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(request, timeout=30)
    return e.value.code(), e.value.details()


def test_error_codes_match_tf_serving(server):
    spec = predict_pb2.PredictRequest().model_spec
    good = {"images": np.zeros((1, 16, 16, 1), np.float32)}
    code, msg = _raw(server, None, good)
    assert (code, msg) == (grpc.StatusCode.INVALID_ARGUMENT, "Missing ModelSpec")
    code, msg = _raw(server, spec, good)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg == "ModelSpec has no name specified."
    spec.name = "nope"
    code, msg = _raw(server, spec, good)
    assert code == grpc.StatusCode.NOT_FOUND and msg.startswith("Servable not found for request: Latest(nope)")
    spec.name = "fanogan"
    spec.version.value = 7
    code, msg = _raw(server, spec, good)
    assert code == grpc.StatusCode.NOT_FOUND and msg.startswith("Servable not found for request: Specific(fanogan, 7)")
    spec.version_label = "prod"
    code, msg = _raw(server, spec, good)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("Unrecognized servable version label: prod")
    spec.ClearField("version_label")
    code, msg = _raw(server, spec, good, signature="nope")
    assert code == grpc.StatusCode.FAILED_PRECONDITION and msg == 'Serving signature key "nope" not found.'
    code, msg = _raw(server, spec, {**good, "extra": good["images"]})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("input size does not match signature")
    code, msg = _raw(server, spec, {"imgs": good["images"]})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("input size does not match signature")
    code, msg = _raw(server, spec, {"images": good["images"].astype(np.float64)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("Expects arg[0] to be float but double is provided")
    code, msg = _raw(server, spec, good, output_filter=["nope"])
    assert code == grpc.StatusCode.INVALID_ARGUMENT and msg.startswith("output tensor alias not found in signature: nope")
    code, msg = _raw(server, spec, {"images": np.zeros((1, 8, 8, 1), np.float32)})
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    status_client = FAnoGANClient(server.target, "nope")
    with pytest.raises(NotFound, match="Could not find any versions of model nope"):
        status_client.status()
    # The server keeps working after every error.
    assert FAnoGANClient(server.target, "fanogan").score(good["images"])["anomaly_score"].shape == (1,)
    report(test="bad_input_grpc_codes", cases=12)  # the 11 Predict calls and the status call above


def test_rest_status_metadata_row_and_columnar(trained_detector, server):
    import urllib.request

    url = f"http://127.0.0.1:{server.rest_port}/v1/models/fanogan"
    status = json.loads(urllib.request.urlopen(url).read())
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    x = images01(trained_detector, 2, 70)
    ref = trained_detector.score(x)["anomaly_score"]

    def post(body):
        req = urllib.request.Request(url + ":predict", data=json.dumps(body).encode())
        return json.loads(urllib.request.urlopen(req).read())

    rows = post({"signature_name": "score", "instances": x.tolist()})["predictions"]
    np.testing.assert_allclose([r["anomaly_score"] for r in rows], ref, **TOL)
    cols = post({"signature_name": "score", "inputs": {"images": x.tolist()}})["outputs"]
    np.testing.assert_allclose(cols["anomaly_score"], ref, **TOL)
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", "fanogan")
    np.testing.assert_allclose(rest.score(x)["anomaly_score"], ref, **TOL)
    with pytest.raises(InvalidArgument):
        rest.predict("score", {"images": np.zeros((1, 8, 8, 1), np.float32)})
    bad = urllib.request.Request(url + ":predict", data=b"{not json")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad)
    assert e.value.code == 400 and "error" in json.loads(e.value.read())
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/..%2F..%2Fetc")
    assert e.value.code in (400, 404)


def _wait(predicate, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_version_swap_broken_version_and_warmup(trained_detector, tmp_path):
    root = str(tmp_path)
    export_detector(trained_detector, root, "m")
    with ModelServer([ModelEntry("m", os.path.join(root, "m"))], port=0, poll_interval=0.2) as srv:
        c = FAnoGANClient(srv.target, "m")
        c.wait_until_available(60)
        x = images01(trained_detector, 2, 80)
        assert c.predict("score", {"images": x}, return_version=True)[1] == 1
        export_detector(trained_detector, root, "m")  # version 2
        assert _wait(lambda: c.predict("score", {"images": x}, return_version=True)[1] == 2)
        assert _wait(lambda: [r["version"] for r in c.status()] == [2]), c.status()
        # A broken version 3 (its warm-up record has the wrong shape) fails to load; 2 keeps serving.
        v3 = os.path.join(root, "m", "3")
        shutil.copytree(os.path.join(root, "m", "2"), os.path.join(root, "m", ".tmp-3"))
        from tf_fanogan.serving.protos import prediction_log_pb2
        import tensorflow as tf

        req = predict_pb2.PredictRequest()
        req.model_spec.signature_name = "score"
        req.inputs["images"].CopyFrom(tensors.to_proto(np.zeros((1, 9, 9, 1), np.float32)))
        with tf.io.TFRecordWriter(os.path.join(root, "m", ".tmp-3", "assets.extra", "tf_serving_warmup_requests")) as w:
            w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req)).SerializeToString())
        os.rename(os.path.join(root, "m", ".tmp-3"), v3)
        assert _wait(lambda: any(r["version"] == 3 and r["state"] == "END" for r in c.status())), c.status()
        row3 = [r for r in c.status() if r["version"] == 3][0]
        assert "Failed to load" in row3["error"]
        assert c.predict("score", {"images": x}, return_version=True)[1] == 2
        assert Servable(os.path.join(root, "m", "2")).warmup() == 12


def test_labels_and_config_reload(trained_detector, tmp_path):
    root = str(tmp_path)
    export_detector(trained_detector, root, "m")
    export_detector(trained_detector, root, "m")
    config = f"""model_config_list {{ config {{ name: "m" base_path: "{root}/m" model_platform: "tensorflow"
      model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
      version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }} }}"""
    with ModelServer(parse_models_config(config), port=0, poll_interval=0) as srv:
        x = images01(trained_detector, 1, 90)
        for label, version in (("stable", 1), ("canary", 2)):
            c = FAnoGANClient(srv.target, "m", version_label=label)
            assert c.predict("score", {"images": x}, return_version=True)[1] == version
        with pytest.raises(InvalidArgument, match="Unrecognized servable version label: prod"):
            FAnoGANClient(srv.target, "m", version_label="prod").score(x)
        assert [r["version"] for r in FAnoGANClient(srv.target, "m").status()] == [1, 2]
        # Promote canary to stable through HandleReloadConfigRequest.
        from tf_fanogan.serving.protos import model_management_pb2, model_service_pb2_grpc
        from google.protobuf import text_format

        stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(srv.target))
        new = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(config.replace('value: 1 }', 'value: 2 }'), new)
        resp = stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=new))
        assert resp.status.error_code == 0, resp.status.error_message
        assert FAnoGANClient(srv.target, "m", version_label="stable").predict("score", {"images": x}, return_version=True)[1] == 2
        # A label pointing at a version that is not available is refused; the old config stays.
        text_format.Parse(config.replace('value: 2 }', 'value: 9 }'), new := model_server_config_pb2.ModelServerConfig())
        resp = stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(config=new))
        assert resp.status.error_code != 0 and "not currently available" in resp.status.error_message
        assert FAnoGANClient(srv.target, "m", version_label="canary").predict("score", {"images": x}, return_version=True)[1] == 2


def test_client_import_does_not_load_tensorflow():
    code = ("import sys, time; t = time.time(); import tf_fanogan.serving.client; "
            "print('tensorflow.python' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


def test_cli_export_serve_query(trained_detector, tmp_path, capsys):
    """The README's path: export, `fanogan serve` (config file re-read, batching on), `fanogan query`."""
    from tf_fanogan.cli import main

    det_dir = trained_detector.save(str(tmp_path / "det"))
    base = str(tmp_path / "saved_models")
    assert main(["export", det_dir, "--base-path", base, "--model-name", "fanogan"]) == 0
    err = capsys.readouterr().err  # progress: counts and rates of each export step
    for pattern in (r"tracing signatures 6/6 signatures in [\d.]+ s \([\d.]+ signatures/s\)",
                    r"writing the SavedModel: [\d.]+ s",
                    r"warm-up requests 12 records in [\d.]+ s",
                    r"published \S+/fanogan/1: [\d.]+ MiB in [\d.]+ s \([\d.]+ MiB/s\)"):
        assert re.search(pattern, err), (pattern, err)
    config = tmp_path / "models.config"
    template = ('model_config_list {{ config {{ name: "fanogan" base_path: "{base}" model_platform: "tensorflow" '
                'model_version_policy {{ specific {{ {versions} }} }} version_labels {{ key: "stable" value: {stable} }} }} }}')
    config.write_text(template.format(base=os.path.join(base, "fanogan"), versions="versions: 1", stable=1))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "tf_fanogan.cli", "serve", "--model_config_file", str(config),
                             "--model_config_file_poll_wait_seconds", "0.2", "--port", "0", "--rest_api_port", "-1",
                             "--enable_batching", "--batching_parameters_file",
                             os.path.join(repo, "serving", "batching_parameters.txt")],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        line = proc.stdout.readline()
        assert "gRPC 127.0.0.1:" in line, line
        target = line.split("gRPC ")[1].split(",")[0].strip()
        imgs = tmp_path / "imgs"
        imgs.mkdir()
        for i, img in enumerate(blobs(4, size=16, seed=99)):
            Image.fromarray(img).save(imgs / f"{i}.png")
        out_csv = str(tmp_path / "q.csv")
        FAnoGANClient(target, "fanogan").wait_until_available(60)
        assert main(["query", "--target", target, "--model-name", "fanogan", "--label", "stable",
                     "--data", str(imgs), "--output", out_csv]) == 0
        import csv

        rows = list(csv.DictReader(open(out_csv)))
        np.testing.assert_allclose([float(r["anomaly_score"]) for r in rows],
                                   trained_detector.score(str(imgs))["anomaly_score"], rtol=1e-4)
        assert main(["query", "--target", target, "--model-name", "nope", "--data", str(imgs)]) == 1

        # Publish version 2 and promote it by editing the config file the server re-reads.
        assert main(["export", det_dir, "--base-path", base, "--model-name", "fanogan"]) == 0
        config.write_text(template.format(base=os.path.join(base, "fanogan"), versions="versions: 1 versions: 2",
                                          stable=2))
        stable = FAnoGANClient(target, "fanogan", version_label="stable", timeout=30)
        x = images01(trained_detector, 2, seed=3)
        deadline, version = time.time() + 60, None
        while time.time() < deadline and version != 2:
            _, version = stable.predict("score", {"images": x}, return_version=True)
            time.sleep(0.2)
        assert version == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_query_names_a_bad_file_and_skips_it_on_request(trained_detector, server, tmp_path, capsys):
    from tf_fanogan.cli import main
    from tf_fanogan.data.images import load_image

    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    for i, img in enumerate(blobs(5, size=16, seed=21)):
        Image.fromarray(img).save(imgs / ("sub" if i >= 3 else "") / f"{i}.png")  # folders are read recursively
    (imgs / "1b_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (imgs / "notes.txt").write_text("not an image")
    args = ["query", "--target", server.target, "--model-name", "fanogan", "--data", str(imgs), "--batch-size", "2"]
    assert main(args + ["--output", str(tmp_path / "q.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"fanogan query: error: {re.escape(str(imgs))}/1b_broken\.png: cannot read image \(.+\)",
                        err), err
    assert main(args + ["--output", str(tmp_path / "q.csv"), "--on-error", "skip"]) == 0
    assert "queried 5 images" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "q.csv")))
    assert [os.path.relpath(r["path"], imgs) for r in rows] == ["0.png", "1.png", "2.png", "sub/3.png", "sub/4.png"]
    np.testing.assert_allclose([float(r["anomaly_score"]) for r in rows],
                               trained_detector.score([load_image(r["path"]) for r in rows])["anomaly_score"],
                               rtol=1e-4)
    errors = list(csv.DictReader(open(tmp_path / "q.csv.errors.csv")))
    assert [(os.path.basename(e["path"]), e["reason"].split(": ", 1)[1].split(" (")[0]) for e in errors] == [
        ("1b_broken.png", "cannot read image"), ("notes.txt", "not an image file")]
    npy = tmp_path / "x.npy"
    np.save(npy, blobs(80, size=16, seed=22))
    sizes = []
    real = FAnoGANClient.predict
    with mock.patch.object(FAnoGANClient, "predict", lambda self, s, inputs, *a, **k: sizes.append(
            len(next(iter(inputs.values())))) or real(self, s, inputs, *a, **k)):
        assert main(["query", "--target", server.target, "--model-name", "fanogan", "--data", str(npy),
                     "--output", str(tmp_path / "n.csv")]) == 0
    assert sizes == [64, 16]  # --batch-size 64 by default, as the shipped batching_parameters.txt accepts
    assert len(list(csv.DictReader(open(tmp_path / "n.csv")))) == 80


REST_BAD_REQUESTS = [  # (method, path, body, HTTP code, words the error must contain)
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[300]] * 16] * 16]}, 400,
     "outside uint8's range 0..255"),
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[-1]] * 16] * 16]}, 400,
     "outside uint8's range 0..255"),
    ("POST", ":predict", {"signature_name": "score_uint8", "instances": [[[[0.5]] * 16] * 16]}, 400,
     "expected integers for uint8"),
    ("POST", ":predict", {"instances": [[0.0]], "inputs": [[0.0]]}, 400, "both 'instances'"),
    ("POST", ":predict", {"signature_name": "score"}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", ":predict", b"[" * 100000 + b"]" * 100000, 400, "nested too deeply"),
    ("POST", ":predict", {"instances": [[[[[[[[[[[[0.0]]]]]]]]]]]] * 2}, 400, "images"),
    ("GET", "/versions/99999999999999999999999", None, 400, "not a 64-bit integer"),
    ("GET", "/versions/99999999999999999999999/metadata", None, 400, "not a 64-bit integer"),
    ("GET", "/versions/7", None, 404, "version"),
    ("PUT", ":predict", {"instances": []}, 405, "Method PUT not allowed"),
    ("DELETE", "", None, 405, "Method DELETE not allowed"),
    ("PATCH", "/metadata", None, 405, "Method PATCH not allowed"),
    ("GET", ":predict", None, 404, "Malformed request"),
    ("POST", "/metadata", {}, 404, "Malformed request"),
]


@pytest.mark.parametrize("method,suffix,body,code,words", REST_BAD_REQUESTS)
def test_rest_failures_are_json_errors_with_tf_serving_codes(server, method, suffix, body, code, words):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    conn.request(method, f"/v1/models/fanogan{suffix}", body=data, headers={"Content-Type": "application/json"})
    reply = conn.getresponse()
    payload = json.loads(reply.read())
    conn.close()
    assert reply.status == code and list(payload) == ["error"] and words in payload["error"], (reply.status, payload)
    ok = urllib.request.urlopen(f"http://127.0.0.1:{server.rest_port}/v1/models/fanogan")  # still serving
    assert ok.status == 200
    report(test="bad_input_rest", case=f"{method} {suffix} -> {code}", of=len(REST_BAD_REQUESTS))


def test_grpc_tensor_protos_with_negative_dimensions_or_out_of_range_values_are_refused(client):
    from tf_fanogan.serving.protos import tensor_pb2, tensor_shape_pb2

    bad_shape = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.0] * 4, tensor_shape=
                                       tensor_shape_pb2.TensorShapeProto(dim=[{"size": -1}, {"size": 4}]))
    with pytest.raises(ValueError, match=r"negative dimension"):
        tensors.to_numpy(bad_shape)
    wide = tensor_pb2.TensorProto(dtype=types_pb2.DT_UINT8, int_val=[300],
                                  tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 1}]))
    with pytest.raises(ValueError, match=r"outside uint8's range 0\.\.255"):
        tensors.to_numpy(wide)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "fanogan"
    request.model_spec.signature_name = "score"
    request.inputs["images"].CopyFrom(bad_shape)
    with pytest.raises(grpc.RpcError) as e:
        client._predict.Predict(request, timeout=30)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "negative dimension" in e.value.details()


def _encoded(fmt, size=20):
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size), 128, np.uint8)).save(buf, fmt)
    return buf.getvalue()


def _rgb_png():
    buf = io.BytesIO()
    Image.fromarray(np.stack([np.full((20, 20), v, np.uint8) for v in (200, 100, 50)], -1)).save(buf, "PNG")
    return buf.getvalue()


def test_served_bytes_match_in_process_for_every_format_colour_and_alpha(trained_detector, client):
    from tf_fanogan.data.images import decode_image_bytes

    g = blobs(1, size=20, seed=31)[0]
    near = np.stack([g, np.clip(g.astype(int) + 5, 0, 255), np.clip(g.astype(int) - 3, 0, 255)], -1).astype(np.uint8)
    forms = {"grey": (g, "PNG"), "16-bit grey": (g.astype(np.uint16) * 257, "PNG"), "JPEG": (g, "JPEG"),
             "BMP": (g, "BMP"), "grey stored as RGB": (np.stack([g] * 3, -1), "PNG"),
             "grey stored as RGB, JPEG": (np.stack([g] * 3, -1), "JPEG"),
             "grey with alpha (LA)": (np.stack([g, g // 2], -1), "PNG"),
             "grey RGBA": (np.stack([g, g, g, np.full_like(g, 7)], -1), "PNG"),
             "near-grey RGB (channels within 5 levels)": (near, "PNG"), "near-grey RGB, JPEG": (near, "JPEG")}
    for name, (arr, fmt) in forms.items():
        buf = io.BytesIO()
        Image.fromarray(arr, mode="LA" if arr.ndim == 3 and arr.shape[-1] == 2 else None).save(buf, fmt)
        local = trained_detector.score([decode_image_bytes(buf.getvalue(), name)])["anomaly_score"]
        np.testing.assert_allclose(client.score_image_bytes([buf.getvalue()])["anomaly_score"], local, rtol=1e-5,
                                   err_msg=name)


def _parity_files(folder):
    """One file per format the in-process reader takes; the same picture in each."""
    g = blobs(1, size=20, seed=41)[0]
    g16 = g.astype(np.uint16) * 257 + np.random.default_rng(4).integers(0, 200, g.shape).astype(np.uint16)
    near = np.stack([g, np.clip(g.astype(int) + 4, 0, 255), g], -1).astype(np.uint8)
    files = {"PNG 8-bit": ("a.png", g), "PNG 16-bit": ("b.png", g16), "JPEG": ("c.jpg", g),
             "JPEG, grey stored as RGB": ("d.jpg", near), "BMP": ("e.bmp", g), "TIFF 8-bit": ("f.tif", g),
             "TIFF 16-bit": ("g.tif", g16)}
    for name, arr in files.values():
        Image.fromarray(arr).save(folder / name)
    return {fmt: str(folder / name) for fmt, (name, _) in files.items()}


def test_query_sends_tiff_as_lossless_png_and_names_a_float_tiff(tmp_path):
    from tf_fanogan.data.images import DataError, decode_image_bytes, load_image
    from tf_fanogan.serving.query import _read

    files = _parity_files(tmp_path)
    for fmt in ("TIFF 8-bit", "TIFF 16-bit"):
        sent = _read(files[fmt])
        assert sent.startswith(b"\x89PNG")
        np.testing.assert_array_equal(decode_image_bytes(sent, "sent"), load_image(files[fmt]))
    assert _read(files["JPEG"]) == open(files["JPEG"], "rb").read()  # served formats go as they are
    Image.fromarray(np.full((20, 20), 0.5, np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match=r"float\.tif: a float32 20x20 image has no lossless PNG form"):
        _read(str(tmp_path / "float.tif"))


def test_parity_across_formats_and_paths(trained_detector, base, server, tmp_path):
    """The same file scored by every path gives the same score and decision as ``FAnoGAN.score``;
    TIFF, which the served graph does not decode, is refused there with a clear message and sent
    as PNG by ``fanogan query``. Each cell is reported to the reliability section's table."""
    import tensorflow as tf

    from tf_fanogan.cli import main

    folder = tmp_path / "formats"
    folder.mkdir()
    files = _parity_files(folder)
    det_dir = trained_detector.save(str(tmp_path / "det"))
    loaded = tf.saved_model.load(os.path.join(base, "fanogan", "1")).signatures[sig.SCORE_IMAGE_BYTES]
    rest = RestClient(f"http://127.0.0.1:{server.rest_port}", "fanogan", timeout=30)
    grpc_client = FAnoGANClient(server.target, "fanogan", timeout=30)

    def by_csv(args, out):
        assert main(args + ["--output", out]) == 0
        return {r["path"]: (float(r["anomaly_score"]), r["is_anomaly"] == "true") for r in csv.DictReader(open(out))}

    score_cli = by_csv(["score", det_dir, "--data", str(folder), "--quiet"], str(tmp_path / "score.csv"))
    query_cli = by_csv(["query", "--target", server.target, "--model-name", "fanogan", "--data", str(folder)],
                       str(tmp_path / "query.csv"))

    def via_saved_model(data):
        out = loaded(image_bytes=tf.constant([data]))
        return float(out["anomaly_score"][0]), bool(out["is_anomaly"][0])

    def via(client):
        def call(data):
            out = client.score_image_bytes([data])
            return float(out["anomaly_score"][0]), bool(out["is_anomaly"][0])
        return call

    paths = {"`fanogan score`": lambda p, d: score_cli[p], "SavedModel (`score_image_bytes`)": lambda p, d: via_saved_model(d),
             "gRPC client": lambda p, d: via(grpc_client)(d), "REST client": lambda p, d: via(rest)(d),
             "`fanogan query`": lambda p, d: query_cli[p]}
    raw_refusals = (tf.errors.InvalidArgumentError, InvalidArgument)
    for fmt, path in files.items():
        ref_score = float(trained_detector.score(path)["anomaly_score"][0])
        ref_flag = bool(trained_detector.predict(path)[0])
        data = open(path, "rb").read()
        for where, run in paths.items():
            try:
                score, flag = run(path, data)
            except raw_refusals as e:
                assert fmt.startswith("TIFF") and "not a PNG, JPEG or BMP image" in str(e), (fmt, where, e)
                report(test="parity", format=fmt, path=where, result="refused: not a PNG, JPEG or BMP image")
                continue
            rel = abs(score - ref_score) / abs(ref_score)
            assert rel <= 1e-5 and flag == ref_flag, (fmt, where, score, ref_score)
            report(test="parity", format=fmt, path=where, result=f"{rel:.1e}")
    grpc_client.close()


GRPC_BAD_INPUTS = [  # (signature, inputs, words the INVALID_ARGUMENT message must contain)
    ("score", {"images": np.zeros((0, 16, 16, 1), np.float32)}, "images: empty batch (0 images)"),
    ("score_uint8", {"images": np.zeros((0, 16, 16, 1), np.uint8)}, "images: empty batch (0 images)"),
    ("score_image_bytes", {"image_bytes": np.array([], dtype=object)}, "image_bytes: empty batch (0 images)"),
    ("score_image_bytes", {"image_bytes": np.array([b"garbage"], dtype=object)},
     "image_bytes[0]: not a PNG, JPEG or BMP image (7 bytes)"),
    ("score_image_bytes", {"image_bytes": np.array([_encoded("PNG"), _encoded("PNG"), b"xx"], dtype=object)},
     "image_bytes[2]: not a PNG, JPEG or BMP image (2 bytes)"),
    ("score_image_bytes", {"image_bytes": np.array([_encoded("PNG"), _encoded("GIF")], dtype=object)},
     "image_bytes[1]: a GIF image; send PNG, JPEG or BMP"),
    ("score_image_bytes", {"image_bytes": np.array([_encoded("PNG")[:30]], dtype=object)}, "Invalid PNG"),
    ("score", {"images": np.full((1, 16, 16, 1), np.nan, np.float32)}, "images: NaN or infinite pixel values"),
    ("score", {"images": np.full((1, 16, 16, 1), 5.0, np.float32)}, "images: pixel values outside [0, 1]"),
    ("residual_map", {"images": np.zeros((0, 16, 16, 1), np.float32)}, "images: empty batch (0 images)"),
    # the in-process reader's policy, in the graph: no silent colour conversion, no up-sampling
    ("score_image_bytes", {"image_bytes": np.array([_encoded("PNG"), _encoded("PNG", size=4)], dtype=object)},
     "image_bytes[1]: images of 4x4 are smaller than the model input (16x16)"),
    ("score_image_bytes", {"image_bytes": np.array([_rgb_png()], dtype=object)},
     "image_bytes[0]: a colour image (its channels differ by up to 150 grey levels, more than data.color_tolerance 8)"
     " but the model is grayscale; set data.color: gray"),
]


@pytest.mark.parametrize("signature,inputs,words", GRPC_BAD_INPUTS, ids=range(len(GRPC_BAD_INPUTS)))
def test_grpc_bad_inputs_say_what_is_wrong(server, client, signature, inputs, words):
    spec = predict_pb2.PredictRequest().model_spec
    spec.name = "fanogan"
    code, msg = _raw(server, spec, inputs, signature=signature)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and words in msg and "Graph execution error" not in msg, msg
    assert client.score(np.zeros((1, 16, 16, 1), np.float32))["anomaly_score"].shape == (1,)  # still serving
    report(test="bad_input_grpc", case=words, of=len(GRPC_BAD_INPUTS))


def test_the_readme_rest_examples_run_as_written(server, tmp_path):
    """serving/README.md's REST block, run by bash against the test server (its port, 16x16)."""
    import shutil as sh

    if not (sh.which("curl") and sh.which("base64") and sh.which("bash")):
        pytest.skip("the README's REST examples need curl, base64 and bash")
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serving",
                               "README.md")).read()
    block = readme.split("<!-- rest-examples -->")[1].split("<!-- /rest-examples -->")[0]
    script = block.split("```bash\n")[1].split("```")[0]
    script = script.replace("localhost:8501", f"127.0.0.1:{server.rest_port}").replace("* 32", "* 16")
    script = script.replace("python -c", f"{sys.executable} -c")
    Image.fromarray(blobs(1, size=24, seed=5)[0]).save(tmp_path / "cell.png")
    commands = [c.strip() for c in script.replace("\\\n", " ").splitlines() if c.strip().startswith(("curl", "/"))]
    replies = []
    for command in commands:
        out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (command, out.stderr)
        if command.startswith("curl"):
            replies.append(json.loads(out.stdout))
    assert len(replies) == 5 and not any("error" in r for r in replies), replies
    assert replies[0]["model_version_status"][0]["state"] == "AVAILABLE"
    assert "score_image_bytes" in replies[1]["metadata"]["signature_def"]["signature_def"]
    row, col, uint8 = replies[2], replies[3], replies[4]
    assert row["predictions"][0]["anomaly_score"] == pytest.approx(col["outputs"]["anomaly_score"][0], rel=1e-6)
    assert len(uint8["predictions"]) == 2 and {"anomaly_score", "is_anomaly"} <= set(uint8["predictions"][0])


def test_the_shipped_configs_serve_locally_or_name_the_missing_base_path(trained_detector, tmp_path, capsys):
    from tf_fanogan.cli import main
    from tf_fanogan.serving.manager import entries_from_flags

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert main(["serve", "--model_config_file", os.path.join(repo, "serving", "models.config"), "--port", "0",
                 "--rest_api_port", "-1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "base path /models/fanogan does not exist" in err and "fix base_path" in err, err
    (tmp_path / "serving").mkdir()
    shutil.copy(os.path.join(repo, "serving", "models.local.config"), tmp_path / "serving")
    export_detector(trained_detector, str(tmp_path / "saved_models"), "fanogan", warmup=False)
    entries = entries_from_flags(model_config_file=str(tmp_path / "serving" / "models.local.config"))
    assert entries[0].base_path == str(tmp_path / "saved_models" / "fanogan")  # relative to the config file
    with ModelServer(entries, port=0, poll_interval=0, warmup=False) as srv:
        assert srv.manager.wait_for("fanogan", 60)
        with FAnoGANClient(srv.target, "fanogan", version_label="stable", timeout=30) as c:
            assert c.score(np.zeros((1, 16, 16, 1), np.float32))["anomaly_score"].shape == (1,)
