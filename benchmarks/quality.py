"""The paper's comparison over seeds: f-AnoGAN (izi_f) vs izi, ziz, critic-only, AE, iterative.

For each data set, budget and seed: one WGAN-GP is trained on normal images (the CPU recipe,
:func:`tf_fanogan.recipes.cpu_recipe`, at the budget's generator updates); three encoders
(izi_f, izi, ziz) are trained on it; the critic-feature score alone (A_D) comes from the izi_f
detector; the AE (same trunk and generator) is trained to convergence with its learning rate
and early stopping chosen on the normal hold-out loss; iterative AnoGAN mapping
(:class:`tf_fanogan.paper.baselines.IterativeMapping`) starts from a seeded prior draw (and, as a
second variant, from E(x)), stays on the prior's support, follows AnoGAN's objective (lambda =
0.1, L1) or izi_f, with scores taken after 300 and 500 steps and its step size chosen on
normal hold-out images; it runs on a seeded, class-balanced subset of the test set. Beside them,
with no training and no seed, a reference: the pixel distance to the nearest normal training
image (``knn``, run at seed 0 only); the izi_f detector scored by ``scoring.method: critic_nn``
(``critic_knn``, beyond the paper: the same distance in its critic's features, without G(E(x)));
and a diagnostic of why izi_f scores what it does, izi_f with 4x the encoder updates on the same
GAN (``izi_f_x4``: is stage 2 too short?). Thresholds come from normal hold-out images (5% FPR);
test labels only compute metrics.

    python -m benchmarks.quality --budget long --datasets elpv,oct,magnetic_tile --record
    python -m benchmarks.quality --budget short --datasets fashion_mnist --fmnist-classes 0-9 --record

Every (data set, budget, seed, method) is a unit stored under ``<out>/units/`` when it
finishes; a rerun after any interruption skips finished units (and training inside a unit
resumes per epoch from its work directory). ``--record`` rewrites the quality sections of
BENCHMARKS.md from every stored unit (:mod:`benchmarks.quality_report`; Fashion-MNIST's ten
classes share one). ``--methods izi_f`` runs only the izi_f units (with critic-only and the
score variants), e.g. over every data set before the other methods.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks._report import median, timings  # noqa: E402
from benchmarks.loaders import Items, iterative_subsets, load, subsample  # noqa: E402
from benchmarks.units import Units, git_commit  # noqa: E402

DATASETS = ("elpv", "fashion_mnist", "magnetic_tile", "oct")
BUDGETS = {"short": (1000, 1000), "long": (3000, 3000)}  # (generator, encoder) updates; short = make demo
FPR = 0.05
ENCODER_METHODS = ("izi_f", "izi", "ziz")
LONGER_ENCODER = ("izi_f_x4", 4)  # izi_f with 4x the encoder updates on the same GAN: is stage 2 too short?
METHODS = (*ENCODER_METHODS, LONGER_ENCODER[0], "ae", "iterative", "knn", "critic_knn")  # a unit each per
# (data set, budget, seed)
KNN_ROW = "pixel 1-NN (no training)"  # a reference: seed-free, so its unit runs at seed 0 only
CRITIC_NN_ROW = "izi_f, critic_nn score"  # scoring.method critic_nn on the izi_f detector: f(x), no G, no E
SCORE_VARIANTS = (("izi_f, normalized terms", {"normalize": True}),  # scoring options of the same detector
                  ("izi_f, top-1% A_R", {"residual_pooling": "topk", "topk_fraction": 0.01}),
                  ("izi_f, normalized + top-1% A_R", {"normalize": True, "residual_pooling": "topk",
                                                      "topk_fraction": 0.01}))
ITERATIVE_VARIANTS = (("anogan", "prior"), ("izi_f", "prior"), ("anogan", "encoder"))
ITERATIVE_STEPS = (300, 500)
ITERATIVE_LRS = (0.01, 0.03, 0.1, 0.3, 1.0)  # Adam step sizes in z; ELPV chose 0.1 of (0.01, 0.03, 0.1)
SUBSET_ROW = "f-AnoGAN (izi_f) on the subset"  # scored and timed in the iterative unit, beside the search


# ------------------------------------------------------------------ metrics
def metrics(items: Items, test_scores, hold_scores, labels=None, owner=None) -> dict:
    from tf_fanogan.evaluation.metrics import image_metrics, threshold_at_fpr

    labels = items.labels if labels is None else labels
    s = items.test(test_scores, owner)
    thr = threshold_at_fpr(items.holdout(hold_scores), FPR)
    m = image_metrics(labels, s, thr, f"normal_fpr: {FPR} on held-out normal images")
    return {k: m[k] for k in ("auroc", "aupr", "precision", "sensitivity", "specificity", "f1")}


# ------------------------------------------------------------------ units
def config(args, budget: str, seed: int):
    from tf_fanogan.recipes import cpu_recipe

    g, e = BUDGETS[budget]
    cfg = cpu_recipe(args.image_size, 1, args.dim, gan_iterations=g, encoder_iterations=e, seed=seed)
    if getattr(args, "quick", False):  # a smoke run: XLA's compile would be most of its time
        cfg.gan.jit_compile = cfg.encoder.jit_compile = False
    return cfg


def work(args, name, budget, seed, *parts) -> str:
    return os.path.join(args.out, "work", f"{name}-{budget}-seed{seed}", *parts)


def encoder_unit(name, budget, seed, mode, data, items, args, factor: int = 1) -> dict:
    """One encoder (``mode``) on the seed's GAN; ``factor`` multiplies the encoder updates (its row
    and work directory say so; critic-only, the score variants and the saved detector come with
    the plain izi_f unit only)."""
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig

    cfg = config(args, budget, seed)
    cfg.encoder.mode = mode
    cfg.encoder.iterations *= factor
    row = mode if factor == 1 else f"{mode}, {factor}× encoder updates"
    det = FAnoGAN(cfg)
    t = time.time()
    det.fit(data["train"], stage="gan", workdir=work(args, name, budget, seed, "gan"), verbose=0)
    gan_s = time.time() - t
    t = time.time()
    det.fit(data["train"], stage="encoder", verbose=0,
            workdir=work(args, name, budget, seed, f"encoder_{mode}" + (f"_x{factor}" if factor > 1 else "")))
    enc_s = time.time() - t
    x_test, x_hold = det.prepare(data["test_images"]), det.prepare(data["holdout"])
    test, secs = timings(lambda: det.score(x_test, batch_size=256), 3, warmup=1)  # warm-up: tracing is not mapping time
    sec = median(secs)
    hold = det.score(x_hold, batch_size=256)
    out = {"rows": {row: metrics(items, test[sig.ANOMALY_SCORE], hold[sig.ANOMALY_SCORE])},
           "ms_per_image": 1000 * sec / len(x_test), "gan_train_s": gan_s, "encoder_train_s": enc_s,
           "updates": det.updates_, "holdout_izi": float(hold[sig.RESIDUAL_SCORE].mean())}
    if mode == "izi_f" and factor == 1:
        out["rows"]["critic-only"] = metrics(items, test[sig.FEATURE_SCORE], hold[sig.FEATURE_SCORE])
        out["rows"]["A_R only"] = metrics(items, test[sig.RESIDUAL_SCORE], hold[sig.RESIDUAL_SCORE])
        variants = score_variants(det, x_test, x_hold, items)
        out["rows"].update(variants.pop("rows"))
        out.update(variants)
        det.calibrate(x_hold, fpr=FPR)
        det.save(work(args, name, budget, seed, "izi_f_detector"))
        if seed == 0:
            out["pictures"] = pictures(det, data, name, budget, args)
    print(f"[{name} {budget} seed {seed}] {row}: AUROC {out['rows'][row]['auroc']:.4f}, held-out normal izi "
          f"{out['holdout_izi']:.5f}", flush=True)
    return out


def score_variants(det, x_test, x_hold, items) -> dict:
    """Rows for the ``scoring`` options (chosen on normal data only: calibrated on the hold-out),
    and the empirical false-positive rates on the **test** normals of ``p_value <= 0.05`` and of
    the 5%-FPR threshold (per image; not for OCT, whose test items are B-scans of many patches)."""
    import dataclasses

    from tf_fanogan import signatures as sig
    from tf_fanogan.config import ScoringConfig

    rows = {}
    for label, settings in SCORE_VARIANTS:
        det.config.scoring = ScoringConfig(**settings)
        det.calibrate(x_hold, fpr=FPR)
        rows[label] = metrics(items, det.score(x_test, batch_size=256)[sig.ANOMALY_SCORE], det.holdout_scores_)
    det.config.scoring = ScoringConfig()
    det.calibrate(x_hold, fpr=FPR)
    out = {"rows": rows, "term_statistics": det.calibration_["term_statistics"],
           "scoring_default": dataclasses.asdict(det.config.scoring)}
    if items.owner is None:
        s = det.score(x_test, batch_size=256)
        normal = items.labels == 0
        out["test_normal_fpr"] = {"p_value <= 0.05": float(np.mean(s[sig.P_VALUE][normal] <= 0.05)),
                                  "threshold at 5% hold-out FPR": float(np.mean(s[sig.IS_ANOMALY][normal])),
                                  "n_test_normals": int(normal.sum()), "n_holdout": int(len(x_hold))}
    return out


def pictures(det, data, name, budget, args) -> list[str]:
    from tf_fanogan import signatures as sig
    from tf_fanogan.reporting import visualize

    folder = os.path.join(args.docs, f"quality_{name}_{budget}")
    samples, _ = visualize.generator_grids_png(det.generator, folder, latent_prior=det.config.model.latent_prior)
    x = det.prepare(data["holdout"][:: max(1, len(data["holdout"]) // 16)][:16])
    recon = visualize.reconstruction_grid_png(x, det.residual_maps(x)[sig.RECONSTRUCTION],
                                              os.path.join(folder, "reconstructions.png"))
    return [os.path.relpath(samples, args.root), os.path.relpath(recon, args.root)]


def ae_unit(name, budget, seed, data, items, args) -> dict:
    from tf_fanogan.paper.baselines import fit_autoencoder
    from tf_fanogan.data.images import to_unit_range

    m = config(args, budget, seed).model
    x_train = to_unit_range(data["train"], m.image_size, m.channels) * 2 - 1
    x_hold = to_unit_range(data["holdout"], m.image_size, m.channels)
    x_test = to_unit_range(data["test_images"], m.image_size, m.channels)
    t = time.time()
    ae, record = fit_autoencoder(x_train, x_hold * 2 - 1, m, max_updates=BUDGETS[budget][1] * 4, seed=seed)
    train_s = time.time() - t
    test, secs = timings(lambda: ae.score(x_test, 256), 3, warmup=1)
    sec = median(secs)
    out = {"rows": {"AE": metrics(items, test, ae.score(x_hold, 256))}, "ms_per_image": 1000 * sec / len(x_test),
           "train_s": train_s, "choice": record}
    print(f"[{name} {budget} seed {seed}] AE: AUROC {out['rows']['AE']['auroc']:.4f} "
          f"(lr {record['chosen_learning_rate']:g})", flush=True)
    return out


def knn_unit(name, budget, data, items, args) -> dict:
    from tf_fanogan.data.images import to_unit_range
    from tf_fanogan.paper.baselines import nearest_neighbour_distance

    m = config(args, budget, 0).model
    x_train, x_hold, x_test = (to_unit_range(data[k], m.image_size, m.channels)
                               for k in ("train", "holdout", "test_images"))
    test, secs = timings(lambda: nearest_neighbour_distance(x_train, x_test), 3)
    out = {"rows": {KNN_ROW: metrics(items, test, nearest_neighbour_distance(x_train, x_hold))},
           "ms_per_image": 1000 * median(secs) / len(x_test), "n_train": int(len(x_train))}
    print(f"[{name} {budget}] {KNN_ROW}: AUROC {out['rows'][KNN_ROW]['auroc']:.4f}", flush=True)
    return out


def izi_f_detector(name, budget, seed, data, items, args, units):
    """The izi_f unit's detector, from its work directory (the izi_f unit runs first if it has not)."""
    from tf_fanogan import FAnoGAN

    units.run(f"{name}/{budget}/seed{seed}/izi_f",
              lambda: encoder_unit(name, budget, seed, "izi_f", data, items, args))
    if not os.path.isdir(work(args, name, budget, seed, "izi_f_detector")):
        # the izi_f unit finished on another machine (units are committed, work directories are
        # not): train its detector again; training is deterministic per seed and commit
        print(f"[{name} {budget} seed {seed}] izi_f detector absent: training it again", flush=True)
        encoder_unit(name, budget, seed, "izi_f", data, items, args)
    return FAnoGAN.load(work(args, name, budget, seed, "izi_f_detector"))


def critic_knn_unit(name, budget, seed, data, items, args, units) -> dict:
    """The izi_f detector scored by ``scoring.method: critic_nn`` (beyond the paper): the
    distance of its critic's features f(x) to the nearest normal training image's, with no
    G(E(x)) in the way. Through the package (memorize the training images, calibrate on the
    hold-out, score), as a user would; the same networks as the izi_f row."""
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig

    det = izi_f_detector(name, budget, seed, data, items, args, units)
    cfg = type(det.config).from_dict(det.config.to_dict())
    cfg.scoring.method = "critic_nn"
    nn = FAnoGAN.from_networks(cfg, det.generator, det.critic, det.encoder).memorize(data["train"])
    x_test, x_hold = nn.prepare(data["test_images"]), nn.prepare(data["holdout"])
    nn.calibrate(x_hold, fpr=FPR)
    test, secs = timings(lambda: nn.score(x_test, batch_size=256), 1, warmup=1)
    out = {"rows": {CRITIC_NN_ROW: metrics(items, test[sig.ANOMALY_SCORE], nn.holdout_scores_)},
           "ms_per_image": 1000 * median(secs) / len(x_test), "n_memory": int(len(nn.memory_)),
           "feature_dim": int(nn.memory_.shape[1]), "scoring": dict(cfg.scoring.__dict__)}
    if items.owner is None:
        normal = items.labels == 0
        out["test_normal_fpr"] = {"p_value <= 0.05": float(np.mean(test[sig.P_VALUE][normal] <= 0.05)),
                                  "n_test_normals": int(normal.sum()), "n_holdout": int(len(x_hold))}
    print(f"[{name} {budget} seed {seed}] {CRITIC_NN_ROW}: AUROC {out['rows'][CRITIC_NN_ROW]['auroc']:.4f}",
          flush=True)
    return out


def iterative_unit(name, budget, seed, data, items, args, units) -> dict:
    from tf_fanogan import signatures as sig
    from tf_fanogan.paper.baselines import ANOGAN_SCORE, IterativeMapping, choose_learning_rate

    det = izi_f_detector(name, budget, seed, data, items, args, units)  # its detector is the one searched
    x_test, x_hold = det.prepare(data["test_images"]), det.prepare(data["holdout"])
    rng = np.random.default_rng(seed)
    sub_items, sub, owner, hold_sub, hold_items = iterative_subsets(
        items, len(x_hold), args.oct_scans if items.owner is not None else args.iterative_items,
        args.iterative_holdout, rng)
    labels = items.labels[sub_items]
    lr_images = x_hold[np.sort(rng.choice(len(x_hold), min(len(x_hold), 32), replace=False))]
    out = {"rows": {}, "ms_per_image": {}, "learning_rate": {}, "n_images": int(len(sub)),
           "n_items": int(len(sub_items))}
    kappa, prior = det.config.encoder.kappa, det.config.model.latent_prior
    fa, secs = timings(lambda: det.score(x_test[sub], batch_size=256), 3, warmup=1)  # timed beside the search
    fa = fa[sig.ANOMALY_SCORE]
    fa_hold = det.score(x_hold[hold_sub])[sig.ANOMALY_SCORE]
    out["rows"][SUBSET_ROW] = metrics(hold_items, fa, fa_hold, labels, owner)
    out["ms_per_image"][SUBSET_ROW] = 1000 * median(secs) / len(sub)
    for objective, init in ITERATIVE_VARIANTS:
        kw = dict(steps=max(ITERATIVE_STEPS), kappa=kappa, objective=objective, init=init, latent_prior=prior,
                  encoder=det.encoder, seed=seed)
        lr, lr_record = choose_learning_rate(det.generator, det.critic, lr_images, ITERATIVE_LRS, **kw)
        mapper = IterativeMapping(det.generator, det.critic, learning_rate=lr, record_at=ITERATIVE_STEPS, **kw)
        mapper.search(x_test[sub[:2]])  # trace outside the timing
        t = time.perf_counter()
        test = mapper.search(x_test[sub], batch_size=64)
        sec = (time.perf_counter() - t) / len(sub)
        hold = mapper.search(x_hold[hold_sub], batch_size=64)
        key = ANOGAN_SCORE if objective == "anogan" else sig.ANOMALY_SCORE
        for steps in ITERATIVE_STEPS:
            row = row_name(objective, init, steps)
            out["rows"][row] = metrics(hold_items, test[steps][key], hold[steps][key], labels, owner)
            out["ms_per_image"][row] = 1000 * sec * steps / max(ITERATIVE_STEPS)
        out["learning_rate"][f"{objective}/{init}"] = {"chosen": lr, "mean_objective": lr_record}
        aurocs = [out["rows"][row_name(objective, init, s)]["auroc"] for s in ITERATIVE_STEPS]
        print(f"[{name} {budget} seed {seed}] iterative {objective}/{init} (lr {lr:g}): AUROC "
              + ", ".join(f"{a:.4f} after {s} steps" for a, s in zip(aurocs, ITERATIVE_STEPS)), flush=True)
    return out


def row_name(objective: str, init: str, steps: int) -> str:
    return f"iterative ({objective}, from {'E(x)' if init == 'encoder' else 'prior'}, {steps} steps)"


def run(name, budget, seed, args, units) -> None:
    try:
        data, description = load(name, args)
    except FileNotFoundError as e:  # shared data absent: say so; a missing file later is an error
        print(f"[{name}] skipped: {e}", flush=True)
        return
    if args.quick and "test_owner" not in data:
        data = subsample(data)
    items = Items(data)
    meta = {"description": description, "n_train": len(data["train"]), "n_holdout": len(data["holdout"]),
            "n_test_items": int(len(items.labels)), "n_test_anomalous": int(items.labels.sum()),
            "config": config(args, budget, seed).to_dict()}
    units.run(f"{name}/{budget}/meta", lambda: meta)
    for mode in ENCODER_METHODS:
        if mode in args.methods:
            units.run(f"{name}/{budget}/seed{seed}/{mode}",
                      lambda: encoder_unit(name, budget, seed, mode, data, items, args))
    longer, factor = LONGER_ENCODER
    if longer in args.methods:
        units.run(f"{name}/{budget}/seed{seed}/{longer}",
                  lambda: encoder_unit(name, budget, seed, "izi_f", data, items, args, factor))
    if "ae" in args.methods:
        units.run(f"{name}/{budget}/seed{seed}/ae", lambda: ae_unit(name, budget, seed, data, items, args))
    if "iterative" in args.methods:
        units.run(f"{name}/{budget}/seed{seed}/iterative",
                  lambda: iterative_unit(name, budget, seed, data, items, args, units))
    if "critic_knn" in args.methods:
        units.run(f"{name}/{budget}/seed{seed}/critic_knn",
                  lambda: critic_knn_unit(name, budget, seed, data, items, args, units))
    if "knn" in args.methods and seed == 0:
        units.run(f"{name}/{budget}/seed0/knn", lambda: knn_unit(name, budget, data, items, args))


# ------------------------------------------------------------------ command line
def expand(datasets: str, classes: str) -> list[str]:
    out = []
    for name in datasets.split(","):
        if name not in DATASETS:
            raise SystemExit(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
        if name == "fashion_mnist":
            lo, _, hi = classes.partition("-")
            ks = range(int(lo), int(hi or lo) + 1) if "," not in classes else [int(k) for k in classes.split(",")]
            out += [f"fashion_mnist_c{k}" for k in ks]
        else:
            out.append(name)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="elpv,oct,magnetic_tile,fashion_mnist")
    p.add_argument("--fmnist-classes", default="0-9", help="e.g. 0-9 or 0,1,2")
    p.add_argument("--budget", default="short", choices=sorted(BUDGETS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--iterative-items", type=int, default=256)
    p.add_argument("--iterative-holdout", type=int, default=64)
    p.add_argument("--oct-scans", type=int, default=20)
    p.add_argument("--methods", default=",".join(METHODS),
                   help="units to run, of " + ",".join(METHODS) + " (critic-only and the score variants come "
                   "with izi_f); e.g. izi_f first over every data set, the rest in a later call")
    p.add_argument("--no-iterative", action="store_true", help="leave iterative out of --methods")
    p.add_argument("--out", default="benchmarks/results/quality")
    p.add_argument("--docs", default="docs/benchmarks")
    p.add_argument("--report-only", action="store_true", help="rewrite the sections from stored units")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny model and budget, ELPV, one seed")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    if args.no_iterative:
        args.methods = [m for m in args.methods if m != "iterative"]
    if args.quick:
        BUDGETS["short"] = (2, 2)
        args.datasets, args.seeds, args.image_size, args.dim = "elpv", "0", 16, 8
        args.iterative_items, args.iterative_holdout = 8, 8
        global ITERATIVE_STEPS, ITERATIVE_LRS
        ITERATIVE_STEPS, ITERATIVE_LRS = (2, 3), (0.1,)
    args.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    names = expand(args.datasets, args.fmnist_classes)
    units = Units(args.out)
    print(f"[quality] commit {git_commit()[:10]}, {args.budget} budget, data {names}, seeds {args.seeds}", flush=True)
    if not args.report_only:
        for seed in [int(s) for s in args.seeds.split(",")]:  # seed-major: each data set gets seed 0 first
            for name in names:
                run(name, args.budget, seed, args, units)
    from benchmarks._report import write_section
    from benchmarks.quality_report import sections

    for section, text in sections(names, args.budget, units.all(), ENCODER_METHODS, FPR, SUBSET_ROW).items():
        print(text)
        if args.record:
            write_section(section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
