"""Background rate (``bkg_3d``): R(energy, fov_lon, fov_lat) in s^-1 TeV^-1 sr^-1.

The rate is per unit *ontime* (GADF).  Interpolation is trilinear in
(ln E, fov_lon, fov_lat) of ln R; zero table entries are floored at the
table dtype's smallest normal number before the log.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..datastore import DataStoreError, HDURef, file_cache
from ._interp import interp_axis, interp_scattered
from ._table import axis_coords, column, edges, read_irf_table

__all__ = ["read_bkg", "eval_bkg_rate", "BkgEvaluator", "integrate_log_rate"]



def _fill_missing_energy(data: np.ndarray, tiny: float) -> np.ndarray:
    """Fill interior zeros along energy by log-linear interpolation in bin index (no extrapolation).

    For every (fov_lon, fov_lat) column, a zero or non-finite entry lying between two valid
    entries gets exp of the straight line through their logs (as ``np.interp`` computes it);
    entries before the first or after the last valid one stay as they are.
    """
    mask = ~np.isfinite(data) | (data == 0)
    if not mask.any():
        return data
    n = data.shape[0]
    idx = np.arange(n).reshape((n,) + (1,) * (data.ndim - 1))
    prev = np.maximum.accumulate(np.where(~mask, idx, -1), axis=0)             # last valid index <= i
    nxt = np.minimum.accumulate(np.where(~mask, idx, n)[::-1], axis=0)[::-1]    # first valid index >= i
    fill = mask & (prev >= 0) & (nxt < n)
    if not fill.any():
        return data
    data = data.copy()
    cols = np.nonzero(fill)
    p, q = prev[cols], nxt[cols]
    rest = cols[1:]
    fp = np.log(np.clip(data[(p,) + rest], tiny, None))
    fq = np.log(np.clip(data[(q,) + rest], tiny, None))
    slope = (fq - fp) / (q - p).astype(float)
    data[cols] = np.exp(slope * (cols[0] - p).astype(float) + fp)
    return data


@file_cache(maxsize=64)
def read_bkg(ref: HDURef) -> xr.DataArray:
    """Read a ``bkg_3d`` HDU -> DataArray (energy, fov_lon, fov_lat) in s^-1 TeV^-1 sr^-1.

    The array keeps the on-disk (numpy) order with axis 1 labelled fov_lon
    (DETX edges) and axis 2 fov_lat (DETY edges), as the reference does.

    Parameters
    ----------
    ref : HDURef
        The file and HDU (from :meth:`gcxr.DataStore.runs` or :func:`gcxr.simulate.irf_hdus`).

    Returns
    -------
    xarray.DataArray
        Background rate on (energy, fov_lon, fov_lat).
    """
    if ref.hdu_class != "bkg_3d":
        raise DataStoreError(f"{ref}: unsupported background class '{ref.hdu_class}' (supported: bkg_3d)")
    t = read_irf_table(ref)
    e = edges(t, "ENERG_LO", "ENERG_HI", "TeV")
    x = edges(t, "DETX_LO", "DETX_HI", "deg")
    y = edges(t, "DETY_LO", "DETY_HI", "deg")
    col = "BKG" if "BKG" in t else "BGD"
    raw_dtype = t.raw(col).dtype
    data = column(t, col, (e.size - 1, x.size - 1, y.size - 1), "s-1 TeV-1 sr-1",
                  assume="s-1 MeV-1 sr-1", transpose=False)
    raw = t.raw(col).astype(float)
    scale = float(data.max() / raw.max()) if raw.max() > 0 else 1.0      # unit conversion factor
    # zero entries are floored at the *file's* dtype tiny, in the file's unit
    tiny = float(np.finfo(raw_dtype if raw_dtype.kind == "f" else np.float64).tiny) * scale
    data = _fill_missing_energy(data, tiny)
    align = str(t.header.get("FOVALIGN", "RADEC")).strip().upper()
    if align != "RADEC":
        raise DataStoreError(f"{ref}: FOVALIGN='{align}' is not supported (supported: RADEC)")
    coords = {**axis_coords("energy", e, True), **axis_coords("fov_lon", x, False),
              **axis_coords("fov_lat", y, False)}
    return xr.DataArray(data, dims=("energy", "fov_lon", "fov_lat"), coords=coords,
                        attrs={"units": "s-1 TeV-1 sr-1", "tiny": tiny, "irf": str(ref)}, name="bkg")


def _edges(da, dim):
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


class BkgEvaluator:
    """:func:`eval_bkg_rate` at fixed energies, for many FoV position arrays.

    The log of the table, its interpolation in energy and the axis lookups are done once.
    """

    def __init__(self, bkg: xr.DataArray, energy: np.ndarray):
        self.energy = np.atleast_1d(np.asarray(energy, float))
        logtab = np.log(np.clip(bkg.values, bkg.attrs["tiny"], None))
        self.table = interp_axis(logtab, np.log(bkg["energy"].values), np.log(self.energy), axis=0)
        self.nodes = [bkg["fov_lon"].values, bkg["fov_lat"].values]
        e_e, x_e, y_e = _edges(bkg, "energy"), _edges(bkg, "fov_lon"), _edges(bkg, "fov_lat")
        self.e_bad = (self.energy < e_e[0]) | (self.energy > e_e[-1])
        self.x_range, self.y_range = (x_e[0], x_e[-1]), (y_e[0], y_e[-1])

    def _outside(self, fov_lon, fov_lat):
        return (fov_lon < self.x_range[0]) | (fov_lon > self.x_range[1]) | \
            (fov_lat < self.y_range[0]) | (fov_lat > self.y_range[1])

    def __call__(self, fov_lon: np.ndarray, fov_lat: np.ndarray, log: bool = False) -> np.ndarray:
        """Rate (or its log) at FoV positions (shape S) -> ``(nE, *S)``, as :func:`eval_bkg_rate`."""
        lval = interp_scattered(self.table, self.nodes, [fov_lon, fov_lat])
        out = self._outside(fov_lon, fov_lat)
        if log:
            lval[self.e_bad] = -np.inf
            lval[:, out] = -np.inf
            return lval
        val = np.exp(lval)
        val[self.e_bad] = 0.0
        val[:, out] = 0.0
        val[~np.isfinite(val)] = 0.0
        return val

    def integrate(self, fov_lon: np.ndarray, fov_lat: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """Rate integrated over each bin between consecutive energies (power-law segments), times
        ``scale`` (broadcast to S) -> ``(nE - 1, *S)``.

        Parameters
        ----------
        fov_lon, fov_lat : numpy.ndarray
            Field-of-view positions (deg).
        scale : numpy.ndarray, optional
            Factor applied to the integrals.

        Returns
        -------
        numpy.ndarray
            Integrated rate per energy bin and position.
        """
        res = integrate_log_rate(self(fov_lon, fov_lat, log=True), self.energy)
        if scale is not None:
            res *= scale
        return res


def eval_bkg_rate(bkg: xr.DataArray, energy: np.ndarray, fov_lon: np.ndarray, fov_lat: np.ndarray,
                  log: bool = False) -> np.ndarray:
    """Rate (s^-1 TeV^-1 sr^-1) at energies (1-D) x FoV positions (shape S) -> ``(nE, *S)``.

    With ``log=True`` the natural log of the rate is returned (-inf where the rate is 0).

    Parameters
    ----------
    bkg : xarray.DataArray
        The table from :func:`read_bkg`.
    energy : numpy.ndarray
        Energies (1-D, TeV).
    fov_lon, fov_lat : numpy.ndarray
        Field-of-view positions (deg), same shape S.
    log : bool
        Return the natural log of the rate.

    Returns
    -------
    numpy.ndarray
        Rate (or its log), shape ``(nE, *S)``.
    """
    return BkgEvaluator(bkg, energy)(fov_lon, fov_lat, log=log)


def integrate_log_rate(log_rate: np.ndarray, energy_edges: np.ndarray) -> np.ndarray:
    """Per-bin power-law-segment integral (axis 0) of a rate given by its log at the bin edges.

    Same result as :func:`gcxr._maths.trapz_loglog` on ``exp(log_rate)``, without the log of
    the ratio: the index of each segment is (ln R0 - ln R1) / ln(e1 / e0).

    Parameters
    ----------
    log_rate : numpy.ndarray
        ln of the rate at the bin edges (axis 0).
    energy_edges : numpy.ndarray
        The bin edges (TeV).

    Returns
    -------
    numpy.ndarray
        Per-bin integrals (one fewer along axis 0).
    """
    e = np.asarray(energy_edges, float).reshape((-1,) + (1,) * (log_rate.ndim - 1))
    l0, l1 = log_rate[:-1], log_rate[1:]
    le = np.log(e[1:] / e[:-1])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        g = l0 - l1
        np.maximum(g, _LOG_TINY, out=g)                              # ln(R0/R1), floored as in _maths.trapz_loglog
        g /= le
        np.subtract(1.0, g, out=g)                                   # 1 - index
        y0x0 = np.exp(l0)
        y0x0 *= e[:-1]
        res = g * le
        np.expm1(res, out=res)
        res *= y0x0 / g
        iso = np.abs(g) <= 1e-8                                      # np.isclose(g, 0.0)
        if iso.any():
            res[iso] = (y0x0 * le)[iso]
    res[~np.isfinite(res)] = 0.0
    return res


_LOG_TINY = float(np.log(np.finfo(float).tiny))
