"""The high-level analysis: config -> runs -> datasets -> fit -> results.

A thin orchestration of the modules below it, mirroring the reference
workflow's ``Analysis`` (``get_observations``, ``get_datasets``, models,
``run_fit``, and ``write``: the outputs of ``gcxr run``).  Datasets are built
lazily (one dask task per run, a tree of stacking tasks) and computed by
``get_datasets`` unless ``lazy=True``.  What the config asks for (the grid, the
run selection, the fit range, the memory needed) is read by :mod:`gcxr.plan`;
this module holds the state and carries out the steps.
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
import dataclasses
import functools
import os

import numpy as np
import xarray as xr

from .config import AnalysisConfig, ConfigError
from .config.support import flux_points_options
from .contract import DatasetError, geom_from_dataset, split_runs
from .datasets import check_fit_data, fit_mask, infos, prefetch_numbers, stack_runs
from .datastore import DataStore, DataStoreError, RunRef
from .geom import EnergyAxis
from .io import read_datasets, write_datasets, write_fit_result, write_json
from .io_gammapy import read_gammapy_dataset, write_gammapy_dataset
from .outputs import MANIFEST, OutputSet
from .plan import (check_fit_selection, check_memory, cone_from_config, excess_map_options, fit_range,
                   flux_points_edges, read_obs_file, select_time, spec_from_config)
from .progress import FitProgress, interactive, local_pool, progress_compute, progress_persist
from .reduce import ReductionSpec, reduce_run_lazy, run_layout

__all__ = ["Analysis"]

log = logging.getLogger(__name__)


def threaded_scheduler(n_jobs: int | None):
    """dask's threaded scheduler with ``n_jobs`` threads (``general.n_jobs``; -1 or None: all cores),
    on a pool whose threads leave SIGINT and SIGTERM to the main thread (:func:`gcxr.progress.local_pool`)."""

    import dask.threaded  # deferred: heavy import (dask)

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
        self.manifest: dict | None = None        # result.json as last written by write()
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
        bounds = fit_range(self.config)
        return None if bounds is None else fit_mask(ds, *bounds)

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
        path = self._config_file(path, "datasets_file")
        fmt = _datasets_format(path)
        if not path.is_file():
            raise DataStoreError(f"datasets file not found: {path}")
        t0 = time.perf_counter()
        if fmt == "fits":
            out = [read_gammapy_dataset(path)]
        else:
            try:
                ds = read_datasets(path)        # held to the contract there (gcxr.contract.validate)
            except DatasetError as exc:
                raise DataStoreError(str(exc)) from None        # names the file and what is wrong
            except (OSError, ValueError) as exc:
                raise DataStoreError(f"{path}: cannot read as a gcxr datasets netCDF file ({exc})") from None
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
        return progress_persist(datasets, self.client, quiet=not self.progress, desc="reduce")

    def _compute(self, *objs):
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
            paths = outputs.commit()
            self.manifest = result           # what result.json holds, write time included
            return paths
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
        from .models import Models  # deferred: keeps gcxr run --no-fit light (pulls in gcxr.models)
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
        from .models import Models  # deferred: keeps gcxr run --no-fit light (pulls in gcxr.models)
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
        from .estimators import excess_map  # deferred: keeps gcxr run light (gcxr.estimators, npred, fit)
        if not self.datasets:
            raise ValueError("get_excess_map: no datasets; call get_datasets() first")
        if len(self.datasets) > 1:
            raise ValueError("get_excess_map: the datasets must be stacked (datasets.stack: true), as in gammapy")
        self.excess_map = excess_map(self.datasets[0], models=self.models, **excess_map_options(self.config))
        return self.excess_map

    def get_flux_points(self) -> xr.Dataset:
        """Flux points of ``flux_points.source`` in the ``flux_points.energy`` bins (after a fit).

        The edges move to the nearest reco-energy bin edges of the datasets (as gammapy's; a
        warning names the edges used, the result's attrs keep both); ``flux_points.parameters``
        may set ``reoptimize`` and ``n_sigma_ul``.  The result is also kept as ``self.flux_points``.
        """
        from .estimators import flux_points  # deferred: keeps gcxr run light (gcxr.estimators, npred, fit)
        if not self.datasets or self.models is None:
            raise ValueError("get_flux_points: needs datasets and models (after run_fit())")
        edges = flux_points_edges(self.config)
        self.flux_points = flux_points(self.datasets, self.models, self.config.flux_points.source, edges,
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
        from .fit import fit  # deferred: keeps gcxr run --no-fit light (gcxr.fit, likelihood, models)
        if not self.datasets:
            self.get_datasets()
        if self.models is None:
            raise ValueError("run_fit: no models; call read_models() or set_models() first")
        self.set_models(self.models)
        from .fit import free_background_datasets  # deferred: keeps gcxr run --no-fit light (gcxr.fit)
        t0 = time.perf_counter()                # the fit stage includes the data checks
        # values and masks first (they say more than "no counts"), then the counts: one pass
        check_fit_data(self.datasets, free_background_datasets(self.datasets, self.models), counts=True)
        kwargs.setdefault("check_data", False)
        factory = kwargs.pop("likelihood_factory", None)
        if factory is None and self.client is not None:
            from .distributed import DistributedLikelihood  # deferred: keeps an in-process fit light (gcxr.distributed)
            factory = DistributedLikelihood.factory(self.client, placement=placement)
        with FitProgress(desc="fit", quiet=not self.progress) as prog:
            kwargs.setdefault("progress", prog)
            result = fit(self.datasets, self.models, likelihood_factory=factory, **kwargs)
        self.timings["fit"] = time.perf_counter() - t0
        self.fit_result = result
        self.fit_result.apply(self.models)
        self.likelihood_info = result.timings.get("likelihood", {})
        return result
