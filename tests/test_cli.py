import csv
import json

import numpy as np
from PIL import Image

from tf_fanogan.cli import main
from helpers import blobs

TINY = ["--set", "model.image_size=16", "--set", "model.dim=8", "--set", "model.latent_dim=16",
        "--set", "gan.epochs=1", "--set", "gan.batch_size=4", "--set", "encoder.epochs=1",
        "--set", "encoder.batch_size=4", "--set", "gan.critic_steps=2", "--quiet",
        "--set", "gan.jit_compile=false", "--set", "encoder.jit_compile=false"]  # XLA (the default) costs ~25 s of compiling per run


def folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"img_{i:03d}.png")
    return str(path)


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


def test_bad_input_exits_non_zero_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "d"), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no image files" in err
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "d"), "--set", "gan.nope=1"]) == 1
    assert "unknown key" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing")]) == 1
    assert "not a detector directory" in capsys.readouterr().err


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


def test_score_alpha_decides_on_p_values(trained_detector, tmp_path):
    det = trained_detector.save(str(tmp_path / "det"))
    test = folder(tmp_path / "test", blobs(6, seed=3))
    out_csv = str(tmp_path / "s.csv")
    assert main(["score", det, "--data", test, "--output", out_csv, "--alpha", "0.5"]) == 0
    rows = list(csv.DictReader(open(out_csv)))
    assert [r["is_anomaly"] == "true" for r in rows] == [float(r["p_value"]) <= 0.5 for r in rows]
