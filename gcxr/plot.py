"""Figures of datasets, IRFs, residuals and spectra: matplotlib (WCSAxes) and hvplot.

Every function takes xarray objects (a dataset, a (lat, lon) image, the
estimators' outputs) and draws them; none computes a science product that the
estimators own.  The matplotlib functions take ``ax=None`` (a new figure is
made) and return what they drew on.

What to use when:

* :func:`plot_image` - any (lat, lon) DataArray on the sky (summed over
  ``energy``/``energy_true``/``band`` first); :func:`plot_residual_grid` - one
  panel per band; :func:`plot_counts_background_excess` - the usual three panels.
* :func:`plot_psf_containment`, :func:`plot_edisp` - the IRFs of a dataset at a
  sky position.
* :func:`plot_significance_distribution` - histogram of a significance map with
  a fitted normal.
* :func:`plot_spectrum`, :func:`plot_spectra`, :func:`plot_flux_points` - SEDs.
* :func:`interactive_cube`, :func:`interactive_map` - hvplot/bokeh objects for
  notebooks; :func:`save_html` writes them as standalone HTML.
* :func:`demo_plots` - the PNGs of ``gcxr demo``.

Sky orientation: images are drawn with ``imshow(origin="lower")`` on astropy
WCSAxes built from the DataArray's own ``lon``/``lat`` coordinates
(:meth:`gcxr.geom.SkyGeom.from_coords`), after ordering them as on the sky:
longitude decreasing with the column (so it grows to the left) and latitude
increasing with the row.  This holds whatever order the input coordinates have.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import xarray as xr

from .geom import SkyGeom

__all__ = [
    "plot_image",
    "plot_residual_grid",
    "plot_counts_background_excess",
    "plot_residuals",
    "plot_psf_containment",
    "plot_edisp",
    "plot_significance_distribution",
    "plot_spectrum",
    "plot_spectra",
    "plot_flux_points",
    "interactive_cube",
    "interactive_map",
    "save_html",
    "masked",
    "demo_plots",
]

SKY_DIMS = ("lat", "lon")
SPECTRAL_DIMS = ("energy", "energy_true", "band")
SedType = Literal["dnde", "e2dnde"]
Stretch = Literal["linear", "sqrt", "log", "asinh", "power", "sinh"]
_SED_LABELS = {
    "dnde": ("dN/dE", "cm$^{-2}$ s$^{-1}$ TeV$^{-1}$"),
    "e2dnde": ("E$^2$ dN/dE", "TeV cm$^{-2}$ s$^{-1}$"),
}


# --------------------------------------------------------------------------- checks
def _require_vars(ds: xr.Dataset, names: Sequence[str], where: str) -> None:
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise KeyError(f"{where}: the dataset has no {', '.join(map(repr, missing))}; "
                       f"it has {sorted(map(str, ds.variables))}")


def _require_dims(da: xr.DataArray | xr.Dataset, dims: Sequence[str], where: str, what: str = "input") -> None:
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ValueError(f"{where}: {what} has no dim {', '.join(map(repr, missing))}; "
                         f"its dims are {tuple(map(str, da.dims))}")


def _no_obs(ds: xr.Dataset, where: str) -> None:
    if "obs" in ds.dims:
        raise ValueError(f"{where}: the dataset has an 'obs' dim ({ds.sizes['obs']} runs); "
                         f"select one run with ds.isel(obs=i)")


def _as_dataarray(obj, where: str) -> xr.DataArray:
    if isinstance(obj, xr.Dataset):
        raise TypeError(f"{where}: expected a DataArray, got a Dataset with variables "
                        f"{list(map(str, obj.data_vars))}; pass one of them, e.g. ds['counts']")
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"{where}: expected an xarray.DataArray, got {type(obj).__name__}")
    return obj


def _frame(obj, frame: str | None) -> str:
    """The sky frame: explicit, else ``attrs['frame']``, else the lon coordinate's long_name."""
    from .geom import FRAMES
    if frame is None:
        frame = obj.attrs.get("frame") or None
    if frame is None and "lon" in obj.coords:
        name = str(obj["lon"].attrs.get("long_name", "")).lower()
        if "right ascension" in name or "icrs" in name:
            frame = "icrs"
        elif name:
            frame = "galactic"
    frame = frame or "galactic"
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {sorted(FRAMES)}, got {frame!r}")
    return frame


def _wrap(x):
    return (np.asarray(x, float) + 180.0) % 360.0 - 180.0


def _sky_order(da: xr.DataArray) -> xr.DataArray:
    """Longitude decreasing along ``lon`` (grows to the left), latitude increasing along ``lat``."""
    for d in SKY_DIMS:
        v = np.asarray(da[d].values, float)
        if v.size > 2:
            step = _wrap(np.diff(v)) if d == "lon" else np.diff(v)
            if not np.allclose(step, step[0], rtol=1e-6, atol=1e-9 * max(1.0, abs(step[0]))):
                raise ValueError(f"the '{d}' coordinate is not a regular grid (steps {step.min():.6g} .. "
                                 f"{step.max():.6g}); sky images need the plate-carree grids gcxr makes")
    if da.sizes["lon"] > 1 and _wrap(da["lon"].values[1] - da["lon"].values[0]) > 0:
        da = da.isel(lon=slice(None, None, -1))
    if da.sizes["lat"] > 1 and da["lat"].values[1] < da["lat"].values[0]:
        da = da.isel(lat=slice(None, None, -1))
    return da


def _image2d(da: xr.DataArray, where: str) -> xr.DataArray:
    """A (lat, lon) image in sky order: sums over energy-like dims; other dims are an error."""
    da = _as_dataarray(da, where)
    _require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    summed = [d for d in SPECTRAL_DIMS if d in da.dims]
    extra = [d for d in da.dims if d not in SKY_DIMS and d not in summed]
    if extra:
        raise ValueError(f"{where}: DataArray {da.name!r} has dims {tuple(map(str, da.dims))}; only (lat, lon) "
                         f"and the summed {SPECTRAL_DIMS} are allowed; select or reduce {extra} first "
                         f"(e.g. da.isel({extra[0]}=0))")
    if summed:
        da = da.sum(summed, keep_attrs=True, skipna=True, min_count=1)
    return _sky_order(da.transpose("lat", "lon"))


def _geom_of(da: xr.DataArray, frame: str | None) -> SkyGeom:
    return SkyGeom.from_coords(da, _frame(da, frame))


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
    _require_vars(ds, [var], "masked")
    da = ds[var]
    if mask in ds and set(ds[mask].dims) <= set(da.dims):
        da = da.where(ds[mask].astype(bool), fill)
        da.attrs = dict(ds[var].attrs)
    da.name = var
    if ds.attrs.get("frame") and "frame" not in da.attrs:
        da.attrs["frame"] = ds.attrs["frame"]
    return da


# --------------------------------------------------------------------------- axes
def _plt():
    import matplotlib.pyplot as plt
    return plt


def _wcs_axes(geom: SkyGeom, ax=None, figsize=(6.4, 4.8)):
    from astropy.visualization.wcsaxes import WCSAxes
    if ax is None:
        fig = _plt().figure(figsize=figsize)
        return fig.add_subplot(projection=geom.wcs)
    if not isinstance(ax, WCSAxes):
        raise TypeError(f"ax must be an astropy WCSAxes (e.g. fig.add_subplot(projection=wcs)), got "
                        f"{type(ax).__name__}; pass ax=None to make one from the image's coordinates")
    # same pixel -> sky mapping at the corners and the centre (WCSAxes may have normalised its copy)
    px = np.array([0.0, geom.nx - 1.0, 0.0, geom.nx - 1.0, (geom.nx - 1) / 2.0])
    py = np.array([0.0, 0.0, geom.ny - 1.0, geom.ny - 1.0, (geom.ny - 1) / 2.0])
    try:
        lon_a, lat_a = ax.wcs.pixel_to_world_values(px, py)[:2]
        same = (np.allclose(_wrap(np.asarray(lon_a) - geom.pix_to_world(px, py)[0]), 0, atol=1e-6)
                and np.allclose(lat_a, geom.pix_to_world(px, py)[1], atol=1e-6)
                and ax.wcs.wcs.ctype[0][:4] == geom.wcs.wcs.ctype[0][:4])
    except Exception:
        same = False
    if not same:
        raise ValueError("ax was made with a WCS different from the image's grid: the image would be "
                         "misplaced; pass ax=None or an axis made with projection=<the image's WCS>")
    return ax


def _label_sky_axes(ax, da: xr.DataArray, geom: SkyGeom) -> None:
    from .geom import _LONG_NAMES
    lon_name, lat_name = _LONG_NAMES[geom.frame]
    ax.coords[0].set_axislabel(f"{lon_name} (deg)")
    ax.coords[1].set_axislabel(f"{lat_name} (deg)")
    ax.coords[0].set_major_formatter("d.d")
    ax.coords[1].set_major_formatter("d.d")


def _smooth(img: np.ndarray, geom: SkyGeom, sigma_deg: float) -> np.ndarray:
    """Gaussian smoothing (sigma in deg on the sky), NaN-aware (normalised convolution)."""
    from scipy.ndimage import gaussian_filter
    if sigma_deg <= 0:
        raise ValueError(f"smooth must be a positive width in deg, got {sigma_deg}")
    b_c = np.deg2rad(geom.center[1])
    sig = (sigma_deg / abs(geom.dlat), sigma_deg / (abs(geom.dlon) * max(np.cos(b_c), 1e-6)))
    ok = np.isfinite(img)
    num = gaussian_filter(np.where(ok, img, 0.0), sig, mode="constant")
    den = gaussian_filter(ok.astype(float), sig, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(ok, out, np.nan)


def _label(da: xr.DataArray, default: str = "") -> str:
    name = da.attrs.get("long_name") or (str(da.name) if da.name is not None else default)
    units = da.attrs.get("units")
    return f"{name} ({units})" if units and units not in ("1", "") else name


def _imshow(ax, img, geom, cmap, stretch, vmin, vmax, symmetric, **kwargs):
    from astropy.visualization import simple_norm
    finite = img[np.isfinite(img)]
    if symmetric:
        v = vmax if vmax is not None else (float(np.nanmax(np.abs(finite))) if finite.size else 1.0) or 1.0
        vmin, vmax = -v, v
    if stretch == "linear":
        from matplotlib.colors import Normalize
        norm = Normalize(vmin=vmin, vmax=vmax)
    else:
        data = finite if finite.size else np.zeros(1)
        norm = simple_norm(data, stretch=stretch, vmin=vmin, vmax=vmax)
    return ax.imshow(img, origin="lower", cmap=cmap, norm=norm, interpolation="nearest", **kwargs)


# --------------------------------------------------------------------------- sky images
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
    img_da = _image2d(da, "plot_image")
    geom = _geom_of(img_da, _frame(da, frame))
    img = np.asarray(img_da.values, float)
    if smooth:
        img = _smooth(img, geom, float(smooth))
    ax = _wcs_axes(geom, ax)
    im = _imshow(ax, img, geom, cmap, stretch, vmin, vmax, symmetric, **imshow_kwargs)
    _label_sky_axes(ax, img_da, geom)
    if add_cbar:
        label = cbar_label if cbar_label is not None else _label(da)
        if smooth and cbar_label is None:
            label = f"{label}, smoothed {smooth:g} deg"
        ax.figure.colorbar(im, ax=ax, label=label, shrink=0.85)
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
    da = _as_dataarray(da, where)
    _require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    if dim is None:
        cands = [d for d in da.dims if d not in SKY_DIMS]
        if len(cands) != 1:
            raise ValueError(f"{where}: expected one dim besides (lat, lon) to make panels of, got "
                             f"{cands} in {tuple(map(str, da.dims))}; pass dim=")
        dim = str(cands[0])
    _require_dims(da, [dim], where, f"DataArray {da.name!r}")
    extra = [d for d in da.dims if d not in SKY_DIMS and d != dim]
    if extra:
        raise ValueError(f"{where}: dims {extra} besides {dim!r} and (lat, lon); select or reduce them first")
    cube = _sky_order(da.transpose(dim, "lat", "lon"))
    geom = _geom_of(cube, _frame(da, frame))
    n = cube.sizes[dim]
    if n < 1:
        raise ValueError(f"{where}: dim {dim!r} is empty")
    ncols = max(1, min(int(ncols), n))
    nrows = int(np.ceil(n / ncols))
    imgs = [np.asarray(cube.isel({dim: i}).values, float) for i in range(n)]
    if smooth:
        imgs = [_smooth(im, geom, float(smooth)) for im in imgs]
    if vmax is None:
        finite = np.concatenate([im[np.isfinite(im)] for im in imgs])
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
        vmax = vmax or 1.0
    titles = _band_titles(da, dim)
    aspect = geom.ny / geom.nx
    fig = _plt().figure(figsize=(panel_size * ncols + 1.2, panel_size * aspect * nrows + 0.8 * nrows),
                        layout="constrained")
    axes, im = [], None
    for i in range(n):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection=geom.wcs)
        im = _imshow(ax, imgs[i], geom, cmap, "linear", -vmax, vmax, False)
        _label_sky_axes(ax, cube, geom)
        row, col = divmod(i, ncols)
        if row < nrows - 1 and i + ncols < n:
            ax.coords[0].set_ticklabel_visible(False)
            ax.coords[0].set_axislabel("")
        if col > 0:
            ax.coords[1].set_ticklabel_visible(False)
            ax.coords[1].set_axislabel("")
        ax.set_title(titles[i], fontsize="medium")
        axes.append(ax)
    label = cbar_label if cbar_label is not None else _label(da)
    if smooth and cbar_label is None:
        label = f"{label}, smoothed {smooth:g} deg"
    fig.colorbar(im, ax=axes, label=label, shrink=0.9)
    return axes


def _predicted(ds: xr.Dataset, npred, where: str) -> xr.DataArray:
    """The prediction to compare counts with: npred (Dataset from npred_cubes or DataArray) or background."""
    if npred is None:
        _require_vars(ds, ["background"], where)
        return ds["background"]
    if isinstance(npred, xr.Dataset):
        _require_vars(npred, ["npred"], where)
        npred = npred["npred"]
    npred = _as_dataarray(npred, where)
    counts = ds["counts"]
    if set(npred.dims) != set(counts.dims) or any(npred.sizes[d] != counts.sizes[d] for d in npred.dims):
        raise ValueError(f"{where}: npred dims {dict(npred.sizes)} do not match counts {dict(ds['counts'].sizes)}")
    return npred


def plot_counts_background_excess(ds: xr.Dataset, npred=None, smooth: float | None = None,
                                  cmap: str = "viridis", figsize=(15.0, 4.2)):
    """Counts, prediction (``npred`` if given, else background) and excess, summed over energy
    inside ``mask_safe``; returns the three axes.

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
    where = "plot_counts_background_excess"
    _require_vars(ds, ["counts"], where)
    _no_obs(ds, where)
    pred = _predicted(ds, npred, where)
    mask = ds["mask_safe"].astype(bool) if "mask_safe" in ds else xr.ones_like(ds["counts"], dtype=bool)
    frame = _frame(ds, None)
    counts = ds["counts"].where(mask, 0.0)
    pred_m = pred.where(mask, 0.0)
    excess = (counts - pred_m).assign_attrs(long_name="excess counts")
    counts.attrs = {"long_name": "counts", "frame": frame}
    pred_m.attrs = {"long_name": "npred" if npred is not None else "background", "frame": frame}
    excess.attrs["frame"] = frame
    geom = _geom_of(_image2d(counts, where), frame)
    fig = _plt().figure(figsize=figsize, layout="constrained")
    axes = []
    for i, (da, cm, sym) in enumerate(((counts, cmap, False), (pred_m, cmap, False), (excess, "RdBu_r", True))):
        ax = fig.add_subplot(1, 3, i + 1, projection=geom.wcs)
        plot_image(da, ax=ax, smooth=smooth, cmap=cm, symmetric=sym, frame=frame, title=da.attrs["long_name"],
                   cbar_label=da.attrs["long_name"] + (f" (smoothed {smooth:g} deg)" if smooth else ""))
        if i > 0:
            ax.coords[1].set_axislabel("")
        axes.append(ax)
    return axes


def plot_residuals(ds: xr.Dataset, npred=None, method: Literal["diff", "diff/sqrt(model)"] = "diff/sqrt(model)",
                   smooth: float = 0.1, ax=None, **kwargs):
    """Spatial residuals summed over energy inside ``mask_safe``, as gammapy's
    ``plot_residuals_spatial``: counts and prediction are smoothed with a Gaussian
    of ``smooth`` deg, then ``diff`` = counts - npred or ``diff/sqrt(model)`` =
    (counts - npred) / sqrt(npred).  ``npred`` defaults to the background.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset.
    npred : xarray.DataArray, optional
        Predicted counts.
    method : {'diff', 'diff/sqrt(model)'}
        The residual.
    smooth : float
        Gaussian smoothing sigma (deg).
    ax : matplotlib.axes.Axes, optional
        The axis to draw on (default: a new figure).
    **kwargs
        Passed on to matplotlib.

    Returns
    -------
    matplotlib.axes.Axes
        The axis.
    """
    where = "plot_residuals"
    methods = ("diff", "diff/sqrt(model)")
    if method not in methods:
        raise ValueError(f"{where}: method must be one of {methods}, got {method!r}")
    _require_vars(ds, ["counts"], where)
    _no_obs(ds, where)
    pred = _predicted(ds, npred, where)
    frame = _frame(ds, None)
    c = _image2d(masked(ds, "counts"), where)
    p = _image2d(pred.where(ds["mask_safe"].astype(bool), 0.0) if "mask_safe" in ds else pred, where)
    geom = _geom_of(c, frame)
    cs = _smooth(np.asarray(c.values, float), geom, smooth) if smooth else np.asarray(c.values, float)
    ps = _smooth(np.asarray(p.values, float), geom, smooth) if smooth else np.asarray(p.values, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = cs - ps if method == "diff" else np.where(ps > 0, (cs - ps) / np.sqrt(ps), np.nan)
    label = "counts - npred" if method == "diff" else "(counts - npred) / sqrt(npred)"
    if smooth:
        label += f", smoothed {smooth:g} deg"
    out = c.copy(data=res).assign_attrs(long_name=label, frame=frame)
    kwargs.setdefault("cmap", "RdBu_r")
    kwargs.setdefault("symmetric", True)
    return plot_image(out, ax=ax, frame=frame, cbar_label=label, **kwargs)


# --------------------------------------------------------------------------- IRFs
def _position(ds: xr.Dataset, geom: SkyGeom, position) -> tuple[float, float]:
    """(lon, lat) in the dataset frame from None (map centre), a (lon, lat) pair or a SkyCoord."""
    if position is None:
        lon, lat = geom.center
        return float(lon), float(lat)
    if hasattr(position, "transform_to"):
        c = position.transform_to(geom.frame)
        sph = c.spherical
        return float(sph.lon.deg), float(sph.lat.deg)
    try:
        lon, lat = (float(v) for v in position)
    except (TypeError, ValueError):
        raise TypeError(f"position must be (lon, lat) in deg in the dataset frame ({geom.frame}) or a SkyCoord, "
                        f"got {position!r}") from None
    return lon, lat


def _irf_pixel(ds: xr.Dataset, position, where: str):
    from .npred import dataset_geoms
    geom, irf = dataset_geoms(ds)
    lon, lat = _position(ds, geom, position)
    px, py = irf.world_to_pix(lon, lat)
    if not (-0.5 <= px <= irf.nx - 0.5 and -0.5 <= py <= irf.ny - 0.5):
        raise ValueError(f"{where}: position ({lon:.3f}, {lat:.3f}) deg ({geom.frame}) is outside the IRF grid "
                         f"of the dataset")
    return geom, irf, lon, lat


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
    from .npred import RAD_SR_TO_DEG2, _profile_at, containment_radius
    where = "plot_psf_containment"
    _require_vars(ds, ["psf", "rad_bounds", "energy_true"], where)
    _no_obs(ds, where)
    _require_dims(ds["psf"], ("energy_true", "rad", "lat_irf", "lon_irf"), where, "variable 'psf'")
    for f in fractions:
        if not 0 < f < 1:
            raise ValueError(f"{where}: containment fractions must be in (0, 1), got {f}")
    geom, irf, lon, lat = _irf_pixel(ds, position, where)
    psf = np.asarray(ds["psf"].transpose("energy_true", "rad", "lat_irf", "lon_irf").values, float)
    prof = _profile_at(psf, irf, lon, lat) * RAD_SR_TO_DEG2
    rb = np.asarray(ds["rad_bounds"].values, float)
    rad_edges = np.append(rb[:, 0], rb[-1, 1])
    valid = prof.sum(axis=1) > 0
    if not valid.any():
        raise ValueError(f"{where}: the PSF is zero at ({lon:.3f}, {lat:.3f}) deg (no exposure there?); "
                         f"pass another position=")
    e_true = np.asarray(ds["energy_true"].values, float)
    if ax is None:
        _, ax = _plt().subplots(figsize=(6.0, 4.2))
    for f in fractions:
        r = np.where(valid, containment_radius(prof, rad_edges, float(f)), np.nan)
        ax.plot(e_true, r, marker="o", ms=3, label=f"{f:.0%} containment", **kwargs)
    ax.set_xscale("log")
    ax.set_xlabel("True energy (TeV)")
    ax.set_ylabel("Containment radius (deg)")
    ax.set_title(f"PSF at ({lon:.2f}, {lat:.2f}) deg, {geom.frame}", fontsize="medium")
    ax.set_ylim(bottom=0)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return ax


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
    where = "plot_edisp"
    _require_vars(ds, ["edisp", "energy_true_bounds", "energy_bounds"], where)
    _no_obs(ds, where)
    _require_dims(ds["edisp"], ("energy_true", "energy", "lat_irf", "lon_irf"), where, "variable 'edisp'")
    geom, irf, lon, lat = _irf_pixel(ds, position, where)
    ix, iy, _ = irf.world_to_index(np.array([lon]), np.array([lat]))
    ix, iy = int(np.clip(ix[0], 0, irf.nx - 1)), int(np.clip(iy[0], 0, irf.ny - 1))
    mat = np.asarray(ds["edisp"].transpose("energy_true", "energy", "lat_irf", "lon_irf").values[:, :, iy, ix],
                     float)
    if not np.any(mat > 0):
        raise ValueError(f"{where}: the energy dispersion is zero at ({lon:.3f}, {lat:.3f}) deg "
                         f"(no exposure there?); pass another position=")
    tb = np.asarray(ds["energy_true_bounds"].values, float)
    rb = np.asarray(ds["energy_bounds"].values, float)
    et = np.append(tb[:, 0], tb[-1, 1])
    er = np.append(rb[:, 0], rb[-1, 1])
    if ax is None:
        _, ax = _plt().subplots(figsize=(6.0, 4.8))
    m = ax.pcolormesh(et, er, np.ma.masked_where(mat.T <= 0, mat.T), cmap=cmap, shading="flat")
    lo, hi = max(et[0], er[0]), min(et[-1], er[-1])
    ax.plot([lo, hi], [lo, hi], color="w", lw=0.8, ls="--", alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("True energy (TeV)")
    ax.set_ylabel("Reconstructed energy (TeV)")
    ax.set_title(f"Energy dispersion at ({lon:.2f}, {lat:.2f}) deg, {geom.frame}", fontsize="medium")
    if add_cbar:
        ax.figure.colorbar(m, ax=ax, label="Probability per reconstructed bin")
    return ax


# --------------------------------------------------------------------------- distributions
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
    from scipy.stats import norm
    values = np.asarray(sqrt_ts.values if isinstance(sqrt_ts, xr.DataArray) else sqrt_ts, float).ravel()
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError(f"plot_significance_distribution: need at least 2 finite values, got {values.size}")
    mu, sigma = norm.fit(values)
    if ax is None:
        _, ax = _plt().subplots(figsize=(6.0, 4.2))
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


# --------------------------------------------------------------------------- spectra
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
        _, ax = _plt().subplots(figsize=(6.0, 4.2))
    (line,) = ax.plot(energies, y, label=label if label is not None else name, **kwargs)
    if band is None and covariance is not None:
        from .estimators import spectrum_band
        band = spectrum_band(model, energies, covariance=covariance)
    if band is not None:
        if not isinstance(band, xr.Dataset):
            raise TypeError(f"{where}: band must be an xarray.Dataset on 'energy', got {type(band).__name__}")
        _require_vars(band, [sed_type, f"{sed_type}_err", "energy"], f"{where} (band)")
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
        _, ax = _plt().subplots(figsize=(6.0, 4.2))
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
    _require_vars(fp, [sed_type, f"{sed_type}_err"], where)
    x = _fp_var(fp, "e_ref")
    if x is None:
        _require_vars(fp, ["energy"], where)
        x = np.asarray(fp["energy"].values, float)
    y, dy = _fp_var(fp, sed_type), _fp_var(fp, f"{sed_type}_err")
    lo, hi = _fp_var(fp, "e_min"), _fp_var(fp, "e_max")
    if (lo is None or hi is None) and "energy_bounds" in fp.variables:
        b = np.asarray(fp["energy_bounds"].values, float)
        lo, hi = b[:, 0], b[:, 1]
    xerr = None if lo is None or hi is None else np.vstack([x - lo, hi - x])
    is_ul = np.asarray(fp["is_ul"].values, bool) if "is_ul" in fp.variables else np.zeros(x.shape, bool)
    if ax is None:
        _, ax = _plt().subplots(figsize=(6.0, 4.2))
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


# --------------------------------------------------------------------------- hvplot
_DATASHADER_WARNED = False


def _has_datashader() -> bool:
    import importlib.util
    return importlib.util.find_spec("datashader") is not None


def _rasterize(rasterize: bool) -> bool:
    global _DATASHADER_WARNED
    if rasterize and not _has_datashader():
        if not _DATASHADER_WARNED:
            warnings.warn("interactive plots: datashader is not installed, drawing plain images instead of "
                          "rasterized ones (pip install datashader for large maps)", UserWarning, stacklevel=3)
            _DATASHADER_WARNED = True
        return False
    return bool(rasterize)


def _hv_ready(da: xr.DataArray) -> xr.DataArray:
    import hvplot.xarray  # noqa: F401  (registers the .hvplot accessor)
    da = da.copy()
    if da.name is None:
        da.name = "value"
    # bounds variables (energy_bounds) carry a 'bnds' dim the image would not know what to do with
    drop = [c for c in da.coords if c not in da.dims and any(d not in da.dims for d in da[c].dims)]
    return da.drop_vars(drop)


def interactive_cube(da: xr.DataArray, dim: str | None = None, cmap: str = "viridis", rasterize: bool = True,
                     dynamic: bool = True, **kwargs):
    """A cube browsed with a slider over ``dim`` (default: ``energy``, else ``energy_true``/``band``),
    as gammapy's ``plot_interactive``; returns the hvplot (holoviews) object.

    Longitude grows to the left (``flip_xaxis``).  ``rasterize`` needs datashader
    (plain images otherwise, with one warning) and a live kernel.  For a
    standalone HTML file use ``dynamic=False, rasterize=False`` (every plane is
    embedded) and :func:`save_html`.

    Parameters
    ----------
    da : xarray.DataArray
        A cube on (dim, lat, lon).
    dim : str, optional
        The slider's dim.
    cmap : str
        Colour map.
    rasterize : bool
        Rasterise with datashader.
    dynamic : bool
        A DynamicMap (False: all planes rendered, e.g. for :func:`save_html`).
    **kwargs
        Passed on to hvplot.
    """
    where = "interactive_cube"
    da = _as_dataarray(da, where)
    _require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    if dim is None:
        found = [d for d in SPECTRAL_DIMS if d in da.dims]
        if not found:
            raise ValueError(f"{where}: DataArray {da.name!r} has no {SPECTRAL_DIMS} dim to slide over; "
                             f"its dims are {tuple(map(str, da.dims))} (use interactive_map for an image)")
        dim = found[0]
    _require_dims(da, [dim], where, f"DataArray {da.name!r}")
    extra = [d for d in da.dims if d not in SKY_DIMS and d != dim]
    if extra:
        raise ValueError(f"{where}: dims {extra} besides {dim!r} and (lat, lon); select or reduce them first")
    da = _hv_ready(da.transpose(dim, "lat", "lon"))
    opts = dict(x="lon", y="lat", groupby=dim, rasterize=_rasterize(rasterize), cmap=cmap, data_aspect=1,
                flip_xaxis=True, dynamic=dynamic, clabel=_label(da, "value"))
    opts.update(kwargs)
    return da.hvplot.image(**opts)


def interactive_map(da: xr.DataArray, rasterize: bool = True, cmap: str = "viridis", **kwargs):
    """A (lat, lon) map (energy-like dims summed) for zooming around large maps; returns the hvplot object.

    Parameters
    ----------
    da : xarray.DataArray
        A map (energy-like dims are summed).
    rasterize : bool
        Rasterise with datashader.
    cmap : str
        Colour map.
    **kwargs
        Passed on to hvplot.
    """
    img = _hv_ready(_image2d(da, "interactive_map"))
    opts = dict(x="lon", y="lat", rasterize=_rasterize(rasterize), cmap=cmap, data_aspect=1, flip_xaxis=True,
                clabel=_label(da, "value"))
    opts.update(kwargs)
    return img.hvplot.image(**opts)


def save_html(obj, path: str | Path, resources: Literal["inline", "cdn"] = "inline", title: str | None = None) -> Path:
    """Write a holoviews/hvplot object as a standalone HTML page (bokeh backend, no browser), atomically.

    ``resources="inline"`` embeds BokehJS (the page works offline, ~3 MB);
    ``"cdn"`` links it.  A DynamicMap cannot be written (build it with ``dynamic=False``).

    Parameters
    ----------
    obj : holoviews object
        What to save.
    path : str or Path
        The HTML file.
    resources : {'inline', 'cdn'}
        How BokehJS is included.
    title : str, optional
        The page title.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import io
    import holoviews as hv
    from bokeh.resources import CDN, INLINE
    from .io import atomic_path
    if resources not in ("inline", "cdn"):
        raise ValueError(f"save_html: resources must be 'inline' or 'cdn', got {resources!r}")
    if isinstance(obj, hv.DynamicMap):
        raise TypeError("save_html: a DynamicMap needs a live kernel; build the plot with dynamic=False "
                        "(and rasterize=False) to embed every frame")
    buf = io.StringIO()
    hv.save(obj, buf, fmt="html", backend="bokeh", resources=INLINE if resources == "inline" else CDN,
            title=title or "gcxr")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- demo
def _savefig(fig, path: Path, dpi: int) -> Path:
    from .io import atomic_path
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    _plt().close(fig)
    return path


def _stacked_view(ds: xr.Dataset) -> xr.Dataset:
    """counts/background/masks of a dataset; runs along ``obs`` summed inside their safe masks."""
    keep = [v for v in ("counts", "background", "mask_safe", "mask_fit") if v in ds]
    _require_vars(ds, ["counts", "background", "energy_bounds"], "demo_plots")
    if "obs" not in ds.dims:
        return ds[keep].assign_coords(energy_bounds=ds["energy_bounds"])
    ms = ds["mask_safe"].astype(bool) if "mask_safe" in ds else xr.ones_like(ds["counts"], dtype=bool)
    view = xr.Dataset({v: ds[v].where(ms, 0.0).sum("obs", keep_attrs=True) for v in ("counts", "background")},
                      attrs={"name": "runs", "frame": ds.attrs.get("frame", "galactic")})
    view["mask_safe"] = ms.any("obs")
    if "mask_fit" in ds:
        view["mask_fit"] = ds["mask_fit"].astype(bool).any("obs") if "obs" in ds["mask_fit"].dims else ds["mask_fit"]
    return view.assign_coords(energy_bounds=ds["energy_bounds"])


def _significance_image(view: xr.Dataset, npred: xr.DataArray | None, radius: float, name: str) -> xr.DataArray:
    """(lat, lon) sqrt(TS) of the counts against npred (else the background) over the whole energy
    range, correlated in a disk of ``radius`` deg (:func:`gcxr.estimators.excess_map`)."""
    from .estimators import excess_map
    sig = excess_map(view, npred=npred, correlation_radius=radius)["sqrt_ts"].isel(band=0, drop=True)
    return sig.assign_attrs(long_name=name, units="", frame=_frame(view, None))


def _irf_run(ds: xr.Dataset, position) -> tuple[xr.Dataset, tuple[float, float] | None, str]:
    """One run's dataset for the IRF plots and a position where it has exposure."""
    from .npred import dataset_geoms
    run, tag = ds, ""
    if "obs" in ds.dims:
        run = ds.isel(obs=0)
        tag = f" (run {int(ds['obs'].values[0])})" if "obs" in ds.coords else " (first run)"
    if "exposure_irf" in run:
        geom, irf = dataset_geoms(run)
        lon, lat = position if position is not None else geom.center
        ix, iy, ok = irf.world_to_index(np.array([lon]), np.array([lat]))
        ex = np.asarray(run["exposure_irf"].transpose("energy_true", "lat_irf", "lon_irf").values, float).sum(0)
        if not ok[0] or ex[int(iy[0]), int(ix[0])] <= 0:
            j, i = np.unravel_index(int(np.argmax(ex)), ex.shape)
            position = (float(irf.lon[i]), float(irf.lat[j]))
    return run, position, tag


def _npred(ds: xr.Dataset, models) -> xr.DataArray:
    """Full npred of the models, summed over the runs of a multi-run file."""
    from .npred import npred_cubes
    if "obs" not in ds.dims:
        return npred_cubes(ds, models)["npred"]
    ids = ds["obs"].values
    ms = ds["mask_safe"].astype(bool)
    return sum(npred_cubes(ds.isel(obs=i), models, name=f"obs-{int(ids[i])}")["npred"].where(ms.isel(obs=i), 0.0)
               for i in range(ds.sizes["obs"]))


def demo_plots(out: str | Path, ds: xr.Dataset | None = None, models=None, fit_result=None, dpi: int = 100,
               smooth: float = 0.05, correlation_radius: float = 0.1) -> list[Path]:
    """The PNGs of ``gcxr demo`` in ``out``; returns their paths.

    Reads ``out/datasets.nc`` (unless ``ds`` is given; runs along ``obs`` are
    summed for the images) and ``out/models_bestfit.yaml`` when it exists
    (unless ``models`` is given).  Writes counts, background, the excess
    significance (counts vs background over the whole energy range, correlated
    within ``correlation_radius`` deg), and with models the residual significance
    (counts vs npred); the distribution of the last significance map; the source
    spectra, with 1-sigma bands when ``fit_result`` (or a covariance read with
    the models) is there; the PSF containment and the energy dispersion at the
    first source (else the map centre).  Each file is written to a temporary
    name and renamed.

    Parameters
    ----------
    out : str or Path
        The output folder of ``gcxr run``/``gcxr demo``.
    ds : xarray.Dataset, optional
        The dataset (default: ``out/datasets.nc``).
    models : Models, optional
        The models (default: ``out/models_bestfit.yaml``).
    fit_result : FitResult, optional
        For the spectrum's error band.
    dpi : int
        Resolution of the PNGs.
    smooth : float
        Smoothing of the images (deg).
    correlation_radius : float
        Of the significance map (deg).
    """
    from .io import read_datasets
    out = Path(out)
    if ds is None:
        path = out / "datasets.nc"
        if not path.exists():
            raise FileNotFoundError(f"demo_plots: {path} not found (run `gcxr run` first or pass ds=)")
        ds = read_datasets(path)
    if models is None and (out / "models_bestfit.yaml").exists():
        from .models import Models
        models = Models.read(out / "models_bestfit.yaml")
    frame = _frame(ds, None)
    view = _stacked_view(ds)
    written: list[Path] = []

    counts = masked(view, "counts").assign_attrs(long_name="counts", frame=frame)
    ax = plot_image(counts, smooth=smooth, stretch="sqrt", cmap="afmhot", title="Counts (safe mask)")
    written.append(_savefig(ax.figure, out / "counts.png", dpi))
    bkg = masked(view, "background").assign_attrs(long_name="background", frame=frame)
    ax = plot_image(bkg, smooth=smooth, title="Background (safe mask)")
    written.append(_savefig(ax.figure, out / "background.png", dpi))

    sig = _significance_image(view, None, correlation_radius, "sqrt(TS) vs background")
    ax = plot_image(sig, cmap="RdBu_r", symmetric=True,
                    title=f"Excess significance ({correlation_radius:g} deg correlation)")
    written.append(_savefig(ax.figure, out / "excess.png", dpi))

    dist_label = "counts vs background"
    sky = list(getattr(models, "sky_models", None) or [])
    if sky:
        sig = _significance_image(view, _npred(ds, models), correlation_radius, "sqrt(TS) vs npred")
        ax = plot_image(sig, cmap="RdBu_r", symmetric=True,
                        title=f"Residual significance ({correlation_radius:g} deg correlation)")
        written.append(_savefig(ax.figure, out / "residual_significance.png", dpi))
        dist_label = "counts vs npred"
    ax = plot_significance_distribution(sig, label=dist_label)
    ax.set_title(f"Significance distribution ({dist_label})", fontsize="medium")
    written.append(_savefig(ax.figure, out / "significance_distribution.png", dpi))

    if sky:
        from .estimators import spectrum_band
        e = np.asarray(ds["energy_bounds"].values, float)
        energies = np.geomspace(float(e[0, 0]), float(e[-1, 1]), 100)
        covs = {}                            # the 1-sigma band of each source, or None
        for m in sky:
            covs[m.name] = None
            if fit_result is None and getattr(models, "covariance", None) is None:
                continue
            try:
                covs[m.name] = spectrum_band(models, energies, covariance=fit_result, source=m.name)
            except ValueError as exc:        # e.g. HESSE failed: draw the line, say why there is no band
                warnings.warn(f"demo_plots: no error band for {m.name!r}: {exc}", RuntimeWarning, stacklevel=2)
        ax = plot_spectra({m.name: m for m in sky}, energy_bounds=(float(e[0, 0]), float(e[-1, 1])),
                          bands=covs)
        banded = any(v is not None for v in covs.values())
        ax.set_title("Best-fit spectra" + (" (1 sigma bands)" if banded else " (no covariance: no bands)"),
                     fontsize="medium")
        written.append(_savefig(ax.figure, out / "spectrum.png", dpi))

    pos = None
    sp = getattr(sky[0], "spatial_model", None) if sky else None
    if sp is not None and hasattr(sp, "position"):
        from .coords import transform_lonlat
        lo, la = transform_lonlat(np.array([sp.position[0]]), np.array([sp.position[1]]), sp.frame, frame)
        pos = (float(lo[0]), float(la[0]))
    run, pos, tag = _irf_run(ds, pos)
    ax = plot_psf_containment(run, position=pos)
    ax.set_title(ax.get_title() + tag, fontsize="medium")
    written.append(_savefig(ax.figure, out / "psf_containment.png", dpi))
    ax = plot_edisp(run, position=pos)
    ax.set_title(ax.get_title() + tag, fontsize="medium")
    written.append(_savefig(ax.figure, out / "edisp.png", dpi))
    return written


