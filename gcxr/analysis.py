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

from .config import AnalysisConfig
from .datasets import fit_mask, info, stack_runs
from .datastore import DataStore, DataStoreError, RunRef
from .geom import EnergyAxis, SkyGeom
from .reduce import ReductionSpec, reduce_run_lazy, run_layout

__all__ = ["Analysis", "spec_from_config"]

log = logging.getLogger(__name__)


def _deg(q) -> float:
    return float(q.to_value("deg"))


def _tev(q) -> float:
    return float(q.to_value("TeV"))


def spec_from_config(config: AnalysisConfig) -> ReductionSpec:
    """The reduction specification of a config's ``datasets`` section."""
    d = config.datasets
    if d.type != "3d":
        raise ValueError(f"datasets.type: only '3d' is supported by gcxr, got '{d.type}'")
    w = d.geom.wcs
    frame = w.skydir.frame or "icrs"
    if w.skydir.lon is None or w.skydir.lat is None:
        raise ValueError("datasets.geom.wcs.skydir: lon and lat are required")
    geom = SkyGeom.create((_deg(w.skydir.lon), _deg(w.skydir.lat)), _deg(w.binsize),
                          (_deg(w.width.width), _deg(w.width.height)), frame)
    ax = d.geom.axes
    energy = EnergyAxis.from_bounds(_tev(ax.energy.min), _tev(ax.energy.max), ax.energy.nbins, "energy")
    energy_true = EnergyAxis.from_bounds(_tev(ax.energy_true.min), _tev(ax.energy_true.max),
                                         ax.energy_true.nbins, "energy_true")
    params = dict(d.safe_mask.parameters or {})
    known = {"offset_max", "aeff_percent", "bias_percent"}
    unknown = set(params) - known
    if unknown:
        raise ValueError(f"datasets.safe_mask.parameters: unknown key(s) {sorted(unknown)}; valid: {sorted(known)}")
    offset_max = params.get("offset_max", "3 deg")
    import astropy.units as u
    offset_max = float(u.Quantity(offset_max).to_value("deg")) if not isinstance(offset_max, (int, float)) \
        else float(offset_max)
    return ReductionSpec(geom=geom, energy=energy, energy_true=energy_true, binsz_irf=_deg(w.binsize_irf),
                         cutout_width=2 * _deg(d.geom.selection.offset_max),
                         safe_mask_methods=tuple(d.safe_mask.methods), offset_max=offset_max,
                         aeff_percent=float(params.get("aeff_percent", 10.0)),
                         bias_percent=float(params.get("bias_percent", 10.0)),
                         map_selection=tuple(d.map_selection))


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
        self.datastore: DataStore | None = None
        self.runs: list[RunRef] = []
        self.datasets: list[xr.Dataset] = []
        self.models = None
        self.fit_result = None
        self.timings: dict[str, float] = {}

    # ---- data
    def get_observations(self) -> list[RunRef]:
        o = self.config.observations
        self.datastore = DataStore.from_dir(o.datastore_path)
        cone = None
        if o.obs_cone.lon is not None:
            cone = (_deg(o.obs_cone.lon), _deg(o.obs_cone.lat), _deg(o.obs_cone.radius), o.obs_cone.frame)
        time_sel = None
        if o.obs_time.start is not None or o.obs_time.stop is not None:
            time_sel = (o.obs_time.start, o.obs_time.stop)
        ids = self.datastore.select(obs_ids=o.obs_ids or None, cone=cone, time=time_sel)
        if not ids:
            raise DataStoreError(f"observations: the selection matches no run in {self.datastore.base_dir}")
        required = [t for t in o.required_irf if t in ("aeff", "edisp", "psf", "bkg")]
        self.runs = self.datastore.runs(ids, required_irf=required)
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
        return progress_compute(list(objs), client=self.client, quiet=not self.progress, desc="reduce")

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
        if "likelihood_rounds" in like:              # on a cluster: rounds of actor calls and their traffic
            rounds = max(int(like["likelihood_rounds"]), 1)
            sched["likelihood_rounds"] = int(like["likelihood_rounds"])
            sched["chunks"] = int(like.get("chunks", 0))
            sched["chunks_rebuilt"] = int(like.get("chunks_rebuilt", 0))
            sched["bytes_sent_per_round"] = round(like["bytes_sent"] / rounds, 1)
            sched["bytes_received_per_round"] = round(like["bytes_received"] / rounds, 1)
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

    def read_models(self, path) -> None:
        from .models import Models
        self.set_models(Models.read(path))

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
