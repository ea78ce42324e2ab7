"""Loaders for the real data sets, with documented splits: ELPV and Fashion-MNIST (installed by
the project) and magnetic tile and OCT B-scans (read from ../shared/data, never downloaded)."""

from __future__ import annotations

import os

import numpy as np


def load_elpv(seed: int = 0, holdout_fraction: float = 0.15, test_fraction: float = 0.15):
    """ELPV solar cells (Buerhop-Lutz et al. 2018; Deitsch et al. 2019), from ``elpv-dataset``.

    Split: normal = defect probability 0; anomalous = probability >= 2/3 (cells rated 1/3
    are left out as uncertain). The normal cells are shuffled with ``seed`` and split into
    ``train`` / ``holdout`` (for calibration) / ``test_normal``; every anomalous cell goes to
    ``test_anomalous``. Images are 300x300 uint8 grayscale.

    Returns:
        Dict with ``train``, ``holdout``, ``test_normal``, ``test_anomalous`` arrays and
        ``test_images`` / ``test_labels`` (1 = anomalous) concatenated.
    """
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        raise ImportError("ELPV needs the 'elpv-dataset' package: pip install elpv-dataset") from None
    images, probs, _ = load_dataset()
    normal = images[probs == 0]
    anomalous = images[probs >= 2 / 3 - 1e-6]
    order = np.random.default_rng(seed).permutation(len(normal))
    n_hold = int(round(holdout_fraction * len(normal)))
    n_test = int(round(test_fraction * len(normal)))
    test_normal = normal[order[:n_test]]
    holdout = normal[order[n_test:n_test + n_hold]]
    train = normal[order[n_test + n_hold:]]
    return {
        "train": train, "holdout": holdout, "test_normal": test_normal,
        "test_anomalous": anomalous,
        "test_images": np.concatenate([test_normal, anomalous]),
        "test_labels": np.concatenate([np.zeros(len(test_normal), int), np.ones(len(anomalous), int)]),
    }


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


def _read_idx(path: str) -> np.ndarray:
    import gzip

    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(normal_class: int, root: str = FASHION_MNIST_DIR, seed: int = 0,
                       holdout_fraction: float = 0.1, pad_to: int | None = None):
    """Fashion-MNIST one-class split (Xiao et al. 2017), from Debian's ``dataset-fashion-mnist``.

    The standard protocol: train on the training images of ``normal_class`` only (a seeded
    ``holdout_fraction`` of them kept for calibration); test on the whole 10 000-image test
    set, where ``normal_class`` is normal and the nine other classes are anomalous.
    Images are 28x28 uint8; ``pad_to`` (e.g. 32) zero-pads them to a model size (their
    background is black), since the models' sizes are powers of two.
    """
    if not 0 <= int(normal_class) <= 9:
        raise ValueError(f"normal_class must be 0..9, got {normal_class!r}")
    files = {k: os.path.join(root, f"{k}-idx{3 if 'images' in k else 1}-ubyte.gz")
             for k in ("train-images", "train-labels", "t10k-images", "t10k-labels")}
    missing = [p for p in files.values() if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: Fashion-MNIST is missing; install it with "
                                "'apt-get install dataset-fashion-mnist' (or `make data`)")
    x_train, y_train = _read_idx(files["train-images"]), _read_idx(files["train-labels"])
    x_test, y_test = _read_idx(files["t10k-images"]), _read_idx(files["t10k-labels"])
    if pad_to is not None:
        if pad_to < 28:
            raise ValueError(f"pad_to must be >= 28, got {pad_to}")
        before = (pad_to - 28) // 2
        widths = ((0, 0), (before, pad_to - 28 - before), (before, pad_to - 28 - before))
        x_train, x_test = np.pad(x_train, widths), np.pad(x_test, widths)
    normal = x_train[y_train == normal_class]
    order = np.random.default_rng(seed).permutation(len(normal))
    n_hold = int(round(holdout_fraction * len(normal)))
    labels = (y_test != normal_class).astype(int)
    return {"train": normal[order[n_hold:]], "holdout": normal[order[:n_hold]],
            "test_normal": x_test[labels == 0], "test_anomalous": x_test[labels == 1],
            "test_images": x_test, "test_labels": labels, "class_name": FASHION_MNIST_CLASSES[normal_class]}


SHARED_DATA_ENV = "TF_FANOGAN_SHARED_DATA"


def shared_data_dir() -> str:
    """Where the shared real data sets live: ``$TF_FANOGAN_SHARED_DATA``, else ``../shared/data``
    relative to the current directory (the project's root when run from a checkout). Never
    relative to the installed package, which may live anywhere; loaders also take ``root=``."""
    return os.path.abspath(os.environ.get(SHARED_DATA_ENV) or os.path.join("..", "shared", "data"))


MAGNETIC_TILE_DEFECTS = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")


def _resize_gray(arr: np.ndarray, size: int, mask: bool = False) -> np.ndarray:
    from PIL import Image

    im = Image.fromarray(arr)
    if mask:
        # Box filter: a model pixel is defective when at least a quarter of its footprint is.
        return np.asarray(im.resize((size, size), Image.BOX)) >= 64
    return np.asarray(im.resize((size, size), Image.BOX))


def load_magnetic_tile(image_size: int | None, root: str | None = None, seed: int = 0,
                       holdout_fraction: float = 0.1, test_fraction: float = 0.2):
    """Magnetic-tile surface defects with pixel masks (Huang et al. 2020), from shared data.

    ``MT_Free`` tiles are normal: shuffled with ``seed`` into train / holdout / test_normal;
    every tile of the five defect classes is anomalous test data. Tiles (about 100-630 x
    220-400 px) are resized to ``image_size`` squares (box filter); a mask pixel is a defect
    when at least a quarter of its footprint is (``Imgs/NAME.png``, 255 = defect). With
    ``image_size=None`` every image and mask stays at native resolution (lists of (H, W)
    arrays, for tiling).

    Returns:
        The usual keys plus ``test_masks`` (N, S, S) bool (or a list) and ``test_classes``.
    """
    from tf_fanogan.data.images import load_image

    root = root or os.path.join(shared_data_dir(), "magnetic_tile")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: the magnetic-tile data set is absent (set ${SHARED_DATA_ENV} or "
                                "pass root=; see ../shared/data/README.md)")

    def read(cls):
        folder = os.path.join(root, cls, "Imgs")
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpg"))
        images, masks = [], []
        for n in names:
            img = load_image(os.path.join(folder, n))
            if img.ndim == 3:
                img = img[..., 0]
            mask_path = os.path.join(folder, n[:-4] + ".png")
            mask = load_image(mask_path) if os.path.isfile(mask_path) else np.zeros_like(img)
            if mask.ndim == 3:
                mask = mask[..., 0]
            if mask.shape != img.shape:
                raise ValueError(f"{mask_path}: mask {mask.shape} does not match image {img.shape}")
            if image_size is None:
                images.append(img); masks.append(mask >= 128)
            else:
                images.append(_resize_gray(img, image_size)); masks.append(_resize_gray(mask, image_size, True))
        if image_size is None:  # 1-D object arrays: indexable like the stacked ones
            return _objects(images), _objects(masks)
        return np.stack(images), np.stack(masks)

    free, free_masks = read("MT_Free")
    order = np.random.default_rng(seed).permutation(len(free))
    n_hold = int(round(holdout_fraction * len(free))); n_test = int(round(test_fraction * len(free)))
    test_idx, hold_idx, train_idx = order[:n_test], order[n_test:n_test + n_hold], order[n_test + n_hold:]
    defects = [read(c) for c in MAGNETIC_TILE_DEFECTS]
    anomalous = np.concatenate([d[0] for d in defects])
    test_normal = free[test_idx]
    classes = ["MT_Free"] * len(test_idx) + [c for c, d in zip(MAGNETIC_TILE_DEFECTS, defects) for _ in d[0]]
    return {"train": free[train_idx], "holdout": free[hold_idx], "test_normal": test_normal,
            "test_anomalous": anomalous,
            "test_images": np.concatenate([test_normal, anomalous]),
            "test_labels": np.concatenate([np.zeros(len(test_normal), int), np.ones(len(anomalous), int)]),
            "test_masks": np.concatenate([free_masks[test_idx], *[d[1] for d in defects]]),
            "test_classes": np.array(classes)}


def _objects(items: list) -> np.ndarray:
    out = np.empty(len(items), object)
    out[:] = items
    return out


def load_oct_bscans(root: str | None = None):
    """The real OCT B-scans of ``oct_kermany_tiny`` (Kermany et al. 2018), from shared data.

    File names are ``CLASS-patient-index.jpeg``. Returns a list of dicts with ``path``,
    ``class`` (NORMAL, CNV, DME, DRUSEN), ``patient``, ``label`` (0 for NORMAL) and
    ``image`` (H, W) uint8. Split by patient with :func:`split_oct_by_patient`.
    """
    from tf_fanogan.data.images import load_image

    root = root or os.path.join(shared_data_dir(), "oct_kermany_tiny")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: the OCT B-scans are absent (set ${SHARED_DATA_ENV} or pass root=; "
                                "see ../shared/data/README.md)")
    scans = []
    for cls in sorted(os.listdir(root)):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            parts = name.rsplit(".", 1)[0].split("-")
            if len(parts) != 3:
                raise ValueError(f"{os.path.join(folder, name)}: expected CLASS-patient-index.jpeg")
            img = load_image(os.path.join(folder, name))
            scans.append({"path": os.path.join(folder, name), "class": cls, "patient": parts[1],
                          "label": int(cls != "NORMAL"), "image": img if img.ndim == 2 else img[..., 0]})
    return scans


def split_oct_by_patient(scans, seed: int = 0, train_fraction: float = 0.5, holdout_fraction: float = 0.2):
    """Splits NORMAL patients (never their scans) into train / holdout / test; diseased scans are test.

    Returns:
        Dict of lists of scans: ``train``, ``holdout``, ``test``.
    """
    patients = sorted({s["patient"] for s in scans if s["label"] == 0})
    order = np.random.default_rng(seed).permutation(len(patients))
    n_train = max(1, int(round(train_fraction * len(patients))))
    n_hold = max(1, int(round(holdout_fraction * len(patients))))
    train_p = {patients[i] for i in order[:n_train]}
    hold_p = {patients[i] for i in order[n_train:n_train + n_hold]}
    overlap = {s["patient"] for s in scans if s["label"] == 1} & (train_p | hold_p)
    if overlap:
        raise ValueError(f"patients {sorted(overlap)} have normal and diseased scans; cannot split by patient")
    return {"train": [s for s in scans if s["patient"] in train_p],
            "holdout": [s for s in scans if s["patient"] in hold_p],
            "test": [s for s in scans if s["label"] == 1 or (s["patient"] not in train_p | hold_p)]}
