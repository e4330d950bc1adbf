"""gammapy 2.1's stacked energy-dispersion kernel at PKS 2155-304, for tests/test_hess_pks2155_edisp.py.

Runs gammapy's Analysis on benchmarks/validation/hess_pks2155/config.yaml restricted to a few
runs with different safe energy thresholds (aeff-default: LO_THRES of each run), stacked, and
writes the EDispKernelMap's kernel and exposure at the IRF pixel of the config's centre
(the source) to an .npz.  With --per-run it also reduces the runs one by one (stack: false)
and writes each run's kernel, exposure and mask_safe_edisp at that pixel.

    GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python tests/data/hess_pks2155/make_reference.py \
        --obs 33787,33790,33797,33801 --out tests/data/hess_pks2155/gammapy-2.1-edisp.npz
"""
import argparse
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
from astropy.coordinates import SkyCoord  # noqa: E402
from gammapy.analysis import Analysis, AnalysisConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "benchmarks" / "validation" / "hess_pks2155" / "config.yaml"

ap = argparse.ArgumentParser()
ap.add_argument("--obs", default="33787,33790,33797,33801")
ap.add_argument("--out", required=True)
ap.add_argument("--per-run", action="store_true")
args = ap.parse_args()
obs_ids = [int(o) for o in args.obs.split(",")]


def reduce(stack):
    c = AnalysisConfig.read(CONFIG)
    c.observations.obs_ids = obs_ids
    c.datasets.stack = stack
    c.general.log = {"level": "error"}
    a = Analysis(c)
    a.get_observations()
    a.get_datasets()
    return a


def at_source(ds, centre):
    kmap = ds.edisp.edisp_map
    iy_ix = kmap.geom.to_image().coord_to_idx(centre)
    ix, iy = int(iy_ix[0][0]), int(iy_ix[1][0])
    kernel = kmap.data[:, :, iy, ix]                  # (energy_true, energy)
    expo = ds.edisp.exposure_map.data[:, 0, iy, ix]   # (energy_true,)
    return ix, iy, kernel, expo


def psf_at_source(ds, centre):
    pmap = ds.psf.psf_map
    iy_ix = pmap.geom.to_image().coord_to_idx(centre)
    ix, iy = int(iy_ix[0][0]), int(iy_ix[1][0])
    return pmap.data[:, :, iy, ix], ds.psf.exposure_map.data[:, 0, iy, ix]   # (energy_true, rad), (energy_true,)


c = AnalysisConfig.read(CONFIG)
sd = c.datasets.geom.wcs.skydir
centre = SkyCoord(sd.lon, sd.lat, frame=sd.frame)
out = {"obs_ids": np.array(obs_ids)}
a = reduce(True)
ds = a.datasets[0]
ix, iy, k, x = at_source(ds, centre)
out.update(pixel=np.array([iy, ix]), kernel=k, exposure_irf=x,
           energy_edges=ds.counts.geom.axes["energy"].edges.to_value("TeV"),
           energy_true_edges=ds.edisp.edisp_map.geom.axes["energy_true"].edges.to_value("TeV"),
           lon_irf=np.array(ds.edisp.edisp_map.geom.get_coord()["lon"][0, 0, iy, ix]),
           lat_irf=np.array(ds.edisp.edisp_map.geom.get_coord()["lat"][0, 0, iy, ix]))
psf, psf_x = psf_at_source(ds, centre)
out.update(psf=psf, psf_exposure_irf=psf_x, rad_edges=ds.psf.psf_map.geom.axes["rad"].edges.to_value("deg"))
if args.per_run:
    b = reduce(False)
    runs_k, runs_x, runs_m, runs_mask = [], [], [], []
    for d in b.datasets:
        _, _, kk, xx = at_source(d, centre)
        m = d.mask_safe_edisp
        iy_ix = m.geom.to_image().coord_to_idx(centre)
        runs_k.append(kk)
        runs_x.append(xx)
        runs_m.append(m.data[0, :, int(iy_ix[1][0]), int(iy_ix[0][0])])   # (energy,)
        runs_mask.append(d.mask_safe.data.any(axis=(1, 2)))
    out.update(run_kernel=np.array(runs_k), run_exposure_irf=np.array(runs_x), run_mask_safe_edisp=np.array(runs_m),
               run_mask_safe_energy=np.array(runs_mask))
np.savez_compressed(args.out, **out)
print({k: np.shape(v) for k, v in out.items()})
