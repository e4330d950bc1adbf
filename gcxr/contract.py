"""The dataset contract: what a gcxr dataset is, checked and read in one place.

Every reduced dataset gcxr makes or reads (a run from :func:`gcxr.reduce.reduce_run`, a stack
from :func:`gcxr.datasets.stack`, a file from :func:`gcxr.io.read_datasets` or
:func:`gcxr.io.read_gammapy_dataset`) is an ``xarray.Dataset`` with the variables of
:data:`VARIABLES` on the coordinates of :func:`coords_of`, and the attributes of
:data:`ATTRS`.  The other modules build and read datasets through this module:

* :data:`VARIABLES` -- name, dims, dtype, units and long name of each variable, and whether it is
  required; :func:`make_variable` builds one with its attributes;
* :func:`coords_of`, :func:`run_coords`, :func:`grid_coords` -- the coordinates of a grid, of a
  run's cutout of it, and of the full analysis grid;
* :func:`grid_mapping` / :func:`geom_from_dataset` -- the ``sky_wcs`` variables that keep a grid
  exactly;
* :func:`validate`, :func:`frame_of`, :func:`geom_of` -- check a dataset, read its sky frame, and
  its sky and IRF grids;
* a **joint set** (several runs) is one dataset with a leading ``obs`` dim, each run padded onto
  the full grid (zero, and mask False, outside its cutout), with the cutout's index ranges in
  ``cutout_lat``/``cutout_lon``/``cutout_lat_irf``/``cutout_lon_irf``: :func:`join_runs` makes it
  (the netCDF writer writes exactly this layout), :func:`split_runs` restores the run datasets,
  :func:`as_runs` gives the list of datasets that :func:`gcxr.fit.fit` and
  :func:`gcxr.datasets.stack` work on, whatever form they were given in.

The public entries that take datasets from a user hold them to the contract once, on entry:
the readers (:func:`gcxr.io.read_datasets`, :func:`gcxr.io.read_gammapy_dataset`, and so
:meth:`gcxr.analysis.Analysis.read_datasets` and ``gcxr run --datasets``), :func:`gcxr.datasets.stack`
and :func:`split_runs`; the error names the file or run and the variable.

The module is ``contract`` rather than ``dataset``: ``gcxr.dataset`` beside ``gcxr.datasets``
(stacking and summaries) would be one letter from it, and the two would be confused in every
import.

``validate`` checks: the required variables (``counts``, ``exposure``, ``mask_safe``); the
dims of every known variable, in order (with a leading ``obs`` in a joint set), its dtype kind
and, where the variable has a ``units`` attribute, the unit; a 1-D coordinate for every dim a
known variable uses, and the CF bounds of the energy axes; the sky frame (:func:`frame_of`: the ``frame``
attribute, one of :data:`gcxr.geom.FRAMES`, agreeing with the ``lon`` coordinate's long name).  Variables it does not know are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from .geom import COORD_LONG_NAMES, FRAMES, SkyGeom

__all__ = ["Variable", "VARIABLES", "ATTRS", "OBS_VARIABLES", "DatasetError", "make_variable", "coords_of",
           "run_coords", "grid_coords", "grid_mapping", "geom_from_dataset", "validate", "frame_of", "geom_of",
           "run_offsets", "join_runs", "split_runs", "obs_cutout", "as_runs"]


class DatasetError(ValueError):
    """A dataset that breaks the contract; the message names the variable, dim or attribute."""


@dataclass(frozen=True)
class Variable:
    """One variable of a reduced dataset.

    Parameters
    ----------
    dims : tuple of str
        The dims, in order (a joint set adds a leading ``obs``).
    dtype : str
        The dtype gcxr's per-run reduction makes.
    kinds : str
        The numpy dtype kinds accepted (``"f"`` float, ``"iu"`` integer, ``"b"`` bool).
    units : str or None
        The ``units`` attribute (None: none, e.g. a mask).
    long_name : str
        The ``long_name`` attribute.
    required : bool
        Every dataset has it.
    alt_dims : tuple of tuple of str
        Other accepted dim orders (e.g. an energy-only fit mask).
    """

    dims: tuple[str, ...]
    dtype: str
    kinds: str
    units: str | None
    long_name: str
    required: bool = False
    alt_dims: tuple[tuple[str, ...], ...] = ()

    @property
    def attrs(self) -> dict:
        """The attributes gcxr writes on the variable."""
        return ({"units": self.units} if self.units is not None else {}) | {"long_name": self.long_name}


_CUBE = ("energy", "lat", "lon")
_TRUE_CUBE = ("energy_true", "lat", "lon")

#: every variable of a reduced dataset (run, stacked, or read from a file)
VARIABLES: dict[str, Variable] = {
    "counts": Variable(_CUBE, "int32", "iuf", "1", "Counts", required=True),
    "exposure": Variable(_TRUE_CUBE, "float64", "f", "m2 s", "Exposure", required=True),
    "background": Variable(_CUBE, "float64", "f", "1", "Predicted background counts"),
    "mask_safe": Variable(_CUBE, "bool", "b", None, "Safe data range mask", required=True),
    "mask_fit": Variable(_CUBE, "bool", "b", None, "Fit mask", alt_dims=(("energy",), ("lat", "lon"))),
    "psf": Variable(("energy_true", "rad", "lat_irf", "lon_irf"), "float64", "f", "sr-1", "PSF dP/dOmega"),
    "edisp": Variable(("energy_true", "energy", "lat_irf", "lon_irf"), "float64", "f", "1",
                      "Energy redistribution probability (true -> reco bin)"),
    "exposure_irf": Variable(("energy_true", "lat_irf", "lon_irf"), "float64", "f", "m2 s",
                             "Exposure on the IRF grid"),
    "exposure_edisp": Variable(("energy_true", "lat_irf", "lon_irf"), "float64", "f", "m2 s",
                               "Exposure on the IRF grid (EDISP stacking weight)"),
    "mask_safe_psf": Variable(("lat_irf", "lon_irf"), "bool", "b", None,
                              "Safe mask on the IRF grid (PSF stacking weight)"),
    "mask_safe_edisp": Variable(("energy", "lat_irf", "lon_irf"), "bool", "b", None,
                                "Safe mask on the IRF grid per reco-energy bin (EDISP stacking weight)"),
    "background_norm": Variable((), "float64", "f", "1", "FoV background norm applied to the template "
                                "(datasets.background.method: fov_background)"),
    "livetime": Variable((), "float64", "f", "s", "Livetime (GTI x DEADC)"),
    "ontime": Variable((), "float64", "f", "s", "Ontime (sum of GTIs)"),
    "gti_start": Variable(("gti",), "float64", "f", "s", "GTI start"),
    "gti_stop": Variable(("gti",), "float64", "f", "s", "GTI stop"),
    "sky_wcs": Variable((), "int32", "iu", None, "FITS WCS of the sky grid (plate carree, CRVAL2 = 0)"),
    "sky_wcs_irf": Variable((), "int32", "iu", None, "FITS WCS of the sky grid (plate carree, CRVAL2 = 0)"),
}

#: the per-run variables of a joint set (besides the padded cubes and the per-run scalars)
OBS_VARIABLES: dict[str, Variable] = {
    "ra_pnt": Variable(("obs",), "float64", "f", "degree", "Pointing RA"),
    "dec_pnt": Variable(("obs",), "float64", "f", "degree", "Pointing Dec"),
    "dataset_name": Variable(("obs",), "str", "OUS", None, "Dataset name"),
    **{f"cutout_{d}": Variable(("obs", "bnds"), "int32", "iu", None,
                               f"Run cutout along {d}: [start, stop) index into the grid")
       for d in ("lat", "lon", "lat_irf", "lon_irf")},
}

#: dataset attributes: name -> (who has it, meaning)
ATTRS: dict[str, tuple[str, str]] = {
    "frame": ("every dataset (required)", "sky frame of lon/lat: 'galactic' or 'icrs'"),
    "name": ("stacked, read, analysis runs", "dataset name (models' datasets_names refer to it)"),
    "obs_id": ("run", "the run's OBS_ID"),
    "obs_ids": ("stacked", "OBS_IDs of the stacked runs"),
    "ra_pnt": ("run", "pointing RA (deg)"),
    "dec_pnt": ("run", "pointing Dec (deg)"),
    "slice_lat": ("run", "[start, stop) of the run's cutout in the grid's lat index"),
    "slice_lon": ("run", "[start, stop) of the run's cutout in the grid's lon index"),
    "n_events": ("run", "events in the run's file"),
    "n_events_binned": ("run", "events inside the cutout and energy range"),
    "source_file": ("gammapy file", "the MapDataset file read"),
    "gammapy_meta_table": ("gammapy file", "the META_TABLE, as JSON"),
}

SKY_DIMS = ("lat", "lon", "lat_irf", "lon_irf")
_GRID_MAPPINGS = ("sky_wcs", "sky_wcs_irf")
_DEG = ("degree", "deg")
_COORD_UNITS = {"energy": ("TeV",), "energy_true": ("TeV",), "lon": _DEG, "lat": _DEG, "lon_irf": _DEG,
                "lat_irf": _DEG, "rad": _DEG}


def make_variable(name: str, data, **attrs) -> xr.Variable:
    """The variable ``name`` of :data:`VARIABLES` on ``data``, with its dims and attributes.

    Parameters
    ----------
    name : str
        A key of :data:`VARIABLES`.
    data : array-like
        The values, shaped as the variable's dims.
    **attrs
        Attributes added to (or replacing) the contract's ``units`` and ``long_name``.

    Returns
    -------
    xarray.Variable
        The variable.
    """
    v = VARIABLES[name]
    return xr.Variable(v.dims, data, v.attrs | attrs)


# --------------------------------------------------------------------------- coordinates
def coords_of(energy, energy_true, geom: SkyGeom, irf_geom: SkyGeom | None = None, rad_edges=None,
              slices: tuple[slice, slice] | None = None, irf_slices: tuple[slice, slice] | None = None) -> dict:
    """The coordinates of a dataset on ``geom`` (cut to ``slices``), with CF bounds.

    Parameters
    ----------
    energy, energy_true : EnergyAxis or None
        The reco and true energy axes (None: the dataset has no such axis).
    geom : SkyGeom
        The sky grid (``lon``, ``lat``).
    irf_geom : SkyGeom, optional
        The coarse IRF grid (``lon_irf``, ``lat_irf``).
    rad_edges : array-like, optional
        Edges of the PSF's radial bins (deg): ``rad`` and ``rad_bounds``.
    slices, irf_slices : tuple of slice, optional
        (rows, columns) of a cutout of each grid (default: the whole grid).  The labels are the
        grid's own, sliced, so that a cutout's labels are found exactly in the full grid.

    Returns
    -------
    dict
        name -> ``xarray.Variable``.
    """
    c = {}
    for axis in (energy, energy_true):
        if axis is not None:
            c.update(axis.coords())
            c[f"{axis.name}_bounds"] = axis.bounds().variable
    for g, sl, suffix in ((geom, slices, ""), (irf_geom, irf_slices, "_irf")):
        if g is None:
            continue
        ys, xs = sl if sl is not None else (slice(None), slice(None))
        gc = g.coords()
        c[f"lon{suffix}"] = xr.Variable(f"lon{suffix}", gc["lon"].values[xs], gc["lon"].attrs)
        c[f"lat{suffix}"] = xr.Variable(f"lat{suffix}", gc["lat"].values[ys], gc["lat"].attrs)
    if rad_edges is not None:
        r = np.asarray(rad_edges, float)
        c["rad"] = xr.Variable("rad", 0.5 * (r[:-1] + r[1:]), {"units": "degree", "long_name": "Offset from source",
                                                             "bounds": "rad_bounds"})
        c["rad_bounds"] = xr.Variable(("rad", "bnds"), np.stack([r[:-1], r[1:]], -1), {"units": "degree"})
    return c


def run_coords(spec, layout) -> dict:
    """The coordinates of a run dataset: its cutout of the analysis grid, and the scalar ``obs``.

    Parameters
    ----------
    spec : ReductionSpec
        The analysis grid, IRF grid, energy axes and radial bins.
    layout : RunLayout
        The run's cutout (``slices``, ``irf_slices``) and ``obs_id``.

    Returns
    -------
    dict
        name -> ``xarray.Variable``.
    """
    c = coords_of(spec.energy, spec.energy_true, spec.geom, spec.irf_geom, spec.rad_edges,
                  layout.slices, layout.irf_slices)
    c["obs"] = xr.Variable((), layout.obs_id)
    return c


def grid_coords(spec) -> dict:
    """The coordinates of the full analysis grid (a stacked dataset's, a joint set's but ``obs``).

    Parameters
    ----------
    spec : ReductionSpec
        The analysis grid, IRF grid, energy axes and radial bins.

    Returns
    -------
    dict
        name -> ``xarray.Variable``.
    """
    return coords_of(spec.energy, spec.energy_true, spec.geom, spec.irf_geom, spec.rad_edges)


def grid_mapping(name: str, geom: SkyGeom) -> xr.DataArray:
    """The CF grid-mapping variable ``sky_wcs`` (or ``sky_wcs_irf``) that keeps ``geom`` exactly.

    Parameters
    ----------
    name : str
        ``"sky_wcs"`` or ``"sky_wcs_irf"``.
    geom : SkyGeom
        The grid.

    Returns
    -------
    xarray.DataArray
        A scalar with the FITS header and the :meth:`SkyGeom.to_attrs` parameters (``geom_*``).
    """
    attrs = {"fits_header": geom.to_header_string(), "grid_mapping_name": "fits_wcs",
             "long_name": VARIABLES["sky_wcs"].long_name}
    attrs.update({f"geom_{k}": v for k, v in geom.to_attrs().items()})
    return xr.DataArray(np.int32(0), attrs=attrs, name=name)


def geom_from_dataset(ds: xr.Dataset, var: str = "sky_wcs") -> SkyGeom:
    """The exact sky grid stored on a ``sky_wcs`` (or ``sky_wcs_irf``) variable (:func:`grid_mapping`).

    Parameters
    ----------
    ds : xarray.Dataset
        A dataset written by gcxr.
    var : str
        The grid-mapping variable.

    Returns
    -------
    SkyGeom
        The grid.
    """
    attrs = {k[len("geom_"):]: v for k, v in ds[var].attrs.items() if k.startswith("geom_")}
    return SkyGeom.from_attrs(attrs)


# --------------------------------------------------------------------------- reading the contract
def _label(ds) -> str:
    name = ds.attrs.get("name") or ds.attrs.get("obs_id")
    return f"dataset {str(name)!r}" if name is not None else "dataset"


def frame_of(obj: xr.Dataset | xr.DataArray) -> str:
    """The sky frame of a dataset (or of a variable taken from one).

    One rule: the ``frame`` attribute; without it, the frame whose ``lon`` long name
    (:data:`gcxr.geom.COORD_LONG_NAMES`, as :meth:`gcxr.geom.SkyGeom.coords` writes it) the
    ``lon`` coordinate carries exactly; else an error.  No frame is assumed.

    Parameters
    ----------
    obj : xarray.Dataset or xarray.DataArray
        A gcxr dataset, or an array carrying the dataset's ``frame`` attribute.

    Returns
    -------
    str
        ``"galactic"`` or ``"icrs"``.

    Raises
    ------
    DatasetError
        No ``frame`` attribute, or one gcxr does not know.

    Examples
    --------
    >>> frame_of(xr.Dataset(attrs={"frame": "icrs"}))
    'icrs'
    """
    frame = obj.attrs.get("frame")
    lon_name = obj["lon"].attrs.get("long_name") if "lon" in obj.coords else None
    by_coord = [f for f, (ln, _) in COORD_LONG_NAMES.items() if ln == lon_name]
    if frame is None or frame == "":
        if by_coord:
            return by_coord[0]
        raise DatasetError(f"{_label(obj)}: no 'frame' attribute; gcxr datasets record the sky frame of lon/lat "
                           f"in attrs['frame'] (one of {sorted(FRAMES)})")
    frame = str(frame)
    if frame not in FRAMES:
        raise DatasetError(f"{_label(obj)}: attribute 'frame' is {frame!r}; frame must be one of {sorted(FRAMES)}")
    if by_coord and by_coord[0] != frame:
        raise DatasetError(f"{_label(obj)}: attribute 'frame' is {frame!r} but the lon coordinate is "
                           f"{lon_name!r} ({by_coord[0]})")
    return frame


def geom_of(ds: xr.Dataset) -> tuple[SkyGeom, SkyGeom | None]:
    """The sky grid and the IRF grid of a dataset, rebuilt from its coordinates and frame.

    Parameters
    ----------
    ds : xarray.Dataset
        A reduced dataset (run, stacked or joint).

    Returns
    -------
    tuple
        ``(geom, irf_geom)``: :class:`gcxr.geom.SkyGeom` of ``lon``/``lat``, and of
        ``lon_irf``/``lat_irf`` (None if the dataset has no IRF grid).
    """
    frame = frame_of(ds)
    geom = SkyGeom.from_coords(ds, frame)
    irf = None
    if "lon_irf" in ds.coords and "lat_irf" in ds.coords:
        irf = SkyGeom.from_coords(xr.Dataset(coords={"lon": ds["lon_irf"].values, "lat": ds["lat_irf"].values}),
                                  frame)
    return geom, irf


def validate(ds: xr.Dataset) -> xr.Dataset:
    """Check that ``ds`` is a gcxr dataset (run, stacked, read from a file, or a joint set along ``obs``).

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset.

    Returns
    -------
    xarray.Dataset
        ``ds`` itself.

    Raises
    ------
    DatasetError
        Naming the first variable, dim, coordinate or attribute that breaks the contract (see
        the module docstring for what is checked).
    """
    if not isinstance(ds, xr.Dataset):
        raise DatasetError(f"expected an xarray.Dataset, got {type(ds).__name__}")
    where = _label(ds)
    missing = [k for k, v in VARIABLES.items() if v.required and k not in ds.data_vars]
    if missing:      # first: a file that is no gcxr dataset at all is told so, not that it lacks a frame
        raise DatasetError(f"{where}: required variable(s) {missing} missing (has {sorted(map(str, ds.data_vars))})")
    frame_of(ds)
    joint = "obs" in ds.dims
    used = set()
    for name, spec in VARIABLES.items():
        if name not in ds.variables:
            continue
        var = ds[name]
        lead = ("obs",) if joint and name not in _GRID_MAPPINGS else ()     # one grid for all runs
        allowed = [lead + d for d in (spec.dims,) + spec.alt_dims]
        if var.dims not in allowed:
            raise DatasetError(f"{where}: variable {name!r} has dims {var.dims}; the contract wants "
                               f"{' or '.join(map(str, allowed))}")
        if var.dtype.kind not in spec.kinds:
            raise DatasetError(f"{where}: variable {name!r} has dtype {var.dtype}; the contract wants "
                               f"{spec.dtype} (kind {spec.kinds!r})")
        unit = var.attrs.get("units")
        if unit is not None and spec.units is not None and str(unit) != spec.units:
            raise DatasetError(f"{where}: variable {name!r} has units {unit!r}; the contract wants {spec.units!r}")
        used.update(var.dims)
    for dim in sorted(used - {"obs", "bnds", "gti"}):
        if dim not in ds.coords or ds[dim].dims != (dim,):
            raise DatasetError(f"{where}: dim {dim!r} has no 1-D coordinate {dim!r}")
        unit = ds[dim].attrs.get("units")
        if unit is not None and dim in _COORD_UNITS and str(unit) not in _COORD_UNITS[dim]:
            raise DatasetError(f"{where}: coordinate {dim!r} has units {unit!r}; the contract wants "
                               f"{_COORD_UNITS[dim][0]!r}")
    for axis in ("energy", "energy_true"):
        if axis in used:
            b = f"{axis}_bounds"
            if b not in ds.variables or ds[b].dims != (axis, "bnds"):
                raise DatasetError(f"{where}: coordinate {axis!r} needs its CF bounds {b!r} on ({axis!r}, 'bnds')")
    if joint:
        if "obs" not in ds.coords:
            raise DatasetError(f"{where}: a joint set needs an 'obs' coordinate (the runs' OBS_IDs)")
        for name, spec in OBS_VARIABLES.items():
            if name in ds.variables and ds[name].dims != spec.dims:
                raise DatasetError(f"{where}: variable {name!r} has dims {ds[name].dims}; the contract wants "
                                   f"{spec.dims}")
    for key in ("slice_lat", "slice_lon"):
        if key in ds.attrs and np.size(ds.attrs[key]) != 2:
            raise DatasetError(f"{where}: attribute {key!r} is {ds.attrs[key]!r}; the contract wants [start, stop]")
    return ds


# --------------------------------------------------------------------------- joint sets
def run_offsets(ds: xr.Dataset, grid: xr.Dataset) -> dict[str, slice]:
    """Where a run's cutout sits in the full grid, found by its coordinate labels.

    Parameters
    ----------
    ds : xarray.Dataset
        A run dataset.
    grid : xarray.Dataset
        Holds the full grid's coordinates (:func:`grid_coords`).

    Returns
    -------
    dict
        ``{"lat": slice, "lon": slice, "lat_irf": slice, "lon_irf": slice}``.
    """
    out = {}
    for d in SKY_DIMS:
        start = int(grid.get_index(d).get_loc(float(ds[d].values[0])))
        out[d] = slice(start, start + ds.sizes[d])
    return out


def obs_cutout(ds: xr.Dataset, i: int) -> dict[str, slice]:
    """The cutout of run ``i`` of a joint set, as its ``cutout_*`` variables record it.

    Parameters
    ----------
    ds : xarray.Dataset
        A joint set (:func:`join_runs`, or a runs file read back).
    i : int
        The run's position along ``obs``.

    Returns
    -------
    dict
        dim -> slice for the sky dims recorded (empty for files written before cutouts were).
    """
    return {d: slice(*(int(x) for x in np.asarray(ds[f"cutout_{d}"].values[i]))) for d in SKY_DIMS
            if f"cutout_{d}" in ds.variables}


def join_runs(runs: list[xr.Dataset], spec, data: bool = True) -> xr.Dataset:
    """Run datasets as one joint set: each padded onto the full grid along a leading ``obs`` dim.

    The inverse of :func:`split_runs`.  Outside its cutout a run is zero (mask False); the cutout
    is recorded in ``cutout_lat``/``cutout_lon``/``cutout_lat_irf``/``cutout_lon_irf`` ([start,
    stop) per run), the name in ``dataset_name``, the pointing in ``ra_pnt``/``dec_pnt``, and
    each scalar (``livetime``, ``ontime``, ``background_norm``) becomes one value per run; the
    grids are kept exactly in ``sky_wcs``/``sky_wcs_irf`` (:func:`grid_mapping`).

    Parameters
    ----------
    runs : list of xarray.Dataset
        Run datasets on their cutouts of the grid of ``spec``, with the same variables.
    spec : ReductionSpec
        The full analysis grid.
    data : bool
        Fill the cubes (numpy); with False they are lazy dask zeros: the layout only, which
        :func:`gcxr.io.write_datasets` writes and then fills one run plane at a time.

    Returns
    -------
    xarray.Dataset
        The joint set.
    """
    if not runs:
        raise DatasetError("join_runs: no runs")
    grid = xr.Dataset(coords=grid_coords(spec))
    first = runs[0]
    cubes = [v for v in first.data_vars if first[v].ndim > 0]
    scalars = [v for v in first.data_vars if first[v].ndim == 0 and v not in _GRID_MAPPINGS]
    offsets = [run_offsets(d, grid) for d in runs]
    n = len(runs)
    out = xr.Dataset(coords=grid.coords)
    for v in cubes:
        dims = first[v].dims
        shape = (n,) + tuple(grid.sizes[d] if d in grid.sizes else first.sizes[d] for d in dims)
        if data:
            arr = np.zeros(shape, first[v].dtype)
            for i, (d, off) in enumerate(zip(runs, offsets)):
                arr[(i,) + tuple(off.get(dd, slice(None)) for dd in dims)] = np.asarray(d[v].values)
        else:
            import dask.array as dsa  # deferred: heavy import (dask)
            arr = dsa.zeros(shape, dtype=first[v].dtype, chunks=shape)
        out[v] = xr.Variable(("obs",) + dims, arr, dict(first[v].attrs))
    out = out.assign_coords(obs=("obs", [int(d.attrs["obs_id"]) for d in runs]))
    for v in scalars:
        out[v] = ("obs", [float(d[v]) for d in runs], dict(first[v].attrs))
    for k in ("ra_pnt", "dec_pnt"):
        out[k] = ("obs", [float(d.attrs[k]) for d in runs], OBS_VARIABLES[k].attrs)
    out["dataset_name"] = ("obs", [str(d.attrs.get("name", f"obs-{d.attrs['obs_id']}")) for d in runs],
                           OBS_VARIABLES["dataset_name"].attrs)
    for d in SKY_DIMS:
        out[f"cutout_{d}"] = (("obs", "bnds"), np.array([[o[d].start, o[d].stop] for o in offsets], "int32"),
                              {"long_name": OBS_VARIABLES[f"cutout_{d}"].long_name})
    out["sky_wcs"] = grid_mapping("sky_wcs", spec.geom)
    out["sky_wcs_irf"] = grid_mapping("sky_wcs_irf", spec.irf_geom)
    out.attrs = {"frame": frame_of(first), "name": "runs"}
    return out


def split_runs(ds: xr.Dataset) -> list[xr.Dataset]:
    """The run datasets of a joint set (an ``obs`` dim), each back on its own cutout.

    The inverse of :func:`join_runs`: the padding is dropped by the recorded ``cutout_*``
    index ranges.

    Parameters
    ----------
    ds : xarray.Dataset
        A joint set: :func:`join_runs`, or :func:`gcxr.io.read_datasets` of a file that
        :func:`gcxr.io.write_datasets` wrote from a list of run datasets.

    Returns
    -------
    list of xarray.Dataset
        One dataset per run, with the variables, coordinates and attributes (``obs_id``,
        ``name``, ``ra_pnt``, ``dec_pnt``, ``frame``, ``slice_lat``, ``slice_lon``) of gcxr's
        per-run reduction, cut to the run's cutout.  Files written before cutouts were recorded
        give runs on the full grid (zero and masked outside their cutout), which fit to the same
        statistic.
    """
    if "obs" not in ds.dims:
        raise DatasetError("split_runs: the dataset has no 'obs' dim (a stacked dataset is one dataset)")
    validate(ds)
    frame = frame_of(ds)
    out = []
    for i, obs_id in enumerate(np.asarray(ds["obs"].values).tolist()):
        cut = obs_cutout(ds, i)
        run = ds.isel(obs=i).isel(cut)
        name = str(run["dataset_name"].values) if "dataset_name" in run else f"obs-{obs_id}"
        attrs = {"obs_id": int(obs_id), "name": name, "frame": frame}
        for k in ("ra_pnt", "dec_pnt"):
            if k in run:
                attrs[k] = float(run[k].values)
        if "lat" in cut:
            attrs["slice_lat"] = [cut["lat"].start, cut["lat"].stop]
            attrs["slice_lon"] = [cut["lon"].start, cut["lon"].stop]
        run = run.drop_vars([v for v in OBS_VARIABLES if v in run.variables])
        run.attrs = attrs
        out.append(run)
    return out


def as_runs(datasets, where: str = "") -> list[xr.Dataset]:
    """The list of datasets a fit or a stack works on, from any form of a set, each held to the
    contract (:func:`validate`; a joint set is validated as it is split).

    Parameters
    ----------
    datasets : xarray.Dataset or list of xarray.Dataset
        A joint set (an ``obs`` dim: split with :func:`split_runs`), one dataset, or a list.
    where : str, optional
        The caller, for the error message (``"stack"``: "stack: run 1 of 2: ...").

    Returns
    -------
    list of xarray.Dataset
        The datasets.

    Raises
    ------
    DatasetError
        Naming the run (its position in the list), and the variable, dim or attribute.
    """
    if isinstance(datasets, xr.Dataset) and "obs" in datasets.dims:
        return split_runs(datasets)
    runs = [datasets] if isinstance(datasets, xr.Dataset) else list(datasets)
    for i, ds in enumerate(runs):
        try:
            validate(ds)
        except DatasetError as exc:
            prefix = f"{where}: " if where else ""
            raise DatasetError(f"{prefix}run {i} of {len(runs)}: {exc}") from None
    return runs
