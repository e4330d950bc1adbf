"""gcxr.plot, the demo figures (gcxr.demo) and the ds.gcxr accessor: every figure renders headless to a valid PNG.

Small synthetic datasets for the geometry and the numbers (orientation, PSF
containment of a Gaussian, error bands); the stacked seed dataset where it is
cheap (it is a session fixture shared with other tests).
"""
from __future__ import annotations

import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import gcxr.accessor  # noqa: E402,F401  (registers ds.gcxr)
from gcxr import plot  # noqa: E402
from gcxr.demo import demo_plots  # noqa: E402
from gcxr.geom import EnergyAxis, SkyGeom  # noqa: E402

from conftest import REF, needs_data  # noqa: E402


# --------------------------------------------------------------------------- helpers
def assert_png(obj, path, dpi=60):
    """Save the figure of ``obj`` (axis, list of axes or figure) and check the PNG is real."""
    if isinstance(obj, (list, tuple)):
        obj = obj[0]
    fig = obj if isinstance(obj, matplotlib.figure.Figure) else obj.figure
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    check_png(path)


def check_png(path):
    assert path.exists(), path
    assert path.stat().st_size > 4000, (path, path.stat().st_size)
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    rgb = img[..., :3].reshape(-1, 3)
    assert np.ptp(rgb) > 0.3, "uniform image"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20, "too few colours"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def toy_dataset(sigma_psf=0.1) -> xr.Dataset:
    """3 x 2 deg galactic grid at 0.1 deg, 4 reco / 5 true energy bins, a Gaussian PSF and
    a 70/15/15 energy dispersion on a 0.5 deg IRF grid; a point-like excess at (1.0, 0.5)."""
    geom = SkyGeom.create((0.0, 0.0), 0.1, (3.0, 2.0))
    irf = SkyGeom.create((0.0, 0.0), 0.5, (3.0, 2.0))
    e = EnergyAxis.from_bounds(0.1, 10, 4)
    et = EnergyAxis.from_bounds(0.08, 12, 5, "energy_true")
    rng = np.random.default_rng(1)
    bkg = np.full((e.nbin,) + geom.shape, 2.0) * (e.centers[:, None, None] ** -1.5)
    lon, lat = geom.grid_lonlat()
    src = 20.0 * np.exp(-0.5 * ((((lon + 180) % 360 - 180) - 1.0) ** 2 + (lat - 0.5) ** 2) / 0.1 ** 2)
    counts = rng.poisson(bkg + src[None] * e.centers[:, None, None] ** -1.0).astype(float)
    rad_edges = np.linspace(0, 0.6, 61)
    rc = 0.5 * (rad_edges[1:] + rad_edges[:-1])
    prof = np.exp(-0.5 * rc ** 2 / sigma_psf ** 2) / (2 * np.pi * np.deg2rad(sigma_psf) ** 2)   # sr^-1
    psf = np.broadcast_to(prof[None, :, None, None], (et.nbin, rc.size) + irf.shape).copy()
    mat = np.zeros((et.nbin, e.nbin))
    for t in range(et.nbin):
        for r, w in ((t - 1, 0.15), (t, 0.7), (t + 1, 0.15)):
            if 0 <= r < e.nbin:
                mat[t, r] = w
    edisp = np.broadcast_to(mat[:, :, None, None], mat.shape + irf.shape).copy()
    irf_c = {k + "_irf": (k + "_irf", v.values, v.attrs) for k, v in irf.coords().items()}
    mask = np.ones(counts.shape, bool)
    mask[0, :, :3] = False
    ds = xr.Dataset(
        {"counts": (("energy", "lat", "lon"), counts, {"units": "1", "long_name": "Counts"}),
         "background": (("energy", "lat", "lon"), bkg, {"units": "1", "long_name": "Background"}),
         "mask_safe": (("energy", "lat", "lon"), mask),
         "exposure": (("energy_true", "lat", "lon"), np.full((et.nbin,) + geom.shape, 1e9), {"units": "m2 s"}),
         "psf": (("energy_true", "rad", "lat_irf", "lon_irf"), psf, {"units": "sr-1"}),
         "edisp": (("energy_true", "energy", "lat_irf", "lon_irf"), edisp),
         "exposure_irf": (("energy_true", "lat_irf", "lon_irf"), np.full((et.nbin,) + irf.shape, 1e9)),
         "energy_bounds": e.bounds(), "energy_true_bounds": et.bounds(),
         "rad_bounds": (("rad", "bnds"), np.stack([rad_edges[:-1], rad_edges[1:]], -1)),
         "livetime": 1800.0, "ontime": 1800.0},
        coords={**geom.coords(), **e.coords(), **et.coords(), **irf_c, "rad": ("rad", rc, {"units": "deg"})},
        attrs={"name": "toy", "frame": "galactic"})
    return ds.set_coords(["energy_bounds", "energy_true_bounds", "rad_bounds"])


@pytest.fixture(scope="module")
def toy():
    return toy_dataset()


@pytest.fixture(scope="module")
def seed_models():
    from gcxr.models import Models
    return Models.read(REF / "seed_models_stacked.yaml")


def ecpl():
    from gcxr.models import ExpCutoffPowerLawSpectralModel
    return ExpCutoffPowerLawSpectralModel(index=2.3, amplitude=2.8e-12, reference=1.0, lambda_=0.05)


# --------------------------------------------------------------------------- sky images
@pytest.mark.parametrize("flip_lon", [False, True])
@pytest.mark.parametrize("flip_lat", [False, True])
def test_image_orientation_lon_grows_to_the_left(tmp_path, flip_lon, flip_lat):
    lon = np.round(np.arange(2.0, -2.01, -0.1), 6)          # gcxr order: decreasing
    lat = np.round(np.arange(-1.0, 1.01, 0.1), 6)
    data = np.zeros((lat.size, lon.size))
    data[np.argmin(abs(lat - 0.5)), np.argmin(abs(lon - 1.5))] = 10.0        # (l, b) = (1.5, 0.5)
    data[np.argmin(abs(lat + 0.8)), np.argmin(abs(lon + 1.0))] = 5.0         # (l, b) = (-1.0, -0.8)
    da = xr.DataArray(data, dims=("lat", "lon"), coords={"lat": lat, "lon": lon}, name="counts",
                      attrs={"frame": "galactic"})
    if flip_lon:
        da = da.isel(lon=slice(None, None, -1))
    if flip_lat:
        da = da.isel(lat=slice(None, None, -1))
    ax = plot.plot_image(da)
    arr = np.asarray(ax.images[0].get_array())
    assert ax.wcs.wcs.cdelt[0] < 0 < ax.wcs.wcs.cdelt[1]       # longitude grows to the left, latitude up
    for value, (l_true, b_true) in ((10.0, (1.5, 0.5)), (5.0, (-1.0, -0.8))):
        iy, ix = np.argwhere(arr == value)[0]
        l_pix, b_pix = ax.wcs.pixel_to_world_values(ix, iy)
        assert ((l_pix - l_true + 180) % 360 - 180) == pytest.approx(0, abs=1e-6)
        assert b_pix == pytest.approx(b_true, abs=1e-6)
    # the brighter source, at larger longitude, is drawn left of the fainter one
    x10 = np.argwhere(arr == 10.0)[0][1]
    x5 = np.argwhere(arr == 5.0)[0][1]
    assert x10 < x5
    assert "Galactic longitude" in ax.coords[0].get_axislabel()
    assert_png(ax, tmp_path / "orient.png")


def test_plot_image_sums_energy_smooths_and_stretches(tmp_path, toy):
    counts = plot.masked(toy, "counts")
    assert float(counts.isel(energy=0, lon=slice(0, 3)).sum()) == 0.0
    ax = plot.plot_image(counts, smooth=0.15, stretch="sqrt", cmap="afmhot")
    arr = np.asarray(ax.images[0].get_array())
    assert arr.shape == (20, 30)
    assert "smoothed 0.15 deg" in ax.figure.axes[-1].get_ylabel()
    assert_png(ax, tmp_path / "counts.png")
    ax = plot.plot_image(toy["background"], stretch="log", add_cbar=False, title="bkg")
    assert len(ax.figure.axes) == 1
    assert_png(ax, tmp_path / "bkg.png")


def test_plot_image_clear_errors(toy):
    with pytest.raises(TypeError, match="pass one of them"):
        plot.plot_image(toy)
    with pytest.raises(ValueError, match="'obs'"):
        plot.plot_image(toy["counts"].expand_dims(obs=2))
    with pytest.raises(ValueError, match="no dim 'lat'"):
        plot.plot_image(toy["counts"].rename(lat="y"))
    with pytest.raises(ValueError, match="stretch must be one of"):
        plot.plot_image(toy["counts"], stretch="cubic")
    with pytest.raises(ValueError, match="frame must be one of"):
        plot.plot_image(toy["counts"], frame="fk5")
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match="WCSAxes"):
        plot.plot_image(toy["counts"], ax=ax)
    irregular = toy["counts"].isel(lon=[0, 1, 2, 5, 6])
    with pytest.raises(ValueError, match="'lon' coordinate is not a regular grid"):
        plot.plot_image(irregular)


def test_residual_grid_panels_per_band(tmp_path, toy):
    rng = np.random.default_rng(2)
    sig = xr.DataArray(rng.normal(size=(4, 20, 30)), dims=("band", "lat", "lon"),
                       coords={"lat": toy.lat, "lon": toy.lon, "energy_min": ("band", [0.1, 0.3, 1, 3]),
                               "energy_max": ("band", [0.3, 1, 3, 10])},
                       name="sqrt_ts", attrs={"long_name": "sqrt(TS)"})
    axes = plot.plot_residual_grid(sig, ncols=2)
    assert len(axes) == 4
    assert axes[1].get_title() == "0.3 - 1 TeV"
    im = axes[0].images[0]
    assert im.norm.vmin == -im.norm.vmax
    assert_png(axes, tmp_path / "grid.png")
    # a residual cube on energy: titles from the coordinate
    res = (toy["counts"] - toy["background"]).assign_attrs(long_name="counts - background")
    axes = plot.plot_residual_grid(res, smooth=0.1, vmax=3)
    assert axes[0].get_title().startswith("energy = 0.178")
    assert_png(axes, tmp_path / "grid2.png")
    with pytest.raises(ValueError, match="pass dim="):
        plot.plot_residual_grid(sig.expand_dims(obs=1))


def test_counts_background_excess_and_residuals(tmp_path, toy):
    axes = plot.plot_counts_background_excess(toy, smooth=0.1)
    assert [a.get_title() for a in axes] == ["counts", "background", "excess counts"]
    assert_png(axes, tmp_path / "cbe.png")
    npred = toy["background"] * 1.1
    axes = plot.plot_counts_background_excess(toy, npred=xr.Dataset({"npred": npred}))
    assert axes[1].get_title() == "npred"
    plt.close("all")
    ax = plot.plot_residuals(toy, npred, method="diff/sqrt(model)", smooth=0.1)
    assert_png(ax, tmp_path / "res.png")
    with pytest.raises(ValueError, match="method must be one of"):
        plot.plot_residuals(toy, method="ratio")
    with pytest.raises(ValueError, match="do not match counts"):
        plot.plot_counts_background_excess(toy, npred=npred.isel(energy=slice(0, 2)))


# --------------------------------------------------------------------------- IRFs
def test_psf_containment_of_a_gaussian(tmp_path):
    sigma = 0.1
    ds = toy_dataset(sigma_psf=sigma)
    ax = plot.plot_psf_containment(ds, fractions=(0.68, 0.95))
    r68, r95 = (line.get_ydata() for line in ax.get_lines())
    # a 2-D Gaussian holds fraction f within sigma * sqrt(-2 ln(1 - f))
    assert r68 == pytest.approx(sigma * np.sqrt(-2 * np.log(0.32)), abs=0.006)
    assert r95 == pytest.approx(sigma * np.sqrt(-2 * np.log(0.05)), abs=0.006)
    assert_png(ax, tmp_path / "psf.png")
    with pytest.raises(ValueError, match="outside the IRF grid"):
        plot.plot_psf_containment(ds, position=(40.0, 0.0))
    with pytest.raises(ValueError, match="fractions must be in"):
        plot.plot_psf_containment(ds, fractions=(68,))
    with pytest.raises(KeyError, match="'psf'"):
        plot.plot_psf_containment(ds.drop_vars("psf"))
    from astropy.coordinates import SkyCoord
    ax = plot.plot_psf_containment(ds, position=SkyCoord(0.5, 0.2, unit="deg", frame="galactic"))
    assert "(0.50, 0.20)" in ax.get_title()


def test_edisp_matrix(tmp_path, toy):
    ax = plot.plot_edisp(toy, position=(0.3, -0.2))
    mesh = ax.collections[0]
    assert mesh.get_array().max() == pytest.approx(0.7)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert_png(ax, tmp_path / "edisp.png")
    zero = toy.assign(edisp=toy["edisp"] * 0)
    with pytest.raises(ValueError, match="energy dispersion is zero"):
        plot.plot_edisp(zero)
    with pytest.raises(ValueError, match="'obs'"):
        plot.plot_edisp(toy.expand_dims(obs=2))


# --------------------------------------------------------------------------- distributions and spectra
def test_significance_distribution_fits_a_normal(tmp_path):
    rng = np.random.default_rng(3)
    vals = rng.normal(0.3, 1.2, size=(200, 200))
    vals[:5] = np.nan
    ax = plot.plot_significance_distribution(xr.DataArray(vals, dims=("lat", "lon")))
    mu, sigma = ax.gcxr_normal_fit
    assert mu == pytest.approx(0.3, abs=0.02) and sigma == pytest.approx(1.2, abs=0.02)
    labels = ax.get_legend_handles_labels()[1]
    assert any(f"{mu:.2f}" in s and f"{sigma:.2f}" in s for s in labels)
    assert any("= 0" in s and "= 1" in s for s in labels)
    assert_png(ax, tmp_path / "dist.png")
    with pytest.raises(ValueError, match="finite values"):
        plot.plot_significance_distribution(np.full(10, np.nan))


def test_model_band_by_hand():
    """At E = reference the index does not matter: var = (sA e^-l)^2 + (A sl e^-l)^2 (E = 1 TeV)."""
    m = ecpl()
    names = m.parameters.names
    sA, sl, si = 3e-13, 0.02, 0.1
    cov = np.zeros((len(names), len(names)))
    cov[names.index("amplitude"), names.index("amplitude")] = sA ** 2
    cov[names.index("lambda_"), names.index("lambda_")] = sl ** 2
    cov[names.index("index"), names.index("index")] = si ** 2
    from gcxr.estimators import spectrum_band
    band = spectrum_band(m, np.array([1.0, 10.0]), covariance=cov)
    A, lam = 2.8e-12, 0.05
    expect = np.hypot(sA * np.exp(-lam), A * sl * np.exp(-lam))
    assert band["dnde_err"].values[0] == pytest.approx(expect, rel=1e-4)
    assert band["e2dnde_err"].values[1] == pytest.approx(100 * band["dnde_err"].values[1])


def test_spectrum_with_band_from_fit_result_array_and_dataset(tmp_path):
    from gcxr.fit import FitResult
    from gcxr.models import PointSpatialModel, SkyModel
    src = SkyModel(spectral_model=ecpl(), spatial_model=PointSpatialModel(lon_0=0, lat_0=0, frame="galactic"),
                   name="src")
    cov = np.diag([0.1, 3e-13, 0.02]) ** 2
    cov[0, 1] = cov[1, 0] = 0.5 * 0.1 * 3e-13
    fr = FitResult(True, 10, 0.0, [], cov, ["src.index", "src.amplitude", "src.lambda_"])
    ax = plot.plot_spectrum(src, energy_bounds=(0.1, 50), covariance=fr)
    assert len(ax.collections) == 1                     # the band
    x, y = ax.get_lines()[0].get_data()
    assert y[0] == pytest.approx(src.spectral_model.evaluate(0.1) * 0.01)
    assert ax.get_legend_handles_labels()[1] == ["src"]
    assert_png(ax, tmp_path / "spec.png")
    # a band Dataset as the estimators' spectrum_band returns it
    e = np.geomspace(0.1, 100, 30)
    dnde = ecpl().evaluate(e)
    band = xr.Dataset({"dnde": ("energy", dnde), "dnde_err": ("energy", 0.2 * dnde),
                       "e2dnde": ("energy", dnde * e ** 2), "e2dnde_err": ("energy", 0.2 * dnde * e ** 2)},
                      coords={"energy": e})
    ax = plot.plot_spectrum(ecpl(), band=band, sed_type="dnde", label="ecpl")
    assert len(ax.collections) == 1
    assert_png(ax, tmp_path / "spec_dnde.png")
    with pytest.raises(ValueError, match="sed_type must be one of"):
        plot.plot_spectrum(ecpl(), sed_type="flux")
    with pytest.raises(KeyError, match="e2dnde_err"):
        plot.plot_spectrum(ecpl(), band=band.drop_vars("e2dnde_err"))
    with pytest.raises(ValueError, match="not finite"):
        plot.plot_spectrum(src, covariance=FitResult(False, 1, 0.0, [], np.full((3, 3), np.nan), fr.names))
    with pytest.raises(ValueError, match="shape"):
        plot.plot_spectrum(ecpl(), covariance=np.eye(2))


def test_spectra_on_one_axis(tmp_path):
    a, b = ecpl(), ecpl()
    b.parameters["index"].value = 2.1
    n = len(a.parameters)
    cov = np.diag(np.r_[0.05, 2e-13, 0, 0.01, 0][:n] ** 2)
    ax = plot.plot_spectra({"stacked": a, "joint": b}, covariances={"stacked": cov})
    assert ax.get_legend_handles_labels()[1] == ["stacked", "joint"]
    assert len(ax.collections) == 1
    assert_png(ax, tmp_path / "spectra.png")
    with pytest.raises(ValueError, match="no models"):
        plot.plot_spectra([])


def fake_flux_points():
    edges = np.geomspace(0.1, 10, 7)
    e_ref = np.sqrt(edges[1:] * edges[:-1])
    dnde = ecpl().evaluate(e_ref)
    is_ul = np.array([False] * 5 + [True])
    return xr.Dataset({"e_ref": ("energy", e_ref), "e_min": ("energy", edges[:-1]), "e_max": ("energy", edges[1:]),
                       "dnde": ("energy", dnde), "dnde_err": ("energy", 0.1 * dnde),
                       "e2dnde": ("energy", dnde * e_ref ** 2), "e2dnde_err": ("energy", 0.1 * dnde * e_ref ** 2),
                       "ts": ("energy", [50, 40, 30, 20, 10, 1.0]),
                       "sqrt_ts": ("energy", np.sqrt([50, 40, 30, 20, 10, 1.0])),
                       "is_ul": ("energy", is_ul), "e2dnde_ul": ("energy", 2 * dnde * e_ref ** 2)},
                      coords={"energy": e_ref})


def test_flux_points_with_upper_limits(tmp_path):
    fp = fake_flux_points()
    ax = plot.plot_spectrum(ecpl(), energy_bounds=(0.1, 10), label="model")
    ax = plot.plot_flux_points(fp, ax=ax)
    assert len(ax.containers) == 2                      # points, and the upper limits
    ul = ax.containers[1]
    assert ul.has_yerr and len(ul.lines[1]) >= 1         # arrow caps
    assert_png(ax, tmp_path / "fp.png")
    with pytest.raises(KeyError, match="e2dnde_ul"):
        plot.plot_flux_points(fp.drop_vars("e2dnde_ul"))
    with pytest.raises(KeyError, match="'e2dnde_err'"):
        plot.plot_flux_points(fp.drop_vars("e2dnde_err"))


# --------------------------------------------------------------------------- hvplot
def test_interactive_cube_slider_and_offline_html(tmp_path, toy):
    import holoviews as hv
    cube = plot.masked(toy, "counts")
    from gcxr.plot import interactive
    with pytest.warns(UserWarning, match="datashader") if not interactive._has_datashader() else _nullcontext():
        interactive._DATASHADER_WARNED = False
        dyn = plot.interactive_cube(cube)
    assert [d.name for d in dyn.kdims] == ["energy"]
    obj = plot.interactive_cube(cube, rasterize=False, dynamic=False)
    assert isinstance(obj, hv.HoloMap)
    assert [d.name for d in obj.kdims] == ["energy"]
    assert len(obj) == toy.sizes["energy"]
    e1 = float(toy.energy[1])
    img = obj[e1]
    # values are where the coordinates say, despite gcxr's decreasing lon
    lon, lat = float(toy.lon[4]), float(toy.lat[7])
    assert img[lon, lat] == pytest.approx(float(cube.isel(energy=1, lat=7, lon=4)))
    assert hv.Store.lookup_options("bokeh", img, "plot").kwargs.get("invert_xaxis") is True
    fig = hv.render(obj, backend="bokeh")
    assert fig is not None
    path = plot.save_html(obj, tmp_path / "cube.html", resources="inline")
    html = path.read_text()
    assert path.stat().st_size > 200_000              # BokehJS inline
    assert not re.findall(r"<script[^>]*\bsrc=[\"']https?://", html)       # no external scripts: works offline
    assert re.findall(r"<script[^>]*\bsrc=[\"']https?://", plot.save_html(obj, tmp_path / "c.html", "cdn").read_text())
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(TypeError, match="dynamic=False"):
        plot.save_html(dyn, tmp_path / "dyn.html")
    with pytest.raises(ValueError, match="no .* dim to slide over"):
        plot.interactive_cube(cube.sum("energy"))


def test_interactive_map(tmp_path, toy):
    import holoviews as hv
    m = plot.interactive_map(toy["counts"], rasterize=False)
    assert isinstance(m, hv.Image)
    assert float(m.data["counts"].sum()) == pytest.approx(float(toy["counts"].sum()))
    path = plot.save_html(m, tmp_path / "map.html", resources="cdn")
    assert path.stat().st_size > 5000


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- accessor and demo
def test_accessor_delegates(tmp_path, toy):
    assert toy.gcxr.geom.shape == (20, 30)
    assert toy.gcxr.irf_geom.shape == (4, 6)
    info = toy.gcxr.info()
    assert info["counts"] == pytest.approx(float(toy["counts"].where(toy["mask_safe"]).sum()))
    assert_png(toy.gcxr.plot_counts(smooth=0.1), tmp_path / "a_counts.png")
    assert_png(toy.gcxr.plot_residuals(), tmp_path / "a_res.png")
    assert_png(toy.gcxr.plot_overview(), tmp_path / "a_over.png")
    assert_png(toy.gcxr.plot_psf(), tmp_path / "a_psf.png")
    assert_png(toy.gcxr.plot_edisp(), tmp_path / "a_edisp.png")
    obj = toy.gcxr.interactive("background", rasterize=False)
    assert [d.name for d in obj.kdims] == ["energy"]


def test_demo_plots_from_files(tmp_path, toy):
    """The CLI path: demo_plots(out) reads out/datasets.nc; no models -> no spectrum."""
    from gcxr.io import write_datasets
    write_datasets(toy, tmp_path / "datasets.nc")
    paths = demo_plots(tmp_path)
    names = [p.name for p in paths]
    assert names == ["counts.png", "background.png", "excess.png", "significance_distribution.png",
                     "psf_containment.png", "edisp.png"]
    for p in paths:
        check_png(p)
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(FileNotFoundError, match="datasets.nc"):
        demo_plots(tmp_path / "nowhere")


def test_demo_plots_with_runs_along_obs(tmp_path, toy):
    """A joint (non-stacked) file: images summed over runs, IRFs of the first run, npred per run."""
    from gcxr.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
    runs = xr.concat([toy, toy.assign(counts=toy["counts"] * 0 + 1)], dim="obs").assign_coords(obs=[11, 12])
    runs = runs.assign(exposure=runs["exposure"] * 1e-7)
    src = SkyModel(spectral_model=PowerLawSpectralModel(index=2.5, amplitude=1e-11),
                   spatial_model=PointSpatialModel(lon_0=1.0, lat_0=0.5, frame="galactic"), name="src")
    paths = demo_plots(tmp_path, ds=runs, models=Models([src]))
    assert [p.name for p in paths][-2:] == ["psf_containment.png", "edisp.png"]
    assert "spectrum.png" in [p.name for p in paths]
    for p in paths:
        check_png(p)


# --------------------------------------------------------------------------- the seed dataset
@needs_data
def test_seed_demo_plots_with_models(tmp_path, seed_stacked, seed_models):
    from gcxr.fit import FitResult
    names = ["gc-source.index", "gc-source.amplitude", "gc-source.lambda_"]
    cov = np.diag([0.15, 3.1e-13, 0.068]) ** 2
    fr = FitResult(True, 1, 0.0, [], cov, names)
    paths = demo_plots(tmp_path, ds=seed_stacked, models=seed_models, fit_result=fr)
    assert [p.name for p in paths] == ["counts.png", "background.png", "excess.png", "residual_significance.png",
                                       "significance_distribution.png", "spectrum.png", "psf_containment.png",
                                       "edisp.png"]
    for p in paths:
        check_png(p)


@needs_data
def test_seed_images_accessor_and_irfs(tmp_path, seed_stacked, seed_models):
    from gcxr.contract import geom_of
    from gcxr.npred import npred_cubes
    ds = seed_stacked
    assert ds.gcxr.geom == geom_of(ds)[0]
    npred = npred_cubes(ds, seed_models)
    axes = ds.gcxr.plot_overview(npred=npred, smooth=0.05)
    assert_png(axes, tmp_path / "overview.png")
    ax = ds.gcxr.plot_psf(position=(0.0, 0.0))
    r68 = ax.get_lines()[0].get_ydata()
    assert 0.02 < np.nanmin(r68) < np.nanmax(r68) < 0.3          # CTA-1DC: ~0.15 deg at 0.1 TeV
    assert_png(ax, tmp_path / "psf.png")
    # the Galactic Centre source is where the image says it is
    ax = plot.plot_image(plot.masked(ds, "counts"), smooth=0.05)
    arr = np.asarray(ax.images[0].get_array())
    near = np.zeros_like(arr, bool)
    lon, lat = ax.wcs.pixel_to_world_values(*np.meshgrid(np.arange(arr.shape[1]), np.arange(arr.shape[0])))
    near[(np.abs((lon + 180) % 360 - 180) < 0.3) & (np.abs(lat) < 0.3)] = True
    iy, ix = np.unravel_index(np.nanargmax(arr), arr.shape)
    assert near[iy, ix]
    plt.close("all")


@needs_data
def test_estimators_outputs_if_available(tmp_path, seed_stacked, seed_models):
    est = pytest.importorskip("gcxr.estimators")
    from gcxr.npred import npred_cubes
    ds = seed_stacked
    npred = npred_cubes(ds, seed_models)
    ex = est.excess_map(ds, npred=npred["npred"], correlation_radius=0.1)
    assert_png(plot.plot_residual_grid(ex["sqrt_ts"]) if "band" in ex["sqrt_ts"].dims and ex.sizes["band"] > 1
               else plot.plot_image(ex["sqrt_ts"].squeeze(), symmetric=True, cmap="RdBu_r"),
               tmp_path / "est_sqrt_ts.png")
    assert_png(plot.plot_significance_distribution(ex["sqrt_ts"]), tmp_path / "est_dist.png")


def test_large_map_is_rasterised(tmp_path):
    """With datashader (a test dependency), a 1000 x 2000 map reaches the browser as a screen-sized raster."""
    pytest.importorskip("datashader")
    import holoviews as hv
    lon = np.linspace(10, -10, 2000)
    lat = np.linspace(-5, 5, 1000)
    da = xr.DataArray(np.random.default_rng(0).poisson(1.0, (1000, 2000)).astype(float), dims=("lat", "lon"),
                      coords={"lat": lat, "lon": lon}, name="counts", attrs={"frame": "galactic"})
    m = plot.interactive_map(da, rasterize=True)
    assert isinstance(m, hv.DynamicMap)
    assert hv.render(m, backend="bokeh") is not None
    img = m[()]
    shape = img.data["counts"].shape
    assert shape[0] * shape[1] < da.size / 4                  # aggregated, not shipped pixel by pixel
    assert float(img.data["counts"].mean()) == pytest.approx(1.0, rel=0.05)


def test_plot_package_keeps_its_public_names():
    """gcxr.plot re-exports the figures of its modules; demo_plots (gcxr.demo) resolves on first use."""
    import gcxr.plot as gp
    from gcxr import demo
    for name in gp.__all__:
        assert callable(getattr(gp, name)), name
    assert gp.demo_plots is demo.demo_plots
    assert gp.plot_spectrum.__module__ == "gcxr.plot.spectra"


def test_estimators_behind_the_figures(toy):
    """The numbers the figures draw come from gcxr.estimators: smoothing, IRFs at a position."""
    from gcxr.estimators import edisp_matrix, psf_containment, smooth_map
    flat = xr.full_like(toy["counts"].isel(energy=0, drop=True), 2.0, dtype=float)
    holes = flat.where(flat.lat < 0.3)
    sm = smooth_map(holes, 0.2)
    assert np.allclose(sm.values[np.isfinite(holes.values)], 2.0)       # a mean of what is there, edges too
    assert np.array_equal(np.isnan(sm.values), np.isnan(holes.values))
    assert sm.dims == holes.dims and sm.attrs == holes.attrs
    with pytest.raises(ValueError, match="positive width"):
        smooth_map(flat, 0.0)
    sigma = 0.1
    radii = psf_containment(toy_dataset(sigma_psf=sigma), fractions=(0.68,))
    assert radii.dims == ("fraction", "energy_true") and radii.attrs["units"] == "deg"
    assert radii.sel(fraction=0.68).values == pytest.approx(sigma * np.sqrt(-2 * np.log(0.32)), abs=0.006)
    mat = edisp_matrix(toy, position=(0.3, -0.2))
    assert mat.dims == ("energy_true", "energy") and float(mat.max()) == pytest.approx(0.7)
    assert (mat["energy_max"].values > mat["energy_min"].values).all()
    with pytest.raises(ValueError, match="'obs'"):
        edisp_matrix(toy.expand_dims(obs=2))
