"""Tiny shapes and session-scoped trained fixtures, so the suite stays fast on 2 CPU cores."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The shared real data beside the project (tests may run from any directory, notebooks from theirs).
os.environ.setdefault("TF_FANOGAN_SHARED_DATA", os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")))

import pytest
import tensorflow as tf

# Grappler's graph rewrites cost more than they save on the suite's tiny graphs (a tiny fit 18 s
# -> 13 s without them). Off in the test processes only: the processes tests start (CLI serve,
# tf.distribute workers, saved_model_cli) and the slow tier's notebooks and benchmarks keep TF's defaults.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

from helpers import blobs, tiny_config  # noqa: F401 -- the fixtures below use them
from helpers.data import labelled_folder  # noqa: F401 -- a fixture shared by tests/data and tests/evaluation


@pytest.fixture(scope="session")
def normal_images():
    return blobs(80, seed=1)


@pytest.fixture(scope="session")
def trained_detector(normal_images):
    from tf_fanogan.detector import FAnoGAN

    det = FAnoGAN(tiny_config())
    det.fit(normal_images, validation=normal_images[:8], verbose=0)
    det.calibrate(blobs(20, seed=2), fpr=0.1)
    return det


@pytest.fixture(scope="session")
def trained_export(trained_detector, tmp_path_factory):
    """One export of ``trained_detector`` (with warm-up records) per worker; tests that serve it
    publish copies (``helpers.serving.publish``) instead of exporting again (~5 s each)."""
    from tf_fanogan.serving.export import export_detector

    return export_detector(trained_detector, str(tmp_path_factory.mktemp("trained_export")), "fanogan")


# Known long files first (seconds on 2 cores, measured with --durations): `-n 2 --dist loadfile`
# hands whole files to workers in collection order, so starting the long ones early lets the
# short ones fill in and both workers finish together.
LONG_FILES = {"tests/benchmarks/test_quality.py": 160, "tests/benchmarks/test_beam.py": 120,
              "tests/test_reliability.py": 330, "tests/test_notebooks.py": 190,
              "tests/benchmarks/test_speed.py": 100, "tests/serving/test_server_load.py": 60,
              "tests/training/test_distribute.py": 110, "tests/paper/test_baselines.py": 120,
              "tests/benchmarks/test_streaming.py": 60, "tests/benchmarks/test_serving.py": 70,
              "tests/benchmarks/test_demo.py": 70, "tests/benchmarks/test_recipe.py": 65,
              "tests/benchmarks/test_tiles.py": 100, "tests/scoring/test_tiled.py": 80,
              "tests/models/test_wgan_gp.py": 140, "tests/cli/test_serving.py": 70,
              "tests/serving/test_server.py": 80, "tests/serving/test_export.py": 90,
              "tests/training/test_schedule.py": 80, "tests/benchmarks/test_reliability.py": 50}


# The slow tier (`make test-slow`; CI runs both tiers): kill-and-resume and load reliability, the
# notebooks run end to end, and one --quick run of every benchmark script. `make test` leaves them
# out (pyproject's addopts: -m "not slow") to stay within about 15 minutes on 2 cores.
SLOW = ("tests/test_reliability.py", "tests/test_notebooks.py", "tests/benchmarks/")


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m deselection
def pytest_collection_modifyitems(config, items):
    root = str(config.rootpath)

    def weight(item):
        path = os.path.relpath(str(item.path), root)
        return -LONG_FILES.get(path, 0)

    for item in items:
        if os.path.relpath(str(item.path), root).startswith(SLOW):
            item.add_marker(pytest.mark.slow)
    items.sort(key=weight)  # stable: the order inside a file and among the rest is kept
