"""Does gammapy 2.1 read gcxr's simulated data stores, and reduce them to gcxr's counts?

1. simulate a small Galactic-Centre-like store with gcxr (3 runs of 30 min, a point source with an
   ECPL spectrum and a Gaussian source), with parametric IRFs (``psf_3gauss``, then ``psf_table``)
   and with the CTA-1DC IRF file when the shared data is there;
2. reduce every run with gcxr (``Analysis`` with ``stack: false``);
3. in the gammapy virtual environment (a subprocess, ``/work/venv-gammapy/bin/python`` or
   ``$GAMMAPY_PYTHON``): ``DataStore.from_dir`` + ``MapDatasetMaker`` on each run's cutout of the same
   geometry (``MapDataset.cutout(pointing, 2 * offset_max, mode="trim")``, as gammapy's ``Analysis``);
4. compare the per-run counts cubes (must be identical) and report the largest relative differences
   of exposure and background (informative: both codes interpolate the same IRFs).

Usage::

    python benchmarks/check_gammapy_reads_simulated.py [--out results.json] [--keep DIR]

Exit status 0 when every counts cube is identical.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

GAMMAPY_PYTHON = os.environ.get("GAMMAPY_PYTHON", "/work/venv-gammapy/bin/python")
GEOM = dict(lon=0.0, lat=0.0, frame="galactic", binsz=0.02, width=6.0, height=5.0, offset_max=2.5,
            emin=0.1, emax=10.0, nbins=10, etmin=0.08, etmax=12.0, etnbins=14)

CONFIG = """
observations:
    datastore: {store}
datasets:
    type: 3d
    stack: false
    geom:
        wcs:
            skydir: {{frame: {frame}, lon: {lon} deg, lat: {lat} deg}}
            binsize: {binsz} deg
            width: {{width: {width} deg, height: {height} deg}}
            binsize_irf: 0.2 deg
        selection: {{offset_max: {offset_max} deg}}
        axes:
            energy: {{min: {emin} TeV, max: {emax} TeV, nbins: {nbins}}}
            energy_true: {{min: {etmin} TeV, max: {etmax} TeV, nbins: {etnbins}}}
    map_selection: [counts, exposure, background]
    safe_mask: {{methods: [offset-max], parameters: {{offset_max: {offset_max} deg}}}}
"""

GAMMAPY_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from gammapy.data import DataStore
    from gammapy.datasets import MapDataset
    from gammapy.makers import MapDatasetMaker
    from gammapy.maps import MapAxis, WcsGeom
    warnings.simplefilter("ignore")
    store_dir, out, g = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    store = DataStore.from_dir(store_dir)
    energy = MapAxis.from_energy_bounds(g["emin"], g["emax"], g["nbins"], unit="TeV")
    etrue = MapAxis.from_energy_bounds(g["etmin"], g["etmax"], g["etnbins"], unit="TeV", name="energy_true")
    geom = WcsGeom.create(skydir=SkyCoord(g["lon"], g["lat"], unit="deg", frame=g["frame"]), binsz=g["binsz"],
                          width=(g["width"], g["height"]), frame=g["frame"], axes=[energy])
    ref = MapDataset.create(geom, energy_axis_true=etrue, binsz_irf=0.2)
    maker = MapDatasetMaker(selection=["counts", "exposure", "background"])
    arrays = {}
    for obs in store.get_observations(list(store.obs_table["OBS_ID"])):
        cut = ref.cutout(obs.get_pointing_icrs(obs.tmid), width=2 * g["offset_max"] * u.deg, mode="trim")
        d = maker.run(cut, obs)
        img = d.counts.geom.to_image()
        x0, y0 = geom.to_image().coord_to_pix(img.pix_to_coord((np.array([0.0]), np.array([0.0]))))
        k = str(obs.obs_id)
        arrays["counts_" + k] = d.counts.data
        arrays["exposure_" + k] = d.exposure.quantity.to_value("m2 s")
        arrays["background_" + k] = d.background.data
        arrays["origin_" + k] = np.array([int(np.rint(y0[0])), int(np.rint(x0[0]))])
        arrays["n_events_" + k] = np.array(len(obs.events.table))
    np.savez(out, **arrays)
""")


def gcxr_runs(store: Path) -> dict:
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    cfg = AnalysisConfig.from_yaml(CONFIG.format(store=store, **GEOM))
    ana = Analysis(cfg)
    ana.get_observations()
    return {int(d.attrs["obs_id"]): d for d in ana.get_datasets()}


def compare(store: Path) -> dict:
    t0 = time.perf_counter()
    ours = gcxr_runs(store)
    t_gcxr = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "gammapy.npz"
        t0 = time.perf_counter()
        proc = subprocess.run([GAMMAPY_PYTHON, "-c", GAMMAPY_SCRIPT, str(store), str(npz), json.dumps(GEOM)],
                              capture_output=True, text=True)
        t_gp = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"gammapy failed to read {store}:\n{proc.stderr[-3000:]}")
        theirs = dict(np.load(npz))
    runs = []
    for obs_id, ds in sorted(ours.items()):
        k = str(obs_id)
        c_gp = theirs[f"counts_{k}"]
        c_gx = ds["counts"].values
        origin = [ds.attrs["slice_lat"][0], ds.attrs["slice_lon"][0]]
        same_place = list(map(int, theirs[f"origin_{k}"])) == origin
        identical = bool(same_place and c_gp.shape == c_gx.shape and np.array_equal(c_gp, c_gx))
        e_gp, e_gx = theirs[f"exposure_{k}"], ds["exposure"].values
        b_gp, b_gx = theirs[f"background_{k}"], ds["background"].values
        sel_e, sel_b = e_gp > 1e-6 * e_gp.max(), b_gp > 1e-6 * b_gp.max()
        runs.append({
            "obs_id": obs_id, "n_events": int(theirs[f"n_events_{k}"]), "shape": list(c_gx.shape),
            "counts_gcxr": int(c_gx.sum()), "counts_gammapy": int(c_gp.sum()),
            "counts_identical": identical, "n_bins_differing": int(np.count_nonzero(c_gp != c_gx))
            if c_gp.shape == c_gx.shape else None,
            "exposure_max_rel_diff": float(np.max(np.abs(e_gx[sel_e] / e_gp[sel_e] - 1))),
            "background_max_rel_diff": float(np.max(np.abs(b_gx[sel_b] / b_gp[sel_b] - 1))),
            "background_total_rel_diff": float(b_gx.sum() / b_gp.sum() - 1),
        })
    return {"store": str(store), "gcxr_s": round(t_gcxr, 2), "gammapy_s": round(t_gp, 2), "runs": runs}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="write the JSON result here")
    p.add_argument("--keep", help="simulate into this folder (kept) instead of a temporary one")
    args = p.parse_args(argv)
    from gcxr.simulate import ParametricIRF, simulate_datastore
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gcxr-gp-check-"))
    result = {"geometry": GEOM, "cases": []}
    cases = [("parametric psf_3gauss", {"parametric": ParametricIRF(psf_class="psf_3gauss")}),
             ("parametric psf_table", {"parametric": ParametricIRF(psf_class="psf_table")})]
    cta_irf = Path(os.environ.get("GCXR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / \
        "cta-1dc" / "caldb" / "data" / "cta" / "1dc" / "bcf" / "South_z20_50h" / "irf_file.fits"
    if cta_irf.exists():
        cases.append(("CTA-1DC irf_file.fits, 10 min runs", {"irf": cta_irf, "livetime": 600.0}))
    for i, (label, kwargs) in enumerate(cases):
        store = base / f"case{i}"
        simulate_datastore(store, seed=42, quiet=True, **kwargs)
        case = compare(store)
        case["irfs"] = label
        result["cases"].append(case)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        from gcxr.io import write_json
        write_json(result, args.out)
    ok = all(r["counts_identical"] for c in result["cases"] for r in c["runs"])
    print("gammapy reads gcxr's simulated stores; counts identical:" if ok else "COUNTS DIFFER", ok,
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
