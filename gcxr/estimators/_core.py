"""Shared pieces of the estimators: energy bands, masks, image kernels.

All functions take and return plain numpy arrays or xarray objects with named
dims; energies are TeV floats (astropy quantities are converted on entry).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..geom import EnergyAxis

EDGE_RTOL = 1e-6        # a requested energy edge must match a bin edge to this relative precision
KERNEL_RTOL = 1e-9      # rounding of the pixel size read back from the coordinates


def as_tev(values) -> np.ndarray:
    """Energies as a float array in TeV (plain numbers are taken as TeV)."""
    if hasattr(values, "unit") and hasattr(values, "to_value"):
        return np.atleast_1d(np.asarray(values.to_value("TeV"), dtype=float))
    if isinstance(values, (list, tuple)) and any(hasattr(v, "unit") for v in values):
        return np.array([float(v.to_value("TeV")) if hasattr(v, "unit") else float(v) for v in values])
    return np.atleast_1d(np.asarray(values, dtype=float))


def match_energy_edges(ds: xr.Dataset, energy_edges, dim: str = "energy") -> np.ndarray:
    """Indices into the bin edges of ``dim`` for each requested edge.

    Every requested edge must coincide with an existing edge within a relative
    1e-6, and the edges must increase; raises ``ValueError`` naming the edge and
    listing the available ones otherwise.
    """
    axis = EnergyAxis.from_coord(ds, dim)
    edges = axis.edges_array
    req = as_tev(energy_edges)
    if req.ndim != 1 or req.size < 2:
        raise ValueError(f"energy_edges: need at least two edges, got {energy_edges!r}")
    idx = []
    for e in req:
        i = int(np.argmin(np.abs(edges - e)))
        if not abs(edges[i] - e) <= EDGE_RTOL * abs(e):
            raise ValueError(f"energy_edges: {e:.6g} TeV is not a bin edge of {dim!r}; the edges are "
                             f"{np.array2string(edges, precision=6, separator=', ')} TeV")
        idx.append(i)
    idx = np.asarray(idx)
    if np.any(np.diff(idx) <= 0):
        raise ValueError(f"energy_edges must be strictly increasing, got {req}")
    return idx


def snap_energy_edges(ds: xr.Dataset, energy_edges, dim: str = "energy") -> tuple[np.ndarray, np.ndarray]:
    """Indices of the bin edges of ``dim`` nearest to the requested edges, and those edges (TeV).

    As gammapy's ``MapAxis.group_table``: each requested edge moves to the nearest bin edge in
    log energy, edges outside the axis move to its ends, and requested edges that land on the
    same bin edge count once.

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset with ``dim`` and its CF bounds ``<dim>_bounds``.
    energy_edges : sequence of float (TeV) or Quantity
        The requested edges, increasing.
    dim : str
        The energy dimension.

    Returns
    -------
    idx : numpy.ndarray of int
        Indices into the bin edges of ``dim`` (strictly increasing).
    edges : numpy.ndarray
        The bin edges used, TeV.

    Raises
    ------
    ValueError
        Fewer than two edges, edges not increasing, or fewer than two distinct bin edges after
        snapping (the requested range lies within one bin or outside the axis).
    """
    edges = EnergyAxis.from_coord(ds, dim).edges_array
    req = as_tev(energy_edges)
    if req.ndim != 1 or req.size < 2 or not np.all(np.isfinite(req)) or np.any(req <= 0):
        raise ValueError(f"energy_edges: need at least two positive, finite edges, got {energy_edges!r}")
    if np.any(np.diff(req) <= 0):
        raise ValueError(f"energy_edges must be strictly increasing, got {req}")
    idx = np.unique(np.argmin(np.abs(np.log(edges)[None, :] - np.log(req)[:, None]), axis=1))
    if idx.size < 2:
        raise ValueError(f"energy_edges {req} TeV all snap to the bin edge {edges[idx[0]]:.6g} TeV of {dim!r}; "
                         f"the edges are {np.array2string(edges, precision=6, separator=', ')} TeV")
    return idx, edges[idx]


def band_coords(edges: np.ndarray, name: str = "band", as_min_max: bool = False) -> dict:
    """Coordinates of energy bands: geometric-mean centres plus the edges (TeV).

    The edges are a CF bounds variable ``<name>_bounds`` (name, bnds) for a
    Dataset, or ``<name>_min``/``<name>_max`` coordinates along ``name`` (a
    DataArray cannot hold a coordinate on a dim it lacks).
    """
    edges = np.asarray(edges, dtype=float)
    lo, hi = edges[:-1], edges[1:]
    long = "Reconstructed energy" + (" band" if name == "band" else "")
    centre = {"units": "TeV", "long_name": long}
    if as_min_max:
        return {name: xr.Variable(name, np.sqrt(lo * hi), centre),
                f"{name}_min": xr.Variable(name, lo, {"units": "TeV", "long_name": "Lower edge"}),
                f"{name}_max": xr.Variable(name, hi, {"units": "TeV", "long_name": "Upper edge"})}
    return {name: xr.Variable(name, np.sqrt(lo * hi), centre | {"bounds": f"{name}_bounds"}),
            f"{name}_bounds": xr.Variable((name, "bnds"), np.stack([lo, hi], -1), {"units": "TeV"})}


def cube_values(ds: xr.Dataset, var) -> np.ndarray:
    """A variable (or a given DataArray/Dataset holding ``npred``) as a float64 (energy, lat, lon) array."""
    if isinstance(var, str):
        da = ds[var]
    elif isinstance(var, xr.Dataset):
        if "npred" not in var:
            raise ValueError(f"npred: a Dataset must hold an 'npred' variable, got {sorted(var.data_vars)}")
        da = var["npred"]
    elif isinstance(var, xr.DataArray):
        da = var
    else:
        raise TypeError(f"expected a DataArray or Dataset on (energy, lat, lon), got {type(var).__name__}")
    want = ("energy", "lat", "lon")
    if set(da.dims) != set(want):
        raise ValueError(f"expected dims {want}, got {da.dims}")
    da = da.transpose(*want)
    if da.shape != ds["counts"].shape:
        raise ValueError(f"shape {da.shape} does not match the dataset's counts {ds['counts'].shape}")
    return np.asarray(da.values, dtype=float)


def safe_mask(ds: xr.Dataset) -> np.ndarray:
    """mask_safe as a boolean (energy, lat, lon) array (all True when absent)."""
    shape = ds["counts"].shape
    if "mask_safe" not in ds:
        return np.ones(shape, bool)
    return _expand(ds["mask_safe"], ds)


def fit_mask_cube(ds: xr.Dataset) -> np.ndarray | None:
    """mask_fit broadcast to (energy, lat, lon), or None when the dataset has none."""
    if "mask_fit" not in ds:
        return None
    return _expand(ds["mask_fit"], ds)


def _expand(m: xr.DataArray, ds: xr.Dataset) -> np.ndarray:
    """A boolean mask on any subset of (energy, lat, lon), broadcast to the counts cube."""
    bad = set(m.dims) - {"energy", "lat", "lon"}
    if bad:
        raise ValueError(f"mask {m.name!r}: unexpected dims {sorted(bad)}; allowed: energy, lat, lon")
    full = xr.DataArray(np.ones(ds["counts"].shape, bool), dims=("energy", "lat", "lon"))
    return (m.astype(bool) & full).transpose("energy", "lat", "lon").values


def band_sum(cube: np.ndarray, idx: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Sums of ``cube * weights`` over the energy bins of each band (float64), shape (n_band, ny, nx)."""
    out = np.empty((idx.size - 1,) + cube.shape[1:])
    for k, (a, b) in enumerate(zip(idx[:-1], idx[1:])):
        c = cube[a:b].astype(float)
        out[k] = (c * weights[a:b] if weights is not None else c).sum(axis=0)
    return out


def band_any(mask: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """OR of a boolean cube over the energy bins of each band."""
    return np.stack([mask[a:b].any(axis=0) for a, b in zip(idx[:-1], idx[1:])])


def tophat_kernel(radius_pix: float) -> np.ndarray:
    """Top-hat of ``radius_pix`` pixels: 1 at the pixel centres with x^2 + y^2 <= R^2, else 0.

    astropy's ``Tophat2DKernel`` in its 'center' mode, divided by its maximum.  A radius within
    a relative 1e-9 of a pixel-centre distance includes that pixel, so that 0.1 deg / 0.02 deg
    gives the same 81-pixel disk whatever the rounding of the pixel size read from the
    coordinates.
    """
    if not radius_pix > 0:
        raise ValueError(f"kernel radius must be positive, got {radius_pix} pixels")
    from astropy.convolution import Tophat2DKernel  # deferred: only the estimators smooth
    k = (Tophat2DKernel(radius_pix * (1 + KERNEL_RTOL), mode="center").array > 0).astype(float)
    # astropy rounds the size up from 2R(1 + rtol); drop its all-zero border rings (the same disk,
    # the same FFT sizes as the smallest odd array that holds it)
    while k.shape[0] > 1 and not k[0].any():
        k = k[1:-1, 1:-1]
    return k


def convolve_images(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D FFT convolution of each image in (n, ny, nx), 'same' mode (zero outside the grid)."""
    from scipy.signal import fftconvolve  # deferred: heavy import (scipy)
    return np.stack([fftconvolve(img, kernel, mode="same") for img in images])


def gaussian_smooth(values: np.ndarray, sigma_pix: Sequence[float]) -> np.ndarray:
    """``values`` convolved with a normalised Gaussian of ``sigma_pix[i]`` pixels along axis ``i``, zero outside the grid.

    The one Gaussian of the estimators (:func:`smooth_images`, and
    :func:`gcxr.estimators.smooth_map` twice for its NaN-aware mean); an axis
    with sigma 0 is not smoothed.
    """
    from scipy.ndimage import gaussian_filter  # deferred: heavy import (a reduction or a fit never smooths)
    return gaussian_filter(values, tuple(sigma_pix), mode="constant")


def smooth_images(images: np.ndarray, radius_pix: float, kernel: str) -> np.ndarray:
    """Smooth images with a normalised Gaussian (sigma = radius) or disk (top-hat mean) kernel."""
    if kernel == "gauss":
        return gaussian_smooth(images, (0.0,) * (np.ndim(images) - 2) + (radius_pix, radius_pix))
    if kernel == "disk":
        k = tophat_kernel(radius_pix)
        return convolve_images(images, k / k.sum())
    raise ValueError(f"kernel must be one of ('gauss', 'disk'), got {kernel!r}")


def pixel_size_deg(ds: xr.Dataset) -> float:
    """Pixel size (deg) along the latitude axis (square pixels at the grid's centre row)."""
    lat = np.asarray(ds["lat"].values, float)
    if lat.size < 2:
        raise ValueError("the dataset needs at least two latitude pixels")
    return float(abs(lat[-1] - lat[0]) / (lat.size - 1))


def energy_edge_list(ds: xr.Dataset, idx: np.ndarray, dim: str = "energy") -> np.ndarray:
    return EnergyAxis.from_coord(ds, dim).edges_array[idx]


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
