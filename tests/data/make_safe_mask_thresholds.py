"""Energy thresholds of aeff-max and edisp-bias as gammapy 2.1 computes them, for one seed run.

Reduces run 110380 of the seed configuration with gammapy's ``Analysis`` (``stack: false``,
0.02-10 TeV reco / 0.015-15 TeV true axes, safe mask ``offset-max`` only) and evaluates, with
gammapy's public API, what ``SafeMaskMaker`` (``irfs="DL4"``) computes inside
``make_mask_energy_aeff_max`` and ``make_mask_energy_edisp_bias``: the effective area at the
safe-mask position (``exposure.get_spectrum(position) / livetime``, inverted with a
``TemplateSpectralModel``) and ``EDispKernel.get_bias_energy``, at the cutout centre (the
default) and at ``fixed_offset`` 1.5 deg north of the pointing.

usage: GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python tests/data/make_safe_mask_thresholds.py
Writes ``safe_mask_thresholds_gammapy.json`` next to this script.
"""
import json
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

warnings.simplefilter("ignore")
from gammapy import __version__ as gammapy_version  # noqa: E402
from gammapy.analysis import Analysis, AnalysisConfig  # noqa: E402
from gammapy.modeling.models import TemplateSpectralModel  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = Path(os.environ.get("GCXR_REFERENCE", HERE.parents[2] / "shared" / "reference")) / \
    "gammapy-2.1-cta1dc-gc" / "analysis_config.yaml"
AXES = {"energy": {"min": "0.02 TeV", "max": "10 TeV", "nbins": 12},
        "energy_true": {"min": "0.015 TeV", "max": "15 TeV", "nbins": 16}}


def aeff_max(dataset, position, percent):
    aeff = dataset.exposure.get_spectrum(position) / dataset.exposure.meta["livetime"]
    model = TemplateSpectralModel.from_region_map(aeff)
    energy_true = model.energy
    energy_min = energy_true[np.nonzero(model.values > 0)[0][0]]
    inversion = model.inverse((percent / 100) * aeff.quantity.max(), energy_min=energy_min,
                              energy_max=energy_true[-1])
    return float((energy_min if np.isnan(inversion[0]) else inversion[0]).to_value("TeV"))


def edisp_bias(dataset, position, percent):
    kernel = dataset.edisp.get_edisp_kernel(position=position)
    return float(kernel.get_bias_energy(percent / 100)[0].to_value("TeV"))


if __name__ == "__main__":
    config = AnalysisConfig.read(SEED)
    config.general.log = {"level": "error"}
    config.observations.obs_ids = [110380]
    config.datasets.stack = False
    config.datasets.geom.axes = AXES
    config.datasets.safe_mask.methods = ["offset-max"]
    analysis = Analysis(config)
    analysis.get_observations()
    analysis.get_datasets()
    dataset, obs = analysis.datasets[0], analysis.observations[0]
    pointing = obs.get_pointing_icrs(obs.tmid)
    positions = {"centre": dataset._geom.center_skydir,
                 "fixed_offset_1.5deg": pointing.directional_offset_by(0 * u.deg, 1.5 * u.deg)}
    out = {"gammapy": gammapy_version, "obs_id": 110380, "axes": AXES, "thresholds_tev": {}}
    for where, position in positions.items():
        for percent in (10, 40):
            out["thresholds_tev"][f"aeff-max-{percent}-{where}"] = aeff_max(dataset, position, percent)
        for percent in (10, 3):
            out["thresholds_tev"][f"edisp-bias-{percent}-{where}"] = edisp_bias(dataset, position, percent)
    print(out)
    (HERE / "safe_mask_thresholds_gammapy.json").write_text(json.dumps(out, indent=1) + "\n")
