"""Gaussian smoothing of sky maps with a width in degrees on the sky, for display.

:func:`smooth_map` is the smoothing of :mod:`gcxr.plot` (``smooth=``): a
normalised convolution, so that NaN pixels (outside a mask) are left out rather
than taken as zeros, and pixels near the edge of the grid are averages of the
pixels that exist.  The residual estimators smooth as the reference does
instead (:func:`gcxr.estimators.residual_maps`: zero outside the grid).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ._core import gaussian_smooth

__all__ = ["smooth_map"]


def smooth_map(da: xr.DataArray, sigma_deg: float) -> xr.DataArray:
    """A map smoothed in (lat, lon) by a Gaussian of ``sigma_deg`` on the sky, NaN-aware.

    The widths in pixels are ``sigma / |dlat|`` along ``lat`` and
    ``sigma / (|dlon| cos b_c)`` along ``lon`` (``b_c``: the latitude of the
    grid's centre); other dims are not smoothed.  Each value is the
    Gaussian-weighted mean of the finite pixels around it (zero weight outside
    the grid); NaN pixels stay NaN.

    Parameters
    ----------
    da : xarray.DataArray
        A map on (lat, lon) (any other dims, in any order) with regular lon/lat coordinates.
    sigma_deg : float
        The Gaussian's sigma on the sky, deg (> 0).

    Returns
    -------
    xarray.DataArray
        The smoothed map, with ``da``'s dims, coordinates and attrs.
    """
    if not sigma_deg > 0:
        raise ValueError(f"smooth must be a positive width in deg, got {sigma_deg}")
    lat = np.asarray(da["lat"].values, float)
    lon = np.asarray(da["lon"].values, float)
    if lat.size < 2 or lon.size < 2:
        raise ValueError(f"smooth_map: need at least 2 pixels along lat and lon, got {lat.size} x {lon.size}")
    dlat = abs(lat[1] - lat[0])
    dlon = abs((lon[1] - lon[0] + 180.0) % 360.0 - 180.0)
    b_c = np.deg2rad(0.5 * (lat[0] + lat[-1]))
    sig_pix = {"lat": sigma_deg / dlat, "lon": sigma_deg / (dlon * max(np.cos(b_c), 1e-6))}
    sig = tuple(sig_pix.get(str(d), 0.0) for d in da.dims)
    img = np.asarray(da.values, float)
    ok = np.isfinite(img)
    num = gaussian_smooth(np.where(ok, img, 0.0), sig)
    den = gaussian_smooth(ok.astype(float), sig)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return da.copy(data=np.where(ok, out, np.nan))
