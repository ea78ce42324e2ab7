"""The pictures: z drawn from the generator's prior, the most/least anomalous picked by score,
interpolation lines between prior draws, every PNG a real image written atomically."""

import os

import numpy as np
import pytest
from PIL import Image

from tf_fanogan.reporting import visualize


class RecordingGenerator:
    """A stand-in G that records the z it is given and returns grey images of their mean."""

    input_shape = (None, 16)

    def __init__(self):
        self.calls = []

    def __call__(self, z, training=False):
        import tensorflow as tf

        self.calls.append(z.numpy())
        return tf.tanh(tf.reshape(tf.reduce_mean(z, -1), (-1, 1, 1, 1))) * tf.ones((1, 8, 8, 1))


@pytest.mark.parametrize("prior", ["normal", "uniform"])
def test_generator_grids_draw_z_from_the_prior_and_interpolate_on_straight_lines(prior, tmp_path):
    g = RecordingGenerator()
    samples, line = visualize.generator_grids_png(g, str(tmp_path), n_samples=256, n_rows=3, steps=5,
                                                  latent_prior=prior)
    z, z_line = g.calls
    assert z.shape == (256, 16) and z_line.shape == (15, 16)
    if prior == "uniform":
        assert z.min() >= -1 and z.max() <= 1 and 0.5 < z.std() < 0.65  # U(-1, 1): std 0.577
    else:
        assert np.abs(z).max() > 2 and 0.9 < z.std() < 1.1
    rows = z_line.reshape(3, 5, 16)
    for r in rows:  # evenly spaced points on the segment between the row's two ends
        np.testing.assert_allclose(r[2], (r[0] + r[4]) / 2, atol=1e-5)
        np.testing.assert_allclose(r[1] - r[0], r[4] - r[3], atol=1e-5)
    for p in (samples, line):
        assert Image.open(p).format == "PNG" and os.path.dirname(p) == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["interpolation.png", "samples.png"]  # nothing temporary left


def test_extremes_show_the_highest_and_lowest_scores(tmp_path, monkeypatch):
    shown = []
    real = visualize._gray
    monkeypatch.setattr(visualize, "_gray", lambda img: shown.append(float(np.mean(img))) or real(img))
    images = np.stack([np.full((8, 8, 1), v, np.float32) for v in np.linspace(0, 1, 10)])
    scores = np.array([5, 1, 9, 3, 7, 0, 8, 2, 6, 4], np.float64)
    visualize.extremes_png(images, scores, str(tmp_path / "x.png"), k=3)
    picked = [int(round(v * 9)) for v in shown]
    assert picked == [2, 6, 4, 5, 1, 7]  # indices of 9, 8, 7, then of 0, 1, 2


def test_map_scale_is_one_percentile_over_all_normal_maps():
    maps = np.stack([np.zeros((4, 4)), np.full((4, 4), 10.0)])
    assert visualize.map_scale(maps, 50) == pytest.approx(5.0)
    assert visualize.map_scale(maps, 100) == 10.0


def test_heatmap_and_grids_are_png_files_and_a_failed_plot_leaves_nothing(tmp_path):
    img = np.random.default_rng(0).uniform(size=(20, 30)).astype(np.float32)
    heat = np.where(np.arange(30)[None, :] < 10, np.nan, img)  # NaN: not scored
    assert Image.open(visualize.heatmap_png(img, heat, str(tmp_path / "h.png"), vmax=1.0)).format == "PNG"
    x = np.random.default_rng(1).uniform(size=(5, 8, 8, 1)).astype(np.float32)
    grid = Image.open(visualize.reconstruction_grid_png(x, x, str(tmp_path / "g.png"), ncols=4))
    assert grid.format == "PNG" and grid.size[1] > grid.size[0] // 2  # 4 rows of 4: inputs, reconstructions x 2
    with pytest.raises(ValueError, match="no training history"):
        visualize.training_curves_png({}, str(tmp_path / "curves.png"))
    assert sorted(os.listdir(tmp_path)) == ["g.png", "h.png"]
