"""What every subcommand shares: exit codes and one-line errors."""


from tf_fanogan.cli import main
from helpers.cli import TINY


def test_bad_input_exits_non_zero_with_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "d"), *TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no image files" in err
    assert main(["train", "--data", str(empty), "--out", str(tmp_path / "d"), "--set", "gan.nope=1"]) == 1
    assert "unknown key" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing")]) == 1
    assert "not a detector directory" in capsys.readouterr().err
