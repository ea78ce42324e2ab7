import numpy as np
import pytest
from PIL import Image

from tf_fanogan.data import images as data_lib
from tf_fanogan.data.images import DataError


def write(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path)
    return str(path)


def test_scaling_of_each_pixel_type():
    for arr, expected in [
        (np.full((1, 16, 16), 255, np.uint8), 1.0),
        (np.full((1, 16, 16), 65535, np.uint16), 1.0),
        (np.full((1, 16, 16), 0.5, np.float32), 0.5),
    ]:
        out = data_lib.to_unit_range(arr, 16, 1)
        assert out.shape == (1, 16, 16, 1) and out.dtype == np.float32
        np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(data_lib.to_model_units(np.zeros((1, 16, 16), np.uint8), 16, 1), -1.0)


def test_folder_of_every_format_loads_and_resizes(tmp_path):
    g8 = np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)
    write(tmp_path / "a.png", g8)
    write(tmp_path / "b.png", (g8.astype(np.uint16) * 257))
    write(tmp_path / "c.jpg", g8)
    write(tmp_path / "d.bmp", g8)
    write(tmp_path / "e.tif", g8)
    images, paths, errors = data_lib.load_folder(str(tmp_path))
    assert len(images) == 5 and not errors
    assert images[1].dtype == np.uint16 and images[0].dtype == np.uint8
    out = data_lib.to_unit_range(images, 16, 1, paths)
    assert out.shape == (5, 16, 16, 1)
    np.testing.assert_allclose(out[0], out[1], atol=1e-4)  # 8-bit and 16-bit copies agree


def test_grayscale_stays_single_channel_and_rgb_needs_three(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    path = write(tmp_path / "rgb.png", rgb)
    with pytest.raises(DataError, match=r"rgb.png: has 3 colour channels"):
        data_lib.to_unit_range([data_lib.load_image(path)], 16, 1, [path])
    assert data_lib.to_unit_range([data_lib.load_image(path)], 16, 3, [path]).shape == (1, 16, 16, 3)
    gray_as_rgb = np.repeat(rgb[..., :1], 3, axis=-1)
    assert data_lib.to_unit_range(gray_as_rgb[None], 16, 1).shape == (1, 16, 16, 1)


@pytest.mark.parametrize("arr,match", [
    (np.full((2, 16, 16), np.nan, np.float32), "NaN"),
    (np.full((2, 16, 16), 2.0, np.float32), r"\[0, 1\]"),
    (np.zeros((2, 8, 8), np.uint8), "smaller than the model"),
    (np.zeros((2, 16, 16, 2), np.uint8), "2 channels"),
    (np.zeros((2, 16, 16), np.int64), "int64"),
    (np.zeros((0, 16, 16), np.uint8), "empty"),
    (np.zeros((16, 16, 1, 1, 1), np.uint8), "shape"),
])
def test_bad_arrays_name_the_problem(arr, match):
    with pytest.raises(DataError, match=match):
        data_lib.to_unit_range(arr, 16, 1)


def test_bad_files_name_the_file(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png: cannot read image"):
        data_lib.load_image(str(tmp_path / "broken.png"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not an image file"):
        data_lib.load_image(str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match="broken.png"):
        data_lib.load_folder(str(tmp_path))
    write(tmp_path / "ok.png", np.zeros((20, 20), np.uint8))
    images, paths, errors = data_lib.load_folder(str(tmp_path), on_error="skip")
    assert [p.split("/")[-1] for p in paths] == ["ok.png"] and len(errors) == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="empty: no image files"):
        data_lib.load_folder(str(empty))


def test_batches_cover_everything():
    assert [(s.start, s.stop) for s in data_lib.batches(10, 4)] == [(0, 4), (4, 8), (8, 10)]


def test_an_oversized_image_is_that_files_error_and_the_limit_is_a_setting(tmp_path, monkeypatch):
    bomb = write(tmp_path / "bomb.png", np.zeros((15000, 15000), np.uint8))  # 225 Mpx, ~220 KB compressed
    with pytest.raises(DataError, match=r"bomb\.png: more pixels than the limit of 89,478,485 .*FANOGAN_MAX_IMAGE"):
        data_lib.load_image(bomb)
    small = write(tmp_path / "small.png", np.zeros((40, 40), np.uint8))
    monkeypatch.setattr(data_lib, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(DataError, match=r"small\.png: 40x40 = 1,600 pixels, more than the limit of 1,000"):
        data_lib.load_image(small)
    monkeypatch.setattr(data_lib, "MAX_IMAGE_PIXELS", 1600)
    assert data_lib.load_image(small).shape == (40, 40)


def test_folders_are_read_recursively_everywhere(tmp_path):
    """train/calibrate (read_any) and score (streaming) list a folder by one rule."""
    from tf_fanogan.scoring.streaming import list_sources

    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for rel in ("x.png", "a/y.png", "a/b/z.png", ".hidden/h.png", ".dot.png"):
        write(tmp_path / rel, np.zeros((16, 16), np.uint8))
    images, names, _ = data_lib.read_any(str(tmp_path))
    assert names == list_sources(str(tmp_path))[0]
    assert [n[len(str(tmp_path)) + 1:] for n in names] == ["x.png", "a/y.png", "a/b/z.png"]
