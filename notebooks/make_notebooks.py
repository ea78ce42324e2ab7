"""Writes the tutorial notebooks (outputs stripped) from the cells below: python notebooks/make_notebooks.py

Every notebook reads ``FANOGAN_FAST=1`` (set by tests/test_notebooks.py in CI) to shrink
image sizes, data and training steps so that it runs top to bottom in about a minute.
"""

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))

QUICKSTART = [
    new_markdown_cell("""# 01 — Quickstart: f-AnoGAN on real solar cells (ELPV)

Train f-AnoGAN on **normal** electroluminescence images of solar cells only, calibrate a threshold on
held-out normal cells, score defective and normal test cells, and look at residual maps and the ROC.
The data comes from the `elpv-dataset` package (installed by `make install` / `pip install -e .[dev]`).

Set `FANOGAN_FAST=1` for a one-minute run (what CI does); unset it for a real run (about 10 minutes on 2 CPU cores)."""),
    new_code_cell("""import os
import numpy as np
from IPython.display import Image, display

from tf_fanogan import FAnoGAN, FAnoGANConfig, ModelConfig, GANTrainingConfig, EncoderTrainingConfig
from tf_fanogan.reporting import visualize
from tf_fanogan.paper.datasets import load_elpv
from tf_fanogan.evaluation.metrics import image_metrics

FAST = os.environ.get("FANOGAN_FAST") == "1"
OUT = "quickstart_output"
os.makedirs(OUT, exist_ok=True)"""),
    new_code_cell("""data = load_elpv(seed=0)
train, holdout = data["train"], data["holdout"]
test_images, test_labels = data["test_images"], data["test_labels"]
if FAST:  # a small, still class-balanced slice
    train, holdout = train[:128], holdout[:64]
    keep = np.r_[np.where(test_labels == 0)[0][:32], np.where(test_labels == 1)[0][:32]]
    test_images, test_labels = test_images[keep], test_labels[keep]
print(f"train {len(train)} normal cells, hold-out {len(holdout)}, test {len(test_images)} "
      f"({test_labels.sum()} defective)")"""),
    new_markdown_cell("""## Train both stages
Stage 1 is a WGAN-GP (5 critic updates per generator update, gradient penalty 10); stage 2 trains the
encoder with the izi_f loss while G and the critic stay frozen. WGAN losses are signed: a negative
`c_loss` means the critic separates real from generated images."""),
    new_code_cell("""config = FAnoGANConfig(  # the CPU recipe of `make demo` (tf_fanogan.recipes.cpu_recipe); budgets in updates
    model=ModelConfig(image_size=16 if FAST else 32, dim=8 if FAST else 16, latent_dim=128, latent_prior="normal"),
    # XLA (jit_compile="auto", the default) pays ~25 s of compiling once; fast mode skips it.
    gan=GANTrainingConfig(iterations=2 if FAST else 1000, batch_size=16, learning_rate=2e-4, jit_compile=not FAST),
    encoder=EncoderTrainingConfig(iterations=2 if FAST else 1000, batch_size=16 if FAST else 32, jit_compile=not FAST),
    seed=0)
detector = FAnoGAN(config)
detector.fit(train, verbose=0 if FAST else "auto")
detector.calibrate(holdout, fpr=0.05)
print("threshold", detector.threshold_)"""),
    new_markdown_cell("## Score, measure, look"),
    new_code_cell("""scores = detector.score(test_images)
m = image_metrics(test_labels, scores["anomaly_score"], threshold=detector.threshold_,
                  threshold_source="5% FPR on normal hold-out")
print({k: round(v, 4) for k, v in m.items() if isinstance(v, float)})
display(Image(visualize.roc_curve_png(test_labels, scores["anomaly_score"], f"{OUT}/roc.png")))
display(Image(visualize.score_histogram_png(test_labels, scores["anomaly_score"], f"{OUT}/hist.png",
                                            threshold=detector.threshold_)))"""),
    new_code_cell("""# Residual maps |x - G(E(x))| on one colour scale for the whole data set (from normal hold-out maps),
# so that normal cells do not all look "hot".
vmax = visualize.map_scale(detector.residual_maps(holdout)["residual_map"])
worst = np.argsort(-scores["anomaly_score"])[:6]
maps = detector.residual_maps(test_images[worst])
display(Image(visualize.triptychs_png(detector.prepare(test_images[worst]), maps["reconstruction"],
                                      maps["residual_map"], f"{OUT}/triptychs.png", vmax=vmax)))"""),
    new_code_cell("""detector.save(f"{OUT}/detector")
same = FAnoGAN.load(f"{OUT}/detector")
diff = np.abs(same.score(test_images)["anomaly_score"] - scores["anomaly_score"]).max()
assert diff <= 1e-6 * scores["anomaly_score"].max(), diff
print(f"saved and reloaded: same scores (max |difference| {diff:.1e})")"""),
]

OCT = [
    new_markdown_cell("""# 02 — The paper's setting: OCT B-scans

Schlegl et al. trained f-AnoGAN on 64×64 patches inside the retina of B-scans from **normal** patients
and scored B-scans of diseased eyes. This notebook does that on the real OCT B-scans in
`../shared/data/oct_kermany_tiny/` (Kermany et al. 2018): patches inside a retina mask, training on normal
patients only (split by patient, never by scan), B-scan scores from the patch scores, and stitched
heatmaps over diseased scans. Where the folder is absent the notebook says so and stops early."""),
    new_code_cell("""import os
import numpy as np
from IPython.display import Image, display

from tf_fanogan import FAnoGAN, FAnoGANConfig, ModelConfig, GANTrainingConfig, EncoderTrainingConfig
from tf_fanogan.paper import oct
from tf_fanogan.reporting import visualize
from tf_fanogan.paper.datasets import load_oct_bscans, split_oct_by_patient, shared_data_dir
from tf_fanogan.evaluation.metrics import image_metrics

FAST = os.environ.get("FANOGAN_FAST") == "1"
OUT = "oct_output"
os.makedirs(OUT, exist_ok=True)
root = os.path.join(shared_data_dir(), "oct_kermany_tiny")
HAVE_DATA = os.path.isdir(root)
print(root, "found" if HAVE_DATA else "ABSENT: this notebook needs the shared OCT B-scans (see ../shared/data/README.md)")"""),
    new_code_cell("""if HAVE_DATA:
    scans = load_oct_bscans(root)
    split = split_oct_by_patient(scans, seed=0)
    print({k: len(v) for k, v in split.items()}, "scans; classes in test:",
          sorted({s["class"] for s in split["test"]}))
    patches = lambda group: np.concatenate([oct.bscan_patches(s["image"])[0] for s in group])
    train, holdout = patches(split["train"]), patches(split["holdout"])
    if FAST:
        train, holdout = train[:96], holdout[:48]
    print(f"{len(train)} training patches, {len(holdout)} hold-out patches (64x64, inside the retina)")"""),
    new_code_cell("""if HAVE_DATA:
    config = FAnoGANConfig(
        model=ModelConfig(image_size=16 if FAST else 32, dim=8 if FAST else 16, latent_dim=128),
        gan=GANTrainingConfig(epochs=1 if FAST else 75, batch_size=16 if FAST else 32, jit_compile=not FAST),
        encoder=EncoderTrainingConfig(epochs=1 if FAST else 40, batch_size=16 if FAST else 32,
                                      jit_compile=not FAST), seed=0)
    detector = FAnoGAN(config).fit(train, verbose=0).calibrate(holdout, fpr=0.05)"""),
    new_markdown_cell("""## B-scan scores
A B-scan's score is the mean of its 5 highest patch scores; the stitched heatmap averages the
patches' residual maps where they overlap."""),
    new_code_cell("""if HAVE_DATA:
    test = split["test"]
    if FAST:
        test = [s for s in test if s["label"] == 0][:3] + [s for s in test if s["label"] == 1][:3]
    results = [oct.score_bscan(detector, s["image"], heatmap=False) for s in test]
    labels = np.array([s["label"] for s in test]); b_scores = np.array([r["top_k_mean"] for r in results])
    print("B-scan AUROC", round(image_metrics(labels, b_scores)["auroc"], 4), f"on {len(test)} scans")"""),
    new_code_cell("""if HAVE_DATA:
    vmax = visualize.map_scale(detector.residual_maps(holdout)["residual_map"])
    for s in [t for t in test if t["label"] == 1][:2]:
        r = oct.score_bscan(detector, s["image"])
        path = visualize.heatmap_png(s["image"], r["heatmap"], f"{OUT}/{s['class']}-{s['patient']}.png", vmax=vmax,
                                     title=f"{s['class']} (score {r['top_k_mean']:.4f})")
        display(Image(path))"""),
]

SERVING = [
    new_markdown_cell("""# 03 — TF Serving: export, publish, serve, query, promote a canary

A detector is exported as a SavedModel in TF Serving's layout (`saved_models/<model>/<version>/`,
published atomically) with the signatures `score` (= `serving_default`), `residual_map`, `encode`,
`generate`, `score_uint8` and `score_image_bytes`. In production the real `tensorflow_model_server`
serves it (see `serving/`); here the package's own server speaks the same gRPC and REST protocol, and
the same client code works against both."""),
    new_code_cell("""import json, os, tempfile
import numpy as np

from tf_fanogan import FAnoGAN, FAnoGANConfig, ModelConfig, GANTrainingConfig, EncoderTrainingConfig
from tf_fanogan.serving.export import export_detector
from tf_fanogan.serving.client import FAnoGANClient, RestClient
from tf_fanogan.serving.manager import ModelEntry
from tf_fanogan.serving.server import ModelServer

FAST = os.environ.get("FANOGAN_FAST") == "1"
rng = np.random.default_rng(0)
normal = (rng.random((96, 16, 16)) * 60 + 100).astype(np.uint8)   # stand-in normal images
config = FAnoGANConfig(model=ModelConfig(image_size=16, dim=8, latent_dim=16),
                       gan=GANTrainingConfig(epochs=1 if FAST else 5, batch_size=8, jit_compile=not FAST),
                       encoder=EncoderTrainingConfig(epochs=1 if FAST else 5, batch_size=8, jit_compile=not FAST),
                       seed=0)
detector = FAnoGAN(config).fit(normal[:64], verbose=0).calibrate(normal[64:], fpr=0.05)"""),
    new_code_cell("""base = tempfile.mkdtemp(prefix="saved_models_")
v1 = export_detector(detector, base, model_name="fanogan")
print(v1); print(sorted(os.listdir(v1)), sorted(os.listdir(os.path.join(v1, "assets.extra"))))
print(json.load(open(os.path.join(v1, "assets.extra", "model_info.json")))["signatures"])"""),
    new_code_cell("""server = ModelServer([ModelEntry("fanogan", os.path.join(base, "fanogan"))], port=0, rest_port=0)
server.start()
grpc_client = FAnoGANClient(f"127.0.0.1:{server.port}", "fanogan")
grpc_client.wait_until_available()
served = grpc_client.score(normal[:8])
local = detector.score(normal[:8])
print("served == in-process:", np.allclose(served["anomaly_score"], local["anomaly_score"], rtol=1e-5, atol=1e-6))
rest = RestClient(f"http://127.0.0.1:{server.rest_port}", "fanogan")
print("REST:", rest.score(normal[:2])["anomaly_score"])"""),
    new_markdown_cell("""## Publish a new version and promote it
The server polls the base path: a new integer version folder is loaded and, once it is AVAILABLE, the
latest policy serves it; the old one is unloaded only after that, so no request fails."""),
    new_code_cell("""v2 = export_detector(detector, base, model_name="fanogan")   # e.g. a retrained detector
import time
for _ in range(100):
    if [s["version"] for s in grpc_client.status() if s["state"] == "AVAILABLE"] == [2]:
        break
    time.sleep(0.2)
print(grpc_client.status())
print("now served by version", grpc_client.predict("score", {"images": detector.prepare(normal[:1])},
                                                   return_version=True)[1])"""),
    new_code_cell("""grpc_client.close(); server.stop()"""),
]


def write(name, cells):
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    path = os.path.join(HERE, name)
    nbformat.write(nb, path)
    print("wrote", path)


if __name__ == "__main__":
    write("01_quickstart.ipynb", QUICKSTART)
    write("02_oct_bscans.ipynb", OCT)
    write("03_tf_serving.ipynb", SERVING)
