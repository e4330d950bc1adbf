"""gcxr's counterpart of ../shared/reference/gammapy-2.1-cta1dc-gc/gammapy_seed.py, for side-by-side runs.

The whole seed workflow in one process: stacked reduction + stacked fit (from 0.3 TeV) +
residual significance map (if gcxr.estimators provides it), then per-run reduction + joint fit.
Prints JSON with stage timings, like the gammapy script.

    GCXR_DATA=../shared/data python benchmarks/gcxr_seed.py
    python benchmarks/bench_full_seed.py        # both, under measure.py (wall time, peak memory)
"""
import json
import time
import warnings
from pathlib import Path

warnings.simplefilter("ignore")
T = {}
t_all = time.perf_counter()
from gcxr.analysis import Analysis  # noqa: E402
from gcxr.config import AnalysisConfig  # noqa: E402

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gammapy-2.1-cta1dc-gc"


def tick(name, t0):
    T[name] = round(time.perf_counter() - t0, 3)


out = {}
ana = Analysis(REF / "analysis_config_stacked_fit.yaml", progress=False)
t0 = time.perf_counter(); ana.get_observations(); ana.get_datasets(); tick("stacked_reduce_s", t0)
ana.read_models(REF / "seed_models_stacked.yaml")
t0 = time.perf_counter(); r = ana.run_fit(); tick("stacked_fit_s", t0)
out["stacked_fit"] = {"success": r.success, "nfev": r.nfev, "total_stat": r.total_stat}
try:
    from gcxr.estimators import excess_map
    from gcxr.npred import npred_cubes
    t0 = time.perf_counter()
    sig = excess_map(ana.datasets[0], npred_cubes(ana.datasets[0], ana.models)["npred"],
                     correlation_radius=0.1, energy_edges=[0.1, 1, 10])
    tick("excess_map_s", t0)
    s = sig["sqrt_ts"].values
    import numpy as np
    out["residual_sqrt_ts"] = {"mean": float(np.nanmean(s)), "std": float(np.nanstd(s))}
except ImportError:
    pass
cfg = AnalysisConfig.read(REF / "analysis_config.yaml")
cfg.datasets.stack = False
ana = Analysis(cfg, progress=False)
t0 = time.perf_counter(); ana.get_observations(); ana.get_datasets(); tick("joint_reduce_s", t0)
ana.read_models(REF / "seed_models_source.yaml")
t0 = time.perf_counter(); r = ana.run_fit(); tick("joint_fit_s", t0)
out["joint_fit"] = {"success": r.success, "nfev": r.nfev, "total_stat": r.total_stat}
T["total_s"] = round(time.perf_counter() - t_all, 3)
out["timings"] = T
print(json.dumps(out, indent=1))
