"""Pictures of results as PNG files (matplotlib only, no display needed).

ROC and PR curves, score histograms of normal vs anomalous images with the threshold,
input / reconstruction / residual-overlay triptychs on a colour scale fixed per data set
(:func:`map_scale` on normal images' maps), grids of the most and least anomalous images, and
an anomaly heatmap over an image (used for stitched OCT B-scan heatmaps). Every function
writes one PNG atomically and returns its path.
"""

from __future__ import annotations

import os

import numpy as np

from tf_fanogan.models import latent as latent_lib
from tf_fanogan.utils.atomic import write_file_atomically


def _figure(width=5.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.figure(figsize=(width, height), dpi=100)


def _save(plt, fig, path: str) -> str:
    fig.tight_layout()
    write_file_atomically(path, lambda f: fig.savefig(f, format="png"), mode="wb")
    plt.close(fig)
    return path


def roc_curve_png(labels, scores, path: str, title: str = "ROC") -> str:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    plt, fig = _figure()
    ax = fig.add_subplot()
    ax.plot(fpr, tpr, lw=2, label=f"AUROC {roc_auc_score(labels, scores):.4f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate (sensitivity)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def pr_curve_png(labels, scores, path: str, title: str = "Precision-recall") -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores)
    plt, fig = _figure()
    ax = fig.add_subplot()
    ax.plot(recall, precision, lw=2, label=f"AUPR {average_precision_score(labels, scores):.4f}")
    ax.axhline(np.mean(labels), ls="--", color="grey", lw=1, label="chance")
    ax.set(xlabel="recall (sensitivity)", ylabel="precision", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower left")
    return _save(plt, fig, path)


def score_histogram_png(labels, scores, path: str, threshold: float | None = None,
                        title: str = "Anomaly scores") -> str:
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, np.float64)
    bins = np.linspace(scores.min(), scores.max(), 50)
    plt, fig = _figure(6, 4)
    ax = fig.add_subplot()
    ax.hist(scores[~labels], bins=bins, alpha=0.6, density=True, label=f"normal ({(~labels).sum()})")
    ax.hist(scores[labels], bins=bins, alpha=0.6, density=True, label=f"anomalous ({labels.sum()})")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", label=f"threshold {threshold:.4g}")
    ax.set(xlabel="anomaly score A(x)", ylabel="density", title=title)
    ax.legend()
    return _save(plt, fig, path)


def heatmap_png(image: np.ndarray, heatmap: np.ndarray, path: str, vmax: float | None = None,
                title: str | None = None) -> str:
    """The image beside it with the heatmap overlaid (NaN = not scored, left transparent).

    ``vmax`` fixes the colour scale (use one per data set, e.g. a high percentile of normal
    images' maps) so that normal images do not all look hot.
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    heat = np.ma.masked_invalid(np.asarray(heatmap, np.float64))
    vmax = float(vmax) if vmax is not None else float(np.nanpercentile(heatmap, 99.5))
    h, w = image.shape[:2]
    plt, fig = _figure(2 * 4.0 * w / max(h, w) + 0.8, 4.0 * h / max(h, w) + 0.6)
    for i, overlay in enumerate((False, True)):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.imshow(image, cmap="gray")
        if overlay:
            im = ax.imshow(heat, cmap="inferno", alpha=0.55, vmin=0, vmax=vmax)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label="residual")
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(plt, fig, path)


def map_scale(normal_maps, percentile: float = 99.5) -> float:
    """One colour-scale maximum per data set: a high percentile of normal images' residual maps
    (from calibration data), so that normal images do not all look hot."""
    values = np.concatenate([np.ravel(np.asarray(m, np.float64)) for m in normal_maps])  # maps of any sizes
    return float(np.percentile(values[np.isfinite(values)], percentile))


def _gray(img):
    img = np.asarray(img, np.float32)
    return img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img


def triptychs_png(images, reconstructions, residual_maps, path: str, vmax: float, titles=None,
                  overlay: bool = True) -> str:
    """One row per image: input, reconstruction G(E(x)), residual |x - G(E(x))| overlaid on the
    input (colour scale 0..``vmax``, fixed per data set), all in [0, 1] input units."""
    n = len(images)
    plt, fig = _figure(7.5, 2.4 * n + 0.3)
    for i in range(n):
        res = np.asarray(residual_maps[i], np.float32)
        res = res.mean(-1) if res.ndim == 3 else res
        cells = ((images[i], None, "input"), (reconstructions[i], None, "reconstruction"),
                 (images[i] if overlay else None, res, "residual"))
        for j, (base, heat, name) in enumerate(cells):
            ax = fig.add_subplot(n, 3, 3 * i + j + 1)
            if base is not None:
                b = _gray(base)
                ax.imshow(b, cmap="gray" if b.ndim == 2 else None, vmin=0, vmax=1)
            if heat is not None:
                im = ax.imshow(heat, cmap="inferno", alpha=0.6 if overlay else 1.0, vmin=0, vmax=vmax)
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            ax.set_axis_off()
            ax.set_title(f"{name}" + (f"\n{titles[i]}" if titles is not None and j == 0 else ""), fontsize=8)
    return _save(plt, fig, path)


def extremes_png(images, scores, path: str, k: int = 8, names=None) -> str:
    """Two rows: the ``k`` most anomalous images (highest scores) and the ``k`` least."""
    scores = np.asarray(scores, np.float64)
    order = np.argsort(scores, kind="stable")
    picks = [("most anomalous", order[::-1][:k]), ("least anomalous", order[:k])]
    k = min(k, len(scores))
    plt, fig = _figure(1.6 * k, 4.0)
    for r, (label, idx) in enumerate(picks):
        for c, i in enumerate(idx):
            ax = fig.add_subplot(2, k, r * k + c + 1)
            g = _gray(images[i])
            ax.imshow(g, cmap="gray" if g.ndim == 2 else None, vmin=0, vmax=1)
            ax.set_axis_off()
            caption = f"{scores[i]:.4g}" + (f"\n{os.path.basename(str(names[i]))[:18]}" if names is not None else "")
            ax.set_title(caption, fontsize=7)
        fig.text(0.005, 0.75 - 0.5 * r, label, rotation=90, va="center", fontsize=9)
    return _save(plt, fig, path)


def training_curves_png(history: dict, path: str) -> str:
    """Loss curves per epoch from ``FAnoGAN.history_`` (stage 1 and stage 2 side by side)."""
    stages = [(name, h) for name, h in (("stage 1: WGAN-GP", history.get("gan")),
                                         ("stage 2: encoder", history.get("encoder"))) if h]
    if not stages:
        raise ValueError("no training history to plot")
    plt, fig = _figure(5.0 * len(stages), 3.6)
    for i, (title, h) in enumerate(stages):
        ax = fig.add_subplot(1, len(stages), i + 1)
        for key, values in sorted(h.items()):
            if key != "learning_rate" and values:
                ax.plot(np.arange(1, len(values) + 1), values, label=key)
        ax.set(xlabel="epoch", title=title)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _save(plt, fig, path)


def generator_grids_png(generator, out_dir: str, n_samples: int = 32, n_rows: int = 6, steps: int = 10,
                        seed: int = 0, latent_prior: str = "normal") -> tuple[str, str]:
    """``samples.png`` (G(z) for seeded z from the prior, ``normal`` or ``uniform``) and ``interpolation.png`` (rows of G along
    straight lines between random pairs of z: a smooth, varied walk means G has learnt the
    normal variability rather than memorised images -- the DCGAN check)."""
    import tensorflow as tf

    from tf_fanogan.scoring import forward as scoring
    from tf_fanogan.training.monitoring import image_grid

    rng = np.random.default_rng(seed)
    latent = generator.input_shape[-1]
    z = latent_lib.sample_numpy(rng, (n_samples, latent), latent_prior)
    ends = latent_lib.sample_numpy(rng, (n_rows, 2, latent), latent_prior)
    t = np.linspace(0, 1, steps, dtype=np.float32)[None, :, None]
    z_line = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(-1, latent)
    paths = []
    for name, zs, cols in (("samples.png", z, 8), ("interpolation.png", z_line, steps)):
        images = scoring.to_input_units(generator(tf.constant(zs), training=False)).numpy()
        grid = image_grid(images, cols)
        plt, fig = _figure(1.0 * cols, 1.0 * len(zs) / cols + 0.3)
        ax = fig.add_subplot()
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(("G(z), z ~ N(0, I)" if latent_prior == "normal" else "G(z), z ~ U(-1, 1)") if name == "samples.png" else "latent interpolation (left to right)",
                     fontsize=9)
        paths.append(_save(plt, fig, os.path.join(out_dir, name)))
    return paths[0], paths[1]


def reconstruction_grid_png(images, reconstructions, path: str, ncols: int = 8, title: str | None = None) -> str:
    """Inputs and their reconstructions G(E(x)) in alternating rows (input row, then its
    reconstructions below), both (N, H, W, C) in [0, 1]: does the encoder-generator pair
    reproduce the structure of normal images?"""
    from tf_fanogan.training.monitoring import image_grid

    images = np.asarray(images, np.float32)
    reconstructions = np.asarray(reconstructions, np.float32)
    rows = []
    for start in range(0, len(images), ncols):
        rows += [images[start:start + ncols], reconstructions[start:start + ncols]]
    pad = lambda r: np.concatenate([r, np.ones((ncols - len(r),) + r.shape[1:], np.float32)])  # noqa: E731
    grid = image_grid(np.concatenate([pad(r) for r in rows]), ncols)
    plt, fig = _figure(1.0 * ncols, 1.0 * len(rows) + 0.3)
    ax = fig.add_subplot()
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title(title or "normal images (odd rows) and their reconstructions G(E(x)) (even rows)", fontsize=9)
    return _save(plt, fig, path)
