"""TensorBoard summaries of a real CLI training, and the GAN-health warnings."""

import glob
import os

import numpy as np
import pytest

from helpers import blobs


def _tags(folder):
    import tensorflow as tf

    tags = {}
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for v in event.summary.value:
                tags.setdefault(v.tag, []).append(event.step)
    return tags


def test_cli_training_writes_scalars_images_and_interpolations(tmp_path):
    from tf_fanogan.cli import main

    data = tmp_path / "x.npy"
    np.save(data, blobs(48, seed=1))
    tiny = ["--set", "model.image_size=16", "--set", "model.dim=8", "--set", "model.latent_dim=16",
            "--set", "gan.epochs=2", "--set", "gan.batch_size=4", "--set", "encoder.epochs=2",
            "--set", "encoder.batch_size=4",
            "--set", "gan.critic_steps=2", "--set", "gan.jit_compile=false", "--set", "encoder.jit_compile=false"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "det"), "--quiet", *tiny]) == 0
    tb = tmp_path / "det.work" / "tensorboard"
    gan, gan_images = _tags(tb / "gan" / "train"), _tags(tb / "gan" / "monitor")
    enc, enc_images = _tags(tb / "encoder" / "train"), _tags(tb / "encoder" / "monitor")
    assert {"epoch_c_loss", "epoch_g_loss", "epoch_gp", "epoch_w_dist"} <= set(gan)
    assert gan_images["samples/fixed_z"] == [1, 2] and gan_images["samples/interpolation"] == [1, 2]
    assert "health/sample_diversity_ratio" in gan_images
    assert {"epoch_enc_loss", "epoch_izi", "epoch_izi_f"} <= set(enc)
    assert {"reconstructions/real_reconstruction_residual", "encoder/val_izi", "encoder/val_izi_f"} <= set(enc_images)
    # --no-tensorboard writes none
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "d2"), "--quiet", "--no-tensorboard",
                 "--set", "gan.epochs=1", "--set", "encoder.epochs=1", *tiny[:6], *tiny[-6:]]) == 0
    assert not os.path.exists(tmp_path / "d2.work" / "tensorboard")


def _monitor(tmp_path, generator=None, **kwargs):
    from tf_fanogan.training.monitoring import TrainingMonitor
    from tf_fanogan.models.networks import Critic, Generator

    g = generator or Generator(16, 1, 8, 16)
    m = TrainingMonitor(str(tmp_path / "mon"), "gan", g, Critic(16, 1, 8, 16),
                        real_images=blobs(16, 16, seed=3).astype(np.float32)[..., None] / 127.5 - 1, **kwargs)
    m.set_params({"epochs": 10})
    return m


def test_collapsed_generator_is_reported(tmp_path, capsys):
    from tf_fanogan.models.networks import Generator

    g = Generator(16, 1, 8, 16)
    g.set_weights([np.zeros_like(w) for w in g.get_weights()])  # every z -> the same image
    m = _monitor(tmp_path, g)
    m.on_epoch_end(0, {"w_dist": 1.0})
    assert any("diversity collapsed" in w for w in m.warnings)
    assert "diversity collapsed" in capsys.readouterr().out
    assert "diversity collapsed" in (tmp_path / "mon" / "health.log").read_text()


def test_a_healthy_generator_is_not_reported(tmp_path):
    m = _monitor(tmp_path)  # random init: varied samples
    for epoch, w in enumerate([2.0, 1.5, 1.2, 1.25, 1.3, 1.35]):  # rises, but only slightly
        m.on_epoch_end(epoch, {"w_dist": w})
    assert m.warnings == []


def test_a_diverging_critic_is_reported(tmp_path):
    m = _monitor(tmp_path)
    for epoch, w in enumerate([1.0, 0.5, 1.0, 2.0, 4.0]):
        m.on_epoch_end(epoch, {"w_dist": w})
    assert len(m.warnings) == 1 and "critic diverging" in m.warnings[0] and "epoch 5" in m.warnings[0]


def test_pairwise_distance_and_grid():
    from tf_fanogan.training.monitoring import image_grid, mean_pairwise_distance

    x = np.random.default_rng(0).random((5, 3, 3, 1)).astype(np.float32)
    brute = np.mean([np.linalg.norm(a - b) for i, a in enumerate(x) for j, b in enumerate(x) if i != j])
    assert mean_pairwise_distance(x) == pytest.approx(brute)
    grid = image_grid(x, 2)
    assert grid.shape == (3 * 4 - 1, 2 * 4 - 1, 1) and np.array_equal(grid[4:7, 0:3], x[2])
