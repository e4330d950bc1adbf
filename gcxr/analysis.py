"""The high-level analysis: config -> runs -> datasets -> fit -> results.

A thin orchestration of the modules below it, mirroring the reference
workflow's ``Analysis`` (``get_observations``, ``get_datasets``, models,
``run_fit``).  Datasets are built lazily (one dask task per run, a tree of
stacking tasks) and computed by ``get_datasets`` unless ``lazy=True``.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import dask
import numpy as np
import xarray as xr

from .background import read_exclusion_mask
from .config import AnalysisConfig, ConfigError
from .config.support import check_supported, flux_points_options, fov_options, safe_mask_options
from .datasets import fit_mask, info, stack_runs
from .datastore import DataStore, DataStoreError, RunRef
from .geom import EnergyAxis, SkyGeom
from .reduce import ReductionSpec, reduce_run_lazy, run_layout

__all__ = ["Analysis", "spec_from_config", "read_obs_file", "select_time"]

log = logging.getLogger(__name__)


def _deg(q) -> float:
    return float(q.to_value("deg"))


def _tev(q) -> float:
    return float(q.to_value("TeV"))


def spec_from_config(config: AnalysisConfig) -> ReductionSpec:
    """The reduction specification of a config's ``datasets`` section.

    Raises :class:`~gcxr.config.ConfigError` naming every key gcxr cannot honour
    (:func:`gcxr.config.support.check_supported`).
    """
    check_supported(config)
    d = config.datasets
    w = d.geom.wcs
    frame = w.skydir.frame or "icrs"
    if w.skydir.lon is None or w.skydir.lat is None:
        raise ConfigError([("datasets.geom.wcs.skydir", "lon and lat are required")])
    geom = SkyGeom.create((_deg(w.skydir.lon), _deg(w.skydir.lat)), _deg(w.binsize),
                          (_deg(w.width.width), _deg(w.width.height)), frame)
    ax = d.geom.axes
    energy = EnergyAxis.from_bounds(_tev(ax.energy.min), _tev(ax.energy.max), ax.energy.nbins, "energy")
    energy_true = EnergyAxis.from_bounds(_tev(ax.energy_true.min), _tev(ax.energy_true.max),
                                         ax.energy_true.nbins, "energy_true")
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


def read_obs_file(path: Path, key: str = "observations.obs_file") -> list[int]:
    """Run ids from the first column of a text file, as gammapy reads ``obs_file``.

    gammapy reads it with ``Table.read(path, format="ascii", data_start=0)``: every
    line is data (no header), columns separated by blanks or commas; ``#`` starts a
    comment.
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
    """dask's threaded scheduler with ``n_jobs`` threads (``general.n_jobs``; -1 or None: all cores)."""
    import functools

    import dask.threaded
    if n_jobs is None or n_jobs < 0:
        return dask.threaded.get
    if n_jobs == 0:
        raise ConfigError([("general.n_jobs", "0 threads; use a positive number, or -1 for all cores")])
    return functools.partial(dask.threaded.get, num_workers=int(n_jobs))


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


class Analysis:
    """Run the configured analysis step by step, or all at once with :meth:`run`."""

    def __init__(self, config: AnalysisConfig | str | Path, client=None, progress: bool | None = None):
        """``progress``: show progress bars (default: in a terminal or Jupyter, unless quiet)."""
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
        self.datastore = DataStore.from_dir(o.datastore_path)
        cone = None
        if o.obs_cone.lon is not None:
            cone = (_deg(o.obs_cone.lon), _deg(o.obs_cone.lat), _deg(o.obs_cone.radius), o.obs_cone.frame)
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
        """
        if not self.runs:
            self.get_observations()
        t0 = time.perf_counter()
        layouts = [run_layout(r, self.spec) for r in self.runs]
        if self.config.datasets.stack:
            out = [stack_runs(self.runs, self.spec, layouts, name="stacked")]
        else:
            out = [reduce_run_lazy(r, self.spec, lay) for r, lay in zip(self.runs, layouts)]
            for ds, r in zip(out, self.runs):
                ds.attrs["name"] = f"obs-{r.obs_id}"
        if not lazy:
            out = list(self._compute(*out))
        fr = self.config.fit.fit_range
        if fr.min is not None or fr.max is not None:
            for ds in out:
                ds["mask_fit"] = fit_mask(ds, _tev(fr.min) if fr.min is not None else None,
                                          _tev(fr.max) if fr.max is not None else None)
        self.datasets = out
        self.timings["reduce"] = time.perf_counter() - t0
        return out

    def _compute(self, *objs):
        from .progress import progress_compute
        return progress_compute(list(objs), client=self.client, quiet=not self.progress, desc="reduce",
                                scheduler=threaded_scheduler(self.config.general.n_jobs))

    @property
    def outdir(self) -> Path:
        """``general.outdir`` expanded: where ``gcxr run`` writes when ``--out`` is not given."""
        return self.config.general.outdir_path

    def write_datasets(self, path=None, overwrite: bool = True) -> Path:
        """Write the datasets as netCDF to ``path`` (default ``general.datasets_file``); as in
        gammapy the models go to ``general.models_file`` too, when it is set and there are models."""
        from .io import write_datasets
        path = self._config_file(path, "datasets_file")
        ds = self.datasets[0] if len(self.datasets) == 1 and self.config.datasets.stack else self.datasets
        out = write_datasets(ds, path, spec=self.spec, overwrite=overwrite)
        if self.models is not None and self.config.general.models_file is not None:
            self.write_models(overwrite=overwrite)
        return out

    def read_datasets(self, path=None) -> list[xr.Dataset]:
        """Read datasets written by :meth:`write_datasets` (default ``general.datasets_file``);
        then the models of ``general.models_file``, if set, as gammapy does."""
        from .io import read_datasets
        ds = read_datasets(self._config_file(path, "datasets_file"))
        if "obs" in ds.dims and ds.sizes["obs"] > 0 and ds.attrs.get("name") == "runs":
            self.datasets = [ds.isel(obs=i).assign_attrs(name=f"obs-{int(o)}") for i, o in enumerate(ds["obs"].values)]
        else:
            self.datasets = [ds]
        if self.config.general.models_file is not None:
            self.read_models()
        return self.datasets

    def _config_file(self, path, key: str) -> Path:
        if path is not None:
            return Path(path)
        value = getattr(self.config.general, f"{key}_path")
        if value is None:
            raise ConfigError([(f"general.{key}", "not set; pass a path or set it in the config")])
        return value

    def dataset_summaries(self) -> list[dict]:
        out = []
        for ds in self.datasets:
            i = info(ds)
            out.append({"name": i["name"], "counts": i["counts"], "background": i["background"],
                        "n_bins": i["n_bins"], "n_fit_bins": i["n_fit_bins"], "livetime_s": i["livetime_s"]})
        return out

    # ---- compute bookkeeping
    def compute_info(self, sched: dict | None = None) -> dict:
        sched = dict(sched or {"scheduler": "threads", "n_workers": 1})
        like = getattr(self, "likelihood_info", {}) or {}
        sched["likelihood_tasks"] = int(like.get("likelihood_tasks", 0))
        sched["likelihood_calls"] = int(like.get("likelihood_calls", 0))
        return sched

    # ---- models and fit
    def set_models(self, models) -> None:
        """Use ``models``; a FoVBackgroundModel is added for every dataset that lacks one."""
        from .models import Models
        if not isinstance(models, Models):
            models = Models(models)
        if self.datasets:
            models.add_fov_background([ds.attrs.get("name", "stacked") for ds in self.datasets])
        self.models = models

    def read_models(self, path=None) -> None:
        """Read a models YAML file (default ``general.models_file``) and use it."""
        from .models import Models
        self.set_models(Models.read(self._config_file(path, "models_file")))

    def write_models(self, path=None, overwrite: bool = True) -> Path:
        """Write the current models as YAML to ``path`` (default ``general.models_file``)."""
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

        The bin edges must be reco-energy bin edges of the datasets; ``flux_points.parameters``
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

    def run_fit(self, **kwargs):
        """MIGRAD + HESSE on the joint Cash statistic of all datasets; updates the models."""
        from .fit import fit
        if not self.datasets:
            self.get_datasets()
        if self.models is None:
            raise ValueError("run_fit: no models; call read_models() or set_models() first")
        self.set_models(self.models)
        t0 = time.perf_counter()
        factory = kwargs.pop("likelihood_factory", None)
        if factory is None and self.client is not None:
            from .distributed import DistributedLikelihood
            factory = DistributedLikelihood.factory(self.client)
        from .progress import FitProgress
        with FitProgress(desc="fit", quiet=not self.progress) as prog:
            kwargs.setdefault("progress", prog)
            result = fit(self.datasets, self.models, likelihood_factory=factory, **kwargs)
        self.timings["fit"] = time.perf_counter() - t0
        self.fit_result = result
        self.likelihood_info = result.timings.get("likelihood", {})
        return result
