"""Effective area (``aeff_2d``): A_eff(energy_true, offset) in m^2."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..datastore import DataStoreError, HDURef, file_cache
from ._interp import interp_axis, interp_scattered
from ._table import column, edges, read_irf_table

__all__ = ["read_aeff", "eval_aeff"]


def _axis_coords(name, e, log):
    c = np.sqrt(e[:-1] * e[1:]) if log else 0.5 * (e[:-1] + e[1:])
    return {name: c, f"{name}_lo": (name, e[:-1]), f"{name}_hi": (name, e[1:])}


@file_cache(maxsize=64)
def read_aeff(ref: HDURef) -> xr.DataArray:
    """Read an ``aeff_2d`` HDU; safe-energy thresholds (LO_THRES/HI_THRES, TeV) go to attrs."""
    if ref.hdu_class not in ("aeff_2d",):
        raise DataStoreError(f"{ref}: unsupported effective-area class '{ref.hdu_class}' (supported: aeff_2d)")
    t = read_irf_table(ref)
    e = edges(t, "ENERG_LO", "ENERG_HI", "TeV")
    th = edges(t, "THETA_LO", "THETA_HI", "deg")
    data = column(t, "EFFAREA", (e.size - 1, th.size - 1), "m2")
    attrs = {"units": "m2", "long_name": "Effective area", "irf": str(ref)}
    for k in ("LO_THRES", "HI_THRES"):
        if k in t.header:
            attrs[k.lower()] = float(t.header[k])
    coords = {**_axis_coords("energy_true", e, True), **_axis_coords("offset", th, False)}
    return xr.DataArray(data, dims=("energy_true", "offset"), coords=coords, attrs=attrs, name="aeff")


def _edges_of(da, dim):
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


def eval_aeff(aeff: xr.DataArray, energy_true: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A_eff (m^2) at energies (1-D, TeV) x offsets (any shape, deg) -> ``(nE, *offset.shape)``.

    Bilinear in (ln E, offset) on the node centres, extrapolating linearly, clipped
    at 0 and set to 0 outside the axis edges.
    """
    energy_true = np.atleast_1d(np.asarray(energy_true, float))
    ln_nodes = np.log(aeff["energy_true"].values)
    tab = interp_axis(aeff.values, ln_nodes, np.log(energy_true), axis=0)     # (nE, n_off)
    off = np.asarray(offset, float)
    out = interp_scattered(tab, [aeff["offset"].values], [off])
    out = np.clip(out, 0.0, None)
    e_edges, o_edges = _edges_of(aeff, "energy_true"), _edges_of(aeff, "offset")
    e_bad = (energy_true < e_edges[0]) | (energy_true > e_edges[-1])
    out[e_bad] = 0.0
    out[:, (off < o_edges[0]) | (off > o_edges[-1])] = 0.0
    return out
