"""Magnetic tile at native resolution (64x64 tiles) vs squashed to 32x32, over seeds.

Two izi_f detectors per seed on the shared magnetic-tile set (``MT_Free`` normal, five defect
classes anomalous, pixel masks): ``squashed_32`` resizes every tile image to 32x32, as
``benchmarks.quality`` does; ``tiles_64`` keeps native resolution with ``data.tile_stride: 32``
(a 64x64 model trained on every 64x64 tile of the normal images; an image's score is its
highest tile score, its map the stitched tile maps). Both at the ``make demo`` budget in updates.
Reported (mean ± std over seeds): image AUROC, pixel AUROC and AUPRO (FPR <= 0.3) -- **both on
the masks at native resolution** (the squashed detector's 32x32 maps are up-sampled bilinearly
to each image's size, so neither variant is judged on a coarser ground truth) -- the false
positive rate of p <= 0.05 on the test normals, held-out normal izi, and time. Beside them the
image AUROC of the same networks scored by ``scoring.method: critic_nn`` (the critic-feature
distance to the nearest memorized normal training tile; the maps are the same).

    python -m benchmarks.tiles --record       # resumable per (variant, seed)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.units import Units, fmt, git_commit, variant_rows  # noqa: E402

VARIANTS = {"squashed_32": (32, None), "tiles_64": (64, 32)}  # name: (model size, tile stride)


def config(args, variant: str, seed: int):
    from tf_fanogan.recipes import cpu_recipe

    size, stride = VARIANTS[variant]
    if args.quick:  # 16x16 models; tiles of 16 at stride 8
        size, stride = 16, (8 if stride else None)
    cfg = cpu_recipe(size, 1, args.dim, gan_iterations=args.gan_iters, encoder_iterations=args.encoder_iters,
                     seed=seed, **({"jit_compile": False} if args.quick else {}))
    cfg.data.tile_stride = stride
    if args.quick:
        cfg.encoder.jit_compile = False
    return cfg.validate()


def native_maps(det, images) -> list[np.ndarray]:
    """Residual maps at each image's resolution: stitched (tiled) or up-sampled (squashed)."""
    import tensorflow as tf

    from tf_fanogan import signatures as sig

    maps = []
    for lo in range(0, len(images), 64):  # bounded memory
        part = list(images[lo:lo + 64])
        got = det.residual_maps(part)[sig.RESIDUAL_MAP]
        if det.config.data.tile_stride is None:
            got = [tf.image.resize(m[None], img.shape[:2], "bilinear").numpy()[0].mean(-1)
                   for m, img in zip(got, part)]
        maps += list(got)
    return maps


def run_unit(variant: str, seed: int, data, args) -> dict:
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation.metrics import image_metrics, pixel_metrics

    cfg = config(args, variant, seed)
    det = FAnoGAN(cfg)
    t = time.time()
    det.fit(list(data["train"]), validation=list(data["holdout"]), workdir=workdir(args, variant, seed), verbose=0)
    train_s = time.time() - t
    det.calibrate(list(data["holdout"]), fpr=0.05)
    hold = det.score(list(data["holdout"]))
    t = time.perf_counter()
    test = det.score(list(data["test_images"]), tiles=cfg.data.tile_stride is not None)
    score_s = time.perf_counter() - t
    labels = data["test_labels"]
    maps = native_maps(det, data["test_images"])
    pix = pixel_metrics(list(data["test_masks"]), maps)
    result = {
        "variant": variant, "seed": seed, "config": cfg.to_dict(),
        "auroc": image_metrics(labels, test[sig.ANOMALY_SCORE])["auroc"],
        "pixel_auroc": pix["pixel_auroc"], "aupro": pix["aupro_0.3"],
        "test_normal_fpr_p05": float(np.mean(test[sig.P_VALUE][labels == 0] <= 0.05)),
        "holdout_izi": float(hold[sig.RESIDUAL_SCORE].mean()),
        "n_train_tiles": int(sum(len(_positions(img, cfg)) for img in data["train"])),
        "train_s": train_s, "ms_per_image": 1000 * score_s / len(labels),
        "n_images": {"train": len(data["train"]), "holdout": len(data["holdout"]),
                     "test_normal": int((labels == 0).sum()), "test_defective": int((labels == 1).sum())},
    }
    if cfg.data.tile_stride is not None:  # the other image score, data.tile_score: top_k_mean
        result["auroc_top_k_mean"] = image_metrics(labels, test["tile_top_k_mean"])["auroc"]
    result.update(critic_nn_figures(det, data))
    if seed == 0:
        result["pictures"] = pictures(det, data, maps, variant, args)
    print(f"[tiles] {variant} seed {seed}: AUROC {result['auroc']:.4f}, pixel AUROC {result['pixel_auroc']:.4f}, "
          f"AUPRO {result['aupro']:.4f} (train {train_s:.0f} s)", flush=True)
    return result


def workdir(args, variant: str, seed: int) -> str:
    return os.path.join(args.out, "work", f"{variant}_seed{seed}")


def critic_nn_figures(det, data) -> dict:
    """The same networks scored by ``scoring.method: critic_nn`` (the critic-feature distance to
    the nearest memorized normal training tile): image AUROC and the test-normal FPR of p <= 0.05."""
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation.metrics import image_metrics

    cfg = type(det.config).from_dict(det.config.to_dict())
    cfg.scoring.method = "critic_nn"
    nn = FAnoGAN.from_networks(cfg, det.generator, det.critic, det.encoder).memorize(list(data["train"]))
    nn.calibrate(list(data["holdout"]), fpr=0.05)
    test, labels = nn.score(list(data["test_images"])), data["test_labels"]
    return {"auroc_critic_nn": image_metrics(labels, test[sig.ANOMALY_SCORE])["auroc"],
            "test_normal_fpr_p05_critic_nn": float(np.mean(test[sig.P_VALUE][labels == 0] <= 0.05)),
            "n_memory": int(len(nn.memory_))}


def missing(u: dict) -> list[str]:
    """Figures a stored unit lacks because it finished before they were recorded."""
    out = [] if VARIANTS[u["variant"]][1] is None or "auroc_top_k_mean" in u else ["auroc_top_k_mean"]
    return out + ([] if "auroc_critic_nn" in u else ["auroc_critic_nn"])


def amend(units: Units, key: str, data, args) -> None:
    """A unit stored before some figures were recorded (:func:`missing`): the detector in its work
    directory (finished stages load, nothing trains) scores again. It must give the unit's stored
    held-out normal izi, or the work directory is not the unit's detector."""
    from tf_fanogan import FAnoGAN
    from tf_fanogan import signatures as sig
    from tf_fanogan.evaluation.metrics import image_metrics

    u = units.get(key)
    work = workdir(args, u["variant"], u["seed"])
    if not os.path.isdir(os.path.join(work, "encoder_done")):
        print(f"[tiles] {key}: not amended with {missing(u)} (its detector is not in {work})", flush=True)
        return
    print(f"[tiles] {key}: scoring again for {missing(u)}", flush=True)
    det = FAnoGAN(config(args, u["variant"], u["seed"]))
    det.fit(list(data["train"]), validation=list(data["holdout"]), workdir=work, verbose=0)
    izi = float(det.score(list(data["holdout"]))[sig.RESIDUAL_SCORE].mean())
    if abs(izi - u["holdout_izi"]) > 1e-6 * max(1.0, abs(u["holdout_izi"])):
        raise RuntimeError(f"{work}: the rebuilt detector's held-out izi {izi:.8f} is not the unit's "
                           f"{u['holdout_izi']:.8f}")
    figures = {}
    if "auroc_top_k_mean" in missing(u):
        test = det.score(list(data["test_images"]), tiles=True)
        figures["auroc_top_k_mean"] = image_metrics(data["test_labels"], test["tile_top_k_mean"])["auroc"]
    if "auroc_critic_nn" in missing(u):
        figures.update(critic_nn_figures(det, data))
    units.amend(key, figures)


def _positions(image, cfg):
    from tf_fanogan.data import tiles

    if cfg.data.tile_stride is None:
        return [0]
    h, w = (max(s, cfg.model.image_size) for s in np.shape(image)[:2])
    return tiles.tile_positions((h, w), cfg.model.image_size, cfg.data.tile_stride)


def pictures(det, data, maps, variant: str, args) -> list[str]:
    """G(z) samples, and normal / defective test images with their reconstructions and maps."""
    from tf_fanogan import signatures as sig
    from tf_fanogan.reporting import visualize

    folder = os.path.join(args.docs, f"tiles_{variant}")
    samples, _ = visualize.generator_grids_png(det.generator, folder, n_samples=32,
                                                latent_prior=det.config.model.latent_prior)
    labels = data["test_labels"]
    pick = np.r_[np.flatnonzero(labels == 0)[:3], np.flatnonzero(labels == 1)[::40][:3]]
    images = [data["test_images"][i] for i in pick]
    shown = det.prepare(images, native=True)  # the input at its resolution, for both variants
    recon = det.residual_maps(images)[sig.RECONSTRUCTION]
    vmax = visualize.map_scale([maps[i] for i in np.flatnonzero(labels == 0)])
    path = visualize.triptychs_png(list(shown), list(recon), [maps[i] for i in pick],
                                   os.path.join(folder, "normal_and_defective.png"), vmax,
                                   titles=["normal"] * 3 + ["defective"] * 3)
    return [samples, path]


def _doc(path: str, variant: str) -> str:
    return f"docs/benchmarks/tiles_{variant}/{os.path.basename(path)}"


def markdown(results: list[dict], args) -> str:
    from benchmarks._report import machine

    commits = sorted({r.get("commit", "unknown")[:10] for r in results}) or [git_commit()[:10]]
    n = results[0].get("n_images", {}) if results else {}
    lines = ["## Magnetic tile at native resolution vs squashed (`benchmarks/tiles.py`)", "",
             f"Command: `python -m benchmarks.tiles --record`, units run from a worktree of commit(s) "
             f"{', '.join(f'`{c}`' for c in commits)}. Machine: {machine()}. Shared magnetic-tile set: "
             f"{n.get('train', '?')} MT_Free train / {n.get('holdout', '?')} hold-out / {n.get('test_normal', '?')} "
             f"test normal, {n.get('test_defective', '?')} defective test images with pixel masks, at native "
             f"resolution. Both variants: CPU recipe, width {args.dim}, {args.gan_iters} generator and "
             f"{args.encoder_iters} izi_f encoder updates, threshold and p-values from the hold-out. `tiles_64`: "
             "64×64 model, `data.tile_stride: 32`, image score = its highest tile score (`data.tile_score: max`, the "
             "default; beside it the AUROC of the other setting, `top_k_mean` of the 5 highest tiles, from the same "
             "scoring; a squashed image is one tile). `critic_nn score`: the same networks with `scoring.method: "
             "critic_nn`, an image scored by its tiles' critic-feature distances to the nearest of up to 8192 "
             "memorized normal training tiles (a seeded subset of the training tiles), calibrated on the same "
             "hold-out; beyond the paper. Pixel metrics on the "
             "native-resolution masks for both (squashed maps up-sampled bilinearly). Mean ± std over seeds.", "",
             "| variant | seeds | image AUROC | image AUROC, top-5 tile mean | image AUROC, critic_nn score | pixel "
             "AUROC | AUPRO (FPR ≤ 0.3) | FPR of p ≤ 0.05 on test normals | held-out normal izi | training tiles | "
             "train s | ms / image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    top_k = lambda rs, col: (col("auroc_top_k_mean") if all("auroc_top_k_mean" in r for r in rs)  # noqa: E731
                             else "—" if VARIANTS[rs[0]["variant"]][1] is None else "not measured")
    def nn(rs):  # seeds whose detector was there to amend the unit; their count where not all
        have = [r["auroc_critic_nn"] for r in rs if "auroc_critic_nn" in r]
        return "not measured" if not have else fmt(have) + ("" if len(have) == len(rs) else f" ({len(have)} seeds)")

    lines += variant_rows(results, VARIANTS, lambda v, rs, col: (
        v, len(rs), col("auroc"), top_k(rs, col), nn(rs), col("pixel_auroc"), col("aupro"),
        col("test_normal_fpr_p05", 3),
        col("holdout_izi"), rs[0]["n_train_tiles"], col("train_s", 0), col("ms_per_image", 1)))
    pics = [(r["variant"], r["pictures"]) for r in results if r.get("pictures")]
    if pics:
        lines += ["", "Seed 0: " + "; ".join(f"{v}: [samples]({_doc(p[0], v)}), [normal and defective test images, "
                                             f"reconstructions, maps]({_doc(p[1], v)})" for v, p in pics) + "."]
    lines += ["", "Train seconds are upper bounds where other jobs shared the 2 cores. Only finished "
              f"(variant, seed) units are shown; per-seed values in `{os.path.relpath(args.out, args.root)}/units/`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--dim", type=int, default=16)
    p.add_argument("--gan-iters", type=int, default=1000)
    p.add_argument("--encoder-iters", type=int, default=1000)
    p.add_argument("--out", default="benchmarks/results/tiles")
    p.add_argument("--docs", default="docs/benchmarks")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 24 crops, 16x16 models and tiles, 2 updates, one seed")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--record", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.gan_iters = args.encoder_iters = 2
        args.seeds, args.dim = "0", 8
    args.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    units = Units(args.out)
    data = None
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for variant in VARIANTS:
            key = f"{variant}/seed{seed}"
            done = units.get(key)
            todo = done is not None and bool(missing(done))
            if args.report_only or (done is not None and not todo):
                if done is not None:
                    results.append(done)
                continue
            if data is None:
                data = load(args)
                if data is None:
                    print("[tiles] skipped: the shared magnetic-tile data is absent (see ../shared/data/README.md)")
                    return 0
            if todo:
                amend(units, key, data, args)
            results.append(units.run(key, lambda: run_unit(variant, seed, data, args)))
    text = markdown(results, args)
    print(text)
    if args.record:
        from benchmarks._report import write_section

        write_section("tiles", text)
    return 0


def load(args):
    from tf_fanogan.paper.datasets import load_magnetic_tile

    try:
        data = load_magnetic_tile(None, seed=0)
    except FileNotFoundError:
        return None
    if args.quick:  # small crops of a few images: a smoke run of every step
        crop = lambda xs: [x[:40, :56] for x in xs]  # noqa: E731
        keep = np.r_[np.flatnonzero(data["test_labels"] == 0)[:6], np.flatnonzero(data["test_labels"] == 1)[:6]]
        masks = [data["test_masks"][i][:40, :56].copy() for i in keep]
        for m in masks[6:]:
            m[18:22, 20:30] = True  # crops may miss the defect: keep one region per defective crop
        data = {"train": crop(data["train"][:24]), "holdout": crop(data["holdout"][:20]),
                "test_images": crop(data["test_images"][keep]), "test_labels": data["test_labels"][keep],
                "test_masks": masks}
    return data


if __name__ == "__main__":
    sys.exit(main())
