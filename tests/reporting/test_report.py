"""`fanogan report`: a self-contained HTML page, rendered in real headless Chromium."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from helpers import blobs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def evaluated(trained_detector, tmp_path_factory):
    from tf_fanogan.cli import main

    root = tmp_path_factory.mktemp("report")
    det = str(root / "det")
    trained_detector.save(det)
    for i, img in enumerate(blobs(10, seed=5)):
        os.makedirs(root / "data" / "normal", exist_ok=True)
        Image.fromarray(img).save(root / "data" / "normal" / f"n{i}.png")
    for i, img in enumerate(blobs(10, seed=6, anomalous=True)):
        os.makedirs(root / "data" / "anomalous", exist_ok=True)
        Image.fromarray(img).save(root / "data" / "anomalous" / f"a{i}.png")
    assert main(["evaluate", det, "--data", str(root / "data"), "--out", str(root / "eval"), "--bootstrap", "50"]) == 0
    out = root / "report.html"
    assert main(["report", det, "--evaluation", str(root / "eval"), "--out", str(out)]) == 0
    return root, out


def test_report_is_self_contained_with_every_section(evaluated):
    _, out = evaluated
    page = out.read_text()
    for section in ("metrics", "plots", "anomalies", "model", "training"):
        assert f'<section id="{section}">' in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6  # ROC, PR, histogram, top anomalies, extremes, training curves
    assert "http://" not in page and "https://" not in page  # nothing fetched from anywhere
    # The page shows the evaluation's own figures and the detector's calibration, not just labels.
    root, _ = evaluated
    import json

    metrics = json.loads((root / "eval" / "metrics.json").read_text())
    text = re.sub(r"<[^>]+>", " ", page)
    assert f"{metrics['auroc']:.4f}" in text and f"{metrics['f1']:.4f}" in text
    t = metrics["threshold"]
    assert (f"{t:.4f}" if abs(t) >= 1e-3 else f"{t:.4g}") in text


def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium, or `make browser`)")
    _, out = evaluated
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={shot}", "--window-size=1200,5000", f"file://{out}"]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    with Image.open(shot) as im:
        page = np.asarray(im.convert("L"), np.float32)
    assert page.shape == (5000, 1200)
    # Rows that are not blank white: text, tables and the six embedded plots draw a tall page.
    inked = (page < 200).any(axis=1)
    assert inked.sum() > 1500, f"only {inked.sum()} rows drawn; the page did not render its sections"
    # The plots themselves rendered: large non-white areas in the lower part of the page.
    assert (page[1000:] < 250).mean() > 0.05


def test_report_without_an_evaluation_names_the_missing_file(trained_detector, tmp_path, capsys):
    from tf_fanogan.cli import main

    det = str(tmp_path / "det")
    trained_detector.save(det)
    assert main(["report", det, "--evaluation", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.html")]) == 1
    assert "metrics.json" in capsys.readouterr().err
