"""Flux points of the stacked seed fit with gammapy 2.1's FluxPointsEstimator, printed as JSON.

Run in the gammapy environment (not imported by gcxr):

    GAMMAPY_DATA=../shared/data /work/venv-gammapy/bin/python benchmarks/gammapy_flux_points.py \\
        [--ref ../shared/reference/gammapy-2.1-cta1dc-gc] [--edges 0.398107 1 2.511886 6.309573 10]

Steps as in the reference's gammapy_write_fitted.py: the stacked dataset of the
seed config, mask_fit E >= 0.3 TeV, seed_models_stacked.yaml fitted, then the
estimator with its defaults (reoptimize=False, n_sigma_ul=2) and upper limits.
The numbers in tests/test_estimators.py come from one run of this script.
"""
import argparse
import json
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default=str(REPO.parent / "shared" / "reference" / "gammapy-2.1-cta1dc-gc"))
    ap.add_argument("--edges", type=float, nargs="+", default=[0.398107171, 1.0, 2.511886432, 6.309573445, 10.0])
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    from gammapy.analysis import Analysis, AnalysisConfig
    from gammapy.estimators import FluxPointsEstimator
    from gammapy.modeling import Fit
    from gammapy.modeling.models import Models

    ref = Path(a.ref)
    c = AnalysisConfig.read(ref / "analysis_config.yaml")
    c.general.log = {"level": "error"}
    ana = Analysis(c)
    ana.get_observations()
    ana.get_datasets()
    d = ana.datasets["stacked"]
    d.mask_fit = d.counts.geom.energy_mask(energy_min=0.3 * u.TeV, energy_max=None)
    d.models = Models.read(ref / "seed_models_stacked.yaml")
    fit_result = Fit().run(datasets=[d])
    est = FluxPointsEstimator(energy_edges=np.array(a.edges) * u.TeV, source="gc-source",
                              selection_optional=["ul"])
    fp = est.run(datasets=[d])
    t = fp.to_table(sed_type="dnde", format="gadf-sed")
    out = {"total_stat": float(fit_result.total_stat), "edges": a.edges}
    for col in ("e_ref", "e_min", "e_max", "norm", "norm_err", "norm_ul", "ts", "sqrt_ts", "dnde", "dnde_err",
                "dnde_ul", "counts"):
        if col in t.colnames:
            out[col] = np.asarray(t[col]).ravel().astype(float).tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
