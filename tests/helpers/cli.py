"""Helpers of the CLI tests (tests/cli/): tiny --set overrides and image folders."""

from PIL import Image


TINY = ["--set", "model.image_size=16", "--set", "model.dim=8", "--set", "model.latent_dim=16",
        "--set", "gan.epochs=1", "--set", "gan.batch_size=4", "--set", "encoder.epochs=1",
        "--set", "encoder.batch_size=4", "--set", "gan.critic_steps=2", "--quiet",
        "--set", "gan.jit_compile=false", "--set", "encoder.jit_compile=false"]  # explicit: XLA would cost ~25 s of compiling per run where "auto" turns it on (a GPU)


def folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"img_{i:03d}.png")
    return str(path)
