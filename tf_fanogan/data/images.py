"""Image input: files, folders and arrays -> float32 batches in [-1, 1], with validation.

Accepted pixel types: uint8 (0-255), uint16 (0-65535) and floats in [0, 1]. Grayscale
stays single-channel. Images are resized (area interpolation) to the model size; a side shorter
than the model's follows ``data.small_images`` (bilinear up-sampling by default, centred
padding, or an error) and colour follows ``data.color`` (:class:`tf_fanogan.config.DataConfig`).

Folders are read recursively by every command (train, calibrate, score, evaluate's
pixel-calibration set), hidden files and folders left out. An image with more than
:data:`MAX_IMAGE_PIXELS` pixels (PIL's default, 89 478 485, about 9459 x 9459; set
``FANOGAN_MAX_IMAGE_PIXELS`` to change it) is refused as that file's error before it is
decoded, so a decompression bomb cannot exhaust memory.
"""

from __future__ import annotations

import os
import warnings
from typing import Iterable, Sequence

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = int(os.environ.get("FANOGAN_MAX_IMAGE_PIXELS", 89_478_485))


class DataError(ValueError):
    """Input images are unusable; the message names the file or the problem."""


def load_image(path: str) -> np.ndarray:
    """Reads one image file as (H, W) or (H, W, C) uint8/uint16/float32, without scaling.

    Alpha channels are dropped; palette and 1-bit images become RGB / 8-bit grayscale.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such file")
    check_image_name(path)
    with open(path, "rb") as f:
        return decode_image_bytes(f.read(), path)


def check_image_name(path: str) -> None:
    """Refuses a file whose name does not end in one of :data:`IMAGE_EXTENSIONS`."""
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        raise DataError(f"{path}: not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})")


def decode_image_bytes(data: bytes, name: str) -> np.ndarray:
    """The one in-process decoder: encoded PNG (8/16-bit), JPEG, BMP or TIFF bytes -> array, as
    :func:`load_image` returns it. ``name`` (a path) appears in every error."""
    import io

    from PIL import Image, UnidentifiedImageError

    if MAX_IMAGE_PIXELS > (Image.MAX_IMAGE_PIXELS or 0):  # a raised limit must also lift PIL's own refusal
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit below decides
            im = Image.open(io.BytesIO(data))
        with im:
            w, h = im.size
            if w * h > MAX_IMAGE_PIXELS:
                raise DataError(f"{name}: {w}x{h} = {w * h:,} pixels, more than the limit of {MAX_IMAGE_PIXELS:,} "
                                f"(set FANOGAN_MAX_IMAGE_PIXELS to allow larger images)")
            im.load()
            mode = im.mode
            if mode in ("P", "PA", "RGBA", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            elif mode in ("1", "LA"):
                im = im.convert("L")
            arr = np.asarray(im)
    except DataError:
        raise
    except Image.DecompressionBombError as e:  # beyond twice PIL's own limit, refused inside open()
        raise DataError(f"{name}: more pixels than the limit of {MAX_IMAGE_PIXELS:,} ({e}; set "
                        f"FANOGAN_MAX_IMAGE_PIXELS to allow larger images)") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: cannot read image (not a PNG, JPEG, BMP or TIFF file, or its header is "
                        f"damaged; {len(data)} bytes)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{name}: cannot read image ({e})") from None
    if mode.startswith("I") and arr.dtype != np.uint16:
        if arr.min() < 0 or arr.max() > 65535:
            raise DataError(f"{name}: integer pixel values outside 0..65535")
        arr = arr.astype(np.uint16)
    if mode == "F":
        arr = arr.astype(np.float32)
    return arr


def list_images(folder: str, recursive: bool = False) -> list[str]:
    """Sorted paths of the files in ``folder`` (hidden files skipped).

    Every listed file is expected to be an image; :func:`load_folder` reports the others.
    """
    if not os.path.isdir(folder):
        raise DataError(f"{folder}: not a directory")
    paths = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths += [os.path.join(root, f) for f in sorted(files) if not f.startswith(".")]
        if not recursive:
            break
    if not paths:
        raise DataError(f"{folder}: no image files found")
    return paths


def load_folder(folder: str, recursive: bool = False, on_error: str = "raise"):
    """Loads every image of a folder.

    Args:
        folder: Directory of PNG (8/16-bit), JPEG, BMP or TIFF files.
        recursive: Descend into sub-folders.
        on_error: ``"raise"`` stops at the first bad file; ``"skip"`` leaves it out and
            reports it in the returned error list.

    Returns:
        ``(images, paths, errors)``: lists of arrays and their paths, and ``(path, reason)``
        pairs of the files that could not be used.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    images, paths, errors = [], [], []
    for path in list_images(folder, recursive):
        try:
            images.append(load_image(path))
            paths.append(path)
        except DataError as e:
            if on_error == "raise":
                raise
            errors.append((path, str(e)))
    if not images:
        raise DataError(f"{folder}: no readable images ({len(errors)} unreadable files)")
    return images, paths, errors


def _scale_to_unit(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer):
        raise DataError(f"{name}: integer dtype {arr.dtype} not supported; use uint8, uint16 or floats in [0, 1]")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{name}: dtype {arr.dtype} is not an image dtype")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name}: contains NaN or inf values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise DataError(f"{name}: float pixels must lie in [0, 1], found range [{lo:.4g}, {hi:.4g}]")
    return np.clip(arr, 0.0, 1.0)


LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, PIL's convert("L"); the exported decoder uses the same weights


def _fix_channels(arr: np.ndarray, channels: int, name: str, color: str = "auto",
                  color_tolerance: float = 8.0, first: int | None = None) -> np.ndarray:
    """float32 (N, H, W, C) in [0, 1], C in (1, 3) -> ``channels`` channels by the ``data.color``
    policy (:class:`tf_fanogan.config.DataConfig`), decided per image."""
    have = arr.shape[-1]
    if have == channels:
        return arr
    if have == 1:
        return np.repeat(arr, 3, axis=-1)
    r, g, b = arr[..., 0:1], arr[..., 1:2], arr[..., 2:3]
    spread = np.float32(255) * np.maximum(np.maximum(np.abs(r - g), np.abs(g - b)), np.abs(b - r)).max(axis=(1, 2, 3))
    if color == "auto":
        bad = np.flatnonzero(spread > np.float32(color_tolerance + 1e-3))
        if bad.size:
            where = name if first is None else f"{name}[{first + bad[0]}]"
            raise DataError(f"{where}: a colour image (its channels differ by up to {spread[bad[0]]:.0f} grey levels, "
                            f"more than data.color_tolerance {color_tolerance:g}) but the model is grayscale; set "
                            "data.color: gray to convert colour images to grayscale, or train an RGB model "
                            "(model.channels: 3)")
    luma = r * np.float32(LUMA[0]) + g * np.float32(LUMA[1]) + b * np.float32(LUMA[2])
    return np.where((spread == 0)[:, None, None, None], r, luma)  # exactly grey: its own pixels, bit for bit


def smaller_message(name: str, h, w, image_size: int) -> str:
    return (f"{name}: images of {h}x{w} are smaller than the model input ({image_size}x{image_size}); set "
            "data.small_images: upsample or pad to accept them")


def _fit_small(batch: np.ndarray, image_size: int, small_images: str, pad_fill: str) -> np.ndarray:
    """(N, H, W, C) float32 -> each side at least ``image_size``, by the ``data.small_images``
    policy (``refuse`` is checked before); the exported decoder does the same in its graph."""
    import tensorflow as tf

    h, w = batch.shape[1:3]
    th, tw = max(h, image_size), max(w, image_size)
    if (th, tw) == (h, w):
        return batch
    if small_images == "upsample":
        return tf.image.resize(batch, (th, tw), method="bilinear").numpy()
    top, left = (th - h) // 2, (tw - w) // 2
    pads = ((0, 0), (top, th - h - top), (left, tw - w - left), (0, 0))
    return np.pad(batch, pads, mode="edge") if pad_fill == "edge" else np.pad(batch, pads)


def _resize(batch: np.ndarray, image_size: int) -> np.ndarray:
    import tensorflow as tf

    if batch.shape[1] == image_size and batch.shape[2] == image_size:
        return batch
    return tf.image.resize(batch, (image_size, image_size), method="area").numpy()


def to_unit_range(images, image_size: int, channels: int, names: Sequence[str] | None = None,
                  chunk: int = 512, color: str = "auto", color_tolerance: float = 8.0,
                  small_images: str = "upsample", pad_fill: str = "edge") -> np.ndarray:
    """Validates images and returns them as float32 (N, S, S, C) in [0, 1].

    Args:
        images: An array (N, H, W) / (N, H, W, C), one image (H, W[, C]) is *not* accepted
            to avoid ambiguity, or a list of per-image arrays of any sizes.
        image_size, channels: The model's input shape.
        names: Per-image names (e.g. file paths) used in error messages.
        color, color_tolerance, small_images, pad_fill: The ``data`` policies
            (:class:`tf_fanogan.config.DataConfig`).
    """
    policy = (color, color_tolerance, small_images, pad_fill)
    if isinstance(images, np.ndarray):
        return _to_unit_uniform(_as_batch(images), image_size, channels, "images", chunk, policy)
    images, names = _listed(images, names)
    out = np.empty((len(images), image_size, image_size, channels), np.float32)
    for i, (img, name) in enumerate(zip(images, names)):
        out[i] = _to_unit_uniform(_one(img, name), image_size, channels, name, chunk, policy)[0]
    return out


def to_unit_native(images, image_size: int, channels: int, names: Sequence[str] | None = None,
                   color: str = "auto", color_tolerance: float = 8.0, small_images: str = "upsample",
                   pad_fill: str = "edge") -> list[np.ndarray]:
    """As :func:`to_unit_range`, but every image keeps its resolution (a side shorter than
    ``image_size`` follows ``small_images``): a list of float32 (H, W, C) in [0, 1], for tiling."""
    policy = (color, color_tolerance, small_images, pad_fill)
    if isinstance(images, np.ndarray):
        images = list(_as_batch(images))
        names = names if names is not None else [f"images[{i}]" for i in range(len(images))]
    images, names = _listed(images, names)
    return [_to_unit_uniform(_one(img, name), image_size, channels, name, 1, policy, resize=False)[0]
            for img, name in zip(images, names)]


def _as_batch(images: np.ndarray) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise DataError(f"images: expected an array of shape (N, H, W) or (N, H, W, C), got {images.shape}")
    if images.shape[0] == 0:
        raise DataError("images: empty array (N = 0)")
    return images


def _listed(images, names):
    images = list(images)
    if not images:
        raise DataError("images: empty list")
    return images, (list(names) if names is not None else [f"image[{i}]" for i in range(len(images))])


def _one(img, name: str) -> np.ndarray:
    """One image (H, W[, C]) as a batch of one (1, H, W, C)."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise DataError(f"{name}: expected (H, W) or (H, W, C), got shape {img.shape}")
    return img[None]


def _to_unit_uniform(batch: np.ndarray, image_size: int, channels: int, name: str, chunk: int, policy,
                     resize: bool = True):
    color, tolerance, small_images, pad_fill = policy
    h, w = batch.shape[1:3]
    if (h < image_size or w < image_size) and small_images == "refuse":
        raise DataError(smaller_message(name, h, w, image_size))
    if batch.shape[-1] != channels and {batch.shape[-1], channels} != {1, 3}:
        raise DataError(f"{name}: has {batch.shape[-1]} channels but the model expects {channels}")
    out = np.empty((batch.shape[0], image_size, image_size, channels), np.float32) if resize else None
    for start in range(0, batch.shape[0], chunk):
        part = _fix_channels(_scale_to_unit(batch[start:start + chunk], name), channels, name, color, tolerance,
                             first=start if batch.shape[0] > 1 else None)
        part = _fit_small(part, image_size, small_images, pad_fill)
        if not resize:  # one image at its own size
            return part
        out[start:start + chunk] = _resize(part, image_size)
    return out


def to_model_units(images, image_size: int, channels: int, names=None, **policy) -> np.ndarray:
    """Validates images and returns float32 (N, S, S, C) in the model's [-1, 1] range."""
    return to_unit_range(images, image_size, channels, names, **policy) * 2.0 - 1.0


def read_any(source, on_error: str = "raise", recursive: bool = True):
    """Loads a folder, a ``.npy`` file or a single image path.

    Returns ``(images, names, errors)`` where ``images`` is an array or a list of arrays.
    """
    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        if os.path.isdir(source):
            return load_folder(source, recursive=recursive, on_error=on_error)
        if source.endswith(".npy"):
            if not os.path.isfile(source):
                raise DataError(f"{source}: no such file")
            try:
                arr = np.load(source, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise DataError(f"{source}: cannot read array ({e})") from None
            return arr, [f"{source}[{i}]" for i in range(len(arr))], []
        return [load_image(source)], [source], []
    raise DataError(f"cannot read images from {type(source).__name__}")


def read_named(images, names=None):
    """``(images, names)``: a path (folder, ``.npy``, image file) read by :func:`read_any`
    (names = its files), anything else passed through with ``names``."""
    if isinstance(images, (str, bytes)) or hasattr(images, "__fspath__"):
        images, names, _ = read_any(images)
    return images, names


def batches(n: int, batch_size: int) -> Iterable[slice]:
    """Slices covering 0..n in order, the last one possibly shorter (nothing dropped)."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
