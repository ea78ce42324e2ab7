"""Where izi_f loses to the critic-only score: is it the weight kappa of the feature term?

The anomaly score is ``A = A_R + kappa * A_D`` (image residual + critic-feature residual) with
the paper's ``kappa = 1``. When the two terms live on different scales, one of them decides
the ranking, and ``A`` can rank worse than ``A_D`` alone (Fashion-MNIST in BENCHMARKS.md). This
script loads the izi_f detector that ``benchmarks/quality.py`` saved for a data set
(``<out>/<name>_detector``, same seed and split), scores the same held-out normal images and
test set once, and reports the AUROC of:

- ``kappa = 1`` (the trained and shipped score: the quality table's izi_f row);
- ``kappa_balanced = std(A_R) / std(A_D)`` on the held-out **normal** images: both terms get
  the same spread on normal data. No test label is used to choose it;
- ``A_R`` alone and ``A_D`` alone (``kappa`` -> 0 and -> infinity).

For diagnosis only, it also prints AUROC over a kappa grid on the test set: that curve uses
test labels and is never a result (no figure of the quality table is picked from it). The
encoder was trained with ``kappa = 1`` in the izi_f loss; only the scoring weight changes.

    python benchmarks/quality.py --datasets fashion_mnist   # writes quality_output/fashion_mnist_detector
    python benchmarks/kappa.py --datasets fashion_mnist --record
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GRID = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FPR = 0.05


def analyse(name: str, args) -> dict:
    from quality import Scorer, load  # the same loaders, seed and split as the quality table

    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation import bootstrap_auroc, image_metrics, threshold_at_fpr

    path = os.path.join(args.out, f"{name}_detector")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is missing: run `python benchmarks/quality.py --datasets {name}` first")
    t0 = time.time()
    det = FAnoGAN.load(path)
    data, _ = load(name, argparse.Namespace(**{**vars(args), "image_size": det.config.model.image_size}))
    scorer = Scorer(data)
    test = det.score(data["test_images"], batch_size=256)
    hold = det.score(data["holdout"], batch_size=256)
    r_t, d_t = test[sig.RESIDUAL_SCORE], test[sig.FEATURE_SCORE]
    r_h, d_h = hold[sig.RESIDUAL_SCORE], hold[sig.FEATURE_SCORE]
    trained_kappa = det.config.encoder.kappa
    balanced = float(np.std(r_h) / max(np.std(d_h), 1e-12))

    def row(label, t_scores, h_scores):
        s = scorer.test(t_scores)
        m = image_metrics(scorer.labels, s, threshold_at_fpr(scorer.holdout(h_scores), FPR),
                          f"normal_fpr: {FPR} on held-out normal images")
        m["auroc_ci95"] = list(bootstrap_auroc(scorer.labels, s, 1000, seed=args.seed))
        print(f"[{name}] {label:<34} AUROC {m['auroc']:.4f} ({m['auroc_ci95'][0]:.3f}-{m['auroc_ci95'][1]:.3f}) "
              f"F1 {m['f1']:.4f}", flush=True)
        return m

    rows = {
        f"kappa = {trained_kappa:g} (trained, shipped)": row("kappa trained", r_t + trained_kappa * d_t,
                                                           r_h + trained_kappa * d_h),
        f"kappa_balanced = {balanced:.3g} (normal hold-out)": row("kappa balanced on hold-out", r_t + balanced * d_t,
                                                                  r_h + balanced * d_h),
        "A_R only (kappa = 0)": row("A_R only", r_t, r_h),
        "A_D only (kappa = inf)": row("A_D only", d_t, d_h),
    }
    from sklearn.metrics import roc_auc_score

    grid = {k: float(roc_auc_score(scorer.labels, scorer.test(r_t + k * d_t))) for k in GRID}
    print(f"[{name}] diagnosis only (test labels): AUROC by kappa "
          + ", ".join(f"{k:g}: {v:.4f}" for k, v in grid.items()), flush=True)
    return {"dataset": name, "rows": rows, "kappa_balanced": balanced, "trained_kappa": trained_kappa,
            "holdout": {"A_R_mean": float(r_h.mean()), "A_R_std": float(r_h.std()),
                        "A_D_mean": float(d_h.mean()), "A_D_std": float(d_h.std())},
            "diagnostic_grid_auroc": grid, "n_holdout": int(len(r_h)), "n_test_items": int(len(scorer.labels)),
            "detector": path, "wall_s": time.time() - t0}


def markdown(results: list[dict], command: str) -> str:
    from _report import machine

    lines = ["## Quality: kappa (why izi_f loses where it does)", "",
             f"Command: `{command}`. Machine: {machine()}. Detectors: the izi_f detectors saved by the quality "
             "runs above (same seed and split). `kappa_balanced = std(A_R) / std(A_D)` on the held-out **normal** "
             "images, so both terms have the same spread on normal data; no test label chooses it. The encoder was "
             f"trained with kappa = 1; only the scoring weight changes. Thresholds at {FPR:.0%} FPR on the held-out "
             "normal images. One run.", "",
             "| data set | score | AUROC (95% CI) | precision | sensitivity | specificity | F1 |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for label, m in r["rows"].items():
            lines.append(f"| {r['dataset']} | {label} | {m['auroc']:.4f} ({m['auroc_ci95'][0]:.3f}–"
                         f"{m['auroc_ci95'][1]:.3f}) | {m['precision']:.4f} | {m['sensitivity']:.4f} | "
                         f"{m['specificity']:.4f} | {m['f1']:.4f} |")
    lines += ["", "Held-out normal spread of the two terms (kappa = 1): "
              + "; ".join(f"{r['dataset']}: std A_R {r['holdout']['A_R_std']:.3g}, std A_D {r['holdout']['A_D_std']:.3g}"
                          for r in results) + ".", "",
              "Diagnosis only — AUROC on the test set over a kappa grid (uses test labels; not a result, nothing is "
              "chosen from it): "
              + "; ".join(f"{r['dataset']}: " + ", ".join(f"{float(k):g} → {v:.3f}"
                                                          for k, v in r["diagnostic_grid_auroc"].items())
                          for r in results) + "."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="elpv,fashion_mnist,magnetic_tile,oct")
    p.add_argument("--out", default="quality_output", help="where quality.py saved its detectors")
    p.add_argument("--fmnist-class", type=int, default=0)
    p.add_argument("--oct-stride", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--record", action="store_true", help="write the quality-kappa section of BENCHMARKS.md")
    args = p.parse_args(argv)
    results = []
    for name in args.datasets.split(","):
        try:
            results.append(analyse(name, args))
        except FileNotFoundError as e:
            print(f"[{name}] skipped: {e}", flush=True)
    with open(os.path.join(args.out, "kappa.json"), "w") as f:
        json.dump(results, f, indent=2, default=float)
    if args.record and results:
        from _report import write_section

        command = "python benchmarks/kappa.py --datasets " + ",".join(r["dataset"] for r in results) + " --record"
        write_section("quality-kappa", markdown(results, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
