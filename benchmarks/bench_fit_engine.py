"""The fit engine on the seed's stacked dataset: analytic derivatives vs Minuit's numerical ones.

For several source models on the CTA-1DC Galactic-Centre stacked dataset (reduced once, not
timed), fit with ``derivatives="analytic"`` (gcxr's default: cached npred parts, analytic
gradient, Gauss-Newton ``g2``, Hessian of the gradient) and ``derivatives="minuit"`` (MIGRAD's
numerical gradient and Minuit's HESSE on the same cached-parts likelihood), each in the same
process, and record the fit time, statistic evaluations, gradient rounds, statistic and
parameters. Each fit starts from the same models; the first fit of the run is repeated so that
one-off import and set-up costs are not counted.

    GCXR_DATA=../shared/data .venv/bin/python benchmarks/bench_fit_engine.py [--cases point,gauss] \\
        [--out benchmarks/results/fit-engine-DATE.json]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
REF = Path(os.environ.get("GCXR_SHARED", REPO.parent / "shared")) / "reference" / "gammapy-2.1-cta1dc-gc"
os.environ.setdefault("GCXR_DATA", str(REF.parents[1] / "data"))

POS = [{"name": "lon_0", "value": -0.05, "unit": "deg"}, {"name": "lat_0", "value": -0.05, "unit": "deg"}]
SHAPES = {
    "point": None,
    "gauss": {"type": "GaussianSpatialModel", "frame": "galactic",
              "parameters": POS + [{"name": "sigma", "value": 0.1, "unit": "deg"}]},
    "disk": {"type": "DiskSpatialModel", "frame": "galactic",
             "parameters": POS + [{"name": "r_0", "value": 0.2, "unit": "deg"}]},
    "shell": {"type": "ShellSpatialModel", "frame": "galactic",
              "parameters": POS + [{"name": "radius", "value": 0.1, "unit": "deg"},
                                   {"name": "width", "value": 0.1, "unit": "deg"}]},
    "gauss_general": {"type": "GeneralizedGaussianSpatialModel", "frame": "galactic",
                      "parameters": POS + [{"name": "r_0", "value": 0.1, "unit": "deg"},
                                           {"name": "eta", "value": 0.5}]},
}
CASES = tuple(SHAPES) + ("diffuse_exercise",)


def models_for(case: str):
    from gcxr.models import Models
    if case == "diffuse_exercise":
        m = Models.read(REF / "exercise_diffuse_models.yaml")
    else:
        d = yaml.safe_load((REF / "seed_models_stacked.yaml").read_text())
        if SHAPES[case] is not None:
            d["components"][0]["spatial"] = SHAPES[case]
        m = Models.from_dict(d)
    if m.background_model("stacked") is None:
        m.add_fov_background(["stacked"])
    return m


def run_fit(datasets, case, derivatives):
    from gcxr.fit import fit
    models = models_for(case)
    t0 = time.perf_counter()
    r = fit(datasets, models, derivatives=derivatives)
    dt = time.perf_counter() - t0
    return {"fit_s": dt, "success": r.success, "nfev": r.nfev, "total_stat": r.total_stat,
            "likelihood": r.timings.get("likelihood"), "hessian": r.timings.get("hessian"),
            "parameters": {f"{p['model']}.{p['name']}": [p["value"], p["error"]]
                           for p in r.parameters if not p["frozen"]}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--derivatives", default="analytic,minuit")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" /
                                         f"fit-engine-{_dt.date.today().isoformat()}.json"))
    args = ap.parse_args()
    from gcxr.analysis import Analysis
    ana = Analysis(REF / "analysis_config_stacked_fit.yaml", progress=False)
    ana.get_observations()
    ana.get_datasets()
    datasets = [d.compute() for d in ana.datasets]
    cases = args.cases.split(",")
    run_fit(datasets, cases[0], "analytic")                 # warm-up: imports, first FFT plans
    out = {"date": _dt.datetime.now().isoformat(timespec="seconds"), "load_avg": os.getloadavg(), "cases": {}}
    for case in cases:
        out["cases"][case] = {}
        for der in args.derivatives.split(","):
            res = run_fit(datasets, case, der)
            out["cases"][case][der] = res
            lk = res["likelihood"] or {}
            print(f"{case:18s} {der:9s} {res['fit_s']:7.2f} s  nfev {res['nfev']:4d}  rounds "
                  f"{lk.get('likelihood_calls', 0):4d}  stat {res['total_stat']:.3f}  ok {res['success']}", flush=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print("->", args.out)


if __name__ == "__main__":
    main()
