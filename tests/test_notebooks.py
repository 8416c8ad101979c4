"""The notebooks run top to bottom without error, save their plots, and are stored stripped."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(__file__))
NOTEBOOKS = {"formats": ["formats_grid.png", "formats_error.png", "formats_range.png"],
             "accumulation": ["accumulation_swamping.png", "accumulation_chunks.png"],
             "training": ["training_curves.png"],
             "engines": ["engines_kept_bits.png", "engines_accumulation.png"]}


def _read(name):
    return nbformat.read(os.path.join(ROOT, "notebooks", f"{name}.ipynb"), as_version=4)


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_runs_and_saves_its_plots(name, tmp_path, monkeypatch):
    monkeypatch.setenv("FPSIM_FIGURES", str(tmp_path))
    monkeypatch.setenv("NUMBA_NUM_THREADS", os.environ.get("NUMBA_NUM_THREADS", "1"))
    nb = _read(name)
    NotebookClient(nb, timeout=240, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    for png in NOTEBOOKS[name]:
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png


@pytest.mark.parametrize("name", sorted(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(name):
    for cell in _read(name).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
