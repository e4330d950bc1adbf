"""Shared fixtures: the shared DL3 data and gammapy reference outputs (../shared beside the repo)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GCXR_SHARED", ROOT.parent / "shared"))
DATA = Path(os.environ.get("GCXR_DATA", SHARED / "data"))
REF = SHARED / "reference" / "gammapy-2.1-cta1dc-gc"

os.environ.setdefault("GCXR_DATA", str(DATA))
warnings.filterwarnings("ignore", message=".*invalid unit '1/s/MeV/sr'.*")

# A 3 x 3 deg stacked analysis for small simulated stores (``.format(store=...)``).
SMALL_STORE_CONFIG = """
observations:
    datastore: {store}
datasets:
    type: 3d
    stack: true
    geom:
        wcs:
            skydir: {{frame: galactic, lon: 0 deg, lat: 0 deg}}
            binsize: 0.1 deg
            width: {{width: 3 deg, height: 3 deg}}
            binsize_irf: 0.5 deg
        selection: {{offset_max: 2.0 deg}}
        axes:
            energy: {{min: 0.1 TeV, max: 10 TeV, nbins: 4}}
            energy_true: {{min: 0.08 TeV, max: 12 TeV, nbins: 5}}
"""

# A point source near the centre of SMALL_STORE_CONFIG's grid (a models file for it).
SMALL_STORE_MODELS = """
components:
-   name: src
    type: SkyModel
    spectral: {type: PowerLawSpectralModel, parameters: [{name: index, value: 2.3}]}
    spatial:
        type: PointSpatialModel
        frame: galactic
        parameters: [{name: lon_0, value: -0.06, unit: deg}, {name: lat_0, value: -0.04, unit: deg}]
"""


# Missing shared data: the tests that need them are skipped, except when the environment variable CI
# is set, where they fail (a clone without ../shared must not pass with ~60 tests quietly skipped).
IN_CI = bool(os.environ.get("CI"))


def shared_data(available: bool, reason: str):
    """A marker for tests needing shared files: nothing if ``available``, else skip (fail under CI)."""
    if available:
        return pytest.mark.data
    if IN_CI:
        return pytest.mark.data(missing=reason)
    return pytest.mark.skip(reason=reason)


def skip_or_fail(reason: str):
    """Inside a test: skip because shared files are missing (fail when CI is set)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: missing shared data is an error)", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_setup(item):
    m = item.get_closest_marker("data")
    if m is not None and m.kwargs.get("missing"):
        pytest.fail(f"{m.kwargs['missing']} (CI is set: missing shared data is an error)", pytrace=False)


needs_data = shared_data((DATA / "cta-1dc").exists() and REF.exists(),
                         "shared DL3 data / reference not found (set GCXR_DATA, GCXR_SHARED)")


@pytest.fixture(scope="session")
def seed_config():
    from gcxr.config import AnalysisConfig
    return AnalysisConfig.read(REF / "analysis_config.yaml")


@pytest.fixture(scope="session")
def seed_spec(seed_config):
    from gcxr.plan import spec_from_config
    return spec_from_config(seed_config)


@pytest.fixture(scope="session")
def cta_store():
    from gcxr.datastore import DataStore
    return DataStore.from_dir(DATA / "cta-1dc" / "index" / "gps")


@pytest.fixture(scope="session")
def seed_runs(cta_store):
    return cta_store.runs([110380, 111140, 111159])


@pytest.fixture(scope="session")
def run_110380(cta_store, seed_spec):
    from gcxr.reduce import reduce_run
    return reduce_run(cta_store.run(110380), seed_spec)


@pytest.fixture(scope="session")
def seed_stacked(seed_runs, seed_spec):
    from gcxr.datasets import stack
    from gcxr.reduce import reduce_run_lazy
    return stack([reduce_run_lazy(r, seed_spec) for r in seed_runs], seed_spec).compute(scheduler="threads")


@pytest.fixture(scope="session")
def ref_stacked():
    from astropy.io import fits
    with fits.open(REF / "stacked.fits.gz") as h:
        return {x.name: x.data.astype(float) for x in h[1:] if x.data is not None and x.name.isupper()
                and not x.name.endswith("_BANDS") and x.name not in ("GTI", "META_TABLE")}


@pytest.fixture(scope="session")
def ref_obs():
    from astropy.io import fits
    with fits.open(REF / "obs_110380.fits.gz") as h:
        return {x.name: x.data.astype(float) for x in h[1:] if x.data is not None
                and not x.name.endswith("_BANDS") and x.name not in ("GTI", "META_TABLE")}


@pytest.fixture(scope="session")
def seed_joint_analysis(seed_config):
    """The seed runs reduced one dataset per run (``stack: false``), no models set: an Analysis
    whose ``datasets`` the tests share (copy what you modify)."""
    from gcxr.analysis import Analysis
    cfg = seed_config.model_copy(deep=True)
    cfg.datasets.stack = False
    ana = Analysis(cfg, progress=False)
    ana.get_observations()
    ana.get_datasets()
    return ana
