"""Spectra: model SEDs with 1-sigma bands, several models on one axis, flux points.

Bands come from :func:`gcxr.estimators.spectrum_band`, flux points from
:func:`gcxr.estimators.flux_points`; the model lines are the spectral models'
own ``evaluate``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from ._common import plt, require_vars

__all__ = ["plot_spectrum", "plot_spectra", "plot_flux_points"]

SedType = Literal["dnde", "e2dnde"]
_SED_LABELS = {
    "dnde": ("dN/dE", "cm$^{-2}$ s$^{-1}$ TeV$^{-1}$"),
    "e2dnde": ("E$^2$ dN/dE", "TeV cm$^{-2}$ s$^{-1}$"),
}


def _spectral_of(model):
    """(spectral model, name) of a SkyModel or a spectral model."""
    spec = getattr(model, "spectral_model", None)
    if spec is not None:
        return spec, getattr(model, "name", None)
    if hasattr(model, "evaluate") and hasattr(model, "parameters"):
        return model, None
    raise TypeError(f"expected a SkyModel or a spectral model, got {type(model).__name__}")


def _check_sed(sed_type: str, where: str) -> None:
    if sed_type not in _SED_LABELS:
        raise ValueError(f"{where}: sed_type must be one of {tuple(_SED_LABELS)}, got {sed_type!r}")


def _sed_axes(ax, sed_type):
    name, unit = _SED_LABELS[sed_type]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("Energy (TeV)")
    ax.set_ylabel(f"{name} ({unit})")


def plot_spectrum(model, energy_bounds: tuple[float, float] = (0.1, 100.0), band: xr.Dataset | None = None,
                  sed_type: SedType = "e2dnde", ax=None, label: str | None = None, covariance=None,
                  n_points: int = 100, band_alpha: float = 0.25, **kwargs):
    """A model spectrum (``dnde`` or ``e2dnde`` vs energy in TeV) with an optional 1-sigma band.

    ``band`` is a Dataset on ``energy`` with ``<sed_type>`` and ``<sed_type>_err``
    (the estimators' ``spectrum_band``); without it, ``covariance`` (an array over
    the spectral model's parameters, or a :class:`gcxr.fit.FitResult`) gives a
    band by linear error propagation.  Returns the axis.

    Parameters
    ----------
    model : SpectralModel or SkyModel
        The model.
    energy_bounds : tuple of float
        Energy range (TeV).
    band : xarray.Dataset, optional
        A ``spectrum_band`` result.
    sed_type : {'dnde', 'e2dnde'}
        What to plot.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    label : str, optional
        Legend label.
    covariance : array or FitResult, optional
        Gives a band when ``band`` is not given.
    n_points : int
        Energies drawn.
    band_alpha : float
        Opacity of the band.
    **kwargs
        Passed on to matplotlib.
    """
    where = "plot_spectrum"
    _check_sed(sed_type, where)
    spec, name = _spectral_of(model)
    e_lo, e_hi = (float(v) for v in energy_bounds)
    if not 0 < e_lo < e_hi:
        raise ValueError(f"{where}: energy_bounds must be 0 < min < max (TeV), got {energy_bounds}")
    energies = np.geomspace(e_lo, e_hi, int(n_points))
    y = np.asarray(spec.evaluate(energies), float)
    if sed_type == "e2dnde":
        y = y * energies ** 2
    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.2))
    (line,) = ax.plot(energies, y, label=label if label is not None else name, **kwargs)
    if band is None and covariance is not None:
        from ..estimators import spectrum_band  # on use: import gcxr.plot does not load the estimators
        band = spectrum_band(model, energies, covariance=covariance)
    if band is not None:
        if not isinstance(band, xr.Dataset):
            raise TypeError(f"{where}: band must be an xarray.Dataset on 'energy', got {type(band).__name__}")
        require_vars(band, [sed_type, f"{sed_type}_err", "energy"], f"{where} (band)")
        eb = np.asarray(band["energy"].values, float)
        v = np.asarray(band[sed_type].values, float)
        dv = np.asarray(band[f"{sed_type}_err"].values, float)
        lo = np.where(v - dv > 0, v - dv, np.nan)
        ax.fill_between(eb, lo, v + dv, color=line.get_color(), alpha=band_alpha, lw=0)
    _sed_axes(ax, sed_type)
    if line.get_label() and not line.get_label().startswith("_"):
        ax.legend(fontsize="small")
    return ax


def plot_spectra(models, energy_bounds: tuple[float, float] = (0.1, 100.0), covariances=None, bands=None,
                 sed_type: SedType = "e2dnde", ax=None, **kwargs):
    """Several model spectra on one axis (e.g. stacked vs joint fits); returns the axis.

    ``models`` is a dict {label: model} or a sequence (labelled by model name);
    ``covariances``/``bands`` are dicts by label or sequences in the same order.

    Parameters
    ----------
    models : dict or sequence
        Models by label, or a sequence labelled by model name.
    energy_bounds : tuple of float
        Energy range (TeV).
    covariances, bands : dict or sequence, optional
        Per model, as for :func:`plot_spectrum`.
    sed_type : {'dnde', 'e2dnde'}
        What to plot.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    **kwargs
        Passed on to matplotlib.
    """
    if isinstance(models, dict):
        items = list(models.items())
    else:
        items = [(getattr(m, "name", None) or f"model {i}", m) for i, m in enumerate(models)]
    if not items:
        raise ValueError("plot_spectra: no models given")

    def pick(coll, i, key):
        if coll is None:
            return None
        if isinstance(coll, dict):
            return coll.get(key)
        if len(coll) != len(items):
            raise ValueError(f"plot_spectra: got {len(coll)} covariances/bands for {len(items)} models")
        return coll[i]

    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.2))
    for i, (key, m) in enumerate(items):
        plot_spectrum(m, energy_bounds, band=pick(bands, i, key), sed_type=sed_type, ax=ax, label=str(key),
                      covariance=pick(covariances, i, key), color=f"C{i}", **kwargs)
    return ax


def _fp_var(fp: xr.Dataset, name: str):
    if name in fp.variables:
        return np.asarray(fp[name].values, float)
    return None


def plot_flux_points(fp: xr.Dataset, ax=None, sed_type: SedType = "e2dnde", label: str | None = "flux points",
                     color: str | None = None, ul_arrow: float = 0.4, **kwargs):
    """Flux points (the estimators' ``flux_points`` Dataset on ``energy``): markers with error
    bars; points with ``is_ul`` as downward arrows at ``<sed_type>_ul``.  Returns the axis.

    x values are ``e_ref`` (else the ``energy`` coordinate); horizontal bars come
    from ``e_min``/``e_max`` or ``energy_bounds`` when present.

    Parameters
    ----------
    fp : xarray.Dataset
        Flux points from :func:`gcxr.estimators.flux_points`.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    sed_type : {'dnde', 'e2dnde'}
        What to plot.
    label : str, optional
        Legend label.
    color : str, optional
        Colour.
    ul_arrow : float
        Arrow length of upper limits (fraction of a decade).
    **kwargs
        Passed on to matplotlib.
    """
    where = "plot_flux_points"
    _check_sed(sed_type, where)
    if not isinstance(fp, xr.Dataset):
        raise TypeError(f"{where}: expected an xarray.Dataset, got {type(fp).__name__}")
    require_vars(fp, [sed_type, f"{sed_type}_err"], where)
    x = _fp_var(fp, "e_ref")
    if x is None:
        require_vars(fp, ["energy"], where)
        x = np.asarray(fp["energy"].values, float)
    y, dy = _fp_var(fp, sed_type), _fp_var(fp, f"{sed_type}_err")
    lo, hi = _fp_var(fp, "e_min"), _fp_var(fp, "e_max")
    if (lo is None or hi is None) and "energy_bounds" in fp.variables:
        b = np.asarray(fp["energy_bounds"].values, float)
        lo, hi = b[:, 0], b[:, 1]
    xerr = None if lo is None or hi is None else np.vstack([x - lo, hi - x])
    is_ul = np.asarray(fp["is_ul"].values, bool) if "is_ul" in fp.variables else np.zeros(x.shape, bool)
    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.2))
    det = ~is_ul & np.isfinite(y)
    kwargs.setdefault("fmt", "o")
    kwargs.setdefault("ms", 4)
    eb = ax.errorbar(x[det], y[det], yerr=dy[det], xerr=None if xerr is None else xerr[:, det], label=label,
                     color=color, **kwargs)
    color = eb[0].get_color()
    if is_ul.any():
        ul = _fp_var(fp, f"{sed_type}_ul")
        if ul is None:
            raise KeyError(f"{where}: is_ul marks {int(is_ul.sum())} upper limits but there is no "
                           f"{sed_type + '_ul'!r}; variables: {sorted(map(str, fp.variables))}")
        u = is_ul & np.isfinite(ul)
        ax.errorbar(x[u], ul[u], yerr=ul_arrow * ul[u], xerr=None if xerr is None else xerr[:, u], uplims=True,
                    fmt="none", color=color, label=None if det.any() else label)
    _sed_axes(ax, sed_type)
    if label:
        ax.legend(fontsize="small")
    return ax


