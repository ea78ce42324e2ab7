"""Config files: strict keys and types with the key's path in the message, JSON/YAML in and out."""

import dataclasses

import pytest

from tf_fanogan.config_files import from_dict, read_mapping, to_text
from tf_fanogan.errors import ConfigError


@dataclasses.dataclass
class Inner:
    rate: float = 0.1
    steps: int | None = None


@dataclasses.dataclass
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    name: str = "x"
    flag: bool = False


def test_nested_sections_and_numbers_as_yaml_writes_them():
    out = from_dict(Outer, {"inner": {"rate": "1e-4", "steps": 3}, "flag": True}, "c.yaml")
    assert out == Outer(Inner(1e-4, 3), "x", True)  # YAML 1.1 reads 1e-4 as a string: taken as the number
    assert from_dict(Outer, {"inner": {"rate": 2}}, "c").inner.rate == 2.0  # an int where a float goes


@pytest.mark.parametrize("data,words", [
    ({"inner": {"rte": 1.0}}, r"c\.inner: unknown key\(s\) \['rte'\] for Inner; known: \['rate', 'steps'\]"),
    ({"inner": {"steps": 2.5}}, r"c\.inner: key 'steps' of Inner must be an integer or null"),
    ({"flag": 1}, r"c: key 'flag' of Outer must be bool, got int"),
    ({"inner": [1]}, r"c\.inner: expected a mapping for Inner, got list"),
])
def test_unknown_keys_and_wrong_types_name_the_path(data, words):
    with pytest.raises(ConfigError, match=words):
        from_dict(Outer, data, "c")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_files_round_trip_and_bad_files_name_the_file(tmp_path, suffix):
    path = str(tmp_path / f"c{suffix}")
    data = {"inner": {"rate": 0.5, "steps": None}, "name": "y", "flag": True}
    with open(path, "w") as f:
        f.write(to_text(data, path))
    assert read_mapping(path) == data
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        read_mapping(str(tmp_path / "nope.yaml"))
    bad = tmp_path / f"bad{suffix}"
    bad.write_text("{unclosed")
    with pytest.raises(ConfigError, match=f"bad{suffix}: cannot parse"):
        read_mapping(str(bad))
