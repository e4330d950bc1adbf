"""Where the reduction's time goes, per run, against a physical limit.

For each config the runs are reduced one after the other in this process (no dask), with
``reduce_run_arrays(..., timings=...)`` adding up the CPU seconds of each stage, then stacked as
``stack_runs`` does (``_contribution`` + ``_combine`` + ``_finalize``). CPU time of the thread
(``time.thread_time``) is used throughout, so that other work on a shared machine does not
inflate the figures. The IRF caches are
cleared before each pass so that every file is read as in a fresh process; pass 1 warms up
the imports, the figures of pass 2 are reported. Beside them, the physical limits:

* ``read+gunzip``: reading every distinct file of the runs and decompressing it (zlib);
* ``bincount``: one ``np.bincount`` of precomputed flat indices of all events.

    GCXR_DATA=../shared/data python benchmarks/profile_reduce.py CONFIG [CONFIG ...] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _clear_caches():
    import gcxr.datastore as D
    import gcxr.irf as I
    import gcxr.irf._table as T
    for mod in (D, I, T):
        for name in dir(mod):
            f = getattr(mod, name)
            if callable(getattr(f, "cache_clear", None)):
                f.cache_clear()


def _read_gunzip(paths):
    nbytes = nraw = 0
    t0 = time.thread_time()
    for p in paths:
        raw = Path(p).read_bytes()
        nbytes += len(raw)
        nraw += len(zlib.decompress(raw, 31) if p.endswith(".gz") else raw)
    return time.thread_time() - t0, nbytes, nraw


def profile(config: str) -> dict:
    from gcxr.analysis import Analysis
    from gcxr.datasets import _combine, _contribution, _finalize
    from gcxr.reduce import reduce_run_arrays, run_layout
    ana = Analysis(config, progress=False)
    ana.get_observations()
    spec = ana.spec
    out = {}
    for rep in range(2):
        _clear_caches()
        stages: dict = {}
        t0 = time.thread_time()
        contribs, n_events = [], 0
        for run in ana.runs:
            lay = run_layout(run, spec)
            arrays, meta = reduce_run_arrays(run, spec, lay, timings=stages, for_stacking=True)
            n_events += int(meta["events"][0])
            t = time.thread_time()
            arrays = {k: v for k, v in arrays.items() if v is not None}
            arrays["livetime"], arrays["ontime"] = meta["livetime"], meta["ontime"]
            off = {"lat": lay.slices[0], "lon": lay.slices[1], "lat_irf": lay.irf_slices[0],
                   "lon_irf": lay.irf_slices[1]}
            contribs.append(_contribution(arrays, off))
            stages["stack_contribution"] = stages.get("stack_contribution", 0.0) + time.thread_time() - t
        t = time.thread_time()
        from gcxr.datasets import empty_like_grid
        grid = empty_like_grid(spec)
        nE, nEt = spec.energy.nbin, spec.energy_true.nbin
        ny, nx, iny, inx, nr = (grid.sizes[k] for k in ("lat", "lon", "lat_irf", "lon_irf", "rad"))
        shapes = {"counts": (nE, ny, nx), "exposure": (nEt, ny, nx), "mask_safe": (nE, ny, nx),
                  "background": (nE, ny, nx), "psf_num": (nEt, nr, iny, inx), "psf_den": (nEt, iny, inx),
                  "edisp_num": (nEt, nE, iny, inx), "edisp_den": (nEt, iny, inx)}
        _finalize(_combine(shapes, *contribs))
        stages["stack_combine_finalize"] = time.thread_time() - t
        total = time.thread_time() - t0
        out = {"config": config, "n_runs": len(ana.runs), "n_events": n_events, "total_s": total,
               "stages_s": dict(sorted(stages.items(), key=lambda kv: -kv[1]))}
    # physical limits
    files = sorted({ref.path for run in ana.runs for _, ref in run.hdus})
    t_io, nbytes, nraw = _read_gunzip(files)
    rng = np.random.default_rng(0)
    n_bins = spec.energy.nbin * spec.geom.ny * spec.geom.nx
    idx = rng.integers(0, n_bins, n_events)
    t = time.thread_time()
    np.bincount(idx, minlength=n_bins)
    t_bc = time.thread_time() - t
    out["limits"] = {"files": len(files), "bytes_read": nbytes, "bytes_decompressed": nraw,
                     "read_gunzip_s": t_io, "bincount_all_events_s": t_bc}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="+")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    res = []
    for c in args.configs:
        r = profile(c)
        res.append(r)
        print(f"\n{Path(c).name}: {r['n_runs']} runs, {r['n_events']} events, total {r['total_s']:.3f} s "
              f"({r['total_s'] / r['n_runs'] * 1e3:.0f} ms per run)")
        for k, v in r["stages_s"].items():
            print(f"  {k:24s} {v * 1e3:8.1f} ms  ({v / r['n_runs'] * 1e3:6.1f} ms per run)")
        lim = r["limits"]
        print(f"  limit: read+gunzip {lim['files']} files ({lim['bytes_read'] / 1e6:.1f} MB -> "
              f"{lim['bytes_decompressed'] / 1e6:.1f} MB) {lim['read_gunzip_s'] * 1e3:.1f} ms; "
              f"bincount of all events {lim['bincount_all_events_s'] * 1e3:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
