"""Residuals of a model prediction: sky maps per energy band, spectra in a sky region.

Three normalisations (as the reference's dataset residuals):

* ``"diff"``:              n - mu
* ``"diff/model"``:        (n - mu) / mu
* ``"diff/sqrt(model)"``:  (n - mu) / sqrt(mu)

with ``n`` the counts and ``mu`` the predicted counts, both multiplied by the
mask before they are summed (and smoothed).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from ..contract import geom_of
from ._core import (band_any, band_coords, band_sum, check_choice, cube_values, energy_edge_list,
                    fit_mask_cube, match_energy_edges, pixel_size_deg, safe_mask, smooth_images)

__all__ = ["residual_maps", "spectral_residuals", "RESIDUAL_METHODS"]

RESIDUAL_METHODS = ("diff", "diff/model", "diff/sqrt(model)")
Method = Literal["diff", "diff/model", "diff/sqrt(model)"]


def _residual(n, mu, method: str):
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "diff":
            return n - mu
        if method == "diff/model":
            return (n - mu) / mu
        return (n - mu) / np.sqrt(mu)


def residual_maps(ds: xr.Dataset, npred, method: Method = "diff", smooth_radius: float | None = None,
                  kernel: Literal["gauss", "disk"] = "gauss", energy_edges=None,
                  use_fit_mask: bool = False) -> xr.DataArray:
    """Residual sky maps, per reco-energy bin or summed over energy bands.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset with ``counts`` and ``mask_safe``.
    npred : DataArray or Dataset
        Predicted counts on (energy, lat, lon) (e.g. ``npred_cubes(ds, models)``).
    method : {"diff", "diff/model", "diff/sqrt(model)"}
        Normalisation of ``counts - npred``.
    smooth_radius : float, optional
        Smooth the summed counts and npred (deg): the Gaussian sigma
        (``kernel="gauss"``) or the disk radius (``"disk"``); both kernels are
        normalised to unit sum and zero outside the grid.
    kernel : {"gauss", "disk"}
        The smoothing kernel.
    energy_edges : sequence of float, optional
        Band edges in TeV (bin edges of ``energy``); the result is on ``band``.
        Default: every reco-energy bin on its own (dim ``energy``).
    use_fit_mask : bool
        Also apply ``mask_fit`` (default: the safe mask only).

    Returns
    -------
    DataArray on (band or energy, lat, lon), NaN where the (band) mask is False;
    the energy coordinate holds geometric-mean energies with ``<dim>_min`` and
    ``<dim>_max`` coordinates for the edges.
    """
    check_choice("method", method, RESIDUAL_METHODS)
    check_choice("kernel", kernel, ("gauss", "disk"))
    mu_cube = cube_values(ds, npred)
    mask = safe_mask(ds)
    if use_fit_mask and (mf := fit_mask_cube(ds)) is not None:
        mask = mask & mf
    counts = np.asarray(ds["counts"].values)
    if energy_edges is None:
        idx = np.arange(ds.sizes["energy"] + 1)
        dim = "energy"
    else:
        idx = match_energy_edges(ds, energy_edges)
        dim = "band"
    coords = band_coords(energy_edge_list(ds, idx), dim, as_min_max=True)
    n = band_sum(counts, idx, mask)
    mu = band_sum(mu_cube, idx, mask)
    band_mask = band_any(mask, idx)
    if smooth_radius is not None:
        r = float(smooth_radius) / pixel_size_deg(ds)
        n, mu = smooth_images(n, r, kernel), smooth_images(mu, r, kernel)
    res = np.where(band_mask, _residual(n, mu, method), np.nan)
    coords |= {k: ds.coords[k] for k in ("lat", "lon")}
    attrs = {"units": "1", "long_name": f"Residuals ({method})", "method": method,
             "smooth_radius_deg": float(smooth_radius) if smooth_radius is not None else 0.0,
             "kernel": kernel if smooth_radius is not None else "none",
             "mask": "mask_safe & mask_fit" if use_fit_mask else "mask_safe"}
    return xr.DataArray(res, dims=(dim, "lat", "lon"), coords=coords, name="residuals", attrs=attrs)


def region_mask(ds: xr.Dataset, region) -> xr.DataArray:
    """Boolean (lat, lon) mask of the pixel centres inside a ``regions`` sky region."""
    from astropy.coordinates import SkyCoord  # deferred: heavy import (astropy)

    geom = geom_of(ds)[0]
    lon, lat = geom.grid_lonlat()
    coord = SkyCoord(lon, lat, unit="deg", frame=geom.frame)
    inside = np.asarray(region.contains(coord, geom.wcs), bool).reshape(lon.shape)
    return xr.DataArray(inside, dims=("lat", "lon"), coords={k: ds.coords[k] for k in ("lat", "lon")},
                        name="region_mask")


def spectral_residuals(ds: xr.Dataset, npred, region) -> xr.Dataset:
    """Counts, predicted counts and residuals per reco-energy bin inside a sky region.

    Sums run over the pixels whose centres lie in ``region`` (a ``regions``
    SkyRegion, any frame) and inside ``mask_safe & mask_fit`` (as the
    reference's spectral residuals).

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    npred : xarray.DataArray or xarray.Dataset
        Predicted counts on (energy, lat, lon) (or :func:`gcxr.npred_cubes`' output).
    region : regions.SkyRegion
        The region, in any frame.

    Returns
    -------
    xarray.Dataset on ``energy`` with ``counts``, ``npred``, ``diff`` (counts -
    npred), ``diff_sqrt_model`` ((counts - npred) / sqrt(npred)) and ``mask``
    (the bin has at least one unmasked pixel in the region); the sums and
    residuals are NaN where ``mask`` is False.
    """
    mu_cube = cube_values(ds, npred)
    mask = safe_mask(ds)
    if (mf := fit_mask_cube(ds)) is not None:
        mask = mask & mf
    inside = region_mask(ds, region).values
    if not inside.any():
        raise ValueError(f"spectral_residuals: no pixel centre of dataset {ds.attrs.get('name', '')!r} "
                         f"lies inside the region {region!r}")
    w = mask & inside[None]
    counts = np.asarray(ds["counts"].values, float)
    n = np.array([counts[k][w[k]].sum() for k in range(w.shape[0])])
    mu = np.array([mu_cube[k][w[k]].sum() for k in range(w.shape[0])])
    ok = w.any(axis=(1, 2))
    nan = np.nan
    coords = {"energy": ds.coords["energy"]}
    if "energy_bounds" in ds:
        coords["energy_bounds"] = ds["energy_bounds"]
    out = xr.Dataset({
        "counts": ("energy", np.where(ok, n, nan), {"units": "1", "long_name": "Counts in the region"}),
        "npred": ("energy", np.where(ok, mu, nan), {"units": "1", "long_name": "Predicted counts in the region"}),
        "diff": ("energy", np.where(ok, _residual(n, mu, "diff"), nan), {"units": "1", "long_name": "counts - npred"}),
        "diff_sqrt_model": ("energy", np.where(ok, _residual(n, mu, "diff/sqrt(model)"), nan),
                            {"units": "1", "long_name": "(counts - npred) / sqrt(npred)"}),
        "mask": ("energy", ok, {"long_name": "Bin has unmasked pixels in the region"}),
    }, coords=coords)
    out.attrs = {"n_pixels": int(inside.sum()), "region": str(region), "name": ds.attrs.get("name", "")}
    return out
