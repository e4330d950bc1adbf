"""Per-call cost of the stacked seed likelihood: full-cube evaluation vs gcxr's near/far split.

    GCXR_DATA=../shared/data python benchmarks/bench_likelihood.py

'full cube' evaluates npred on all 2,000,000 bins and sums the Cash statistic over the 987,826
fit bins each call (what a straightforward implementation does); 'near/far' is gcxr's
DatasetTerm (explicit only inside the source cutout, per-energy sums elsewhere). Both give the
same statistic; the script checks that and prints the time per call.
"""
import json
import time
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "gammapy-2.1-cta1dc-gc"


def main():
    from gcxr.analysis import Analysis
    from gcxr.datasets import combined_mask
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    from gcxr.models import Models
    from gcxr.npred import npred_cubes
    from gcxr.stats import cash

    ana = Analysis(REF / "analysis_config_stacked_fit.yaml")
    ana.get_observations()
    ana.get_datasets()
    ds = ana.datasets[0]
    models = Models.read(REF / "seed_models_stacked.yaml")
    seed = json.loads((REF / "seed_results.json").read_text())["stacked_fit"]["params"]
    best = {k.split(".")[1]: v[0] for k, v in seed.items()}
    space = ParameterSpace.from_models(models)
    vals = np.array([best[n] for _, _, n in space.keys])
    for (m, c, n), v in zip(space.keys, vals):      # both evaluate the IRFs at the best-fit position
        sub = models[m].spectral_model if c == "spectral" else models[m].spatial_model
        sub.parameters[n].value = v
    like = JointLikelihood(build_terms([ds], models), ParameterSpace.from_models(models))
    mask = combined_mask(ds).transpose("energy", "lat", "lon").values
    mask = np.broadcast_to(mask, ds["counts"].shape)
    n = ds["counts"].values.astype(float)[mask]

    def full_cube():
        mu = npred_cubes(ds, models)["npred"].values
        return float(cash(n, mu[mask]).sum())

    out = {}
    for name, fn in (("full cube", full_cube), ("near/far", lambda: like.stat_values(vals))):
        fn()
        reps = 5 if name == "full cube" else 200
        t0 = time.perf_counter()
        for _ in range(reps):
            s = fn()
        out[name] = ((time.perf_counter() - t0) / reps * 1e3, s)
    for name, (ms, s) in out.items():
        print(f"{name:10s} {ms:8.2f} ms per call   stat {s:.6f}")
    print(f"speed-up {out['full cube'][0] / out['near/far'][0]:.0f}x, "
          f"|stat difference| {abs(out['full cube'][1] - out['near/far'][1]):.2e}")


if __name__ == "__main__":
    main()
