import numpy as np
import pytest
from PIL import Image

from helpers.data import near_grey
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
    with pytest.raises(DataError, match=r"rgb.png: a colour image \(its channels differ by up to \d+ grey levels, more than data.color_tolerance 8\)"):
        data_lib.to_unit_range([data_lib.load_image(path)], 16, 1, [path])
    assert data_lib.to_unit_range([data_lib.load_image(path)], 16, 3, [path]).shape == (1, 16, 16, 3)
    gray_as_rgb = np.repeat(rgb[..., :1], 3, axis=-1)
    assert data_lib.to_unit_range(gray_as_rgb[None], 16, 1).shape == (1, 16, 16, 1)


def test_color_auto_takes_near_grey_rgb_as_luma_and_refuses_colour_with_the_fix():
    near = near_grey(8)
    out = data_lib.to_unit_range(near[None], 20, 1)
    r, g, b = (near[..., i].astype(np.float32) / 255 for i in range(3))
    np.testing.assert_allclose(out[0, ..., 0], 0.299 * r + 0.587 * g + 0.114 * b, atol=1e-6)  # luma, not channel 0
    assert np.abs(out[0, ..., 0] - r).max() > 1 / 255
    with pytest.raises(DataError, match=r"images: a colour image \(its channels differ by up to 9 grey levels, more "
                                         r"than data.color_tolerance 8\) .*set data.color: gray"):
        data_lib.to_unit_range(near_grey(9)[None], 20, 1)
    # the tolerance is a setting; 0 accepts only exactly grey RGB, which keeps its own pixels bit for bit
    data_lib.to_unit_range(near_grey(9)[None], 20, 1, color_tolerance=9)
    with pytest.raises(DataError, match="differ by up to 1 grey levels"):
        data_lib.to_unit_range(near_grey(1)[None], 20, 1, color_tolerance=0)
    grey = np.repeat(near[..., :1], 3, -1)
    np.testing.assert_array_equal(data_lib.to_unit_range(grey[None], 20, 1, color_tolerance=0),
                                  data_lib.to_unit_range(near[None, ..., :1], 20, 1))


def test_color_decision_is_per_image_and_names_the_index():
    colour = np.random.default_rng(3).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    grey = np.repeat(colour[..., :1], 3, -1)
    batch = np.stack([grey, near_grey(4), grey, colour])
    with pytest.raises(DataError, match=r"images\[3\]: a colour image"):
        data_lib.to_unit_range(batch, 20, 1, chunk=2)
    # an exactly grey image scores the same whether its batch holds colour images or not
    alone = data_lib.to_unit_range(grey[None], 20, 1)
    mixed = data_lib.to_unit_range(np.stack([grey, colour]), 20, 1, color="gray")
    np.testing.assert_array_equal(mixed[0], alone[0])


def test_color_gray_converts_any_colour_image_and_rgb_repeats_grey():
    colour = np.random.default_rng(3).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    with pytest.raises(DataError, match="a colour image"):
        data_lib.to_unit_range(colour[None], 20, 1)
    out = data_lib.to_unit_range(colour[None], 20, 1, color="gray")
    expected = np.asarray(Image.fromarray(colour).convert("L"), np.float32) / 255  # PIL's own luma, rounded to 8 bits
    assert np.abs(out[0, ..., 0] - expected).max() <= 0.5 / 255 + 1e-6
    g = colour[..., 0]
    np.testing.assert_array_equal(data_lib.to_unit_range(g[None], 20, 3, color="rgb")[0],
                                  np.repeat(data_lib.to_unit_range(g[None], 20, 1)[0], 3, -1))


def test_color_policy_is_checked_against_the_model_channels():
    from tf_fanogan.config import ConfigError, FAnoGANConfig

    with pytest.raises(ConfigError, match="data.color: gray needs model.channels: 1"):
        FAnoGANConfig.from_dict({"model": {"channels": 3}, "data": {"color": "gray"}})
    with pytest.raises(ConfigError, match="data.color: rgb needs model.channels: 3"):
        FAnoGANConfig.from_dict({"data": {"color": "rgb"}})
    with pytest.raises(ConfigError, match="data.color must be one of auto, gray, rgb"):
        FAnoGANConfig.from_dict({"data": {"color": "grey"}})
    with pytest.raises(ConfigError, match="data.color_tolerance must be <= 255"):
        FAnoGANConfig.from_dict({"data": {"color_tolerance": 300}})
    assert FAnoGANConfig.from_dict({}).data.color == "auto"  # configs saved before the section existed


@pytest.mark.parametrize("arr,match", [
    (np.full((2, 16, 16), np.nan, np.float32), "NaN"),
    (np.full((2, 16, 16), 2.0, np.float32), r"\[0, 1\]"),
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


def test_brain_mri_normals_stored_as_rgb_are_taken_as_grey_and_coloured_ones_named():
    """The shared brain-MRI slices (grey scans, most stored as RGB JPEG): under ``auto`` every
    file is taken or refused as a colour image naming the file; under ``gray`` all are taken."""
    import glob
    import os

    folder = os.path.join(os.environ["TF_FANOGAN_SHARED_DATA"], "brain_tumor_mri", "no")
    paths = sorted(glob.glob(os.path.join(folder, "*")))
    if not paths:
        pytest.skip(f"the shared brain-MRI data is not at {folder} (see ../shared/data/README.md)")
    rgb_taken = refused = 0
    for p in paths:
        img = data_lib.load_image(p)
        try:
            data_lib.to_unit_range([img], 64, 1, [p])
            rgb_taken += img.ndim == 3
        except DataError as e:
            assert str(e).startswith(f"{p}: a colour image") and "data.color: gray" in str(e)
            refused += 1
        data_lib.to_unit_range([img], 64, 1, [p], color="gray")
    assert rgb_taken > 0 and refused < len(paths) // 4, (rgb_taken, refused)


def test_small_images_are_upsampled_by_default_or_padded_or_refused():
    g = np.random.default_rng(5).integers(0, 255, (12, 12), dtype=np.uint8)
    up = data_lib.to_unit_range(g[None], 16, 1)[0, ..., 0]
    flat = data_lib.to_unit_range(np.full((1, 12, 12), 77, np.uint8), 16, 1)[0]
    np.testing.assert_allclose(flat, 77 / 255, atol=1e-6)  # bilinear: a flat image stays flat
    assert abs(up.mean() - g.mean() / 255) < 0.02 and up.std() > 0.5 * (g / 255).std()
    edge = data_lib.to_unit_range(g[None], 16, 1, small_images="pad")[0, ..., 0]
    np.testing.assert_allclose(edge[2:14, 2:14], g / 255, atol=1e-6)  # centred, its pixels as they were
    np.testing.assert_allclose(edge[0, 2:14], g[0] / 255, atol=1e-6)  # border rows repeated
    np.testing.assert_allclose(edge[2:14, 15], g[:, -1] / 255, atol=1e-6)
    zeros = data_lib.to_unit_range(g[None], 16, 1, small_images="pad", pad_fill="zeros")[0, ..., 0]
    assert zeros[:2].max() == 0 and zeros[:, 14:].max() == 0
    with pytest.raises(DataError, match=r"images: images of 12x12 are smaller than the model input \(16x16\); set "
                                         r"data.small_images: upsample or pad"):
        data_lib.to_unit_range(g[None], 16, 1, small_images="refuse")
    # one short side: up to the model size on that side, then the long side area-reduced
    wide = np.tile(g[:, :1], (1, 64))
    out = data_lib.to_unit_range(wide[None], 16, 1)[0, ..., 0]
    np.testing.assert_allclose(out, np.repeat(out[:, :1], 16, axis=1), atol=1e-6)  # still constant along rows


def test_small_image_settings_are_checked():
    from tf_fanogan.config import ConfigError, FAnoGANConfig

    with pytest.raises(ConfigError, match="data.small_images must be one of upsample, pad, refuse"):
        FAnoGANConfig.from_dict({"data": {"small_images": "stretch"}})
    with pytest.raises(ConfigError, match="data.pad_fill must be one of edge, zeros"):
        FAnoGANConfig.from_dict({"data": {"pad_fill": "mirror"}})
