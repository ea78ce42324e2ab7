"""The exported SavedModel: TF Serving's layout and contract, the in-graph decoder, parity with the detector."""

import io
import json
import os
import subprocess
import sys
import csv

import numpy as np
import pytest
from PIL import Image

from tf_fanogan import signatures as sig
from tf_fanogan.serving.export import ExportError, export_detector, list_versions
from tf_fanogan.serving.client import FAnoGANClient, InvalidArgument, RestClient
from tf_fanogan.serving.protos import types_pb2
from tf_fanogan.serving.servable import Servable
from helpers import blobs, report
from helpers.serving import TOL, images01, parity_files


def _graph_attrs(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel.FromString(open(os.path.join(path, "saved_model.pb"), "rb").read())
    mg = sm.meta_graphs[0]
    nodes = list(mg.graph_def.node) + [n for f in mg.graph_def.library.function for n in f.node_def]
    funcs = list(mg.graph_def.library.function)
    return mg, nodes, funcs


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
    version = os.path.join(base, "fanogan", "1")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The tool itself once (each run is mostly importing TensorFlow), and every signature through
    # the two functions its `run` command calls, in one more process beside it.
    real = subprocess.Popen([cli, "run", "--dir", version, "--tag_set", "serve", "--signature_def",
                             "score_image_bytes", *args["score_image_bytes"]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    code = ("import sys\nfrom tensorflow.python.tools import saved_model_cli as t\n"
            "for name, inputs in zip(sys.argv[2::2], sys.argv[3::2]):\n"
            "    print('signature', name, flush=True)\n"
            "    t.run_saved_model_with_feed_dict(sys.argv[1], 'serve', name,"
            " t.load_inputs_from_input_arg_string(inputs, '', ''), None, False)\n")
    each = subprocess.run([sys.executable, "-c", code, version, *[a for name in args for a in (name, args[name][1])]],
                          capture_output=True, text=True, timeout=180, env=env)
    out, err = real.communicate(timeout=180)
    assert real.returncode == 0 and "Result for output key" in out, err[-2000:]
    assert each.returncode == 0, each.stderr[-2000:]
    runs = each.stdout.split("signature ")[1:]
    assert [r.split()[0] for r in runs] == list(args)
    for r in runs:
        assert "Result for output key" in r, r


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


def test_parity_across_formats_and_paths(trained_detector, base, server, tmp_path):
    """The same file scored by every path gives the same score and decision as ``FAnoGAN.score``;
    TIFF, which the served graph does not decode, is refused there with a clear message and sent
    as PNG by ``fanogan query``. Each cell is reported to the reliability section's table."""
    import tensorflow as tf

    from tf_fanogan.cli import main

    folder = tmp_path / "formats"
    folder.mkdir()
    files = parity_files(folder)
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


def test_empty_image_bytes_batch_is_named_every_time(base):
    """The empty-batch check runs before the format check, whose first-offender argmax fails on an
    empty batch: unordered, TF's scheduler sometimes ran the argmax first (a flaky CI failure)."""
    import tensorflow as tf

    fn = tf.saved_model.load(os.path.join(base, "fanogan", "1")).signatures[sig.SCORE_IMAGE_BYTES]
    for _ in range(200):
        with pytest.raises(tf.errors.InvalidArgumentError, match="image_bytes: empty batch \\(0 images\\)"):
            fn(**{sig.IMAGE_BYTES: tf.constant([], tf.string)})
