"""Helpers of the benchmark smoke tests (tests/benchmarks/): run one script with ``--quick``."""

import os
import subprocess
import sys

import pytest

from . import REPO


def elpv_or_skip():
    try:
        import elpv_dataset  # noqa: F401
    except ImportError:
        pytest.skip("elpv-dataset is not installed (pip install -e '.[data]')")


def run(module, *args, timeout=600, check=True):
    """``python -m <module> <args>`` from the checkout; its stdout, or the test fails with its stderr.
    With ``check=False``: a run that must fail; the test fails if it does not, else its stderr."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    if not check:
        assert out.returncode != 0, out.stdout[-3000:]
        return out.stderr
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout
