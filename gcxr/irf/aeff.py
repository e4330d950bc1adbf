"""Effective area (``aeff_2d``): A_eff(energy_true, offset) in m^2."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..datastore import DataStoreError, HDURef, file_cache
from ._interp import interp_axis, interp_scattered, lin_weights
from ._table import axis_coords, column, edges, read_irf_table

__all__ = ["read_aeff", "eval_aeff", "eval_aeff_at", "AeffEvaluator"]



@file_cache(maxsize=64)
def read_aeff(ref: HDURef) -> xr.DataArray:
    """Read an ``aeff_2d`` HDU; safe-energy thresholds (LO_THRES/HI_THRES, TeV) go to attrs.

    Parameters
    ----------
    ref : HDURef
        The file and HDU (from :meth:`gcxr.DataStore.runs` or :func:`gcxr.simulate.irf_hdus`).

    Returns
    -------
    xarray.DataArray
        Effective area (m2) on (energy_true, offset).
    """
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
    coords = {**axis_coords("energy_true", e, True), **axis_coords("offset", th, False)}
    return xr.DataArray(data, dims=("energy_true", "offset"), coords=coords, attrs=attrs, name="aeff")


def _edges_of(da, dim):
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


class AeffEvaluator:
    """:func:`eval_aeff` at fixed true energies, for many offset arrays.

    The interpolation in energy (to the table of ``(n_energy, n_offset_nodes)``) and the
    lookups of the axes are done once; each call interpolates in offset only.
    """

    def __init__(self, aeff: xr.DataArray, energy_true: np.ndarray):
        energy_true = np.atleast_1d(np.asarray(energy_true, float))
        ln_nodes = np.log(aeff["energy_true"].values)
        self.table = interp_axis(aeff.values, ln_nodes, np.log(energy_true), axis=0)     # (nE, n_off)
        self.nodes = aeff["offset"].values
        e_edges, o_edges = _edges_of(aeff, "energy_true"), _edges_of(aeff, "offset")
        self.e_bad = (energy_true < e_edges[0]) | (energy_true > e_edges[-1])
        self.o_range = (o_edges[0], o_edges[-1])

    def __call__(self, offset: np.ndarray, scale: float | None = None) -> np.ndarray:
        """A_eff (times ``scale`` if given) at ``offset`` (deg, any shape) -> ``(nE, *offset.shape)``."""
        off = np.asarray(offset, float)
        if self.nodes.size > 1:
            # linear in offset = the table times a matrix with two weights per pixel (one BLAS product)
            i, w = lin_weights(self.nodes, off.ravel())
            cols = np.arange(off.size)
            W = np.zeros((self.nodes.size, off.size))
            W[i, cols] = 1.0 - w
            W[i + 1, cols] += w
            out = (self.table @ W).reshape(self.table.shape[:1] + off.shape)
        else:
            out = interp_scattered(self.table, [self.nodes], [off])
        np.clip(out, 0.0, None, out=out)
        out[self.e_bad] = 0.0
        out[:, (off < self.o_range[0]) | (off > self.o_range[1])] = 0.0
        if scale is not None:
            out *= scale
        return out


def eval_aeff(aeff: xr.DataArray, energy_true: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A_eff (m^2) at energies (1-D, TeV) x offsets (any shape, deg) -> ``(nE, *offset.shape)``.

    Bilinear in (ln E, offset) on the node centres, extrapolating linearly, clipped
    at 0 and set to 0 outside the axis edges.

    Parameters
    ----------
    aeff : xarray.DataArray
        The table from :func:`read_aeff`.
    energy_true : numpy.ndarray
        True energies (1-D, TeV).
    offset : numpy.ndarray
        Field-of-view offsets (deg), any shape.

    Returns
    -------
    numpy.ndarray
        Effective area (m2), shape ``(nE, *offset.shape)``.
    """
    return AeffEvaluator(aeff, energy_true)(offset)


def eval_aeff_at(aeff: xr.DataArray, energy_true: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A_eff (m^2) at scattered (energy, offset) pairs (events), by :func:`eval_aeff`'s rule.

    Bilinear in (ln E, offset) on the node centres, extrapolating linearly,
    clipped at 0 and set to 0 outside the axis edges; one value per pair rather
    than the energies x offsets grid of :func:`eval_aeff` (the interpolation
    is done in both axes at once, so the last bits may differ from it).

    Parameters
    ----------
    aeff : xarray.DataArray
        The table from :func:`read_aeff`.
    energy_true : numpy.ndarray
        True energies (TeV).
    offset : numpy.ndarray
        Field-of-view offsets (deg), the shape of ``energy_true``.

    Returns
    -------
    numpy.ndarray
        Effective area (m2), one value per pair.
    """
    energy_true, offset = np.asarray(energy_true, float), np.asarray(offset, float)
    val = np.clip(interp_scattered(aeff.values, [np.log(aeff["energy_true"].values), aeff["offset"].values],
                                   [np.log(energy_true), offset]), 0.0, None)
    e_e, o_e = _edges_of(aeff, "energy_true"), _edges_of(aeff, "offset")
    val[(energy_true < e_e[0]) | (energy_true > e_e[-1]) | (offset < o_e[0]) | (offset > o_e[-1])] = 0.0
    return val
