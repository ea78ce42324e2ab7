"""`fanogan train` / `calibrate`: the whole CLI path on a tiny model, the training plan and progress on stderr."""

import csv
import json

import numpy as np

from tf_fanogan.cli import main
from helpers import blobs
from helpers.cli import TINY, folder


def test_images_smaller_than_the_model_train_and_score_with_no_flag(tmp_path, capsys):
    """A 12x12 .npy and a folder of 12x12 PNGs with a 16x16 model: up-sampled (data.small_images)."""
    np.save(tmp_path / "train.npy", blobs(24, size=12, seed=1))
    test = folder(tmp_path / "test", blobs(3, size=12, seed=3))
    det = str(tmp_path / "det")
    assert main(["train", "--data", str(tmp_path / "train.npy"), "--out", det, *TINY]) == 0
    assert main(["calibrate", det, "--data", str(tmp_path / "train.npy"), "--fpr", "0.1"]) == 0
    assert main(["score", det, "--data", test, "--output", str(tmp_path / "s.csv")]) == 0
    assert len(list(csv.DictReader(open(tmp_path / "s.csv")))) == 3
    assert json.load(open(f"{det}/config.json"))["data"]["small_images"] == "upsample"  # recorded with the detector


def test_train_calibrate_score_info(tmp_path, capsys):
    train = folder(tmp_path / "train", blobs(40, seed=1))
    hold = folder(tmp_path / "hold", blobs(10, seed=2))
    test = folder(tmp_path / "test", blobs(5, seed=3))
    det = str(tmp_path / "det")
    assert main(["train", "--data", train, "--out", det, *TINY]) == 0
    assert main(["calibrate", det, "--data", hold, "--fpr", "0.1"]) == 0
    out_csv = str(tmp_path / "scores.csv")
    assert main(["score", det, "--data", test, "--output", out_csv, "--batch-size", "2"]) == 0
    rows = list(csv.DictReader(open(out_csv)))
    assert len(rows) == 5
    assert set(rows[0]) == {"path", "anomaly_score", "residual_score", "feature_score", "z_distance", "p_value",
                            "is_anomaly"}
    assert all(np.isfinite(float(r["anomaly_score"])) for r in rows)
    capsys.readouterr()
    assert main(["info", det]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["threshold"] is not None and info["config"]["model"]["image_size"] == 16

    # --on-error skip: good files scored, bad ones listed with their reason.
    (tmp_path / "test" / "zz_broken.png").write_bytes(b"garbage")
    assert main(["score", det, "--data", test, "--output", out_csv]) == 1
    assert main(["score", det, "--data", test, "--output", out_csv, "--on-error", "skip"]) == 0
    assert len(list(csv.DictReader(open(out_csv)))) == 5
    errors = list(csv.DictReader(open(out_csv + ".errors.csv")))
    assert len(errors) == 1 and "zz_broken.png" in errors[0]["path"]


def test_train_reports_its_plan_and_progress_on_stderr_only(tmp_path, capsys):
    train = folder(tmp_path / "train", blobs(16, seed=1))
    loud = [a for a in TINY if a != "--quiet"]
    assert main(["train", "--data", train, "--out", str(tmp_path / "d"), "--no-tensorboard", *loud]) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1].startswith("saved detector to")
    assert "1/1" not in out and "c_loss" not in out  # Keras' progress bar went to stderr
    plan = next(line for line in err.splitlines() if line.startswith("training: "))
    assert "model 16x16x1, width 8, latent 16 (normal prior)" in plan
    assert "stage 1/2 WGAN-GP: 1 epochs, batch 4" in plan and "stage 2/2 encoder izi_f" in plan and "device:" in plan
    assert "c_loss" in err


def test_calibrate_set_changes_score_settings_only(trained_detector, tmp_path, capsys):
    det = trained_detector.save(str(tmp_path / "det"))
    hold = folder(tmp_path / "hold", blobs(20, seed=2))
    assert main(["calibrate", det, "--data", hold, "--fpr", "0.1", "--set", "scoring.normalize=true",
                 "--set", "scoring.residual_pooling=topk"]) == 0
    out = capsys.readouterr().out
    assert "hold-out std of A_R" in out and "of kappa*A_D" in out
    saved = json.load(open(f"{det}/config.json"))["scoring"]
    assert saved == {"normalize": True, "residual_pooling": "topk", "topk_fraction": 0.01, "method": "fanogan",
                     "memory_size": 8192}
    assert main(["calibrate", det, "--data", hold, "--set", "model.dim=4"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "need training" in err
    assert main(["score", det, "--data", hold, "--output", str(tmp_path / "s.csv"), "--quiet"]) == 0
