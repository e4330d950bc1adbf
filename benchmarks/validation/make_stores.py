"""Generate the simulated data stores (and the template map) of the validation set.

Each simulated case is a ``gcxr simulate`` call with a fixed seed, the case's ``truth.yaml`` and
the pointings below, written to ``<stores>/<case>/`` (default ``benchmarks/validation/_stores``,
gitignored; override with ``$GCXR_VALIDATION_STORES`` or ``--stores``). A store is rebuilt only when
its inputs (arguments, truth models, gcxr version) changed, or with ``--force``.
``sim_template`` also gets ``template.fits``: the two blobs of its truth drawn on a galactic CAR
map (301 x 301 pixels of 0.01 deg centred on (25, 0)).

    python benchmarks/validation/make_stores.py [--cases sim_hess_south,...] [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_STORES = HERE / "_stores"


def stores_dir() -> Path:
    """``$GCXR_VALIDATION_STORES`` if set, else ``benchmarks/validation/_stores``."""
    return Path(os.environ.get("GCXR_VALIDATION_STORES") or DEFAULT_STORES)


def data_dir() -> Path:
    d = os.environ.get("GCXR_DATA") or os.environ.get("GAMMAPY_DATA")
    return Path(d) if d else HERE.parents[2] / "shared" / "data"


def _ring(lon, lat, r, n, phase=45.0):
    a = np.deg2rad(phase + 360.0 * np.arange(n) / n)
    return [(round(lon + r * np.cos(x), 4), round(lat + r * np.sin(x), 4)) for x in a]


def _wobble(ra, dec, r=0.5):
    """The four H.E.S.S. wobble positions (+-r in Dec, +-r in RA on the sky)."""
    c = np.cos(np.deg2rad(dec))
    return [(ra, dec + r), (ra, dec - r), (round(ra + r / c, 4), dec), (round(ra - r / c, 4), dec)]


#: simulation settings per case: seed, frame of the pointings, pointings, livetime (s), IRF
SIMULATIONS = {
    "sim_cta_disk_gauss": dict(
        seed=315, frame="galactic", pointings=_ring(315.0, 0.0, 0.7, 8), livetime=1800.0,
        irf="cta-1dc/caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits"),
    "sim_hess_south": dict(
        seed=23736, frame="icrs", pointings=_wobble(100.0, -70.0) * 2, livetime=1680.0, deadc=0.93,
        irf="hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023736.fits.gz"),
    "sim_template": dict(
        seed=25, frame="galactic", pointings=_ring(25.0, 0.0, 0.6, 6, phase=0.0), livetime=1800.0,
        irf=None, psf_class="psf_3gauss"),
}

TEMPLATE = dict(lon=25.0, lat=0.0, npix=301, binsz=0.01)


def gaussian_blob(lon, lat, lon_0, lat_0, sigma, e=0.0, phi=0.0):
    """Flat-sky elliptical Gaussian (major axis ``sigma`` at position angle ``phi`` east of north,
    minor ``sigma * sqrt(1 - e**2)``), normalised to unit integral over the plane (deg^-2)."""
    east = (lon - lon_0) * np.cos(np.deg2rad(lat_0))
    north = lat - lat_0
    p = np.deg2rad(phi)
    major = east * np.sin(p) + north * np.cos(p)
    minor = east * np.cos(p) - north * np.sin(p)
    s_min = sigma * np.sqrt(1.0 - e ** 2)
    return np.exp(-0.5 * ((major / sigma) ** 2 + (minor / s_min) ** 2)) / (2 * np.pi * sigma * s_min)


def write_template(path: str | os.PathLike, truth: str | os.PathLike | None = None) -> Path:
    """Write the 2D template of ``sim_template`` (sum of the truth's Gaussian blobs weighted by
    their amplitudes) as a galactic CAR FITS image with ``BUNIT = sr-1`` shape only (normalised
    by the readers)."""
    import yaml
    from astropy.io import fits
    from astropy.wcs import WCS

    truth = Path(truth or HERE / "sim_template" / "truth.yaml")
    comps = yaml.safe_load(truth.read_text())["components"]
    t = TEMPLATE
    n, b = t["npix"], t["binsz"]
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [t["lon"], t["lat"]]
    w.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    w.wcs.cdelt = [-b, b]
    w.wcs.cunit = ["deg", "deg"]
    yy, xx = np.mgrid[0:n, 0:n]
    lon, lat = w.wcs_pix2world(xx, yy, 0)
    lon = np.where(lon > 180, lon - 360, lon)
    img = np.zeros((n, n))
    for c in comps:
        sp = {p["name"]: p["value"] for p in c["spatial"]["parameters"]}
        amp = {p["name"]: p["value"] for p in c["spectral"]["parameters"]}["amplitude"]
        lon0 = sp["lon_0"] - 360 if sp["lon_0"] > 180 else sp["lon_0"]
        img += amp * gaussian_blob(lon, lat, lon0, sp["lat_0"], sp["sigma"], sp.get("e", 0.0), sp.get("phi", 0.0))
    img /= img.sum()
    hdu = fits.PrimaryHDU(img.astype(np.float32), header=w.to_header())
    hdu.header["COMMENT"] = "gcxr validation case sim_template: two Gaussian blobs (make_stores.py)"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path, overwrite=True)
    return path


def simulate_cmd(case: str, out: Path, python: str = sys.executable) -> list[str]:
    s = SIMULATIONS[case]
    cmd = [python, "-m", "gcxr", "simulate", "--out", str(out), "--seed", str(s["seed"]),
           "--frame", s["frame"], "--livetime", str(s["livetime"]),
           "--models", str(HERE / case / "truth.yaml"), "--quiet", "--pointings",
           *[f"{lo},{la}" for lo, la in s["pointings"]]]
    if s.get("irf"):
        cmd += ["--irf", str(data_dir() / s["irf"])]
    if s.get("psf_class"):
        cmd += ["--psf-class", s["psf_class"]]
    if s.get("deadc"):
        cmd += ["--deadc", str(s["deadc"])]
    return cmd


def _stamp(case: str, cmd: list[str]) -> str:
    import gcxr
    h = hashlib.sha256()
    h.update(json.dumps(cmd[1:]).encode())
    h.update((HERE / case / "truth.yaml").read_bytes())
    h.update(str(getattr(gcxr, "__version__", "")).encode())
    return h.hexdigest()


def make_store(case: str, stores: Path | None = None, force: bool = False, python: str = sys.executable) -> Path:
    """Simulate the store of ``case`` (if missing or stale) and return its folder."""
    if case not in SIMULATIONS:
        raise KeyError(f"no simulated store for case {case!r}; simulated cases: {', '.join(SIMULATIONS)}")
    out = Path(stores or stores_dir()) / case
    cmd = simulate_cmd(case, out, python)
    stamp = _stamp(case, cmd)
    stamp_file = out / ".validation-inputs"
    if not force and stamp_file.exists() and stamp_file.read_text() == stamp and (out / "obs-index.fits.gz").exists():
        return out
    if out.exists():
        import shutil
        shutil.rmtree(out)
    env = dict(os.environ)
    env.setdefault("GCXR_DATA", str(data_dir()))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"gcxr simulate failed for {case} (rc {res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    if case == "sim_template":
        write_template(out / "template.fits")
    stamp_file.write_text(stamp)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(SIMULATIONS))
    ap.add_argument("--stores", default=None, help="folder of the stores (default $GCXR_VALIDATION_STORES or _stores)")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--python", default=sys.executable, help="python with gcxr installed")
    args = ap.parse_args(argv)
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        out = make_store(case, Path(args.stores) if args.stores else None, args.force, args.python)
        print(f"{case}: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
