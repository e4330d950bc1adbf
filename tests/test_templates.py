"""Energy-dependent templates: the flux cube at gammapy 2.1 parity, edge cases and errors.

The reference cubes were made by tests/data/templates/make_gammapy_template_flux.py
(gammapy's ``SkyModel.integrate_geom``, the flux its MapEvaluator multiplies by
the exposure).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gcxr.coords import transform_lonlat
from gcxr.geom import SkyGeom
from gcxr.models import (
    GaussianSpatialModel,
    ModelError,
    Models,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
    TemplateSpatialModel,
)
from gcxr.models.spectral import SPECTRAL_MODELS
from gcxr.models.template import flux_parts, interp_log_multilinear, sky_model_flux

from conftest import DATA, REF, shared_data

HERE = Path(__file__).parent / "data" / "templates"
FERMI = DATA / "fermi-3fhl-gc" / "gll_iem_v06_gc.fits.gz"
needs_fermi = shared_data(FERMI.exists(), "Fermi-LAT GC template not in the shared data")
TEMPLATE_FILES = {"fermi": FERMI, "icrs_cube": HERE / "icrs_cube.fits", "icrs_image": HERE / "icrs_image.fits"}
CASES = ["fermi_seed", "fermi_small", "fermi_shifted", "fermi_normalized", "icrs_cube_seed", "icrs_image"]


@pytest.fixture(scope="module")
def ref():
    with np.load(HERE / "gammapy_template_flux.npz") as f:
        return {k: f[k] for k in f.files}


def _spectral(desc):
    tag, *pairs = [str(x) for x in desc]
    values = dict(p.split("=") for p in pairs)
    return SPECTRAL_MODELS[tag](**{k: float(v) for k, v in values.items()})


def _case(ref, name):
    lon0, dlon, dlat, x_ref, y_ref, nx, ny = ref[f"{name}__grid"]
    geom = SkyGeom(str(ref[f"{name}__frame"]), lon0, dlon, dlat, x_ref, y_ref, int(nx), int(ny))
    rows = ref[f"{name}__rows"]
    file = next(v for k, v in TEMPLATE_FILES.items() if name.startswith(k))
    normalize = name in ("fermi_normalized", "icrs_image")
    lon_0, lat_0 = ref[f"{name}__spatial"]
    spatial = TemplateSpatialModel(file, normalize=normalize, lon_0=lon_0, lat_0=lat_0)
    model = SkyModel(_spectral(ref[f"{name}__spectral"]), spatial, name=name)
    lon, lat = geom.grid_lonlat()
    lon, lat = transform_lonlat(lon[rows], lat[rows], geom.frame, spatial.frame)
    return model, geom, rows, lon, lat, geom.solid_angle()[rows]


@needs_fermi
@pytest.mark.parametrize("name", CASES)
def test_flux_matches_gammapy(ref, name):
    model, geom, rows, lon, lat, omega = _case(ref, name)
    expected = ref[f"{name}__flux"]
    got = sky_model_flux(model, lon, lat, omega, ref["energy_true_edges"])
    assert got.shape == expected.shape
    # the same pixels are empty (outside the template, or beyond its last energy plane + half a plane)
    np.testing.assert_array_equal(got == 0, expected == 0)
    assert np.count_nonzero(expected) > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    # the ~1e-8 left is the grid's pixel solid angle (exact CAR area here, gammapy's planar
    # triangles there); with gammapy's solid angles the cubes agree to rounding
    from gcxr.models.spatial import pixel_solid_angle
    omega_gp = pixel_solid_angle(geom.wcs, geom.ny, geom.nx)[rows]
    got_gp = sky_model_flux(model, lon, lat, omega_gp, ref["energy_true_edges"])
    np.testing.assert_allclose(got_gp, expected, rtol=1e-10, atol=0)


@needs_fermi
def test_fermi_seed_grid_is_the_reference_grid(ref):
    """The reference grid is gcxr's grid of the seed configuration, and the edges its true-energy axis."""
    g = SkyGeom.create((0.0, 0.0), 0.02, (10.0, 8.0), "galactic")
    lon0, dlon, dlat, x_ref, y_ref, nx, ny = ref["fermi_seed__grid"]
    assert (g.nx, g.ny) == (nx, ny)
    np.testing.assert_allclose([g.lon0, g.dlon, g.dlat, g.x_ref, g.y_ref], [lon0, dlon, dlat, x_ref, y_ref],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(ref["energy_true_edges"], np.geomspace(0.08, 12.0, 15), rtol=1e-12)


@needs_fermi
def test_fermi_template_reads_like_gammapy():
    m = TemplateSpatialModel(FERMI, normalize=False)
    assert m.is_energy_dependent and m.is_differential
    assert m.unit == "cm-2 s-1 TeV-1 sr-1" and m.frame == "galactic"
    assert m.map_center == pytest.approx((0.0, -0.0625), abs=1e-12)
    assert m.evaluation_radius == pytest.approx(7.5)
    assert m.energy[0] == pytest.approx(58.473133e-6, rel=1e-7) and m.energy[-1] == pytest.approx(0.51305616, rel=1e-7)
    # at a node: the file's value, MeV-1 -> TeV-1
    from astropy.io import fits
    raw = fits.getdata(FERMI)
    lon, lat = m.wcs.pixel_to_world_values(40, 20)
    assert m.evaluate(lon, lat, m.energy[10]) == pytest.approx(raw[10, 20, 40] * 1e6, rel=1e-6)
    # the diffuse component of the exercise reads from its YAML (template path with $GAMMAPY_DATA)
    models = Models.read(REF / "exercise_diffuse_models.yaml")
    d = models["diffuse"].spatial_model
    assert d.is_differential and not d.normalize and d.position == pytest.approx((0.0, -0.0625))


@needs_fermi
def test_flux_parts_decomposition(ref):
    """F[t] = a[t, k] P[k]: a is diagonal for a 3D template, one column for 2D models;
    changing spectral parameters needs no new planes."""
    model, geom, rows, lon, lat, omega = _case(ref, "fermi_small")
    edges = ref["energy_true_edges"]
    parts = flux_parts(model, lon, lat, omega, edges)
    n_t = len(edges) - 1
    assert parts.planes.shape == (n_t,) + lon.shape
    a = parts.coefficients()
    assert a.shape == (n_t, n_t)
    np.testing.assert_array_equal(a, np.diag(np.diag(a)))
    flux = np.einsum("tk,k...->t...", a, parts.planes)
    np.testing.assert_allclose(flux, parts.flux(), rtol=1e-14)
    import pickle   # parts travel to dask workers
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(parts)).flux(), parts.flux())
    # other spectral values: the planes stay, the weights scale (norm 2x, tilt 0.5)
    values = dict(model.spectral_model.values, norm=1.4, tilt=0.5)
    model.spectral_model.parameters["norm"].value = 1.4
    model.spectral_model.parameters["tilt"].value = 0.5
    np.testing.assert_allclose(parts.flux(values), sky_model_flux(model, lon, lat, omega, edges), rtol=1e-14)
    # an energy-independent model: one plane
    g = SkyModel(PowerLawSpectralModel(), GaussianSpatialModel(lon_0=1.0, lat_0=0.5, sigma=0.2, frame="galactic"), name="g")
    gp = flux_parts(g, lon, lat, omega, edges)
    assert gp.planes.shape == (1,) + lon.shape and gp.coefficients().shape == (n_t, 1)
    expected = g.spectral_model.integral(edges[:-1], edges[1:])[:, None, None] * g.spatial_model.evaluate(lon, lat) * omega
    np.testing.assert_allclose(gp.flux(), expected, rtol=1e-13)


# ---------------------------------------------------------------- edge cases
def test_template_far_larger_than_the_map_uses_the_overlap(tmp_path):
    """A 40 x 20 deg template on a 1 x 1 deg grid: only the overlap enters, values at the right place."""
    from astropy.io import fits
    from astropy.wcs import WCS
    nx, ny = 400, 200
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.crval = [0.0, 0.0]
    w.wcs.cdelt = [-0.1, 0.1]
    w.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
    yy, xx = np.mgrid[0:ny, 0:nx]
    lon_pix, lat_pix = w.pixel_to_world_values(xx, yy)
    lon_pix = (lon_pix + 180) % 360 - 180
    data = np.exp(0.05 * lon_pix - 0.1 * lat_pix)     # exp-linear in pixels: exact under log interpolation
    path = tmp_path / "big.fits"
    hdr = w.to_header()
    hdr["BUNIT"] = "sr-1"
    fits.PrimaryHDU(data=data, header=hdr).writeto(path)
    m = SkyModel(PowerLawSpectralModel(amplitude=1e-12), TemplateSpatialModel(path, normalize=False), name="big")
    geom = SkyGeom.create((3.0, 1.0), 0.02, 1.0, "galactic")
    lon, lat = geom.grid_lonlat()
    edges = np.geomspace(0.1, 10, 4)
    flux = sky_model_flux(m, lon, lat, geom.solid_angle(), edges)
    lon_w = (lon + 180) % 360 - 180
    expected = (m.spectral_model.integral(edges[:-1], edges[1:])[:, None, None]
                * np.exp(0.05 * lon_w - 0.1 * lat) * geom.solid_angle())
    np.testing.assert_allclose(flux, expected, rtol=1e-12)


def test_icrs_template_on_galactic_grid(ref):
    """Covered against gammapy in test_flux_matches_gammapy[icrs_*]; here: the frame is the map's
    and a galactic grid must be transformed (the evaluated pixels follow the rotated footprint)."""
    m = TemplateSpatialModel(HERE / "icrs_cube.fits", normalize=False)
    assert m.frame == "icrs" and m.unit == "cm-2 s-1 TeV-1 sr-1" and m._energy_scale == "log"
    ra, dec = m.map_center
    l, b = transform_lonlat(np.array([ra]), np.array([dec]), "icrs", "galactic")
    # the centre evaluated through galactic coordinates is the same as in icrs
    ra2, dec2 = transform_lonlat(l, b, "galactic", "icrs")
    assert m.evaluate(ra2, dec2, 1.0)[0] == pytest.approx(m.evaluate(ra, dec, 1.0), rel=1e-9)


def test_2d_template_without_energy_axis(tmp_path):
    m2d = TemplateSpatialModel(HERE / "icrs_image.fits")
    assert not m2d.is_energy_dependent and m2d.unit == "sr-1"
    ra, dec = m2d.map_center
    v = m2d.evaluate(ra, dec)
    assert v > 0 and m2d.evaluate(ra, dec, 3.0) == v   # energy is ignored
    sky = SkyModel(PowerLawSpectralModel(), m2d, name="img")
    edges = np.geomspace(0.1, 10, 5)
    parts = flux_parts(sky, np.array([ra]), np.array([dec]), np.array([1e-6]), edges)
    assert parts.planes.shape == (1, 1) and list(parts.plane_index) == [0] * 4
    np.testing.assert_allclose(parts.flux()[:, 0], sky.spectral_model.integral(edges[:-1], edges[1:]) * v * 1e-6)


def test_interp_log_multilinear_matches_scipy():
    from scipy.interpolate import RegularGridInterpolator
    rng = np.random.default_rng(1)
    vals = rng.normal(size=(4, 5, 6))
    pts = [rng.uniform(-0.5, n - 0.5, size=50) for n in vals.shape]
    rgi = RegularGridInterpolator([np.arange(n, dtype=float) for n in vals.shape], vals,
                                  bounds_error=False, fill_value=None)
    np.testing.assert_allclose(interp_log_multilinear(vals, pts), rgi(np.stack(pts, -1)), rtol=1e-12, atol=1e-13)
    # length-one axes are ignored
    np.testing.assert_allclose(interp_log_multilinear(vals[:1], [np.full(50, 7.0)] + pts[1:]),
                               RegularGridInterpolator([np.arange(5.0), np.arange(6.0)], vals[0], bounds_error=False,
                                                       fill_value=None)(np.stack(pts[1:], -1)), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- errors
def _yaml_with_template(tmp_path, filename, normalize="false"):
    text = f"""components:
- name: diffuse
  type: SkyModel
  spectral: {{type: PowerLawNormSpectralModel}}
  spatial:
    type: TemplateSpatialModel
    frame: galactic
    filename: {filename}
    normalize: {normalize}
"""
    p = tmp_path / "models.yaml"
    p.write_text(text)
    return p


def test_missing_template_file_fails_when_models_are_read(tmp_path):
    path = _yaml_with_template(tmp_path, str(tmp_path / "nope" / "gll_iem_missing.fits.gz"))
    with pytest.raises(FileNotFoundError, match=r"component 'diffuse'.*gll_iem_missing\.fits\.gz.*not found"):
        Models.read(path)


def test_missing_template_file_fails_before_reduction(tmp_path, monkeypatch, capsys):
    """``gcxr run`` reads the models before it reduces any run."""
    from gcxr import analysis, cli
    called = []
    monkeypatch.setattr(analysis.Analysis, "get_datasets", lambda self, *a, **k: called.append(1))
    monkeypatch.setattr(analysis.Analysis, "get_observations", lambda self, *a, **k: None)
    models = _yaml_with_template(tmp_path, str(tmp_path / "gll_iem_missing.fits.gz"))
    rc = cli.main(["run", str(REF / "analysis_config_stacked_fit.yaml"), "--models", str(models),
                   "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2 and not called
    assert "gll_iem_missing.fits.gz' not found" in capsys.readouterr().err


def test_unset_variable_in_template_path(tmp_path, monkeypatch):
    monkeypatch.delenv("GCXR_NO_SUCH_VAR", raising=False)
    path = _yaml_with_template(tmp_path, "$GCXR_NO_SUCH_VAR/t.fits")
    with pytest.raises(ModelError, match=r"component 'diffuse'.*GCXR_NO_SUCH_VAR"):
        Models.read(path)


@pytest.mark.parametrize("content", [b"", b"this is not a FITS file\n" * 20, b"SIMPLE  =                    T" + b" " * 2850])
def test_garbage_template_file(tmp_path, content):
    bad = tmp_path / "garbage.fits"
    bad.write_bytes(content)
    with pytest.raises(ModelError, match=r"garbage\.fits"):
        Models.read(_yaml_with_template(tmp_path, str(bad)))


def test_template_with_a_table_only(tmp_path):
    from astropy.io import fits
    p = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "D", array=[1.0])])]).writeto(p)
    with pytest.raises(ModelError, match=r"table\.fits.*no image HDU"):
        TemplateSpatialModel(p)


def test_template_with_a_wrong_unit(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS
    w = WCS(naxis=2)
    w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
    w.wcs.cdelt = [-0.1, 0.1]
    hdr = w.to_header()
    hdr["BUNIT"] = "cm2 s"
    p = tmp_path / "expo.fits"
    fits.PrimaryHDU(data=np.ones((3, 3)), header=hdr).writeto(p)
    with pytest.raises(ModelError, match=r"expo\.fits.*'cm2 s'"):
        TemplateSpatialModel(p, normalize=False)


@needs_fermi
def test_spectral_model_must_match_the_template_unit():
    diffuse = TemplateSpatialModel(FERMI, normalize=False)
    with pytest.raises(ModelError, match="dimensionless norm"):
        flux_parts(SkyModel(PowerLawSpectralModel(), diffuse, name="d"), [0.0], [0.0], [1e-6], [0.1, 1.0])
    image = TemplateSpatialModel(HERE / "icrs_image.fits")
    with pytest.raises(ModelError, match="sr-1"):
        flux_parts(SkyModel(PowerLawNormSpectralModel(), image, name="i"), [266.6], [-28.7], [1e-6], [0.1, 1.0])


@needs_fermi
def test_evaluate_planes_equals_evaluate():
    m = TemplateSpatialModel(FERMI, normalize=False, lon_0=0.2, lat_0=0.0)
    rng = np.random.default_rng(3)
    lon = rng.uniform(-8.0, 8.0, size=(30, 40))
    lat = rng.uniform(-4.5, 4.5, size=(30, 40))
    energies = np.array([3e-5, 5.8473133e-5, 1e-3, 0.1, 0.5, 0.6, 0.7, 5.0])
    planes = m.evaluate_planes(lon, lat, energies)
    for i, e in enumerate(energies):
        np.testing.assert_allclose(planes[i], m.evaluate(lon, lat, e), rtol=1e-12, atol=0)
    assert planes[-1].max() == 0.0 and planes[1].max() > 0


@needs_fermi
@pytest.mark.data
def test_diffuse_npred_through_the_irfs_matches_gammapy(seed_stacked):
    """The exercise's diffuse component (norm 1) through gcxr's npred engine (stacked exposure, PSF
    kernel, EDISP matrix: the SourceEvaluator's cached parts) gives gammapy's npred_signal
    (tests/data/templates/make_gammapy_diffuse_npred.py)."""
    from gcxr.contract import geom_of
    from gcxr.npred import SourceEvaluator
    model = Models.read(REF / "exercise_diffuse_models.yaml")["diffuse"]
    geom, irf = geom_of(seed_stacked)
    ev = SourceEvaluator.build(model, seed_stacked, geom, irf)
    reco = ev.npred({p.name: p.value for p in model.spectral_model.parameters},
                    {p.name: p.value for p in model.spatial_model.parameters})
    npred = np.zeros((reco.shape[0],) + geom.shape)
    npred[(slice(None),) + ev.cut] = reco
    with np.load(HERE / "gammapy_diffuse_npred.npz") as g:
        per_energy, blocks = g["per_energy"], g["blocks"]
    np.testing.assert_array_equal(npred.sum(axis=(1, 2)) == 0, per_energy == 0)
    np.testing.assert_allclose(npred.sum(axis=(1, 2)), per_energy, rtol=1e-6)
    got = npred.reshape(npred.shape[0], geom.ny // 10, 10, geom.nx // 10, 10).sum(axis=(2, 4))
    big = blocks > 1.0
    np.testing.assert_allclose(got[big], blocks[big], rtol=1e-5)


@needs_fermi
def test_fermi_template_yaml_round_trip_and_pickle(tmp_path):
    import pickle
    import yaml
    models = Models.read(REF / "exercise_diffuse_models.yaml")
    models.write(tmp_path / "m.yaml")
    spatial = yaml.safe_load((tmp_path / "m.yaml").read_text())["components"][2]["spatial"]
    assert spatial["unit"] == "cm-2 s-1 TeV-1 sr-1" and spatial["normalize"] is False
    back = Models.read(tmp_path / "m.yaml")["diffuse"].spatial_model
    orig = models["diffuse"].spatial_model
    lon, lat = np.meshgrid(np.linspace(-5, 5, 21), np.linspace(-4, 4, 17))
    for e in (0.1, 0.5):
        np.testing.assert_array_equal(back.evaluate(lon, lat, e), orig.evaluate(lon, lat, e))
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(orig)).evaluate(lon, lat, e), orig.evaluate(lon, lat, e))
