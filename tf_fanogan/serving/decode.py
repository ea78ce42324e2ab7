"""In-graph decoding of encoded images for the ``score_image_bytes`` signature.

The graph twin of the in-process reader (:mod:`tf_fanogan.data.images`): the same colour,
alpha, small-image and resizing policies, applied inside the SavedModel so that the server,
TF Serving and every client get the numbers ``FAnoGAN.score`` gives for the same file.
"""

from __future__ import annotations

import tensorflow as tf

from tf_fanogan import signatures as sig
from tf_fanogan.data.images import LUMA


def decode_image(data, channels: int, size: int, index=None, color: str = "auto", color_tolerance: float = 8.0,
                 small_images: str = "upsample", pad_fill: str = "edge", tile_stride: int | None = None):
    """One encoded image -> float32 (size, size, channels) in [0, 1], in-graph, by the policy of
    the in-process reader (:mod:`tf_fanogan.data.images`): alpha dropped, grayscale repeated for
    an RGB model, an RGB image brought to a grayscale model by the ``data.color`` policy
    (:class:`tf_fanogan.config.DataConfig`: exactly grey -> its first channel, otherwise luma,
    refused under ``auto`` beyond ``color_tolerance``), a side shorter than the model's by the
    ``data.small_images`` policy (bilinear up-sampling, centred padding with ``pad_fill``, or
    refusal), then area resizing. Messages name ``image_bytes[index]`` (``image`` without an index).
    A tiled detector's export (``tile_stride`` set) scores one tile per image: a larger image
    is refused, naming the way to score it whole (never squashed to one tile).

    JPEG is decoded with the accurate integer IDCT, as PIL (the in-process reader) does; TF's
    default fast IDCT differs by up to 5 grey levels."""
    def jpeg():
        return tf.image.convert_image_dtype(tf.io.decode_jpeg(data, channels=0, dct_method="INTEGER_ACCURATE"),
                                            tf.float32)

    def other():
        return tf.io.decode_image(data, channels=0, dtype=tf.float32, expand_animations=False)

    def message(text, *values):  # one format op, numbers only: string inputs would come out quoted
        label = "image" if index is None else sig.IMAGE_BYTES + "[{}]"
        return tf.strings.format(label + ": " + text, ([] if index is None else [index]) + list(values))

    image = tf.cond(tf.io.is_jpeg(data), jpeg, other)
    have = tf.shape(image)[-1]
    image = tf.cond(tf.equal(have % 2, 0), lambda: image[..., :tf.maximum(have - 1, 1)], lambda: image)  # alpha
    h, w, have = tf.shape(image)[0], tf.shape(image)[1], tf.shape(image)[2]
    checks = []
    if small_images == "refuse":
        checks.append(tf.debugging.Assert(tf.logical_and(h >= size, w >= size), [message(
            "images of {}x{} are smaller than the model input " + f"({size}x{size}); set data.small_images: "
            "upsample or pad to accept them", h, w)]))
    if tile_stride is not None:
        checks.append(tf.debugging.Assert(tf.logical_and(h <= size, w <= size), [message(
            "an image of {}x{} is larger than one tile " + f"({size}x{size}) of this tiled model (data.tile_stride "
            f"{tile_stride}); send its tiles: client.score_tiled(image, stride={tile_stride}) cuts, sends and "
            "aggregates them", h, w)]))
    with tf.control_dependencies(checks):
        if channels == 1:
            r, g, b = image[..., :1], image[..., have // 2:have // 2 + 1], image[..., -1:]  # have is 1 or 3
            spread = 255.0 * tf.reduce_max(tf.maximum(tf.maximum(tf.abs(r - g), tf.abs(g - b)), tf.abs(b - r)))
            checks = []
            if color == "auto":
                checks.append(tf.debugging.Assert(spread <= color_tolerance + 1e-3, [message(
                    "a colour image (its channels differ by up to {} grey levels, more than data.color_tolerance "
                    f"{color_tolerance:g}) but the model is grayscale; set data.color: gray to convert colour images "
                    "to grayscale, or train an RGB model (model.channels: 3)", tf.cast(tf.round(spread), tf.int32))]))
            with tf.control_dependencies(checks):
                luma = r * LUMA[0] + g * LUMA[1] + b * LUMA[2]
                image = tf.cond(tf.equal(spread, 0.0), lambda: r, lambda: luma)
        else:
            image = tf.cond(tf.equal(have, 1), lambda: tf.repeat(image, 3, axis=-1), lambda: image)
    image = tf.ensure_shape(image, (None, None, channels))
    if small_images != "refuse":
        image = _fit_small(image, size, small_images, pad_fill)
    return tf.image.resize(image, (size, size), method="area")


def _fit_small(image, size: int, small_images: str, pad_fill: str):
    """(H, W, C) -> each side at least ``size``: the graph twin of ``data.images._fit_small``."""
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    th, tw = tf.maximum(h, size), tf.maximum(w, size)
    if small_images == "upsample":
        return tf.cond(tf.logical_and(tf.equal(th, h), tf.equal(tw, w)), lambda: image,
                       lambda: tf.image.resize(image, tf.stack([th, tw]), method="bilinear"))
    top, left = (th - h) // 2, (tw - w) // 2
    if pad_fill == "edge":
        rows = tf.clip_by_value(tf.range(th) - top, 0, h - 1)
        cols = tf.clip_by_value(tf.range(tw) - left, 0, w - 1)
        return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)
    return tf.pad(image, [[top, th - h - top], [left, tw - w - left], [0, 0]])


def check_format(image_bytes):
    """An op that fails, naming the first offending index, if an encoded image is not PNG, JPEG
    or BMP (what the in-process reader takes; GIF and unknown bytes are refused before decoding,
    where TF's decoder would not say which image it was)."""
    def first_bad(predicate):
        return tf.cast(tf.argmax(tf.cast(tf.logical_not(predicate), tf.int32)), tf.int32)

    head = tf.strings.substr(image_bytes, 0, 8)
    png = tf.equal(tf.strings.substr(head, 0, 8), b"\x89PNG\r\n\x1a\n")
    bmp = tf.equal(tf.strings.substr(head, 0, 2), b"BM")
    gif = tf.equal(tf.strings.substr(head, 0, 4), b"GIF8")
    jpeg = tf.map_fn(tf.io.is_jpeg, image_bytes, fn_output_signature=tf.bool)
    not_gif = tf.debugging.Assert(tf.reduce_all(tf.logical_not(gif)), [tf.strings.format(
        sig.IMAGE_BYTES + "[{}]: a GIF image; send PNG, JPEG or BMP", [first_bad(tf.logical_not(gif))])])
    with tf.control_dependencies([not_gif]):
        known = png | bmp | jpeg
        bad = first_bad(known)
        return tf.debugging.Assert(tf.reduce_all(known), [tf.strings.format(
            sig.IMAGE_BYTES + "[{}]: not a PNG, JPEG or BMP image ({} bytes)",
            [bad, tf.strings.length(tf.gather(image_bytes, bad))])])
