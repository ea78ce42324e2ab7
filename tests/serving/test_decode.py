"""The in-graph decoder of ``score_image_bytes`` (tf_fanogan/serving/decode.py) against the
in-process reader, policy by policy, and its refusals."""

import numpy as np
import pytest
from PIL import Image

from helpers.data import near_grey
from tf_fanogan.data import images as data_lib


def test_exported_decoder_applies_the_same_colour_policy():
    """The in-graph decoder of ``score_image_bytes`` against the in-process reader, per policy."""
    import io

    from tf_fanogan.serving.decode import decode_image

    colour = np.random.default_rng(3).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    for arr, fmt, policy in [(near_grey(6), "PNG", {}), (near_grey(6), "JPEG", {}),
                             (colour, "PNG", {"color": "gray"}), (colour, "JPEG", {"color": "gray"}),
                             (near_grey(9), "PNG", {"color_tolerance": 9.0}),
                             (np.repeat(colour[..., :1], 3, -1), "PNG", {"color_tolerance": 0.0})]:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, fmt)
        local = data_lib.to_unit_range([data_lib.decode_image_bytes(buf.getvalue(), "x")], 16, 1, **policy)[0]
        graph = decode_image(buf.getvalue(), 1, 16, 0, **policy).numpy()
        np.testing.assert_allclose(graph, local, atol=2e-6, err_msg=f"{fmt} {policy}")
    buf = io.BytesIO()
    Image.fromarray(near_grey(9)).save(buf, "PNG")
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[0\]: a colour image \(its channels "
                                                             r"differ by up to 9 grey levels"):
        decode_image(buf.getvalue(), 1, 16, 0)




def test_exported_decoder_applies_the_same_small_image_policy():
    import io

    import tensorflow as tf

    from tf_fanogan.serving.decode import decode_image

    rng = np.random.default_rng(6)
    for shape in [(12, 12), (9, 40), (40, 9), (16, 16), (5, 5, 3)]:
        arr = rng.integers(0, 255, shape, dtype=np.uint8)
        if arr.ndim == 3:
            arr = np.repeat(arr[..., :1], 3, -1)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, "PNG")
        for policy in ({}, {"small_images": "pad"}, {"small_images": "pad", "pad_fill": "zeros"}):
            local = data_lib.to_unit_range([data_lib.decode_image_bytes(buf.getvalue(), "x")], 16, 1, **policy)[0]
            np.testing.assert_allclose(decode_image(buf.getvalue(), 1, 16, 0, **policy).numpy(), local, atol=2e-7,
                                       err_msg=f"{shape} {policy}")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(buf, "PNG")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image_bytes\[3\]: images of 12x12 are smaller than the "
                                                             r"model input \(16x16\); set data.small_images"):
        decode_image(buf.getvalue(), 1, 16, 3, small_images="refuse")
