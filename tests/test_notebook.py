"""notebooks/3d_analysis.ipynb runs top to bottom on the shared data (and its figures are real)."""
import base64
from pathlib import Path

import pytest

from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "3d_analysis.ipynb"

pytestmark = [needs_data, pytest.mark.slow]


def test_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()                           # raises CellExecutionError on the first failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    text = "\n".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "dask dashboard: http" in text
    pngs = [base64.b64decode(o["data"]["image/png"]) for o in outputs
            if o.get("output_type") in ("display_data", "execute_result") and "image/png" in o.get("data", {})]
    assert len(pngs) >= 10 and all(p[:8] == b"\x89PNG\r\n\x1a\n" and len(p) > 5000 for p in pngs)
    assert any("text/html" in o.get("data", {}) or "application/vnd.holoviews_load.v0+json" in o.get("data", {})
               for o in outputs if "data" in o)                  # the hvplot cube
    assert (tmp_path / "notebook-out" / "fit_result.nc").exists()
