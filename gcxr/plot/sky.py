"""Sky images: any (lat, lon) map, one panel per band, counts/prediction/excess, residuals.

Images are drawn with ``imshow(origin="lower")`` on astropy WCSAxes built from
the DataArray's own ``lon``/``lat`` coordinates, in sky order (longitude grows
to the left).  Smoothing (:func:`gcxr.estimators.smooth_map`), excess and
residuals (:func:`gcxr.estimators.residual_maps`) come from the estimators.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import xarray as xr

from ._common import (SKY_DIMS, as_dataarray, energy_range, frame_of, geom_of, image2d, imshow, label,
                      label_sky_axes, no_obs, plt, predicted, require_dims, require_vars, sky_order, wcs_axes)

__all__ = ["plot_image", "plot_residual_grid", "plot_counts_background_excess", "plot_residuals",
           "plot_significance_distribution", "masked"]

Stretch = Literal["linear", "sqrt", "log", "asinh", "power", "sinh"]
Method = Literal["diff", "diff/model", "diff/sqrt(model)"]


def masked(ds: xr.Dataset, var: str, mask: str = "mask_safe", fill: float = 0.0) -> xr.DataArray:
    """``ds[var]`` with bins outside ``ds[mask]`` set to ``fill`` (when the mask shares its dims).

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset.
    var : str
        The variable.
    mask : str
        The mask variable.
    fill : float
        The value outside the mask.

    Returns
    -------
    xarray.DataArray
        The masked variable.
    """
    require_vars(ds, [var], "masked")
    da = ds[var]
    if mask in ds and set(ds[mask].dims) <= set(da.dims):
        da = da.where(ds[mask].astype(bool), fill)
        da.attrs = dict(ds[var].attrs)
    da.name = var
    if ds.attrs.get("frame") and "frame" not in da.attrs:
        da.attrs["frame"] = ds.attrs["frame"]
    return da


def _smoothed(da: xr.DataArray, smooth: float | None) -> np.ndarray:
    """The values of a sky-ordered map, smoothed when ``smooth`` (deg) is given."""
    if smooth:
        from ..estimators import smooth_map  # on use: import gcxr.plot does not load the estimators
        da = smooth_map(da, float(smooth))
    return np.asarray(da.values, float)


def plot_image(da: xr.DataArray, ax=None, smooth: float | None = None, cmap: str = "viridis",
               stretch: Stretch = "linear", add_cbar: bool = True, vmin: float | None = None,
               vmax: float | None = None, symmetric: bool = False, frame: str | None = None,
               title: str | None = None, cbar_label: str | None = None, **imshow_kwargs):
    """Draw a (lat, lon) image on WCSAxes; returns the axis.

    ``energy``/``energy_true``/``band`` dims are summed first (meaningful for
    counts-like maps; pick a band of a significance map with ``.isel`` instead).
    ``smooth`` is a Gaussian sigma in deg; ``stretch`` one of linear, sqrt, log,
    asinh, power, sinh (astropy.visualization); ``symmetric`` centres the colour
    scale on 0 (residual and significance maps).  ``frame`` defaults to
    ``da.attrs['frame']``, else the ``lon`` coordinate's long_name.

    Parameters
    ----------
    da : xarray.DataArray
        A map on (lat, lon), optionally with an energy-like dim (summed).
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    smooth : float, optional
        Gaussian smoothing sigma (deg).
    cmap : str
        Colour map.
    stretch : {'linear', 'sqrt', 'log', 'asinh', 'power', 'sinh'}
        Colour stretch.
    add_cbar : bool
        Draw a colour bar.
    vmin, vmax : float, optional
        Colour limits.
    symmetric : bool
        Limits symmetric about 0.
    frame : str, optional
        The sky frame (default: the map's).
    title, cbar_label : str, optional
        Labels.
    **imshow_kwargs
        Passed on to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
        The WCSAxes.

    Examples
    --------
    >>> plot_image(ds['counts'], smooth=0.05, stretch='sqrt')     # doctest: +SKIP
    """
    stretches = Stretch.__args__
    if stretch not in stretches:
        raise ValueError(f"plot_image: stretch must be one of {stretches}, got {stretch!r}")
    img_da = image2d(da, "plot_image")
    geom = geom_of(img_da, frame_of(da, frame))
    img = _smoothed(img_da, smooth)
    ax = wcs_axes(geom, ax)
    im = imshow(ax, img, cmap, stretch, vmin, vmax, symmetric, **imshow_kwargs)
    label_sky_axes(ax, geom)
    if add_cbar:
        text = cbar_label if cbar_label is not None else label(da)
        if smooth and cbar_label is None:
            text = f"{text}, smoothed {smooth:g} deg"
        ax.figure.colorbar(im, ax=ax, label=text, shrink=0.85)
    if title is not None:
        ax.set_title(title)
    return ax


def _band_titles(da: xr.DataArray, dim: str) -> list[str]:
    """Panel titles from bin edges when the input carries them, else the coordinate value."""
    n = da.sizes[dim]
    lo = hi = None
    for a, b in ((f"{dim}_min", f"{dim}_max"), ("energy_min", "energy_max"), ("e_min", "e_max")):
        if a in da.coords and b in da.coords and da[a].dims == (dim,):
            lo, hi = np.asarray(da[a].values, float), np.asarray(da[b].values, float)
            break
    if lo is None and f"{dim}_bounds" in da.coords and da[f"{dim}_bounds"].ndim == 2:
        bnd = da[f"{dim}_bounds"].transpose(dim, ...).values
        lo, hi = bnd[:, 0].astype(float), bnd[:, 1].astype(float)
    if lo is not None:
        return [f"{lo[i]:.3g} - {hi[i]:.3g} TeV" for i in range(n)]
    if dim in da.coords and np.issubdtype(da[dim].dtype, np.number):
        unit = da[dim].attrs.get("units", "TeV" if dim.startswith("energy") else "")
        return [f"{dim} = {float(v):.3g} {unit}".rstrip() for v in da[dim].values]
    return [f"{dim} {i}" for i in range(n)]


def plot_residual_grid(da: xr.DataArray, dim: str | None = None, ncols: int = 3, smooth: float | None = None,
                       cmap: str = "RdBu_r", vmax: float | None = None, frame: str | None = None,
                       panel_size: float = 3.2, cbar_label: str | None = None):
    """One panel per band (or energy) of a residual or significance cube; returns the list of axes.

    ``dim`` defaults to the one of ``band``/``energy``/``energy_true`` present.
    The colour scale is shared and symmetric about 0 (``vmax`` defaults to the
    largest absolute finite value).  Panels are titled with the band's energy
    range when the input carries ``<dim>_min``/``<dim>_max`` (or ``energy_min``/
    ``energy_max``, ``e_min``/``e_max``) coordinates or ``<dim>_bounds``.

    Parameters
    ----------
    da : xarray.DataArray
        A residual or significance cube.
    dim : str, optional
        The band dim.
    ncols : int
        Panels per row.
    smooth : float, optional
        Gaussian smoothing sigma (deg).
    cmap : str
        Colour map.
    vmax : float, optional
        Colour limit (symmetric).
    frame : str, optional
        The sky frame.
    panel_size : float
        Panel size (inches).
    cbar_label : str, optional
        Colour bar label.

    Returns
    -------
    list of matplotlib.axes.Axes
        One per panel.
    """
    where = "plot_residual_grid"
    da = as_dataarray(da, where)
    require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    if dim is None:
        cands = [d for d in da.dims if d not in SKY_DIMS]
        if len(cands) != 1:
            raise ValueError(f"{where}: expected one dim besides (lat, lon) to make panels of, got "
                             f"{cands} in {tuple(map(str, da.dims))}; pass dim=")
        dim = str(cands[0])
    require_dims(da, [dim], where, f"DataArray {da.name!r}")
    extra = [d for d in da.dims if d not in SKY_DIMS and d != dim]
    if extra:
        raise ValueError(f"{where}: dims {extra} besides {dim!r} and (lat, lon); select or reduce them first")
    cube = sky_order(da.transpose(dim, "lat", "lon"))
    geom = geom_of(cube, frame_of(da, frame))
    n = cube.sizes[dim]
    if n < 1:
        raise ValueError(f"{where}: dim {dim!r} is empty")
    ncols = max(1, min(int(ncols), n))
    nrows = int(np.ceil(n / ncols))
    imgs = _smoothed(cube, smooth)
    if vmax is None:
        finite = imgs[np.isfinite(imgs)]
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
        vmax = vmax or 1.0
    titles = _band_titles(da, dim)
    aspect = geom.ny / geom.nx
    fig = plt().figure(figsize=(panel_size * ncols + 1.2, panel_size * aspect * nrows + 0.8 * nrows),
                       layout="constrained")
    axes, im = [], None
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection=geom.wcs)
        im = imshow(ax, imgs[i], cmap, "linear", -vmax, vmax, False)
        label_sky_axes(ax, geom)
        row, col = divmod(i, ncols)
        if row < nrows - 1 and i + ncols < n:
            ax.coords[0].set_ticklabel_visible(False)
            ax.coords[0].set_axislabel("")
        if col > 0:
            ax.coords[1].set_ticklabel_visible(False)
            ax.coords[1].set_axislabel("")
        ax.set_title(titles[i], fontsize="medium")
        axes.append(ax)
    text = cbar_label if cbar_label is not None else label(da)
    if smooth and cbar_label is None:
        text = f"{text}, smoothed {smooth:g} deg"
    fig.colorbar(im, ax=axes, label=text, shrink=0.9)
    return axes


def plot_counts_background_excess(ds: xr.Dataset, npred=None, smooth: float | None = None,
                                  cmap: str = "viridis", figsize=(15.0, 4.2)):
    """Counts, prediction (``npred`` if given, else background) and excess, summed over energy
    inside ``mask_safe``; returns the three axes.

    The excess is :func:`gcxr.estimators.residual_maps` (``diff``) over the
    whole energy range: blank where no energy bin of a pixel is safe.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    npred : xarray.DataArray, optional
        Predicted counts (default: the background).
    smooth : float, optional
        Gaussian smoothing sigma (deg).
    cmap : str
        Colour map.
    figsize : tuple
        Figure size (inches).

    Returns
    -------
    list of matplotlib.axes.Axes
        The three panels.
    """
    from ..estimators import residual_maps  # on use: import gcxr.plot does not load the estimators
    where = "plot_counts_background_excess"
    require_vars(ds, ["counts"], where)
    no_obs(ds, where)
    pred = predicted(ds, npred, where)
    frame = frame_of(ds)
    counts = masked(ds, "counts")
    pred_m = pred.where(ds["mask_safe"].astype(bool), 0.0) if "mask_safe" in ds else pred
    excess = residual_maps(ds, pred, "diff", energy_edges=energy_range(ds)).isel(band=0, drop=True)
    counts.attrs = {"long_name": "counts", "frame": frame}
    pred_m.attrs = {"long_name": "npred" if npred is not None else "background", "frame": frame}
    excess.attrs = {"long_name": "excess counts", "frame": frame}
    geom = geom_of(image2d(counts, where), frame)
    fig = plt().figure(figsize=figsize, layout="constrained")
    axes = []
    for i, (da, cm, sym) in enumerate(((counts, cmap, False), (pred_m, cmap, False), (excess, "RdBu_r", True))):
        ax = fig.add_subplot(1, 3, i + 1, projection=geom.wcs)
        plot_image(da, ax=ax, smooth=smooth, cmap=cm, symmetric=sym, frame=frame, title=da.attrs["long_name"],
                   cbar_label=da.attrs["long_name"] + (f" (smoothed {smooth:g} deg)" if smooth else ""))
        if i > 0:
            ax.coords[1].set_axislabel("")
        axes.append(ax)
    return axes


def plot_residuals(ds: xr.Dataset, npred=None, method: Method = "diff/sqrt(model)", smooth: float = 0.1, ax=None,
                   **kwargs):
    """Spatial residuals summed over energy inside ``mask_safe``, as gammapy's
    ``plot_residuals_spatial``: :func:`gcxr.estimators.residual_maps` over the
    whole energy range, counts and prediction smoothed with a Gaussian of
    ``smooth`` deg (zero outside the grid), then ``diff`` = counts - npred,
    ``diff/model`` = (counts - npred) / npred or ``diff/sqrt(model)`` =
    (counts - npred) / sqrt(npred).  ``npred`` defaults to the background.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    npred : xarray.DataArray, optional
        Predicted counts.
    method : {'diff', 'diff/model', 'diff/sqrt(model)'}
        The residual.
    smooth : float
        Gaussian smoothing sigma (deg); 0 or None: no smoothing.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    **kwargs
        Passed on to :func:`plot_image`.

    Returns
    -------
    matplotlib.axes.Axes
        The axis.
    """
    from ..estimators import RESIDUAL_METHODS, residual_maps  # on use: import gcxr.plot does not load the estimators
    where = "plot_residuals"
    if method not in RESIDUAL_METHODS:
        raise ValueError(f"{where}: method must be one of {RESIDUAL_METHODS}, got {method!r}")
    require_vars(ds, ["counts"], where)
    no_obs(ds, where)
    pred = predicted(ds, npred, where)
    frame = frame_of(ds)
    res = residual_maps(ds, pred, method, smooth_radius=smooth or None, kernel="gauss",
                        energy_edges=energy_range(ds)).isel(band=0, drop=True)
    text = {"diff": "counts - npred", "diff/model": "(counts - npred) / npred",
            "diff/sqrt(model)": "(counts - npred) / sqrt(npred)"}[method]
    if smooth:
        text += f", smoothed {smooth:g} deg"
    res = res.assign_attrs(long_name=text, frame=frame)
    kwargs.setdefault("cmap", "RdBu_r")
    kwargs.setdefault("symmetric", True)
    return plot_image(res, ax=ax, frame=frame, cbar_label=text, **kwargs)


def plot_significance_distribution(sqrt_ts, ax=None, bins: int | np.ndarray = 50, log: bool = True,
                                   label: str = "data", **hist_kwargs):
    """Histogram (density) of the finite values of a significance map, a normal fitted to them
    (mean and width in the legend) and the standard normal for reference; returns the axis.
    The fitted ``(mu, sigma)`` are also on ``ax.gcxr_normal_fit``.

    Parameters
    ----------
    sqrt_ts : xarray.DataArray or numpy.ndarray
        A significance map.
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    bins : int or numpy.ndarray
        Histogram bins.
    log : bool
        Logarithmic y axis.
    label : str
        Legend label of the data.
    **hist_kwargs
        Passed on to ``hist``.

    Returns
    -------
    matplotlib.axes.Axes
        The axis.
    """
    from scipy.stats import norm  # deferred: heavy import
    values = np.asarray(sqrt_ts.values if isinstance(sqrt_ts, xr.DataArray) else sqrt_ts, float).ravel()
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError(f"plot_significance_distribution: need at least 2 finite values, got {values.size}")
    mu, sigma = norm.fit(values)
    if ax is None:
        _, ax = plt().subplots(figsize=(6.0, 4.2))
    hist_kwargs.setdefault("histtype", "stepfilled")
    hist_kwargs.setdefault("alpha", 0.5)
    dens, _, _ = ax.hist(values, bins=bins, density=True, label=label, **hist_kwargs)
    lo, hi = min(values.min(), -5.0), max(values.max(), 5.0)
    x = np.linspace(lo, hi, 400)
    ax.plot(x, norm.pdf(x, mu, sigma), color="C3", lw=1.5,
            label=rf"fit: $\mu$ = {mu:.2f}, $\sigma$ = {sigma:.2f}")
    ax.plot(x, norm.pdf(x), color="k", lw=1.0, ls="--", label=r"$\mu$ = 0, $\sigma$ = 1")
    if log:
        ax.set_yscale("log")
        top = max(float(np.max(dens)), float(norm.pdf(mu, mu, sigma)), norm.pdf(0.0))
        ax.set_ylim(max(0.5 / values.size, 1e-6), 3 * top)
    ax.set_xlabel("Significance")
    ax.set_ylabel("Density")
    ax.legend(fontsize="small")
    ax.gcxr_normal_fit = (float(mu), float(sigma))
    return ax
