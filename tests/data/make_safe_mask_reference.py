"""Reference safe masks for gcxr's aeff-max, edisp-bias and bkg-peak, made with gammapy 2.1.

Runs gammapy's high-level ``Analysis`` (``stack: false``) on the three seed runs
(``../shared/reference/gammapy-2.1-cta1dc-gc/analysis_config.yaml``) with a wider
energy axis (0.02-10 TeV reco, 12 bins; 0.015-15 TeV true, 16 bins) so that the
energy thresholds cut, once per case below, and records for every run the number
of safe pixels in each reco-energy bin.

usage: GAMMAPY_DATA=../shared/data .venv-gammapy/bin/python tests/data/make_safe_mask_reference.py
Writes ``safe_mask_gammapy.json`` next to this script.
"""
import json
import os
import warnings
from pathlib import Path

import numpy as np

warnings.simplefilter("ignore")
from gammapy import __version__ as gammapy_version  # noqa: E402
from gammapy.analysis import Analysis, AnalysisConfig  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = Path(os.environ.get("GCXR_REFERENCE", HERE.parents[2] / "shared" / "reference")) / \
    "gammapy-2.1-cta1dc-gc" / "analysis_config.yaml"
AXES = {"energy": {"min": "0.02 TeV", "max": "10 TeV", "nbins": 12},
        "energy_true": {"min": "0.015 TeV", "max": "15 TeV", "nbins": 16}}
CASES = {
    "aeff-max-10": (["offset-max", "aeff-max"], {}),
    "aeff-max-40": (["offset-max", "aeff-max"], {"aeff_percent": 40}),
    "edisp-bias-10": (["offset-max", "edisp-bias"], {}),
    "edisp-bias-3": (["offset-max", "edisp-bias"], {"bias_percent": 3}),
    "bkg-peak": (["offset-max", "bkg-peak"], {}),
    "offset-max-2": (["offset-max"], {"offset_max": "2 deg"}),
}
# fixed_offset is not among the cases: gammapy's Analysis hands the YAML value to SafeMaskMaker
# unconverted, and a string (or a bare number, taken as radians) fails there; the thresholds with
# fixed_offset given as an Angle are in make_safe_mask_thresholds.py.


def run(methods, parameters):
    config = AnalysisConfig.read(SEED)
    config.general.log = {"level": "error"}
    config.datasets.stack = False
    config.datasets.geom.axes = AXES
    config.datasets.safe_mask.methods = methods
    config.datasets.safe_mask.parameters = parameters
    analysis = Analysis(config)
    analysis.get_observations()
    analysis.get_datasets()
    out = {}
    for ds in analysis.datasets:
        obs = int(np.ravel(np.asarray(ds.meta_table["OBS_ID"]).tolist())[0])
        out[str(obs)] = [int(x) for x in ds.mask_safe.data.sum(axis=(1, 2))]
    return out


if __name__ == "__main__":
    result = {"gammapy": gammapy_version, "axes": AXES, "cases": {}}
    for name, (methods, parameters) in CASES.items():
        result["cases"][name] = {"methods": methods, "parameters": parameters,
                                 "safe_pixels_per_energy": run(methods, parameters)}
        print(name, result["cases"][name]["safe_pixels_per_energy"])
    (HERE / "safe_mask_gammapy.json").write_text(json.dumps(result, indent=1) + "\n")
