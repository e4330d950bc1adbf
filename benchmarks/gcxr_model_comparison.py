"""gcxr's numbers for the two nested model comparisons of benchmarks/gammapy_model_comparison.py.

gcxr reduces the seed runs itself (``analysis_config_stacked_fit.yaml``: stacked,
fit from 0.3 TeV) and fits, from ``seed_models_stacked.yaml``:

* ``point_ecpl``: the seed model;
* ``gauss_ecpl``: the same with a symmetric Gaussian (sigma free, start 0.1 deg);
* ``point_pl``: the seed position model with a power law (index 2.3, amplitude 2.8e-12).

Usage (from the repository root)::

    GCXR_DATA=../shared/data python benchmarks/gcxr_model_comparison.py [OUT.json]

Prints (and writes) the fitted statistics, parameters, fit times and the
comparisons next to gammapy's (tests/data/gammapy_model_comparison.json).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF = Path(os.environ.get("GCXR_SHARED", ROOT.parent / "shared")) / "reference" / "gammapy-2.1-cta1dc-gc"
os.environ.setdefault("GCXR_DATA", str(REF.parents[1] / "data"))


def variant_models(kind: str):
    """The seed stacked models with the GC source's spatial or spectral model swapped."""
    from gcxr.models import GaussianSpatialModel, Models, PowerLawSpectralModel
    models = Models.read(REF / "seed_models_stacked.yaml")
    src = models["gc-source"]
    if kind == "gauss_ecpl":
        lon, lat = src.spatial_model.position
        src.spatial_model = GaussianSpatialModel(lon_0=lon, lat_0=lat, sigma=0.1, frame=src.spatial_model.frame)
    elif kind == "point_pl":
        src.spectral_model = PowerLawSpectralModel(index=2.3, amplitude=2.8e-12, reference=1.0)
    elif kind != "point_ecpl":
        raise ValueError(kind)
    return models


def run(ana, kinds=("point_ecpl", "gauss_ecpl", "point_pl")) -> dict:
    from gcxr.estimators import compare_models
    fits = {}
    for kind in kinds:
        ana.set_models(variant_models(kind))
        t0 = time.perf_counter()
        r = ana.run_fit()
        fits[kind] = dict(r.to_dict(), fit_s=time.perf_counter() - t0,
                          n_free=sum(1 for p in r.parameters if not p["frozen"]))
    comparisons = {
        "point_vs_gauss": compare_models(fits["point_ecpl"], fits["gauss_ecpl"]).to_dict(),
        "pl_vs_ecpl": compare_models(fits["point_pl"], fits["point_ecpl"]).to_dict(),
    }
    return {"fits": fits, "comparisons": comparisons}


def main() -> None:
    from gcxr.analysis import Analysis
    t0 = time.perf_counter()
    ana = Analysis(REF / "analysis_config_stacked_fit.yaml", progress=False)
    ana.get_observations()
    ana.get_datasets()
    t_reduce = time.perf_counter() - t0
    out = run(ana)
    out["reduce_s"] = t_reduce
    gp = json.loads((ROOT / "tests" / "data" / "gammapy_model_comparison.json").read_text())
    for kind, f in out["fits"].items():
        g = gp["fits"][kind]
        print(f"{kind:11s} gcxr stat {f['total_stat']:.4f} ({f['fit_s']:.1f} s, nfev {f['nfev']}, "
              f"success {f['success']})   gammapy {g['total_stat']:.4f} ({g['fit_s']:.1f} s)")
    for key, c in out["comparisons"].items():
        g = gp["comparisons"][key]
        print(f"{key:15s} TS gcxr {c['ts']:.4f} gammapy {g['ts']:.4f}  (diff {c['ts'] - g['ts']:+.4f}); "
              f"sigma {c['significance']:.3f} / {g['significance']:.3f}; dAIC {c['delta_aic']:.3f} / "
              f"{g['aic_alternative'] - g['aic_null']:.3f}")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
