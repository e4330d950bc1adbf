"""Unit tests with numbers derivable by hand (issue 15, item 5).

Every input is a tiny synthetic table or dataset built here (no shared data); every expected value
is derived in the test's docstring or written as a one-line formula beside the assertion.  They pin
the IRF evaluators (:mod:`gcxr.irf`), the PSF and EDISP kernels, npred of a point source on a flat
exposure (:mod:`gcxr.npred`), the Cash statistic (:mod:`gcxr.stats`) and the likelihood's sparse and
dense forms (:mod:`gcxr.likelihood`) independently of the end-to-end parity with gammapy.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gcxr.geom import EnergyAxis, SkyGeom
from gcxr.irf import DEG2_PER_SR, eval_aeff, eval_bkg_rate, eval_edisp_kernel, eval_psf_map, trapz_loglog
from gcxr.irf.background import BkgEvaluator, integrate_log_rate
from gcxr.models import FoVBackgroundModel, Models, PointSpatialModel, PowerLawSpectralModel, SkyModel
from gcxr.contract import geom_of
from gcxr.npred import containment_radius, npred_cubes, oddup, psf_kernel
from gcxr.stats import TRUNCATION, cash, cash_counts_significance, cash_sum, cash_ts_known_background

DEG = np.pi / 180.0


# --------------------------------------------------------------------------- tiny IRF tables
def _axis(name: str, edges, log: bool) -> dict:
    """The coordinates ``read_*`` attach to an IRF axis: centres (geometric for energies) and lo/hi."""
    e = np.asarray(edges, float)
    c = np.sqrt(e[:-1] * e[1:]) if log else 0.5 * (e[:-1] + e[1:])
    return {name: c, f"{name}_lo": (name, e[:-1]), f"{name}_hi": (name, e[1:])}


def aeff_table(values, energy_edges, offset_edges) -> xr.DataArray:
    coords = {**_axis("energy_true", energy_edges, True), **_axis("offset", offset_edges, False)}
    return xr.DataArray(np.asarray(values, float), dims=("energy_true", "offset"), coords=coords,
                        attrs={"units": "m2"}, name="aeff")


def edisp_table(values, energy_edges, migra_edges, offset_edges) -> xr.DataArray:
    coords = {**_axis("energy_true", energy_edges, True), **_axis("migra", migra_edges, False),
              **_axis("offset", offset_edges, False)}
    return xr.DataArray(np.asarray(values, float), dims=("energy_true", "migra", "offset"), coords=coords,
                        name="edisp")


def psf_table(values, energy_edges, offset_edges, rad_edges) -> xr.DataArray:
    coords = {**_axis("energy_true", energy_edges, True), **_axis("offset", offset_edges, False),
              **_axis("rad", rad_edges, False)}
    return xr.DataArray(np.asarray(values, float), dims=("energy_true", "offset", "rad"), coords=coords,
                        attrs={"units": "sr-1", "hdu_class": "psf_table"}, name="psf")


def psf_3gauss(params: dict, energy_edges, offset_edges) -> xr.DataArray:
    """A ``psf_3gauss`` table with the same parameter values at every (energy, offset) node."""
    names = ("SCALE", "SIGMA_1", "AMPL_2", "SIGMA_2", "AMPL_3", "SIGMA_3")
    shape = (len(energy_edges) - 1, len(offset_edges) - 1)
    data = np.stack([np.full(shape, float(params[n])) for n in names])
    coords = {"param": list(names), **_axis("energy_true", energy_edges, True), **_axis("offset", offset_edges, False)}
    return xr.DataArray(data, dims=("param", "energy_true", "offset"), coords=coords,
                        attrs={"units": "", "hdu_class": "psf_3gauss"}, name="psf")


def bkg_table(values, energy_edges, lon_edges, lat_edges) -> xr.DataArray:
    coords = {**_axis("energy", energy_edges, True), **_axis("fov_lon", lon_edges, False),
              **_axis("fov_lat", lat_edges, False)}
    return xr.DataArray(np.asarray(values, float), dims=("energy", "fov_lon", "fov_lat"), coords=coords,
                        attrs={"units": "s-1 TeV-1 sr-1", "tiny": float(np.finfo(np.float32).tiny)}, name="bkg")


# --------------------------------------------------------------------------- effective area
# Energy edges [0.1, 1, 10] TeV -> nodes at sqrt(0.1) and sqrt(10) TeV, whose ln-midpoint is 1 TeV;
# offset edges [0, 1, 2] deg -> nodes at 0.5 and 1.5 deg.
AEFF = aeff_table([[100.0, 50.0], [300.0, 150.0]], [0.1, 1.0, 10.0], [0.0, 1.0, 2.0])


@pytest.mark.parametrize("energy, offset, expected", [
    (np.sqrt(0.1), 0.5, 100.0),            # on a node: the table value
    (np.sqrt(10.0), 1.5, 150.0),
    (1.0, 0.5, 200.0),                      # halfway in ln E between 100 and 300
    (1.0, 1.0, 150.0),                      # the centre of the four nodes: their mean (100+50+300+150)/4
    (np.sqrt(0.1), 0.25, 112.5),            # below the first offset node: linear extrapolation 100 + (50-100)(0.25-0.5)
    (np.sqrt(0.1), 2.5, 0.0),               # outside the offset edges: 0
    (20.0, 0.5, 0.0),                       # outside the energy edges: 0
    (0.05, 0.5, 0.0),
])
def test_aeff_bilinear_in_log_energy_and_offset(energy, offset, expected):
    """A_eff is bilinear in (ln E, offset) between the node centres, 0 outside the axis edges."""
    out = eval_aeff(AEFF, np.array([energy]), np.array([offset]))
    assert out.shape == (1, 1)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_aeff_negative_extrapolation_is_clipped_to_zero():
    """Nodes 100 and 10 m2 at offsets 0.5 and 1.5 deg: at 1.95 deg the line gives 10 - 90 x 0.45 = -30.5 -> 0;
    at 1.0 deg it gives (100 + 10) / 2 = 55."""
    a = aeff_table([[100.0, 10.0]], [0.5, 2.0], [0.0, 1.0, 2.0])
    out = eval_aeff(a, np.array([1.0]), np.array([[1.0, 1.95]]))
    assert out.shape == (1, 1, 2)                       # (nE, *offset.shape)
    np.testing.assert_allclose(out[0, 0], [55.0, 0.0], rtol=1e-12)


# --------------------------------------------------------------------------- energy dispersion
E_EDGES = [0.1, 1.0, 10.0]                              # true-energy centres sqrt(0.1), sqrt(10) TeV
OFF_EDGES = [0.0, 1.0, 2.0]


def test_edisp_delta_migration_is_the_identity():
    """All the probability in migra [0.95, 1.05]: a true energy at a reco-bin centre stays in that bin.

    True centres 10^-0.5 and 10^0.5 TeV; reco edges [0.1, 1, 10] TeV give, per true energy, migra edges
    [10^-0.5, 10^0.5, 10^1.5] and [10^-1.5, 10^-0.5, 10^0.5]: [0.95, 1.05] lies inside bin t of true energy t.
    """
    migra = [0.2, 0.95, 1.05, 3.0]
    dens = np.zeros((2, 3, 2))
    dens[:, 1, :] = 1.0 / 0.1                           # density 10 on a 0.1 wide bin: integral 1
    ed = edisp_table(dens, E_EDGES, migra, OFF_EDGES)
    et = np.sqrt([0.1 * 1.0, 1.0 * 10.0])
    K = eval_edisp_kernel(ed, et, np.array(E_EDGES), np.array([0.5, 1.3]))
    assert K.shape == (2, 2, 2)                         # (n_true, n_reco, *offset.shape)
    for p in range(2):
        np.testing.assert_allclose(K[:, :, p], np.eye(2), atol=1e-12)


@pytest.mark.parametrize("reco_edges, expected", [
    ([0.5, 1.0, 2.0], [1 / 3, 2 / 3]),                  # migra [0.5, 1] and [1, 2] of [0.5, 2]: 0.5/1.5, 1/1.5
    ([0.25, 0.75, 4.0], [1 / 6, 5 / 6]),                # [0.5, 0.75] and [0.75, 2] (edges clipped to the table)
    ([0.5, 2.0], [1.0]),                                # the whole migra range
    ([2.0, 4.0], [0.0]),                                # above the migra range: nothing
])
def test_edisp_flat_migration_gives_the_fractions_of_its_width(reco_edges, expected):
    """A flat density on migra [0.5, 2] (two bins of equal density), true energy 1 TeV: the probability of
    a reco bin [a, b] TeV is the length of [a, b] n [0.5, 2] divided by 1.5."""
    migra = [0.5, 1.0, 2.0]
    ed = edisp_table(np.full((2, 2, 2), 1.0 / 1.5), [0.1, 10.0, 100.0], migra, OFF_EDGES)
    # true-energy nodes sqrt(1) = 1 and sqrt(1000) TeV: evaluate at the first node, 1 TeV
    K = eval_edisp_kernel(ed, np.array([1.0]), np.array(reco_edges, float), np.array(0.7))
    assert K.shape == (1, len(expected))
    np.testing.assert_allclose(K[0], expected, rtol=1e-12, atol=1e-12)


def test_edisp_zero_outside_the_offset_edges_and_normalised_inside():
    """Offsets beyond the table's edges get an all-zero row; inside, an unnormalised density (x7) is
    normalised along migra, so the row sums to 1 when the reco edges cover the migra range."""
    ed = edisp_table(np.full((2, 2, 2), 7.0), [0.1, 10.0, 100.0], [0.5, 1.0, 2.0], OFF_EDGES)
    K = eval_edisp_kernel(ed, np.array([1.0]), np.array([0.1, 1.0, 10.0]), np.array([0.3, 1.99, 2.5, -0.1]))
    np.testing.assert_allclose(K[0].sum(axis=0), [1.0, 1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(K[0, :, 0], [1 / 3, 2 / 3], rtol=1e-12)


# --------------------------------------------------------------------------- PSF evaluators
RAD = np.linspace(0.0, 0.66, 67)                        # the reference's rad axis, 0.01 deg bins


def test_psf_table_uniform_disk():
    """A table constant in rad up to R = 0.66 deg normalises to 1 / (pi R^2) sr^-1 exactly: on uniform bins
    sum_r 2 pi r_c dr = pi sum (r_hi^2 - r_lo^2) = pi R^2 (R in radians).  The level of the table and its
    energy dependence (x1 and x5) cancel in the normalisation."""
    tab = np.ones((2, 2, RAD.size - 1))
    tab[1] *= 5.0
    psf = psf_table(tab, E_EDGES, OFF_EDGES, RAD)
    out = eval_psf_map(psf, np.array([0.5, 1.0, 2.0]), np.array([0.2, 1.7]), rad_edges=RAD)
    assert out.shape == (3, RAD.size - 1, 2)
    np.testing.assert_allclose(out, 1.0 / (np.pi * (0.66 * DEG) ** 2), rtol=1e-12)


def test_psf_table_zero_outside_the_axes():
    """Offsets outside [0, 2] deg and energies outside [0.1, 10] TeV get a zero PSF (no normalisation)."""
    psf = psf_table(np.ones((2, 2, RAD.size - 1)), E_EDGES, OFF_EDGES, RAD)
    out = eval_psf_map(psf, np.array([0.05, 1.0, 20.0]), np.array([1.0, 2.5]), rad_edges=RAD)
    assert np.all(out[0] == 0) and np.all(out[2] == 0) and np.all(out[:, :, 1] == 0)
    assert np.all(out[1, :, 0] > 0)


def _gauss_sr(r_deg, sigma_deg):
    """A normalised 2-D Gaussian in sr^-1: exp(-r^2 / 2 s^2) / (2 pi s^2) deg^-2 x (180/pi)^2 deg^2/sr."""
    return np.exp(-0.5 * (r_deg / sigma_deg) ** 2) / (2 * np.pi * sigma_deg ** 2) * DEG2_PER_SR


def test_psf_3gauss_single_gaussian():
    """SCALE x exp(-r^2 / 2 s1^2) with AMPL_2 = AMPL_3 = 0: the normalised Gaussian of width s1 = 0.1 deg.
    The grid normalisation (midpoint rule on 0.01 deg bins) differs from the analytic one by < 1e-3."""
    psf = psf_3gauss(dict(SCALE=3.0, SIGMA_1=0.1, AMPL_2=0.0, SIGMA_2=0.3, AMPL_3=0.0, SIGMA_3=0.5),
                     E_EDGES, OFF_EDGES)
    rc = 0.5 * (RAD[:-1] + RAD[1:])
    out = eval_psf_map(psf, np.array([1.0]), np.array([0.8]), rad_edges=RAD)[0, :, 0]
    np.testing.assert_allclose(out, _gauss_sr(rc, 0.1), rtol=1e-3, atol=1e-6 * out.max())


def test_psf_3gauss_two_gaussians_of_equal_weight():
    """Component i has integral 2 pi SCALE AMPL_i SIGMA_i^2 (deg^2): with SIGMA = 0.05, 0.2 deg and
    AMPL_2 = (0.05 / 0.2)^2 the two integrals are equal, so P = (G_0.05 + G_0.2) / 2."""
    psf = psf_3gauss(dict(SCALE=1.0, SIGMA_1=0.05, AMPL_2=(0.05 / 0.2) ** 2, SIGMA_2=0.2, AMPL_3=0.0, SIGMA_3=1.0),
                     E_EDGES, OFF_EDGES)
    rc = 0.5 * (RAD[:-1] + RAD[1:])
    out = eval_psf_map(psf, np.array([2.0]), np.array([1.0]), rad_edges=RAD)[0, :, 0]
    expected = 0.5 * (_gauss_sr(rc, 0.05) + _gauss_sr(rc, 0.2))
    np.testing.assert_allclose(out, expected, rtol=5e-3, atol=1e-6 * out.max())


def test_containment_radius_of_a_gaussian():
    """A 2-D Gaussian holds 1 - exp(-r^2 / 2 s^2) within r: the 68 % radius is s sqrt(-2 ln 0.32) = 1.5096 s
    (to 1.5e-3 deg: the 20x finer grid has 5e-4 deg steps) and the 99.9 % radius s sqrt(-2 ln 0.001) = 3.717 s
    to one rad bin (0.01 deg): there the cumulative rises by only r / s^2 exp(-r^2 / 2 s^2) = 0.037 per deg
    for s = 0.1 deg, so the midpoint-rule cumulative of 0.01 deg bins (off by ~3e-4) moves it by ~0.01 deg."""
    rc = 0.5 * (RAD[:-1] + RAD[1:])
    prof = _gauss_sr(rc, 0.1)[None] / DEG2_PER_SR                  # deg^-2
    for frac, atol in ((0.68, 1.5e-3), (0.999, 0.01)):
        r = containment_radius(prof, RAD, frac)
        np.testing.assert_allclose(r, 0.1 * np.sqrt(-2 * np.log(1 - frac)), atol=atol)


# --------------------------------------------------------------------------- background
def test_bkg_power_law_in_energy_is_exact_between_nodes():
    """ln R is interpolated linearly in ln E: a table R = 2 E^-2.5 (at the nodes) is reproduced exactly at
    any energy between the nodes, and extrapolated as the same power law up to the table edges."""
    e_edges = np.array([0.1, 1.0, 10.0, 100.0])
    nodes = np.sqrt(e_edges[:-1] * e_edges[1:])
    tab = (2.0 * nodes ** -2.5)[:, None, None] * np.ones((1, 2, 2))
    bkg = bkg_table(tab, e_edges, [-3.0, 0.0, 3.0], [-3.0, 0.0, 3.0])
    energy = np.array([0.12, 0.5, 3.0, 40.0, 90.0])
    out = eval_bkg_rate(bkg, energy, np.array([0.3, -2.0]), np.array([1.0, 2.9]))
    np.testing.assert_allclose(out, (2.0 * energy ** -2.5)[:, None] * np.ones((1, 2)), rtol=1e-12)
    np.testing.assert_allclose(eval_bkg_rate(bkg, energy, np.array([0.3]), np.array([1.0]), log=True)[:, 0],
                               np.log(2.0) - 2.5 * np.log(energy), rtol=1e-12)


def test_bkg_exponential_in_fov_is_exact_and_zero_outside():
    """ln R is linear in fov_lon: a table R = exp(0.5 lon) (nodes at lon = -1.5, 1.5 deg) gives exp(0.5 lon)
    at any lon; outside the FoV edges (|lon| or |lat| > 3 deg) or the energy edges the rate is 0 (ln: -inf)."""
    lon_nodes = np.array([-1.5, 1.5])
    tab = np.exp(0.5 * lon_nodes)[None, :, None] * np.ones((2, 1, 2))
    bkg = bkg_table(tab, [0.1, 1.0, 10.0], [-3.0, 0.0, 3.0], [-3.0, 0.0, 3.0])
    lon = np.array([-2.9, 0.0, 0.7, 3.5, 0.0])
    lat = np.array([0.0, 2.0, -1.0, 0.0, -3.2])
    out = eval_bkg_rate(bkg, np.array([1.0, 20.0]), lon, lat)
    np.testing.assert_allclose(out[0], [np.exp(-1.45), 1.0, np.exp(0.35), 0.0, 0.0], rtol=1e-12)
    assert np.all(out[1] == 0)                                               # 20 TeV: beyond the energy edges
    lg = eval_bkg_rate(bkg, np.array([1.0]), lon, lat, log=True)[0]
    assert np.all(np.isneginf(lg[3:]))


def test_power_law_segment_integrals():
    """trapz_loglog and integrate_log_rate integrate a power law exactly: int_1^10 E^-2 dE = 1 - 1/10 = 0.9,
    int_10^100 E^-2 dE = 0.09; and E^-1 (index 1, the logarithmic case): int_1^10 dE/E = ln 10."""
    e = np.array([1.0, 10.0, 100.0])
    np.testing.assert_allclose(trapz_loglog(e ** -2.0, e), [0.9, 0.09], rtol=1e-12)
    np.testing.assert_allclose(integrate_log_rate(np.log(e ** -2.0), e), [0.9, 0.09], rtol=1e-12)
    np.testing.assert_allclose(trapz_loglog(1.0 / e, e), [np.log(10)] * 2, rtol=1e-12)
    np.testing.assert_allclose(integrate_log_rate(np.log(1.0 / e), e), [np.log(10)] * 2, rtol=1e-12)


def test_bkg_evaluator_integrates_the_rate_over_energy_bins():
    """R = 3 E^-2 s^-1 TeV^-1 sr^-1 integrated over [1, 10] TeV: 3 (1 - 1/10) = 2.7, times a scale of 2
    (e.g. solid angle x livetime) per position: 5.4."""
    e_edges = np.array([0.1, 1.0, 10.0, 100.0])
    nodes = np.sqrt(e_edges[:-1] * e_edges[1:])
    bkg = bkg_table((3.0 * nodes ** -2.0)[:, None, None] * np.ones((1, 2, 2)), e_edges, [-3.0, 0.0, 3.0],
                    [-3.0, 0.0, 3.0])
    ev = BkgEvaluator(bkg, np.array([1.0, 10.0]))
    out = ev.integrate(np.array([0.0, 1.0]), np.array([0.0, -1.0]), scale=np.array([2.0, 1.0]))
    np.testing.assert_allclose(out, [[5.4, 2.7]], rtol=1e-12)


# --------------------------------------------------------------------------- synthetic datasets
def flat_dataset(n_lon: int, n_lat: int, binsz: float, energy_edges, exposure_m2s: float, psf_sigma_deg: float,
                 rad_edges=RAD, counts=None, background=None, name: str = "tiny") -> xr.Dataset:
    """A dataset as :func:`gcxr.reduce.build_run_dataset` lays it out: flat exposure, identity energy
    dispersion (true axis = reco axis), a Gaussian PSF of ``psf_sigma_deg`` everywhere, every bin safe."""
    geom = SkyGeom.create((0.0, 0.0), binsz, (n_lon * binsz, n_lat * binsz), "galactic")
    irf = SkyGeom.create((0.0, 0.0), n_lon * binsz / 2, (n_lon * binsz, n_lat * binsz), "galactic")   # 2 x 2
    e = EnergyAxis(tuple(energy_edges), "energy")
    et = EnergyAxis(tuple(energy_edges), "energy_true")
    nE = e.nbin
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    ny, nx = geom.shape
    iny, inx = irf.shape
    psf = np.broadcast_to(_gauss_sr(rc, psf_sigma_deg)[None, :, None, None], (nE, rc.size, iny, inx))
    edisp = np.broadcast_to(np.eye(nE)[:, :, None, None], (nE, nE, iny, inx))
    counts = np.zeros((nE, ny, nx)) if counts is None else np.asarray(counts, float)
    background = np.zeros((nE, ny, nx)) if background is None else np.asarray(background, float)
    coords = {**e.coords(), **et.coords(), **geom.coords(),
              "lon_irf": ("lon_irf", irf.lon),
              "lat_irf": ("lat_irf", irf.lat),
              "rad": ("rad", rc),
              "energy_bounds": e.bounds().variable, "energy_true_bounds": et.bounds().variable,
              "rad_bounds": (("rad", "bnds"), np.stack([rad_edges[:-1], rad_edges[1:]], -1))}
    data = {"counts": (("energy", "lat", "lon"), counts),
            "background": (("energy", "lat", "lon"), background),
            "exposure": (("energy_true", "lat", "lon"), np.full((nE, ny, nx), float(exposure_m2s))),
            "mask_safe": (("energy", "lat", "lon"), np.ones((nE, ny, nx), bool)),
            "psf": (("energy_true", "rad", "lat_irf", "lon_irf"), np.array(psf)),
            "edisp": (("energy_true", "energy", "lat_irf", "lon_irf"), np.array(edisp))}
    return xr.Dataset(data, coords=coords, attrs={"name": name, "frame": "galactic"})


def point_source(lon: float, lat: float, amplitude: float = 1e-10, index: float = 2.0, name: str = "src"):
    return SkyModel(PowerLawSpectralModel(index=index, amplitude=amplitude, reference=1.0),
                    PointSpatialModel(lon_0=lon, lat_0=lat, frame="galactic"), name=name)


def test_psf_kernel_of_a_gaussian_psf():
    """A Gaussian PSF of 0.1 deg on 0.02 deg pixels: the kernel sums to 1 in each energy plane, is centred
    (first moments 0 by symmetry), has a per-axis variance of (0.1 / 0.02)^2 = 25 px^2 (to 3 %: truncation
    at the 99.9 % radius, pixel integration) and spans oddup(2 r_99.9 / 0.02) pixels, with r_99.9 the
    grid's 99.9 % radius (3.717 x 0.1 deg to one rad bin, see above: 37 or 39 pixels)."""
    ds = flat_dataset(61, 61, 0.02, [1.0, 10.0, 100.0], 1.0, 0.1)
    geom, irf = geom_of(ds)
    rad_b = ds["rad_bounds"].values
    rad_edges = np.append(rad_b[:, 0], rad_b[-1, 1])
    k = psf_kernel(ds["psf"].values, irf, geom, 0.0, 0.0, rad_edges)
    r999 = containment_radius(ds["psf"].values[:1, :, 0, 0] / DEG2_PER_SR, rad_edges, 0.999)[0]
    n = oddup(2 * r999 / 0.02)
    assert k.shape == (2, n, n) and n in (37, 39)
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, rtol=1e-12)
    y, x = np.mgrid[-(n // 2):n // 2 + 1, -(n // 2):n // 2 + 1]
    for plane in k:
        assert abs((plane * x).sum()) < 1e-9 and abs((plane * y).sum()) < 1e-9
        np.testing.assert_allclose([(plane * x ** 2).sum(), (plane * y ** 2).sum()], 25.0, rtol=0.03)
        assert plane.argmax() == plane.size // 2                             # peak at the centre pixel


def test_npred_of_a_point_source_on_a_flat_exposure():
    """Point source, power law (index 2, amplitude 1e-10 cm-2 s-1 TeV-1 at 1 TeV) at a pixel centre, flat
    exposure 1e6 m2 s = 1e10 cm2 s, identity EDISP: in energy bin [a, b] TeV the source predicts
    1e-10 (1/a - 1/b) x 1e10 counts, i.e. 0.9 in [1, 10] and 0.09 in [10, 100], centred on the source
    pixel with the PSF's width (per-axis variance (0.1 / 0.02)^2 = 25 px^2)."""
    ds = flat_dataset(61, 61, 0.02, [1.0, 10.0, 100.0], 1e6, 0.1, background=np.full((2, 61, 61), 0.5))
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(30.0, 30.0)
    out = npred_cubes(ds, Models([point_source(float(lon), float(lat))]), "tiny")
    sig = out["npred_signal"].values
    np.testing.assert_allclose(sig.sum(axis=(1, 2)), [1e-10 * (1 - 0.1) * 1e10, 1e-10 * (0.1 - 0.01) * 1e10],
                               rtol=1e-9)
    np.testing.assert_allclose(out["npred_background"].values, 0.5)          # no background model: as given
    np.testing.assert_allclose(out["npred"].values, sig + 0.5)
    y, x = np.mgrid[0:61, 0:61] - 30.0
    for plane in sig:
        w = plane / plane.sum()
        assert np.unravel_index(plane.argmax(), plane.shape) == (30, 30)
        assert abs((w * x).sum()) < 1e-9 and abs((w * y).sum()) < 1e-9
        np.testing.assert_allclose((w * x ** 2).sum(), 25.0, rtol=0.03)


def test_npred_of_a_point_source_between_pixels():
    """At a quarter pixel right of a pixel centre the tent weights put 3/4 and 1/4 of each PSF copy on
    the two pixels: the total is unchanged and the centroid moves by 1/4 pixel."""
    ds = flat_dataset(61, 61, 0.02, [1.0, 10.0], 1e6, 0.1)
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(30.25, 30.0)
    sig = npred_cubes(ds, Models([point_source(float(lon), float(lat))]), "tiny")["npred_signal"].values[0]
    np.testing.assert_allclose(sig.sum(), 0.9, rtol=1e-9)
    y, x = np.mgrid[0:61, 0:61] - 30.0
    np.testing.assert_allclose([(sig * x).sum() / sig.sum(), (sig * y).sum() / sig.sum()], [0.25, 0.0], atol=1e-9)


# --------------------------------------------------------------------------- Cash statistic
def test_cash_with_no_counts_is_twice_mu():
    """cash(0, mu) = 2 (mu - 0 x ln mu) = 2 mu."""
    np.testing.assert_allclose(cash(0, np.array([0.5, 2.0, 7.0])), [1.0, 4.0, 14.0], rtol=1e-15)


@pytest.mark.parametrize("n", [1.0, 2.0, 10.0, 1234.0])
def test_cash_at_mu_equal_n(n):
    """cash(n, n) = 2 (n - n ln n) (the constant n ln n - n of the saturated model is left out)."""
    np.testing.assert_allclose(cash(n, n), 2 * (n - n * np.log(n)), rtol=1e-14)


def test_cash_floors_mu_at_the_truncation():
    """mu <= 1e-25 (zero or negative) is read as 1e-25: cash(0, 0) = 2e-25, cash(3, -1) = 2 (1e-25 - 3 ln 1e-25)."""
    np.testing.assert_allclose(cash([0, 3], [0.0, -1.0]),
                               [2 * TRUNCATION, 2 * (TRUNCATION - 3 * np.log(TRUNCATION))], rtol=1e-14)


def test_cash_sum_and_known_background_significance():
    """cash_sum adds the bins: n = (0, 1, 2), mu = (1, 1, 2) -> 2 + 2 + 2 (2 - 2 ln 2) = 8 - 4 ln 2.
    TS of n = 10 over mu = 5: cash(10, 5) - cash(10, 10) = 2 [(5 - 10) + 10 ln 2] = 3.8629; significance
    +sqrt(TS) = 1.9654, and -sqrt of the TS of n = 0 over mu = 4 (TS = 8)."""
    assert cash_sum([0, 1, 2], [1.0, 1.0, 2.0]) == pytest.approx(8 - 4 * np.log(2), rel=1e-14)
    ts = 2 * (-5 + 10 * np.log(2))
    assert float(cash_ts_known_background(10, 5.0)) == pytest.approx(ts, rel=1e-12)
    assert cash_counts_significance(10, 5.0) == pytest.approx(np.sqrt(ts), rel=1e-12)
    assert cash_counts_significance(0, 4.0) == pytest.approx(-np.sqrt(8.0), rel=1e-12)
    assert float(cash_ts_known_background(5, 5.0)) == 0.0


# --------------------------------------------------------------------------- the likelihood on a tiny cube
def _tiny_cube():
    """2 energy bins ([1, 10], [10, 100] TeV) x 2 x 6 pixels of 0.1 deg, a PSF narrow enough (0.001 deg)
    that the kernel is one pixel, exposure 1e6 m2 s, background 0.5 per bin, and these counts."""
    rad = np.linspace(0.0, 0.02, 21)
    counts = np.zeros((2, 2, 6))
    counts[0] = [[3, 0, 1, 0, 2, 0], [0, 1, 0, 0, 0, 4]]
    counts[1] = [[1, 0, 0, 0, 0, 0], [0, 0, 2, 0, 0, 0]]
    return flat_dataset(6, 2, 0.1, [1.0, 10.0, 100.0], 1e6, 0.001, rad_edges=rad, counts=counts,
                        background=np.full((2, 2, 6), 0.5))


def _hand_stat(counts, mu):
    return float(np.sum(2 * (mu - np.where(counts > 0, counts * np.log(mu), 0.0))))


def test_likelihood_sparse_and_dense_forms_equal_the_hand_sum():
    """A point source on pixel (row 0, column 0) of the tiny cube predicts 0.9 and 0.09 counts there (see the
    npred test; the kernel is one pixel); mu = 0.5 elsewhere, x norm 1.5 of a FoV background model.  The
    statistic is sum 2 (mu - n ln mu) over the 24 bins, whether the term uses its sparse form (sums of mu
    plus mu on the bins with counts only) or its dense form, and whether a bin is in the source's cutout
    region (the first columns) or far from it (the last ones: per-energy sums)."""
    from gcxr.likelihood import DatasetTerm, ParameterSpace
    ds = _tiny_cube()
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(0.0, 0.0)
    bkg = FoVBackgroundModel("tiny", name="tiny-bkg")
    bkg.spectral_model.parameters["norm"].value = 1.5
    models = Models([point_source(float(lon), float(lat)), bkg])
    mu = np.full((2, 2, 6), 0.75)
    mu[:, 0, 0] += [0.9, 0.09]
    expected = _hand_stat(ds["counts"].values, mu)
    np.testing.assert_allclose(npred_cubes(ds, models)["npred"].values, mu, rtol=1e-12)
    values = ParameterSpace.from_models(models).values_by_model(ParameterSpace.from_models(models).start)
    for sparse in (True, False):
        term = DatasetTerm.build(ds, models, "tiny")
        term.sparse = sparse
        assert len(term.regions) == 1 and term.regions[0].xs.stop < 6      # the last columns are far bins
        assert term.stat(values) == pytest.approx(expected, rel=1e-12)


def test_likelihood_gradient_in_the_amplitude_by_hand():
    """d stat / d amplitude = sum over the source's bins of 2 (1 - n / mu) x s / A (s: the source's npred,
    linear in A): 2 [(1 - 3 / 1.4) 0.9 + (1 - 1 / 0.59) 0.09] / 1e-10 with mu = 0.5 + s (norm 1)."""
    from gcxr.likelihood import DatasetTerm, ParameterSpace
    ds = _tiny_cube()
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(0.0, 0.0)
    models = Models([point_source(float(lon), float(lat))])
    space = ParameterSpace.from_models(models)
    values = space.values_by_model(space.start)
    expected = 2 * ((1 - 3 / 1.4) * 0.9 + (1 - 1 / 0.59) * 0.09) / 1e-10
    for sparse in (True, False):
        term = DatasetTerm.build(ds, models, "tiny")
        term.sparse = sparse
        _, g = term.value_and_grad(values, [("src", "spectral", "amplitude")])
        assert g[("src", "spectral", "amplitude")] == pytest.approx(expected, rel=1e-6)


def test_likelihood_without_sources_is_the_far_sum():
    """No source: every bin is a far bin, mu = background x norm 2 = 1, so stat = sum 2 (1 - n ln 1) = 2 x 24."""
    from gcxr.likelihood import total_stat
    ds = _tiny_cube()
    bkg = FoVBackgroundModel("tiny", name="tiny-bkg")
    bkg.spectral_model.parameters["norm"].value = 2.0
    assert total_stat([ds], Models([bkg])) == pytest.approx(48.0, rel=1e-14)


def test_likelihood_is_infinite_where_the_flux_overflows():
    """Index -400: the power law's integral over [10, 100] TeV overflows (100^401 > 1e308), so npred is not
    representable: the statistic is +inf and its derivatives NaN (no NaN computed through npred, the fit
    steps back), and npred itself refuses with a message naming the model."""
    from gcxr.likelihood import DatasetTerm, ParameterSpace
    ds = _tiny_cube()
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(0.0, 0.0)
    models = Models([point_source(float(lon), float(lat), index=-400.0)])
    space = ParameterSpace.from_models(models)
    values = space.values_by_model(space.start)
    term = DatasetTerm.build(ds, models, "tiny")
    assert term.out_of_range(values)
    assert term.stat(values) == np.inf
    stat, g = term.value_and_grad(values, [("src", "spectral", "index")])
    assert stat == np.inf and np.isnan(g[("src", "spectral", "index")])
    with pytest.raises(ValueError, match=r"model 'src': its flux is not finite"):
        npred_cubes(ds, models)


def test_likelihood_of_an_overflowing_source_that_reaches_no_bin():
    """The same overflowing source moved 0.5 deg off the cube's cutout region predicts no counts here (its
    cutout carries no flux), so the statistic is the background's, sum 2 (0.5 - n ln 0.5); the derivatives
    with respect to its parameters (0 x inf) are NaN."""
    from gcxr.likelihood import DatasetTerm, ParameterSpace
    ds = _tiny_cube()
    lon, lat = SkyGeom.from_coords(ds, "galactic").pix_to_world(0.0, 0.0)
    models = Models([point_source(float(lon), float(lat), index=-400.0)])
    term = DatasetTerm.build(ds, models, "tiny")
    models["src"].spatial_model.parameters["lon_0"].value = float(lon) + 0.5
    space = ParameterSpace.from_models(models)
    values = space.values_by_model(space.start)
    expected = _hand_stat(ds["counts"].values, np.full((2, 2, 6), 0.5))
    assert not term.out_of_range(values)
    assert term.stat(values) == pytest.approx(expected, rel=1e-12)
    stat, g = term.value_and_grad(values, [("src", "spectral", "index"), ("src", "spatial", "lon_0")])
    assert stat == pytest.approx(expected, rel=1e-12)
    assert np.isnan(g[("src", "spectral", "index")]) and np.isnan(g[("src", "spatial", "lon_0")])


# --------------------------------------------------------------------------- dataset summaries
def test_dataset_summary_numbers_by_hand_in_memory_and_lazy():
    """``datasets.infos`` of a 2 x 2 x 3 dataset: counts 1..12, background 0.5 everywhere, the safe
    mask drops energy plane 0 and the fit mask column 0, exposure 0 in pixel (0, 0).

    counts over the safe mask = 7 + ... + 12 = 57; background = 6 x 0.5 = 3; fit bins = plane 1
    without column 0 = 4; exposure over the pixels the safe mask keeps (all 6; exposure > 0 drops
    pixel (0, 0)) = min 2, max 6.  The in-memory (numpy) and dask-backed paths give the same."""
    from gcxr.datasets import infos
    counts = np.arange(1.0, 13.0).reshape(2, 2, 3)
    safe = np.zeros((2, 2, 3), bool)
    safe[1] = True
    fit = np.ones((2, 2, 3), bool)
    fit[:, :, 0] = False
    expo = np.arange(0.0, 6.0).reshape(1, 2, 3) + np.array([0.0, 1.0]).reshape(2, 1, 1)
    expo[1, 0, 0] = 0.0
    dims = ("energy", "lat", "lon")
    ds = xr.Dataset({"counts": (dims, counts.astype(np.float32)), "background": (dims, np.full((2, 2, 3), 0.5)),
                     "mask_safe": (dims, safe), "mask_fit": (dims, fit),
                     "exposure": (("energy_true", "lat", "lon"), expo), "livetime": 10.0, "ontime": 12.0},
                    attrs={"name": "hand"})
    for d in (ds, ds.chunk()):
        (i,) = infos([d])
        assert (i["counts"], i["background"], i["n_fit_bins"], i["n_bins"]) == (57.0, 3.0, 4, 12)
        assert (i["exposure_min"], i["exposure_max"], i["livetime_s"]) == (1.0, 6.0, 10.0)
