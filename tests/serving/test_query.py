"""`fanogan query` on files: the README's export -> serve -> query path, bad files, TIFF."""

import os
import re
import csv
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.serving.client import FAnoGANClient
from helpers import blobs
from helpers.serving import parity_files


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


def test_query_sends_tiff_as_lossless_png_and_names_a_float_tiff(tmp_path):
    from tf_fanogan.data.images import DataError, decode_image_bytes, load_image
    from tf_fanogan.serving.query import _read

    files = parity_files(tmp_path)
    for fmt in ("TIFF 8-bit", "TIFF 16-bit"):
        sent = _read(files[fmt])
        assert sent.startswith(b"\x89PNG")
        np.testing.assert_array_equal(decode_image_bytes(sent, "sent"), load_image(files[fmt]))
    assert _read(files["JPEG"]) == open(files["JPEG"], "rb").read()  # served formats go as they are
    Image.fromarray(np.full((20, 20), 0.5, np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(DataError, match=r"float\.tif: a float32 20x20 image has no lossless PNG form"):
        _read(str(tmp_path / "float.tif"))
