"""What the figure modules share: input checks, the sky frame, sky ordering, WCS axes, colour scales.

Private to :mod:`gcxr.plot`.  Nothing here computes a science product: the
functions check inputs, reorder pixels for display and make axes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr

from ..contract import frame_of as contract_frame
from ..geom import COORD_LONG_NAMES, FRAMES, SkyGeom

SKY_DIMS = ("lat", "lon")
SPECTRAL_DIMS = ("energy", "energy_true", "band")


# --------------------------------------------------------------------------- checks
def require_vars(ds: xr.Dataset, names: Sequence[str], where: str) -> None:
    """A KeyError naming the missing variables and listing those the dataset has."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        raise KeyError(f"{where}: the dataset has no {', '.join(map(repr, missing))}; "
                       f"it has {sorted(map(str, ds.variables))}")


def require_dims(da: xr.DataArray | xr.Dataset, dims: Sequence[str], where: str, what: str = "input") -> None:
    """A ValueError naming the missing dims and listing those the input has."""
    missing = [d for d in dims if d not in da.dims]
    if missing:
        raise ValueError(f"{where}: {what} has no dim {', '.join(map(repr, missing))}; "
                         f"its dims are {tuple(map(str, da.dims))}")


def no_obs(ds: xr.Dataset, where: str) -> None:
    """A ValueError for a dataset with runs along ``obs`` (figures take one run or a stacked set)."""
    if "obs" in ds.dims:
        raise ValueError(f"{where}: the dataset has an 'obs' dim ({ds.sizes['obs']} runs); "
                         f"select one run with ds.isel(obs=i)")


def as_dataarray(obj, where: str) -> xr.DataArray:
    """``obj`` if it is a DataArray, else a TypeError that says what to pass."""
    if isinstance(obj, xr.Dataset):
        raise TypeError(f"{where}: expected a DataArray, got a Dataset with variables "
                        f"{list(map(str, obj.data_vars))}; pass one of them, e.g. ds['counts']")
    if not isinstance(obj, xr.DataArray):
        raise TypeError(f"{where}: expected an xarray.DataArray, got {type(obj).__name__}")
    return obj


def predicted(ds: xr.Dataset, npred, where: str) -> xr.DataArray:
    """The prediction to compare counts with: npred (Dataset from npred_cubes or DataArray) or background."""
    if npred is None:
        require_vars(ds, ["background"], where)
        return ds["background"]
    if isinstance(npred, xr.Dataset):
        require_vars(npred, ["npred"], where)
        npred = npred["npred"]
    npred = as_dataarray(npred, where)
    counts = ds["counts"]
    if set(npred.dims) != set(counts.dims) or any(npred.sizes[d] != counts.sizes[d] for d in npred.dims):
        raise ValueError(f"{where}: npred dims {dict(npred.sizes)} do not match counts {dict(ds['counts'].sizes)}")
    return npred


def energy_range(ds: xr.Dataset) -> list[float]:
    """The first and last reco-energy edges (TeV): one band over the whole axis for the estimators."""
    require_vars(ds, ["energy_bounds"], "energy_range")
    e = np.asarray(ds["energy_bounds"].values, float)
    return [float(e[0, 0]), float(e[-1, 1])]


# --------------------------------------------------------------------------- the sky grid
def frame_of(obj, frame: str | None = None) -> str:
    """The sky frame: ``frame`` if given (checked), else the dataset contract's rule
    (:func:`gcxr.contract.frame_of`: ``attrs['frame']``, or the lon coordinate gcxr writes)."""
    if frame is None:
        return contract_frame(obj)
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {sorted(FRAMES)}, got {frame!r}")
    return frame


def wrap(x):
    """Longitude differences folded into [-180, 180) deg."""
    return (np.asarray(x, float) + 180.0) % 360.0 - 180.0


def sky_order(da: xr.DataArray) -> xr.DataArray:
    """Longitude decreasing along ``lon`` (grows to the left), latitude increasing along ``lat``."""
    for d in SKY_DIMS:
        v = np.asarray(da[d].values, float)
        if v.size > 2:
            step = wrap(np.diff(v)) if d == "lon" else np.diff(v)
            if not np.allclose(step, step[0], rtol=1e-6, atol=1e-9 * max(1.0, abs(step[0]))):
                raise ValueError(f"the '{d}' coordinate is not a regular grid (steps {step.min():.6g} .. "
                                 f"{step.max():.6g}); sky images need the plate-carree grids gcxr makes")
    if da.sizes["lon"] > 1 and wrap(da["lon"].values[1] - da["lon"].values[0]) > 0:
        da = da.isel(lon=slice(None, None, -1))
    if da.sizes["lat"] > 1 and da["lat"].values[1] < da["lat"].values[0]:
        da = da.isel(lat=slice(None, None, -1))
    return da


def image2d(da: xr.DataArray, where: str) -> xr.DataArray:
    """A (lat, lon) image in sky order: sums over energy-like dims; other dims are an error."""
    da = as_dataarray(da, where)
    require_dims(da, SKY_DIMS, where, f"DataArray {da.name!r}")
    summed = [d for d in SPECTRAL_DIMS if d in da.dims]
    extra = [d for d in da.dims if d not in SKY_DIMS and d not in summed]
    if extra:
        raise ValueError(f"{where}: DataArray {da.name!r} has dims {tuple(map(str, da.dims))}; only (lat, lon) "
                         f"and the summed {SPECTRAL_DIMS} are allowed; select or reduce {extra} first "
                         f"(e.g. da.isel({extra[0]}=0))")
    if summed:
        da = da.sum(summed, keep_attrs=True, skipna=True, min_count=1)
    return sky_order(da.transpose("lat", "lon"))


def geom_of(da: xr.DataArray, frame: str | None) -> SkyGeom:
    """The sky grid of a DataArray's own lon/lat coordinates."""
    return SkyGeom.from_coords(da, frame_of(da, frame))


# --------------------------------------------------------------------------- axes and colours
def plt():
    """matplotlib.pyplot, imported on first use."""
    import matplotlib.pyplot as pyplot  # deferred: heavy import (import gcxr stays light)
    return pyplot


def wcs_axes(geom: SkyGeom, ax=None, figsize=(6.4, 4.8)):
    """A new WCSAxes for ``geom``, or ``ax`` after checking that it maps pixels as ``geom`` does."""
    from astropy.visualization.wcsaxes import WCSAxes  # deferred: heavy import
    if ax is None:
        fig = plt().figure(figsize=figsize)
        return fig.add_subplot(projection=geom.wcs)
    if not isinstance(ax, WCSAxes):
        raise TypeError(f"ax must be an astropy WCSAxes (e.g. fig.add_subplot(projection=wcs)), got "
                        f"{type(ax).__name__}; pass ax=None to make one from the image's coordinates")
    # same pixel -> sky mapping at the corners and the centre (WCSAxes may have normalised its copy)
    px = np.array([0.0, geom.nx - 1.0, 0.0, geom.nx - 1.0, (geom.nx - 1) / 2.0])
    py = np.array([0.0, 0.0, geom.ny - 1.0, geom.ny - 1.0, (geom.ny - 1) / 2.0])
    try:
        lon_a, lat_a = ax.wcs.pixel_to_world_values(px, py)[:2]
        same = (np.allclose(wrap(np.asarray(lon_a) - geom.pix_to_world(px, py)[0]), 0, atol=1e-6)
                and np.allclose(lat_a, geom.pix_to_world(px, py)[1], atol=1e-6)
                and ax.wcs.wcs.ctype[0][:4] == geom.wcs.wcs.ctype[0][:4])
    except Exception:
        same = False
    if not same:
        raise ValueError("ax was made with a WCS different from the image's grid: the image would be "
                         "misplaced; pass ax=None or an axis made with projection=<the image's WCS>")
    return ax


def label_sky_axes(ax, geom: SkyGeom) -> None:
    """Axis labels and tick formats of the grid's frame."""
    lon_name, lat_name = COORD_LONG_NAMES[geom.frame]
    ax.coords[0].set_axislabel(f"{lon_name} (deg)")
    ax.coords[1].set_axislabel(f"{lat_name} (deg)")
    ax.coords[0].set_major_formatter("d.d")
    ax.coords[1].set_major_formatter("d.d")


def label(da: xr.DataArray, default: str = "") -> str:
    """'long_name (units)' of a DataArray (its name when it has no long_name)."""
    name = da.attrs.get("long_name") or (str(da.name) if da.name is not None else default)
    units = da.attrs.get("units")
    return f"{name} ({units})" if units and units not in ("1", "") else name


def imshow(ax, img, cmap, stretch, vmin, vmax, symmetric, **kwargs):
    """``ax.imshow`` with gcxr's orientation (origin lower) and an astropy stretch."""
    from astropy.visualization import simple_norm  # deferred: heavy import
    finite = img[np.isfinite(img)]
    if symmetric:
        v = vmax if vmax is not None else (float(np.nanmax(np.abs(finite))) if finite.size else 1.0) or 1.0
        vmin, vmax = -v, v
    if stretch == "linear":
        from matplotlib.colors import Normalize  # deferred: heavy import
        norm = Normalize(vmin=vmin, vmax=vmax)
    else:
        data = finite if finite.size else np.zeros(1)
        norm = simple_norm(data, stretch=stretch, vmin=vmin, vmax=vmax)
    return ax.imshow(img, origin="lower", cmap=cmap, norm=norm, interpolation="nearest", **kwargs)
