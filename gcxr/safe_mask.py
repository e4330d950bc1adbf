"""Safe masks: the per-run energy thresholds and the safe mask carried to the IRF grid.

The methods are gammapy's SafeMaskMaker's (``aeff-default``, ``aeff-max``, ``offset-max``,
``edisp-bias``, ``bkg-peak``; docs/conventions.md): :func:`safe_energy_range` keeps the
reco-energy bins above the thresholds (:func:`aeff_max_threshold`,
:func:`edisp_bias_threshold`), :func:`fixed_offset_pixels` finds where they are looked up
with ``fixed_offset``, and :func:`irf_grid_weights` (with :func:`edisp_mask_neighbours`) carries
a run's mask to the coarse PSF/EDISP grid as the reference does.  :func:`gcxr.reduce.reduce_run`
applies them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .coords import transform_lonlat
from .datastore import DataStoreError
from .geom import EnergyAxis, SkyGeom
from .irf._interp import interp_linear_spline

if TYPE_CHECKING:
    from .reduce import ReductionSpec

__all__ = ["SAFE_MASK_METHODS", "safe_energy_range", "fixed_offset_pixels", "aeff_max_threshold",
           "edisp_bias_threshold", "edisp_mask_neighbours", "irf_grid_weights"]

SAFE_MASK_METHODS = ("aeff-default", "aeff-max", "offset-max", "edisp-bias", "bkg-peak")


# --------------------------------------------------------------------------- energy thresholds
def safe_energy_range(methods, aeff, spec: ReductionSpec, exposure_c, bkg_spec, edisp_c) -> np.ndarray:
    """Reco-energy bins kept by the energy-threshold methods (1-D bool).

    Parameters
    ----------
    methods : sequence of str
        The energy-threshold methods among :data:`SAFE_MASK_METHODS` (``offset-max`` is not one).
    aeff : xarray.DataArray
        The effective-area table (``aeff-default`` reads its ``lo_thres``/``hi_thres``).
    spec : gcxr.reduce.ReductionSpec
        Energy axes and the methods' percentages.
    exposure_c : numpy.ndarray
        Exposure at the true-energy centres where ``aeff-max`` looks.
    bkg_spec : numpy.ndarray
        Background spectrum of the cutout per reco-energy bin (``bkg-peak``).
    edisp_c : numpy.ndarray
        Energy-dispersion kernel (true, reco) where ``edisp-bias`` looks.

    Returns
    -------
    numpy.ndarray
        True for the reco-energy bins kept.
    """
    keep = np.ones(spec.energy.nbin, bool)
    if "aeff-default" in methods:
        keep &= spec.energy.mask_range(aeff.attrs.get("lo_thres"), aeff.attrs.get("hi_thres"))
    if "aeff-max" in methods:
        emin = aeff_max_threshold(exposure_c, spec.energy_true.centers, spec.aeff_percent)
        if emin is None:
            keep[:] = False
        else:
            keep &= spec.energy.mask_range(emin, None)
    if "edisp-bias" in methods:
        emin = edisp_bias_threshold(edisp_c, spec.energy_true.centers, spec.energy.centers, spec.bias_percent)
        keep &= spec.energy.mask_range(emin, None)
    if "bkg-peak" in methods:
        if np.any(bkg_spec > 0):
            keep &= spec.energy.lo >= spec.energy.lo[int(np.argmax(bkg_spec))] * (1 - 1e-9)
    return keep


def fixed_offset_pixels(obs_id, ra_p, dec_p, offset, sub: SkyGeom, isub: SkyGeom):
    """Nearest fine and IRF-grid pixels to the point ``offset`` deg north of the pointing
    (gammapy's SafeMaskMaker ``fixed_offset``: ``directional_offset_by(0 deg, offset)``).

    Parameters
    ----------
    obs_id : int
        The run (for the error message).
    ra_p, dec_p : float
        The pointing (deg, ICRS).
    offset : float
        The offset (deg).
    sub, isub : SkyGeom
        The run's cutouts of the fine and the IRF grid.

    Returns
    -------
    tuple of tuple of int
        ``((iy, ix), (iiy, iix))``: the pixel in each grid; :class:`DataStoreError` if the point
        is outside either cutout.
    """
    import astropy.units as u  # deferred: heavy import (astropy)
    from astropy.coordinates import offset_by  # deferred: heavy import (astropy)
    ra, dec = offset_by(ra_p * u.deg, dec_p * u.deg, 0.0 * u.deg, offset * u.deg)
    lon, lat = transform_lonlat(np.array([ra.deg]), np.array([dec.deg]), "icrs", sub.frame)
    ix, iy, ok = sub.world_to_index(lon, lat)
    iix, iiy, iok = isub.world_to_index(lon, lat)
    if not (ok[0] and iok[0]):
        raise DataStoreError(f"run {obs_id}: datasets.safe_mask.parameters.fixed_offset = {offset} deg puts the "
                             "safe-mask position outside the run's cutout (datasets.geom.selection.offset_max)")
    return (int(iy[0]), int(ix[0])), (int(iiy[0]), int(iix[0]))


def _first_loglog_root(e: np.ndarray, y: np.ndarray, target: float) -> float | None:
    """First energy where the log-log interpolation of ``y(e)`` crosses ``target`` (None if none).

    Values are clipped at the smallest positive float before the logarithm, as gammapy's
    ``TemplateSpectralModel`` does; its ``inverse`` finds the same first root.
    """
    x = np.log(e)
    f = np.log(np.clip(y, np.finfo(float).tiny, None)) - np.log(target)
    for k in range(len(x) - 1):
        if f[k] == 0.0:
            return float(e[k])
        if f[k] * f[k + 1] < 0:
            return float(np.exp(x[k] - f[k] * (x[k + 1] - x[k]) / (f[k + 1] - f[k])))
    return None


def aeff_max_threshold(aeff: np.ndarray, e_true: np.ndarray, aeff_percent: float) -> float | None:
    """Lower energy threshold (TeV) of the ``aeff-max`` safe-mask method (gammapy's SafeMaskMaker).

    ``aeff`` is the effective area (or exposure) at the true-energy centres ``e_true``; the
    threshold is the first energy, from the first non-zero value on, where its log-log
    interpolation crosses ``aeff_percent`` % of the maximum (gammapy's first root, whichever
    way it crosses), or the first non-zero energy if it never does.  None if ``aeff`` is zero
    everywhere (gammapy then masks the whole dataset).

    Parameters
    ----------
    aeff : numpy.ndarray
        Effective area or exposure at ``e_true``.
    e_true : numpy.ndarray
        True-energy centres (TeV).
    aeff_percent : float
        The percentage of the maximum.

    Returns
    -------
    float or None
        The threshold (TeV).

    Examples
    --------
    >>> round(aeff_max_threshold(np.array([0.0, 1.0, 100.0]), np.array([0.1, 1.0, 10.0]), 10), 6)
    3.162278
    """
    nonzero = np.nonzero(aeff > 0)[0]
    if nonzero.size == 0:
        return None
    i0 = int(nonzero[0])
    root = _first_loglog_root(e_true[i0:], aeff[i0:], aeff_percent / 100.0 * float(aeff.max()))
    return float(e_true[i0]) if root is None else root


def edisp_bias_threshold(kernel: np.ndarray, e_true: np.ndarray, e_reco: np.ndarray, bias_percent: float) -> float:
    """Lower energy threshold (TeV) of the ``edisp-bias`` safe-mask method (gammapy's SafeMaskMaker).

    ``bias(E_t) = (mean reco energy - E_t) / E_t`` at the true-energy centres, with the mean over
    the kernel row at the reco centres (0 for an empty row); the energy where the bias falls to
    ``bias_percent`` is searched between the true energy of the largest bias and the last one
    (that lower bracket if it never does), and multiplied by ``1 + bias_percent / 100``
    (gammapy's ``EDispKernel.get_bias_energy``).

    Parameters
    ----------
    kernel : numpy.ndarray
        Energy-dispersion kernel (true, reco).
    e_true, e_reco : numpy.ndarray
        True- and reco-energy centres (TeV).
    bias_percent : float
        The bias (%) that sets the threshold.

    Returns
    -------
    float
        The threshold (TeV).

    Examples
    --------
    A diagonal kernel with biases 0.4, 0.05 and 0.01 at 0.1, 1 and 10 TeV: 10 % is reached at
    0.1 x 10^(2/3) TeV (log-log), and the threshold is 1.1 times that.

    >>> e = np.array([0.1, 1.0, 10.0])
    >>> round(edisp_bias_threshold(np.eye(3), e, np.array([0.14, 1.05, 10.1]), 10), 4)
    0.5106
    """
    norm = kernel.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nan_to_num((kernel * e_reco[None, :]).sum(axis=1) / norm)
    bias = (mean - e_true) / e_true
    b = bias_percent / 100.0
    i0 = int(np.nanargmax(bias))
    root = _first_loglog_root(e_true[i0:], bias[i0:], b)
    return float((e_true[i0] if root is None else root) * (1 + b))


# --------------------------------------------------------------------------- the IRF grid
def edisp_mask_neighbours(energy: EnergyAxis) -> np.ndarray:
    """For each reco-energy bin, the bin whose safe mask also counts in its EDISP stacking weight.

    The reference carries the safe mask (energy, lat, lon) to the EDISP grid by linear
    interpolation at the reco-bin centres.  A centre's pixel coordinate on the log energy axis
    is computed as a log-centre from the edges and back (linear interpolation of log E against
    the edge index, both ways); for some bins it lands a few 1e-16 off the integer, so the
    neighbour on that side gets a weight of ~1e-16, which is enough to mark the bin safe.  The
    net effect: a run's EDISP weight can reach one reco bin below (or above) its safe threshold.
    Returns ``nb`` with ``nb[k] = k`` where the coordinate is exact, else the neighbour's index
    (the other side at the ends of the axis, where the interpolation extrapolates).

    Parameters
    ----------
    energy : EnergyAxis
        The reco-energy axis.

    Returns
    -------
    numpy.ndarray
        The neighbour of each bin (int).
    """
    le = np.log(energy.edges_array)
    edge_pix = np.arange(le.size, dtype=float)
    n = energy.nbin
    log_centre = interp_linear_spline(edge_pix, le, np.arange(n, dtype=float) + 0.5)
    pix = interp_linear_spline(le, edge_pix, np.log(np.exp(log_centre))) - 0.5
    k = np.arange(n)
    nb = np.where(pix > k, k + 1, np.where(pix < k, k - 1, k))
    nb = np.where(nb >= n, n - 2, np.where(nb < 0, 1, nb)) if n > 1 else k
    return nb


def irf_grid_weights(mask: np.ndarray, sub: SkyGeom, isub: SkyGeom,
                     neighbours: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The safe mask carried to the coarse IRF grid, for stacking PSF and EDISP maps.

    ``mask`` is the run's safe mask (energy, lat, lon).  PSF: an image, the fine pixel nearest
    to each coarse pixel centre in ``any`` over energy; EDISP: per reco-energy bin, any of the
    (up to four) fine pixels around the centre, in that bin or in its neighbour
    ``neighbours[k]`` (see :func:`edisp_mask_neighbours`).  Coarse centres sit on fine-pixel
    borders, so the nearest pixel is decided by the WCS transform's rounding: astropy's
    transform is used for it, as in the reference.

    Parameters
    ----------
    mask : numpy.ndarray
        The safe mask, (energy, lat, lon) or (lat, lon).
    sub, isub : SkyGeom
        The run's cutouts of the fine and the IRF grid.
    neighbours : numpy.ndarray, optional
        :func:`edisp_mask_neighbours` of the reco-energy axis.

    Returns
    -------
    w_psf, w_edisp : numpy.ndarray
        The PSF weight image (lat_irf, lon_irf) and the EDISP weights (energy, lat_irf, lon_irf).
    """
    mask = np.asarray(mask, bool)
    if mask.ndim == 2:
        mask = mask[None]
    mask_img = mask.any(axis=0)
    yy, xx = np.mgrid[0:isub.ny, 0:isub.nx].astype(float)
    lon, lat = isub.wcs.wcs_pix2world(xx, yy, 0)
    fx, fy = sub.wcs.wcs_world2pix(lon, lat, 0)
    ix, iy = np.floor(fx + 0.5).astype(int), np.floor(fy + 0.5).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < sub.nx) & (iy < sub.ny)
    w_psf = np.zeros(isub.shape, bool)
    w_psf[inside] = mask_img[iy[inside], ix[inside]]
    x0 = np.clip(np.floor(fx).astype(int), 0, sub.nx - 1)
    y0 = np.clip(np.floor(fy).astype(int), 0, sub.ny - 1)
    x1, y1 = np.clip(x0 + 1, 0, sub.nx - 1), np.clip(y0 + 1, 0, sub.ny - 1)
    tx, ty = np.clip(fx - np.floor(fx), 0, 1), np.clip(fy - np.floor(fy), 0, 1)
    # a corner counts where its bilinear weight is non-zero
    w_edisp = np.zeros((mask.shape[0],) + isub.shape, bool)
    for yi, xi, w in ((y0, x0, (1 - tx) * (1 - ty)), (y0, x1, tx * (1 - ty)), (y1, x0, (1 - tx) * ty),
                      (y1, x1, tx * ty)):
        w_edisp |= mask[:, yi, xi] & (w > 0)[None]
    if neighbours is not None:
        w_edisp = w_edisp | w_edisp[np.asarray(neighbours)]
    return w_psf, w_edisp
