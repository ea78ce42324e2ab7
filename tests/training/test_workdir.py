"""Work-directory bookkeeping: run identity, the worker rule, finished stages."""

import json
import os

import pytest
import tensorflow as tf

from helpers import tiny_config
from tf_fanogan.training.workdir import RUN_FILE, Workdir, WorkdirError, for_worker


def test_a_workdir_refuses_another_run_but_accepts_a_longer_budget(tmp_path):
    w = Workdir(str(tmp_path / "w"))
    w.claim(tiny_config(), "data-a", ["gan"])
    w.claim(tiny_config(gan__epochs=5, gan__iterations=9, gan__learning_rate=3e-4), "data-a", ["gan"])
    with pytest.raises(WorkdirError, match="other data_fingerprint"):
        w.claim(tiny_config(), "data-b", ["gan"])
    with pytest.raises(WorkdirError, match="other gan"):
        w.claim(tiny_config(gan__gp_weight=3.0), "data-a", ["gan"])
    with pytest.raises(WorkdirError, match="other model"):
        w.claim(tiny_config(model__latent_prior="uniform"), "data-a", ["gan"])
    with open(os.path.join(tmp_path, "w", RUN_FILE)) as f:
        assert set(json.load(f)) == {"gan"}


def test_the_chief_uses_the_workdir_and_other_workers_their_own(tmp_path):
    assert for_worker(str(tmp_path), tf.distribute.get_strategy()) == str(tmp_path)
    assert for_worker(None, tf.distribute.get_strategy()) is None


def test_without_a_directory_nothing_is_written_or_restored():
    w = Workdir(None)
    w.claim(tiny_config(), "x", ["gan"])
    assert w.restore("gan", {}) is None and w.backed_up_epochs("gan") == 0
