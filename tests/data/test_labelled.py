"""Labelled evaluation data: folder and CSV layouts, their errors, and masks at model size."""

import os

import numpy as np
import pytest

from helpers.data import _write_png


def test_read_labelled_folder_and_csv(labelled_folder, tmp_path):
    from tf_fanogan.data.labelled import read_labelled

    images, labels, masks, names = read_labelled(str(labelled_folder / "data"))
    assert len(images) == 24 and labels.tolist() == [0] * 12 + [1] * 12
    assert masks[0].max() == 0 and masks[-1].max() == 255 and names[-1].endswith("a9.png")
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path,label,mask\n" + "".join(
        f"{os.path.relpath(n, tmp_path)},{y},{os.path.relpath(str(labelled_folder / 'data' / 'masks' / os.path.basename(n)), tmp_path) if y else ''}\n"
        for n, y in zip(names, labels)))
    images2, labels2, masks2, _ = read_labelled(str(csv_path))
    assert np.array_equal(labels2, labels) and all(np.array_equal(a, b) for a, b in zip(masks2, masks))


def test_read_labelled_errors_name_the_problem(labelled_folder, tmp_path):
    from tf_fanogan.data.images import DataError
    from tf_fanogan.data.labelled import read_labelled

    (tmp_path / "only" / "normal").mkdir(parents=True)
    with pytest.raises(DataError, match="anomalous"):
        read_labelled(str(tmp_path / "only"))
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nx.png,2\n")
    with pytest.raises(DataError, match="line 2"):
        read_labelled(str(bad))
    os.remove(labelled_folder / "data" / "masks" / "a3.png")
    try:
        with pytest.raises(DataError, match="a3.png: no mask"):
            read_labelled(str(labelled_folder / "data"))
    finally:
        mask = np.zeros((20, 20), np.uint8); mask[:, 9:11] = 255
        _write_png(str(labelled_folder / "data" / "masks" / "a3.png"), mask)


def test_resize_masks_keeps_thin_defects():
    from tf_fanogan.data.labelled import resize_masks

    mask = np.zeros((64, 64), np.uint8); mask[:, 30] = 255  # one-pixel line
    small = resize_masks([mask], 16)
    assert small.shape == (1, 16, 16) and small[0, :, 7].all() and small.sum() == 16
