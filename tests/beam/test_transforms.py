"""`ScoreImages`: bad files go to the dead letters, the rest is scored; alpha dropped as in process."""

import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("apache_beam", reason="the Beam tests need the beam extra: pip install 'tf-fanogan[beam]'")

from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from helpers import blobs  # noqa: E402
from helpers.beam import read_shards  # noqa: E402
from tf_fanogan.beam import ScoreImages  # noqa: E402

from tf_fanogan.cli import main  # noqa: E402


def test_bad_files_go_to_the_dead_letters_and_the_rest_is_scored(version, images, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"\x89PNG garbage")
    Image.fromarray(np.full((4, 4), 90, np.uint8)).save(bad / "tiny.png")  # smaller: up-sampled (data.small_images)
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
    assert "scored 6 images" in capsys.readouterr().out
    rows = read_shards(out)
    assert sorted(os.path.basename(r["path"]) for r in rows) == ["00.png", "08.jpg", "09.jpg", "10.jpg", "11.jpg",
                                                                  "tiny.png"]
    errors = {os.path.basename(r["path"]): r["reason"] for r in read_shards(f"{out}-errors")}
    assert set(errors) == {"broken.png", "colour.png", "notes.txt", "nan.tif", "missing.png"}
    assert "NaN or inf" in errors["nan.tif"]
    assert "cannot read image" in errors["broken.png"]
    assert "a colour image (its channels differ" in errors["colour.png"]
    assert "not an image file" in errors["notes.txt"]
    assert "missing.png: cannot read" in errors["missing.png"]
    assert all(reason.startswith(str(tmp_path)) for reason in errors.values())  # each reason names its file


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
