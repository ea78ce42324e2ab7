"""The paper's comparison table on real data: f-AnoGAN (izi_f) vs izi, ziz, critic-only, AE, iterative.

For each data set: one WGAN-GP is trained on normal images; three encoders (izi_f, izi, ziz)
are trained on it; the critic-feature score alone (A_D) comes from the izi_f detector; a
convolutional autoencoder with the same trunk is trained on the same images; iterative AnoGAN
mapping (``--iterative-steps`` Adam updates of z per image through the same G and critic) is
run on a fixed, seeded, class-balanced subset of the test set (f-AnoGAN is scored on that subset too).
Every method's threshold is calibrated on held-out **normal** images at 5% FPR; test labels
are used only to compute the metrics. Mapping time per image is the median of
``--timing-reps`` passes, batched and compiled for every method.

    python benchmarks/quality.py --record                 # all four data sets (about an hour on 2 cores)
    python benchmarks/quality.py --datasets elpv --record # one row group

Each data set writes its own ``quality-<name>`` section of BENCHMARKS.md as it finishes
(``--record``) and ``<out>/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

DATASETS = ("elpv", "fashion_mnist", "magnetic_tile", "oct")
FPR = 0.05


def load(name: str, args):
    from tf_fanogan import datasets

    if name == "elpv":
        return datasets.load_elpv(seed=args.seed), "ELPV solar cells (normal: defect probability 0; anomalous: >= 2/3)"
    if name == "fashion_mnist":
        d = datasets.load_fashion_mnist(args.fmnist_class, seed=args.seed, pad_to=args.image_size)
        return d, (f"Fashion-MNIST one-class, normal class {args.fmnist_class} ({d['class_name']}); test = the "
                   "whole 10 000-image test set; 28×28 images zero-padded to the model size")
    if name == "magnetic_tile":
        d = datasets.load_magnetic_tile(args.image_size, seed=args.seed)
        return d, "Magnetic tile (MT_Free normal; Blowhole, Break, Crack, Fray, Uneven anomalous; pixel masks)"
    if name == "oct":
        return load_oct(args), ("OCT B-scans (oct_kermany_tiny), 64x64 patches inside the retina, NORMAL patients "
                                "split into train/holdout/test, B-scan score = top-5 mean of patch scores")
    raise ValueError(name)


def load_oct(args):
    from tf_fanogan import datasets, oct

    scans = datasets.load_oct_bscans()
    split = datasets.split_oct_by_patient(scans, seed=args.seed)

    def patches(group):
        out, owner = [], []
        for i, s in enumerate(group):
            p, _, _ = oct.bscan_patches(s["image"], 64, args.oct_stride)
            out.append(p); owner += [i] * len(p)
        return np.concatenate(out), np.array(owner)

    train, _ = patches(split["train"])
    holdout_p, holdout_owner = patches(split["holdout"])
    test_p, test_owner = patches(split["test"])
    return {"train": train, "holdout": holdout_p, "holdout_owner": holdout_owner,
            "test_images": test_p, "test_owner": test_owner,
            "test_labels_scan": np.array([s["label"] for s in split["test"]]),
            "n_scans": {k: len(v) for k, v in split.items()}}


class Scorer:
    """Turns per-image scores into per-test-item scores (identity, or B-scan aggregation for OCT)."""

    def __init__(self, data):
        self.owner = data.get("test_owner")
        self.hold_owner = data.get("holdout_owner")
        self.labels = data["test_labels_scan"] if self.owner is not None else data["test_labels"]

    @staticmethod
    def _agg(scores, owner):
        from tf_fanogan import oct

        return np.array([oct.aggregate(scores[owner == i])["top_k_mean"] for i in np.unique(owner)])

    def test(self, scores):
        return scores if self.owner is None else self._agg(scores, self.owner)

    def holdout(self, scores):
        return scores if self.hold_owner is None else self._agg(scores, self.hold_owner)


def balanced_subset(labels, size, rng):
    """Seeded subset of up to ``size`` items, half normal and half anomalous where possible."""
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    n_normal = min(len(normal), size // 2)
    n_anomalous = min(len(anomalous), size - n_normal)
    return np.sort(np.concatenate([rng.choice(normal, n_normal, replace=False),
                                   rng.choice(anomalous, n_anomalous, replace=False)]))


def timed(fn, reps):
    fn()  # warm-up: tracing is not mapping time
    times = []
    for _ in range(reps):
        t = time.perf_counter(); out = fn(); times.append(time.perf_counter() - t)
    return out, float(np.median(times))


def add_training_args(p: argparse.ArgumentParser) -> None:
    """The model and training-length options shared by the quality benchmarks."""
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--gan-iters", type=int, default=150, help="generator updates (each with 5 critic updates)")
    p.add_argument("--encoder-iters", type=int, default=400, help="encoder (and AE) updates")


def training_config(n_train: int, args, batch_size: int = 32):
    """The detector config of the quality runs: ``--gan-iters`` / ``--encoder-iters`` updates
    turned into whole epochs over ``n_train`` images (default XLA and paper optimizers)."""
    from tf_fanogan import EncoderTrainingConfig, FAnoGANConfig, GANTrainingConfig, ModelConfig

    gan_epochs = max(1, round(args.gan_iters / max(1, n_train // (batch_size * 5))))
    enc_epochs = max(1, round(args.encoder_iters / max(1, n_train // batch_size)))
    return FAnoGANConfig(model=ModelConfig(image_size=args.image_size, channels=1, dim=args.dim, latent_dim=128),
                         gan=GANTrainingConfig(epochs=gan_epochs, batch_size=batch_size),
                         encoder=EncoderTrainingConfig(epochs=enc_epochs, batch_size=batch_size), seed=args.seed)


def run_dataset(name: str, args) -> dict:
    import keras

    from tf_fanogan import FAnoGAN, FAnoGANConfig
    from tf_fanogan import signatures as sig
    from tf_fanogan.baselines import ConvAutoencoder, IterativeMapping
    from tf_fanogan.evaluation import bootstrap_auroc, image_metrics, threshold_at_fpr

    t_start = time.time()
    data, description = load(name, args)
    scorer = Scorer(data)
    n_train = len(data["train"])
    base = training_config(n_train, args)
    bs, gan_epochs, enc_epochs = base.gan.batch_size, base.gan.epochs, base.encoder.epochs
    print(f"[{name}] {description}: {n_train} training images, GAN {gan_epochs} epochs, encoders {enc_epochs} epochs",
          flush=True)

    rows, timings = {}, {}
    first = FAnoGAN(base)
    t = time.time()
    first.fit(data["train"], stage="gan", verbose=0)
    timings["gan_train_s"] = time.time() - t
    x_test = first.prepare(data["test_images"])
    x_hold = first.prepare(data["holdout"])

    def add_row(key, test_scores, hold_scores, seconds_per_image):
        s = scorer.test(test_scores)
        thr = threshold_at_fpr(scorer.holdout(hold_scores), FPR)
        m = image_metrics(scorer.labels, s, thr, f"normal_fpr: {FPR} on held-out normal images")
        m["auroc_ci95"] = list(bootstrap_auroc(scorer.labels, s, 1000, seed=args.seed))
        m["ms_per_image"] = 1000 * seconds_per_image
        rows[key] = m
        print(f"[{name}] {key:<12} AUROC {m['auroc']:.4f} AUPR {m['aupr']:.4f} F1 {m['f1']:.4f} "
              f"{m['ms_per_image']:.3f} ms/image", flush=True)

    detectors = {}
    for mode in ("izi_f", "izi", "ziz"):
        cfg = base.to_dict()
        cfg["encoder"]["mode"] = mode
        det = FAnoGAN(FAnoGANConfig.from_dict(cfg))
        for src, dst in ((first.generator, det.generator), (first.critic, det.critic)):
            dst.set_weights(src.get_weights())
        det.trained_["gan"] = True
        t = time.time()
        det.fit(data["train"], stage="encoder", verbose=0)
        timings[f"encoder_{mode}_train_s"] = time.time() - t
        test, sec = timed(lambda: det.score(x_test, batch_size=256), args.timing_reps)
        hold = det.score(x_hold, batch_size=256)
        add_row(f"f-AnoGAN ({mode})" if mode == "izi_f" else mode, test[sig.ANOMALY_SCORE],
                hold[sig.ANOMALY_SCORE], sec / len(x_test))
        if mode == "izi_f":
            add_row("critic-only (A_D)", test[sig.FEATURE_SCORE], hold[sig.FEATURE_SCORE], sec / len(x_test))
            # Unsupervised diagnostic (normal hold-out only): how A_R and kappa * A_D share A's spread.
            timings["holdout_term_stats"] = {
                "A_R_mean": float(hold[sig.RESIDUAL_SCORE].mean()), "A_R_std": float(hold[sig.RESIDUAL_SCORE].std()),
                "kappa_A_D_mean": float(det.config.encoder.kappa * hold[sig.FEATURE_SCORE].mean()),
                "kappa_A_D_std": float(det.config.encoder.kappa * hold[sig.FEATURE_SCORE].std())}
            det.save(os.path.join(args.out, f"{name}_detector"))
        detectors[mode] = det

    keras.utils.set_random_seed(args.seed)
    ae = ConvAutoencoder(args.image_size, 1, args.dim, 128)
    ae.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse")
    x_train = first.prepare(data["train"]) * 2 - 1
    ae_epochs = max(1, round(args.encoder_iters / max(1, n_train // bs)))
    t = time.time()
    ae.fit(x_train, x_train, batch_size=bs, epochs=ae_epochs, shuffle=True, verbose=0)
    timings["ae_train_s"] = time.time() - t
    test, sec = timed(lambda: ae.score(x_test, 256), args.timing_reps)
    add_row("AE", test, ae.score(x_hold, 256), sec / len(x_test))

    # Iterative mapping on a seeded subset of the test set (and of the hold-out for its threshold).
    det = detectors["izi_f"]
    rng = np.random.default_rng(args.seed)
    if scorer.owner is None:
        sub = balanced_subset(scorer.labels, args.subset, rng)
        hsub = np.sort(rng.choice(len(x_hold), min(args.subset, len(x_hold)), replace=False))
        sub_labels = scorer.labels[sub]
        agg_t = agg_h = lambda s: s  # noqa: E731
    else:  # OCT: whole B-scans, a seeded subset of them
        scans = balanced_subset(scorer.labels, args.oct_scans, rng)
        sub = np.flatnonzero(np.isin(scorer.owner, scans))
        hsub = np.arange(len(x_hold))
        sub_labels = scorer.labels[scans]
        agg_t = lambda s: Scorer._agg(s, scorer.owner[sub])  # noqa: E731
        agg_h = lambda s: Scorer._agg(s, scorer.hold_owner)  # noqa: E731
    mapper = IterativeMapping(det.generator, det.critic, steps=args.iterative_steps, kappa=det.config.encoder.kappa)
    iterate = lambda x: mapper(x, batch_size=64)  # noqa: E731
    iterate(x_test[sub[:2]])  # trace once outside the timing
    t = time.perf_counter()
    it_test = iterate(x_test[sub])[sig.ANOMALY_SCORE]
    it_sec = (time.perf_counter() - t) / len(sub)
    it_hold = iterate(x_hold[hsub])[sig.ANOMALY_SCORE]
    fa_test = det.score(x_test[sub])[sig.ANOMALY_SCORE]
    fa_hold = det.score(x_hold[hsub])[sig.ANOMALY_SCORE]
    subset_rows = {}
    for key, ts, hs, sec in (("iterative", it_test, it_hold, it_sec),
                             ("f-AnoGAN (izi_f)", fa_test, fa_hold, rows["f-AnoGAN (izi_f)"]["ms_per_image"] / 1000)):
        s = agg_t(ts)
        m = image_metrics(sub_labels, s, threshold_at_fpr(agg_h(hs), FPR), f"normal_fpr: {FPR} on held-out normals")
        m["auroc_ci95"] = list(bootstrap_auroc(sub_labels, s, 1000, seed=args.seed))
        m["ms_per_image"] = 1000 * sec
        subset_rows[key] = m
        print(f"[{name}] subset {key:<18} AUROC {m['auroc']:.4f} {m['ms_per_image']:.3f} ms/image", flush=True)
    rows["iterative AnoGAN"] = subset_rows["iterative"]
    result = {
        "dataset": name, "description": description, "rows": rows, "subset_rows": subset_rows,
        "subset_size": int(len(sub)), "subset_test_items": int(len(sub_labels)),
        "speedup_iterative_vs_fanogan": it_sec / (rows["f-AnoGAN (izi_f)"]["ms_per_image"] / 1000),
        "n_train": n_train, "n_holdout": int(len(x_hold)), "n_test_items": int(len(scorer.labels)),
        "n_test_anomalous": int(np.sum(scorer.labels)), "config": base.to_dict(),
        "gan_epochs": gan_epochs, "encoder_epochs": enc_epochs, "ae_epochs": ae_epochs,
        "iterative_steps": args.iterative_steps, "timings": timings, "seed": args.seed,
        "wall_s": time.time() - t_start,
    }
    if name == "oct":
        result["n_scans"] = data["n_scans"]
        result["heatmaps"] = oct_heatmaps(detectors["izi_f"], args)
    if name == "magnetic_tile":
        result["pixel"] = pixel_rows(detectors["izi_f"], data, x_hold)
    return result


def oct_heatmaps(det, args) -> list[str]:
    """Stitched residual heatmaps of one test B-scan per class, on one colour scale."""
    from tf_fanogan import datasets, oct, visualize
    from tf_fanogan import signatures as sig

    split = datasets.split_oct_by_patient(datasets.load_oct_bscans(), seed=args.seed)
    normal_maps = [det.residual_maps(oct.bscan_patches(s["image"], 64, args.oct_stride)[0])[sig.RESIDUAL_MAP]
                   for s in split["holdout"]]
    vmax = float(np.percentile(np.concatenate([m.ravel() for m in normal_maps]), 99.5))
    paths = []
    for cls in ("NORMAL", "CNV", "DME", "DRUSEN"):
        scan = next(s for s in split["test"] if s["class"] == cls)
        r = oct.score_bscan(det, scan["image"], 64, args.oct_stride)
        path = os.path.join(args.out, "oct_heatmaps", os.path.basename(scan["path"]).rsplit(".", 1)[0] + ".png")
        visualize.heatmap_png(scan["image"], r["heatmap"], path, vmax=vmax,
                              title=f"{os.path.basename(scan['path'])}: B-scan score (top-5 mean) {r['top_k_mean']:.4f}")
        paths.append(path)
    print(f"[oct] heatmaps: {', '.join(paths)}", flush=True)
    return paths


def pixel_rows(det, data, x_hold) -> dict:
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation import pixel_metrics, pixel_threshold_at_fpr

    maps = det.residual_maps(data["test_images"])[sig.RESIDUAL_MAP]
    thr = pixel_threshold_at_fpr(det.residual_maps(x_hold)[sig.RESIDUAL_MAP], 0.01)
    out = pixel_metrics(data["test_masks"], maps, thr)
    out["pixel_threshold_source"] = "1% of the pixels of held-out normal tiles' residual maps"
    print(f"[magnetic_tile] pixels: AUROC {out['pixel_auroc']:.4f} AUPRO(0.3) {out['aupro_0.3']:.4f} "
          f"Dice {out['dice']:.4f}", flush=True)
    return out


ROW_ORDER = ("f-AnoGAN (izi_f)", "izi", "ziz", "critic-only (A_D)", "AE", "iterative AnoGAN")


def markdown(r: dict, args, command: str) -> str:
    from _report import machine

    c = r["config"]
    best = max(ROW_ORDER, key=lambda k: r["rows"][k]["auroc"])
    lines = [f"## Quality: {r['dataset']}", "",
             f"{r['description']}. Command: `{command}`. Machine: {machine()}.",
             f"Model {c['model']['image_size']}×{c['model']['image_size']}×1, width {c['model']['dim']}, latent 128, "
             f"batch 32, seed {r['seed']}: WGAN-GP {r['gan_epochs']} epochs, each encoder {r['encoder_epochs']} epochs, "
             f"AE {r['ae_epochs']} epochs (Adam 1e-4, MSE), on {r['n_train']} normal training images. Thresholds: "
             f"{FPR:.0%} FPR on {r['n_holdout']} held-out normal images, per method. Test: {r['n_test_items']} items "
             f"({r['n_test_anomalous']} anomalous). Iterative AnoGAN: {r['iterative_steps']} Adam steps (lr 0.05) "
             f"on a seeded, class-balanced subset of {r['subset_test_items']} test items ({r['subset_size']} images). One run; "
             f"wall time {r['wall_s'] / 60:.1f} min.", "",
             "| method | AUROC (95% CI) | AUPR | precision | sensitivity | specificity | F1 | ms / image |",
             "|---|---|---|---|---|---|---|---|"]
    for key in ROW_ORDER:
        m = r["rows"][key]
        name = f"**{key}**" if key == best else key
        sub = " (subset)" if key == "iterative AnoGAN" else ""
        lines.append(f"| {name}{sub} | {m['auroc']:.4f} ({m['auroc_ci95'][0]:.3f}–{m['auroc_ci95'][1]:.3f}) | "
                     f"{m['aupr']:.4f} | {m['precision']:.4f} | {m['sensitivity']:.4f} | {m['specificity']:.4f} | "
                     f"{m['f1']:.4f} | {m['ms_per_image']:.3f} |")
    f = r["subset_rows"]["f-AnoGAN (izi_f)"]
    lines += ["", f"On the iterative subset, f-AnoGAN (izi_f) has AUROC {f['auroc']:.4f} against "
              f"{r['subset_rows']['iterative']['auroc']:.4f} for iterative mapping; its mapping is "
              f"{r['speedup_iterative_vs_fanogan']:.0f}× faster per image."]
    if "pixel" in r:
        p = r["pixel"]
        lines += ["", f"Pixel level (f-AnoGAN izi_f residual maps vs. the tiles' masks at model resolution): "
                  f"pixel AUROC {p['pixel_auroc']:.4f}, AUPRO (FPR ≤ 0.3) {p['aupro_0.3']:.4f}, Dice "
                  f"{p['dice']:.4f} at a pixel threshold set on {p['pixel_threshold_source']}."]
    if "n_scans" in r:
        n = r["n_scans"]
        lines += ["", f"B-scans by patient: {n['train']} NORMAL scans for training, {n['holdout']} for calibration, "
                  f"{n['test']} test scans. This set is far too small for a strong model; it proves the pipeline. "
                  f"Stitched heatmaps of one test scan per class (colour scale fixed by the 99.5th percentile of "
                  f"held-out normal patches' residuals) are written to `{args.out}/oct_heatmaps/`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    add_training_args(p)
    p.add_argument("--iterative-steps", type=int, default=300)
    p.add_argument("--subset", type=int, default=64, help="test images for the iterative baseline")
    p.add_argument("--oct-scans", type=int, default=12, help="test B-scans for the iterative baseline on OCT")
    p.add_argument("--oct-stride", type=int, default=32)
    p.add_argument("--fmnist-class", type=int, default=0)
    p.add_argument("--timing-reps", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="quality_output")
    p.add_argument("--record", action="store_true", help="write the quality-<name> sections of BENCHMARKS.md")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    for name in args.datasets.split(","):
        if name not in DATASETS:
            p.error(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
        try:
            r = run_dataset(name, args)
        except FileNotFoundError as e:
            print(f"[{name}] skipped: {e}", flush=True)
            continue
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(r, f, indent=2, default=float)
        if args.record:
            from _report import write_section

            changed = [f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                       if k not in ("datasets", "record", "out") and v != p.get_default(k)]
            command = " ".join(["python benchmarks/quality.py", f"--datasets {name}", *changed, "--record"])
            write_section(f"quality-{name}", markdown(r, args, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
