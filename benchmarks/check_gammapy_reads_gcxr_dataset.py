"""Does gammapy 2.1's ``MapDataset.read`` accept gcxr's MapDataset FITS files, array for array?

1. take a gcxr dataset: by default the stacked dataset of a small simulated store (gcxr's own
   reduction), and with ``--seed`` also gammapy's ``stacked.fits.gz`` read by gcxr (from
   ../shared/reference), which checks the round trip through gcxr;
2. write it with :func:`gcxr.io.write_gammapy_dataset`, and beside it (``expected.npz``) every
   array in gammapy's axis order and units, the axis edges, the grids' pixel centres and the
   livetime, taken from the gcxr dataset;
3. in gammapy's virtual environment (a subprocess: ``$GAMMAPY_PYTHON``, else
   ``.venv-gammapy/bin/python`` of this checkout or of /work/main): ``MapDataset.read`` the file
   and compare every map (counts, exposure, background, PSF and its exposure, EDISP kernel and
   its exposure, safe and fit masks) with ``expected.npz`` exactly, and the axes, pixel centres,
   units and livetime.

Usage::

    python benchmarks/check_gammapy_reads_gcxr_dataset.py [--seed] [--out report.json]

Exit status 0 when gammapy reads every file and every array is identical.  The test
``tests/test_gammapy_interop.py::test_gammapy_reads_gcxr_file`` runs :func:`check` where the
gammapy environment exists.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

GAMMAPY_SCRIPT = textwrap.dedent("""
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from gammapy.datasets import MapDataset
    path, npz = sys.argv[1], sys.argv[2]
    exp = np.load(npz)
    ds = MapDataset.read(path)
    report = {"compared": [], "failed": [], "gammapy_psf": type(ds.psf).__name__,
              "gammapy_edisp": type(ds.edisp).__name__}
    def same(name, got, want, rtol=0.0):
        report["compared"].append(name)
        got = np.asarray(got)
        equal = np.array_equal(got, want) if rtol == 0 else np.allclose(got, want, rtol=rtol, atol=0)
        if got.shape != want.shape or not equal:
            diff = float(np.max(np.abs(got.astype(float) - want.astype(float)))) if got.shape == want.shape else None
            report["failed"].append({"name": name, "shape": list(got.shape), "want": list(want.shape), "max_diff": diff})
    maps = {"counts": ds.counts, "exposure": ds.exposure, "background": ds.background,
            "mask_safe": ds.mask_safe, "mask_fit": ds.mask_fit}
    if ds.psf is not None:
        maps["psf"], maps["psf_exposure"] = ds.psf.psf_map, ds.psf.exposure_map
    if ds.edisp is not None:
        maps["edisp"] = ds.edisp.edisp_map
        if ds.edisp.exposure_map is not None:
            maps["edisp_exposure"] = ds.edisp.exposure_map
    units = {"exposure": "m2 s", "psf": "sr-1", "psf_exposure": "m2 s", "edisp_exposure": "m2 s"}
    for name, m in maps.items():
        if m is None or name not in exp.files:
            if name in exp.files:
                report["failed"].append({"name": name, "missing_in_gammapy": True})
            continue
        data = m.quantity.to_value(units[name]) if name in units else m.data
        same(name, data, exp[name])
    for key in exp.files:
        if key in maps or key.startswith(("axis_", "lon", "lat", "livetime")):
            continue
        if maps.get(key) is None:
            report["failed"].append({"name": key, "missing_in_gammapy": True})
    axes = ds.counts.geom.axes
    # axis edges: gammapy rebuilds them from the BANDS columns (last-bit differences allowed)
    same("axis_energy", axes["energy"].edges.to_value("TeV"), exp["axis_energy"], rtol=1e-14)
    same("axis_energy_true", ds.exposure.geom.axes["energy_true"].edges.to_value("TeV"), exp["axis_energy_true"],
         rtol=1e-14)
    if ds.psf is not None:
        same("axis_rad", ds.psf.psf_map.geom.axes["rad"].edges.to_value("deg"), exp["axis_rad"], rtol=1e-14)
    coord = ds.counts.geom.to_image().get_coord()
    lon = coord["lon"].to_value("deg")[0, :]
    lat = coord["lat"].to_value("deg")[:, 0]
    report["lon_max_diff"] = float(np.max(np.abs(((lon - exp["lon"]) + 180) % 360 - 180)))
    report["lat_max_diff"] = float(np.max(np.abs(lat - exp["lat"])))
    if report["lon_max_diff"] > 1e-9 or report["lat_max_diff"] > 1e-9:
        report["failed"].append({"name": "pixel centres"})
    report["compared"].append("livetime")
    lt = ds.exposure.meta.get("livetime")
    report["livetime"] = None if lt is None else float(lt.to_value("s"))
    if report["livetime"] != float(exp["livetime"]):
        report["failed"].append({"name": "livetime", "got": report["livetime"], "want": float(exp["livetime"])})
    report["ok"] = not report["failed"]
    print(json.dumps(report))
""")


def gammapy_python() -> Path | None:
    """The gammapy 2.1 interpreter: ``$GAMMAPY_PYTHON``, else a ``.venv-gammapy`` beside the code."""
    for p in (os.environ.get("GAMMAPY_PYTHON"), ROOT / ".venv-gammapy" / "bin" / "python",
              ROOT.parent / "main" / ".venv-gammapy" / "bin" / "python"):
        if p and Path(p).exists():
            return Path(p)
    return None


def expected_arrays(ds) -> dict:
    """Every array of ``ds`` as gammapy's MapDataset holds it (axis order, units, masks as bool)."""
    out = {}
    fits_mask_fit = ds["mask_fit"].broadcast_like(ds["counts"]) if "mask_fit" in ds else None
    for name, var in (("counts", "counts"), ("exposure", "exposure"), ("background", "background"),
                      ("psf", "psf"), ("edisp", "edisp"), ("mask_safe", "mask_safe")):
        if var in ds:
            out[name] = np.asarray(ds[var].values)
    if fits_mask_fit is not None:
        out["mask_fit"] = np.asarray(fits_mask_fit.transpose("energy", "lat", "lon").values)
    if "exposure_irf" in ds:
        out["psf_exposure"] = np.asarray(ds["exposure_irf"].values)[:, None]
    if "exposure_edisp" in ds:
        out["edisp_exposure"] = np.asarray(ds["exposure_edisp"].values)[:, None]
    if "counts" in out and out["counts"].dtype.kind in "iu":
        out["counts"] = out["counts"].astype(np.float32)
    for ax in ("energy", "energy_true"):
        b = np.asarray(ds[f"{ax}_bounds"].values, float)
        out[f"axis_{ax}"] = np.append(b[:, 0], b[-1, 1])
    if "rad_bounds" in ds:
        b = np.asarray(ds["rad_bounds"].values, float)
        out["axis_rad"] = np.append(b[:, 0], b[-1, 1])
    out["lon"], out["lat"] = np.asarray(ds["lon"].values, float), np.asarray(ds["lat"].values, float)
    out["livetime"] = np.asarray(float(ds["livetime"]))
    return out


def check(ds, workdir: str | Path, python: str | Path | None = None, name: str = "dataset") -> dict:
    """Write ``ds`` as a gammapy file in ``workdir``, read it with gammapy, compare; returns the report."""
    from gcxr.io import write_gammapy_dataset
    python = python or gammapy_python()
    if python is None:
        raise SystemExit("no gammapy environment: set GAMMAPY_PYTHON (see benchmarks/setup_gammapy_env.sh)")
    workdir = Path(workdir)
    path = write_gammapy_dataset(ds, workdir / f"{name}.fits.gz")
    npz = workdir / f"{name}-expected.npz"
    np.savez(npz, **expected_arrays(ds))
    proc = subprocess.run([str(python), "-c", GAMMAPY_SCRIPT, str(path), str(npz)], capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        return {"ok": False, "name": name, "error": proc.stderr[-3000:]}
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["name"] = name
    return report


def _simulated_stacked(workdir: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import SMALL_STORE_CONFIG
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    from gcxr.simulate import simulate_datastore
    store = workdir / "store"
    simulate_datastore(store, pointings=[(0.0, 0.3), (0.2, -0.3)], livetime=120.0, seed=3, quiet=True)
    cfg = AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store=store))
    cfg = cfg.update({"fit": {"fit_range": {"min": "0.15 TeV"}}})
    ana = Analysis(cfg, progress=False)
    ana.get_observations()
    return ana.get_datasets()[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", action="store_true", help="also gammapy's stacked.fits.gz, read and written by gcxr")
    p.add_argument("--out", help="write the reports (JSON) here")
    args = p.parse_args(argv)
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reports.append(check(_simulated_stacked(tmp), tmp, name="gcxr-simulated-stacked"))
        if args.seed:
            from gcxr.io import read_gammapy_dataset
            ref = Path(os.environ.get("GCXR_SHARED", ROOT.parent / "shared")) / "reference" / \
                "gammapy-2.1-cta1dc-gc" / "stacked.fits.gz"
            reports.append(check(read_gammapy_dataset(ref), tmp, name="gammapy-stacked-through-gcxr"))
    for r in reports:
        print(f"{r['name']}: {'OK' if r['ok'] else 'FAILED'}; compared {', '.join(r.get('compared', []))}"
              + ("" if r["ok"] else f"; {r.get('failed') or r.get('error')}"))
    if args.out:
        Path(args.out).write_text(json.dumps(reports, indent=1) + "\n")
    return 0 if all(r["ok"] for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
