"""Atomic publication: a failed write leaves the old state and no temporary; replacement swaps whole directories."""

import os
from unittest import mock

import pytest

from tf_fanogan.utils import atomic


def _write(files):
    def write(d):
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
    return write


def test_a_directory_is_published_whole_and_replaced_whole(tmp_path):
    path = str(tmp_path / "model")
    atomic.write_directory_atomically(path, _write({"a": "1", "b": "1"}))
    atomic.write_directory_atomically(path, _write({"a": "2"}))
    assert sorted(os.listdir(path)) == ["a"] and open(os.path.join(path, "a")).read() == "2"  # no file of the old left
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temporary or old copy beside it


def test_a_failed_directory_write_keeps_the_old_one_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "model")
    atomic.write_directory_atomically(path, _write({"a": "old"}))

    def fails(d):
        _write({"a": "new"})(d)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_directory_atomically(path, fails)
    assert open(os.path.join(path, "a")).read() == "old" and sorted(os.listdir(tmp_path)) == ["model"]


def test_without_renameat2_the_old_directory_is_moved_aside_and_recovered_after_a_crash(tmp_path):
    path = str(tmp_path / "model")
    atomic.write_directory_atomically(path, _write({"a": "1"}))
    with mock.patch.object(atomic, "_exchange", return_value=False):
        atomic.write_directory_atomically(path, _write({"a": "2"}))
    assert open(os.path.join(path, "a")).read() == "2" and sorted(os.listdir(tmp_path)) == ["model"]
    # A process killed between "move the old one aside" and "rename the new one in":
    os.rename(path, atomic.temporary_sibling(path, "old"))
    atomic.recover_directory(path)
    assert open(os.path.join(path, "a")).read() == "2"


def test_a_failed_file_write_keeps_the_old_file(tmp_path):
    path = str(tmp_path / "scores.csv")
    atomic.write_file_atomically(path, lambda f: f.write("old\n"))

    def fails(f):
        f.write("new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic.write_file_atomically(path, fails)
    assert open(path).read() == "old\n" and os.listdir(tmp_path) == ["scores.csv"]
