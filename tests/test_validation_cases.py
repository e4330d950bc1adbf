"""The validation cases (benchmarks/validation/<case>/) load with gcxr's config and model readers.

Cheap: no data store is opened and nothing is reduced; the template map of ``sim_template`` is
written into a temporary folder standing in for the simulated stores.
"""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "benchmarks" / "validation"
CASES = ("hess_msh1552", "hess_pks2155", "sim_cta_disk_gauss", "sim_hess_south", "sim_template")
SIMULATED = ("sim_cta_disk_gauss", "sim_hess_south", "sim_template")
# parameters that may carry limits: gammapy 2.1 needs them for positions at |lon| >= 100 deg
BOUNDED_OK = {"lon_0", "lat_0"}


def _load_make_stores():
    spec = importlib.util.spec_from_file_location("validation_make_stores", VALIDATION / "make_stores.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def stores(tmp_path_factory, monkeypatch_module):
    """A stand-in for $GCXR_VALIDATION_STORES holding sim_template/template.fits."""
    root = tmp_path_factory.mktemp("stores")
    _load_make_stores().write_template(root / "sim_template" / "template.fits")
    monkeypatch_module.setenv("GCXR_VALIDATION_STORES", str(root))
    return root


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_bench_lists_the_case_folders():
    folders = sorted(p.name for p in VALIDATION.iterdir() if (p / "config.yaml").exists())
    assert folders == sorted(CASES)
    assert sorted(_load_make_stores().SIMULATIONS) == sorted(SIMULATED)


@pytest.mark.parametrize("case", CASES)
def test_config_loads(case, stores):
    from gcxr.plan import spec_from_config
    from gcxr.config import AnalysisConfig, expand_path
    cfg = AnalysisConfig.read(VALIDATION / case / "config.yaml")
    assert cfg.datasets.type == "3d"
    assert cfg.datasets.stack is True
    spec = spec_from_config(cfg)
    w = cfg.datasets.geom.wcs
    assert w.binsize.to_value("deg") == pytest.approx(0.02)
    assert 8 <= cfg.datasets.geom.axes.energy.nbins <= 16
    et, e = cfg.datasets.geom.axes.energy_true, cfg.datasets.geom.axes.energy
    assert et.min <= e.min and et.max >= e.max, "true-energy axis must cover the reco axis"
    assert len(spec.energy.edges) == e.nbins + 1
    methods = set(cfg.datasets.safe_mask.methods)
    assert "offset-max" in methods
    if case.startswith("hess") or case == "sim_hess_south":
        assert "aeff-default" in methods          # H.E.S.S. safe thresholds from the AEFF header
    store = expand_path(cfg.observations.datastore)
    if case in SIMULATED:
        assert store == stores / case
    else:
        assert store.name == "hess-dl3-dr1"


def _free_and_bounded(path):
    out = []
    for comp in yaml.safe_load(Path(path).read_text())["components"]:
        for part in ("spectral", "spatial"):
            for p in comp.get(part, {}).get("parameters", []):
                if "min" in p or "max" in p:
                    out.append(p["name"])
    return out


@pytest.mark.parametrize("case", CASES)
def test_models_load(case, stores):
    from gcxr.config import AnalysisConfig
    from gcxr.models import Models
    models = Models.read(VALIDATION / case / "models.yaml")
    assert len(models) >= 1
    free = [p for m in models for p in m.parameters if not p.frozen]
    assert len(free) >= 2          # + the FoV background norm added at fit time
    assert set(_free_and_bounded(VALIDATION / case / "models.yaml")) <= BOUNDED_OK
    frame = AnalysisConfig.read(VALIDATION / case / "config.yaml").datasets.geom.wcs.skydir.frame
    for m in models:
        spatial = getattr(m, "spatial_model", None)
        if spatial is not None:
            assert spatial.frame == frame
    if case in SIMULATED:
        truth = Models.read(VALIDATION / case / "truth.yaml")
        assert len(truth) >= 1


def test_sim_cta_has_three_extended_sources(stores):
    from gcxr.models import Models
    for name in ("models.yaml", "truth.yaml"):
        kinds = sorted(type(m.spatial_model).__name__ for m in Models.read(VALIDATION / "sim_cta_disk_gauss" / name))
        assert kinds == ["DiskSpatialModel", "GaussianSpatialModel", "ShellSpatialModel"], name


def test_shell_variant_loads(stores):
    from gcxr.models import Models
    kinds = sorted(type(m.spatial_model).__name__
                   for m in Models.read(VALIDATION / "sim_cta_disk_gauss" / "models_shell.yaml"))
    assert kinds == ["GaussianSpatialModel", "ShellSpatialModel"]


def test_template_map_is_read_by_gcxr(stores):
    """The template is centred on (25, 0), integrates to one and is the truth's two blobs (3:1 in flux)."""
    from gcxr.models import Models
    m = Models.read(VALIDATION / "sim_template" / "models.yaml")[0].spatial_model
    assert type(m).__name__ == "TemplateSpatialModel"
    assert m.frame == "galactic"
    assert m.parameters["lon_0"].frozen and m.parameters["lat_0"].frozen
    assert m.parameters["lon_0"].value == pytest.approx(25.0)
    assert m.parameters["lat_0"].value == pytest.approx(0.0)
    lon, lat = np.meshgrid(np.arange(23.5, 26.5, 0.01), np.arange(-1.5, 1.5, 0.01))
    vals = np.asarray(m.evaluate(lon, lat))            # sr^-1
    integral = vals.sum() * (np.deg2rad(0.01) ** 2)
    assert integral == pytest.approx(1.0, rel=0.02)
    # the narrow blob b has the higher peak; at both blob centres the map follows the truth
    assert np.nanargmax(vals) == np.argmin(np.hypot(lon - 25.35, lat + 0.15))
    ms = _load_make_stores()
    pts_lon, pts_lat = np.array([24.85, 25.35, 25.0, 24.7]), np.array([0.05, -0.15, 0.0, 0.2])
    expect = (0.75 * ms.gaussian_blob(pts_lon, pts_lat, 24.85, 0.05, 0.25, 0.7, 30.0)
              + 0.25 * ms.gaussian_blob(pts_lon, pts_lat, 25.35, -0.15, 0.1)) * (180 / np.pi) ** 2
    assert np.asarray(m.evaluate(pts_lon, pts_lat)) == pytest.approx(expect, rel=0.02)
