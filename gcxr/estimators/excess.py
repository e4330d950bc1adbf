r"""Correlated excess and significance maps (the reference's ``ExcessMapEstimator``, Cash case).

For each energy band (a group of whole reco-energy bins):

1. band sums with the safe mask as weights, ``N = sum_E counts * mask_safe`` and
   ``B = sum_E npred * mask_safe``, where ``npred`` is the full predicted cube
   (background times its norm plus every source of ``models``) or, without
   models, the background cube;
2. the band mask ``M = OR_E(mask_safe) & OR_E(mask_fit)`` (a band counts where
   any of its bins does; no ``mask_fit`` means all True);
3. a top-hat of radius ``R = r / binsz`` pixels (weights 1 at the pixel centres
   with :math:`x^2 + y^2 \le R^2`: a sum, not a mean) correlates
   ``n = rint(K * (N M))`` and ``mu = K * (B M)`` ('same' mode, zero outside
   the grid);
4. the Cash test statistic of a known background, with the truncation of
   :mod:`gcxr.stats`:

   .. math:: TS = 2[(\mu - n) + n \ln(n / \mu)] \ge 0, \qquad
             \sqrt{TS}_\pm = \mathrm{sign}(n - \mu) \sqrt{TS}

   (Li & Ma for alpha -> 0);
5. every output is NaN where ``M`` is False.

The convolution is done in float64 (the reference stores the correlated
background in float32: a relative difference below 1e-7).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..npred import npred_cubes
from ..stats import cash_ts_known_background
from ._core import (band_any, band_coords, band_sum, convolve_images, cube_values, energy_edge_list,
                    fit_mask_cube, match_energy_edges, pixel_size_deg, safe_mask, tophat_kernel)

__all__ = ["excess_map"]


def _band_indices(ds: xr.Dataset, energy_edges) -> np.ndarray:
    if energy_edges is None:        # one band over the whole axis (as the reference does by default)
        return np.array([0, ds.sizes["energy"]])
    return match_energy_edges(ds, energy_edges)


def excess_map(ds: xr.Dataset, npred=None, models=None, correlation_radius: float = 0.1,
               energy_edges=None) -> xr.Dataset:
    """Correlated counts, predicted counts, excess and significance per energy band.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset (``counts``, ``background``, ``mask_safe``, optional ``mask_fit``).
    npred : DataArray or Dataset, optional
        Predicted counts on (energy, lat, lon) (e.g. ``npred_cubes(ds, models)``);
        the excess is measured above it.
    models : Models, optional
        Alternatively, the models whose full ``npred`` is used.  With neither,
        the background cube is the prediction.
    correlation_radius : float
        Radius of the top-hat correlation kernel, deg.
    energy_edges : sequence of float, optional
        Band edges in TeV; each must be a bin edge of ``energy``.  Default: one
        band over the whole energy axis.

    Returns
    -------
    xarray.Dataset on (band, lat, lon) with ``counts``, ``npred``, ``excess``,
    ``ts``, ``sqrt_ts`` (NaN outside the mask) and the boolean ``mask``; the
    ``band`` coordinate holds geometric-mean energies with ``band_bounds``.
    """
    if npred is not None and models is not None:
        raise ValueError("excess_map: give npred or models, not both")
    if npred is None and models is not None:
        npred = npred_cubes(ds, models)["npred"]
    mu_cube = cube_values(ds, "background" if npred is None else npred)
    counts = np.asarray(ds["counts"].values)
    idx = _band_indices(ds, energy_edges)

    ms = safe_mask(ds)
    mask = band_any(ms, idx)
    mf = fit_mask_cube(ds)
    if mf is not None:
        mask &= band_any(mf, idx)
    n_band = band_sum(counts, idx, ms)
    mu_band = band_sum(mu_cube, idx, ms)

    radius_pix = float(correlation_radius) / pixel_size_deg(ds)
    kernel = tophat_kernel(radius_pix)
    n = np.rint(convolve_images(n_band * mask, kernel))
    mu = convolve_images(mu_band * mask, kernel)
    ts = cash_ts_known_background(n, mu)
    sqrt_ts = np.sign(n - mu) * np.sqrt(ts)

    nan = np.nan
    dims = ("band", "lat", "lon")
    out_vars = {
        "counts": (np.where(mask, n, nan), {"long_name": "Correlated counts"}),
        "npred": (np.where(mask, mu, nan), {"long_name": "Correlated predicted counts"}),
        "excess": (np.where(mask, n - mu, nan), {"long_name": "Correlated excess counts"}),
        "ts": (np.where(mask, ts, nan), {"long_name": "Cash TS of the excess (known background)"}),
        "sqrt_ts": (np.where(mask, sqrt_ts, nan), {"long_name": "Signed sqrt(TS) (significance)"}),
    }
    edges = energy_edge_list(ds, idx)
    coords = (band_coords(edges) | {k: v for k, v in band_coords(edges, as_min_max=True).items() if k != "band"}
              | {k: ds.coords[k] for k in ("lat", "lon")})     # band_min/max survive selecting one map
    out = xr.Dataset({k: (dims, v, a | {"units": "1"}) for k, (v, a) in out_vars.items()}, coords=coords)
    out["mask"] = (dims, mask, {"long_name": "Band mask: OR of mask_safe (and mask_fit) over the band"})
    out.attrs = {"correlation_radius_deg": float(correlation_radius), "kernel_radius_pix": radius_pix,
                 "kernel_npix": int(kernel.sum()), "name": ds.attrs.get("name", "")}
    return out
