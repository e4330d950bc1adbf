"""gammapy 2.1's numbers for two nested model comparisons on the seed's stacked dataset.

Run in gammapy's own environment (never imported by gcxr)::

    GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python benchmarks/gammapy_model_comparison.py \
        ../shared/reference/gammapy-2.1-cta1dc-gc tests/data/gammapy_model_comparison.json

The dataset is gammapy's stacked reduction (``stacked.fits.gz``) with the fit
mask of ``analysis_config_stacked_fit.yaml`` (reconstructed energy >= 0.3 TeV);
the starting point is ``seed_models_stacked.yaml`` (point source with an
exponential-cutoff power law, FoV background norm).  Three fits:

* ``point_ecpl``: the seed model;
* ``gauss_ecpl``: the same with a symmetric Gaussian (``sigma`` free, start 0.1 deg);
* ``point_pl``: the seed position model with a power law (index 2.3, amplitude 2.8e-12).

Comparisons (null -> alternative): (a) point_ecpl -> gauss_ecpl, (b) point_pl -> point_ecpl.
TS = stat(null) - stat(alternative) (Cash statistics, i.e. -2 ln L up to a constant).
"""
import json
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import scipy.stats

warnings.simplefilter("ignore")
from gammapy.datasets import MapDataset  # noqa: E402
from gammapy.modeling import Fit  # noqa: E402
from gammapy.modeling.models import (  # noqa: E402
    GaussianSpatialModel,
    Models,
    PowerLawSpectralModel,
)

ref = Path(sys.argv[1])
out_path = Path(sys.argv[2])

dataset = MapDataset.read(ref / "stacked.fits.gz", name="stacked")
dataset.mask_fit = dataset.counts.geom.energy_mask(energy_min=0.3 * u.TeV, energy_max=None)


def seed_models():
    return Models.read(ref / "seed_models_stacked.yaml")


def variant(kind):
    models = seed_models()
    src = models["gc-source"]
    if kind == "gauss_ecpl":
        lon, lat = src.spatial_model.lon_0.value, src.spatial_model.lat_0.value
        src.spatial_model = GaussianSpatialModel(lon_0=lon * u.deg, lat_0=lat * u.deg,
                                                 sigma=0.1 * u.deg, frame="galactic")
    elif kind == "point_pl":
        src.spectral_model = PowerLawSpectralModel(index=2.3, amplitude=2.8e-12 * u.Unit("cm-2 s-1 TeV-1"),
                                                   reference=1 * u.TeV)
    return models


results = {}
for kind in ("point_ecpl", "gauss_ecpl", "point_pl"):
    models = variant(kind)
    dataset.models = models
    t0 = time.perf_counter()
    r = Fit().run(datasets=[dataset])
    dt = time.perf_counter() - t0
    results[kind] = {
        "success": bool(r.success),
        "nfev": int(r.optimize_result.nfev),
        "total_stat": float(r.total_stat),
        "n_free": int(len(models.parameters.free_parameters)),
        "fit_s": dt,
        "parameters": [{"model": m.name, "name": p.name, "value": float(p.value), "error": float(p.error),
                        "unit": str(p.unit), "frozen": bool(p.frozen)} for m in models for p in m.parameters],
    }
    print(kind, results[kind]["total_stat"], results[kind]["n_free"], f"{dt:.1f} s", flush=True)


def compare(null, alt):
    n, a = results[null], results[alt]
    ts = n["total_stat"] - a["total_stat"]
    dof = a["n_free"] - n["n_free"]
    p = float(scipy.stats.chi2.sf(ts, dof))
    return {"null": null, "alternative": alt, "ts": ts, "dof": dof, "p_value": p,
            "significance": float(scipy.stats.norm.isf(p / 2.0)),
            "aic_null": n["total_stat"] + 2 * n["n_free"], "aic_alternative": a["total_stat"] + 2 * a["n_free"]}


out = {
    "what": "gammapy 2.1 fits of the seed's stacked dataset (stacked.fits.gz, fit mask E_reco >= 0.3 TeV) "
            "for two nested comparisons; made by benchmarks/gammapy_model_comparison.py. total_stat is "
            "gammapy's Cash statistic; ts = stat(null) - stat(alternative); significance is two-sided "
            "Gaussian sigma of the chi2(dof) p-value (Wilks), aic = stat + 2 n_free. fit_s: seconds on a "
            "loaded 2-core machine.",
    "fits": results,
    "comparisons": {"point_vs_gauss": compare("point_ecpl", "gauss_ecpl"),
                    "pl_vs_ecpl": compare("point_pl", "point_ecpl")},
}
out_path.write_text(json.dumps(out, indent=1) + "\n")
print(json.dumps(out["comparisons"], indent=1))
