"""The tutorial's exercise "add a diffuse component": gcxr fits exercise_diffuse_models.yaml (the GC
source, G0.9+0.1, the Fermi-LAT Galactic diffuse template x a norm, the FoV background) on the
seed's stacked dataset, unchanged, and lands on gammapy 2.1's result (exercise_diffuse_result.json)."""
import json

import pytest

from conftest import REF, needs_data

pytestmark = [needs_data, pytest.mark.data]

RESULT = json.loads((REF / "exercise_diffuse_result.json").read_text()) if REF.exists() else {}
# gammapy reports MIGRAD's running covariance, which underestimates the errors of strongly
# correlated spectral parameters; gcxr reports the Hessian's (as for the seed, docs/parity.md)
SPECTRAL_SHAPE = {("gc-source", "index"), ("gc-source", "amplitude"), ("gc-source", "lambda_")}


@pytest.fixture(scope="module")
def diffuse_fit():
    from gcxr.analysis import Analysis
    ana = Analysis(REF / "analysis_config_stacked_fit.yaml", progress=False)
    ana.get_observations()
    ana.get_datasets()
    ana.read_models(REF / "exercise_diffuse_models.yaml")
    return ana, ana.run_fit()


def test_diffuse_exercise_matches_gammapy(diffuse_fit):
    _, r = diffuse_fit
    ref = RESULT["fit"]
    assert r.success
    assert abs(r.total_stat - ref["total_stat"]) < 0.5
    free = [p for p in ref["parameters"] if not p["frozen"]]
    assert len(free) == 11
    for p_ref in free:
        p = r.parameter(p_ref["model"], p_ref["name"])
        assert not p["frozen"], p_ref
        key = (p_ref["model"], p_ref["name"])
        assert abs(p["value"] - p_ref["value"]) < 0.1 * p_ref["error"], (key, p["value"], p_ref["value"])
        upper = 1.3 if key in SPECTRAL_SHAPE else 1.1
        assert 0.9 * p_ref["error"] <= p["error"] <= upper * p_ref["error"], (key, p["error"], p_ref["error"])


def test_diffuse_component_is_energy_dependent(diffuse_fit):
    """The diffuse template's flux reaches only the true-energy bins below its last plane (gammapy's
    rule: zero beyond half a plane past 513 GeV), and the fit's calls are few (cached folding)."""
    import numpy as np

    from gcxr.npred import SourceEvaluator
    ana, r = diffuse_fit
    ds = ana.datasets[0]
    ev = SourceEvaluator.build(ana.models["diffuse"], ds)
    C = ev.folded({k: p.value for k, p in zip(ana.models["diffuse"].spatial_model.parameters.names,
                                              ana.models["diffuse"].spatial_model.parameters)})
    carries = np.any(C.reshape(C.shape[0], -1) > 0, axis=1)
    et = ds["energy_true_bounds"].values
    assert carries[et[:, 1] < 0.5].all() and not carries[et[:, 0] > 0.9].any()
    assert r.nfev < 100                 # gammapy 2.1: 423
