"""tf.distribute: both stages on two replicas (two workers, or two devices) match one device.

Each run trains a tiny f-AnoGAN (3 generator updates of 2 critic updates, then 3 encoder
updates, global batch 8) in its own process (tests/helpers/distributed_run.py); the weights
must equal those of one worker running the same global batches, up to float rounding.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO

HELPER = os.path.join(REPO, "tests", "helpers", "distributed_run.py")


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _start(out, mode, **env):
    return subprocess.Popen([sys.executable, HELPER, str(out), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(**env), cwd=REPO)


def _finish(proc, timeout=420):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, out[-3000:]


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One-worker reference, two MultiWorkerMirroredStrategy workers, MirroredStrategy on 2 CPUs."""
    d = tmp_path_factory.mktemp("distribute")
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = [_start(d / "single.npz", "none"), _start(d / "mirrored.npz", "mirrored")]
    procs += [_start(d / f"worker{i}.npz", "multi_worker",
                     TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
              for i in range(2)]
    for p in procs:  # all four at once: each is mostly importing and tracing, on one core
        _finish(p)
    return {name: np.load(d / f"{name}.npz") for name in ("single", "worker0", "worker1", "mirrored")}


def _compare(ref, other):
    keys = [k for k in ref.files if k.startswith("trained:")]
    diff = sum(np.abs(ref[k] - other[k]).sum() for k in keys)
    change = sum(np.abs(ref[k] - ref["initial:" + k[len("trained:"):]]).sum() for k in keys)
    worst = max(float(np.abs(ref[k] - other[k]).max()) for k in keys)
    return diff / change, worst


@pytest.mark.parametrize("name", ["worker0", "worker1", "mirrored"])
def test_two_replicas_train_the_same_weights_as_one(runs, name):
    ref, other = runs["single"], runs[name]
    assert int(other["replicas"]) == 2 and int(ref["replicas"]) == 1
    for k in ref.files:
        if k.startswith("initial:"):
            np.testing.assert_array_equal(ref[k], other[k])  # same start
    relative, worst = _compare(ref, other)
    # Training moved the weights; the two-replica run differs from it by rounding alone.
    assert relative < 1e-4, f"{name}: weights differ by {relative:.2e} of the training change"
    assert worst < 1e-5, f"{name}: largest weight difference {worst:.2e}"
    for net in ("generator", "critic", "encoder"):
        moved = max(float(np.abs(ref[k] - ref["initial:" + k[8:]]).max())
                    for k in ref.files if k.startswith(f"trained:{net}/"))
        assert moved > 1e-3, f"{net} did not train ({moved:.1e}), the comparison would prove nothing"


def test_make_strategy_errors(monkeypatch):
    from tf_fanogan.training.distribute import StrategyError, make_strategy

    with pytest.raises(StrategyError, match="one of"):
        make_strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(StrategyError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
    with pytest.raises(StrategyError, match="not a usable cluster spec"):
        make_strategy("multi_worker")


def test_training_dataset_is_a_fresh_permutation_per_epoch_and_skips_exactly():
    from tf_fanogan.training.pipeline import training_dataset

    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    it = iter(training_dataset(x, 5, seed=3))
    stream = np.concatenate([next(it).numpy().ravel() for _ in range(6)])
    epochs = stream.reshape(3, 10)
    for e in epochs:
        assert sorted(e) == list(range(10))  # every image once per epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled
    again = iter(training_dataset(x, 5, seed=3))
    np.testing.assert_array_equal(np.concatenate([next(again).numpy().ravel() for _ in range(6)]), stream)
    resumed = iter(training_dataset(x, 5, seed=3, skip_batches=3))
    np.testing.assert_array_equal(np.concatenate([next(resumed).numpy().ravel() for _ in range(3)]), stream[15:])
    other = iter(training_dataset(x, 5, seed=4))
    assert not np.array_equal(np.concatenate([next(other).numpy().ravel() for _ in range(2)]), stream[:10])
