"""Fashion-MNIST one-class, all 10 classes: f-AnoGAN (izi_f) and its two terms per normal class.

The standard protocol (``tf_fanogan.datasets.load_fashion_mnist``): for each class c, train on
the training images of c (10% of them held out for calibration), test on the whole 10 000-image
test set with c normal and the nine other classes anomalous. Per class one WGAN-GP and one izi_f
encoder with the settings of ``benchmarks/quality.py`` (32×32 zero-padded, width 16, latent 128,
batch 32, ``--gan-iters`` generator updates, ``--encoder-iters`` encoder updates, seed 0).
Reported per class: AUROC (bootstrap 95% CI) of the anomaly score ``A = A_R + kappa * A_D``
(kappa = 1), of ``A_R`` and of ``A_D`` alone, and the paper's threshold metrics for ``A`` at 5%
FPR on the held-out normal images. The six-method table for class 0 is in the
``quality-fashion_mnist`` section.

Each finished class is saved to ``<out>/fmnist_classes.json`` at once; a rerun skips the classes
already there (so an interrupted run resumes), and ``--record`` rewrites the BENCHMARKS.md
section from all classes done so far.

    python benchmarks/fmnist_classes.py --record                 # about 6 min per class on 2 cores
    python benchmarks/fmnist_classes.py --classes 3,4 --record   # some classes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality import add_training_args  # noqa: E402  (the same model and training length options)

FPR = 0.05


def run_class(c: int, args) -> dict:
    from quality import training_config

    from tf_fanogan import FAnoGAN
    from tf_fanogan import datasets
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation import bootstrap_auroc, image_metrics, threshold_at_fpr

    t0 = time.time()
    d = datasets.load_fashion_mnist(c, seed=args.seed, pad_to=args.image_size)
    n_train = len(d["train"])
    cfg = training_config(n_train, args)
    det = FAnoGAN(cfg).fit(d["train"], verbose=0)
    train_s = time.time() - t0
    test = det.score(d["test_images"], batch_size=256)
    hold = det.score(d["holdout"], batch_size=256)
    labels = d["test_labels"]
    out = {"class": c, "class_name": d["class_name"], "n_train": n_train, "n_holdout": len(d["holdout"]),
           "gan_epochs": cfg.gan.epochs, "encoder_epochs": cfg.encoder.epochs, "train_s": train_s}
    for key, name in ((sig.ANOMALY_SCORE, "A"), (sig.RESIDUAL_SCORE, "A_R"), (sig.FEATURE_SCORE, "A_D")):
        m = image_metrics(labels, test[key], threshold_at_fpr(hold[key], FPR),
                          f"normal_fpr: {FPR} on held-out normal images")
        m["auroc_ci95"] = list(bootstrap_auroc(labels, test[key], 1000, seed=args.seed))
        out[name] = m
    out["wall_s"] = time.time() - t0
    print(f"[class {c} {d['class_name']}] AUROC A {out['A']['auroc']:.4f}, A_R {out['A_R']['auroc']:.4f}, "
          f"A_D {out['A_D']['auroc']:.4f} ({out['wall_s'] / 60:.1f} min)", flush=True)
    return out


def markdown(done: dict, settings: dict, command: str) -> str:
    from _report import machine

    rows = [done[k] for k in sorted(done, key=int)]
    r0 = rows[0]
    lines = ["## Quality: Fashion-MNIST, every class", "",
             f"Command: `{command}`. Machine: {machine()}. Per normal class: model {settings['image_size']}×"
             f"{settings['image_size']}×1 (28×28 zero-padded), width {settings['dim']}, latent 128, batch 32, seed "
             f"{settings['seed']}; WGAN-GP {r0['gan_epochs']} epochs and izi_f encoder {r0['encoder_epochs']} epochs on "
             f"the class's {r0['n_train']} training images; threshold at {FPR:.0%} FPR on its {r0['n_holdout']} "
             "held-out training images; test = the whole 10 000-image test set (1 000 normal). One run per class; "
             f"{len(rows)} of 10 classes done.", "",
             "| normal class | A = A_R + A_D: AUROC (95% CI) | A_R AUROC | A_D AUROC | precision | sensitivity | "
             "specificity | F1 | minutes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["A"]
        best = max(("A", "A_R", "A_D"), key=lambda k: r[k]["auroc"])
        cell = {k: (f"**{r[k]['auroc']:.4f}**" if k == best else f"{r[k]['auroc']:.4f}") for k in ("A", "A_R", "A_D")}
        lines.append(f"| {r['class']} {r['class_name']} | {cell['A']} ({a['auroc_ci95'][0]:.3f}–{a['auroc_ci95'][1]:.3f})"
                     f" | {cell['A_R']} | {cell['A_D']} | {a['precision']:.4f} | {a['sensitivity']:.4f} | "
                     f"{a['specificity']:.4f} | {a['f1']:.4f} | {r['wall_s'] / 60:.1f} |")
    means = {k: float(np.mean([r[k]["auroc"] for r in rows])) for k in ("A", "A_R", "A_D")}
    wins = {k: sum(max(("A", "A_R", "A_D"), key=lambda j: r[j]["auroc"]) == k for r in rows) for k in means}
    lines += ["", f"Mean AUROC over the {len(rows)} classes: A {means['A']:.4f}, A_R {means['A_R']:.4f}, "
              f"A_D {means['A_D']:.4f}. Best of the three per class: A {wins['A']}, A_R {wins['A_R']}, "
              f"A_D {wins['A_D']} times."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    add_training_args(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="quality_output")
    p.add_argument("--record", action="store_true", help="write the quality-fashion_mnist-classes section")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "fmnist_classes.json")
    settings = {k: v for k, v in vars(args).items() if k not in ("classes", "out", "record")}
    done = {}
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("settings") == settings:
            done = saved["classes"]
            print(f"resuming: classes {sorted(done, key=int)} already in {path}", flush=True)
    for c in (int(x) for x in args.classes.split(",")):
        if str(c) in done:
            continue
        try:
            done[str(c)] = run_class(c, args)
        except FileNotFoundError as e:
            print(f"skipped: {e}", flush=True)
            return 0
        with open(path + ".tmp", "w") as f:
            json.dump({"settings": settings, "classes": done}, f, indent=2, default=float)
        os.replace(path + ".tmp", path)
        if args.record:
            from _report import write_section

            changed = [f"--{k.replace('_', '-')} {v}" for k, v in settings.items() if v != p.get_default(k)]
            write_section("quality-fashion_mnist-classes",
                          markdown(done, settings, " ".join(["python benchmarks/fmnist_classes.py", *changed, "--record"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
