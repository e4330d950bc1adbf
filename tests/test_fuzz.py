"""Fuzz tests (hypothesis) over analysis configs and models YAML files built from their schemas.

The contract (issue 14): every input either runs or fails with one of gcxr's own error types
(``ConfigError``, ``ModelError``, ``DataStoreError``), never with a bare traceback (``TypeError``,
``KeyError``, ``AttributeError``, a leaking pydantic ``ValidationError`` ...), and no single input
takes longer than the hypothesis ``deadline`` set below.  What is fuzzed and the bounds are recorded
in docs/robustness.md ("Fuzzing").

* Configs: every leaf of ``AnalysisConfig``'s pydantic schema gets a valid value drawn from its
  annotation (angles, latitudes, energies, times, literals, lists of literals, numbers, paths,
  free-form parameters); then mutations replace values by wrong types, out-of-range numbers,
  non-finite numbers, bad or non-physical units, delete keys, or add unknown keys.  Each document
  is validated, written back and re-read, and turned into the reduction spec.  A small, bounded
  subset runs a real ``Analysis`` up to built datasets on a tiny simulated store.
* Models: components of every spectral and spatial type of the registries, with the parameter
  names, values, units (canonical or convertible), bounds and frames of the schema, mutated the
  same way (unknown types and parameters, bad units, garbage values and structure); plus YAML text
  that is not a models file at all.  Each document is read, written back and re-read, and its
  models evaluated.
"""
from __future__ import annotations

import copy
import datetime
import math
import typing
import warnings

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from conftest import SMALL_STORE_CONFIG
from gcxr.analysis import Analysis
from gcxr.plan import spec_from_config
from gcxr.config import AnalysisConfig, ConfigError
from gcxr.datastore import DataStoreError
from gcxr.models import SPATIAL_MODELS, SPECTRAL_MODELS, ModelError, Models

#: gcxr's own error types: the only exceptions a fuzzed input may raise, besides a
#: ``FileNotFoundError`` that names the missing file (a template named by a models file).
OWN_ERRORS = (ConfigError, ModelError, DataStoreError, FileNotFoundError)

#: The bound on one input (validation, round trip and spec; models read, written and evaluated).
PARSE_DEADLINE = datetime.timedelta(seconds=2)
#: The bound on one input of the ``Analysis`` subset (observations + datasets on a tiny store).
ANALYSIS_DEADLINE = datetime.timedelta(seconds=15)

FUZZ = settings(max_examples=120, deadline=PARSE_DEADLINE, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _own_error_or_nothing(fn, *args):
    """Call ``fn``; return ``(result, None)`` or ``(None, error)`` for gcxr's own errors.

    Any other exception propagates and fails the test with its traceback."""
    try:
        return fn(*args), None
    except OWN_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        if isinstance(exc, FileNotFoundError):
            assert "not found" in str(exc) and exc.__class__ is FileNotFoundError, exc
        return None, exc


# --------------------------------------------------------------------------- values
garbage = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["1 TeV", "0.1 deg", "-3 deg", "1e400 deg", "5 m", "1/s", "nan deg", "inf TeV",
                     "deg", "1 foo", "1 TeV TeV", "2021-01-01", "0 deg", "1e-300 deg", "abc"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
finite = st.floats(-1e6, 1e6, allow_nan=False)


def quantity_text(units: list[str], lo: float, hi: float) -> st.SearchStrategy[str]:
    """``'<number> <unit>'`` strings with the number in [lo, hi]."""
    return st.builds(lambda v, unit: f"{v:.6g} {unit}", st.floats(lo, hi), st.sampled_from(units))


angle = quantity_text(["deg", "rad", "arcmin"], -360.0, 360.0)
latitude = quantity_text(["deg"], -90.0, 90.0)
positive_angle = quantity_text(["deg", "arcmin"], 0.01, 5.0)
energy = quantity_text(["TeV", "GeV", "MeV"], 0.01, 100.0)
wrong_unit = quantity_text(["TeV", "m", "s", "sr", "deg2", "1/s", "cm-2 s-1 TeV-1", "", "foo"], -10.0, 10.0)
time_text = st.builds(lambda d: d.isoformat(), st.datetimes(datetime.datetime(2000, 1, 1),
                                                            datetime.datetime(2025, 1, 1)))
path_text = st.sampled_from(["$GCXR_DATA/cta-1dc/index/gps", "~/data", ".", "out", "${UNSET_GCXR_FUZZ}/x",
                             "$", "a b/c.yaml"])


def leaf_strategy(name: str, annotation: typing.Any) -> st.SearchStrategy:
    """A valid value for a leaf of the config schema, from its annotation and name."""
    text = str(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if "Literal" in text and origin is list:
        (lit,) = typing.get_args(annotation)
        return st.lists(st.sampled_from(typing.get_args(lit)), max_size=4, unique=True)
    if "Literal" in text:
        lit = annotation if typing.get_origin(annotation) is typing.Literal else args[0]
        return st.sampled_from(typing.get_args(lit))
    if "Angle" in text:
        if name == "lat":
            return latitude
        return positive_angle if name not in ("lon",) else angle
    if "Quantity" in text:
        return energy
    if "Time" in text:
        return time_text
    if origin is dict or text.startswith("dict"):
        return st.dictionaries(st.sampled_from(["offset_max", "aeff_percent", "bias_percent", "n_sigma", "x"]),
                               st.one_of(st.floats(0, 100), positive_angle, st.text(max_size=4)), max_size=2)
    if annotation is bool:
        return st.booleans()
    if "int" in text and "list" in text:
        return st.lists(st.integers(1, 10**6), max_size=3)
    if "int" in text:
        return st.integers(1, 6)
    if name in ("datastore", "outdir", "filename") or "_file" in name or name == "exclusion":
        return path_text
    return st.one_of(st.none(), st.text(max_size=8))


def _section_class(annotation: typing.Any) -> type[BaseModel] | None:
    """The pydantic model inside a (possibly Optional) annotation: a config section."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _section_class(arg)
        if found is not None:
            return found
    return None


def schema_leaves(model=AnalysisConfig, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], typing.Any]]:
    """Every leaf of the (nested pydantic) config schema with its annotation."""
    out = []
    for name, field in model.model_fields.items():
        sub = _section_class(field.annotation)
        if sub is not None:
            out += schema_leaves(sub, prefix + (name,))
        else:
            out.append((prefix + (name,), field.annotation))
    return out


LEAVES = schema_leaves()
SECTIONS = sorted({path[:i] for path, _ in LEAVES for i in range(1, len(path))})


def set_path(doc: dict, path: tuple[str, ...], value: typing.Any) -> None:
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def del_path(doc: dict, path: tuple[str, ...]) -> None:
    node = doc
    for key in path[:-1]:
        node = node.get(key)
        if not isinstance(node, dict):
            return
    node.pop(path[-1], None)


@st.composite
def config_documents(draw) -> dict:
    """A config mapping: a valid base, some schema leaves redrawn, then a few mutations."""
    doc = yaml.safe_load(SMALL_STORE_CONFIG.format(store="$GCXR_DATA/none"))
    for path, annotation in draw(st.lists(st.sampled_from(LEAVES), max_size=6)):
        set_path(doc, path, draw(leaf_strategy(path[-1], annotation)))
    n_mut = draw(st.integers(0, 3))
    for _ in range(n_mut):
        kind = draw(st.sampled_from(["garbage", "wrong_unit", "delete", "unknown_key", "section_garbage"]))
        path = draw(st.sampled_from(LEAVES))[0]
        if kind == "garbage":
            set_path(doc, path, draw(garbage))
        elif kind == "wrong_unit":
            set_path(doc, path, draw(wrong_unit))
        elif kind == "delete":
            del_path(doc, draw(st.sampled_from([path] + SECTIONS)))
        elif kind == "unknown_key":
            typo = path[-1][:-1] + draw(st.sampled_from(["x", "_", "s"]))
            set_path(doc, path[:-1] + (typo,), draw(garbage))
        else:
            set_path(doc, draw(st.sampled_from(SECTIONS)), draw(garbage))
    return doc


# --------------------------------------------------------------------------- configs
@FUZZ
@given(doc=config_documents())
def test_fuzz_config_validates_or_names_the_key(doc):
    config, err = _own_error_or_nothing(AnalysisConfig.from_dict, copy.deepcopy(doc))
    if err is not None:
        assert isinstance(err, ConfigError)
        assert err.paths and all(err.paths), err
        return
    # a valid config survives its own YAML and becomes a reduction spec or a named refusal
    again = AnalysisConfig.from_yaml(config.to_yaml())
    assert again == config
    spec, err = _own_error_or_nothing(spec_from_config, config)
    if err is not None:
        assert isinstance(err, ConfigError) and err.paths, err
    else:
        assert spec.geom.nx >= 1 and spec.geom.ny >= 1
        assert len(spec.energy.edges) == config.datasets.geom.axes.energy.nbins + 1


@FUZZ
@given(data=st.data())
def test_fuzz_config_assignment_validates_or_names_the_key(data):
    """``config.<section>.<key> = value`` is validated as the YAML is: a valid value is stored and
    survives the YAML round trip, anything else is a ConfigError naming the key, and the old value stays."""
    config = AnalysisConfig.from_yaml(SMALL_STORE_CONFIG.format(store="."))
    path, annotation = data.draw(st.sampled_from(LEAVES))
    value = data.draw(st.one_of(leaf_strategy(path[-1], annotation), garbage, wrong_unit))
    section = config
    for key in path[:-1]:
        section = getattr(section, key)
    before = config.to_dict()
    _, err = _own_error_or_nothing(setattr, section, path[-1], value)
    if err is not None:
        assert isinstance(err, ConfigError) and ".".join(path[:-1]) in str(err), (path, value, str(err))
        assert config.to_dict() == before, "a refused assignment changed the config"
        return
    again, err = _own_error_or_nothing(AnalysisConfig.from_yaml, config.to_yaml())
    assert err is None, f"{'.'.join(path)} = {value!r} was accepted but its YAML is refused: {err}"
    assert again == config


@FUZZ
@given(text=st.one_of(st.text(max_size=60),
                      st.sampled_from(["a: [", "- 1\n- 2", "datasets: 3", "&a [*a]", "!!python/object:os.system {}",
                                       "general: {log: {level: loud}}", "a: 1\na: 2", "datasets:\n  geom:\n   wcs: x"])))
def test_fuzz_config_text(text):
    config, err = _own_error_or_nothing(AnalysisConfig.from_yaml, text)
    assert (config is None) != (err is None)


# --------------------------------------------------------------------------- models
def _unique_classes(registry: dict) -> list[type]:
    out: list[type] = []
    for cls in registry.values():
        if cls not in out:
            out.append(cls)
    return out


SPECTRAL = _unique_classes(SPECTRAL_MODELS)
SPATIAL = [c for c in _unique_classes(SPATIAL_MODELS) if c.tag != "TemplateSpatialModel"]
#: Units convertible to each canonical unit (the reader converts them).
CONVERTIBLE = {"TeV": ["TeV", "GeV", "MeV"], "deg": ["deg", "rad", "arcmin"], "TeV-1": ["TeV-1", "GeV-1"],
               "cm-2 s-1 TeV-1": ["cm-2 s-1 TeV-1", "m-2 s-1 GeV-1", "TeV-1 s-1 cm-2"], "": ["", None]}
BAD_UNITS = ["foo", "s", "m", "deg", "TeV", "sr-1", "1/s/TeV/sr"]


@st.composite
def parameter_entries(draw, cls) -> list[dict]:
    entries = []
    for p in draw(st.permutations(cls.default_parameters())):
        if not draw(st.booleans()):
            continue
        entry: dict[str, typing.Any] = {"name": p.name, "value": draw(finite)}
        unit = draw(st.sampled_from(CONVERTIBLE.get(p.unit, [p.unit])))
        if unit is not None:
            entry["unit"] = unit
        if draw(st.booleans()):
            entry["min"] = draw(finite)
        if draw(st.booleans()):
            entry["max"] = draw(finite)
        if draw(st.booleans()):
            entry["frozen"] = draw(st.booleans())
        if draw(st.booleans()):
            entry["error"] = draw(st.floats(0, 10))
        entries.append(entry)
    return entries


@st.composite
def component(draw, index: int) -> dict:
    if draw(st.integers(0, 4)) == 0:
        spec_cls = draw(st.sampled_from([c for c in SPECTRAL if c.is_norm]))
        return {"type": "FoVBackgroundModel", "datasets_names": [f"ds{index}"],
                "spectral": {"type": spec_cls.tag, "parameters": draw(parameter_entries(spec_cls))}}
    spec_cls = draw(st.sampled_from([c for c in SPECTRAL if not c.is_norm]))
    comp = {"name": f"src{index}", "type": "SkyModel",
            "spectral": {"type": draw(st.sampled_from([spec_cls.tag, spec_cls.tag_short])),
                         "parameters": draw(parameter_entries(spec_cls))}}
    if draw(st.integers(0, 9)) == 0:          # a template whose file is missing or not FITS
        comp["spatial"] = {"type": "TemplateSpatialModel", "frame": "galactic", "normalize": draw(st.booleans()),
                           "filename": draw(st.sampled_from(["no_such.fits", "", ".", "$UNSET_GCXR_FUZZ/t.fits"]))}
    elif draw(st.booleans()):
        spat_cls = draw(st.sampled_from(SPATIAL))
        comp["spatial"] = {"type": draw(st.sampled_from([spat_cls.tag, spat_cls.tag_short])),
                           "frame": draw(st.sampled_from(["icrs", "galactic"])),
                           "parameters": draw(parameter_entries(spat_cls))}
    return comp


def _nodes(x, out):
    """Every dict and list inside ``x`` (the places a mutation can hit)."""
    if isinstance(x, (dict, list)):
        out.append(x)
        for v in (x.values() if isinstance(x, dict) else x):
            _nodes(v, out)
    return out


MODEL_KEYS = ["name", "value", "unit", "min", "max", "frozen", "error", "type", "frame", "parameters",
              "datasets_names", "spectral", "spatial", "filename", "components", "metadata", "covariance",
              "temporal", "bogus"]
MODEL_VALUES = st.one_of(garbage, st.sampled_from(BAD_UNITS + ["fk5", "icrs", "PowerLawSpectralModle", "pl",
                                                               "gauss", "SkyModel", "FoVBackgroundModel", "index",
                                                               "lon_0", "sigma", "indx", "no_such.fits"]))


@st.composite
def models_documents(draw) -> dict:
    doc = {"components": [draw(component(i)) for i in range(draw(st.integers(0, 3)))]}
    for _ in range(draw(st.integers(0, 3))):
        nodes = _nodes(doc, [])
        node = draw(st.sampled_from(nodes))
        value = draw(MODEL_VALUES)
        if isinstance(node, dict):
            key = draw(st.sampled_from(list(node) + MODEL_KEYS))
            if draw(st.integers(0, 5)) == 0:
                node.pop(key, None)
            else:
                node[key] = value
        elif node:
            i = draw(st.integers(0, len(node) - 1))
            if draw(st.integers(0, 4)) == 0:
                node.pop(i)
            else:
                node[i] = value
    return doc


def _check_models(models: Models) -> None:
    """Written back and read again, the models are the same; evaluating them raises nothing else."""
    again = Models.from_yaml(models.to_yaml())
    assert again.names == models.names
    for a, b in zip(models.parameters, again.parameters):
        assert a.name == b.name and a.unit == b.unit and a.frozen == b.frozen
        for x, y in ((a.value, b.value), (a.min, b.min), (a.max, b.max)):
            assert math.isclose(x, y, rel_tol=1e-12) or (math.isnan(x) and math.isnan(y)), (a, b)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for m in models.sky_models:
            m.spectral_model.evaluate(np.array([0.1, 1.0, 10.0]))
            if m.spatial_model is not None and m.spatial_model.tag != "PointSpatialModel":
                m.spatial_model.evaluate(np.array([0.0, 0.3]), np.array([0.0, -0.2]))


@FUZZ
@given(doc=models_documents())
def test_fuzz_models_read_or_name_the_component(doc):
    text = yaml.safe_dump(doc, sort_keys=False)
    models, err = _own_error_or_nothing(Models.from_yaml, text)
    if err is not None:
        assert isinstance(err, (ModelError, FileNotFoundError))
        return
    _check_models(models)


@FUZZ
@given(text=st.one_of(st.text(max_size=60),
                      st.sampled_from(["components: 3", "components: [1, 2]", "- a", "components:\n- type: [1]",
                                       "components: []\nmetadata: [1]", "components: [{type: SkyModel}]",
                                       "components: [{type: SkyModel, name: a, spectral: {type: pl, "
                                       "parameters: [{name: index, value: null}]}}]", "{{", "&a [*a, *a]"])))
def test_fuzz_models_text(text):
    models, err = _own_error_or_nothing(Models.from_yaml, text)
    if err is None:
        _check_models(models)


def test_fuzz_found_cases_stay_fixed():
    """Inputs the fuzzer found that used to raise bare exceptions (each now names what is wrong)."""
    base = {"observations": {"datastore": "."}, "datasets": {"type": "3d", "geom": {"wcs": {
        "skydir": {"frame": "galactic", "lon": "0 deg", "lat": "0 deg"}}}}}
    for key, value, expected in [
        (("datasets", "safe_mask", "parameters"), {"aeff_percent": [1]}, "aeff_percent"),
        (("datasets", "safe_mask", "parameters"), {"offset_max": "2021-01-01"}, "offset_max"),
        (("datasets", "safe_mask", "parameters"), {"offset_max": "2 TeV"}, "offset_max"),
        (("datasets", "safe_mask", "parameters"), {"aeff_percent": 500}, "aeff_percent"),
        (("datasets", "geom", "axes", "energy", "nbins"), None, "datasets.geom.axes.energy"),
        (("datasets", "geom", "axes", "energy_true", "min"), None, "datasets.geom.axes.energy_true"),
        (("datasets", "geom", "wcs", "skydir", "lat"), None, "datasets.geom.wcs.skydir"),
        (("datasets", "geom", "wcs", "binsize"), "10 deg", "datasets.geom.wcs"),
        (("datasets", "type"), "1d", "datasets.type"),
    ]:
        doc = copy.deepcopy(base)
        set_path(doc, key, value)
        with pytest.raises(ConfigError) as info:
            spec_from_config(AnalysisConfig.from_dict(doc))
        assert expected in str(info.value), (key, value, str(info.value))
    for text, expected in [
        ("components: [{type: [1]}]", "unknown model type"),
        ("components: []\nmetadata: [1]", "'metadata' must be a mapping"),
        ("components: [{type: SkyModel, name: a, spectral: {type: pl, parameters: [{name: index, value: null}]}}]",
         "needs 'name' and 'value'"),
        ("components: [{type: SkyModel, name: a, spectral: {type: pl, parameters: [{name: index, value: 2, "
         "frozen: 'false'}]}}]", "frozen must be true or false"),
        # found after the robustness branch's min > max check: a max below the default min was read,
        # written, and then refused on reading back
        ("components: [{type: SkyModel, name: a, spectral: {type: pl}, spatial: {type: gauss, frame: icrs, "
         "parameters: [{name: e, value: 0, max: -1}]}}]", r"'e': min \(0\) is above max \(-1\)"),
    ]:
        with pytest.raises(ModelError, match=expected):
            Models.from_yaml(text)


# --------------------------------------------------------------------------- a real Analysis
@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    out = tmp_path_factory.mktemp("fuzz-store")
    simulate_datastore(out, pointings=[(0.0, 0.0)], livetime=120.0, seed=7, quiet=True)
    return out


@st.composite
def small_analysis_documents(draw, store: str) -> dict:
    """Small grids only (<= 40 x 40 pixels, <= 4 x 5 energy bins), so each run is quick."""
    doc = yaml.safe_load(SMALL_STORE_CONFIG.format(store=store))
    g = doc["datasets"]["geom"]
    g["wcs"]["binsize"] = f"{draw(st.sampled_from([0.1, 0.2])):g} deg"
    g["wcs"]["width"] = {"width": f"{draw(st.sampled_from([1, 2, 4])):g} deg",
                         "height": f"{draw(st.sampled_from([1, 3])):g} deg"}
    g["wcs"]["skydir"]["lon"] = f"{draw(st.sampled_from([0.0, 0.5, 359.5, -1.0])):g} deg"
    g["selection"]["offset_max"] = f"{draw(st.sampled_from([1.0, 2.0, 2.5])):g} deg"
    g["axes"]["energy"]["nbins"] = draw(st.integers(1, 4))
    doc["datasets"]["stack"] = draw(st.booleans())
    doc["datasets"]["safe_mask"] = {"methods": draw(st.lists(st.sampled_from(["aeff-default", "offset-max"]),
                                                              min_size=1, unique=True))}
    if draw(st.booleans()):
        doc["fit"] = {"fit_range": {"min": draw(st.sampled_from(["0.2 TeV", "1 TeV", "20 TeV"])),
                                    "max": draw(st.sampled_from(["5 TeV", "10 TeV", "100 TeV"]))}}
    mutation = draw(st.sampled_from([None, None, "obs_ids", "cone", "far_away", "required_irf"]))
    if mutation == "obs_ids":
        doc["observations"]["obs_ids"] = draw(st.lists(st.integers(0, 3), min_size=1, max_size=2))
    elif mutation == "cone":
        doc["observations"]["obs_cone"] = {"frame": "galactic", "lon": "90 deg", "lat": "0 deg",
                                           "radius": draw(st.sampled_from(["1 deg", "100 deg"]))}
    elif mutation == "far_away":
        g["wcs"]["skydir"]["lon"] = "40 deg"
    elif mutation == "required_irf":
        doc["observations"]["required_irf"] = draw(st.lists(
            st.sampled_from(["aeff", "edisp", "psf", "bkg", "gti", "events"]), min_size=1, unique=True))
    return doc


@settings(max_examples=10, deadline=ANALYSIS_DEADLINE, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_analysis_builds_datasets_or_names_the_problem(tiny_store, data):
    doc = data.draw(small_analysis_documents(str(tiny_store)))
    config, err = _own_error_or_nothing(AnalysisConfig.from_dict, doc)
    if err is not None:
        return
    ana, err = _own_error_or_nothing(Analysis, config)
    if err is not None:
        return
    ana.progress = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, err = _own_error_or_nothing(ana.get_observations)
        if err is not None:
            return
        datasets, err = _own_error_or_nothing(ana.get_datasets)
    if err is not None:
        return
    assert datasets and all(ds["counts"].dims == ("energy", "lat", "lon") for ds in datasets)
    nbins = config.datasets.geom.axes.energy.nbins
    assert all(ds.sizes["energy"] == nbins for ds in datasets)
    assert all(int(ds["counts"].sum()) >= 0 for ds in datasets)
