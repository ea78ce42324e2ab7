"""The tutorial notebooks run top to bottom (fast mode: FANOGAN_FAST=1 shrinks data and steps)."""

import os

import pytest

from helpers import REPO

nbformat = pytest.importorskip("nbformat", reason="the notebooks extra (nbclient, ipykernel) is not installed")
nbclient = pytest.importorskip("nbclient", reason="the notebooks extra (nbclient, ipykernel) is not installed")

NOTEBOOKS = os.path.join(REPO, "notebooks")


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_oct_bscans.ipynb", "03_tf_serving.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch):
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{name}: outputs not stripped"
    monkeypatch.setenv("FANOGAN_FAST", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.setenv("PYTHONPATH", REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the cell on any error
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")
    if name == "01_quickstart.ipynb":
        assert "saved and reloaded: same scores" in text
        assert os.path.isfile(tmp_path / "quickstart_output" / "roc.png")
    elif name == "02_oct_bscans.ipynb":
        if "ABSENT" in text:
            pytest.skip("../shared/data/oct_kermany_tiny is absent: the notebook ran its data check only")
        assert "B-scan AUROC" in text
        assert any(f.endswith(".png") for f in os.listdir(tmp_path / "oct_output"))
    else:
        assert "served == in-process: True" in text
        assert "now served by version 2" in text
