"""Interactive views for notebooks (hvplot/holoviews on bokeh) and standalone HTML pages.

hvplot, holoviews and bokeh are imported inside the functions (deferred: heavy
imports; ``import gcxr`` stays light).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal
import importlib.util
import io

import xarray as xr

from ..io import atomic_path
from ._common import SKY_DIMS, SPECTRAL_DIMS, as_dataarray, image2d, label, require_dims

__all__ = ["interactive_cube", "interactive_map", "save_html"]

_DATASHADER_WARNED = False


def _has_datashader() -> bool:
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
    import hvplot.xarray  # noqa: F401  (registers the .hvplot accessor; deferred: heavy import)
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
    da = as_dataarray(da, where)
    require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    if dim is None:
        found = [d for d in SPECTRAL_DIMS if d in da.dims]
        if not found:
            raise ValueError(f"{where}: DataArray {da.name!r} has no {SPECTRAL_DIMS} dim to slide over; "
                             f"its dims are {tuple(map(str, da.dims))} (use interactive_map for an image)")
        dim = found[0]
    require_dims(da, [dim], where, f"DataArray {da.name!r}")
    extra = [d for d in da.dims if d not in SKY_DIMS and d != dim]
    if extra:
        raise ValueError(f"{where}: dims {extra} besides {dim!r} and (lat, lon); select or reduce them first")
    da = _hv_ready(da.transpose(dim, "lat", "lon"))
    opts = dict(x="lon", y="lat", groupby=dim, rasterize=_rasterize(rasterize), cmap=cmap, data_aspect=1,
                flip_xaxis=True, dynamic=dynamic, clabel=label(da, "value"))
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
    img = _hv_ready(image2d(da, "interactive_map"))
    opts = dict(x="lon", y="lat", rasterize=_rasterize(rasterize), cmap=cmap, data_aspect=1, flip_xaxis=True,
                clabel=label(da, "value"))
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
    import holoviews as hv  # deferred: heavy imports (holoviews, bokeh)
    from bokeh.resources import CDN, INLINE  # deferred: heavy import (bokeh)
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


