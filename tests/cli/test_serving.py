"""`fanogan export`, `serve` and `query`: the README's path end to end, the shipped configs."""

import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from helpers import REPO, blobs
from helpers.serving import images01, publish
from tf_fanogan.serving.client import FAnoGANClient
from tf_fanogan.serving.server import ModelServer


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
    repo = REPO
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

        # Publish version 2 (a copy of 1, renamed in as export does) and promote it by editing
        # the config file the server re-reads.
        publish(os.path.join(base, "fanogan", "1"), base, "fanogan")
        # Replaced atomically, as a ConfigMap update or `mv` does: the server polls the file and
        # would otherwise read it half written (an entry cut before its labels is a valid config).
        staged = tmp_path / "models.config.new"
        staged.write_text(template.format(base=os.path.join(base, "fanogan"), versions="versions: 1 versions: 2",
                                          stable=2))
        os.replace(staged, config)
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


def test_the_shipped_configs_serve_locally_or_name_the_missing_base_path(trained_export, tmp_path, capsys):
    from tf_fanogan.cli import main
    from tf_fanogan.serving.manager import entries_from_flags

    repo = REPO
    assert main(["serve", "--model_config_file", os.path.join(repo, "serving", "models.config"), "--port", "0",
                 "--rest_api_port", "-1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "base path /models/fanogan does not exist" in err and "fix base_path" in err, err
    (tmp_path / "serving").mkdir()
    shutil.copy(os.path.join(repo, "serving", "models.local.config"), tmp_path / "serving")
    publish(trained_export, str(tmp_path / "saved_models"), "fanogan", warmup=False)
    entries = entries_from_flags(model_config_file=str(tmp_path / "serving" / "models.local.config"))
    assert entries[0].base_path == str(tmp_path / "saved_models" / "fanogan")  # relative to the config file
    with ModelServer(entries, port=0, poll_interval=0, warmup=False) as srv:
        assert srv.manager.wait_for("fanogan", 60)
        with FAnoGANClient(srv.target, "fanogan", version_label="stable", timeout=30) as c:
            assert c.score(np.zeros((1, 16, 16, 1), np.float32))["anomaly_score"].shape == (1,)
