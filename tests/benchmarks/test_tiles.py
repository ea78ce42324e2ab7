"""``benchmarks.tiles --quick``: squashed and tiled magnetic tile, two updates each, into a temporary folder."""

import json
import os

import pytest

from helpers import REPO
from helpers.benchmarks import run


def test_tiles_quick(tmp_path):
    shared = os.environ.get("TF_FANOGAN_SHARED_DATA") or os.path.join(REPO, "..", "shared", "data")
    if not os.path.isdir(os.path.join(shared, "magnetic_tile")):
        pytest.skip(f"the shared magnetic-tile data is absent ({os.path.abspath(shared)}/magnetic_tile)")
    text = run("benchmarks.tiles", "--quick", "--out", str(tmp_path / "t"), "--docs", str(tmp_path / "docs"))
    assert "| squashed_32 | 1 |" in text and "| tiles_64 | 1 |" in text
    squashed, tiled = (json.loads((tmp_path / "t" / "units" / f"{v}__seed0.json").read_text())
                       for v in ("squashed_32", "tiles_64"))
    assert squashed["config"]["data"]["tile_stride"] is None and tiled["config"]["data"]["tile_stride"] == 8
    assert tiled["n_train_tiles"] > 10 * squashed["n_train_tiles"]  # every tile of every crop, not one per image
    assert 0.0 <= tiled["aupro"] <= 1.0 and os.path.isfile(tiled["pictures"][1])
