"""Which training options earn their place: ELPV at the ``make demo`` budget, over seeds.

Each stage-1 variant (the paper's constant learning rate; + linear decay to 0; + an EMA of
the generator's weights; + flip/translate augmentation of the critic's inputs) trains one
WGAN-GP per seed, then an izi_f encoder on it; on the base variant a second encoder uses
early stopping on the normal validation izi_f. Reported per variant, mean ± std over seeds:
the held-out **normal** izi (MSE of x and G(E(x)) on held-out functional cells: does the
detector reconstruct normal images?), held-out izi_f, test AUROC (izi_f score), the final
Wasserstein estimate, and wall time. A variant becomes a default only if it wins here.

    python -m benchmarks.recipe --record          # resumable: rerun after any interruption

Units (variant x seed) are stored under ``<out>/units/``; the figures go to the ``recipe``
section of BENCHMARKS.md, with sample / reconstruction pictures of seed 0 under ``docs/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.units import Units, fmt, git_commit  # noqa: E402

VARIANTS = {  # name: (gan overrides, encoder overrides)
    "base": ({}, {}),
    "lr_decay": ({"lr_decay": "linear"}, {"lr_decay": "linear"}),
    "ema": ({"ema": 0.999}, {}),
    "augment": ({"augment": "flip_translate"}, {}),
    "early_stopping": (None, {"early_stopping": 5}),  # stage 2 only, on the base GAN
    # What `make demo` trained before the recipe work: a tanh encoder head under the N(0, I)
    # prior, 30 epochs of stage 1 (about 200 generator updates at batch 32, Adam 1e-4) and 30 of
    # stage 2 (about 1000 encoder updates): the "before" of the held-out izi.
    "before": ({"iterations": None, "epochs": 30, "batch_size": 32, "learning_rate": 1e-4},
               {"iterations": None, "epochs": 30}),
}
MODEL_OVERRIDES = {"before": {"encoder_head": "tanh"}}


def config(args, seed: int, gan_over: dict, enc_over: dict, model_over: dict | None = None):
    from tf_fanogan import EncoderTrainingConfig, FAnoGANConfig, GANTrainingConfig, ModelConfig

    gan = {"iterations": args.gan_iters, "batch_size": args.batch_size, "learning_rate": args.gan_lr, **gan_over}
    encoder = {"iterations": args.encoder_iters, "batch_size": 32, **enc_over}
    return FAnoGANConfig(
        model=ModelConfig(image_size=args.image_size, channels=1, dim=args.dim, latent_dim=128, **(model_over or {})),
        gan=GANTrainingConfig(**gan), encoder=EncoderTrainingConfig(**encoder),
        seed=seed).validate()


def run_unit(variant: str, seed: int, data, args) -> dict:
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation import image_metrics

    gan_over, enc_over = VARIANTS[variant]
    gan_variant = variant if gan_over is not None else "base"
    cfg = config(args, seed, VARIANTS[gan_variant][0], enc_over, MODEL_OVERRIDES.get(variant))
    det = FAnoGAN(cfg)
    # The GAN of a variant and seed is trained once (early_stopping reuses the base one).
    gan_dir = os.path.join(args.out, "work", f"{gan_variant}_seed{seed}")
    t = time.time()
    det.fit(data["train"], stage="gan", workdir=gan_dir, verbose=0)
    gan_s = time.time() - t
    t = time.time()
    det.fit(data["train"], validation=data["holdout"], stage="encoder",
            workdir=os.path.join(args.out, "work", f"{variant}_seed{seed}_encoder"), verbose=0)
    enc_s = time.time() - t
    hold = det.score(data["holdout"])
    test = det.score(data["test_images"])
    w_dist = det.history_.get("gan", {}).get("w_dist", [float("nan")])[-1]
    result = {
        "variant": variant, "seed": seed, "config": cfg.to_dict(),
        "holdout_izi": float(hold[sig.RESIDUAL_SCORE].mean()),
        "holdout_izi_f": float(hold[sig.ANOMALY_SCORE].mean()),
        "auroc": image_metrics(data["test_labels"], test[sig.ANOMALY_SCORE])["auroc"],
        "auroc_residual": image_metrics(data["test_labels"], test[sig.RESIDUAL_SCORE])["auroc"],
        "final_w_dist": float(w_dist), "gan_train_s": gan_s, "encoder_train_s": enc_s,
        "encoder_epochs_run": len(det.history_.get("encoder", {}).get("enc_loss", [])),
        "gan_updates": det.updates_.get("gan"), "encoder_updates": det.updates_.get("encoder"),
    }
    if seed == 0:
        result["pictures"] = pictures(det, data, variant, args)
    print(f"[recipe] {variant} seed {seed}: holdout izi {result['holdout_izi']:.4f} AUROC {result['auroc']:.4f} "
          f"(GAN {gan_s:.0f} s, encoder {enc_s:.0f} s)", flush=True)
    return result


def pictures(det, data, variant: str, args) -> list[str]:
    from tf_fanogan import signatures as sig
    from tf_fanogan import visualize

    folder = os.path.join(args.docs, f"recipe_{variant}")
    samples, _ = visualize.generator_grids_png(det.generator, folder, n_samples=32,
                                                latent_prior=det.config.model.latent_prior)
    x = data["holdout"][:16]
    maps = det.residual_maps(x)
    recon = visualize.reconstruction_grid_png(det.prepare(x), maps[sig.RECONSTRUCTION],
                                              os.path.join(folder, "reconstructions.png"))
    return [samples, recon]


def markdown(results: list[dict], args, wall_s: float) -> str:
    from benchmarks._report import machine

    lines = ["## Training recipe on ELPV (`benchmarks/recipe.py`)", "",
             f"Command: `python -m benchmarks.recipe --record`, from a worktree of commit `{args.commit}`. "
             f"Machine: {machine()}. ELPV 32×32, width {args.dim}, latent 128; stage 1 {args.gan_iters} generator "
             f"updates (batch {args.batch_size}, Adam {args.gan_lr:g}, β = (0, 0.9), 5 critic updates each), stage 2 "
             f"{args.encoder_iters} encoder updates (izi_f, batch 32, RMSprop 5e-5); seeds {args.seeds} (weights and "
             "noise; the data split is fixed). Held-out izi: mean squared error between held-out **normal** cells "
             "and G(E(x)) in [-1, 1] units (lower = normal cells reconstructed better). Mean ± std over seeds.", "",
             "| variant | held-out normal izi | held-out izi_f | test AUROC (izi_f) | AUROC (A_R) | final W estimate | "
             "GAN train s | encoder train s |", "|---|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        rs = [r for r in results if r["variant"] == variant]
        if not rs:
            continue
        col = lambda k, d=4: fmt([r[k] for r in rs], d)  # noqa: E731
        lines.append(f"| {variant} ({len(rs)} seeds) | {col('holdout_izi')} | {col('holdout_izi_f')} | "
                     f"{col('auroc')} | {col('auroc_residual')} | {col('final_w_dist', 3)} | {col('gan_train_s', 0)} | "
                     f"{col('encoder_train_s', 0)} |")
    pics = [(r["variant"], r["pictures"]) for r in results if r.get("pictures")]
    if pics:
        lines += ["", "Seed 0 of each variant: " + "; ".join(
            f"{v}: [samples]({os.path.relpath(p[0], args.root)}), [reconstructions]({os.path.relpath(p[1], args.root)})"
            for v, p in pics) + "."]
    lines += ["", f"Per-seed values: `{os.path.relpath(args.out, args.root)}/units/`. Wall time of this run "
              f"(units already done not counted): {wall_s / 60:.1f} min."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--gan-lr", type=float, default=2e-4)
    p.add_argument("--gan-iters", type=int, default=1000)
    p.add_argument("--encoder-iters", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/results/recipe")
    p.add_argument("--docs", default="docs/benchmarks")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny budgets, one seed, two variants")
    p.add_argument("--record", action="store_true", help="write the recipe section of BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.gan_iters, args.encoder_iters, args.seeds, args.variants = 2, 2, "0", "base,early_stopping"
        args.image_size, args.dim = 16, 8
    args.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args.commit = git_commit()
    variants = args.variants.split(",")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        p.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    from tf_fanogan.datasets import load_elpv

    data = load_elpv(seed=0)
    if args.quick:
        data = {k: (v[:40] if k != "test_labels" else v) for k, v in data.items()}
        data["test_images"] = np.concatenate([data["test_normal"][:20], data["test_anomalous"][:20]])
        data["test_labels"] = np.r_[np.zeros(20, int), np.ones(20, int)]
    units = Units(args.out)
    t0 = time.time()
    results = []
    for seed in seeds:  # seed-major: every variant has its first seed early
        for variant in variants:
            results.append(units.run(f"{variant}/seed{seed}", lambda: run_unit(variant, seed, data, args)))
    text = markdown(results, args, time.time() - t0)
    print(text)
    if args.record:
        from benchmarks._report import write_section

        write_section("recipe", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
