"""Every key of gammapy 2.1's AnalysisConfig either acts as in gammapy or is refused by name.

The key list is generated from gcxr's schema and checked against gammapy's own
(tests/data/gammapy_config_keys.json, made by tests/data/make_gammapy_config_keys.py
with gammapy 2.1), so a key added to either schema without a check here fails.
``COMPLETE`` is a configuration with every key set to a non-default value; each key
then gets its own test: the value's effect is seen on a small simulated store, or
the configuration is refused with a ConfigError naming the dotted key.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from conftest import SMALL_STORE_CONFIG
from gcxr.analysis import Analysis
from gcxr.plan import spec_from_config
from gcxr.config import AnalysisConfig, ConfigError
from gcxr.config.support import check_supported

DATA = Path(__file__).parent / "data"

MODELS = """
components:
-   name: src
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        - {name: index, value: 2.3}
        - {name: amplitude, value: 3.0e-12, unit: TeV-1 s-1 cm-2}
        - {name: reference, value: 1.0, unit: TeV}
    spatial:
        type: PointSpatialModel
        frame: galactic
        parameters: [{name: lon_0, value: -0.06, unit: deg}, {name: lat_0, value: -0.04, unit: deg}]
"""

# A complete configuration: every key non-default ({tmp} and {store} are filled in per test).
COMPLETE = {
    "general.log.level": "debug",
    "general.log.filename": "{tmp}/gcxr.log",
    "general.log.filemode": "w",
    "general.log.format": "%(levelname)s|%(name)s|%(message)s",
    "general.log.datefmt": "%Y",
    "general.outdir": "{tmp}/outdir",
    "general.n_jobs": 2,
    "general.datasets_file": "{tmp}/datasets.nc",
    "general.models_file": "{tmp}/models.yaml",
    "observations.datastore": "{store}",
    "observations.obs_ids": [2],
    "observations.obs_file": "{tmp}/runs.txt",
    "observations.obs_cone.frame": "icrs",
    "observations.obs_cone.lon": "266.40 deg",
    "observations.obs_cone.lat": "-28.94 deg",
    "observations.obs_cone.radius": "0.2 deg",
    "observations.obs_time.start": "2025-01-01T00:00:00",
    "observations.obs_time.stop": "2025-01-02T00:00:00",
    "observations.required_irf": ["aeff", "edisp", "psf"],
    "datasets.type": "3d",
    "datasets.stack": False,
    "datasets.geom.wcs.skydir.frame": "galactic",
    "datasets.geom.wcs.skydir.lon": "0.3 deg",
    "datasets.geom.wcs.skydir.lat": "0.2 deg",
    "datasets.geom.wcs.binsize": "0.05 deg",
    "datasets.geom.wcs.width.width": "2 deg",
    "datasets.geom.wcs.width.height": "1.5 deg",
    "datasets.geom.wcs.binsize_irf": "0.25 deg",
    "datasets.geom.selection.offset_max": "1.5 deg",
    "datasets.geom.axes.energy.min": "0.2 TeV",
    "datasets.geom.axes.energy.max": "20 TeV",
    "datasets.geom.axes.energy.nbins": 6,
    "datasets.geom.axes.energy_true.min": "0.1 TeV",
    "datasets.geom.axes.energy_true.max": "30 TeV",
    "datasets.geom.axes.energy_true.nbins": 9,
    "datasets.map_selection": ["counts", "exposure", "background"],
    "datasets.background.method": "fov_background",
    "datasets.background.exclusion": "{tmp}/exclusion.fits",
    "datasets.background.parameters": {"method": "fit", "min_counts": 10},
    "datasets.safe_mask.methods": ["aeff-default", "offset-max", "bkg-peak"],
    "datasets.safe_mask.parameters": {"offset_max": "1 deg", "aeff_percent": 20},
    "datasets.on_region.frame": "galactic",
    "datasets.on_region.lon": "0.1 deg",
    "datasets.on_region.lat": "0.1 deg",
    "datasets.on_region.radius": "0.1 deg",
    "datasets.containment_correction": False,
    "fit.fit_range.min": "1 TeV",
    "fit.fit_range.max": "3.1622776601683795 TeV",
    "flux_points.energy.min": "1 TeV",
    "flux_points.energy.max": "10 TeV",
    "flux_points.energy.nbins": 2,
    "flux_points.source": "src",
    "flux_points.parameters": {"n_sigma_ul": 3},
    "excess_map.correlation_radius": "0.3 deg",
    "excess_map.parameters": {"n_sigma": 2},
    "excess_map.energy_edges.min": "0.1 TeV",
    "excess_map.energy_edges.max": "10 TeV",
    "excess_map.energy_edges.nbins": 2,
    "light_curve.time_intervals.start": ["2025-01-01T00:00:00"],
    "light_curve.time_intervals.stop": ["2025-01-02T00:00:00"],
    "light_curve.energy_edges.min": "1 TeV",
    "light_curve.energy_edges.max": "10 TeV",
    "light_curve.energy_edges.nbins": 1,
    "light_curve.source": "src",
    "light_curve.parameters": {"selection_optional": ["ul"]},
    "metadata.creator": "someone",
    "metadata.date": "2026-01-01T00:00:00",
    "metadata.origin": "a test",
}

#: Keys refused at the COMPLETE value (a message fragment that says what gcxr does instead).
REFUSED = {
    "datasets.on_region.frame": "1D spectrum extraction",
    "datasets.on_region.lon": "1D spectrum extraction",
    "datasets.on_region.lat": "1D spectrum extraction",
    "datasets.on_region.radius": "1D spectrum extraction",
    "datasets.containment_correction": "3D datasets fold the full PSF",
    "excess_map.parameters": "correlation_radius and energy_edges",
    "light_curve.time_intervals.start": "no light-curve estimator",
    "light_curve.time_intervals.stop": "no light-curve estimator",
    "light_curve.energy_edges.min": "no light-curve estimator",
    "light_curve.energy_edges.max": "no light-curve estimator",
    "light_curve.energy_edges.nbins": "no light-curve estimator",
    "light_curve.source": "no light-curve estimator",
    "light_curve.parameters": "no light-curve estimator",
}


# ------------------------------------------------------------------ helpers
def _leaves(model, prefix: str = "") -> list[str]:
    from pydantic import BaseModel
    out = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out += _leaves(value, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


GCXR_KEYS = _leaves(AnalysisConfig())


def _set(tree: dict, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    for name in head:
        tree = tree.setdefault(name, {})
    tree[last] = value


def _fill(value, env):
    if isinstance(value, str):
        return value.format(tmp=env.tmp, store=env.store)
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    return value


class Env:
    """A small simulated store (runs 1, 2, 3 at galactic (0, 0), (0.5, 0), (0, 0.5)) and a scratch dir."""

    def __init__(self, store: Path, tmp: Path):
        self.store, self.tmp = store, tmp

    def config(self, changes: dict | None = None) -> AnalysisConfig:
        data = AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store=self.store)).to_dict()
        for key, value in (changes or {}).items():
            _set(data, key, _fill(value, self))
        return AnalysisConfig.from_dict(data)

    def analysis(self, changes: dict | None = None, reduce: bool = True) -> Analysis:
        ana = Analysis(self.config(changes), progress=False)
        if reduce:
            ana.get_observations()
            ana.get_datasets()
        return ana

    def obs_ids(self, changes: dict) -> list[int]:
        return [r.obs_id for r in self.analysis(changes, reduce=False).get_observations()]

    def models(self):
        from gcxr.models import Models
        path = self.tmp / "models.yaml"
        path.write_text(MODELS)
        return Models.read(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    out = tmp_path_factory.mktemp("keys") / "store"
    simulate_datastore(out, pointings=[(0.0, 0.0), (0.5, 0.0), (0.0, 0.5)], livetime=120.0, seed=5, quiet=True)
    return out


@pytest.fixture
def env(store, tmp_path):
    yield Env(store, tmp_path)
    logger = logging.getLogger("gcxr")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.setLevel(logging.NOTSET)


# ------------------------------------------------------------------ the key lists
def test_gcxr_keys_are_gammapys_keys():
    gammapy = json.loads((DATA / "gammapy_config_keys.json").read_text())
    assert gammapy["gammapy"] == "2.1"
    ours = [k for k in GCXR_KEYS if not k.startswith("metadata.")]   # gammapy writes metadata outside its schema
    assert ours == gammapy["keys"]


def test_complete_config_every_key_non_default_and_refusals_named(env):
    config = env.config(COMPLETE)
    default = AnalysisConfig()
    for key in GCXR_KEYS:
        value, ref = config, default
        for name in key.split("."):
            value, ref = getattr(value, name), getattr(ref, name)
        assert value != ref, f"COMPLETE leaves {key} at its default"
    with pytest.raises(ConfigError) as err:
        check_supported(config)
    # the refused keys, plus obs_ids with obs_file (refused together, as gammapy does)
    assert {_owner(p) for p in err.value.paths} == set(REFUSED) | {"observations.obs_file"}


def test_every_key_has_a_check():
    missing = [k for k in GCXR_KEYS if k not in COMPLETE or (k not in REFUSED and k not in EFFECTS)]
    assert missing == []


@pytest.mark.parametrize("key", GCXR_KEYS)
def test_key(env, key, monkeypatch):
    if key in REFUSED:
        with pytest.raises(ConfigError) as err:
            Analysis(env.config({key: COMPLETE[key]}), progress=False)
        assert key in {_owner(p) for p in err.value.paths}
        assert REFUSED[key] in str(err.value)
        return
    assert key in EFFECTS, f"no check for {key}"
    EFFECTS[key](env, monkeypatch)


def _owner(path: str) -> str:
    """The schema key an error path belongs to (``x.parameters.n_sigma`` -> ``x.parameters``)."""
    while path not in GCXR_KEYS and "." in path:
        path = path.rsplit(".", 1)[0]
    return path


# ------------------------------------------------------------------ effects: general
def _log_line(env, changes) -> str:
    Analysis(env.config(changes), progress=False)
    logging.getLogger("gcxr.test").warning("hello")
    for h in logging.getLogger("gcxr").handlers:
        h.flush()
    return (env.tmp / "gcxr.log").read_text()


def eff_log_level(env, mp):
    Analysis(env.config({"general.log.level": "debug"}), progress=False)
    assert logging.getLogger("gcxr").level == logging.DEBUG
    Analysis(env.config({"general.log.level": "error"}), progress=False)
    assert logging.getLogger("gcxr").level == logging.ERROR
    assert logging.getLogger().level != logging.ERROR          # the root logger is left alone


def eff_log_filename(env, mp):
    assert "hello" in _log_line(env, {"general.log.filename": "{tmp}/gcxr.log"})


def eff_log_filemode(env, mp):
    (env.tmp / "gcxr.log").write_text("old line\n")
    text = _log_line(env, {"general.log.filename": "{tmp}/gcxr.log", "general.log.filemode": "w"})
    assert "old line" not in text and "hello" in text


def eff_log_format(env, mp):
    text = _log_line(env, {"general.log.filename": "{tmp}/gcxr.log", "general.log.format": COMPLETE["general.log.format"]})
    assert text.strip() == "WARNING|gcxr.test|hello"


def eff_log_datefmt(env, mp):
    import datetime
    text = _log_line(env, {"general.log.filename": "{tmp}/gcxr.log", "general.log.format": "%(asctime)s|%(message)s",
                           "general.log.datefmt": "%Y"})
    assert text.strip() == f"{datetime.datetime.now().year}|hello"


def eff_outdir(env, mp):
    from gcxr.cli import main
    path = env.tmp / "config.yaml"
    env.config({"general.outdir": "{tmp}/outdir"}).write(path)
    assert main(["run", str(path), "--no-fit", "--quiet"]) == 0
    assert (env.tmp / "outdir" / "result.json").is_file()
    assert (env.tmp / "outdir" / "datasets.nc").is_file()


def eff_n_jobs(env, mp):
    import dask.threaded
    seen = []
    real = dask.threaded.get

    def spy(*args, **kwargs):
        seen.append(kwargs.get("num_workers"))
        return real(*args, **kwargs)

    mp.setattr(dask.threaded, "get", spy)
    env.analysis({"general.n_jobs": 2})
    assert seen == [2]
    with pytest.raises(ConfigError, match="general.n_jobs"):
        env.analysis({"general.n_jobs": 0})


def eff_datasets_file(env, mp):
    ana = env.analysis({"general.datasets_file": "{tmp}/datasets.nc"})
    assert ana.write_datasets() == env.tmp / "datasets.nc"
    back = Analysis(env.config({"general.datasets_file": "{tmp}/datasets.nc"}), progress=False).read_datasets()
    np.testing.assert_array_equal(back[0]["counts"].values, ana.datasets[0]["counts"].values)
    with pytest.raises(ConfigError, match="general.datasets_file"):
        env.analysis(reduce=False).write_datasets()
    # with models_file set as well, the models are written beside the datasets and read back with them
    both = {"general.datasets_file": "{tmp}/datasets.nc", "general.models_file": "{tmp}/written.yaml"}
    ana = env.analysis(both)
    ana.set_models(env.models())
    ana.write_datasets()
    again = Analysis(env.config(both), progress=False)
    again.read_datasets()
    assert "src" in again.models.names


def eff_models_file(env, mp):
    env.models()                                                # writes {tmp}/models.yaml
    ana = env.analysis({"general.models_file": "{tmp}/models.yaml"})
    ana.read_models()
    assert "src" in ana.models.names
    ana.models["src"].spectral_model.parameters["index"].value = 2.7
    ana.write_models()
    again = env.analysis({"general.models_file": "{tmp}/models.yaml"})
    again.read_models()
    assert again.models["src"].spectral_model.parameters["index"].value == 2.7


# ------------------------------------------------------------------ effects: observations
def eff_datastore(env, mp):
    ana = env.analysis({"observations.datastore": "{store}"}, reduce=False)
    ana.get_observations()
    assert Path(ana.datastore.base_dir).resolve() == env.store.resolve()


def eff_obs_ids(env, mp):
    assert env.obs_ids({"observations.obs_ids": [2]}) == [2]


def eff_obs_file(env, mp):
    (env.tmp / "runs.txt").write_text("3\n2\n")
    assert env.obs_ids({"observations.obs_file": "{tmp}/runs.txt"}) == [3, 2]
    with pytest.raises(ConfigError, match="observations.obs_file"):
        env.obs_ids({"observations.obs_file": "{tmp}/missing.txt"})


def _cone(frame, lon, lat, radius):
    return {"observations.obs_cone.frame": frame, "observations.obs_cone.lon": f"{lon} deg",
            "observations.obs_cone.lat": f"{lat} deg", "observations.obs_cone.radius": f"{radius} deg"}


def eff_cone_frame(env, mp):
    from gcxr.coords import transform_lonlat
    ra, dec = transform_lonlat(np.array([0.5]), np.array([0.0]), "galactic", "icrs")
    assert env.obs_ids(_cone("icrs", ra[0], dec[0], 0.2)) == [2]


def eff_cone_lon(env, mp):
    assert env.obs_ids(_cone("galactic", 0.5, 0, 0.2)) == [2]


def eff_cone_lat(env, mp):
    assert env.obs_ids(_cone("galactic", 0, 0.5, 0.2)) == [3]


def eff_cone_radius(env, mp):
    assert env.obs_ids(_cone("galactic", 0, 0, 0.2)) == [1]
    assert env.obs_ids(_cone("galactic", 0, 0, 0.6)) == [1, 2, 3]


def _run_times(env):
    from gcxr.datastore import DataStore
    times = DataStore.from_dir(env.store).run_times()
    return [times[o][0] for o in (1, 2, 3)], [times[o][1] for o in (1, 2, 3)]


def _window(start, stop):
    return {"observations.obs_time.start": start.utc.isot, "observations.obs_time.stop": stop.utc.isot}


def eff_obs_time_start(env, mp):
    import astropy.units as u
    t0, t1 = _run_times(env)
    assert env.obs_ids(_window(t0[1] - 60 * u.s, t1[2] + 60 * u.s)) == [2, 3]
    with pytest.raises(ConfigError, match=r"observations.obs_time: the time window cuts run\(s\) \[2\]"):
        env.obs_ids(_window(t0[1] + 10 * u.s, t1[2] + 60 * u.s))


def eff_obs_time_stop(env, mp):
    import astropy.units as u
    t0, t1 = _run_times(env)
    assert env.obs_ids(_window(t0[0] - 60 * u.s, t1[1] + 60 * u.s)) == [1, 2]
    with pytest.raises(ConfigError, match="observations.obs_time.stop"):
        env.obs_ids({"observations.obs_time.start": t0[0].utc.isot})


def eff_required_irf(env, mp):
    store = env.tmp / "store"
    shutil.copytree(env.store, store)
    with fits.open(store / "hdu-index.fits.gz") as h:
        d = h[1].data
        keep = ~((d["HDU_TYPE"] == "bkg") & (d["OBS_ID"] == 3))
        table = fits.BinTableHDU(d[keep], header=h[1].header)
        fits.HDUList([h[0].copy(), table]).writeto(store / "hdu-index.fits.gz", overwrite=True)
    with pytest.warns(UserWarning, match="skipped 1 run"):        # gammapy skips runs lacking a required IRF
        assert env.obs_ids({"observations.datastore": str(store)}) == [1, 2]
    assert env.obs_ids({"observations.datastore": str(store),
                        "observations.required_irf": ["aeff", "edisp", "psf"]}) == [1, 2, 3]


# ------------------------------------------------------------------ effects: datasets
def eff_type(env, mp):
    assert env.analysis().datasets[0]["counts"].dims == ("energy", "lat", "lon")
    with pytest.raises(ConfigError) as err:
        env.analysis({"datasets.type": "1d"}, reduce=False)
    assert "datasets.type" in err.value.paths and "3D" in str(err.value)


def eff_stack(env, mp):
    ana = env.analysis({"datasets.stack": False})
    assert [ds.attrs["name"] for ds in ana.datasets] == ["obs-1", "obs-2", "obs-3"]


def _spec(env, key):
    return spec_from_config(env.config({key: COMPLETE[key]}))


def eff_geom(key, check):
    return lambda env, mp: check(_spec(env, key))


def eff_offset_max(env, mp):
    assert _spec(env, "datasets.geom.selection.offset_max").cutout_width == pytest.approx(3.0)


def eff_map_selection(env, mp):
    ds = env.analysis({"datasets.map_selection": ["counts", "exposure", "background"]}).datasets[0]
    assert {"counts", "exposure", "background"} <= set(ds.data_vars)
    assert "psf" not in ds and "edisp" not in ds


def _safe_sums(ds):
    m = ds["mask_safe"].values.astype(bool)
    return float(ds["counts"].values[m].sum()), float(ds["background"].values[m].sum())


def eff_background_method(env, mp):
    plain = env.analysis({"datasets.stack": False})
    fov = env.analysis({"datasets.stack": False, "datasets.background.method": "fov_background"})
    for p, f in zip(plain.datasets, fov.datasets):
        n, b0 = _safe_sums(p)
        _, b1 = _safe_sums(f)
        assert float(f["background_norm"]) == pytest.approx(n / b0, rel=1e-12)
        assert b1 == pytest.approx(n, rel=1e-9)                 # the normalised background predicts the counts
    with pytest.raises(ConfigError, match="datasets.background.method.*'ring' is not supported"):
        env.analysis({"datasets.background.method": "ring"}, reduce=False)


def eff_background_exclusion(env, mp):
    from gcxr.background import exclusion_mask_from_circles, write_exclusion_mask
    spec = spec_from_config(env.config())
    keep = exclusion_mask_from_circles(spec.geom, [(359.94, -0.04, 0.4)])
    write_exclusion_mask(env.tmp / "exclusion.fits", spec.geom, keep)
    base = {"datasets.stack": False, "datasets.background.method": "fov_background"}
    plain = env.analysis({"datasets.stack": False})
    excl = env.analysis(base | {"datasets.background.exclusion": "{tmp}/exclusion.fits"})
    for p, e in zip(plain.datasets, excl.datasets):
        ys = np.searchsorted(spec.geom.lat, p["lat"].values)     # the run's cutout in the grid
        xs = np.nonzero(np.isin(np.round(spec.geom.lon, 9), np.round(p["lon"].values, 9)))[0]
        k = keep[np.ix_(ys, xs)][None]
        m = p["mask_safe"].values.astype(bool) & k
        expected = p["counts"].values[m].sum() / p["background"].values[m].sum()
        assert float(e["background_norm"]) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ConfigError, match="datasets.background.exclusion.*only with method: fov_background"):
        env.analysis({"datasets.background.exclusion": "{tmp}/exclusion.fits"}, reduce=False)


def eff_background_parameters(env, mp):
    base = {"datasets.stack": False, "datasets.background.method": "fov_background"}
    scale = env.analysis(base)
    fit = env.analysis(base | {"datasets.background.parameters": {"method": "fit"}})
    for s, f in zip(scale.datasets, fit.datasets):
        assert float(f["background_norm"]) == float(s["background_norm"])
    for name in ("min_counts", "min_npred_background"):        # requirement not met: the run's safe mask is cleared
        ana = env.analysis(base | {"datasets.background.parameters": {name: 1e9}})
        assert not any(ds["mask_safe"].values.any() for ds in ana.datasets)
    with pytest.raises(ConfigError, match="datasets.background.parameters.foo"):
        env.analysis(base | {"datasets.background.parameters": {"foo": 1}}, reduce=False)


def eff_safe_mask_methods(env, mp):
    """Each energy-threshold method removes the lowest reco bins and nothing else (their thresholds
    against gammapy: tests/test_safe_mask.py)."""
    ref = env.analysis({"datasets.stack": False, "datasets.safe_mask.methods": ["offset-max"]}).datasets[0]
    for method in ("aeff-max", "edisp-bias"):
        ds = env.analysis({"datasets.stack": False,
                           "datasets.safe_mask.methods": ["offset-max", method]}).datasets[0]
        m = ds["mask_safe"].values
        kept = m.any(axis=(1, 2))
        cut = int(np.argmax(kept))
        assert 0 < cut < m.shape[0] and not kept[:cut].any(), method
        np.testing.assert_array_equal(m[cut:], ref["mask_safe"].values[cut:])


def eff_safe_mask_parameters(env, mp):
    from gcxr.coords import separation_deg
    ds = env.analysis({"datasets.stack": False, "datasets.safe_mask.methods": ["offset-max"],
                       "datasets.safe_mask.parameters": {"offset_max": "1 deg"}}).datasets[0]
    lon, lat = np.meshgrid(ds["lon"].values, ds["lat"].values)
    sep = separation_deg(lon, lat, 0.0, 0.0)
    img = ds["mask_safe"].values.any(axis=0)
    assert not img[sep > 1.0 + 1e-3].any() and img[sep < 0.95].all()
    spec = spec_from_config(env.config({"datasets.safe_mask.parameters": {"aeff_percent": 20, "bias_percent": 5,
                                                                           "fixed_offset": "0.5 deg"}}))
    assert (spec.aeff_percent, spec.bias_percent, spec.fixed_offset) == (20.0, 5.0, 0.5)
    with pytest.raises(ConfigError, match="datasets.safe_mask.parameters.position"):
        spec_from_config(env.config({"datasets.safe_mask.parameters": {"position": "0 deg, 0 deg"}}))
    with pytest.raises(ConfigError, match="datasets.safe_mask.parameters.irfs.*'DL3'"):
        spec_from_config(env.config({"datasets.safe_mask.parameters": {"irfs": "DL3"}}))


# ------------------------------------------------------------------ effects: fit and estimators
def eff_fit_range(env, mp):
    ds = env.analysis({"fit.fit_range.min": "1 TeV", "fit.fit_range.max": "3.1622776601683795 TeV"}).datasets[0]
    keep = ds["mask_fit"].values
    keep = keep.any(axis=(1, 2)) if keep.ndim == 3 else keep
    np.testing.assert_array_equal(keep, [False, False, True, False])


def _flux_points(env, changes):
    ana = env.analysis({"flux_points.source": "src"} | changes)
    ana.set_models(env.models())
    return ana.get_flux_points()


def eff_flux_points_energy(env, mp):
    fp = _flux_points(env, {k: COMPLETE[k] for k in ("flux_points.energy.min", "flux_points.energy.max",
                                                      "flux_points.energy.nbins")})
    np.testing.assert_allclose(fp["energy_bounds"].values.ravel()[[0, 1, 3]], [1, np.sqrt(10), 10], rtol=1e-6)


def eff_flux_points_source(env, mp):
    axis = {"flux_points.energy.min": "0.1 TeV", "flux_points.energy.max": "10 TeV", "flux_points.energy.nbins": 2}
    fp = _flux_points(env, axis | {"flux_points.source": "src"})
    assert fp.sizes["energy"] == 2 and np.isfinite(fp["norm"].values).all()
    with pytest.raises(KeyError, match="nope"):
        _flux_points(env, axis | {"flux_points.source": "nope"})


def eff_flux_points_parameters(env, mp):
    axis = {"flux_points.energy.min": "0.1 TeV", "flux_points.energy.max": "10 TeV", "flux_points.energy.nbins": 2}
    ul2 = _flux_points(env, axis)["norm_ul"].values
    ul3 = _flux_points(env, axis | {"flux_points.parameters": {"n_sigma_ul": 3}})["norm_ul"].values
    assert np.all(ul3 > ul2)
    with pytest.raises(ConfigError, match="flux_points.parameters.scan"):
        env.config({"flux_points.parameters": {"scan": 1}}) and check_supported(
            env.config({"flux_points.parameters": {"scan": 1}}))


def eff_excess_radius(env, mp):
    small = env.analysis()
    big = env.analysis({"excess_map.correlation_radius": "0.3 deg"})
    a, b = small.get_excess_map(), big.get_excess_map()
    # a top-hat of 0.3 deg gathers up to (0.3 / 0.1)^2 times the counts of one of 0.1 deg
    ratio = float(b["counts"].sum()) / float(a["counts"].sum())
    assert 4 < ratio < 9


def eff_excess_edges(env, mp):
    ana = env.analysis({k: COMPLETE[k] for k in ("excess_map.energy_edges.min", "excess_map.energy_edges.max",
                                                  "excess_map.energy_edges.nbins")})
    assert ana.get_excess_map().sizes["band"] == 2
    assert env.analysis().get_excess_map().sizes["band"] == 1      # default: one band over the axis


def eff_metadata(key):
    def check(env, mp):
        config = env.config({key: COMPLETE[key]})
        back = AnalysisConfig.from_yaml(config.to_yaml())
        assert back == config and str(COMPLETE[key])[:10] in config.to_yaml()
    return check


EFFECTS = {
    "general.log.level": eff_log_level,
    "general.log.filename": eff_log_filename,
    "general.log.filemode": eff_log_filemode,
    "general.log.format": eff_log_format,
    "general.log.datefmt": eff_log_datefmt,
    "general.outdir": eff_outdir,
    "general.n_jobs": eff_n_jobs,
    "general.datasets_file": eff_datasets_file,
    "general.models_file": eff_models_file,
    "observations.datastore": eff_datastore,
    "observations.obs_ids": eff_obs_ids,
    "observations.obs_file": eff_obs_file,
    "observations.obs_cone.frame": eff_cone_frame,
    "observations.obs_cone.lon": eff_cone_lon,
    "observations.obs_cone.lat": eff_cone_lat,
    "observations.obs_cone.radius": eff_cone_radius,
    "observations.obs_time.start": eff_obs_time_start,
    "observations.obs_time.stop": eff_obs_time_stop,
    "observations.required_irf": eff_required_irf,
    "datasets.type": eff_type,
    "datasets.stack": eff_stack,
    "datasets.geom.wcs.skydir.frame": lambda env, mp: (
        _check_frame(spec_from_config(env.config({"datasets.geom.wcs.skydir.frame": "icrs"})))),
    "datasets.geom.wcs.skydir.lon": eff_geom("datasets.geom.wcs.skydir.lon",
                                             lambda s: _approx(s.geom.center[0], 0.3)),
    "datasets.geom.wcs.skydir.lat": eff_geom("datasets.geom.wcs.skydir.lat",
                                             lambda s: _approx(s.geom.center[1], 0.2)),
    "datasets.geom.wcs.binsize": eff_geom("datasets.geom.wcs.binsize", lambda s: _approx(s.geom.binsz, 0.05)),
    "datasets.geom.wcs.width.width": eff_geom("datasets.geom.wcs.width.width", lambda s: _equal(s.geom.nx, 20)),
    "datasets.geom.wcs.width.height": eff_geom("datasets.geom.wcs.width.height", lambda s: _equal(s.geom.ny, 15)),
    "datasets.geom.wcs.binsize_irf": eff_geom("datasets.geom.wcs.binsize_irf", lambda s: _approx(s.binsz_irf, 0.25)),
    "datasets.geom.selection.offset_max": eff_offset_max,
    "datasets.geom.axes.energy.min": eff_geom("datasets.geom.axes.energy.min",
                                              lambda s: _approx(s.energy.edges[0], 0.2)),
    "datasets.geom.axes.energy.max": eff_geom("datasets.geom.axes.energy.max",
                                              lambda s: _approx(s.energy.edges[-1], 20)),
    "datasets.geom.axes.energy.nbins": eff_geom("datasets.geom.axes.energy.nbins", lambda s: _equal(s.energy.nbin, 6)),
    "datasets.geom.axes.energy_true.min": eff_geom("datasets.geom.axes.energy_true.min",
                                                   lambda s: _approx(s.energy_true.edges[0], 0.1)),
    "datasets.geom.axes.energy_true.max": eff_geom("datasets.geom.axes.energy_true.max",
                                                   lambda s: _approx(s.energy_true.edges[-1], 30)),
    "datasets.geom.axes.energy_true.nbins": eff_geom("datasets.geom.axes.energy_true.nbins",
                                                     lambda s: _equal(s.energy_true.nbin, 9)),
    "datasets.map_selection": eff_map_selection,
    "datasets.background.method": eff_background_method,
    "datasets.background.exclusion": eff_background_exclusion,
    "datasets.background.parameters": eff_background_parameters,
    "datasets.safe_mask.methods": eff_safe_mask_methods,
    "datasets.safe_mask.parameters": eff_safe_mask_parameters,
    "fit.fit_range.min": eff_fit_range,
    "fit.fit_range.max": eff_fit_range,
    "flux_points.energy.min": eff_flux_points_energy,
    "flux_points.energy.max": eff_flux_points_energy,
    "flux_points.energy.nbins": eff_flux_points_energy,
    "flux_points.source": eff_flux_points_source,
    "flux_points.parameters": eff_flux_points_parameters,
    "excess_map.correlation_radius": eff_excess_radius,
    "excess_map.energy_edges.min": eff_excess_edges,
    "excess_map.energy_edges.max": eff_excess_edges,
    "excess_map.energy_edges.nbins": eff_excess_edges,
    "metadata.creator": eff_metadata("metadata.creator"),
    "metadata.date": eff_metadata("metadata.date"),
    "metadata.origin": eff_metadata("metadata.origin"),
}


def _approx(value, expected):
    assert value == pytest.approx(expected, abs=1e-9)


def _equal(value, expected):
    assert value == expected


def _check_frame(spec):
    assert spec.geom.frame == "icrs"


@pytest.mark.parametrize("parameters,key", [
    ({"aeff_percent": 500}, "datasets.safe_mask.parameters.aeff_percent"),
    ({"aeff_percent": "ten"}, "datasets.safe_mask.parameters.aeff_percent"),
    ({"bias_percent": -1}, "datasets.safe_mask.parameters.bias_percent"),
    ({"offset_max": "abc"}, "datasets.safe_mask.parameters.offset_max"),
    ({"offset_max": 2.5}, "datasets.safe_mask.parameters.offset_max"),          # no unit
    ({"offset_max": "-1 deg"}, "datasets.safe_mask.parameters.offset_max"),
    ({"fixed_offset": "1 TeV"}, "datasets.safe_mask.parameters.fixed_offset"),
    ({"bogus": 1}, "datasets.safe_mask.parameters.bogus"),
])
def test_bad_safe_mask_parameters_are_named(env, parameters, key):
    with pytest.raises(ConfigError) as err:
        spec_from_config(env.config({"datasets.safe_mask.parameters": parameters}))
    assert err.value.paths == [key]
