"""`fanogan beam-score` end to end (DirectRunner): equals `fanogan score`, empty input, multi-processing, Prism."""

import glob

import pytest

pytest.importorskip("apache_beam", reason="the Beam tests need the beam extra: pip install 'tf-fanogan[beam]'")


from helpers.beam import assert_same_rows, read_shards  # noqa: E402

from tf_fanogan.cli import main  # noqa: E402


def test_same_rows_as_fanogan_score(version, images, reference, tmp_path, capsys):
    out = str(tmp_path / "out" / "scores")
    assert main(["beam-score", "--model", version, "--data", str(images), "--output", out]) == 0
    assert "scored 12 images" in capsys.readouterr().out
    rows = read_shards(out)
    assert len(rows) == 12 and not any(".hidden" in r["path"] for r in rows)
    assert_same_rows(rows, reference)
    assert read_shards(f"{out}-errors") == []  # a header-only dead-letter shard


def test_empty_input_is_an_empty_output_and_a_warning(version, tmp_path, capsys):
    out = str(tmp_path / "out" / "s")
    assert main(["beam-score", "--model", version, "--data", str(tmp_path / "nothing" / "*.png"),
                 "--output", out]) == 0
    captured = capsys.readouterr()
    assert f"warning: {tmp_path}/nothing/*.png matches no file" in captured.err
    assert "scored 0 images" in captured.out
    assert read_shards(out) == [] and read_shards(f"{out}-errors") == []
    header = open(glob.glob(f"{out}-0*.csv")[0]).readline().strip()
    assert header == "path,anomaly_score,residual_score,feature_score,z_distance,p_value,is_anomaly"


def test_multi_processing_gives_the_same_rows(version, images, reference, tmp_path):
    out = str(tmp_path / "s")
    assert main(["beam-score", "--model", version, "--data", str(images), "--output", out,
                 "--direct_running_mode", "multi_processing", "--direct_num_workers", "2", "--max-batch", "5"]) == 0
    assert_same_rows(read_shards(out), reference)


def test_prism_runner(version, images, reference, tmp_path, capsys):
    """The PrismRunner, where its Go binary can be had (cached, or downloaded from GitHub)."""
    out = str(tmp_path / "s")
    code = main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--runner", "PrismRunner"])
    err = capsys.readouterr().err
    if code == 1 and "Unable to fetch remote prism binary" in err:
        pytest.skip("PrismRunner needs its Go binary, downloaded from GitHub on first use, and this machine has "
                    f"no network: {err.strip().splitlines()[-1]}")
    assert code == 0, err
    assert_same_rows(read_shards(out), [r for r in reference if "/png/" in r["path"]])
