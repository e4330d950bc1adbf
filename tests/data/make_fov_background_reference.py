"""Reference numbers for gcxr's ``fov_background`` reduction, made with gammapy 2.1.

Runs gammapy's high-level ``Analysis`` on the seed configuration
(``../shared/reference/gammapy-2.1-cta1dc-gc/analysis_config.yaml``) with
``datasets.background.method: fov_background``, without and with an exclusion
mask (circles of 0.3 deg around the Galactic-Centre source at (0, 0) and
G0.9+0.1 at (0.87, 0.07), galactic), joint (``stack: false``) and stacked.

Writes, next to this script:

* ``fov_exclusion_gc.fits.gz``: the exclusion mask on the analysis grid
  (True = used for the normalisation), made with gammapy's ``region_mask``;
* ``fov_background_gammapy.json``: per-run FoV norms (``FoVBackgroundMaker``,
  method ``scale``) and sums of ``npred_background()`` (over the whole cube,
  over the safe mask, and per energy bin over the safe mask), per run and for
  the stacked dataset.

usage: GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python tests/data/make_fov_background_reference.py
"""
import json
import os
import sys
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from regions import CircleSkyRegion

warnings.simplefilter("ignore")
from gammapy import __version__ as gammapy_version  # noqa: E402
from gammapy.analysis import Analysis, AnalysisConfig  # noqa: E402
from gammapy.maps import Map, WcsGeom  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = Path(os.environ.get("GCXR_REFERENCE", HERE.parents[2] / "shared" / "reference")) / \
    "gammapy-2.1-cta1dc-gc" / "analysis_config.yaml"
MASK = HERE / "fov_exclusion_gc.fits.gz"
OUT = HERE / "fov_background_gammapy.json"
CIRCLES = [(0.0, 0.0, 0.3), (0.87, 0.07, 0.3)]     # galactic lon, lat, radius (deg)


def make_mask() -> None:
    geom = WcsGeom.create(skydir=SkyCoord(0, 0, unit="deg", frame="galactic"), binsz=0.02,
                          width=(10, 8), frame="galactic", proj="CAR")
    regions = [CircleSkyRegion(SkyCoord(lon, lat, unit="deg", frame="galactic"), r * u.deg)
               for lon, lat, r in CIRCLES]
    mask = geom.region_mask(regions, inside=False)
    Map.from_geom(geom, data=mask.data.astype(np.uint8)).write(MASK, overwrite=True)


def dataset_record(ds) -> dict:
    m = ds.mask_safe.data
    npb = ds.npred_background().data
    rec = {"name": ds.name, "counts_safe": float(ds.counts.data[m].sum()),
           "background_safe": float(ds.background.data[m].sum()),
           "npred_background_safe": float(npb[m].sum()),
           "npred_background_total": float(npb.sum()),
           "npred_background_safe_per_energy": [float(x) for x in (npb * m).sum(axis=(1, 2))],
           "mask_safe_bins": int(m.sum())}
    bkg = ds.models[f"{ds.name}-bkg"] if ds.models is not None and f"{ds.name}-bkg" in ds.models.names else None
    if bkg is not None:
        rec["norm"] = float(bkg.spectral_model.norm.value)
        rec["norm_error"] = float(bkg.spectral_model.norm.error)
        rec["tilt"] = float(bkg.spectral_model.tilt.value)
    if "OBS_ID" in ds.meta_table.colnames:
        rec["obs_ids"] = [int(x) for x in np.ravel(np.asarray(ds.meta_table["OBS_ID"]).tolist())]
    return rec


def run(stack: bool, exclusion: bool) -> list[dict]:
    config = AnalysisConfig.read(SEED)
    config.general.log = {"level": "error"}
    config.datasets.stack = stack
    config.datasets.background.method = "fov_background"
    if exclusion:
        config.datasets.background.exclusion = str(MASK)
    analysis = Analysis(config)
    analysis.get_observations()
    analysis.get_datasets()
    return [dataset_record(ds) for ds in analysis.datasets]


def main() -> None:
    t0 = time.perf_counter()
    make_mask()
    out = {"gammapy": gammapy_version, "config": "analysis_config.yaml + datasets.background.method: "
           "fov_background (+ exclusion: fov_exclusion_gc.fits.gz)",
           "exclusion_circles_galactic_deg": CIRCLES, "cases": {}}
    for exclusion in (False, True):
        for stack in (False, True):
            key = f"{'stacked' if stack else 'joint'}_{'exclusion' if exclusion else 'no_exclusion'}"
            out["cases"][key] = run(stack, exclusion)
            print(key, f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    OUT.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
