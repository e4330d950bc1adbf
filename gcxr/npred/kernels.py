"""The parts of a forward folding that do not depend on the parameters: the PSF profile, its
containment radii and the PSF kernel on the counts grid at a source position, the sizes of
kernels and cutouts (:func:`oddup`, ``MARGIN_DEG``), the tap weights that place a point source
between pixels (:func:`taps`).
"""
from __future__ import annotations

import numpy as np

from ..coords import separation_deg
from ..geom import SkyGeom

__all__ = ["MARGIN_DEG", "RAD_SR_TO_DEG2", "POINT_WEIGHTS", "oddup", "psf_profile_at", "containment_radius",
           "psf_kernel", "taps"]

MARGIN_DEG = 0.1          # cutout margin beyond the PSF kernel and the source's evaluation radius
RAD_SR_TO_DEG2 = (np.pi / 180.0) ** 2
POINT_WEIGHTS = ("cubic", "tent", "keys")


def oddup(x: float) -> int:
    """Smallest odd integer >= ceil(x) (as the reference sizes kernels and cutouts).

    Parameters
    ----------
    x : float
        A size in pixels.

    Returns
    -------
    int
        The odd size.

    Examples
    --------
    >>> oddup(4.2)
    5
    """
    return int(np.ceil(x) // 2 * 2 + 1)


def psf_profile_at(psf: np.ndarray, irf_geom: SkyGeom, lon: float, lat: float) -> np.ndarray:
    """PSF profile P[t, r] (sr^-1) at a position: bilinear in the IRF-grid pixel coordinates.

    Parameters
    ----------
    psf : numpy.ndarray
        The PSF on (energy_true, rad, lat_irf, lon_irf), sr^-1.
    irf_geom : SkyGeom
        The IRF grid.
    lon, lat : float
        The position in the grid's frame, deg.

    Returns
    -------
    numpy.ndarray
        The profile on (energy_true, rad), sr^-1.
    """
    from ..irf._interp import interp_scattered  # deferred: keeps gcxr.npred free of gcxr.irf (astropy.io.fits)
    px, py = irf_geom.world_to_pix(lon, lat)
    ny, nx = psf.shape[-2:]
    return interp_scattered(psf, [np.arange(ny, dtype=float), np.arange(nx, dtype=float)],
                            [np.array(float(py)), np.array(float(px))])


def containment_radius(profile_deg2: np.ndarray, rad_edges: np.ndarray, fraction: float) -> np.ndarray:
    """Radius (deg) holding ``fraction`` of the PSF, per true energy, on a 20x finer radial grid.

    Parameters
    ----------
    profile_deg2 : numpy.ndarray
        The PSF profile on (energy_true, rad), deg^-2.
    rad_edges : numpy.ndarray
        The radial bin edges, deg.
    fraction : float
        The containment fraction.

    Returns
    -------
    numpy.ndarray
        One radius per true energy, deg.
    """
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    dr = np.diff(rad_edges)
    cums = np.cumsum(profile_deg2 * (2 * np.pi * rc * dr)[None, :], axis=1)     # at the upper edges
    nodes = rad_edges[1:]
    fine = np.linspace(rad_edges[0], rad_edges[-1], (rad_edges.size - 1) * 20 + 1)
    fine = 0.5 * (fine[:-1] + fine[1:])
    from ..irf._interp import interp_axis  # deferred: keeps gcxr.npred free of gcxr.irf (astropy.io.fits)
    c = np.clip(interp_axis(cums.T, nodes, fine, axis=0).T, 0.0, None)            # (nE, n_fine)
    c[:, (fine < nodes[0] - 0.5 * dr[0]) | (fine > nodes[-1] + 0.5 * dr[-1])] = 0.0
    return fine[np.argmin(np.abs(c - fraction), axis=1)]


def psf_kernel(psf: np.ndarray, irf_geom: SkyGeom, geom: SkyGeom, lon: float, lat: float,
               rad_edges: np.ndarray) -> np.ndarray:
    """PSF kernel (n_true, n, n) on the fine grid at (lon, lat); each plane sums to 1.

    The kernel extends to the largest 99.9 % containment radius; pixels are
    oversampled (up to 4x) where the 68 % radius is small compared to a pixel.
    Radii are true angular separations at the source latitude.

    Parameters
    ----------
    psf : numpy.ndarray
        PSF density (sr-1) on (energy_true, rad, lat_irf, lon_irf).
    irf_geom, geom : SkyGeom
        The IRF grid and the fine (counts) grid.
    lon, lat : float
        The source position (deg, grid frame).
    rad_edges : numpy.ndarray
        Edges of the PSF's radial bins (deg).

    Returns
    -------
    numpy.ndarray
        Kernel, shape ``(n_true, n, n)``.
    """
    prof = psf_profile_at(psf, irf_geom, lon, lat) * RAD_SR_TO_DEG2                   # deg^-2
    binsz = geom.binsz
    r999 = containment_radius(prof, rad_edges, 0.999)
    r68 = containment_radius(prof, rad_edges, 0.68)
    nk = oddup(2 * r999.max() / binsz)
    with np.errstate(divide="ignore"):
        factors = np.minimum(np.ceil(12.0 / (2 * r68 / binsz)), 4).astype(int)
    factors = np.where(r68 > 0, factors, 4)
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    kern = np.zeros((prof.shape[0], nk, nk))
    for t in range(prof.shape[0]):
        n_t, f = oddup(2 * r999[t] / binsz), int(factors[t])
        sub = (np.arange(n_t * f) + 0.5) / f - n_t / 2.0                             # fine-pixel units
        dx, dy = np.meshgrid(sub * abs(geom.dlon), sub * geom.dlat)
        r = separation_deg(dx, lat + dy, 0.0, lat)
        # linear in rad with linear extrapolation (r below the first centre), clipped at 0
        i = np.clip(np.searchsorted(rc, r, side="right") - 1, 0, rc.size - 2)
        w = (r - rc[i]) / (rc[i + 1] - rc[i])
        v = np.clip(prof[t, i] * (1 - w) + prof[t, i + 1] * w, 0.0, None)
        small = v.reshape(n_t, f, n_t, f).sum(axis=(1, 3))
        o = (nk - n_t) // 2
        kern[t, o:o + n_t, o:o + n_t] += small
    tot = kern.sum(axis=(1, 2), keepdims=True)
    return np.where(tot > 0, kern / np.where(tot > 0, tot, 1.0), 0.0)


def _keys(d: float) -> float:
    d = abs(d)
    if d < 1:
        return 1.5 * d ** 3 - 2.5 * d ** 2 + 1
    if d < 2:
        return -0.5 * d ** 3 + 2.5 * d ** 2 - 4 * d + 2
    return 0.0


def _keys_d(d: float) -> float:
    s, a = np.sign(d), abs(d)
    if a < 1:
        return float(s * (4.5 * a ** 2 - 5 * a))
    if a < 2:
        return float(s * (-1.5 * a ** 2 + 5 * a - 4))
    return 0.0


def taps(x0: float, kind: str, derivative: bool = False):
    """(pixel index, weight[, d weight / d x0]) that spread a point at pixel coordinate x0 over the grid.

    Parameters
    ----------
    x0 : float
        The point's pixel coordinate.
    kind : {'tent', 'cubic', 'keys'}
        The weights (see :data:`POINT_WEIGHTS`).
    derivative : bool
        Also give each weight's derivative with respect to ``x0``.

    Returns
    -------
    tuple of tuple
        ``(index, weight)`` or ``(index, weight, d weight / d x0)`` per tap.
    """
    i = int(np.floor(x0))
    t = x0 - i
    if kind == "tent":
        if derivative and min(t, 1.0 - t) < 1e-9:
            # on a pixel centre the weights have a kink: the symmetric slope (what a central
            # difference sees, and where a minimiser that starts there should be sent)
            j = i if t < 0.5 else i + 1
            return ((j - 1, 0.0, -0.5), (j, 1.0, 0.0), (j + 1, 0.0, 0.5))
        taps = ((i, 1.0 - t, -1.0), (i + 1, t, 1.0))
    elif kind == "cubic":
        t2, t3 = t * t, t * t * t
        taps = ((i - 1, (1 - t) ** 3 / 6.0, -0.5 * (1 - t) ** 2), (i, (3 * t3 - 6 * t2 + 4) / 6.0, 1.5 * t2 - 2 * t),
                (i + 1, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6.0, -1.5 * t2 + t + 0.5), (i + 2, t3 / 6.0, 0.5 * t2))
    elif kind == "keys":          # Catmull-Rom cubic convolution (a = -0.5): C1, reproduces quadratics
        taps = tuple((i + j, _keys(t - j), _keys_d(t - j)) for j in (-1, 0, 1, 2))
    else:
        raise ValueError(f"point_weights must be one of {POINT_WEIGHTS}, got {kind!r}")
    return taps if derivative else tuple(tp[:2] for tp in taps)
