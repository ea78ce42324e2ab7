"""The bad-input matrix: each case through the Python API and the CLI, each with a clear error
naming the problem, and the next good request still works. Server-side cases (gRPC dtype,
shape, inputs, model/version/label/signature) are in ``serving/test_grpc_service.py``'s error-code test;
REST bodies that are not JSON or too large are here."""

import json
import os
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.cli import main
from tf_fanogan.config import ConfigError, FAnoGANConfig
from tf_fanogan.data.images import DataError
from tf_fanogan.detector import DetectorError, FAnoGAN
from helpers import blobs, report

GOOD = blobs(3, size=20, seed=41)


def _png(path, arr):
    Image.fromarray(arr).save(path)
    return str(path)


def _folder(tmp_path, name, files):
    d = tmp_path / name
    d.mkdir()
    for fname, content in files.items():
        if isinstance(content, bytes):
            (d / fname).write_bytes(content)
        else:
            _png(d / fname, content)
    return str(d)


def _cases(tmp_path):
    """(name, API input, expected message) -- the CLI gets the same input as a path."""
    g = GOOD[0]
    nan = np.full((2, 20, 20), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "int64.npy", np.zeros((2, 20, 20), np.int64))
    np.save(tmp_path / "two_channels.npy", np.zeros((2, 20, 20, 2), np.uint8))
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((20, 20)), np.zeros((21, 20, 3))
    np.save(tmp_path / "objects.npy", ragged, allow_pickle=True)
    return [
        ("corrupt image file", _folder(tmp_path, "corrupt", {"a.png": g, "broken.png": b"\x89PNG garbage"}),
         r"broken\.png: cannot read image"),
        ("non-image file in a folder", _folder(tmp_path, "nonimage", {"a.png": g, "notes.txt": b"hello"}),
         r"notes\.txt: not an image file"),
        ("empty folder", _folder(tmp_path, "empty", {}), r"no image files found"),
        ("wrong channel count", _folder(tmp_path, "rgb", {"rgb.png": np.stack([g, g // 2, g // 3], -1)}),
         r"rgb\.png: a colour image \(its channels differ by up to \d+ grey levels"),
        ("two channels in an array", str(tmp_path / "two_channels.npy"), r"has 2 channels but the model expects 1"),
        ("NaN/inf in an array", str(tmp_path / "nan.npy"), r"NaN"),
        ("wrong dtype", str(tmp_path / "int64.npy"), r"int64"),
        ("mismatched shapes in one batch (pickled object array)", str(tmp_path / "objects.npy"),
         r"objects\.npy: cannot read array"),
        ("missing file", str(tmp_path / "nope.png"), r"nope\.png: no such file"),
        ("decompression bomb (a 15000x15000 PNG of 220 KB)",
         _folder(tmp_path, "bomb", {"a.png": g, "bomb.png": np.zeros((15000, 15000), np.uint8)}),
         r"bomb\.png: more pixels than the limit of 89,478,485"),
    ]


def test_bad_input_matrix_api_and_cli(trained_detector, tmp_path, capsys):
    det_dir = trained_detector.save(str(tmp_path / "det"))
    det = FAnoGAN.load(det_dir)
    good_dir = _folder(tmp_path, "good", {f"{i}.png": img for i, img in enumerate(GOOD)})
    passed, tried = 0, 0
    for name, source, message in _cases(tmp_path):
        tried += 2
        with pytest.raises(DataError, match=message):
            det.score(source)
        assert det.score(GOOD)["anomaly_score"].shape == (3,), name  # the next good call works
        out = str(tmp_path / "out.csv")
        assert main(["score", det_dir, "--data", source, "--output", out]) == 1, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and __import__("re").search(message, err), (name, err)
        assert not os.path.exists(out), name  # nothing half-written
        passed += 2

    # Mismatched shapes inside one list batch (API only: the CLI reads files one by one).
    tried += 1
    with pytest.raises(DataError, match=r"image\[1\]: has 2 channels but the model expects 1"):
        det.score([GOOD[0], np.zeros((20, 20, 2), np.uint8)])
    passed += 1
    # A 16-bit image is valid input: it scores like its 8-bit copy.
    tried += 1
    sixteen = _folder(tmp_path, "sixteen", {"a.png": GOOD[0].astype(np.uint16) * 257})
    np.testing.assert_allclose(det.score(sixteen)["anomaly_score"], det.score(GOOD[:1])["anomaly_score"], rtol=1e-4)
    passed += 1

    # Config files with an unknown key or a wrong type.
    for text, message in ((json.dumps({"gan": {"epochz": 3}}), r"unknown key.*epochz"),
                          (json.dumps({"gan": {"epochs": "many"}}), r"bad\.json\.gan: key 'epochs' of GANTrainingConfig must be int")):
        tried += 2
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            FAnoGANConfig.load(str(path))
        assert main(["train", "--data", good_dir, "--out", str(tmp_path / "x"), "--config", str(path)]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and __import__("re").search(message, err), err
        passed += 2

    # Detector directories with a missing or a tampered file.
    for damage, message in (("missing", r"encoder\.weights\.h5: missing"), ("tampered", r"critic\.weights\.h5: SHA-256")):
        tried += 2
        broken = str(tmp_path / f"det_{damage}")
        shutil.copytree(det_dir, broken)
        if damage == "missing":
            os.remove(os.path.join(broken, "encoder.weights.h5"))
        else:
            with open(os.path.join(broken, "critic.weights.h5"), "r+b") as f:
                f.seek(-100, 2)
                f.write(b"\x00" * 8)
        with pytest.raises(DetectorError, match=message):
            FAnoGAN.load(broken)
        assert main(["score", broken, "--data", good_dir, "--output", str(tmp_path / "o.csv")]) == 1
        assert __import__("re").search(message, capsys.readouterr().err)
        passed += 2

    # The process still does the next good job.
    assert main(["score", det_dir, "--data", good_dir, "--output", str(tmp_path / "ok.csv")]) == 0
    report(test="bad_input_api_cli", tried=tried, passed=passed)


def test_on_error_skip_scores_every_good_file_and_lists_the_bad(trained_detector, tmp_path, capsys):
    det_dir = trained_detector.save(str(tmp_path / "det"))
    g = GOOD[0]
    data = _folder(tmp_path, "mixed", {"a.png": g, "b.png": GOOD[1], "broken.png": b"xx", "notes.txt": b"hi",
                                       "small.png": g[:8, :8], "rgb.png": np.stack([g, g, g // 2], -1)})
    out = str(tmp_path / "s.csv")
    assert main(["score", det_dir, "--data", data, "--output", out, "--on-error", "skip"]) == 0
    printed = capsys.readouterr().out
    rows = open(out).read().splitlines()[1:]
    errors = open(out + ".errors.csv").read().splitlines()[1:]
    # small.png (8x8) is up-sampled by the default data.small_images policy, not an error
    assert sorted(os.path.basename(r.split(",")[0]) for r in rows) == ["a.png", "b.png", "small.png"]
    assert sorted(os.path.basename(e.split(",")[0]) for e in errors) == ["broken.png", "notes.txt", "rgb.png"]
    assert "scored 3 images" in printed and "3 skipped" in printed


def test_rest_bodies_that_are_not_json_or_too_large(trained_export, tmp_path):
    from helpers.serving import publish
    from tf_fanogan.serving.manager import ModelEntry
    from tf_fanogan.serving.server import ModelServer

    publish(trained_export, str(tmp_path), "m", warmup=False)
    with ModelServer([ModelEntry("m", str(tmp_path / "m"))], port=0, rest_port=0, poll_interval=0, warmup=False,
                     max_rest_body_bytes=4096) as srv:
        assert srv.manager.wait_for("m", 60)
        url = f"http://127.0.0.1:{srv.rest_port}/v1/models/m:predict"

        def post(body: bytes):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"), timeout=30) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read())

        status, body = post(b"{not json")
        assert status == 400 and "JSON Parse error" in body["error"]
        status, body = post(json.dumps({"instances": np.zeros((4, 16, 16, 1)).tolist()}).encode())
        assert status == 413 or status == 400, status
        assert "exceeds the limit of 4096" in body["error"]
        status, body = post(json.dumps({"instances": np.zeros((1, 16, 16, 1)).tolist()}).encode())
        assert status == 200 and len(body["predictions"]) == 1  # and the next good request works
