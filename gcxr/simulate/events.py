"""Drawing events: sources (thinning against the effective area, PSF, energy dispersion) and the
IRF background, for one run.

:func:`simulate_events` (one run's events), :func:`sky_models` (the sky models of a collection),
:func:`sample_spatial` (positions from a spatial model) and the per-event IRF draws they use.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
import xarray as xr
from astropy.coordinates import offset_by

from .._maths import trapz_loglog
from ..coords import fov_matrix, lonlat_to_unit, separation_deg, transform_lonlat, unit_to_lonlat
from ..irf import eval_aeff, eval_aeff_at, eval_bkg_rate
from ..irf._interp import interp_scattered
from ..models import (DiskSpatialModel, GaussianSpatialModel, GeneralizedGaussianSpatialModel, PointSpatialModel,
                      Shell2SpatialModel, ShellSpatialModel, SkyModel, TemplateSpatialModel)
from .irfs import IRFSet, geom_edges
from .runs import EventList, RunSpec, as_rng

__all__ = ["simulate_events", "sky_models", "sample_spatial", "CM2_PER_M2"]

_CHUNK = 20000                         # events per chunk of per-event IRF tables
CM2_PER_M2 = 1e4


# =========================================================================== sampling helpers
def _edges_of(da: xr.DataArray, dim: str) -> np.ndarray:
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


def _powerlaw_draw(u, lo, hi, f_lo, f_hi):
    """Energies in [lo, hi] from the power law through (lo, f_lo), (hi, f_hi); log-uniform if degenerate."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.log(f_lo / f_hi) / np.log(hi / lo)
        g = np.where(np.isfinite(g), g, 1.0)
        a = 1.0 - g
        t = (hi / lo) ** a
        e = lo * (1.0 + u * (t - 1.0)) ** (1.0 / a)
        e = np.where(np.abs(a) < 1e-6, lo * (hi / lo) ** u, e)
    return np.clip(np.where(np.isfinite(e), e, lo * (hi / lo) ** u), lo, hi)


def _offset_by(lon, lat, pa, r):
    """Points at angular distance ``r`` and position angle ``pa`` (east of north) from (lon, lat); deg
    (astropy's :func:`~astropy.coordinates.offset_by`, longitude in [0, 360))."""
    lon2, lat2 = offset_by(lon * u.deg, lat * u.deg, pa * u.deg, r * u.deg)
    return lon2.deg, lat2.deg


def _sphere_accept(rng, propose, n: int):
    r"""``n`` draws (theta, pa; deg) from a flat-sky proposal, made exact on the sphere.

    ``propose(m)`` returns ``m`` draws whose density in the tangent plane
    (:math:`\theta\,d\theta\,d\psi`) is the model's profile; keeping each
    with probability :math:`\sin\theta/\theta` turns that into the profile's
    density per solid angle (:math:`\sin\theta\,d\theta\,d\psi`), which is
    what the model's ``evaluate`` gives (sr^-1).
    """
    th_out, pa_out, got = [], [], 0
    while got < n:
        m = int(1.05 * (n - got)) + 16
        theta, pa = propose(m)
        t = np.deg2rad(theta)
        keep = (t < np.pi) & (rng.random(m) * t <= np.sin(t))
        th_out.append(theta[keep])
        pa_out.append(pa[keep])
        got += int(keep.sum())
    if not th_out:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(th_out)[:n], np.concatenate(pa_out)[:n]


def _shell_proposal(rng, r_in: float, r_out: float):
    """Flat-sky draws of a projected uniform spherical shell (deg): a uniform
    point in the 3D shell (radius^2-weighted radius, isotropic direction) seen
    along the line of sight."""
    def propose(m):
        radius = np.cbrt(r_in ** 3 + rng.random(m) * (r_out ** 3 - r_in ** 3))
        cos_los = rng.uniform(-1.0, 1.0, m)
        return radius * np.sqrt(1.0 - cos_los ** 2), rng.uniform(0.0, 360.0, m)
    return propose


def _sample_template(rng, model, n: int):
    """Pixels drawn by their flux (brightness x solid angle), uniform within a pixel."""
    where = f"simulate: TemplateSpatialModel({model.filename!r})"
    if model.is_energy_dependent:
        raise ValueError(f"{where}: energy-dependent (3D) templates are not supported for event "
                         "sampling; use a 2D template")
    flux = np.clip(model.data[0] * model.solid_angle, 0.0, None)
    total = flux.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"{where}: the map has no positive flux to sample")
    ny, nx = flux.shape
    idx = rng.choice(flux.size, size=n, p=(flux / total).ravel())
    iy, ix = np.unravel_index(idx, (ny, nx))
    x = ix + rng.uniform(-0.5, 0.5, n)
    y = iy + rng.uniform(-0.5, 0.5, n)
    lon, lat = (np.asarray(v, dtype=float) for v in model.wcs.pixel_to_world_values(x, y))
    c_lon, c_lat = model.map_center
    lon0, lat0 = model.position                   # lon_0/lat_0 move the template (as in evaluate)
    return (lon + (lon0 - c_lon)) % 360.0, lat + (lat0 - c_lat)


def _sample_disk_rejection(rng, model, n: int):
    """Elongated disk: uniform draws on the cap of the evaluation radius, kept
    with probability f / max f (exact, smooth edge included, cut where gammapy
    stops evaluating the model)."""
    vals = model.values
    lon0, lat0 = model.position
    reach = np.deg2rad(model.evaluation_radius)
    f_max = float(np.max(type(model)._evaluate(np.array([lon0]), np.array([lat0]), **vals)))
    lon_out, lat_out, got = [], [], 0
    while got < n:
        m = 2 * (n - got) + 16
        x = rng.random(m) * 2.0 * np.sin(reach / 2.0) ** 2          # 1 - cos(theta), uniform on the cap
        theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(x / 2.0)))
        lon, lat = _offset_by(np.full(m, lon0), np.full(m, lat0), rng.uniform(0.0, 360.0, m), theta)
        keep = rng.random(m) * f_max < type(model)._evaluate(lon, lat, **vals)
        lon_out.append(lon[keep])
        lat_out.append(lat[keep])
        got += int(keep.sum())
    if not lon_out:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lon_out)[:n], np.concatenate(lat_out)[:n]


def sample_spatial(rng, model, n: int):
    """(lon, lat) deg in the model's frame, ``n`` draws of the spatial model.

    Point, Gaussian, disk, generalised Gaussian, shell, shell2 and 2D template
    models.  The generalised Gaussian and the shells are drawn from their
    flat-sky profile and made exact on the sphere by :func:`_sphere_accept`;
    the elongated disk by rejection on the cap of its evaluation radius (as far
    as gammapy evaluates it); a template by pixel flux, uniform in each pixel.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random generator.
    model : SpatialModel
        The spatial model.
    n : int
        Number of draws.

    Returns
    -------
    tuple of numpy.ndarray
        (lon, lat) in deg.
    """
    if isinstance(model, TemplateSpatialModel):
        return _sample_template(rng, model, n)
    lon0, lat0 = model.position
    tag = type(model).__name__
    if isinstance(model, PointSpatialModel):
        return np.full(n, lon0), np.full(n, lat0)
    if isinstance(model, GaussianSpatialModel):
        sigma, e, phi = (model.parameters[k].value for k in ("sigma", "e", "phi"))
        if e == 0:
            # 1 - cos(theta) is exponential with mean 2a on [0, 2] (a = 1 - cos sigma): exact on the sphere
            a = 2.0 * np.sin(np.deg2rad(sigma) / 2.0) ** 2
            x = -2.0 * a * np.log1p(-rng.random(n) * -np.expm1(-1.0 / a))
            theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(np.clip(x / 2.0, 0.0, 1.0))))
            pa = rng.uniform(0.0, 360.0, n)
        else:      # elongated: flat-sky bivariate normal, major axis at position angle phi
            major = rng.normal(0.0, sigma, n)
            minor = rng.normal(0.0, sigma * np.sqrt(1.0 - e ** 2), n)
            theta = np.hypot(major, minor)
            pa = phi + np.rad2deg(np.arctan2(minor, major))
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    if isinstance(model, DiskSpatialModel):
        if model.parameters["e"].value == 0:
            r0 = np.deg2rad(model.parameters["r_0"].value)
            x = rng.random(n) * 2.0 * np.sin(r0 / 2.0) ** 2
            theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(x / 2.0)))
            return _offset_by(np.full(n, lon0), np.full(n, lat0), rng.uniform(0.0, 360.0, n), theta)
        return _sample_disk_rejection(rng, model, n)
    if isinstance(model, GeneralizedGaussianSpatialModel):
        r_0, eta, e, phi = (model.parameters[k].value for k in ("r_0", "eta", "e", "phi"))
        minor = r_0 * np.sqrt(1.0 - e ** 2)

        def propose(m):
            # u = (theta / r_eff)^(1/eta) has density u^(2 eta - 1) exp(-u): Gamma(2 eta)
            rho = rng.gamma(2.0 * eta, 1.0, m) ** eta
            t = rng.uniform(0.0, 2.0 * np.pi, m)
            x, y = r_0 * rho * np.cos(t), minor * rho * np.sin(t)      # along the major / minor axis
            return np.hypot(x, y), phi + np.rad2deg(np.arctan2(y, x))
        theta, pa = _sphere_accept(rng, propose, n)
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    if isinstance(model, (ShellSpatialModel, Shell2SpatialModel)):
        if isinstance(model, ShellSpatialModel):
            r_in = model.parameters["radius"].value
            r_out = r_in + model.parameters["width"].value
        else:
            r_out = model.parameters["r_0"].value
            r_in = (1.0 - model.parameters["eta"].value) * r_out
        if not (0.0 <= r_in <= r_out and r_out > 0):
            raise ValueError(f"simulate: {tag} needs 0 <= inner radius <= outer radius, outer > 0; "
                             f"got {r_in} and {r_out} deg")
        theta, pa = _sphere_accept(rng, _shell_proposal(rng, r_in, r_out), n)
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    raise ValueError(f"simulate: spatial model {tag} is not supported for event sampling "
                     "(supported: Point, Gaussian, Disk, GeneralizedGaussian, Shell, Shell2, 2D Template)")


def _aeff_envelope(aeff, e_edges, off_lo, off_hi):
    """Max of the interpolated A_eff over each energy cell x [off_lo, off_hi] (exact for bilinear)."""
    en = aeff["energy_true"].values
    on = aeff["offset"].values
    e_pts = np.unique(np.concatenate([e_edges, en[(en > e_edges[0]) & (en < e_edges[-1])]]))
    o_pts = np.unique(np.concatenate([[off_lo, off_hi], on[(on > off_lo) & (on < off_hi)]]))
    a = eval_aeff(aeff, e_pts, o_pts).max(axis=1)
    i0 = np.searchsorted(e_pts, e_edges[:-1])
    i1 = np.searchsorted(e_pts, e_edges[1:])
    return np.array([a[i:j + 1].max() for i, j in zip(i0, i1)])


def _psf_radius(rng, psf: xr.DataArray, energy, offset) -> np.ndarray:
    """PSF displacement (deg) per event.

    The table is interpolated here at each event's (E, offset), by the shared
    :func:`gcxr.irf._interp.interp_scattered`: :func:`gcxr.irf.eval_psf_map`
    evaluates an energies x offsets grid normalised on fixed rad bins, which is
    neither the per-event density along the table's own rad bins drawn from
    here nor affordable for one energy per event."""
    nodes = [np.log(psf["energy_true"].values), psf["offset"].values]
    n = energy.size
    r = np.zeros(n)
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        coords = [np.log(energy[sl]), offset[sl]]
        if psf.attrs["hdu_class"] == "psf_3gauss":
            scale, s1, a2, s2, a3, s3 = np.clip(interp_scattered(psf.values, nodes, coords), 0.0, None)
            w = np.stack([scale * s1 ** 2, scale * a2 * s2 ** 2, scale * a3 * s3 ** 2])
            tot = w.sum(axis=0)
            cum = np.cumsum(w, axis=0) / np.where(tot > 0, tot, 1.0)
            k = (rng.random(s1.size)[None] > cum).sum(axis=0).clip(0, 2)
            sig = np.choose(k, [s1, s2, s3])
            r[sl] = np.where(tot > 0, sig * np.sqrt(-2.0 * np.log1p(-rng.random(s1.size))), 0.0)
        else:
            tab = np.moveaxis(psf.values, 2, 0)                              # (rad, E, offset)
            dens = np.clip(interp_scattered(tab, nodes, coords), 0.0, None)  # (rad, n) sr^-1
            r_e = _edges_of(psf, "rad")
            rc = 0.5 * (r_e[:-1] + r_e[1:])
            e_e, o_e = _edges_of(psf, "energy_true"), _edges_of(psf, "offset")
            out = (energy[sl] < e_e[0]) | (energy[sl] > e_e[-1]) | (offset[sl] < o_e[0]) | (offset[sl] > o_e[-1])
            dens[:, out] = 0.0
            r[sl] = _inverse_cdf(rng, dens * (rc * np.diff(r_e))[:, None], r_e, area=True)
    return r


def _inverse_cdf(rng, weights: np.ndarray, edges: np.ndarray, area: bool = False) -> np.ndarray:
    """One draw per column of ``weights`` (bins x n): a bin by its weight, then uniform within it
    (uniform in r² when ``area``); NaN where a column has no weight."""
    cdf = np.cumsum(weights, axis=0)
    tot = cdf[-1]
    u = rng.random(weights.shape[1]) * tot
    j = np.minimum((cdf < u[None]).sum(axis=0), len(edges) - 2)
    lo, hi = edges[j], edges[j + 1]
    f = rng.random(weights.shape[1])
    x = np.sqrt(lo ** 2 + f * (hi ** 2 - lo ** 2)) if area else lo + f * (hi - lo)
    return np.where(tot > 0, x, np.nan)


def _migra(rng, edisp: xr.DataArray, energy, offset) -> np.ndarray:
    """migra = E_reco / E_true per event (NaN where the dispersion is zero).

    The migra density is interpolated at each event's (E, offset) as in
    :func:`_psf_radius`: :func:`gcxr.irf.eval_edisp_kernel` gives reco-bin
    probabilities on an energies x offsets grid, not the density to draw from."""
    tab = np.moveaxis(edisp.values, 1, 0)                                    # (migra, E, offset)
    nodes = [np.log(edisp["energy_true"].values), edisp["offset"].values]
    m_e, o_e = _edges_of(edisp, "migra"), _edges_of(edisp, "offset")
    out = np.empty(energy.size)
    for s in range(0, energy.size, _CHUNK):
        sl = slice(s, s + _CHUNK)
        dens = np.clip(interp_scattered(tab, nodes, [np.log(energy[sl]), offset[sl]]), 0.0, None)
        dens[:, (offset[sl] < o_e[0]) | (offset[sl] > o_e[-1])] = 0.0
        out[sl] = _inverse_cdf(rng, dens * np.diff(m_e)[:, None], m_e)
    return out


# =========================================================================== events
def _sample_source(rng, model, run: RunSpec, irfs: IRFSet, per_decade: int = 20):
    """(ra, dec, energy_reco, n_dropped) of one source's events in one run."""
    aeff = irfs.aeff
    spatial, spectral = model.spatial_model, model.spectral_model
    if spatial is None:
        raise ValueError(f"simulate: source {model.name!r} has no spatial model")
    frame = spatial.frame
    e_lo, e_hi = _edges_of(aeff, "energy_true")[[0, -1]]
    e_edges = np.asarray(geom_edges(e_lo, e_hi, per_decade))
    # offsets the source can reach
    lon0, lat0 = spatial.position
    ra0, dec0 = transform_lonlat(np.array([lon0]), np.array([lat0]), frame, "icrs")
    theta0 = float(separation_deg(ra0, dec0, run.ra_pnt, run.dec_pnt)[0])
    reach = spatial.evaluation_radius
    if not np.isfinite(reach):
        reach = 180.0
    off_lo, off_hi = max(theta0 - reach, 0.0), min(theta0 + reach, 180.0)
    a_env = _aeff_envelope(aeff, e_edges, off_lo, off_hi)
    flux = np.asarray(spectral.integral(e_edges[:-1], e_edges[1:]), float)          # cm-2 s-1
    mu = np.clip(flux, 0.0, None) * a_env * CM2_PER_M2 * run.livetime
    n_bin = rng.poisson(mu)
    idx = np.repeat(np.arange(mu.size), n_bin)
    lo, hi = e_edges[idx], e_edges[idx + 1]
    phi = np.asarray(spectral.evaluate(e_edges), float)
    energy = _powerlaw_draw(rng.random(idx.size), lo, hi, phi[idx], phi[idx + 1])
    lon, lat = sample_spatial(rng, spatial, idx.size)
    ra, dec = transform_lonlat(lon, lat, frame, "icrs")
    offset = separation_deg(ra, dec, run.ra_pnt, run.dec_pnt)
    keep = rng.random(idx.size) * a_env[idx] < eval_aeff_at(aeff, energy, offset)
    ra, dec, energy, offset = ra[keep], dec[keep], energy[keep], offset[keep]
    # instrument: PSF displacement, energy dispersion
    r = _psf_radius(rng, irfs.psf, energy, offset)
    ra, dec = _offset_by(ra, dec, rng.uniform(0.0, 360.0, r.size), r)
    migra = _migra(rng, irfs.edisp, energy, offset)
    ok = np.isfinite(migra)
    return ra[ok], dec[ok], (energy * migra)[ok], int(np.count_nonzero(~ok))


def _sample_background(rng, bkg: xr.DataArray, run: RunSpec, n_sub_e: int = 4, n_sub_xy: int = 2):
    """(ra, dec, energy) of background events from the rate x ontime."""
    def sub(edges, k, log):
        pts = [np.geomspace(a, b, k + 1)[:-1] if log else np.linspace(a, b, k + 1)[:-1]
               for a, b in zip(edges[:-1], edges[1:])]
        return np.append(np.concatenate(pts), edges[-1])
    e = sub(_edges_of(bkg, "energy"), n_sub_e, True)
    x = sub(_edges_of(bkg, "fov_lon"), n_sub_xy, False)
    y = sub(_edges_of(bkg, "fov_lat"), n_sub_xy, False)
    xc, yc = 0.5 * (x[:-1] + x[1:]), 0.5 * (y[:-1] + y[1:])
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    rate = eval_bkg_rate(bkg, e, X, Y)                                       # (nE+1, nx, ny)
    integ = trapz_loglog(rate, e, axis=0)                                    # s-1 sr-1
    integ[~np.isfinite(integ)] = 0.0                                         # a zero rate next to a non-zero one
    sin_y = np.sin(np.deg2rad(y))
    omega = np.deg2rad(np.diff(x))[:, None] * np.diff(sin_y)[None, :]       # sr
    mu = integ * omega[None] * run.ontime
    n = rng.poisson(mu)
    ie, ix, iy = np.unravel_index(np.repeat(np.arange(mu.size), n.ravel()), mu.shape)
    energy = _powerlaw_draw(rng.random(ie.size), e[ie], e[ie + 1], rate[ie, ix, iy], rate[ie + 1, ix, iy])
    fov_lon = x[ix] + rng.random(ie.size) * (x[ix + 1] - x[ix])
    fov_lat = np.rad2deg(np.arcsin(sin_y[iy] + rng.random(ie.size) * (sin_y[iy + 1] - sin_y[iy])))
    # FoV frame (RADEC alignment, fov_lon = -lon') -> ICRS
    v = lonlat_to_unit(-fov_lon, fov_lat) @ fov_matrix(run.ra_pnt, run.dec_pnt, "icrs")
    ra, dec = unit_to_lonlat(v)
    return ra, dec, energy


def sky_models(models) -> list:
    """The sky models of a model collection (background models left out; None: none).

    Parameters
    ----------
    models : Models or None
        The models.

    Returns
    -------
    list of SkyModel
        The sky models, in order.
    """
    if models is None:
        return []
    return [m for m in models if isinstance(m, SkyModel)]


def simulate_events(run: RunSpec, irfs: IRFSet, models=None, rng: np.random.Generator | int | None = None,
                    background: bool = True) -> EventList:
    """Events of one run: every :class:`~gcxr.models.SkyModel` in ``models`` plus the IRF background.

    ``mc_id`` is 0 for background and ``k`` for the k-th sky model (1-based).
    FoV background models in ``models`` are ignored (the background comes from the IRF).

    Parameters
    ----------
    run : RunSpec
        The run.
    irfs : IRFSet
        The IRFs.
    models : Models or list of SkyModel, optional
        The sources.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    background : bool
        Include the IRF background.

    Returns
    -------
    EventList
        The events.
    """
    rng = as_rng(rng)
    parts, names, dropped = [], [], 0
    if background:
        ra, dec, en = _sample_background(rng, irfs.bkg, run)
        parts.append((ra, dec, en, np.zeros(ra.size, np.int32)))
    for k, m in enumerate(sky_models(models), start=1):
        ra, dec, en, nd = _sample_source(rng, m, run, irfs)
        parts.append((ra, dec, en, np.full(ra.size, k, np.int32)))
        names.append(m.name)
        dropped += nd
    if parts:
        ra, dec, en, mc = (np.concatenate(p) for p in zip(*parts))
    else:
        ra = dec = en = np.zeros(0)
        mc = np.zeros(0, np.int32)
    time = run.tstart + rng.random(ra.size) * run.ontime
    order = np.argsort(time, kind="stable")
    return EventList(time[order], ra[order], dec[order], en[order], mc[order], tuple(names), dropped)
