"""netCDF (CF) and JSON/YAML output, always written atomically.

``datasets.nc`` layout: variables ``counts``, ``background``, ``mask_safe`` on
(energy, lat, lon), ``exposure`` on (energy_true, lat, lon), ``psf`` on
(energy_true, rad, lat_irf, lon_irf), ``edisp`` on (energy_true, energy,
lat_irf, lon_irf); with several runs a leading ``obs`` dim (each run placed on
the full grid, zero and mask 0 outside its cutout).  Masks are int8 with
``flag_values``/``flag_meanings``; energies are log bin centres in TeV with CF
``bounds``; the sky grids' FITS WCS headers are kept on the scalar variables
``sky_wcs`` and ``sky_wcs_irf`` (CF grid-mapping pattern), together with the
parameters needed to rebuild :class:`gcxr.geom.SkyGeom` exactly.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from .geom import SkyGeom

__all__ = ["atomic_path", "write_json", "write_datasets", "read_datasets", "NETCDF_ENGINE"]

NETCDF_ENGINE = "netcdf4"
_MASKS = ("mask_safe", "mask_fit", "mask_safe_psf", "mask_safe_edisp")


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = True):
    """Yield a temporary path next to ``path``; move it into place only on success."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(obj, path: str | Path) -> Path:
    def default(o):
        if isinstance(o, (np.floating, np.integer)):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"not JSON serialisable: {type(o)}")
    text = json.dumps(obj, indent=1, default=default, allow_nan=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def _grid_mapping(name: str, geom: SkyGeom) -> xr.DataArray:
    attrs = {"fits_header": geom.to_header_string(), "grid_mapping_name": "fits_wcs",
             "long_name": "FITS WCS of the sky grid (plate carree, CRVAL2 = 0)"}
    attrs.update({f"geom_{k}": v for k, v in geom.to_attrs().items()})
    return xr.DataArray(np.int32(0), attrs=attrs, name=name)


def _encode(ds: xr.Dataset, spec_geom: SkyGeom | None, irf_geom: SkyGeom | None) -> xr.Dataset:
    ds = ds.copy()
    for m in _MASKS:
        if m in ds:
            attrs = dict(ds[m].attrs)
            ds[m] = ds[m].astype("int8")
            ds[m].attrs = attrs | {"flag_values": np.array([0, 1], dtype="int8"),
                                   "flag_meanings": "excluded included"}
    if spec_geom is not None:
        ds["sky_wcs"] = _grid_mapping("sky_wcs", spec_geom)
    if irf_geom is not None:
        ds["sky_wcs_irf"] = _grid_mapping("sky_wcs_irf", irf_geom)
    for v in ds.data_vars:
        dims = ds[v].dims
        if "lon" in dims:
            ds[v].attrs["grid_mapping"] = "sky_wcs"
        elif "lon_irf" in dims:
            ds[v].attrs["grid_mapping"] = "sky_wcs_irf"
    for k, v in list(ds.attrs.items()):
        if isinstance(v, (list, tuple)):
            ds.attrs[k] = np.asarray(v)
        elif isinstance(v, dict):
            ds.attrs[k] = json.dumps(v)
        elif isinstance(v, bool):
            ds.attrs[k] = int(v)
    ds.attrs.setdefault("Conventions", "CF-1.10")
    ds.attrs.setdefault("title", "gcxr reduced dataset")
    return ds


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for v in ds.data_vars:
        var = ds[v]
        if var.ndim >= 2:
            chunks = tuple(1 if d in ("obs", "energy", "energy_true") and i < var.ndim - 2 else s
                           for i, (d, s) in enumerate(zip(var.dims, var.shape)))
            enc[v] = {"zlib": True, "complevel": 4, "chunksizes": chunks}
    return enc


def write_datasets(datasets: xr.Dataset | list[xr.Dataset], path: str | Path, spec=None,
                   overwrite: bool = True) -> Path:
    """Write one stacked dataset, or several run datasets along ``obs``, to a CF netCDF file."""
    from .datasets import empty_like_grid
    if isinstance(datasets, xr.Dataset):
        ds = datasets.compute()
    else:
        if spec is None:
            raise ValueError("write_datasets: several runs need the ReductionSpec to place them on the grid")
        grid = empty_like_grid(spec)
        placed = []
        for d in datasets:
            d = d.compute()
            full = d.drop_vars(["livetime", "ontime"]).reindex(
                {k: grid[k] for k in ("lat", "lon", "lat_irf", "lon_irf")}, fill_value=0)
            for m in _MASKS:
                if m in full:
                    full[m] = full[m].astype(bool)
            full["livetime"] = d["livetime"]
            full["ontime"] = d["ontime"]
            full = full.expand_dims("obs")
            full = full.assign_coords(obs=[int(d.attrs["obs_id"])])
            for k in ("ra_pnt", "dec_pnt"):
                full[k] = ("obs", [float(d.attrs[k])], {"units": "degree"})
            full.attrs = {"frame": d.attrs.get("frame", "")}
            placed.append(full)
        ds = xr.concat(placed, dim="obs", data_vars="minimal", coords="minimal", compat="override")
        ds.attrs = {"frame": placed[0].attrs.get("frame", ""), "name": "runs"}
    geom = spec.geom if spec is not None else None
    irf = spec.irf_geom if spec is not None else None
    out = _encode(ds, geom, irf)
    with atomic_path(path, overwrite=overwrite) as tmp:
        out.to_netcdf(tmp, engine=NETCDF_ENGINE, encoding=_encoding(out))
    return Path(path)


def read_datasets(path: str | Path) -> xr.Dataset:
    """Read a file written by :func:`write_datasets`; masks come back as bool."""
    ds = xr.load_dataset(path, engine=NETCDF_ENGINE)
    for m in _MASKS:
        if m in ds:
            attrs = {k: v for k, v in ds[m].attrs.items() if k not in ("flag_values", "flag_meanings")}
            ds[m] = ds[m].astype(bool)
            ds[m].attrs = attrs
    return ds


def geom_from_dataset(ds: xr.Dataset, var: str = "sky_wcs") -> SkyGeom:
    attrs = {k[len("geom_"):]: v for k, v in ds[var].attrs.items() if k.startswith("geom_")}
    return SkyGeom.from_attrs(attrs)
