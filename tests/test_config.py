"""Tests for gcxr.config (the gammapy AnalysisConfig YAML schema)."""

import os
import pickle
import sys
from pathlib import Path

import astropy.units as u
import pytest
from astropy.time import Time

REPO = Path(__file__).resolve().parents[1]
try:  # the package may not be installed into the venv yet
    import gcxr.config  # noqa: F401
except ModuleNotFoundError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(REPO))

from gcxr.config import (  # noqa: E402
    DATA_ENV_VARS,
    AnalysisConfig,
    ConfigError,
    EnergyAxisConfig,
    WcsConfig,
    expand_path,
)

from conftest import skip_or_fail  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference" / "gammapy-2.1-cta1dc-gc"
REF_MAIN = REFERENCE / "analysis_config.yaml"
REF_FIT = REFERENCE / "analysis_config_stacked_fit.yaml"


def _reference(path: Path) -> Path:
    if not path.is_file():
        skip_or_fail(f"reference file {path} not available")
    return path


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        AnalysisConfig.from_yaml(text)
    return info.value


# ----------------------------------------------------------------------------- reference files
def test_reference_config_loads():
    config = AnalysisConfig.read(_reference(REF_MAIN))
    wcs = config.datasets.geom.wcs
    assert isinstance(wcs.binsize, u.Quantity)
    assert wcs.binsize == 0.02 * u.deg
    assert wcs.binsize_irf == 0.2 * u.deg
    assert wcs.skydir.frame == "galactic"
    assert wcs.skydir.lon == 0 * u.deg and wcs.skydir.lat == 0 * u.deg
    assert wcs.width.width == 10 * u.deg and wcs.width.height == 8 * u.deg
    assert config.observations.obs_ids == [110380, 111140, 111159]
    assert config.observations.datastore == "$GAMMAPY_DATA/cta-1dc/index/gps"
    assert config.datasets.type == "3d"
    assert config.datasets.stack is True
    assert config.datasets.geom.selection.offset_max == 3.5 * u.deg
    axes = config.datasets.geom.axes
    assert axes.energy.nbins == 10 and axes.energy_true.nbins == 14
    assert axes.energy.min == 0.1 * u.TeV and axes.energy.max == 10 * u.TeV
    assert axes.energy_true.min == 0.08 * u.TeV and axes.energy_true.max == 12 * u.TeV
    assert axes.energy.min.unit.is_equivalent(u.erg)
    assert config.datasets.safe_mask.methods == ["aeff-default", "offset-max"]
    assert config.datasets.background.method is None
    assert config.excess_map.correlation_radius == 0.1 * u.deg
    assert config.fit.fit_range.min is None
    assert config.metadata.creator == "Gammapy 2.1"


def test_reference_stacked_fit_config_loads():
    config = AnalysisConfig.read(_reference(REF_FIT))
    assert config.fit.fit_range.min == 0.3 * u.TeV
    assert config.fit.fit_range.max is None
    assert config.datasets.geom.axes.energy.nbins == 10


@pytest.mark.parametrize("path", [REF_MAIN, REF_FIT], ids=["main", "stacked_fit"])
def test_reference_files_rewrite_identically(path):
    text = _reference(path).read_text()
    config = AnalysisConfig.from_yaml(text)
    assert config.to_yaml() == text
    assert AnalysisConfig.from_yaml(config.to_yaml()) == config


# ----------------------------------------------------------------------------- defaults
def test_defaults_match_gammapy_schema():
    config = AnalysisConfig()
    assert config.datasets.type == "1d"
    assert config.datasets.geom.selection.offset_max == 2.5 * u.deg
    assert config.datasets.geom.wcs.binsize == 0.02 * u.deg
    assert config.datasets.geom.wcs.binsize_irf == 0.2 * u.deg
    assert config.datasets.geom.wcs.width.width == 5 * u.deg
    assert config.datasets.safe_mask.methods == ["aeff-default"]
    assert config.datasets.map_selection == ["counts", "exposure", "background", "psf", "edisp"]
    energy, energy_true = config.datasets.geom.axes.energy, config.datasets.geom.axes.energy_true
    assert (energy.min, energy.max, energy.nbins) == (1 * u.TeV, 10 * u.TeV, 5)
    assert (energy_true.min, energy_true.max, energy_true.nbins) == (0.5 * u.TeV, 20 * u.TeV, 16)
    assert config.observations.required_irf == ["aeff", "edisp", "psf", "bkg"]
    assert config.flux_points.parameters == {"selection_optional": "all"}
    assert config.general.log.level == "info"
    assert config.general.n_jobs == 1


def test_partial_config_gets_defaults_and_null_sections():
    config = AnalysisConfig.from_yaml("datasets:\n  type: 3d\nfit:\nexcess_map:\n  parameters:\n")
    assert config.datasets.type == "3d"
    assert config.datasets.geom.selection.offset_max == 2.5 * u.deg
    assert config.fit.fit_range.min is None
    assert config.excess_map.parameters == {}
    assert AnalysisConfig.from_yaml("") == AnalysisConfig()


def test_defaults_are_not_shared_between_instances():
    a, b = AnalysisConfig(), AnalysisConfig()
    a.observations.obs_ids.append(1)
    a.datasets.safe_mask.methods.append("offset-max")
    assert b.observations.obs_ids == []
    assert b.datasets.safe_mask.methods == ["aeff-default"]


# ----------------------------------------------------------------------------- round trip
def test_round_trip_yaml():
    config = AnalysisConfig()
    config.datasets.type = "3d"
    config.observations.obs_ids = [1, 2]
    config.observations.obs_cone = {"frame": "icrs", "lon": "83.633 deg", "lat": "22.014 deg", "radius": "5 deg"}
    config.observations.obs_time = {"start": "2021-03-01", "stop": "2021-03-02T12:00:00.123456"}
    config.light_curve.time_intervals = {"start": ["2021-03-01", "2021-03-02"], "stop": ["2021-03-02", "2021-03-03"]}
    config.fit.fit_range.min = 300 * u.GeV
    config.datasets.background.method = "ring"
    config.datasets.background.parameters = {"r_in": 0.7 * u.deg, "width": "0.3 deg"}
    assert config.datasets.background.parameters["r_in"] == "0.7 deg"  # stored YAML-plain
    text = config.to_yaml()
    assert "binsize: 0.02 deg" in text
    assert "min: 300.0 GeV" in text
    assert "r_in: 0.7 deg" in text
    back = AnalysisConfig.from_yaml(text)
    assert back == config
    assert back.to_yaml() == text
    assert isinstance(back.observations.obs_time.start, Time)
    assert back.observations.obs_time.stop.isot == "2021-03-02T12:00:00.123"
    assert back.light_curve.time_intervals.start.shape == (2,)


def test_equality_detects_changes_and_model_copy():
    config = AnalysisConfig()
    copy = config.model_copy(deep=True)
    assert copy == config
    assert copy.datasets.geom.wcs.binsize is not config.datasets.geom.wcs.binsize
    copy.datasets.geom.wcs.binsize = "0.05 deg"
    assert copy != config
    assert config.datasets.geom.wcs.binsize == 0.02 * u.deg


def test_update_overlays_only_given_keys():
    config = AnalysisConfig.from_yaml("datasets: {type: 3d}\nobservations: {obs_ids: [1]}")
    new = config.update("datasets: {geom: {wcs: {binsize: 0.1 deg}}}")
    assert new.datasets.geom.wcs.binsize == 0.1 * u.deg
    assert new.datasets.type == "3d"
    assert new.observations.obs_ids == [1]
    assert config.datasets.geom.wcs.binsize == 0.02 * u.deg


# ----------------------------------------------------------------------------- errors
def test_unknown_key_names_full_path_and_valid_keys():
    err = _error("datasets:\n  geom:\n    wcs:\n      binsz: 0.02 deg\n")
    assert isinstance(err, ValueError)
    assert err.paths == ["datasets.geom.wcs.binsz"]
    message = str(err)
    assert "datasets.geom.wcs.binsz" in message
    for key in ("skydir", "binsize", "width", "binsize_irf"):
        assert key in message
    assert "did you mean 'binsize'" in message


def test_unknown_top_level_key():
    err = _error("general: {}\nfitt: {}\n")
    assert err.paths == ["fitt"]
    assert "light_curve" in str(err)


@pytest.mark.parametrize(
    "text, path, fragment",
    [
        ("datasets: {type: 4d}", "datasets.type", "'1d' or '3d'"),
        ("datasets: {background: {method: rings}}", "datasets.background.method", "'ring'"),
        ("datasets: {safe_mask: {methods: [aeff-default, bogus]}}", "datasets.safe_mask.methods[1]", "'bkg-peak'"),
        ("datasets: {map_selection: [counts, flux]}", "datasets.map_selection[1]", "'exposure'"),
        ("datasets: {geom: {wcs: {skydir: {frame: fk5}}}}", "datasets.geom.wcs.skydir.frame", "'galactic'"),
        ("observations: {required_irf: [aeff, foo]}", "observations.required_irf[1]", "'edisp'"),
        ("general: {log: {level: loud}}", "general.log.level", "'debug'"),
    ],
)
def test_bad_enum_value(text, path, fragment):
    err = _error(text)
    assert err.paths == [path]
    assert path in str(err) and fragment in str(err)


@pytest.mark.parametrize(
    "text, path, fragment",
    [
        ("datasets: {geom: {wcs: {binsize: 3 TeV}}}", "datasets.geom.wcs.binsize", "not an angle"),
        ("datasets: {geom: {wcs: {binsize: 0.02 foo}}}", "datasets.geom.wcs.binsize", "cannot parse"),
        ("datasets: {geom: {wcs: {binsize: abc}}}", "datasets.geom.wcs.binsize", "cannot parse"),
        ("datasets: {geom: {wcs: {binsize: 0.02}}}", "datasets.geom.wcs.binsize", "no unit"),
        ("datasets: {geom: {wcs: {binsize: -0.02 deg}}}", "datasets.geom.wcs.binsize", "positive"),
        ("datasets: {geom: {selection: {offset_max: 2 m}}}", "datasets.geom.selection.offset_max", "angle"),
        ("datasets: {geom: {axes: {energy: {min: 1 deg}}}}", "datasets.geom.axes.energy.min", "not an energy"),
        ("fit: {fit_range: {max: 1 TeV, min: 10 TeV}}", "fit.fit_range", "below"),
        ("observations: {obs_cone: {lat: 95 deg}}", "observations.obs_cone.lat", "90"),
        ("observations: {obs_time: {start: yesterday}}", "observations.obs_time.start", "ISO"),
    ],
)
def test_bad_quantity_or_time(text, path, fragment):
    err = _error(text)
    assert err.paths == [path]
    assert fragment in str(err)


def test_negative_nbins():
    err = _error("datasets: {geom: {axes: {energy_true: {nbins: -3}}}}")
    assert err.paths == ["datasets.geom.axes.energy_true.nbins"]
    assert "greater than 0" in str(err)


def test_plain_numbers_and_strings_accepted_where_sensible():
    config = AnalysisConfig.from_yaml("datasets: {geom: {axes: {energy: {nbins: '12'}}}}\ngeneral: {log: {level: WARNING}}")
    assert config.datasets.geom.axes.energy.nbins == 12
    assert config.general.log.level == "warning"


def test_several_errors_reported_together():
    err = _error("datasets: {type: 2d, geom: {wcs: {binsize: 1 TeV}}}")
    assert sorted(err.paths) == ["datasets.geom.wcs.binsize", "datasets.type"]
    assert "2 errors" in str(err)


def test_yaml_problems_are_config_errors():
    assert "syntax" in str(_error("datasets: [\n"))
    assert "duplicate key 'binsize'" in str(_error("datasets:\n  geom:\n    wcs:\n      binsize: 1 deg\n      binsize: 2 deg\n"))
    assert _error("- 1\n- 2\n").paths == ["<root>"]
    assert _error("datasets: 5").paths == ["datasets"]


def test_read_error_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("datasets: {type: 4d}\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        AnalysisConfig.read(path)


def test_assignment_is_validated_with_full_path():
    config = AnalysisConfig()
    with pytest.raises(ConfigError, match=r"datasets\.type"):
        config.datasets.type = "4d"
    with pytest.raises(ConfigError, match=r"datasets\.geom\.wcs\.binsz.*binsize_irf"):
        config.datasets.geom.wcs.binsz = "0.1 deg"
    with pytest.raises(ConfigError, match=r"datasets\.geom\.axes\.energy_true\.nbins"):
        config.datasets.geom.axes.energy_true.nbins = 0
    with pytest.raises(ConfigError, match=r"fit\.fit_range\.min"):
        config.fit.fit_range.min = "3 deg"
    # a failed cross-field check leaves the old value in place
    with pytest.raises(ConfigError, match=r"datasets\.geom\.axes\.energy"):
        config.datasets.geom.axes.energy.min = "20 TeV"
    assert config.datasets.geom.axes.energy.min == 1 * u.TeV
    config.datasets.geom = {"wcs": {"binsize": "0.1 deg"}}
    with pytest.raises(ConfigError, match=r"datasets\.geom\.wcs\.binsize:"):
        config.datasets.geom.wcs.binsize = "1 TeV"
    config.datasets.geom.wcs.binsize = 6 * u.arcmin
    assert config.datasets.geom.wcs.binsize.to_value(u.deg) == pytest.approx(0.1)


def test_direct_section_construction_errors():
    with pytest.raises(ConfigError, match=r"datasets\.geom\.wcs\.binsz"):
        WcsConfig(binsz="0.1 deg")
    with pytest.raises(ConfigError, match="nbins"):
        EnergyAxisConfig(nbins=-1)


def test_config_error_pickles():
    err = _error("datasets: {type: 4d}")
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err) and clone.errors == err.errors


# ----------------------------------------------------------------------------- paths
@pytest.fixture
def no_data_env(monkeypatch):
    for name in DATA_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_expand_path_variables_and_home(no_data_env, tmp_path):
    no_data_env.setenv("MY_ROOT", str(tmp_path))
    no_data_env.setenv("HOME", str(tmp_path / "home"))
    assert expand_path("$MY_ROOT/a/b") == tmp_path / "a" / "b"
    assert expand_path("${MY_ROOT}/x.yaml") == tmp_path / "x.yaml"
    assert expand_path("~/data") == tmp_path / "home" / "data"
    assert expand_path(Path("plain/rel")) == Path("plain/rel")
    assert expand_path("cost$") == Path("cost$")


@pytest.mark.parametrize("written, available", [("GAMMAPY_DATA", "GCXR_DATA"), ("GCXR_DATA", "GAMMAPY_DATA")])
def test_data_variables_are_interchangeable(no_data_env, tmp_path, written, available):
    no_data_env.setenv(available, str(tmp_path))
    config = AnalysisConfig.from_yaml(f"observations: {{datastore: ${written}/cta-1dc/index/gps}}")
    assert config.observations.datastore == f"${written}/cta-1dc/index/gps"  # raw string kept
    assert config.observations.datastore_path == tmp_path / "cta-1dc" / "index" / "gps"
    assert expand_path(f"${{{written}}}/x") == tmp_path / "x"


def test_data_variable_prefers_the_one_named(no_data_env, tmp_path):
    no_data_env.setenv("GAMMAPY_DATA", str(tmp_path / "g"))
    no_data_env.setenv("GCXR_DATA", str(tmp_path / "c"))
    assert expand_path("$GCXR_DATA") == tmp_path / "c"
    assert expand_path("$GAMMAPY_DATA") == tmp_path / "g"


def test_reference_datastore_resolves_with_gcxr_data(no_data_env, tmp_path):
    config = AnalysisConfig.read(_reference(REF_MAIN))
    no_data_env.setenv("GCXR_DATA", str(tmp_path))
    assert config.observations.datastore_path == tmp_path / "cta-1dc" / "index" / "gps"


def test_unset_variable_error_names_variable_and_key(no_data_env):
    no_data_env.delenv("GCXR_NOPE_XYZ", raising=False)
    config = AnalysisConfig.from_yaml(
        "observations:\n  datastore: $GAMMAPY_DATA/x\n  obs_file: ${GCXR_NOPE_XYZ}/obs.csv\n"
    )
    with pytest.raises(ConfigError, match=r"GAMMAPY_DATA.*observations\.datastore|observations\.datastore.*GAMMAPY_DATA") as info:
        config.observations.datastore_path
    assert "GCXR_DATA" in str(info.value)
    with pytest.raises(ConfigError, match=r"GCXR_NOPE_XYZ") as info:
        config.observations.obs_file_path
    assert "observations.obs_file" in str(info.value)


def test_other_path_fields_expand(no_data_env, tmp_path):
    no_data_env.setenv("GCXR_DATA", str(tmp_path))
    config = AnalysisConfig.from_yaml(
        "general:\n  outdir: $GCXR_DATA/out\n  models_file: ${GAMMAPY_DATA}/m.yaml\n"
        "datasets: {background: {exclusion: '$GCXR_DATA/excl.fits'}}"
    )
    assert config.general.outdir_path == tmp_path / "out"
    assert config.general.models_file_path == tmp_path / "m.yaml"
    assert config.general.datasets_file_path is None
    assert config.datasets.background.exclusion_path == tmp_path / "excl.fits"
    config.general.outdir = tmp_path / "other"  # Path objects are stored as strings
    assert config.general.outdir == str(tmp_path / "other")


# ----------------------------------------------------------------------------- writing
def test_write_is_atomic_and_refuses_overwrite(tmp_path):
    config = AnalysisConfig()
    path = tmp_path / "sub" / "config.yaml"
    assert config.write(path) == path
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]
    assert AnalysisConfig.read(path) == config
    mode = path.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask

    config.datasets.type = "3d"
    with pytest.raises(FileExistsError, match="config.yaml"):
        config.write(path)
    assert AnalysisConfig.read(path).datasets.type == "1d"  # untouched
    config.write(path, overwrite=True)
    assert AnalysisConfig.read(path).datasets.type == "3d"
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.yaml"]


def test_read_write_read_round_trip_of_reference(tmp_path):
    config = AnalysisConfig.read(_reference(REF_FIT))
    out = tmp_path / "copy.yaml"
    config.write(out)
    assert AnalysisConfig.read(out) == config
    assert out.read_text() == REF_FIT.read_text()


def test_json_schema_and_str():
    schema = AnalysisConfig.model_json_schema()
    assert "datasets" in schema["properties"]
    assert str(AnalysisConfig()).startswith("AnalysisConfig\n")
