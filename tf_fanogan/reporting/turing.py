"""Visual Turing test: can experts tell the generator's samples from real normal images?

Schlegl et al. (2019) showed two retina experts real and generated normal OCT patches; their
mean accuracy was 0.44, i.e. no better than chance. :func:`make_test` writes a shuffled,
numbered set of N real and N generated images (one PNG each plus a numbered sheet), a blank
answer file for raters and a separate answer key; :func:`score_test` scores one or more
raters' answer files: accuracy per rater and Cohen's kappa between every pair of raters.
"""

from __future__ import annotations

import csv
import itertools
import os

import numpy as np

from tf_fanogan.models import latent
from tf_fanogan.scoring import forward as scoring
from tf_fanogan.utils.atomic import write_file_atomically

REAL, GENERATED = "real", "generated"
_ALIASES = {"real": REAL, "r": REAL, "0": REAL, "generated": GENERATED, "g": GENERATED, "fake": GENERATED,
            "f": GENERATED, "1": GENERATED}
KEY_FILE, ANSWERS_FILE, SHEET_FILE = "answer_key.csv", "answers_template.csv", "sheet.png"


def make_test(detector, real_images, n: int, out_dir: str, seed: int = 0) -> dict:
    """Writes ``images/NNN.png``, ``sheet.png``, ``answers_template.csv`` and ``answer_key.csv``.

    Args:
        detector: A detector with a trained generator.
        real_images: Real **normal** images (any input accepted by the detector), at least ``n``.
        n: Real and generated images each (2n in the test).
        out_dir: Output folder; give the raters everything but ``answer_key.csv``.
        seed: Chooses the real images, the z and the order.
    """
    import tensorflow as tf
    from PIL import Image

    real = detector.prepare(real_images)
    if n < 1 or len(real) < n:
        raise ValueError(f"need n >= 1 and at least n real images; got n={n} and {len(real)} images")
    rng = np.random.default_rng(seed)
    real = real[rng.choice(len(real), n, replace=False)]
    z = latent.sample_numpy(rng, (n, detector.generator.input_shape[-1]), detector.config.model.latent_prior)
    fake = scoring.to_input_units(detector.generator(tf.constant(z), training=False)).numpy()
    images = np.concatenate([real, fake])
    truth = [REAL] * n + [GENERATED] * n
    order = rng.permutation(2 * n)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    width = len(str(2 * n))
    ids = [f"{i + 1:0{width}d}" for i in range(2 * n)]
    for ident, idx in zip(ids, order):
        arr = np.round(np.clip(images[idx], 0, 1) * 255).astype(np.uint8)
        Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(os.path.join(out_dir, "images", f"{ident}.png"))
    _sheet(images[order], ids, os.path.join(out_dir, SHEET_FILE))

    def rows(with_truth):
        def write(f):
            w = csv.writer(f)
            w.writerow(["id", "truth" if with_truth else "answer"])
            for ident, idx in zip(ids, order):
                w.writerow([ident, truth[idx] if with_truth else ""])
        return write

    write_file_atomically(os.path.join(out_dir, ANSWERS_FILE), rows(False), newline="")
    write_file_atomically(os.path.join(out_dir, KEY_FILE), rows(True), newline="")
    return {"n_images": 2 * n, "out_dir": out_dir, "key": os.path.join(out_dir, KEY_FILE)}


def _sheet(images, ids, path):
    from tf_fanogan.reporting.visualize import _figure, _save

    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    plt, fig = _figure(1.5 * cols, 1.6 * rows)
    for i, (img, ident) in enumerate(zip(images, ids)):
        ax = fig.add_subplot(rows, cols, i + 1)
        g = img[..., 0] if img.shape[-1] == 1 else img
        ax.imshow(g, cmap="gray" if g.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(ident, fontsize=8)
        ax.set_axis_off()
    _save(plt, fig, path)


def _read(path: str, column: str) -> dict[str, str]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames or column not in reader.fieldnames:
            raise ValueError(f"{path}: expected columns id,{column}")
        out = {}
        for line, row in enumerate(reader, start=2):
            value = (row[column] or "").strip().lower()
            if value not in _ALIASES:
                raise ValueError(f"{path}, line {line}: {column} {row[column]!r} is not 'real' or 'generated'")
            out[row["id"].strip()] = _ALIASES[value]
    return out


def score_test(key_path: str, answer_paths) -> dict:
    """Accuracy of each rater against the key, and Cohen's kappa between each pair of raters.

    Every id of the key must be answered in every file (an unanswered image is an error
    naming the file and the id, not a silent skip).
    """
    from sklearn.metrics import cohen_kappa_score

    key = _read(key_path, "truth")
    raters = {}
    for path in answer_paths:
        answers = _read(path, "answer")
        missing = sorted(set(key) - set(answers))
        extra = sorted(set(answers) - set(key))
        if missing or extra:
            raise ValueError(f"{path}: " + (f"no answer for id {missing[0]}" if missing else f"unknown id {extra[0]}")
                             + f" ({len(missing)} missing, {len(extra)} unknown)")
        ids = sorted(key)
        truth = np.array([key[i] == GENERATED for i in ids])
        said = np.array([answers[i] == GENERATED for i in ids])
        raters[os.path.basename(path)] = {
            "accuracy": float(np.mean(truth == said)),
            "generated_called_real": float(np.mean(~said[truth])) if truth.any() else None,
            "real_called_generated": float(np.mean(said[~truth])) if (~truth).any() else None,
            "_answers": said,
        }
    agreement = {}
    for (a, ra), (b, rb) in itertools.combinations(raters.items(), 2):
        same = np.mean(ra["_answers"] == rb["_answers"])
        kappa = cohen_kappa_score(ra["_answers"], rb["_answers"]) if len(set(ra["_answers"]) | set(rb["_answers"])) > 1 else 1.0
        agreement[f"{a} vs {b}"] = {"cohen_kappa": float(kappa), "raw_agreement": float(same)}
    for r in raters.values():
        del r["_answers"]
    return {"n_images": len(key), "raters": raters,
            "mean_accuracy": float(np.mean([r["accuracy"] for r in raters.values()])),
            "agreement": agreement,
            "note": "0.5 is chance; the paper's two retina experts reached a mean accuracy of 0.44"}
