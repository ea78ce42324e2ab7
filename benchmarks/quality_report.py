"""The quality benchmark's BENCHMARKS.md sections, written from its stored units only.

One section per data set and budget (``quality-<data>-<budget>``): every method's rows over
seeds. Fashion-MNIST's ten one-class problems share one section (``quality-fashion_mnist-<budget>``):
a table of AUROC per normal class and method, and their mean over classes, the figure the
paper (and issue 14's target) quote.
"""

from __future__ import annotations

import math
import re

from benchmarks._report import machine, median
from benchmarks.units import fmt, mean_std

ONE_CLASS = "fashion_mnist_c"  # data set names of the one-class problems: fashion_mnist_c0 ... c9
MAIN_ORDER = ("izi_f", "critic-only", "A_R only")  # first columns / rows; the rest keep their stored order
REFERENCE = "pixel 1-NN"  # the no-training reference's row: last
LONGER = "izi_f_x4"  # the unit of izi_f with more encoder updates on the same GAN
DIAGNOSTIC = "(diagnostic)"  # rows that explain a score rather than offer one: never marked best


def sections(names, budget: str, units: dict, encoder_methods, fpr: float, subset_row: str) -> dict[str, str]:
    """``{section name: markdown}`` for the data sets ``names`` that have stored units."""
    out = {}
    for name in names:
        if not name.startswith(ONE_CLASS):
            text = markdown(name, budget, units, encoder_methods, fpr, subset_row)
            if text:
                out[f"quality-{name}-{budget}"] = text
    classes = [n for n in names if n.startswith(ONE_CLASS)]
    if classes:
        text = one_class_markdown(classes, budget, units, encoder_methods, fpr)
        if text:
            out[f"quality-{ONE_CLASS[:-2]}-{budget}"] = text
    return out


def _mine(name: str, budget: str, units: dict) -> dict:
    prefix = f"{name}/{budget}/"
    return {k[len(prefix):]: v for k, v in units.items() if k.startswith(prefix)}


def _seeds(mine: dict) -> list[str]:
    return sorted({k.split("/")[0] for k in mine if k.startswith("seed")}, key=lambda s: int(s[4:]))


def _rows(mine: dict, seeds, encoder_methods) -> tuple[dict, dict]:
    """Per row: its metrics per seed, and its ms / image per seed."""
    rows: dict[str, list[dict]] = {}
    speed: dict[str, list[float]] = {}
    for seed in seeds:
        for method in (*encoder_methods, LONGER, "ae", "iterative", "knn", "critic_knn"):
            u = mine.get(f"{seed}/{method}")
            if u is None:
                continue
            for row, m in u["rows"].items():
                rows.setdefault(row, []).append(m)
                ms = u["ms_per_image"][row] if isinstance(u["ms_per_image"], dict) else u["ms_per_image"]
                speed.setdefault(row, []).append(ms)
    return rows, speed


def _recipe(meta: dict, fpr: float) -> str:
    c = meta["config"]
    prior = c["model"].get("latent_prior", "normal")
    head = "z ~ N(0, I) with a linear encoder head" if prior == "normal" else "z ~ U(-1, 1) with a tanh encoder head"
    return (f"CPU recipe (`tf_fanogan.recipes.cpu_recipe`): {c['model']['image_size']}×{c['model']['image_size']}, "
            f"width {c['model']['dim']}, {head}; {c['gan']['iterations']} generator updates (batch "
            f"{c['gan']['batch_size']}, Adam {c['gan']['learning_rate']:g}) and {c['encoder']['iterations']} encoder "
            f"updates per detector. {meta['n_train']} normal training images, {meta['n_holdout']} held-out normal "
            f"images (thresholds at {fpr:.0%} FPR, AE early stopping, iterative step size), test "
            f"{meta['n_test_items']} items ({meta['n_test_anomalous']} anomalous)")


def _spread_note(n_holdout: int, n_test: int, alpha: float) -> str:
    """How far one calibration's test FPR scatters under exchangeability: the conformal FPR
    given a hold-out of n is Beta-distributed with variance about alpha(1-alpha)/(n+2), and the
    test normals are a binomial sample of it."""
    if not (n_holdout and n_test):
        return "a figure above it says they are not."
    sd = math.sqrt(alpha * (1 - alpha) * (1 / (n_holdout + 2) + 1 / n_test))
    return (f"under it, one calibration's FPR on {n_test} test normals scatters by about ±{sd:.3f} (one std: the "
            f"hold-out's {n_holdout} and the test's images are both samples), so only a figure more than about "
            f"{alpha + 2 * sd:.3f} says the test normals differ from the hold-out (another acquisition, another "
            "split of the source).")


def _knn_note(mine: dict, with_fpr: bool = True) -> list[str]:
    """What the nearest-neighbour rows are: the pixel reference and the critic_nn score."""
    out = []
    u = mine.get("seed0/knn")
    if u is not None:
        out += ["", f"{next(iter(u['rows']))}: a reference with no training and no seed (so one run): the RMS pixel "
                f"distance, at the model's input size, of each image to its nearest of the {u['n_train']} normal "
                "training images (`tf_fanogan.paper.baselines.nearest_neighbour_distance`). A learned detector "
                "that does not beat it has learned no more than a memory of the training set holds."]
    nn = [v for k, v in sorted(mine.items()) if k.endswith("/critic_knn")]
    if nn:
        c = nn[0]
        fpr = [v["test_normal_fpr"]["p_value <= 0.05"] for v in nn if "test_normal_fpr" in v]
        out += ["", f"{next(iter(c['rows']))}: the izi_f detector with `scoring.method: critic_nn` (beyond the "
                f"paper): its anomaly score is the RMS distance of the critic's features f(x) ({c['feature_dim']} "
                f"values, the features of A_D) to the nearest of {c['n_memory']} normal training images' f, a "
                "memory stored with the detector and exported in the SavedModel's variables (`FAnoGAN.memorize`, "
                "`tf_fanogan.scoring.memory`); calibrated on the same hold-out. The same networks as the izi_f row, "
                "with no G(E(x)) in the way: where it beats izi_f and critic-only, the critic's features tell "
                "anomalies apart and the reconstruction is what loses it."
                + (f" FPR of `p_value <= 0.05` on the test normals: {fmt(fpr, 3)}." if fpr and with_fpr else "")]
    return out


def _encoder_budget_note(mine: dict, seeds) -> list[str]:
    """izi_f with more encoder updates against izi_f, paired by seed: held-out normal izi and AUROC."""
    pairs = [(mine[f"{s}/izi_f"], mine[f"{s}/{LONGER}"]) for s in seeds
             if f"{s}/izi_f" in mine and f"{s}/{LONGER}" in mine]
    if not pairs:
        return []
    row = next(iter(pairs[0][1]["rows"]))
    updates = pairs[0][1]["updates"]["encoder"] / pairs[0][0]["updates"]["encoder"]
    izi = [(a["holdout_izi"], b["holdout_izi"]) for a, b in pairs]
    auc = [(a["rows"]["izi_f"]["auroc"], b["rows"][row]["auroc"]) for a, b in pairs]
    return ["", f"Encoder budget: {row} ({updates:g}× the izi_f unit's encoder updates, the same GAN), paired by "
            f"seed over {len(pairs)}: held-out normal izi {fmt([a for a, _ in izi])} → {fmt([b for _, b in izi])} "
            f"(lower on {sum(b < a for a, b in izi)} of {len(izi)}), AUROC {fmt([a for a, _ in auc])} → "
            f"{fmt([b for _, b in auc])} (higher on {sum(b > a for a, b in auc)} of {len(auc)})."]


def _commits(units) -> str:
    return ", ".join(f"`{x}`" for x in sorted({v["commit"][:10] for v in units if "commit" in v}))


def _is_main(row: str) -> bool:
    return "subset" not in row and not row.startswith("iterative")


def _may_be_best(row: str) -> bool:
    """A row the bold "best" may mark: a method a user can score with, not a diagnostic."""
    return _is_main(row) and not row.endswith(DIAGNOSTIC)


def _order(rows) -> list[str]:
    """The paper's rows first, then the other methods as stored, the no-training reference last."""
    return sorted(rows, key=lambda r: (not _is_main(r), r not in MAIN_ORDER, r.startswith(REFERENCE),
                                       MAIN_ORDER.index(r) if r in MAIN_ORDER else 0))


def markdown(name: str, budget: str, units: dict, encoder_methods, fpr: float, subset_row: str) -> str | None:
    mine = _mine(name, budget, units)
    meta = mine.get("meta")
    if meta is None:
        return None
    seeds = _seeds(mine)
    rows, speed = _rows(mine, seeds, encoder_methods)
    lines = [f"## Quality: {name}, {budget} budget", "",
             f"{meta['description']}. Command: `python -m benchmarks.quality --datasets {name} "
             f"--budget {budget} --record`, run from a worktree of commit(s) {_commits(mine.values())}. "
             f"Machine: {machine()}.",
             f"{_recipe(meta, fpr)}. Seeds: {len(seeds)} (weights, noise and order; the data split is fixed). "
             "Mean ± std over seeds; per-seed values in `benchmarks/results/quality/units/`. Times per "
             "image are medians over seeds: a unit timed while another job shared the 2 cores reads slower.", "",
             "| method | seeds | AUROC | AUPR | F1 | ms / image (median) |", "|---|---|---|---|---|---|"]
    main_rows = [r for r in rows if _may_be_best(r)]
    best = max(main_rows, key=lambda r: mean_std([m["auroc"] for m in rows[r]])[0]) if main_rows else None
    for row in sorted(rows, key=lambda r: (not _is_main(r), r != "izi_f", r.startswith(REFERENCE))):
        ms = rows[row]
        label = f"**{row}**" if row == best else row
        lines.append(f"| {label} | {len(ms)} | {fmt([m['auroc'] for m in ms])} | {fmt([m['aupr'] for m in ms])} | "
                     f"{fmt([m['f1'] for m in ms])} | {median(speed[row]):.3f} |")
    it = [mine[f"{s}/iterative"] for s in seeds if f"{s}/iterative" in mine]
    if it:
        grid = sorted({float(lr) for u in it for v in u["learning_rate"].values() for lr in v["mean_objective"]})
        chosen = ", ".join(f"{k} " + "/".join(f"{u['learning_rate'][k]['chosen']:g}" for u in it)
                           for k in it[0]["learning_rate"])
        edge = any(v["chosen"] == max(map(float, v["mean_objective"])) for u in it for v in u["learning_rate"].values())
        lines += ["", f"Iterative rows and the f-AnoGAN subset row: a seeded, class-balanced subset of "
                  f"{it[0]['n_items']} test items ({it[0]['n_images']} images) per seed; step size chosen per seed "
                  f"from {', '.join(f'{g:g}' for g in grid)} by the lowest mean objective on 32 held-out normal images "
                  f"(chosen, per seed: {chosen})"
                  + ("; a chosen size at the top of its grid means a larger one might search better." if edge
                     else ".")]
        slow = max((r for r in rows if r.startswith("iterative (anogan, from prior")),
                   key=lambda r: int(re.search(r"(\d+) steps", r).group(1)), default=None)
        ratios = [u["ms_per_image"][slow] / u["ms_per_image"][subset_row] for u in it if slow in u["ms_per_image"]]
        if ratios:  # each ratio within one unit: both timed in one process, on the same images
            lines += ["", f"Speed: f-AnoGAN's one forward pass is {median(ratios):.0f}× faster per image than {slow} "
                      "on the same subset (both batched and compiled; median over seeds of each seed's ratio, both "
                      "timed in one run; per seed " + ", ".join(f"{r:.0f}×" for r in ratios) + ": a ratio timed "
                      "while another job shared the cores is off by as much as that job took)."]
    ae = [mine[f"{s}/ae"] for s in seeds if f"{s}/ae" in mine]
    if ae:
        lines += ["", "AE: Adam rate chosen from " + ", ".join(ae[0]["choice"]["learning_rates"]) +
                  " by the held-out normal MSE, early stopping (patience 5 epochs) on it; chosen per seed: " +
                  ", ".join(f"{u['choice']['chosen_learning_rate']:g}" for u in ae) + "."]
    lines += _knn_note(mine) + _encoder_budget_note(mine, seeds)
    fprs = [mine[f"{s}/izi_f"]["test_normal_fpr"] for s in seeds if "test_normal_fpr" in mine.get(f"{s}/izi_f", {})]
    if fprs:
        lines += ["", f"False-positive rate on the **test** normals ({fprs[0]['n_test_normals']} images; hold-out "
                  f"{fprs[0]['n_holdout']}), izi_f: flagging `p_value <= 0.05` "
                  f"{fmt([f['p_value <= 0.05'] for f in fprs])}, the 5%-FPR threshold "
                  f"{fmt([f['threshold at 5% hold-out FPR'] for f in fprs])}. The p-value's guarantee (FPR <= 5%) "
                  "holds for test normals exchangeable with the hold-out; "
                  + _spread_note(fprs[0]["n_holdout"], fprs[0]["n_test_normals"], fpr)]
    pics = [u.get("pictures") for s in seeds for u in [mine.get(f"{s}/izi_f")] if u and u.get("pictures")]
    if pics:
        lines += ["", f"Seed 0: [G(z) samples]({pics[0][0]}), [held-out normal images and reconstructions]({pics[0][1]})."]
    walls = [u.get("unit_wall_s", 0) for u in mine.values() if isinstance(u, dict)]
    lines += ["", f"Total unit wall time: {sum(walls) / 3600:.2f} h."]
    return "\n".join(lines) + "\n"


def one_class_markdown(classes, budget: str, units: dict, encoder_methods, fpr: float) -> str | None:
    """One table for the one-class problems: AUROC (mean ± std over seeds) per normal class and
    method, the mean over the classes that have it, and the test-normal FPR of ``p_value <= 0.05``."""
    per_class = {}
    for name in classes:
        mine = _mine(name, budget, units)
        if mine.get("meta") is not None and _seeds(mine):
            per_class[name] = mine
    if not per_class:
        return None
    cols: list[str] = []
    table = {}  # class -> row -> AUROC per seed
    for name, mine in per_class.items():
        rows, _ = _rows(mine, _seeds(mine), encoder_methods)
        table[name] = {r: [m["auroc"] for m in ms] for r, ms in rows.items()}
        cols += [r for r in rows if r not in cols]
    cols = _order(cols)
    means = {c: [mean_std(table[n][c])[0] for n in table if c in table[n]] for c in cols}
    n = len(per_class)  # the best mean is only bold among the columns that cover every class
    best = max((c for c in cols if _may_be_best(c) and len(means[c]) == n), key=lambda c: mean_std(means[c])[0],
               default=None)
    meta = next(iter(per_class.values()))["meta"]
    lines = [f"## Quality: Fashion-MNIST one-class, {budget} budget", "",
             f"Each class in turn is normal: its training images train the detector, {meta['n_holdout']} of them "
             f"are held out; the whole test set is scored ({meta['n_test_items']} images, "
             f"{meta['n_test_anomalous']} of other classes anomalous); 28×28 zero-padded to the model size. Command: "
             f"`python -m benchmarks.quality --datasets fashion_mnist --fmnist-classes 0-9 --budget {budget} "
             f"--record`, run from a worktree of commit(s) {_commits(u for m in per_class.values() for u in m.values())}."
             f" Machine: {machine()}.",
             f"{_recipe(meta, fpr)}. AUROC per normal class, mean ± std over its seeds (seeds column); the last row "
             "is the mean over classes (of each class's mean), with the number of classes where it differs. "
             "Per-seed values and every other figure (AUPR, F1, times) in `benchmarks/results/quality/units/`.", "",
             "| normal class | seeds | " + " | ".join(cols) + " | FPR of p ≤ 0.05 on test normals |",
             "|---" * (len(cols) + 3) + "|"]
    all_fpr = []
    for name, mine in per_class.items():
        seeds = _seeds(mine)
        fprs = [mine[f"{s}/izi_f"]["test_normal_fpr"]["p_value <= 0.05"] for s in seeds
                if "test_normal_fpr" in mine.get(f"{s}/izi_f", {})]
        if fprs:
            all_fpr.append(mean_std(fprs)[0])
        label = mine["meta"]["description"].split("normal class ", 1)[-1].split(";")[0]
        cells = [fmt(table[name][c]) if c in table[name] else "—" for c in cols]
        lines.append(f"| {label} | {len(seeds)} | " + " | ".join(cells) + f" | {fmt(fprs, 3) if fprs else '—'} |")
    mean_cells = []
    for c in cols:
        m = f"{mean_std(means[c])[0]:.4f}" + (f" ({len(means[c])})" if len(means[c]) != n else "")
        mean_cells.append(f"**{m}**" if c == best else m)
    lines.append(f"| mean over {n} class{'es' if n > 1 else ''} | | " + " | ".join(mean_cells) +
                 f" | {mean_std(all_fpr)[0]:.3f}" + (f" ({len(all_fpr)})" if len(all_fpr) != n else "") + " |")
    n_hold, n_test = next(((u["test_normal_fpr"]["n_holdout"], u["test_normal_fpr"]["n_test_normals"])
                           for m in per_class.values() for u in m.values()
                           if isinstance(u, dict) and "n_test_normals" in u.get("test_normal_fpr", {})), (0, 0))
    lines += ["", f"FPR column: the share of the normal class's {n_test} **test** images flagged by "
              "`p_value <= 0.05` (izi_f, calibrated on the class's hold-out); its guarantee (FPR <= 5%) holds for "
              "test normals exchangeable with the hold-out (here: the same source, another split); "
              + _spread_note(n_hold, n_test, fpr)]
    lines += max((_knn_note(mine, with_fpr=False) for mine in per_class.values()), key=len, default=[])
    pics = [(name, u["pictures"]) for name, mine in per_class.items() for u in [mine.get("seed0/izi_f")]
            if u and u.get("pictures")]
    if pics:
        lines += ["", "Seed 0, G(z) samples and held-out normal reconstructions: " + "; ".join(
            f"class {name[len(ONE_CLASS):]} [samples]({p[0]}), [reconstructions]({p[1]})" for name, p in pics) + "."]
    walls = [u.get("unit_wall_s", 0) for m in per_class.values() for u in m.values() if isinstance(u, dict)]
    lines += ["", f"Total unit wall time: {sum(walls) / 3600:.2f} h. Only finished (class, method, seed) units "
              "are shown; the run resumes per unit."]
    return "\n".join(lines) + "\n"
