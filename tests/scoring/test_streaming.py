"""Streaming `fanogan score`: bounded chunks, resume after an interruption, same rows as one run."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from helpers import blobs
from tf_fanogan.data.images import DataError
from tf_fanogan.scoring.streaming import score_to_csv


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    for i, img in enumerate(blobs(30, seed=8)):
        sub = root / "imgs" / ("a" if i < 15 else "b")  # folders are read recursively
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"{i:03d}.png")
    return root


class _Interrupt(BaseException):
    pass


def test_chunks_are_bounded_and_every_image_is_scored(trained_detector, folder, tmp_path, monkeypatch):
    sizes = []
    real = trained_detector.score
    monkeypatch.setattr(trained_detector, "score", lambda x, batch_size=None, **kw: sizes.append(len(x)) or real(x, batch_size, **kw))
    c = score_to_csv(trained_detector, str(folder / "imgs"), str(tmp_path / "s.csv"), batch_size=4,
                     chunk_batches=2, progress=False)
    assert max(sizes) == 8 and sum(sizes) == 30 and c["scored"] == 30 and c["resumed"] == 0
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert len(rows) == 31 and rows[0].startswith("path,anomaly_score") and rows[0].endswith("is_anomaly")
    assert not any(p.name.endswith((".partial", ".partial.json")) for p in tmp_path.iterdir())


def test_an_interrupted_run_resumes_to_the_same_file(trained_detector, folder, tmp_path, monkeypatch, capsys):
    straight = tmp_path / "straight.csv"
    score_to_csv(trained_detector, str(folder / "imgs"), str(straight), batch_size=4, chunk_batches=1, progress=False)

    out = tmp_path / "out.csv"
    real, calls = trained_detector.score, []

    def dying(x, batch_size=None, **kw):
        calls.append(len(x))
        if len(calls) == 4:
            raise _Interrupt()  # like a kill: after 3 chunks were written
        return real(x, batch_size, **kw)

    monkeypatch.setattr(trained_detector, "score", dying)
    with pytest.raises(_Interrupt):
        score_to_csv(trained_detector, str(folder / "imgs"), str(out), batch_size=4, chunk_batches=1, progress=False)
    monkeypatch.setattr(trained_detector, "score", real)
    assert not out.exists()
    partial = tmp_path / "out.csv.partial"
    assert len(partial.read_text().splitlines()) == 1 + 12
    with open(partial, "a") as f:
        f.write("torn,0.12")  # a row cut off by the kill
    c = score_to_csv(trained_detector, str(folder / "imgs"), str(out), batch_size=4, chunk_batches=1)
    assert (c["resumed"], c["scored"]) == (12, 18)
    assert out.read_text() == straight.read_text()  # identical rows, in order, nothing rescored
    err = capsys.readouterr().err  # progress counts the resumed rows; the rate only the new ones
    assert f"resuming: 12 of 30 images already done in {partial}" in err
    assert re.search(r"^scored 30/30 images in [\d.]+ s \([\d.]+ images/s\)$", err, re.M), err


def test_another_detector_does_not_resume_a_partial_run(trained_detector, folder, tmp_path, monkeypatch):
    from tf_fanogan.detector import FAnoGAN

    out = tmp_path / "o.csv"
    real = trained_detector.score
    n = []
    monkeypatch.setattr(trained_detector, "score",
                        lambda x, batch_size=None, **kw: (_ for _ in ()).throw(_Interrupt())
                        if n.append(1) or len(n) > 1 else real(x, batch_size, **kw))
    with pytest.raises(_Interrupt):
        score_to_csv(trained_detector, str(folder / "imgs"), str(out), batch_size=4, chunk_batches=1, progress=False)
    monkeypatch.setattr(trained_detector, "score", real)
    fresh = FAnoGAN(trained_detector.config)  # untrained weights
    other = FAnoGAN.from_networks(trained_detector.config, *fresh.networks.values(),
                                  threshold=trained_detector.threshold_)
    with pytest.raises(DataError, match="another detector"):
        score_to_csv(other, str(folder / "imgs"), str(out), batch_size=4, chunk_batches=1, progress=False)


def test_txt_lists_and_memory_mapped_arrays(trained_detector, folder, tmp_path):
    paths = sorted(str(p) for p in (folder / "imgs").rglob("*.png"))[:5]
    (tmp_path / "list.txt").write_text("# five images\n" + "\n".join(os.path.relpath(p, tmp_path) for p in paths) + "\n")
    c = score_to_csv(trained_detector, str(tmp_path / "list.txt"), str(tmp_path / "l.csv"), progress=False)
    assert c["scored"] == 5
    np.save(tmp_path / "a.npy", blobs(7, seed=3))
    c = score_to_csv(trained_detector, str(tmp_path / "a.npy"), str(tmp_path / "a.csv"), batch_size=3, progress=False)
    rows = (tmp_path / "a.csv").read_text().splitlines()
    assert c["scored"] == 7 and rows[7].startswith(f"{tmp_path / 'a.npy'}[6]")
    expected = trained_detector.score(blobs(7, seed=3))["anomaly_score"]
    assert np.allclose([float(r.split(",")[1]) for r in rows[1:]], expected, rtol=1e-6)
