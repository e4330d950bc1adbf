"""IRF figures of a reduced dataset at a sky position: PSF containment radii and the EDISP matrix.

The numbers come from :func:`gcxr.estimators.psf_containment` and
:func:`gcxr.estimators.edisp_matrix`; this module draws them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ._common import no_obs, plt

__all__ = ["plot_psf_containment", "plot_edisp"]


def plot_psf_containment(ds: xr.Dataset, position=None, fractions: Sequence[float] = (0.68, 0.95), ax=None,
                         **kwargs):
    """PSF containment radius (deg) vs true energy at ``position`` (default: map centre); returns the axis.

    The PSF is interpolated bilinearly on the IRF grid, as the forward folding
    does; energies where the PSF is zero (no exposure) are left out.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset with ``psf``.
    position : tuple of float, optional
        (lon, lat) in the dataset's frame (deg).
    fractions : sequence of float
        Containment fractions.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    **kwargs
        Passed on to matplotlib.

    Returns
    -------
    matplotlib.axes.Axes
        The axis.
    """
    from ..estimators import psf_containment  # on use: import gcxr.plot does not load the estimators
    where = "plot_psf_containment"
    no_obs(ds, where)
    radii = psf_containment(ds, position=position, fractions=fractions)
    lon, lat, frame = radii.attrs["lon"], radii.attrs["lat"], radii.attrs["frame"]
    if not np.isfinite(radii.values).any():
        raise ValueError(f"{where}: the PSF is zero at ({lon:.3f}, {lat:.3f}) deg (no exposure there?); "
                         f"pass another position=")
    e_true = np.asarray(radii["energy_true"].values, float)
    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.2))
    for f, r in zip(radii["fraction"].values, radii.values):
        ax.plot(e_true, r, marker="o", ms=3, label=f"{f:.0%} containment", **kwargs)
    ax.set_xscale("log")
    ax.set_xlabel("True energy (TeV)")
    ax.set_ylabel("Containment radius (deg)")
    ax.set_title(f"PSF at ({lon:.2f}, {lat:.2f}) deg, {frame}", fontsize="medium")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return ax


def _edges(da: xr.DataArray, dim: str) -> np.ndarray:
    return np.append(np.asarray(da[f"{dim}_min"].values, float), float(da[f"{dim}_max"].values[-1]))


def plot_edisp(ds: xr.Dataset, position=None, ax=None, cmap: str = "viridis", add_cbar: bool = True):
    """Energy-dispersion matrix (true x reconstructed energy) at ``position`` (default: map
    centre), from the nearest IRF-grid pixel as the forward folding uses it; returns the axis.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset with ``edisp``.
    position : tuple of float, optional
        (lon, lat) in the dataset's frame (deg).
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    cmap : str
        Colour map.
    add_cbar : bool
        Draw a colour bar.

    Returns
    -------
    matplotlib.axes.Axes
        The axis.
    """
    from ..estimators import edisp_matrix  # on use: import gcxr.plot does not load the estimators
    where = "plot_edisp"
    no_obs(ds, where)
    mat = edisp_matrix(ds, position=position)
    lon, lat, frame = mat.attrs["lon"], mat.attrs["lat"], mat.attrs["frame"]
    if not np.any(mat.values > 0):
        raise ValueError(f"{where}: the energy dispersion is zero at ({lon:.3f}, {lat:.3f}) deg "
                         f"(no exposure there?); pass another position=")
    et, er = _edges(mat, "energy_true"), _edges(mat, "energy")
    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.8))
    m = ax.pcolormesh(et, er, np.ma.masked_where(mat.values.T <= 0, mat.values.T), cmap=cmap, shading="flat")
    lo, hi = max(et[0], er[0]), min(et[-1], er[-1])
    ax.plot([lo, hi], [lo, hi], color="w", lw=0.8, ls="--", alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("True energy (TeV)")
    ax.set_ylabel("Reconstructed energy (TeV)")
    ax.set_title(f"Energy dispersion at ({lon:.2f}, {lat:.2f}) deg, {frame}", fontsize="medium")
    if add_cbar:
        ax.figure.colorbar(m, ax=ax, label="Probability per reconstructed bin")
    return ax
