"""The energy-threshold safe-mask methods against gammapy 2.1's SafeMaskMaker.

tests/data/safe_mask_gammapy.json (made by tests/data/make_safe_mask_reference.py with
gammapy 2.1) holds, for the three seed runs reduced one dataset per run on a wide energy
axis (0.02-10 TeV, where the thresholds cut), the number of safe pixels per reco-energy
bin for aeff-max, edisp-bias and bkg-peak with default and non-default parameters
(``aeff_percent``, ``bias_percent``, ``offset_max``); tests/data/safe_mask_thresholds_gammapy.json
(tests/data/make_safe_mask_thresholds.py) the thresholds themselves, also with ``fixed_offset``.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REF, needs_data

DATA = Path(__file__).parent / "data"
REFERENCE = json.loads((DATA / "safe_mask_gammapy.json").read_text())


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("case", sorted(REFERENCE["cases"]))
def test_safe_mask_matches_gammapy(case):
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    ref = REFERENCE["cases"][case]
    config = AnalysisConfig.read(REF / "analysis_config.yaml")
    config.datasets.stack = False
    config = config.update({"datasets": {"geom": {"axes": REFERENCE["axes"]},
                                         "safe_mask": {"methods": ref["methods"], "parameters": ref["parameters"]}}})
    ana = Analysis(config, progress=False)
    ana.get_observations()
    ana.get_datasets()
    for ds in ana.datasets:
        got = ds["mask_safe"].values.sum(axis=(1, 2))
        np.testing.assert_array_equal(got, ref["safe_pixels_per_energy"][str(ds.attrs["obs_id"])], err_msg=case)


def test_reference_cases_cut():
    """Each energy-threshold case removes some low-energy bins in gammapy (else it would test nothing)."""
    for name, case in REFERENCE["cases"].items():
        if name.startswith("offset-max"):
            continue
        for pixels in case["safe_pixels_per_energy"].values():
            assert pixels[0] == 0 and pixels[-1] > 0, name


def test_bkg_peak_by_hand():
    """bkg-peak keeps the bins from the lower edge of the bin where the background spectrum peaks."""
    from gcxr.geom import EnergyAxis
    from gcxr.reduce import ReductionSpec, SkyGeom
    from gcxr.safe_mask import safe_energy_range
    spec = ReductionSpec(geom=SkyGeom.create((0, 0), 0.5, 2, "galactic"),
                         energy=EnergyAxis.from_bounds(0.1, 10, 4), energy_true=EnergyAxis.from_bounds(0.1, 10, 4))
    keep = safe_energy_range(["bkg-peak"], None, spec, None, np.array([1.0, 5.0, 9.0, 2.0]), None)
    np.testing.assert_array_equal(keep, [False, False, True, True])


def test_edisp_bias_threshold_by_hand():
    from gcxr.safe_mask import edisp_bias_threshold
    e = np.array([0.1, 1.0, 10.0])
    # biases 0.4, 0.05, 0.01: 10 % is crossed between 0.1 and 1 TeV, at 0.1 x 10^(2/3) in log-log
    t = edisp_bias_threshold(np.eye(3), e, np.array([0.14, 1.05, 10.1]), 10)
    assert t == pytest.approx(0.1 * 10 ** (2 / 3) * 1.1, rel=1e-12)
    # the bias never falls to 1 %: the threshold is the energy of the largest bias, times 1.01
    assert edisp_bias_threshold(np.eye(3), e, np.array([0.14, 1.05, 10.5]), 1) == pytest.approx(0.101)


@pytest.fixture(scope="module")
def run_110380_wide():
    """Run 110380 reduced on the wide axis of the threshold reference (safe mask: offset-max only)."""
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    ref = json.loads((DATA / "safe_mask_thresholds_gammapy.json").read_text())
    config = AnalysisConfig.read(REF / "analysis_config.yaml")
    config.observations.obs_ids = [ref["obs_id"]]
    config.datasets.stack = False
    config = config.update({"datasets": {"geom": {"axes": ref["axes"]}, "safe_mask": {"methods": ["offset-max"]}}})
    ana = Analysis(config, progress=False)
    ana.get_observations()
    ana.get_datasets()
    return ana, ref["thresholds_tev"]


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("where", ["centre", "fixed_offset_1.5deg"])
def test_thresholds_match_gammapy(run_110380_wide, where):
    """The aeff-max and edisp-bias thresholds themselves (not only the bins they keep), to 1e-7."""
    from gcxr.reduce import run_layout
    from gcxr.safe_mask import aeff_max_threshold, edisp_bias_threshold, fixed_offset_pixels
    ana, ref = run_110380_wide
    ds, spec, run = ana.datasets[0], ana.spec, ana.runs[0]
    lay = run_layout(run, spec)
    sub, isub = spec.geom.slice(*lay.slices), spec.irf_geom.slice(*lay.irf_slices)
    if where == "centre":
        (cy, cx), (icy, icx) = ((sub.ny - 1) // 2, (sub.nx - 1) // 2), ((isub.ny - 1) // 2, (isub.nx - 1) // 2)
    else:
        (cy, cx), (icy, icx) = fixed_offset_pixels(run.obs_id, ds.attrs["ra_pnt"], ds.attrs["dec_pnt"], 1.5, sub, isub)
    aeff = ds["exposure"].values[:, cy, cx]
    kernel = ds["edisp"].values[:, :, icy, icx]
    et, er = spec.energy_true.centers, spec.energy.centers
    for pct in (10, 40):
        assert aeff_max_threshold(aeff, et, pct) == pytest.approx(ref[f"aeff-max-{pct}-{where}"], rel=1e-7)
    for pct in (10, 3):
        assert edisp_bias_threshold(kernel, et, er, pct) == pytest.approx(ref[f"edisp-bias-{pct}-{where}"], rel=1e-7)
