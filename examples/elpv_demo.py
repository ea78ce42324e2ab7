"""`make demo`: f-AnoGAN on real ELPV solar cells, trained on functional cells only.

Trains f-AnoGAN with the CPU recipe (:func:`tf_fanogan.recipes.cpu_recipe`: 32x32, width 16,
1,000 generator and 1,000 encoder updates) on functional cells, calibrates the threshold on
held-out functional cells at 5% FPR, scores held-out functional and defective cells (defect
probability >= 2/3), and prints AUROC, AUPR and the paper's threshold metrics. Outputs under
--out: the saved detector, a score CSV, metrics.json, samples.png (G(z)),
reconstructions.png (held-out functional cells and G(E(x))) and overlay.png (functional and
defective cells: input, reconstruction, residual on one colour scale).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    from tf_fanogan.recipes import CPU_ENCODER_ITERATIONS, CPU_GAN_ITERATIONS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="demo_output")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--gan-iterations", type=int, default=CPU_GAN_ITERATIONS)
    p.add_argument("--encoder-iterations", type=int, default=CPU_ENCODER_ITERATIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-xla", action="store_true", help="train without XLA (for smoke runs: no compile time)")
    args = p.parse_args(argv)

    import numpy as np

    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation.metrics import image_metrics
    from tf_fanogan.paper.datasets import load_elpv
    from tf_fanogan.recipes import cpu_recipe
    from tf_fanogan.reporting import visualize
    from tf_fanogan.scoring.rows import write_score_rows

    t0 = time.time()
    data = load_elpv(seed=0)
    print(f"ELPV: {len(data['train'])} functional cells for training, {len(data['holdout'])} for "
          f"calibration; test {len(data['test_normal'])} functional + {len(data['test_anomalous'])} defective")
    config = cpu_recipe(args.image_size, 1, args.dim, args.gan_iterations, args.encoder_iterations, args.seed)
    if args.no_xla:
        config.gan.jit_compile = config.encoder.jit_compile = False
    det = FAnoGAN(config)
    verbose = 2 if not sys.stdout.isatty() else "auto"
    det.fit(data["train"], validation=data["holdout"], workdir=os.path.join(args.out, "work"), verbose=verbose)
    t_train = time.time() - t0
    det.calibrate(data["holdout"], fpr=0.05)
    scores = det.score(data["test_images"])
    labels = data["test_labels"]
    metrics = image_metrics(labels, scores[sig.ANOMALY_SCORE], det.threshold_,
                            "calibrated on held-out functional cells at 5% FPR")
    metrics["feature_only_auroc"] = image_metrics(labels, scores[sig.FEATURE_SCORE])["auroc"]
    metrics["residual_only_auroc"] = image_metrics(labels, scores[sig.RESIDUAL_SCORE])["auroc"]
    metrics["holdout_izi"] = float(det.score(data["holdout"])[sig.RESIDUAL_SCORE].mean())
    metrics["train_seconds"] = round(t_train, 1)
    metrics["updates"] = det.updates_
    metrics["config"] = config.to_dict()

    det.save(os.path.join(args.out, "detector"))
    write_score_rows(os.path.join(args.out, "test_scores.csv"), [str(i) for i in range(len(labels))], scores,
                     extra={"label": labels})
    visualize.generator_grids_png(det.generator, args.out, latent_prior=config.model.latent_prior)
    hold = det.prepare(data["holdout"][:16])
    visualize.reconstruction_grid_png(hold, det.residual_maps(hold)[sig.RECONSTRUCTION],
                                      os.path.join(args.out, "reconstructions.png"))
    # Three functional cells and the three highest-scoring defective ones, on one colour scale.
    normal_maps = det.residual_maps(data["holdout"])[sig.RESIDUAL_MAP]
    defective = np.flatnonzero(labels == 1)
    top = defective[np.argsort(-scores[sig.ANOMALY_SCORE][defective])[:3]]
    picks = np.concatenate([data["test_normal"][:3], data["test_images"][top]])
    maps = det.residual_maps(picks)
    titles = [f"functional, A = {a:.3f}" for a in det.score(picks[:3])[sig.ANOMALY_SCORE]] + [
        f"defective, A = {scores[sig.ANOMALY_SCORE][i]:.3f}" for i in top]
    visualize.triptychs_png(det.prepare(picks), maps[sig.RECONSTRUCTION], maps[sig.RESIDUAL_MAP],
                            os.path.join(args.out, "overlay.png"), vmax=visualize.map_scale(normal_maps),
                            titles=titles)
    metrics["total_seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)

    print(f"\nAUROC {metrics['auroc']:.4f}  AUPR {metrics['aupr']:.4f}  (A_R alone {metrics['residual_only_auroc']:.4f}, "
          f"A_D alone {metrics['feature_only_auroc']:.4f}); held-out functional izi {metrics['holdout_izi']:.4f}")
    print(f"at the calibrated threshold: precision {metrics['precision']:.4f} sensitivity {metrics['sensitivity']:.4f} "
          f"specificity {metrics['specificity']:.4f} F1 {metrics['f1']:.4f}")
    print(f"wall time {metrics['total_seconds']:.0f} s (training {t_train:.0f} s)")
    print(f"outputs: {args.out}/detector, test_scores.csv, metrics.json, samples.png, reconstructions.png, overlay.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
