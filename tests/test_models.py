"""Tests of gcxr.models: parameters, spectral/spatial models, YAML I/O.

Reference values come from independent computations (scipy quad, closed
forms written out here, spherical geometry by hand) and, in one place, from a
gammapy 2.1 run (labelled as such).
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.integrate import quad
from scipy.special import erfinv

from gcxr.models import (
    DiskSpatialModel,
    ExpCutoffPowerLawSpectralModel,
    FoVBackgroundModel,
    GaussianSpatialModel,
    LogParabolaSpectralModel,
    ModelError,
    Models,
    Parameter,
    Parameters,
    PointSpatialModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
    TemplateSpatialModel,
)

from gcxr.likelihood import ParameterSpace, parameter_scale
from gcxr.models.spectral import propagate_errors

from conftest import shared_data  # noqa: E402

REF = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "gammapy-2.1-cta1dc-gc"
REF = REF.resolve()
if not REF.exists():  # the checkout may sit elsewhere; fall back to the shared folder
    REF = Path("/work/shared/reference/gammapy-2.1-cta1dc-gc")
STACKED = REF / "seed_models_stacked.yaml"
SOURCE = REF / "seed_models_source.yaml"
needs_ref = shared_data(STACKED.exists(), "shared gammapy reference files not available")

E_TRUE = np.geomspace(0.08, 12, 15)  # the 14 true-energy bins of the seed analysis


def quad_bins(f, edges):
    return np.array([quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0] for lo, hi in zip(edges[:-1], edges[1:])])


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------
def test_parameter_space_scale_rule():
    # the one scale rule of the fit vector: the power of ten at or below |value|
    assert parameter_scale(2.8e-12) == pytest.approx(1e-12, rel=1e-15)
    for value, scale in [(-0.05, 0.01), (0.02, 0.01), (1.3, 1.0), (0.0, 1.0), (-5.0, 1.0), (150.0, 100.0),
                         (math.inf, 1.0), (math.nan, 1.0)]:
        assert parameter_scale(value) == pytest.approx(scale, rel=1e-15), value
    # in the space: amplitude 2.8e-12 -> scale 1e-12, factor 2.8; positions are offsets in 0.01 deg
    models = Models([SkyModel(PowerLawSpectralModel(amplitude=2.8e-12), PointSpatialModel(lon_0=0.5, lat_0=-0.05),
                              name="s")])
    space = ParameterSpace.from_models(models)
    assert space.names == ["s.index", "s.amplitude", "s.lon_0", "s.lat_0"]
    np.testing.assert_allclose(space.scale, [1.0, 1e-12, 0.01, 0.01], rtol=1e-15)
    f = space.to_factors(space.start)
    np.testing.assert_allclose(f, [2.0, 2.8, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(space.to_values([2.0, 3.0, 1.0, -2.0]), [2.0, 3e-12, 0.51, -0.07], rtol=1e-14)
    assert not hasattr(models["s"].spectral_model.amplitude, "scale")


def test_parameter_dict_form():
    p = Parameter("lat_0", -0.05, "deg", min=-90, max=90)
    assert p.to_dict() == {"name": "lat_0", "value": -0.05, "unit": "deg", "min": -90.0, "max": 90.0}
    p = Parameter("tilt", 0.0, frozen=True, error=0.1)
    assert p.to_dict() == {"name": "tilt", "value": 0.0, "error": 0.1, "frozen": True}
    q = Parameter.from_dict({**p.to_dict(), "interp": "lin", "scale_method": "scale10"})
    assert q.to_dict() == p.to_dict() and math.isnan(q.min)


def test_parameters_collection():
    pars = Parameters(
        [Parameter("a", 1.0), Parameter("b", 2.0, frozen=True), Parameter("c", 3.0)],
        unique_names=["m.a", "m.b", "m.c"],
    )
    assert pars.names == ["a", "b", "c"]
    assert pars["b"] is pars[1] is pars["m.b"]
    free = pars.free
    assert free.names == ["a", "c"]
    free.set_values([10.0, 30.0])
    np.testing.assert_array_equal(pars.values, [10.0, 2.0, 30.0])
    with pytest.raises(ValueError, match="3 values for 2"):
        free.set_values([1.0, 2.0, 3.0])
    pars.set_covariance(["a", "c"], [[4.0, 2.0], [2.0, 9.0]])
    np.testing.assert_allclose(pars.errors, [2.0, 0.0, 3.0])
    np.testing.assert_allclose(pars.correlation[0, 2], 2.0 / 6.0)
    assert pars.correlation[1, 1] == 0.0
    np.testing.assert_array_equal(pars.free.covariance, [[4.0, 2.0], [2.0, 9.0]])
    dup = Parameters([Parameter("x", 1), Parameter("x", 2)], unique_names=["s.x", "t.x"])
    with pytest.raises(KeyError, match="ambiguous"):
        dup["x"]
    with pytest.raises(KeyError, match="available"):
        dup["y"]


# ---------------------------------------------------------------------------
# seed YAML files
# ---------------------------------------------------------------------------
@needs_ref
def test_seed_stacked_yaml_loads():
    models = Models.read(STACKED)
    assert models.names == ["gc-source", "stacked-bkg"]
    src = models["gc-source"]
    assert isinstance(src.spectral_model, ExpCutoffPowerLawSpectralModel)
    assert isinstance(src.spatial_model, PointSpatialModel) and src.spatial_model.frame == "galactic"
    pars = models.parameters
    expected = [
        ("gc-source.spectral.index", 2.3, "", False),
        ("gc-source.spectral.amplitude", 2.8e-12, "cm-2 s-1 TeV-1", False),
        ("gc-source.spectral.reference", 1.0, "TeV", True),
        ("gc-source.spectral.lambda_", 0.02, "TeV-1", False),
        ("gc-source.spectral.alpha", 1.0, "", True),
        ("gc-source.spatial.lon_0", -0.05, "deg", False),
        ("gc-source.spatial.lat_0", -0.05, "deg", False),
        ("stacked-bkg.spectral.tilt", 0.0, "", True),  # YAML order tilt, norm, ...: model order kept
        ("stacked-bkg.spectral.norm", 1.3, "", False),
        ("stacked-bkg.spectral.reference", 1.0, "TeV", True),
    ]
    assert pars.unique_names == [e[0] for e in expected]
    assert list(pars.values) == [e[1] for e in expected]  # exact: unit factor 1 for 'TeV-1 s-1 cm-2'
    assert pars.units == [e[2] for e in expected]
    assert list(pars.frozen) == [e[3] for e in expected]
    assert pars.free.names == ["index", "amplitude", "lambda_", "lon_0", "lat_0", "norm"]
    assert pars["lat_0"].min == -90 and pars["lat_0"].max == 90
    assert math.isnan(pars["lambda_"].min) and math.isnan(pars["lon_0"].max)
    bkg = models.background_model("stacked")
    assert isinstance(bkg, FoVBackgroundModel) and bkg.name == "stacked-bkg"
    assert models.background_model("other") is None


@needs_ref
def test_seed_source_yaml_loads():
    models = Models.read(SOURCE)
    assert models.names == ["gc-source"]
    assert len(models.parameters) == 7
    models.add_fov_background(["a", "b"])
    models.add_fov_background("a")
    assert models.names == ["gc-source", "a-bkg", "b-bkg"]
    assert len(models.parameters.free) == 5 + 2


@needs_ref
def test_yaml_round_trip(tmp_path):
    models = Models.read(STACKED)
    models["gc-source"].spectral_model.alpha.frozen = False  # default-frozen parameter made free
    models.parameters["norm"].error = 0.01
    path = tmp_path / "m.yaml"
    models.write(path)
    with pytest.raises(FileExistsError):
        models.write(path)
    back = Models.read(path)
    assert back.to_dict() == models.to_dict()
    assert back.to_yaml(metadata=False) == models.to_yaml(metadata=False)
    assert back.parameters["alpha"].frozen is False
    assert back.parameters["norm"].error == 0.01
    back.write(path, overwrite=True)
    assert Models.read(path).to_dict() == models.to_dict()
    assert [p.name for p in tmp_path.iterdir()] == ["m.yaml"]  # no temporary files left


def test_covariance_round_trip(tmp_path):
    models = Models([SkyModel(PowerLawSpectralModel(), PointSpatialModel(), name="s")])
    models.add_fov_background("d1")
    free = models.parameters.free
    cov = np.diag(np.arange(1.0, len(free) + 1))
    cov[0, 1] = cov[1, 0] = 0.5
    free_names = free.unique_names
    models.parameters.set_covariance(free_names, cov)
    path = tmp_path / "fit.yaml"
    models.write(path)
    assert (tmp_path / "fit_covariance.dat").exists()
    assert yaml.safe_load(path.read_text())["covariance"] == "fit_covariance.dat"
    back = Models.read(path)
    np.testing.assert_allclose(back.parameters.free.covariance, cov, rtol=1e-15)
    np.testing.assert_allclose(back.parameters.free.errors[:2], [1.0, np.sqrt(2.0)])


def test_read_gammapy_full_output_with_covariance(tmp_path):
    # layout written by gammapy 2.1 Models.write(full_output=True) with a covariance
    text = """components:
-   name: src
    type: SkyModel
    spectral:
        type: PowerLawSpectralModel
        parameters:
        -   name: index
            value: 2.3
            unit: ''
            error: 0.1
            min: .nan
            max: .nan
            frozen: false
            interp: lin
            scale_method: scale10
            scale_transform: lin
        -   name: amplitude
            value: 2.8e-12
            unit: TeV-1 s-1 cm-2
            error: 0.0
            min: .nan
            max: .nan
            frozen: false
            interp: log
            scale_method: scale10
            scale_transform: lin
        -   name: reference
            value: 1.0
            unit: TeV
            frozen: true
covariance: g_covariance.dat
metadata:
    creator: Gammapy 2.1
    date: '2026-11-25T06:33:21.447744'
    origin: null
"""
    cov = """|           Parameters |    0 |   1 |    2 |
|   src.spectral.index | 0.01 | 0.0 |  0.0 |
|   src.spectral.amplitude |  0.0 | 0.0 |  0.0 |
|   src.spectral.reference |  0.0 | 0.0 | 0.0 |
"""
    (tmp_path / "g.yaml").write_text(text)
    (tmp_path / "g_covariance.dat").write_text(cov)
    models = Models.read(tmp_path / "g.yaml")
    assert models.parameters["index"].error == 0.1
    assert models.covariance[0, 0] == 0.01
    assert models.metadata["creator"] == "Gammapy 2.1"


def test_short_type_names_and_unit_conversion():
    text = """components:
-   name: s
    type: SkyModel
    spectral:
        type: ecpl
        parameters:
        -   {name: amplitude, value: 2.8e-8, unit: m-2 s-1 TeV-1}
        -   {name: reference, value: 1000.0, unit: GeV}
        -   {name: lambda_, value: 20.0, unit: PeV-1}
    spatial:
        type: gauss
        frame: icrs
        parameters:
        -   {name: sigma, value: 36.0, unit: arcmin}
-   type: FoVBackgroundModel
    datasets_names: [d]
    spectral: {type: pl-norm, parameters: [{name: norm, value: 1.1}]}
"""
    models = Models.from_yaml(text)
    spec = models["s"].spectral_model
    assert spec.amplitude.value == pytest.approx(2.8e-12, rel=1e-14)
    assert spec.reference.value == pytest.approx(1.0, rel=1e-14)
    assert spec.lambda_.value == pytest.approx(0.02, rel=1e-14)
    assert spec.index.value == 1.5  # absent -> default
    assert models["s"].spatial_model.sigma.value == pytest.approx(0.6, rel=1e-14)
    assert models["d-bkg"].spectral_model.norm.value == 1.1
    # written back in canonical units and long type names
    spectral = models.to_dict()["components"][0]["spectral"]
    assert spectral["type"] == "ExpCutoffPowerLawSpectralModel"
    assert spectral["parameters"][1] == {"name": "amplitude", "value": spec.amplitude.value, "unit": "cm-2 s-1 TeV-1"}


# ---------------------------------------------------------------------------
# errors name things
# ---------------------------------------------------------------------------
def _one(spectral: str, spatial: str = "") -> str:
    return f"components:\n-   name: src\n    type: SkyModel\n    spectral: {spectral}\n" + (
        f"    spatial: {spatial}\n" if spatial else ""
    )


def test_unknown_model_type_error():
    with pytest.raises(ModelError) as exc:
        Models.from_yaml(_one("{type: PowerLawSpectralModelX, parameters: []}"))
    msg = str(exc.value)
    assert "'src'" in msg and "PowerLawSpectralModelX" in msg
    for valid in ["PowerLawSpectralModel", "ExpCutoffPowerLawSpectralModel", "LogParabolaSpectralModel", "ecpl"]:
        assert valid in msg
    with pytest.raises(ModelError, match=r"'src'.*'disc'.*DiskSpatialModel"):
        Models.from_yaml(_one("{type: pl}", "{type: disc, frame: icrs}"))
    with pytest.raises(ModelError, match=r"unknown model type 'SkyModelX'.*SkyModel, FoVBackgroundModel"):
        Models.from_yaml("components:\n- {name: a, type: SkyModelX}\n")


def test_unknown_parameter_error():
    with pytest.raises(ModelError) as exc:
        Models.from_yaml(_one("{type: ecpl, parameters: [{name: lambda, value: 0.1}]}"))
    msg = str(exc.value)
    assert "'src'" in msg and "ExpCutoffPowerLawSpectralModel" in msg and "'lambda'" in msg
    assert "index, amplitude, reference, lambda_, alpha" in msg
    with pytest.raises(ModelError, match=r"'src'.*PointSpatialModel.*'sigma'.*lon_0, lat_0"):
        Models.from_yaml(_one("{type: pl}", "{type: point, frame: icrs, parameters: [{name: sigma, value: 1}]}"))


def test_bad_unit_error():
    with pytest.raises(ModelError, match=r"'src'.*'amplitude'.*'TeV'"):
        Models.from_yaml(_one("{type: pl, parameters: [{name: amplitude, value: 1.0e-12, unit: TeV}]}"))
    with pytest.raises(ModelError, match=r"'reference'.*'furlong-ish'"):
        Models.from_yaml(_one("{type: pl, parameters: [{name: reference, value: 1, unit: furlong-ish}]}"))
    with pytest.raises(ModelError, match="frame 'fk4'"):
        Models.from_yaml(_one("{type: pl}", "{type: point, frame: fk4}"))


def test_duplicate_names_and_backgrounds():
    a = SkyModel(PowerLawSpectralModel(), name="a")
    with pytest.raises(ModelError, match="unique"):
        Models([a, SkyModel(PowerLawSpectralModel(), name="a")])
    with pytest.raises(ModelError, match="'d' already has"):
        Models([FoVBackgroundModel("d"), FoVBackgroundModel("d", name="other")])
    with pytest.raises(ModelError, match="norm model"):
        FoVBackgroundModel("d", PowerLawSpectralModel())
    with pytest.raises(KeyError, match=r"'b'.*\['a'\]"):
        Models([a])["b"]


# ---------------------------------------------------------------------------
# models collection behaviour
# ---------------------------------------------------------------------------
def test_models_parameters_are_live_and_copy_is_deep():
    models = Models([SkyModel(ExpCutoffPowerLawSpectralModel(), PointSpatialModel(frame="galactic"), name="s")])
    models.add_fov_background(["d1", "d2"])
    free = models.parameters.free
    assert free.unique_names == [
        "s.spectral.index", "s.spectral.amplitude", "s.spectral.lambda_",
        "s.spatial.lon_0", "s.spatial.lat_0", "d1-bkg.spectral.norm", "d2-bkg.spectral.norm",
    ]
    free.set_values(np.arange(1.0, 8.0))
    assert models["s"].spectral_model.amplitude.value == 2.0
    assert models["d2-bkg"].spectral_model.norm.value == 7.0
    assert models.parameters is models.parameters  # cached while unchanged
    copy = models.copy()
    copy.parameters.free.set_values(np.zeros(7))
    assert models["s"].spectral_model.index.value == 1.0
    assert [m.name for m in models.for_dataset("d2")] == ["s", "d2-bkg"]
    # values for a trial free vector, models untouched
    vals = ParameterSpace.from_models(models).values_by_model(np.arange(11.0, 18.0))
    assert vals["s"]["spectral"] == {"index": 11.0, "amplitude": 12.0, "reference": 1.0, "lambda_": 13.0, "alpha": 1.0}
    assert vals["s"]["spatial"] == {"lon_0": 14.0, "lat_0": 15.0}
    assert vals["d2-bkg"] == {"spectral": {"tilt": 0.0, "norm": 17.0, "reference": 1.0}}
    assert models["s"].spectral_model.index.value == 1.0


def test_models_pickle():
    models = Models([SkyModel(PowerLawSpectralModel(), GaussianSpatialModel(sigma=0.2), name="s")])
    models.add_fov_background("d")
    models.parameters.set_covariance(["index", "norm"], np.diag([0.04, 0.01]))
    back = pickle.loads(pickle.dumps(models))
    assert back.to_dict() == models.to_dict()
    np.testing.assert_array_equal(back.covariance, models.covariance)
    back.parameters["index"].value = 3.0
    assert back["s"].spectral_model.index.value == 3.0


# ---------------------------------------------------------------------------
# spectral models
# ---------------------------------------------------------------------------
def test_ecpl_integral_vs_quad():
    m = ExpCutoffPowerLawSpectralModel(index=2.3, amplitude=2.8e-12, reference=1.0, lambda_=0.02)

    def f(e):
        return 2.8e-12 * e**-2.3 * math.exp(-0.02 * e)

    exact = quad_bins(f, E_TRUE)
    got = m.integral(E_TRUE[:-1], E_TRUE[1:])
    rel = np.abs(got / exact - 1)
    # The 15-point log-log rule (gammapy's) is not exact: each power-law segment of width
    # h = ln(12/0.08)/14/14 in ln E misses the curvature lambda*E of ln(phi), a relative
    # error of about lambda*E*h^2/12.  Measured: 1.0e-7 in the first bin, 7.6e-6 in the
    # 13th and 1.08e-5 in the last (8.0-12 TeV) bin.
    h = math.log(12 / 0.08) / 14 / 14
    bound = 0.02 * E_TRUE[1:] * h**2 / 12
    assert np.all(rel < bound)
    assert rel.max() < 1.1e-5
    assert rel.max() > 1e-5  # the log-log rule, not an exact integral


def test_ecpl_integral_matches_gammapy_numbers():
    # gammapy 2.1: ExpCutoffPowerLawSpectralModel(index=2.3, amplitude=2.8e-12 cm-2 s-1 TeV-1,
    # lambda_=0.02 TeV-1).integral(e[:-1], e[1:]) for e = geomspace(0.08, 12, 15) TeV
    gammapy = [
        2.1328447963987714e-11, 1.3382555193827092e-11, 8.393947473931016e-12, 5.2622952327923855e-12,
        3.296643823585153e-12, 2.0631100751210492e-12, 1.2892414443038092e-12, 8.039572040043958e-13,
        4.99833837916582e-13, 3.0942176150474967e-13, 1.903731661194634e-13, 1.1610285673184814e-13,
        6.99234809846044e-14, 4.136233346956242e-14,
    ]
    m = ExpCutoffPowerLawSpectralModel(index=2.3, amplitude=2.8e-12, lambda_=0.02)
    np.testing.assert_allclose(m.integral(E_TRUE[:-1], E_TRUE[1:]), gammapy, rtol=1e-12)


def test_ecpl_evaluate_and_pure_form():
    e = np.array([0.1, 1.0, 10.0])
    m = ExpCutoffPowerLawSpectralModel(index=2.0, amplitude=1e-12, lambda_=0.1, alpha=1.0)
    np.testing.assert_allclose(m.evaluate(e), 1e-12 * e**-2 * np.exp(-0.1 * e), rtol=1e-15)
    # pure forms broadcast parameter arrays against the bins
    index = np.array([[2.0], [2.5]])
    vals = dict(m.values, index=index)
    f2 = ExpCutoffPowerLawSpectralModel._evaluate(e, **vals)
    assert f2.shape == (2, 3)
    i2 = ExpCutoffPowerLawSpectralModel._integral(E_TRUE[:-1], E_TRUE[1:], **vals)
    assert i2.shape == (2, 14)
    np.testing.assert_allclose(i2[0], m.integral(E_TRUE[:-1], E_TRUE[1:]), rtol=1e-14)
    assert m.index.value == 2.0  # untouched


@pytest.mark.parametrize("index", [2.6, 1.0, 1.0 + 1e-9, 1.0 - 1e-7, 0.5, 3.7])
def test_powerlaw_integral_vs_quad(index):
    m = PowerLawSpectralModel(index=index, amplitude=5e-11, reference=1.3)
    exact = quad_bins(lambda e: 5e-11 * (e / 1.3) ** -index, E_TRUE)
    # |1 - index| <= 1e-8 switches to the log form (gammapy's isclose rule): error ~ 1e-9
    rtol = 1e-8 if 0 < abs(1 - index) < 1e-6 else 1e-10
    np.testing.assert_allclose(m.integral(E_TRUE[:-1], E_TRUE[1:]), exact, rtol=rtol)
    eflux = quad_bins(lambda e: e * 5e-11 * (e / 1.3) ** -index, E_TRUE)
    np.testing.assert_allclose(m.energy_flux(E_TRUE[:-1], E_TRUE[1:]), eflux, rtol=1e-10)


def test_powerlaw_index_one_closed_form():
    m = PowerLawSpectralModel(index=1.0, amplitude=2.0, reference=1.0)
    assert m.integral(1.0, math.e) == pytest.approx(2.0, rel=1e-15)


def test_logparabola_vs_quad():
    m = LogParabolaSpectralModel(amplitude=3e-12, reference=1.0, alpha=2.1, beta=0.15)

    def f(e):
        return 3e-12 * e ** (-2.1 - 0.15 * math.log(e))

    exact = quad_bins(f, E_TRUE)
    got = m.integral(E_TRUE[:-1], E_TRUE[1:])
    # ln(phi) has constant curvature -2 beta in ln E: each log-log segment of width h
    # underestimates by 2 beta h^2 / 12 (relative), 1.63e-5 here
    h = math.log(12 / 0.08) / 14 / 14
    rel = 1 - got / exact
    np.testing.assert_allclose(rel, 2 * 0.15 * h**2 / 12, rtol=1e-3)
    assert m.evaluate(math.e) == pytest.approx(3e-12 * math.e ** (-2.25), rel=1e-14)
    lp10 = LogParabolaSpectralModel.from_log10(amplitude=1.0, reference=1.0, alpha=2.0, beta=1.0)
    assert lp10.evaluate(10.0) == pytest.approx(10.0 ** (-3.0), rel=1e-14)


def test_powerlaw_norm():
    m = PowerLawNormSpectralModel(norm=1.3, tilt=0.2, reference=1.0)
    assert [p.name for p in m.parameters] == ["tilt", "norm", "reference"]
    assert list(m.parameters.frozen) == [True, False, True]
    np.testing.assert_allclose(m.evaluate([0.5, 2.0]), 1.3 * np.array([0.5, 2.0]) ** -0.2, rtol=1e-15)
    exact = quad_bins(lambda e: 1.3 * e**-0.2, E_TRUE)
    np.testing.assert_allclose(m.integral(E_TRUE[:-1], E_TRUE[1:]), exact, rtol=1e-10)


def test_default_parameters_like_gammapy():
    ecpl = ExpCutoffPowerLawSpectralModel()
    assert ecpl.values == {"index": 1.5, "amplitude": 1e-12, "reference": 1.0, "lambda_": 0.1, "alpha": 1.0}
    assert list(ecpl.parameters.frozen) == [False, False, True, False, True]
    assert LogParabolaSpectralModel().reference.value == 10.0
    assert PowerLawSpectralModel(amplitude="1e-8 m-2 s-1 GeV-1").amplitude.value == pytest.approx(1e-9, rel=1e-14)


def test_parameters_named_once_keyword_only_constructor():
    import inspect
    # the constructor's keywords are the _defaults' names (with their defaults), plus the options
    assert str(inspect.signature(PowerLawSpectralModel)) == "(*, index=2.0, amplitude=1e-12, reference=1.0)"
    sig = inspect.signature(GaussianSpatialModel)
    assert list(sig.parameters) == ["lon_0", "lat_0", "sigma", "e", "phi", "frame"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
    assert sig.parameters["sigma"].default == 1.0 and sig.parameters["frame"].default == "icrs"
    assert list(inspect.signature(TemplateSpatialModel).parameters) == ["filename", "normalize", "lon_0", "lat_0",
                                                                        "hdu"]
    for cls in (PowerLawSpectralModel, ExpCutoffPowerLawSpectralModel, LogParabolaSpectralModel,
                PowerLawNormSpectralModel, PointSpatialModel, GaussianSpatialModel, DiskSpatialModel):
        names = [n for n in inspect.signature(cls).parameters if n != "frame"]
        assert names == cls.parameter_names(), cls
        assert cls().values == {p.name: p.value for p in cls._defaults}, cls
    with pytest.raises(ModelError, match=r"PowerLawSpectralModel has no parameter or option 'indx'; "
                                         r"allowed: index, amplitude, reference"):
        PowerLawSpectralModel(indx=2.5)
    with pytest.raises(ModelError, match=r"GaussianSpatialModel .*'sgma'.*lon_0, lat_0, sigma, e, phi, frame"):
        GaussianSpatialModel(sgma=0.2)
    with pytest.raises(TypeError):
        PowerLawSpectralModel(2.5)
    g = GaussianSpatialModel(lon_0=1.0, sigma="0.5 deg", frame="galactic")
    assert g.frame == "galactic" and g.values == {"lon_0": 1.0, "lat_0": 0.0, "sigma": 0.5, "e": 0.0, "phi": 0.0}


def test_integral_error_linear():
    m = PowerLawSpectralModel(index=2.0, amplitude=1e-12)
    m.amplitude.error = 1e-13
    err = m.integral_error(E_TRUE[:-1], E_TRUE[1:])
    np.testing.assert_allclose(err, 0.1 * m.integral(E_TRUE[:-1], E_TRUE[1:]), rtol=1e-6)


def test_propagate_errors_hand_numbers():
    # f = 3a - 2b + c (c has no variance): var = 9*0.04 + 4*0.01 - 2*3*2*0.01 = 0.28
    cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.01, 0.0], [0.0, 0.0, 0.0]])
    err = propagate_errors(lambda a, b, c: np.array([3 * a - 2 * b + c]), dict(a=1.0, b=2.0, c=5.0),
                           ["a", "b", "c"], cov)
    np.testing.assert_allclose(err, [np.sqrt(0.28)], rtol=1e-10)
    with pytest.raises(ValueError, match="shape"):
        propagate_errors(lambda a: a, dict(a=1.0), ["a"], np.eye(2))


# ---------------------------------------------------------------------------
# spatial models
# ---------------------------------------------------------------------------
def offset_point(lon0, lat0, dist, pa):
    """Point at angular distance ``dist`` and position angle ``pa`` (east of north), all deg."""
    lon0, lat0, dist, pa = map(np.radians, (lon0, lat0, dist, pa))
    lat = np.arcsin(np.sin(lat0) * np.cos(dist) + np.cos(lat0) * np.sin(dist) * np.cos(pa))
    lon = lon0 + np.arctan2(np.sin(pa) * np.sin(dist) * np.cos(lat0), np.cos(dist) - np.sin(lat0) * np.sin(lat))
    return np.degrees(lon), np.degrees(lat)


def sphere_integral(model, radius, breaks=(0.0, 1.0), n=400, n_psi=64):
    """Integral of model.evaluate over the sphere around the model centre.

    Polar grid: position angle psi uniform (periodic trapezoid), distance
    r = t * radius(psi) with Gauss-Legendre nodes in t on each interval of
    ``breaks``; ``radius`` is a number (deg) or a function of psi (rad).
    """
    lon0, lat0 = model.position
    psi = np.arange(n_psi) * 2 * np.pi / n_psi
    rad = np.radians(radius(psi) if callable(radius) else np.full_like(psi, radius))
    x, w = np.polynomial.legendre.leggauss(n)
    t = np.concatenate([0.5 * (hi - lo) * (x + 1) + lo for lo, hi in zip(breaks[:-1], breaks[1:])])
    wt = np.concatenate([0.5 * (hi - lo) * w for lo, hi in zip(breaks[:-1], breaks[1:])])
    R = t[:, None] * rad[None, :]
    lon, lat = offset_point(lon0, lat0, np.degrees(R), np.degrees(psi)[None, :])
    vals = model.evaluate(lon, lat)
    return float(np.sum(vals * np.sin(R) * wt[:, None] * rad[None, :]) * 2 * np.pi / n_psi)


@pytest.mark.parametrize("sigma", [0.1, 2.0, 30.0])
def test_gaussian_normalisation(sigma):
    m = GaussianSpatialModel(lon_0=40.0, lat_0=35.0, sigma=sigma, frame="icrs")
    assert sphere_integral(m, min(180.0, 12 * sigma)) == pytest.approx(1.0, abs=1e-9)
    assert m.evaluation_radius == 5 * sigma


def test_gaussian_elongated_normalisation_and_semantics():
    m = GaussianSpatialModel(lon_0=10.0, lat_0=20.0, sigma=0.3, e=0.8, phi=30.0, frame="galactic")
    assert sphere_integral(m, 3.0, n_psi=360) == pytest.approx(1.0, rel=1e-4)
    minor = 0.3 * math.sqrt(1 - 0.8**2)  # 0.18 deg
    norm = 1.0 / (2 * math.pi * math.radians(0.3) * math.radians(minor))  # sr^-1
    d = 0.2
    for pa, width in [(30.0, 0.3), (210.0, 0.3), (120.0, minor), (-60.0, minor)]:
        lon, lat = offset_point(10.0, 20.0, d, pa)
        expected = norm * math.exp(-0.5 * (d / width) ** 2)
        assert m.evaluate(lon, lat) == pytest.approx(expected, rel=2e-5), pa
    # phi is east of north: the major axis at phi = 90 lies along increasing longitude
    m90 = GaussianSpatialModel(lon_0=0.0, lat_0=0.0, sigma=0.3, e=0.8, phi=90.0)
    ratio = math.exp(-0.5 * (0.2 / 0.3) ** 2 + 0.5 * (0.2 / minor) ** 2)
    assert m90.evaluate(0.2, 0.0) / m90.evaluate(0.0, 0.2) == pytest.approx(ratio, rel=1e-4)
    assert m.evaluate(10.0, 20.0) == pytest.approx(norm, rel=1e-12)


def test_gaussian_symmetric_value():
    m = GaussianSpatialModel(lon_0=0.0, lat_0=0.0, sigma=0.2, frame="galactic")
    s = math.radians(0.2)
    a = 1 - math.cos(s)
    peak = 1 / (4 * math.pi * a * (1 - math.exp(-1 / a)))
    assert m.evaluate(0.0, 0.0) == pytest.approx(peak, rel=1e-9)  # 1 - cos(0.2 deg) loses ~1e-11 here
    assert peak == pytest.approx(1 / (2 * math.pi * s**2), rel=1e-5)
    lon, lat = offset_point(0.0, 0.0, 0.3, 77.0)
    assert m.evaluate(lon, lat) == pytest.approx(peak * math.exp(-0.5 * (1 - math.cos(math.radians(0.3))) / a), rel=1e-10)


@pytest.mark.parametrize("r_0,e,phi,edge", [(0.5, 0.0, 0.0, 0.01), (3.0, 0.0, 0.0, 0.2), (0.5, 0.6, -40.0, 0.1)])
def test_disk_normalisation(r_0, e, phi, edge):
    m = DiskSpatialModel(lon_0=120.0, lat_0=-30.0, r_0=r_0, e=e, phi=phi, edge_width=edge)
    minor = r_0 * math.sqrt(1 - e**2)

    def radius(psi):  # ellipse radius towards position angle psi (nodes only)
        d = math.radians(phi) - psi
        return r_0 * minor / np.hypot(r_0 * np.sin(d), minor * np.cos(d))

    total = sphere_integral(m, radius, breaks=(0.0, 1 - 3 * edge, 1 + 3 * edge), n=200, n_psi=360 if e else 8)
    # The norm is that of the sharp-edged disk; the symmetric erf edge adds
    # 2 pi int_0^inf erfc(k x / W) x dx = pi W^2 / (2 k^2) with W = edge * r and
    # k = 2 erfinv(0.9) (95 % -> 5 % over W), i.e. edge^2 / (2 k^2) relative.
    k = 2 * erfinv(0.9)
    assert total - 1 == pytest.approx(edge**2 / (2 * k**2), rel=0.01)
    assert m.evaluation_radius == pytest.approx(1.1 * r_0 * (1 + edge))


def test_disk_values():
    m = DiskSpatialModel(lon_0=0.0, lat_0=0.0, r_0=0.5, edge_width=0.01, frame="galactic")
    inside = 1 / (2 * math.pi * (1 - math.cos(math.radians(0.5))))
    assert m.evaluate(0.1, 0.1) == pytest.approx(inside, rel=1e-12)
    assert m.evaluate(0.0, 0.5) == pytest.approx(inside / 2, rel=1e-9)  # half height on the edge
    # 95 % and 5 % at r -+ edge_width * r / 2
    assert m.evaluate(0.0, 0.5 - 0.0025) == pytest.approx(0.95 * inside, rel=1e-6)
    assert m.evaluate(0.0, 0.5 + 0.0025) == pytest.approx(0.05 * inside, rel=1e-5)
    assert m.evaluate(0.0, 0.7) < 1e-20 * inside
    # elongated: major axis along phi
    me = DiskSpatialModel(lon_0=0.0, lat_0=0.0, r_0=0.5, e=0.8, phi=0.0, edge_width=0.01)
    assert me.evaluate(0.0, 0.45) > 0.9 * me.evaluate(0.0, 0.0)
    assert me.evaluate(0.45, 0.0) < 1e-10 * me.evaluate(0.0, 0.0)


def test_point_model():
    m = PointSpatialModel(lon_0=-0.05, lat_0=-0.05, frame="galactic")
    assert m.evaluation_radius == 0.0 and m.position == (-0.05, -0.05)
    assert m.lat_0.min == -90 and m.lat_0.max == 90
    with pytest.raises(TypeError, match="no surface brightness"):
        m.evaluate(0.0, 0.0)


# ---------------------------------------------------------------------------
# template
# ---------------------------------------------------------------------------
def _write_car(path, data, frame="galactic", bands=None, bunit=None):
    from astropy.io import fits

    ny, nx = data.shape[-2:]
    h = fits.Header()
    lon, lat = ("GLON", "GLAT") if frame == "galactic" else ("RA--", "DEC-")
    h["CTYPE1"], h["CTYPE2"] = f"{lon}-CAR", f"{lat}-CAR"
    h["CRPIX1"], h["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
    h["CRVAL1"], h["CRVAL2"] = 0.0, 0.0
    h["CDELT1"], h["CDELT2"] = -0.1, 0.1
    h["CUNIT1"] = h["CUNIT2"] = "deg"
    if bunit:
        h["BUNIT"] = bunit
    hdus = [fits.PrimaryHDU(data=data, header=h)]
    if bands is not None:
        cols = [fits.Column(name="CHANNEL", format="K", array=np.arange(len(bands))),
                fits.Column(name="ENERGY_TRUE", format="D", unit="TeV", array=np.asarray(bands))]
        t = fits.BinTableHDU.from_columns(cols, name="PRIMARY_BANDS")
        hdus[0].header["BANDSHDU"] = "PRIMARY_BANDS"
        hdus.append(t)
    fits.HDUList(hdus).writeto(path)


def test_template_2d(tmp_path):
    ny, nx = 21, 31
    yy, xx = np.mgrid[0:ny, 0:nx]
    data = np.exp(-0.5 * (((xx - 15) / 4.0) ** 2 + ((yy - 10) / 3.0) ** 2)).astype(np.float32)
    path = tmp_path / "tpl.fits"
    _write_car(path, data)
    m = TemplateSpatialModel(path)
    assert m.frame == "galactic" and m.map_center == pytest.approx((0.0, 0.0), abs=1e-12)
    assert m.lon_0.frozen and m.lat_0.frozen
    assert m.evaluation_radius == pytest.approx(1.55)
    # exact CAR pixel solid angle: dl * (sin b_hi - sin b_lo)
    lat_c = (yy - 10) * 0.1
    omega = math.radians(0.1) * (np.sin(np.radians(lat_c + 0.05)) - np.sin(np.radians(lat_c - 0.05)))
    expected = data / data.sum() / omega
    lon_c = -(xx - 15) * 0.1
    np.testing.assert_allclose(m.evaluate(lon_c, lat_c), expected, rtol=1e-6)
    assert np.sum(m.evaluate(lon_c, lat_c) * omega) == pytest.approx(1.0, rel=1e-6)
    # linear interpolation in log between pixel centres, zero outside the map
    mid = m.evaluate(-0.05, 0.0)
    assert mid == pytest.approx(math.sqrt(expected[10, 15] * expected[10, 16]), rel=1e-6)
    assert m.evaluate(1.6, 0.0) == 0.0 and m.evaluate(0.0, -1.06) == 0.0
    assert m.evaluate(359.99, 0.0) == pytest.approx(m.evaluate(-0.01, 0.0), rel=1e-12)
    # gammapy's rule: the outer half pixel extrapolates the last interval (in log), 0 beyond
    edge, inner = expected[13, 30], expected[13, 29]
    assert m.evaluate(-1.54, 0.3) == pytest.approx(edge * (edge / inner) ** 0.4, rel=1e-6)
    assert m.evaluate(-1.56, 0.3) == 0.0
    # lon_0/lat_0 move the template
    shifted = TemplateSpatialModel(path, lon_0=1.0, lat_0=0.5)
    np.testing.assert_allclose(shifted.evaluate(lon_c + 1.0, lat_c + 0.5), m.evaluate(lon_c, lat_c), rtol=1e-9)
    # YAML round trip with the file beside the YAML
    models = Models([SkyModel(PowerLawSpectralModel(), m, name="diffuse")])
    models.write(tmp_path / "m.yaml")
    spatial = yaml.safe_load((tmp_path / "m.yaml").read_text())["components"][0]["spatial"]
    assert spatial["filename"] == "tpl.fits" and spatial["type"] == "TemplateSpatialModel"
    back = Models.read(tmp_path / "m.yaml")["diffuse"].spatial_model
    np.testing.assert_array_equal(back.evaluate(lon_c, lat_c), m.evaluate(lon_c, lat_c))
    unpickled = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(unpickled.evaluate(lon_c, lat_c), m.evaluate(lon_c, lat_c))


def test_template_cube(tmp_path):
    ny, nx = 5, 7
    planes = np.stack([np.full((ny, nx), v) for v in (1.0, 2.0, 4.0)]).astype(np.float64)
    planes[:, 2, 3] *= 3
    path = tmp_path / "cube.fits"
    _write_car(path, planes, bands=[1.0, 3.0, 10.0], bunit="sr-1")
    m = TemplateSpatialModel(path, normalize=False)
    assert m.is_energy_dependent
    np.testing.assert_allclose(m.evaluate(0.0, 0.0, [1.0, 3.0, 10.0]), [3.0, 6.0, 12.0], rtol=1e-12)
    assert m.evaluate(0.0, 0.0, math.sqrt(3.0)) == pytest.approx(math.sqrt(3.0 * 6.0), rel=1e-12)
    with pytest.raises(ValueError, match="energy"):
        m.evaluate(0.0, 0.0)
    n = TemplateSpatialModel(path)
    lat_c = np.arange(ny)[:, None] * 0.1 - 0.2
    omega = math.radians(0.1) * (np.sin(np.radians(lat_c + 0.05)) - np.sin(np.radians(lat_c - 0.05)))
    lon_c = -(np.arange(nx)[None, :] - 3) * 0.1
    for energy in (1.0, 10.0):
        total = np.sum(n.evaluate(lon_c, lat_c, energy) * omega)
        assert total == pytest.approx(1.0, rel=1e-6)  # pixel areas from geodesic quads vs exact CAR
