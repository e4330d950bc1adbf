"""The high-level analysis: config -> runs -> datasets -> fit -> results.

A thin orchestration of the modules below it, mirroring the reference
workflow's ``Analysis`` (``get_observations``, ``get_datasets``, models,
``run_fit``).  Datasets are built lazily (one dask task per run, a tree of
stacking tasks) and computed by ``get_datasets`` unless ``lazy=True``.
"""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from .background import read_exclusion_mask
from .config import AnalysisConfig, ConfigError
from .config.support import check_supported, flux_points_options, fov_options, safe_mask_options
from .datasets import check_fit_data, fit_mask, info, infos, prefetch_numbers, stack_runs
from .datastore import DataStore, DataStoreError, RunRef
from .geom import EnergyAxis, SkyGeom
from .reduce import ReductionSpec, reduce_run_lazy, run_layout

__all__ = ["Analysis", "spec_from_config", "read_obs_file", "select_time"]

log = logging.getLogger(__name__)


def _deg(q) -> float:
    return float(q.to_value("deg"))


def _tev(q) -> float:
    return float(q.to_value("TeV"))


def _safe_mask_number(params: dict, key: str, default: float, lo: float, hi: float, hi_included: bool = True) -> float:
    """``datasets.safe_mask.parameters.<key>`` as a float in (lo, hi] (or (lo, hi)), or a :class:`ConfigError`."""
    path = f"datasets.safe_mask.parameters.{key}"
    value = params.get(key, default)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError([(path, f"expected a number, got {value!r}")]) from None
    if not (lo < out <= hi if hi_included else lo < out < hi):
        raise ConfigError([(path, f"must be in ({lo:g}, {hi:g}{']' if hi_included else ')'}, got {out:g}")])
    return out


def spec_from_config(config: AnalysisConfig) -> ReductionSpec:
    """The reduction specification of a config's ``datasets`` section.

    Raises :class:`~gcxr.config.ConfigError` naming every key gcxr cannot honour
    (:func:`gcxr.config.support.check_supported`).

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    ReductionSpec
        The sky grid, energy axes, safe-mask and background settings.
    """
    check_supported(config)
    d = config.datasets
    w = d.geom.wcs
    frame = w.skydir.frame or "icrs"
    if w.skydir.lon is None or w.skydir.lat is None:
        raise ConfigError([("datasets.geom.wcs.skydir", "lon and lat are required")])
    try:
        geom = SkyGeom.create((_deg(w.skydir.lon), _deg(w.skydir.lat)), _deg(w.binsize),
                              (_deg(w.width.width), _deg(w.width.height)), frame)
    except ValueError as err:
        raise ConfigError([("datasets.geom.wcs", str(err))]) from None
    energy, energy_true = (_energy_axis(getattr(d.geom.axes, name), name) for name in ("energy", "energy_true"))
    safe = safe_mask_options(config)
    bkg = dict(background_method=d.background.method)
    if d.background.method == "fov_background":
        fov = fov_options(config)
        bkg.update(fov_min_counts=fov.min_counts, fov_min_npred_background=fov.min_npred_background)
        if d.background.exclusion is not None:
            bkg["exclusion"] = read_exclusion_mask(d.background.exclusion_path, geom)
    return ReductionSpec(geom=geom, energy=energy, energy_true=energy_true, binsz_irf=_deg(w.binsize_irf),
                         cutout_width=2 * _deg(d.geom.selection.offset_max),
                         safe_mask_methods=tuple(d.safe_mask.methods), offset_max=safe.offset_max,
                         aeff_percent=safe.aeff_percent, bias_percent=safe.bias_percent,
                         fixed_offset=safe.fixed_offset,
                         map_selection=tuple(d.map_selection), **bkg)


def _energy_axis(axis, name: str) -> EnergyAxis:
    """The energy axis of ``datasets.geom.axes.<name>``; ConfigError if incomplete."""
    missing = [k for k in ("min", "max", "nbins") if getattr(axis, k) is None]
    if missing:
        raise ConfigError([(f"datasets.geom.axes.{name}", f"{' and '.join(missing)} required for a 3d analysis")])
    try:
        return EnergyAxis.from_bounds(_tev(axis.min), _tev(axis.max), axis.nbins, name)
    except (ValueError, MemoryError) as exc:
        raise ConfigError([(f"datasets.geom.axes.{name}", str(exc))]) from None


def read_obs_file(path: Path, key: str = "observations.obs_file") -> list[int]:
    """Run ids from the first column of a text file, as gammapy reads ``obs_file``.

    gammapy reads it with ``Table.read(path, format="ascii", data_start=0)``: every
    line is data (no header), columns separated by blanks or commas; ``#`` starts a
    comment.

    Parameters
    ----------
    path : pathlib.Path
        The text file.
    key : str
        The config key, for error messages.

    Returns
    -------
    list of int
        The run ids.
    """
    from astropy.table import Table
    if not path.is_file():
        raise ConfigError([(key, f"file {str(path)!r} does not exist")])
    try:
        col = Table.read(path, format="ascii", data_start=0).columns[0]
        return [int(v) for v in col]
    except Exception as exc:
        raise ConfigError([(key, f"{str(path)!r}: cannot read run ids from its first column ({exc})")]) from None


def _time_windows(start, stop) -> list[tuple]:
    if start.ndim == 0:
        return [(start, stop)]
    return list(zip(start, stop))


def select_time(datastore: DataStore, ids: list[int], start, stop) -> list[int]:
    """The runs of ``ids`` that lie inside one of the windows ``start``-``stop``.

    gammapy keeps the part of each run inside the windows; gcxr reduces whole runs, so a
    window that cuts a run is refused (:class:`~gcxr.config.ConfigError`) rather than
    giving a different livetime.

    Parameters
    ----------
    datastore : DataStore
        The data store.
    ids : list of int
        Candidate runs.
    start, stop : astropy.time.Time
        The window(s): scalars or equal-length arrays.

    Returns
    -------
    list of int
        The runs inside a window.
    """
    windows = _time_windows(start, stop)
    times = datastore.run_times()
    keep, cut = [], []
    for o in ids:
        a, b = times[int(o)]
        inside = any(a >= lo and b <= hi for lo, hi in windows)
        overlap = any(b > lo and a < hi for lo, hi in windows)
        if inside:
            keep.append(o)
        elif overlap:
            cut.append(o)
    if cut:
        raise ConfigError([("observations.obs_time", f"the time window cuts run(s) {cut} part-way; gcxr "
                                                     "reduces whole runs: widen or narrow the window to whole "
                                                     "runs (gammapy would keep only the part inside)")])
    return keep


def _axis_edges(axis, key: str) -> np.ndarray | None:
    """Log-spaced edges (TeV) of an ``EnergyAxisConfig``; None if min, max or nbins is unset."""
    if axis.min is None or axis.max is None or axis.nbins is None:
        if any(v is not None for v in (axis.min, axis.max, axis.nbins)):
            raise ConfigError([(key, "give min, max and nbins together")])
        return None
    return np.geomspace(_tev(axis.min), _tev(axis.max), int(axis.nbins) + 1)


def threaded_scheduler(n_jobs: int | None):
    """dask's threaded scheduler with ``n_jobs`` threads (``general.n_jobs``; -1 or None: all cores),
    on a pool whose threads leave SIGINT and SIGTERM to the main thread (:func:`gcxr.progress.local_pool`)."""
    import functools
    import os

    import dask.threaded

    from .progress import local_pool
    if n_jobs is not None and n_jobs == 0:
        raise ConfigError([("general.n_jobs", "0 threads; use a positive number, or -1 for all cores")])
    n = (os.cpu_count() or 1) if n_jobs is None or n_jobs < 0 else int(n_jobs)
    return functools.partial(dask.threaded.get, num_workers=n, pool=local_pool(n))


def configure_logging(log_config) -> logging.Logger:
    """Apply ``general.log`` to the ``gcxr`` logger (not the root logger: gcxr leaves global
    logging to the application): its level, and a file handler when ``filename`` is set."""
    logger = logging.getLogger("gcxr")
    logger.setLevel(log_config.level.upper())
    for h in list(logger.handlers):
        if getattr(h, "_gcxr_config", False):
            logger.removeHandler(h)
            h.close()
    if log_config.filename is not None:
        handler = logging.FileHandler(log_config.filename, mode=log_config.filemode or "a")
        handler.setFormatter(logging.Formatter(log_config.format, log_config.datefmt))
        handler._gcxr_config = True
        logger.addHandler(handler)
    return logger


def estimate_dataset_bytes(spec: ReductionSpec, n_datasets: int) -> int:
    """A lower bound of the memory the reduced datasets take: ``n_datasets`` x (counts, background
    (float64, reco energy), exposure (float64, true energy), safe mask (1 byte)) on the analysis grid."""
    npix = spec.geom.nx * spec.geom.ny
    return int(n_datasets) * npix * (8 * (2 * spec.energy.nbin + spec.energy_true.nbin) + spec.energy.nbin)


def available_memory() -> int | None:
    """Bytes of memory available to this process now (``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(spec: ReductionSpec, n_datasets: int, available: int | None = None) -> None:
    """Raise :class:`ConfigError` if the datasets cannot fit in the available memory.

    Checked before any run is reduced, so a grid that is too large is refused in a second rather
    than after a long reduction ends in ``MemoryError``.
    """
    available = available_memory() if available is None else available
    need = estimate_dataset_bytes(spec, n_datasets)
    if available is not None and need > available:
        g = spec.geom
        raise ConfigError([("datasets.geom", (
            f"the reduced datasets need at least {need / 2**30:.1f} GiB ({n_datasets} dataset(s) of "
            f"{spec.energy.nbin} x {g.ny} x {g.nx} bins and {spec.energy_true.nbin} true-energy planes), "
            f"more than the {available / 2**30:.1f} GiB of memory available; make the grid smaller: raise "
            f"datasets.geom.wcs.binsize, lower datasets.geom.wcs.width, datasets.geom.axes.energy.nbins or "
            f"datasets.geom.axes.energy_true.nbins" + (", or set datasets.stack: true" if n_datasets > 1 else "")))])


def cone_from_config(config: AnalysisConfig) -> tuple[float, float, float, str | None] | None:
    """``observations.obs_cone`` as (lon, lat, radius in deg, frame), None if not given.

    Raises :class:`ConfigError` naming the missing keys when only some of lon, lat, radius are set.
    """
    c = config.observations.obs_cone
    given = {k: getattr(c, k) for k in ("lon", "lat", "radius")}
    if all(v is None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        raise ConfigError([(f"observations.obs_cone.{missing[0]}",
                            f"a cone selection needs lon, lat and radius; {missing} not given")])
    return _deg(c.lon), _deg(c.lat), _deg(c.radius), c.frame


FIT_MAPS = ("counts", "exposure", "background", "psf", "edisp")
"""The maps a fit reads (``datasets.map_selection`` must list them all to fit)."""


def check_fit_selection(config: AnalysisConfig) -> None:
    """Raise :class:`ConfigError` naming ``datasets.map_selection`` if it lacks a map a fit reads."""
    missing = [m for m in FIT_MAPS if m not in config.datasets.map_selection]
    if missing:
        raise ConfigError([("datasets.map_selection",
                            f"a fit needs the maps {list(FIT_MAPS)}; {missing} not selected "
                            f"(add them, or reduce only: gcxr run --no-fit)")])


def drop_models_without_dataset(models, dataset_names: list[str]) -> list[str]:
    """Remove (in place) the models that apply to none of ``dataset_names``; return their names.

    A FoVBackgroundModel for an absent dataset would otherwise be a free parameter that nothing
    constrains (MIGRAD fails, every error NaN).  gammapy leaves such models out of the fit; so does
    gcxr, with one warning naming them and the datasets there are.
    """
    dropped = [m for m in models if not any(m.applies_to(n) for n in dataset_names)]
    for m in dropped:
        models.remove(m)
    if dropped:
        what = ", ".join(f"{m.name!r} ({_model_datasets(m)})" for m in dropped)
        warnings.warn(f"models: {what} apply to no dataset of this analysis (datasets: {dataset_names}); "
                      f"left out of the fit", UserWarning, stacklevel=3)
    return [m.name for m in dropped]


def _model_datasets(model) -> str:
    name = getattr(model, "dataset_name", None)
    if name is not None:
        return f"FoVBackgroundModel for dataset {name!r}"
    return f"datasets_names {list(model.datasets_names or [])}"


def _datasets_format(path) -> str:
    """``"netcdf"`` or ``"fits"`` (gammapy) from the suffix of a datasets file."""
    name = Path(path).name.lower()
    if name.endswith(".nc"):
        return "netcdf"
    if name.endswith((".fits", ".fits.gz", ".fit", ".fit.gz")):
        return "fits"
    raise DataStoreError(f"datasets file {path}: unknown format; use .nc (gcxr netCDF) or .fits/.fits.gz "
                         "(gammapy MapDataset)")


def _spec_of_file(ds: xr.Dataset, spec: ReductionSpec, path) -> ReductionSpec:
    """``spec`` with the grids and axes of a runs file, so that the runs can be written back."""
    import dataclasses
    from .contract import geom_from_dataset
    if "sky_wcs" not in ds.variables or "sky_wcs_irf" not in ds.variables:
        raise DataStoreError(f"{path}: runs file without its sky_wcs/sky_wcs_irf grid variables")
    geom, irf = geom_from_dataset(ds, "sky_wcs"), geom_from_dataset(ds, "sky_wcs_irf")
    r = np.asarray(ds["rad_bounds"].values, float)
    new = dataclasses.replace(spec, geom=geom, binsz_irf=irf.binsz,
                              energy=EnergyAxis.from_coord(ds, "energy"),
                              energy_true=EnergyAxis.from_coord(ds, "energy_true"),
                              rad_edges=tuple(np.append(r[:, 0], r[-1, 1])))
    if new.irf_geom != irf:
        raise DataStoreError(f"{path}: the IRF grid is not the one gcxr derives from the sky grid "
                             f"({irf} vs {new.irf_geom})")
    return new


class Analysis:
    """The configured analysis, step by step: observations, datasets, models, fit.

    Parameters
    ----------
    config : AnalysisConfig, str or Path
        The configuration, or the path of its YAML file.
    client : distributed.Client, optional
        Run the reduction and the likelihood on this dask cluster (default: threads in process).
    progress : bool, optional
        Show progress bars (default: in a terminal or Jupyter).

    Examples
    --------
    >>> ana = Analysis("analysis_config.yaml")      # doctest: +SKIP
    >>> ana.get_observations()                       # doctest: +SKIP
    >>> ana.get_datasets()                           # doctest: +SKIP
    >>> ana.read_models("models.yaml")               # doctest: +SKIP
    >>> result = ana.run_fit()                       # doctest: +SKIP

    ``gcxr run`` does the same from the command line.
    """

    def __init__(self, config: AnalysisConfig | str | Path, client=None, progress: bool | None = None):
        if not isinstance(config, AnalysisConfig):
            config = AnalysisConfig.read(config)
        self.config = config
        self.client = client
        from .progress import interactive
        self.progress = interactive() if progress is None else bool(progress)
        self.spec = spec_from_config(config)
        configure_logging(config.general.log)
        self.excess_map = None
        self.flux_points = None
        self.datastore: DataStore | None = None
        self.runs: list[RunRef] = []
        self.datasets: list[xr.Dataset] = []
        self.models = None
        self.fit_result = None
        self.timings: dict[str, float] = {}

    # ---- data
    def get_observations(self) -> list[RunRef]:
        """Select runs: ``obs_ids`` or ``obs_file``, then ``obs_cone``, then ``obs_time``."""
        o = self.config.observations
        cone_from_config(self.config)                   # a half-given cone is named before any file is read
        self.datastore = DataStore.from_dir(o.datastore_path)
        cone = cone_from_config(self.config)
        obs_ids = list(o.obs_ids) or None
        if o.obs_file is not None:
            obs_ids = read_obs_file(o.obs_file_path)
        ids = self.datastore.select(obs_ids=obs_ids, cone=cone)
        if o.obs_time.start is not None:
            ids = select_time(self.datastore, ids, o.obs_time.start, o.obs_time.stop)
        if not ids:
            raise DataStoreError(f"observations: the selection matches no run in {self.datastore.base_dir}")
        # as gammapy: runs lacking a required HDU are skipped (with a warning)
        self.runs = self.datastore.runs(ids, required_irf=list(o.required_irf), skip_missing=True)
        if not self.runs:
            raise DataStoreError(f"observations: every selected run lacks one of the required HDUs "
                                 f"{list(o.required_irf)} (observations.required_irf)")
        return self.runs

    def get_datasets(self, lazy: bool = False) -> list[xr.Dataset]:
        """Reduce the runs: one stacked dataset (``stack: true``) or one per run (named ``obs-<id>``).

        The graph is built without reading any file; it is computed here (on the client if
        one was given) unless ``lazy=True``, in which case the datasets hold dask arrays.

        Parameters
        ----------
        lazy : bool
            Return dask-backed datasets without computing them.

        Returns
        -------
        list of xarray.Dataset
            The datasets (also in :attr:`datasets`).
        """
        if not self.runs:
            self.get_observations()
        # the client holds one stacked dataset, or every run's unless they stay on a cluster
        held = 1 if self.config.datasets.stack or self.client is not None or lazy else len(self.runs)
        check_memory(self.spec, held)
        t0 = time.perf_counter()
        layouts = [run_layout(r, self.spec) for r in self.runs]
        if self.config.datasets.stack:
            out = [stack_runs(self.runs, self.spec, layouts, name="stacked")]
        else:
            out = [reduce_run_lazy(r, self.spec, lay) for r, lay in zip(self.runs, layouts)]
            for ds, r in zip(out, self.runs):
                ds.attrs["name"] = f"obs-{r.obs_id}"
        if not lazy and self.client is not None and not self.config.datasets.stack:
            out = self._persist(out)       # one dataset per run: they stay on the workers (docs/clusters.md)
        elif not lazy:
            out = list(self._compute(*out))
        for ds in out:
            mask = self._fit_range_mask(ds)
            if mask is not None:
                ds["mask_fit"] = mask
        if not lazy and self.client is not None and not self.config.datasets.stack:
            # the numbers the fit's checks and result.json need, in one round while the runs are fresh
            prefetch_numbers(out)
        self.datasets = out
        self.timings["reduce"] = time.perf_counter() - t0
        return out

    def _fit_range_mask(self, ds: xr.Dataset) -> xr.DataArray | None:
        """The ``fit.fit_range`` of the config as an ``energy`` mask (None if no range is set)."""
        fr = self.config.fit.fit_range
        if fr.min is None and fr.max is None:
            return None
        return fit_mask(ds, _tev(fr.min) if fr.min is not None else None,
                        _tev(fr.max) if fr.max is not None else None)

    def write_datasets(self, path: str | Path | None = None, overwrite: bool = True) -> Path:
        """Write :attr:`datasets`, in the format the suffix of ``path`` names; as in gammapy, the
        models go to ``general.models_file`` too when it is set and there are models.

        Parameters
        ----------
        path : str or Path, optional
            Default: ``general.datasets_file``.  ``.nc``: CF netCDF (:func:`gcxr.io.write_datasets`), one stacked dataset or the
            run datasets along ``obs``; ``.fits`` or ``.fits.gz``: a gammapy 2.1 ``MapDataset``
            file (:func:`gcxr.io.write_gammapy_dataset`), one dataset only.
        overwrite : bool
            Replace an existing file (default True).

        Returns
        -------
        Path
            ``path``, read back by :meth:`read_datasets`.

        Examples
        --------
        >>> ana.write_datasets("datasets.nc")          # doctest: +SKIP
        >>> ana.write_datasets("stacked.fits.gz")      # doctest: +SKIP
        """
        from .io import write_datasets, write_gammapy_dataset
        path = self._config_file(path, "datasets_file")
        if self.models is not None and self.config.general.models_file is not None:
            self.write_models(overwrite=overwrite)
        fmt = _datasets_format(path)
        if not self.datasets:
            raise DataStoreError("write_datasets: no datasets yet; call get_datasets() or read_datasets() first")
        runs = [ds for ds in self.datasets if "obs_id" in ds.attrs]
        if fmt == "fits":
            if len(self.datasets) != 1:
                raise DataStoreError(f"write_datasets: {path}: a gammapy MapDataset file holds one dataset, there "
                                     f"are {len(self.datasets)}; write them to a .nc file (or stack them)")
            return write_gammapy_dataset(self.datasets[0], path, overwrite=overwrite)
        if runs and len(runs) == len(self.datasets):
            return write_datasets(self.datasets, path, spec=self.spec, overwrite=overwrite)
        if len(self.datasets) != 1:
            raise DataStoreError(f"write_datasets: {path}: {len(self.datasets)} datasets that are not all runs "
                                 "(no obs_id); a netCDF file holds one stacked dataset or runs along 'obs'")
        ds = self.datasets[0]
        return write_datasets(ds, path, spec=None if "sky_wcs" in ds.variables else self.spec, overwrite=overwrite)

    def read_datasets(self, path: str | Path | None = None) -> list[xr.Dataset]:
        """Use the datasets of a file instead of reducing: no observation is selected or read;
        then, as gammapy does, the models of ``general.models_file`` if it is set.

        Parameters
        ----------
        path : str or Path, optional
            Default: ``general.datasets_file``.  A ``.nc`` file written by :meth:`write_datasets` or ``gcxr run`` (``datasets.nc``:
            one stacked dataset, or runs along ``obs``, each restored on its cutout), or a gammapy
            ``MapDataset`` file (``.fits``, ``.fits.gz``, :func:`gcxr.io.read_gammapy_dataset`).

        Returns
        -------
        list of xarray.Dataset
            The datasets, also kept in :attr:`datasets`.  The config's ``fit.fit_range``, if set,
            is applied on top of the file's own fit mask (both must pass); the rest of the
            ``datasets`` section (geometry, safe mask, stacking) is not used.

        Raises
        ------
        DataStoreError
            Missing file, unknown suffix, or a file that is not a gcxr or gammapy dataset.

        Examples
        --------
        >>> ana = Analysis("config.yaml")              # doctest: +SKIP
        >>> ana.read_datasets("gcxr-out/datasets.nc")  # doctest: +SKIP
        >>> ana.read_models("models.yaml"); ana.run_fit()   # doctest: +SKIP
        """
        from .contract import split_runs
        from .io import read_datasets, read_gammapy_dataset
        path = self._config_file(path, "datasets_file")
        fmt = _datasets_format(path)
        if not path.is_file():
            raise DataStoreError(f"datasets file not found: {path}")
        t0 = time.perf_counter()
        if fmt == "fits":
            out = [read_gammapy_dataset(path)]
        else:
            try:
                ds = read_datasets(path)
            except (OSError, ValueError) as exc:
                raise DataStoreError(f"{path}: cannot read as a gcxr datasets netCDF file ({exc})") from None
            missing = [v for v in ("counts", "exposure", "mask_safe") if v not in ds]
            if missing:
                raise DataStoreError(f"{path}: not a gcxr datasets file (no {', '.join(missing)})")
            from .contract import DatasetError, validate
            try:
                validate(ds)                    # dims, dtypes, units, coordinates, frame: the contract
            except DatasetError as exc:
                raise DataStoreError(f"{path}: {exc}") from None
            if "obs" in ds.dims:
                out = split_runs(ds)
                self.spec = _spec_of_file(ds, self.spec, path)
            else:
                ds.attrs.setdefault("name", "stacked")
                out = [ds]
        for ds in out:
            mask = self._fit_range_mask(ds)
            if mask is not None:
                ds["mask_fit"] = mask & ds["mask_fit"] if "mask_fit" in ds else mask
        self.datasets = out
        self.timings["read_datasets"] = time.perf_counter() - t0
        if self.config.general.models_file is not None:
            self.read_models()
        return out

    def _persist(self, datasets: list[xr.Dataset]) -> list[xr.Dataset]:
        """Reduce the runs on the cluster and keep each run's dataset there (dask-backed on the
        client): the client never holds the runs; the fit builds its terms on the workers
        (:meth:`gcxr.distributed.DistributedLikelihood.from_datasets`) and summaries and outputs
        are computed or streamed from there."""
        from .progress import progress_persist
        return progress_persist(datasets, self.client, quiet=not self.progress, desc="reduce")

    def _compute(self, *objs):
        from .progress import progress_compute
        return progress_compute(list(objs), client=self.client, quiet=not self.progress, desc="reduce",
                                scheduler=threaded_scheduler(self.config.general.n_jobs))

    @property
    def outdir(self) -> Path:
        """``general.outdir`` expanded: where ``gcxr run`` writes when ``--out`` is not given."""
        return self.config.general.outdir_path

    def _config_file(self, path, key: str) -> Path:
        if path is not None:
            return Path(path)
        value = getattr(self.config.general, f"{key}_path")
        if value is None:
            raise ConfigError([(f"general.{key}", "not set; pass a path or set it in the config")])
        return value

    def dataset_summaries(self) -> list[dict]:
        """Per dataset: name, counts, background, bins, fit bins and livetime (as in ``result.json``)."""
        out = []
        for i in infos(self.datasets):
            out.append({"name": i["name"], "counts": i["counts"], "background": i["background"],
                        "n_bins": i["n_bins"], "n_fit_bins": i["n_fit_bins"], "livetime_s": i["livetime_s"]})
        return out

    # ---- compute bookkeeping
    def compute_info(self, sched: dict | None = None) -> dict:
        """Where the run went: scheduler, workers and the likelihood's calls and tasks (``result.json``'s ``compute``).

        Parameters
        ----------
        sched : dict, optional
            Scheduler description (:func:`gcxr.cluster.describe`); default: threads in process.

        Returns
        -------
        dict
            The description.
        """
        sched = dict(sched or {"scheduler": "threads", "n_workers": 1})
        like = getattr(self, "likelihood_info", {}) or {}
        sched["likelihood_tasks"] = int(like.get("likelihood_tasks", 0))
        sched["likelihood_calls"] = int(like.get("likelihood_calls", 0))
        if "likelihood_rounds" in like:              # on a cluster: rounds of actor calls and their traffic
            rounds = max(int(like["likelihood_rounds"]), 1)
            sched["likelihood_rounds"] = int(like["likelihood_rounds"])
            sched["chunks"] = int(like.get("chunks", 0))
            sched["chunks_rebuilt"] = int(like.get("chunks_rebuilt", 0))
            sched["bytes_sent_per_round"] = round(like["bytes_sent"] / rounds, 1)
            sched["bytes_received_per_round"] = round(like["bytes_received"] / rounds, 1)
        if "placement" in like:                      # auto placement of in-memory terms: where, and why
            sched["fit_placement"] = {k: (round(v, 6) if isinstance(v, float) else v)
                                      for k, v in like["placement"].items()}
        return sched

    # ---- outputs
    def result(self, t_import: float | None = None, scheduler: dict | None = None) -> dict:
        """What ``result.json`` holds: the dataset summaries, the fit, the timings and the compute.

        Parameters
        ----------
        t_import : float, optional
            Seconds spent importing gcxr before the analysis (``timings_s.import``; ``gcxr run``
            measures it; default 0).
        scheduler : dict, optional
            The scheduler description (:func:`gcxr.cluster.describe`; default: threads in process).

        Returns
        -------
        dict
            ``datasets`` (:meth:`dataset_summaries`), ``fit`` (the fit result's ``to_dict()``, or
            None before a fit), ``timings_s`` (``import``, ``reduce``, ``fit``) and ``compute``
            (:meth:`compute_info`).  :meth:`write` adds ``outputs`` and the ``write`` and ``total``
            timings.

        Examples
        --------
        >>> ana.result()["fit"]["success"]          # doctest: +SKIP
        True
        """
        return {
            "datasets": self.dataset_summaries(),
            "fit": self.fit_result.to_dict() if self.fit_result is not None else None,
            "timings_s": {"import": float(t_import or 0.0), "reduce": self.timings.get("reduce", 0.0),
                          "fit": self.timings.get("fit", 0.0)},
            "compute": self.compute_info(scheduler),
        }

    def write(self, outdir: str | Path | None, outputs=None, *, result: dict | None = None,
              t_start: float | None = None) -> list[Path]:
        """Write the outputs of the analysis to ``outdir`` as one set, as ``gcxr run`` does.

        ``datasets.nc`` (one stacked dataset, or the runs along ``obs``: :meth:`write_datasets`),
        after a fit ``models_bestfit.yaml`` (+ ``models_bestfit_covariance.dat``) and
        ``fit_result.nc`` (:func:`gcxr.io.write_fit_result`), and ``result.json``
        (:meth:`result`, plus ``outputs``: each file's name and size in bytes) last.  They are
        staged in a private folder of ``outdir`` and swapped in together
        (:class:`gcxr.outputs.OutputSet`): a reader of ``outdir`` sees the complete previous set
        or the complete new one; the outputs of the previous set that this one lacks (a
        ``fit_result.nc`` when there is no fit now) are removed.

        Parameters
        ----------
        outdir : str or Path or None
            The output folder (made if missing).  None: the folder of ``outputs``.
        outputs : gcxr.outputs.OutputSet, optional
            An output set to stage into (``gcxr run`` opens its own before the reduction, to check
            ``--out`` early and to clean up on a signal); default: one opened on ``outdir`` here,
            and its staging folder removed if the writing fails.
        result : dict, optional
            The ``result.json`` content (default: :meth:`result`).
        t_start : float, optional
            ``time.perf_counter()`` at the start of the work: ``timings_s.total`` is the time from
            then to the writing of ``result.json`` (default: the sum of the other timings).

        Returns
        -------
        list of pathlib.Path
            The files written, ``result.json`` last.

        Raises
        ------
        gcxr.outputs.OutputError
            ``outdir`` is a file, cannot be made or written, or the disk is full.

        Examples
        --------
        >>> ana.run_fit()                     # doctest: +SKIP
        >>> ana.write("gcxr-out")             # doctest: +SKIP
        [PosixPath('gcxr-out/datasets.nc'), ..., PosixPath('gcxr-out/result.json')]
        """
        from .io import write_fit_result, write_json
        from .outputs import MANIFEST, OutputSet
        own = outputs is None
        if own:
            if outdir is None:
                raise ValueError("write: give the output folder (outdir)")
            outputs = OutputSet(outdir).open()
        elif outputs.staging is None:
            outputs.open(outdir)
        elif outdir is not None and OutputSet(outdir).out.resolve() != outputs.out.resolve():
            raise ValueError(f"write: outdir {outdir} is not the folder of the output set ({outputs.out})")
        try:
            t0 = time.perf_counter()
            result = dict(self.result() if result is None else result)
            # one stacked dataset, or the runs along obs, as the datasets are (also when read from a file)
            outputs.write("datasets.nc", self.write_datasets)
            if self.fit_result is not None and result.get("fit") is not None:
                outputs.write("models_bestfit.yaml", lambda p: self.models.write(p, overwrite=True))
                outputs.stage_file("models_bestfit_covariance.dat")
                outputs.write("fit_result.nc", lambda p: write_fit_result(self.fit_result, p, models=self.models))
            result["outputs"] = {n: p.stat().st_size for n, p in outputs.staged.items()}
            timings = result["timings_s"] = dict(result.get("timings_s", {}))
            timings["write"] = time.perf_counter() - t0
            timings["total"] = (time.perf_counter() - t_start if t_start is not None
                                else sum(v for k, v in timings.items() if k != "total"))
            outputs.write(MANIFEST, lambda p: write_json(result, p))
            return outputs.commit()
        finally:
            if own:
                outputs.discard()        # a failed or interrupted write: the staging folder goes

    # ---- models and fit
    def set_models(self, models) -> None:
        """Use ``models``; a FoVBackgroundModel is added for every dataset that lacks one.

        Models that apply to none of the datasets (a ``FoVBackgroundModel`` or ``datasets_names``
        naming a dataset that does not exist) are left out of the fit with a warning, as gammapy does.
        Raises :class:`ConfigError` when ``datasets.map_selection`` lacks a map the fit needs.

        Parameters
        ----------
        models : Models or iterable of models
            The models to fit.
        """
        from .models import Models
        check_fit_selection(self.config)
        if not isinstance(models, Models):
            models = Models(models)
        if self.datasets:
            names = [ds.attrs.get("name", "stacked") for ds in self.datasets]
            drop_models_without_dataset(models, names)
            models.add_fov_background(names)
        self.models = models

    def read_models(self, path=None) -> None:
        """Read a models YAML file (default ``general.models_file``) and use it.

        Parameters
        ----------
        path : str or Path
            The models file.
        """
        from .models import Models
        self.set_models(Models.read(self._config_file(path, "models_file")))

    def write_models(self, path=None, overwrite: bool = True) -> Path:
        """Write the current models as YAML to ``path`` (default ``general.models_file``).

        Parameters
        ----------
        path : str or Path, optional
            The YAML file (default: ``general.models_file``).
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        if self.models is None:
            raise ValueError("write_models: no models; call read_models() or set_models() first")
        path = self._config_file(path, "models_file")
        self.models.write(path, overwrite=overwrite)
        return path

    # ---- estimators
    def get_excess_map(self) -> xr.Dataset:
        """Excess and significance maps of the stacked dataset, from the ``excess_map`` section.

        As in gammapy the datasets must be stacked; with models set, the excess is measured
        above their full prediction (else above the background).  The result is also kept
        as ``self.excess_map``.
        """
        from .estimators import excess_map
        if not self.datasets:
            raise ValueError("get_excess_map: no datasets; call get_datasets() first")
        if len(self.datasets) > 1:
            raise ValueError("get_excess_map: the datasets must be stacked (datasets.stack: true), as in gammapy")
        s = self.config.excess_map
        self.excess_map = excess_map(self.datasets[0], models=self.models,
                                     correlation_radius=_deg(s.correlation_radius),
                                     energy_edges=_axis_edges(s.energy_edges, "excess_map.energy_edges"))
        return self.excess_map

    def get_flux_points(self) -> xr.Dataset:
        """Flux points of ``flux_points.source`` in the ``flux_points.energy`` bins (after a fit).

        The edges move to the nearest reco-energy bin edges of the datasets (as gammapy's; a
        warning names the edges used, the result's attrs keep both); ``flux_points.parameters``
        may set ``reoptimize`` and ``n_sigma_ul``.  The result is also kept as ``self.flux_points``.
        """
        from .estimators import flux_points
        if not self.datasets or self.models is None:
            raise ValueError("get_flux_points: needs datasets and models (after run_fit())")
        s = self.config.flux_points
        edges = _axis_edges(s.energy, "flux_points.energy")
        if edges is None:
            raise ConfigError([("flux_points.energy", "min, max and nbins are required for flux points")])
        self.flux_points = flux_points(self.datasets, self.models, s.source, edges,
                                       **flux_points_options(self.config))
        return self.flux_points

    def run_fit(self, placement: str = "auto", **kwargs):
        """MIGRAD + HESSE on the joint Cash statistic of all datasets; updates the models.

        Parameters
        ----------
        placement : {'auto', 'cluster'}
            With a client: ``"auto"`` fits in this process when a likelihood round would be
            faster here than on the workers (a few small datasets,
            :func:`gcxr.distributed.choose_placement`; ``result.json``'s ``compute.fit_placement``
            says which and why), ``"cluster"`` always on the workers.
        **kwargs
            Passed to :func:`gcxr.fit.fit`.
        """
        from .fit import fit
        if not self.datasets:
            self.get_datasets()
        if self.models is None:
            raise ValueError("run_fit: no models; call read_models() or set_models() first")
        self.set_models(self.models)
        from .fit import free_background_datasets
        t0 = time.perf_counter()                # the fit stage includes the data checks
        # values and masks first (they say more than "no counts"), then the counts: one pass
        check_fit_data(self.datasets, free_background_datasets(self.datasets, self.models), counts=True)
        kwargs.setdefault("check_data", False)
        factory = kwargs.pop("likelihood_factory", None)
        if factory is None and self.client is not None:
            from .distributed import DistributedLikelihood
            factory = DistributedLikelihood.factory(self.client, placement=placement)
        from .progress import FitProgress
        with FitProgress(desc="fit", quiet=not self.progress) as prog:
            kwargs.setdefault("progress", prog)
            result = fit(self.datasets, self.models, likelihood_factory=factory, **kwargs)
        self.timings["fit"] = time.perf_counter() - t0
        self.fit_result = result
        self.likelihood_info = result.timings.get("likelihood", {})
        return result
