"""`SavedModelScoreHandler` and `read_export`: failed model batches, what is not an exported version."""

import json
import os

import pytest

pytest.importorskip("apache_beam", reason="the Beam tests need the beam extra: pip install 'tf-fanogan[beam]'")

from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline  # noqa: E402
from apache_beam.testing.util import assert_that, equal_to  # noqa: E402

from tf_fanogan.beam import ScoreImages, read_export  # noqa: E402
import apache_beam as beam  # noqa: E402

from tf_fanogan.beam.handler import ExportedModelError, SavedModelScoreHandler  # noqa: E402
from tf_fanogan.cli import main  # noqa: E402


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
