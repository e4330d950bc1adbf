"""netCDF (CF) and JSON/YAML output, always written atomically; gammapy ``MapDataset`` FITS
files through :func:`read_gammapy_dataset` / :func:`write_gammapy_dataset` (:mod:`gcxr.io_gammapy`).

``datasets.nc`` layout: variables ``counts``, ``background``, ``mask_safe`` on
(energy, lat, lon), ``exposure`` on (energy_true, lat, lon), ``psf`` on
(energy_true, rad, lat_irf, lon_irf), ``edisp`` on (energy_true, energy,
lat_irf, lon_irf); with several runs a leading ``obs`` dim (each run placed on
the full grid, zero and mask 0 outside its cutout; the cutout's index ranges
``cutout_lat``/``cutout_lon``/``cutout_lat_irf``/``cutout_lon_irf`` and the
``dataset_name`` per run let :func:`gcxr.contract.split_runs` restore the run datasets: the
layout is the joint set of :func:`gcxr.contract.join_runs`).  Masks are int8 with
``flag_values``/``flag_meanings``; energies are log bin centres in TeV with CF
``bounds``; the sky grids' FITS WCS headers are kept on the scalar variables
``sky_wcs`` and ``sky_wcs_irf`` (CF grid-mapping pattern), together with the
parameters needed to rebuild :class:`gcxr.geom.SkyGeom` exactly.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
import threading

import numpy as np
import xarray as xr

from ._atomic import atomic_path
from ._testhook import pause_point
from .cluster import assemble_parts, dataset_parts, default_client_or_none
from .contract import SKY_DIMS, DatasetError, geom_from_dataset, grid_mapping, join_runs, obs_cutout, split_runs, validate
from .geom import SkyGeom

__all__ = ["atomic_path", "write_json", "write_datasets", "read_datasets", "geom_from_dataset", "NETCDF_ENGINE",
           "fit_result_to_dataset", "fit_result_from_dataset", "write_fit_result", "read_fit_result",
           "read_gammapy_dataset", "write_gammapy_dataset", "split_runs"]

NETCDF_ENGINE = "netcdf4"
_MASKS = ("mask_safe", "mask_fit", "mask_safe_psf", "mask_safe_edisp")


def json_safe(obj):
    """``obj`` with numpy scalars and arrays as Python values and every NaN or infinity as None.

    Strict JSON has no NaN: ``result.json`` writes ``null`` where a number is undefined (e.g. the
    error of a parameter whose fit failed), so every JSON reader can load it.
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    return obj


def write_json(obj, path: str | Path) -> Path:
    """Write ``obj`` as strict JSON (NaN and infinities as ``null``, see :func:`json_safe`), atomically.

    Parameters
    ----------
    obj : object
        JSON-ready data.
    path : str or Path
        The file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    def default(o):
        raise TypeError(f"not JSON serialisable: {type(o)}")
    text = json.dumps(json_safe(obj), indent=1, default=default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return Path(path)


def _encode(ds: xr.Dataset, spec_geom: SkyGeom | None, irf_geom: SkyGeom | None) -> xr.Dataset:
    ds = ds.copy()
    if "counts" in ds and ds["counts"].dtype.kind == "f":      # counts are integers: stored exactly as int32
        attrs = dict(ds["counts"].attrs)
        ds["counts"] = ds["counts"].astype("int32")
        ds["counts"].attrs = attrs
    for m in _MASKS:
        if m in ds:
            attrs = dict(ds[m].attrs)
            ds[m] = ds[m].astype("int8")
            ds[m].attrs = attrs | {"flag_values": np.array([0, 1], dtype="int8"),
                                   "flag_meanings": "excluded included"}
    if spec_geom is not None:
        ds["sky_wcs"] = grid_mapping("sky_wcs", spec_geom)
    if irf_geom is not None:
        ds["sky_wcs_irf"] = grid_mapping("sky_wcs_irf", irf_geom)
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


def _encoding(ds: xr.Dataset, compress_floats: bool = False) -> dict:
    """One chunk per energy plane; zlib for counts and masks (integers compress well and fast),
    and for float cubes only if asked (they cost seconds to deflate and shrink little)."""
    enc = {}
    for v in ds.data_vars:
        var = ds[v]
        if var.ndim >= 2:
            chunks = tuple(1 if d in ("obs", "energy", "energy_true") and i < var.ndim - 2 else s
                           for i, (d, s) in enumerate(zip(var.dims, var.shape)))
            enc[v] = {"chunksizes": chunks}
            if var.dtype.kind in "iub" or compress_floats:
                enc[v].update({"zlib": True, "complevel": 1, "shuffle": True})

    return enc


def write_datasets(datasets: xr.Dataset | list[xr.Dataset], path: str | Path, spec=None,
                   overwrite: bool = True, compress_floats: bool = False) -> Path:
    """Write one stacked dataset, or several run datasets along ``obs``, to a CF netCDF file.

    Parameters
    ----------
    datasets : xarray.Dataset or list of xarray.Dataset
        A stacked dataset, or run datasets.
    path : str or Path
        The netCDF file.
    spec : ReductionSpec, optional
        Gives the full grid for run datasets.
    overwrite : bool
        Replace an existing file.
    compress_floats : bool
        Deflate the float cubes too.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    if isinstance(datasets, xr.Dataset):
        ds = datasets
    else:
        if spec is None:
            raise ValueError("write_datasets: several runs need the ReductionSpec to place them on the grid")
        return _write_runs(datasets, path, spec, overwrite, compress_floats)
    geom = spec.geom if spec is not None else None
    irf = spec.irf_geom if spec is not None else None
    out = _encode(ds, geom, irf)
    with atomic_path(path, overwrite=overwrite) as tmp, _small_chunk_cache():
        _to_netcdf(out, tmp, encoding=_encoding(out, compress_floats))
    return Path(path)


def _netcdf4_lock():
    """xarray's lock around netCDF-C/HDF5 calls (neither is thread-safe)."""
    try:
        from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK  # deferred: heavy import (netCDF4 backend)
        return NETCDF4_PYTHON_LOCK
    except ImportError:          # layout of xarray's internals changed: a lock of our own still serialises gcxr
        return threading.Lock()


def _to_netcdf(ds: xr.Dataset, path: str | Path, encoding: dict | None = None, data: bool = True) -> None:
    """``ds.to_netcdf(path, engine="netcdf4", encoding=encoding)``, without the scheduler query.

    ``Dataset.to_netcdf`` asks dask which scheduler is active, and that imports ``distributed``
    (~0.3 s of a ~2 s ``gcxr run``) even when nothing is dask-backed.  The same encoding and the
    same store are used here through xarray's public lower level (``NetCDF4DataStore`` +
    ``Dataset.dump_to_store``), so the file is the one ``to_netcdf`` writes.  Dask-backed
    variables are computed first with the synchronous scheduler; with ``data=False`` they are
    not written at all (the layout only, like ``to_netcdf(compute=False)``; the values are then
    written by the caller).
    """
    from xarray.backends import NetCDF4DataStore  # deferred: heavy import (netCDF4 backend)
    lazy = [v for v in ds.variables if ds[v].chunks is not None]
    if lazy and data:
        import dask  # deferred: heavy import (dask)
        ds = ds.compute(scheduler=dask.get)     # a callable scheduler: dask does not look for distributed
    store = NetCDF4DataStore.open(str(path), mode="w", format="NETCDF4", lock=_netcdf4_lock())
    try:
        pause_point(f"write:{_target_name(path)}")     # tests only: the file open, half-written (gcxr._testhook)
        ds.dump_to_store(store, encoding=encoding or {})    # dask-backed arrays are registered, never computed
    finally:
        store.close()


def _target_name(path: str | Path) -> str:
    """The final name of a file being written: ``.datasets.nc.k2x9.tmp`` (:func:`atomic_path`) -> ``datasets.nc``."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return name[1:].rsplit(".", 2)[0]
    return name


@contextmanager
def _small_chunk_cache(size: int = 2**18):
    """HDF5 keeps a chunk cache per variable (64 MB by default); cubes are written plane by plane."""
    import netCDF4  # deferred: heavy import (netCDF4)
    old = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size)
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*old)


#: sky tile (pixels per side) of the run cubes in a runs file: only the tiles a run's cutout
#: touches are written
RUN_TILE = 64


def _runs_in_memory(datasets: list[xr.Dataset], names: list[str]):
    """``(i, dataset in memory)`` for each run in order.  Runs kept on a cluster come straight
    from their persisted chunks (:func:`gcxr.cluster.dataset_parts`: no finalize task per run),
    the next one fetched in a thread while this one is written, so at most two are in memory."""
    def lazy(d):
        return any(getattr(d[v].data, "dask", None) is not None for v in names)
    client = default_client_or_none() if any(lazy(d) for d in datasets) else None
    if client is None:
        for i, d in enumerate(datasets):
            yield i, (d.compute() if lazy(d) else d)
        return
    from concurrent.futures import ThreadPoolExecutor  # deferred: only for runs kept on a cluster

    def fetch(d):
        if not lazy(d):
            return d
        parts = dataset_parts(d)
        if parts is None:                      # not (wholly) persisted: the graph runs
            return d.compute()
        skeleton, layout, futures = parts
        return assemble_parts(skeleton, layout, client.gather(futures))
    with ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(fetch, datasets[0]) if datasets else None
        for i in range(len(datasets)):
            cur = ahead.result()
            ahead = pool.submit(fetch, datasets[i + 1]) if i + 1 < len(datasets) else None
            yield i, cur


def _write_runs(datasets: list[xr.Dataset], path, spec, overwrite: bool, compress_floats: bool) -> Path:
    """Several runs on the full grid along ``obs``, each written into its own cutout only.

    The file layout (dims, coordinates, attributes, encodings) is made by xarray from a lazy
    zero-filled template.  The run cubes are stored in sky tiles (:data:`RUN_TILE` pixels) whose
    HDF5 fill value is 0, so the tiles outside a run's cutout are never written and read back
    as 0 (the ``_FillValue`` attribute is removed: a 0 is data, not missing).  Each run's cutout
    is then written with netCDF4, placed by its coordinate labels: the bytes written are the
    runs' own, not every run padded to the survey's grid (200 survey runs: ~10 GB of padded planes
    before).  Runs kept on a cluster are fetched one ahead of the one being written.
    """
    import netCDF4  # deferred: heavy import (netCDF4)
    tmpl = join_runs(datasets, spec, data=False)          # the joint set's layout, cubes lazy zeros
    names = [v for v in datasets[0].data_vars if datasets[0][v].ndim > 0]
    out = _encode(tmpl, spec.geom, spec.irf_geom)
    enc = _encoding(out, compress_floats)
    for v in names:
        if v in enc and "obs" in out[v].dims:
            dims = out[v].dims
            enc[v]["chunksizes"] = tuple(min(RUN_TILE, n) if d in SKY_DIMS else c
                                         for d, n, c in zip(dims, out[v].shape, enc[v]["chunksizes"]))
            enc[v]["_FillValue"] = 0
    with atomic_path(path, overwrite=overwrite) as tmp:
        _to_netcdf(out, tmp, encoding=enc, data=False)
        with netCDF4.Dataset(tmp, "a") as nc:
            for v in names:
                var = nc.variables[v]
                if "_FillValue" in var.ncattrs() and v in enc and enc[v].get("_FillValue") == 0:
                    var.delncattr("_FillValue")     # the HDF5 fill value (0) stays: unwritten tiles read 0
                var.set_auto_maskandscale(False)
            for i, d in _runs_in_memory(datasets, names):
                off = obs_cutout(tmpl, i)
                for v in names:
                    var = nc.variables[v]
                    data = np.asarray(d[v].values)
                    if data.dtype == bool:
                        data = data.astype("int8")
                    sl = tuple(off.get(dd, slice(None)) for dd in d[v].dims)
                    var[(i, *sl)] = data
    return Path(path)


def read_datasets(path: str | Path) -> xr.Dataset:
    """Read a file written by :func:`write_datasets`; masks come back as bool.

    The dataset is held to the contract (:func:`gcxr.contract.validate`) before it is returned.

    Parameters
    ----------
    path : str or Path
        The netCDF file.

    Returns
    -------
    xarray.Dataset
        The dataset(s): one stacked dataset, or a joint set of runs along ``obs``.

    Raises
    ------
    gcxr.contract.DatasetError
        The file holds no gcxr dataset, or one that breaks the contract; the message names the
        file and the variable, dim or attribute.
    """
    ds = xr.load_dataset(path, engine=NETCDF_ENGINE)
    for m in _MASKS:
        if m in ds:
            attrs = {k: v for k, v in ds[m].attrs.items() if k not in ("flag_values", "flag_meanings")}
            ds[m] = ds[m].astype(bool)
            ds[m].attrs = attrs
    try:
        validate(ds)                    # dims, dtypes, units, coordinates, frame: the contract
    except DatasetError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    return ds


# ---- fitted models and fit results -------------------------------------------------------------

def fit_result_to_dataset(result, models=None) -> xr.Dataset:
    """A fit result (and optionally the fitted models) as a CF-style ``xarray.Dataset``.

    One ``parameter`` dim over every parameter of the models (``model``, ``name``,
    ``unit`` as coordinates; ``value``, ``error``, ``frozen``), the covariance of
    the free ones on (``free_parameter``, ``free_parameter_b``), the scalars of the
    fit in attributes, and the models' YAML text (full float precision) in the
    ``models_yaml`` attribute so that the models can be rebuilt exactly.

    Parameters
    ----------
    result : FitResult
        The fit result.
    models : Models, optional
        The fitted models.
    """
    pars = result.parameters
    label = [f"{p['model']}.{p['name']}" for p in pars]
    n_free = len(result.names)
    cov = np.asarray(result.covariance, float).reshape(n_free, n_free)
    free_label = [lab for lab, p in zip(label, pars) if not p["frozen"]]
    if len(free_label) != n_free:
        free_label = list(result.names)
    ds = xr.Dataset(
        {"value": ("parameter", np.array([p["value"] for p in pars], float), {"long_name": "best-fit value"}),
         "error": ("parameter", np.array([p["error"] for p in pars], float),
                   {"long_name": "1-sigma error (HESSE)"}),
         "frozen": ("parameter", np.array([int(p["frozen"]) for p in pars], "int8"),
                    {"flag_values": np.array([0, 1], "int8"), "flag_meanings": "free frozen"}),
         "covariance": (("free_parameter", "free_parameter_b"), cov,
                        {"long_name": "covariance of the free parameters (in their units)"})},
        coords={"parameter": ("parameter", label),
                "model": ("parameter", [p["model"] for p in pars]),
                "name": ("parameter", [p["name"] for p in pars]),
                "unit": ("parameter", [p["unit"] or "" for p in pars]),
                "free_parameter": ("free_parameter", free_label),
                "free_parameter_b": ("free_parameter_b", free_label)},
        attrs={"Conventions": "CF-1.10", "title": "gcxr fit result",
               "success": int(bool(result.success)), "nfev": int(result.nfev),
               "total_stat": float(result.total_stat), "message": str(result.message),
               "edm": float(result.edm), "n_refresh": int(result.n_refresh),
               "statistic": "cash (gammapy definition, -2 ln L up to a data-only constant)"})
    if models is not None:
        ds.attrs["models_yaml"] = models.to_yaml(metadata=False)
    return ds


def fit_result_from_dataset(ds: xr.Dataset):
    """(FitResult, Models or None) from :func:`fit_result_to_dataset`'s layout.

    Parameters
    ----------
    ds : xarray.Dataset
        The layout of :func:`fit_result_to_dataset`.

    Returns
    -------
    tuple
        ``(FitResult, Models or None)``.
    """
    from .fit import FitResult  # deferred: keeps gcxr run --no-fit light (gcxr.fit, likelihood, models)
    for key in ("value", "error", "frozen", "covariance"):
        if key not in ds:
            raise ValueError(f"not a gcxr fit result: variable {key!r} is missing")
    for key in ("success", "nfev", "total_stat"):
        if key not in ds.attrs:
            raise ValueError(f"not a gcxr fit result: attribute {key!r} is missing")
    params = [{"model": str(m), "name": str(n), "value": float(v), "error": float(e), "unit": str(u),
               "frozen": bool(f)}
              for m, n, v, e, u, f in zip(ds["model"].values, ds["name"].values, ds["value"].values,
                                          ds["error"].values, ds["unit"].values, ds["frozen"].values)]
    result = FitResult(bool(ds.attrs["success"]), int(ds.attrs["nfev"]), float(ds.attrs["total_stat"]), params,
                       np.asarray(ds["covariance"].values, float), [str(x) for x in ds["free_parameter"].values],
                       str(ds.attrs.get("message", "")), float(ds.attrs.get("edm", np.nan)),
                       int(ds.attrs.get("n_refresh", 0)))
    models = None
    if "models_yaml" in ds.attrs:
        from .models import Models  # deferred: keeps gcxr run --no-fit light (pulls in gcxr.models)
        models = Models.from_yaml(str(ds.attrs["models_yaml"]))
        if result.covariance.size and np.all(np.isfinite(result.covariance)):
            try:
                models.parameters.set_covariance(models.parameters.free.unique_names, result.covariance)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"covariance does not match the models: {exc}") from None
    return result, models


def write_fit_result(result, path: str | Path, models=None, overwrite: bool = True) -> Path:
    """Write a fit result (parameters, errors, covariance, fitted models) to netCDF, atomically.

    Parameters
    ----------
    result : FitResult
        The fit result.
    path : str or Path
        The netCDF file.
    models : Models, optional
        The fitted models.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    ds = fit_result_to_dataset(result, models)
    with atomic_path(path, overwrite=overwrite) as tmp:
        _to_netcdf(ds, tmp)
    return Path(path)


def read_fit_result(path: str | Path):
    """(FitResult, Models or None) from a file written by :func:`write_fit_result`.

    Parameters
    ----------
    path : str or Path
        The netCDF file.

    Returns
    -------
    tuple
        ``(FitResult, Models or None)``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"fit result file not found: {path}")
    try:
        ds = xr.load_dataset(path, engine=NETCDF_ENGINE)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read as netCDF ({exc})") from None
    try:
        return fit_result_from_dataset(ds)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


_GAMMAPY = ("read_gammapy_dataset", "write_gammapy_dataset")


def __getattr__(name: str):
    """gammapy MapDataset FITS files: their own module (:mod:`gcxr.io_gammapy`), imported on first use."""
    if name in _GAMMAPY:
        from . import io_gammapy  # deferred: keeps gcxr.io free of astropy (gcxr.io_gammapy)
        return getattr(io_gammapy, name)
    raise AttributeError(f"module 'gcxr.io' has no attribute {name!r}")
