"""Batch scoring on Apache Beam (DirectRunner): `fanogan beam-score` equals `fanogan score`, bad
files go to the dead letters, empty input, multi-processing, sinks, and --model refusals."""

import csv
import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="the Beam tests need the beam extra: pip install 'tf-fanogan[beam]'")

from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from helpers import blobs  # noqa: E402
from tf_fanogan.beam import ScoreImages, read_export  # noqa: E402
import apache_beam as beam  # noqa: E402

from tf_fanogan.beam.handler import ExportedModelError, SavedModelScoreHandler  # noqa: E402
from tf_fanogan.cli import main  # noqa: E402
from tf_fanogan.serving.export import export_detector  # noqa: E402


@pytest.fixture(scope="module")
def version(trained_detector, tmp_path_factory):
    return export_detector(trained_detector, str(tmp_path_factory.mktemp("saved_models")), "fanogan", warmup=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """PNG 8-bit, PNG 16-bit and JPEG (grayscale, larger than the model: resized), in sub-folders,
    plus a hidden file that a folder source leaves out, as `fanogan score` does."""
    root = tmp_path_factory.mktemp("beam") / "imgs"
    (root / "png").mkdir(parents=True)
    (root / "jpeg").mkdir()
    for i, img in enumerate(blobs(12, size=24, seed=11)):
        if i < 4:
            Image.fromarray(img).save(root / "png" / f"{i:02d}.png")
        elif i < 8:
            Image.fromarray(img.astype(np.uint16) * 257).save(root / "png" / f"{i:02d}_16bit.png")
        else:
            Image.fromarray(img).save(root / "jpeg" / f"{i:02d}.jpg", quality=90)
    (root / ".hidden.png").write_bytes(b"not scored")
    return root


def read_shards(prefix, suffix="csv"):
    files = sorted(glob.glob(f"{prefix}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].{suffix}"))
    assert files, f"no shards {prefix}-SSSSS-of-NNNNN.{suffix}"
    if suffix == "jsonl":
        return [json.loads(line) for f in files for line in open(f) if line.strip()]
    headers, rows = set(), []
    for f in files:
        with open(f, newline="") as fh:
            r = list(csv.reader(fh))
        headers.add(tuple(r[0]))
        rows += r[1:]
    assert len(headers) == 1, headers
    return [dict(zip(next(iter(headers)), row)) for row in rows]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_rows(beam_rows, score_rows):
    by_path = {r["path"]: r for r in score_rows}
    assert sorted(r["path"] for r in beam_rows) == sorted(by_path)
    worst = 0.0
    for r in beam_rows:
        ref = by_path[r["path"]]
        assert list(r) == list(ref)  # same columns, same order
        assert r["is_anomaly"] == ref["is_anomaly"]
        for k in ("anomaly_score", "residual_score", "feature_score", "z_distance", "p_value"):
            a, b = float(r[k]), float(ref[k])
            worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    assert worst <= 1e-5, worst


@pytest.fixture(scope="module")
def reference(trained_detector, images, tmp_path_factory):
    """`fanogan score` on the same folder, through a saved detector (the user's path)."""
    d = tmp_path_factory.mktemp("ref")
    trained_detector.save(str(d / "det"))
    assert main(["score", str(d / "det"), "--data", str(images), "--output", str(d / "scores.csv")]) == 0
    return read_csv(d / "scores.csv")


def test_same_rows_as_fanogan_score(version, images, reference, tmp_path, capsys):
    out = str(tmp_path / "out" / "scores")
    assert main(["beam-score", "--model", version, "--data", str(images), "--output", out]) == 0
    assert "scored 12 images" in capsys.readouterr().out
    rows = read_shards(out)
    assert len(rows) == 12 and not any(".hidden" in r["path"] for r in rows)
    assert_same_rows(rows, reference)
    assert read_shards(f"{out}-errors") == []  # a header-only dead-letter shard


def test_bad_files_go_to_the_dead_letters_and_the_rest_is_scored(version, images, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG garbage")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(bad / "tiny.png")  # smaller than the model
    rgb = np.stack([blobs(1, size=24)[0]] * 3, -1)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(bad / "colour.png")  # 3 distinct channels for a grayscale model
    (bad / "notes.txt").write_text("not an image")
    nan = np.full((24, 24), 0.5, np.float32)
    nan[3, 3] = np.nan
    Image.fromarray(nan, mode="F").save(bad / "nan.tif")  # a float image with a NaN pixel
    lst = tmp_path / "list.txt"
    lst.write_text(f"# a list, relative to its folder\nbad/missing.png\n{images}/png/00.png\n")
    out = str(tmp_path / "out" / "s")
    assert main(["beam-score", "--model", version, "--data", str(bad), "--data", str(lst),
                 "--data", f"{images}/jpeg/*.jpg", "--output", out]) == 0
    assert "scored 5 images" in capsys.readouterr().out
    rows = read_shards(out)
    assert sorted(os.path.basename(r["path"]) for r in rows) == ["00.png", "08.jpg", "09.jpg", "10.jpg", "11.jpg"]
    errors = {os.path.basename(r["path"]): r["reason"] for r in read_shards(f"{out}-errors")}
    assert set(errors) == {"broken.png", "tiny.png", "colour.png", "notes.txt", "nan.tif", "missing.png"}
    assert "NaN or inf" in errors["nan.tif"]
    assert "cannot read image" in errors["broken.png"]
    assert "smaller than the model input (16x16)" in errors["tiny.png"]
    assert "a colour image (its channels differ" in errors["colour.png"]
    assert "not an image file" in errors["notes.txt"]
    assert "missing.png: cannot read" in errors["missing.png"]
    assert all(reason.startswith(str(tmp_path)) for reason in errors.values())  # each reason names its file


def test_empty_input_is_an_empty_output_and_a_warning(version, tmp_path, capsys):
    out = str(tmp_path / "out" / "s")
    assert main(["beam-score", "--model", version, "--data", str(tmp_path / "nothing" / "*.png"),
                 "--output", out]) == 0
    captured = capsys.readouterr()
    assert f"warning: {tmp_path}/nothing/*.png matches no file" in captured.err
    assert "scored 0 images" in captured.out
    assert read_shards(out) == [] and read_shards(f"{out}-errors") == []
    header = open(glob.glob(f"{out}-0*.csv")[0]).readline().strip()
    assert header == "path,anomaly_score,residual_score,feature_score,z_distance,p_value,is_anomaly"


def test_multi_processing_gives_the_same_rows(version, images, reference, tmp_path):
    out = str(tmp_path / "s")
    assert main(["beam-score", "--model", version, "--data", str(images), "--output", out,
                 "--direct_running_mode", "multi_processing", "--direct_num_workers", "2", "--max-batch", "5"]) == 0
    assert_same_rows(read_shards(out), reference)


def as_text(row):
    return {k: (str(v).lower() if isinstance(v, bool) else (repr(v) if isinstance(v, float) else v))
            for k, v in row.items()}


def test_jsonl_and_parquet_hold_the_csv_rows(version, images, reference, tmp_path):
    out = str(tmp_path / "j")
    assert main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--format", "jsonl"]) == 0
    rows = read_shards(out, "jsonl")
    assert isinstance(rows[0]["is_anomaly"], bool) and isinstance(rows[0]["anomaly_score"], float)
    png = [r for r in reference if "/png/" in r["path"]]
    assert_same_rows([as_text(r) for r in rows], png)
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet output needs pyarrow")
    out = str(tmp_path / "p")
    assert main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--format", "parquet"]) == 0
    table = [r for f in sorted(glob.glob(f"{out}-0*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [type(v) for v in table[0].values()] == [type(v) for v in rows[0].values()]
    assert_same_rows([as_text(r) for r in table], png)


def test_score_images_transform_with_alpha(version, images, reference):
    """Transform level (TestPipeline, assert_that): a .txt list, decisions by p-value."""
    lst = images.parent / "some.txt"
    lst.write_text("imgs/png/00.png\nimgs/png/01.png\nimgs/jpeg/08.jpg\n")
    expected_p = {r["path"]: float(r["p_value"]) for r in reference}
    alpha = 0.5

    def decisions(rows):
        return sorted((os.path.basename(r["path"]), r["is_anomaly"]) for r in rows)

    want = sorted((os.path.basename(p), v <= alpha) for p, v in expected_p.items()
                  if os.path.basename(p) in ("00.png", "01.png", "08.jpg"))
    with BeamTestPipeline() as p:
        out = p | ScoreImages(str(lst), version, max_batch_size=2, alpha=alpha)
        assert_that(out["rows"], lambda rows: equal_to(want)(decisions(rows)), label="rows")
        assert_that(out["errors"], equal_to([]), label="errors")


class FailingHandler(SavedModelScoreHandler):
    def run_inference(self, batch, model, inference_args=None):
        raise ValueError("simulated model failure")


def test_a_failed_model_call_puts_its_batch_in_the_dead_letters(version, images):
    score = ScoreImages(f"{images}/png/0[0-2].png", version)
    score.handler = FailingHandler(score.model)
    with BeamTestPipeline() as p:
        out = p | score
        assert_that(out["rows"], equal_to([]), label="rows")
        assert_that(out["errors"] | beam.Map(lambda e: (os.path.basename(e["path"]), e["reason"].split(": ", 1)[1])),
                    equal_to([(f"0{i}.png", "the model refused its batch (ValueError: simulated model failure)")
                              for i in range(3)]), label="errors")


def test_model_that_is_not_an_exported_version_is_refused(version, trained_detector, tmp_path, capsys):
    trained_detector.save(str(tmp_path / "det"))
    model_dir = os.path.dirname(version)
    uncalibrated = tmp_path / "m" / "1"
    os.makedirs(uncalibrated / "assets.extra")
    (uncalibrated / "saved_model.pb").write_bytes(open(os.path.join(version, "saved_model.pb"), "rb").read())
    info = json.load(open(os.path.join(version, "assets.extra", "model_info.json")))
    (uncalibrated / "assets.extra" / "model_info.json").write_text(json.dumps({**info, "threshold": None}))
    cases = {str(tmp_path / "det"): "a detector directory, not an exported version",
             model_dir: "a model directory with versions 1; pass one version folder",
             str(tmp_path / "missing"): "no such path",
             str(uncalibrated): "no calibrated threshold"}
    for path, expected in cases.items():
        assert main(["beam-score", "--model", path, "--data", str(tmp_path), "--output", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"fanogan beam-score: error: {path}: ") and expected in err and "\n" not in err
        with pytest.raises(ExportedModelError, match=expected):
            read_export(path)
    with pytest.raises(SystemExit) as exit_info:  # only beam-score passes unknown options on
        main(["info", "det", "--direct_num_workers", "2"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --direct_num_workers 2" in capsys.readouterr().err


def test_prism_runner(version, images, reference, tmp_path, capsys):
    """The PrismRunner, where its Go binary can be had (cached, or downloaded from GitHub)."""
    out = str(tmp_path / "s")
    code = main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--runner", "PrismRunner"])
    err = capsys.readouterr().err
    if code == 1 and "Unable to fetch remote prism binary" in err:
        pytest.skip("PrismRunner needs its Go binary, downloaded from GitHub on first use, and this machine has "
                    f"no network: {err.strip().splitlines()[-1]}")
    assert code == 0, err
    assert_same_rows(read_shards(out), [r for r in reference if "/png/" in r["path"]])
