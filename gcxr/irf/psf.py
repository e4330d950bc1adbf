"""Point-spread function: ``psf_3gauss`` (parametric) and ``psf_table``.

Both are evaluated to dP/dOmega in sr^-1 on a radial grid and normalised
there, so that sum_r P(r) 2 pi r dr = 1 (r in radians).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from ..datastore import DataStoreError, HDURef, file_cache
from ._interp import interp_axis, interp_scattered
from ._table import axis_coords, column, edges, read_irf_table

__all__ = ["read_psf", "eval_psf_map", "RAD_EDGES", "DEG2_PER_SR"]

RAD_EDGES = np.linspace(0.0, 0.66, 67)       # deg: the PSF-map rad axis of the reference workflow
DEG2_PER_SR = (180.0 / np.pi) ** 2
_GAUSS = ("SCALE", "SIGMA_1", "AMPL_2", "SIGMA_2", "AMPL_3", "SIGMA_3")



@file_cache(maxsize=64)
def read_psf(ref: HDURef) -> xr.DataArray:
    """Read a PSF HDU.

    ``psf_3gauss`` -> DataArray (param, energy_true, offset) with params SCALE, SIGMA_1..3 (deg),
    AMPL_2/3; zero widths are replaced by 1 deg as in the reference.
    ``psf_table``  -> DataArray (energy_true, offset, rad) in sr^-1.

    Parameters
    ----------
    ref : HDURef
        The file and HDU (from :meth:`gcxr.DataStore.runs` or :func:`gcxr.simulate.irf_hdus`).

    Returns
    -------
    xarray.DataArray
        The PSF parameters or table (see above).
    """
    t = read_irf_table(ref)
    e = edges(t, "ENERG_LO", "ENERG_HI", "TeV")
    th = edges(t, "THETA_LO", "THETA_HI", "deg")
    shape = (e.size - 1, th.size - 1)
    if ref.hdu_class == "psf_3gauss":
        pars = []
        raw = {p: column(t, p, shape, "deg" if p.startswith("SIGMA") else None) for p in _GAUSS}
        if not any(np.any(v > 0) for p, v in raw.items() if p.startswith("SIGMA")):
            raise DataStoreError(f"{ref}: every SIGMA_1, SIGMA_2 and SIGMA_3 value is 0: the PSF has no width "
                                 f"(a zero width is read as 1 deg only where another component has one)")
        for p in _GAUSS:
            v = raw[p].copy()
            if p.startswith("SIGMA"):
                v[v == 0] = 1.0
            pars.append(v.astype(np.float32).astype(float))
        coords = {"param": list(_GAUSS), **axis_coords("energy_true", e, True), **axis_coords("offset", th, False)}
        return xr.DataArray(np.stack(pars), dims=("param", "energy_true", "offset"), coords=coords,
                            attrs={"units": "", "hdu_class": "psf_3gauss", "irf": str(ref)}, name="psf")
    if ref.hdu_class == "psf_table":
        r = edges(t, "RAD_LO", "RAD_HI", "deg")
        data = column(t, "RPSF", (e.size - 1, th.size - 1, r.size - 1), "sr-1")
        coords = {**axis_coords("energy_true", e, True), **axis_coords("offset", th, False),
                  **axis_coords("rad", r, False)}
        return xr.DataArray(data, dims=("energy_true", "offset", "rad"), coords=coords,
                            attrs={"units": "sr-1", "hdu_class": "psf_table", "irf": str(ref)}, name="psf")
    raise DataStoreError(f"{ref}: unsupported PSF class '{ref.hdu_class}' (supported: psf_3gauss, psf_table)")


def _edges(da, dim):
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


def eval_psf_map(psf: xr.DataArray, energy_true: np.ndarray, offset: np.ndarray,
                 rad_edges: np.ndarray = RAD_EDGES) -> np.ndarray:
    """Normalised PSF (sr^-1), shape ``(nE, n_rad, *offset.shape)``, at rad-bin centres.

    Parameters
    ----------
    psf : xarray.DataArray
        The table from :func:`read_psf`.
    energy_true : numpy.ndarray
        True energies (TeV).
    offset : numpy.ndarray
        Offsets (deg), any shape.
    rad_edges : numpy.ndarray
        Edges of the radial bins (deg).

    Returns
    -------
    numpy.ndarray
        PSF density (sr-1), shape ``(nE, n_rad, *offset.shape)``.
    """
    energy_true = np.atleast_1d(np.asarray(energy_true, float))
    off = np.asarray(offset, float)
    rc = 0.5 * (rad_edges[:-1] + rad_edges[1:])
    dr = np.diff(rad_edges)
    ln_nodes = np.log(psf["energy_true"].values)
    ring = 2 * np.pi * rc * dr * (np.pi / 180.0) ** 2                               # sr per rad bin
    if psf.attrs["hdu_class"] == "psf_3gauss":
        tab = interp_axis(psf.values, ln_nodes, np.log(energy_true), axis=1)       # (6, nE, n_off)
        p = np.clip(interp_scattered(tab, [psf["offset"].values], [off]), 0.0, None)  # (6, nE, *S)
        r2 = (rc ** 2).reshape((1, -1) + (1,) * off.ndim)                         # (1, n_rad, 1...)
        scale, s1, a2, s2, a3, s3 = p                                               # each (nE, *S)
        sig = [s1, s2, s3]
        amp = [np.ones_like(scale), a2, a3]
        norms = [2.0 * scale * a * s ** 2 for a, s in zip(amp, sig)]
        tot = norms[0] + norms[1] + norms[2]
        cs, ks = [], []
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for n_i, si in zip(norms, sig):       # term = c exp(k r^2), c and k per (energy, pixel)
                wi = np.where(tot > 0, n_i / np.where(tot > 0, tot, 1.0), 0.0)
                c = wi / (2 * np.pi * si ** 2) * DEG2_PER_SR                       # deg^-2 -> sr^-1
                k = -0.5 / si ** 2
                bad = ~(np.isfinite(c) & np.isfinite(k))                            # zero width or weight
                c[bad], k[bad] = 0.0, 0.0
                cs.append(c.reshape(c.shape[0], 1, -1))
                ks.append(k.reshape(k.shape[0], 1, -1))
        r2 = r2.reshape(1, -1, 1)
        out = np.empty((energy_true.size, rc.size, off.size))
        term = np.empty((rc.size, off.size))
        for t in range(energy_true.size):       # one energy at a time: the temporaries stay in cache
            o = out[t]
            for g in range(3):
                np.multiply(r2[0], ks[g][t], out=term)
                np.exp(term, out=term)
                term *= cs[g][t]
                if g == 0:
                    o[...] = term
                else:
                    o += term
        out = out.reshape((energy_true.size, rc.size) + off.shape)
    else:
        tab = interp_axis(psf.values, ln_nodes, np.log(energy_true), axis=0)       # (nE, n_off, n_rad)
        tab = interp_axis(tab, psf["rad"].values, rc, axis=2)                       # (nE, n_off, n_rc)
        tab = np.moveaxis(tab, 2, 1)                                                # (nE, n_rc, n_off)
        e_e, o_e, r_e = _edges(psf, "energy_true"), _edges(psf, "offset"), _edges(psf, "rad")
        out = np.clip(interp_scattered(tab, [psf["offset"].values], [off]), 0.0, None)   # (nE, n_rc, *S)
        out[(energy_true < e_e[0]) | (energy_true > e_e[-1])] = 0.0
        out[:, (rc < r_e[0]) | (rc > r_e[-1])] = 0.0
        out[..., (off < o_e[0]) | (off > o_e[-1])] = 0.0
    # normalise: sum_r P 2 pi r dr = 1 with r, dr in radians
    flat = out.reshape(out.shape[:2] + (-1,))
    norm = np.matmul(ring, flat)[:, None]                                          # (nE, 1, P)
    pos = norm > 0
    np.divide(flat, norm, out=flat, where=pos)
    np.copyto(flat, 0.0, where=~pos)
    return out
