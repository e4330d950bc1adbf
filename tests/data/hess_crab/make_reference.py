"""Per-run reduced-data reference numbers from gammapy 2.1 for the H.E.S.S. DL3 DR1 Crab runs.

Runs gammapy's high-level Analysis on ``config.yaml`` (the per-run datasets of the joint fit,
``stack: false``) and writes a small JSON summary of each reduced dataset. This script is the
yardstick side only: it needs gammapy 2.1 in its own virtual environment and is never imported
by gcxr.

usage (from the repository root):
    GAMMAPY_DATA=/work/shared/data /work/venv-gammapy/bin/python \
        tests/data/hess_crab/make_reference.py [--out tests/data/hess_crab/gammapy-2.1-datasets.json]
"""
import argparse
import json
import platform
import warnings
from pathlib import Path

import astropy
import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

import gammapy
from gammapy.analysis import Analysis, AnalysisConfig

HERE = Path(__file__).resolve().parent


def _floats(a):
    return [float(x) for x in np.ravel(a)]


def summarise(dataset, observation, centre):
    """Numbers for one reduced per-run MapDataset (all taken from gammapy objects)."""
    mask = dataset.mask_safe.data  # (energy, lat, lon), bool
    spatial = mask.any(axis=0)  # the spatial safe mask used when stacking exposure
    exposure = dataset.exposure.quantity.to_value("m2 s")  # (energy_true, lat, lon)
    aeff_meta = observation.aeff.meta
    kernel = dataset.edisp.get_edisp_kernel(position=centre)  # data: (energy_true, energy)
    r68 = dataset.psf.containment_radius(fraction=0.68, energy_true=1 * u.TeV, position=centre)
    pointing = observation.get_pointing_icrs(observation.tmid)
    counts_geom = dataset.counts.geom
    return {
        "obs_id": int(observation.obs_id),
        "pointing_icrs_deg": [float(pointing.ra.deg), float(pointing.dec.deg)],
        "livetime_s": float(observation.observation_live_time_duration.to_value("s")),
        "ontime_s": float(observation.observation_time_duration.to_value("s")),
        "deadc": float(1 - observation.observation_dead_time_fraction),
        "exposure_meta_livetime_s": float(u.Quantity(dataset.exposure.meta["livetime"]).to_value("s")),
        "shape": [int(n) for n in counts_geom.data_shape],
        "n_bins": int(dataset.counts.data.size),
        "n_safe_bins": int(mask.sum()),
        "counts_safe": float(dataset.counts.data[mask].sum()),
        "background_safe": float(dataset.background.data[mask].sum()),
        "mask_safe_pixels_per_energy": [int(n) for n in mask.sum(axis=(1, 2))],
        "n_safe_pixels_spatial": int(spatial.sum()),
        "aeff_LO_THRES_TeV": None if aeff_meta.get("LO_THRES") is None else float(aeff_meta["LO_THRES"]),
        "aeff_HI_THRES_TeV": None if aeff_meta.get("HI_THRES") is None else float(aeff_meta["HI_THRES"]),
        "exposure_safe_per_energy_true_m2s": _floats((exposure * spatial[None]).sum(axis=(1, 2))),
        "psf_r68_1TeV_deg": float(np.ravel(r68.to_value("deg"))[0]),
        "edisp_kernel": {
            "dims": ["energy", "energy_true"],
            "data": [_floats(row) for row in kernel.data.T],
        },
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(HERE / "config.yaml"))
    ap.add_argument("--out", default=str(HERE / "gammapy-2.1-datasets.json"))
    args = ap.parse_args()

    warnings.simplefilter("ignore")
    config = AnalysisConfig.read(args.config)
    config.general.log = {"level": "error"}
    config.datasets.stack = False
    analysis = Analysis(config)
    analysis.get_observations()
    analysis.get_datasets()

    wcs = config.datasets.geom.wcs
    centre = SkyCoord(wcs.skydir.lon, wcs.skydir.lat, frame=wcs.skydir.frame)
    geom = analysis.datasets[0].counts.geom
    observations = {int(obs.obs_id): obs for obs in analysis.observations}

    runs = []
    for dataset in analysis.datasets:
        obs_id = int(dataset.meta_table["OBS_ID"][0])
        runs.append(summarise(dataset, observations[obs_id], centre))

    out = {
        "description": "gammapy 2.1 per-run MapDatasets (stack: false) for tests/data/hess_crab/config.yaml",
        "versions": {
            "gammapy": gammapy.__version__,
            "numpy": np.__version__,
            "astropy": astropy.__version__,
            "python": platform.python_version(),
        },
        "conventions": {
            "mask_safe_pixels_per_energy": "number of True (lat, lon) pixels of mask_safe per reco-energy bin",
            "exposure_safe_per_energy_true_m2s": "sum over pixels of the exposure map (m2 s) times the spatial "
            "safe mask any_energy(mask_safe), per true-energy bin",
            "psf_r68_1TeV_deg": "dataset.psf.containment_radius(0.68, 1 TeV) at the analysis map centre",
            "edisp_kernel": "dataset.edisp.get_edisp_kernel(position=analysis map centre) "
            "(nearest 0.2 deg IRF pixel), stored as [energy (reco)][energy_true]",
            "livetime_s": "GTI sum x DEADC (used for exposure)",
            "ontime_s": "GTI sum (used for background)",
        },
        "map_centre_icrs_deg": [float(centre.ra.deg), float(centre.dec.deg)],
        "energy_edges_TeV": _floats(geom.axes["energy"].edges.to_value("TeV")),
        "energy_true_edges_TeV": _floats(analysis.datasets[0].exposure.geom.axes["energy_true"].edges.to_value("TeV")),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
