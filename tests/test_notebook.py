"""notebooks/3d_analysis.ipynb runs top to bottom on the shared data (and its figures are real)."""
import base64
import json
import re
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

    # Exercise 3: the diffuse exercise lands on gammapy 2.1's fit (exercise_diffuse_result.json)
    norm, norm_err = map(float, re.search(r"diffuse norm: gcxr ([\d.]+) ± ([\d.]+)", text).groups())
    assert abs(norm - 0.513675) < 0.1 * 0.040840 and abs(norm_err - 0.040840) < 0.1 * 0.040840
    stat, nfev = re.search(r"statistic: gcxr ([\d.]+), gammapy 2.1 179936.23; calls: gcxr (\d+)", text).groups()
    assert abs(float(stat) - 179936.2251) < 0.5 and int(nfev) < 423
    assert (tmp_path / "notebook-out" / "exercise_diffuse_models.yaml").exists()
    # Modelling in more detail: both likelihood-ratio tests within 0.5 of gammapy 2.1's TS
    ref = json.loads((ROOT / "tests" / "data" / "gammapy_model_comparison.json").read_text())["comparisons"]
    for label, key in [("extension (point vs Gaussian)", "point_vs_gauss"), ("cutoff (PL vs ECPL)", "pl_vs_ecpl")]:
        ts, ts_ref = map(float, re.search(re.escape(label) + r": TS ([\d.]+) \(gammapy 2.1: TS ([\d.]+)\)", text).groups())
        assert abs(ts_ref - ref[key]["ts"]) < 1e-3 and abs(ts - ts_ref) < 0.5, (label, ts, ts_ref)
