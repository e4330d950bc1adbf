"""Energy dispersion (``edisp_2d``): probability density in migra = E_reco / E_true."""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..datastore import DataStoreError, HDURef, file_cache
from ._interp import interp_axis, lin_weights
from ._table import axis_coords, column, edges, read_irf_table

__all__ = ["read_edisp", "eval_edisp_kernel"]



@file_cache(maxsize=64)
def read_edisp(ref: HDURef) -> xr.DataArray:
    """Read an ``edisp_2d`` HDU -> DataArray (energy_true, migra, offset).

    Parameters
    ----------
    ref : HDURef
        The file and HDU (from :meth:`gcxr.DataStore.runs` or :func:`gcxr.simulate.irf_hdus`).

    Returns
    -------
    xarray.DataArray
        Migration density on (energy_true, migra, offset).
    """
    if ref.hdu_class != "edisp_2d":
        raise DataStoreError(f"{ref}: unsupported energy-dispersion class '{ref.hdu_class}' (supported: edisp_2d)")
    t = read_irf_table(ref)
    e = edges(t, "ETRUE_LO", "ETRUE_HI", "TeV") if "ETRUE_LO" in t else edges(t, "ENERG_LO", "ENERG_HI", "TeV")
    m = edges(t, "MIGRA_LO", "MIGRA_HI")
    th = edges(t, "THETA_LO", "THETA_HI", "deg")
    data = column(t, "MATRIX", (e.size - 1, m.size - 1, th.size - 1))
    coords = {**axis_coords("energy_true", e, True), **axis_coords("migra", m, False),
              **axis_coords("offset", th, False)}
    return xr.DataArray(data, dims=("energy_true", "migra", "offset"), coords=coords,
                        attrs={"units": "", "irf": str(ref)}, name="edisp")


def _edges(da, dim):
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


def eval_edisp_kernel(edisp: xr.DataArray, energy_true: np.ndarray, energy_edges: np.ndarray,
                      offset: np.ndarray) -> np.ndarray:
    """Reco-energy redistribution ``K[t, r, *S]``: probability that true-energy centre t lands in reco bin r.

    The migra density at the IRF's migra centres (linear in offset, clipped at 0,
    zero outside the offset edges) is normalised along migra; its cumulative on
    the migra edges is interpolated linearly at E_reco/E_true of the reco edges
    and differenced.  Entries below 1e-8 are set to 0.

    Everything before the normalisation is linear in the density, so for
    offsets between two IRF nodes (interpolation weights in [0, 1], no clipping
    needed) the cumulative is interpolated directly from the cumulative of the
    table: a gather of a few columns instead of a pass over every migra bin.

    Parameters
    ----------
    edisp : xarray.DataArray
        The table from :func:`read_edisp`.
    energy_true : numpy.ndarray
        True-energy bin centres (TeV).
    energy_edges : numpy.ndarray
        Reco-energy bin edges (TeV).
    offset : numpy.ndarray
        Offsets (deg), any shape S.

    Returns
    -------
    numpy.ndarray
        Probabilities ``K[t, r, *S]``.
    """
    energy_true = np.atleast_1d(np.asarray(energy_true, float))
    energy_edges = np.asarray(energy_edges, float)
    off = np.asarray(offset, float)
    S = off.shape
    off = off.ravel()
    m_edges = _edges(edisp, "migra")
    dm = np.diff(m_edges)
    o_e = _edges(edisp, "offset")
    # (nE, n_migra, n_off_nodes), interpolated in ln E at the true-energy centres
    tab = interp_axis(edisp.values, np.log(edisp["energy_true"].values), np.log(energy_true), axis=0)
    nodes = edisp["offset"].values
    nE, nR = energy_true.size, energy_edges.size - 1
    i, w = lin_weights(nodes, off)
    if nodes.size == 1:
        w = np.zeros_like(w)
    outside = (off < o_e[0]) | (off > o_e[-1])
    inner = (w >= 0) & (w <= 1) & ~outside
    # migra edge positions needed per true energy: (nE, nR + 1)
    mig = np.clip(energy_edges[None, :] / energy_true[:, None], m_edges[0], m_edges[-1])
    j, f = lin_weights(m_edges, mig)
    K = np.zeros((nE, nR, off.size))

    def finish(C_at, C_tot, cols):
        # C_at: (nE, nR+1, P) raw cumulative at the reco edges; C_tot: (nE, 1, P) total
        with np.errstate(divide="ignore", invalid="ignore"):
            Cn = np.where(C_tot > 0, C_at / np.where(C_tot > 0, C_tot, 1.0), 0.0)
        K[:, :, cols] = np.clip(np.diff(Cn, axis=1), 0.0, None)

    if inner.any():
        ctab = np.concatenate([np.zeros_like(tab[:, :1]), np.cumsum(tab * dm[None, :, None], axis=1)], axis=1)
        t_idx = np.arange(nE)[:, None]
        # cumulative at the needed migra positions for every offset node: (nE, nR+1, n_nodes)
        c_nodes = ctab[t_idx, j, :] * (1 - f)[..., None] + ctab[t_idx, j + 1, :] * f[..., None]
        tot_nodes = ctab[:, -1:, :]
        ii, ww = i[inner], w[inner]
        hi = np.minimum(ii + 1, nodes.size - 1)
        C_at = c_nodes[..., ii] * (1 - ww) + c_nodes[..., hi] * ww
        C_tot = tot_nodes[..., ii] * (1 - ww) + tot_nodes[..., hi] * ww
        finish(C_at, C_tot, np.nonzero(inner)[0])
    rest = np.nonzero(~inner & ~outside)[0]
    if rest.size:
        ii, ww = i[rest], w[rest]
        hi = np.minimum(ii + 1, nodes.size - 1)
        dens = np.clip(tab[..., ii] * (1 - ww) + tab[..., hi] * ww, 0.0, None)    # (nE, n_migra, P)
        C = np.concatenate([np.zeros_like(dens[:, :1]), np.cumsum(dens * dm[None, :, None], axis=1)], axis=1)
        t_idx = np.arange(nE)[:, None]
        C_at = C[t_idx, j, :] * (1 - f)[..., None] + C[t_idx, j + 1, :] * f[..., None]
        finish(C_at, C[:, -1:, :], rest)
    K[K < 1e-8] = 0.0
    return K.reshape((nE, nR) + S)
