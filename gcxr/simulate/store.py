"""The one-call simulation of a GADF store (:func:`simulate_datastore`, what ``gcxr simulate`` runs)
and a Poisson realisation of a predicted-counts cube (:func:`simulate_counts`).
"""
from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from ..io import atomic_path, write_json
from ..models import (ExpCutoffPowerLawSpectralModel, GaussianSpatialModel, Models, PointSpatialModel,
                      PowerLawSpectralModel, SkyModel)
from ..progress import progress_bar
from .events import sample_spatial, simulate_events, sky_models
from .irfs import IRFSet, ParametricIRF, irf_hdus, write_parametric_irfs
from .runs import SimulatedRun, as_rng, make_runs, run_rng, write_datastore

__all__ = ["simulate_datastore", "default_models", "simulate_counts", "DEFAULT_POINTINGS"]


# =========================================================================== one call
DEFAULT_POINTINGS = ((0.0, 1.0), (0.0, -1.0), (359.0, 0.0))


def default_models():
    """A Galactic-Centre-like sky: a point source with an ECPL spectrum and a Gaussian source (galactic)."""
    return Models([
        SkyModel(ExpCutoffPowerLawSpectralModel(index=2.3, amplitude=3e-12, reference=1.0, lambda_=0.05),
                 PointSpatialModel(lon_0=359.94, lat_0=-0.04, frame="galactic"), name="gc-point"),
        SkyModel(PowerLawSpectralModel(index=2.5, amplitude=2e-12, reference=1.0),
                 GaussianSpatialModel(lon_0=0.8, lat_0=-0.3, sigma=0.2, frame="galactic"), name="gauss-source"),
    ])


def simulate_datastore(out_dir: str | Path, pointings: Sequence[tuple[float, float]] = DEFAULT_POINTINGS,
                       livetime: float | Sequence[float] = 1800.0, models=None, irf: str | Path | None = None,
                       seed: int | None = 0, frame: str = "galactic", deadc: float = 0.98,
                       parametric: ParametricIRF | None = None, first_obs_id: int = 1,
                       quiet: bool | None = None) -> dict:
    """Simulate a complete GADF store in ``out_dir``; returns (and writes to ``simulation.json``) a summary.

    ``models`` is a :class:`~gcxr.models.Models`, a list of sky models or a models YAML path
    (default :func:`default_models`); ``irf`` an IRF file to use instead of the parametric IRFs.

    Parameters
    ----------
    out_dir : str or Path
        The store's folder.
    pointings : sequence of (float, float)
        Pointings (deg, in ``frame``).
    livetime : float or sequence of float
        Livetime per run (s).
    models : Models, list or path, optional
        The sources.
    irf : str or Path, optional
        An IRF file (default: parametric IRFs).
    seed : int, optional
        Random seed (files are byte-identical for one seed).
    frame : {'galactic', 'icrs'}
        Frame of ``pointings``.
    deadc : float
        Dead-time fraction.
    parametric : ParametricIRF, optional
        Parameters of the parametric IRFs.
    first_obs_id : int
        The first OBS_ID.
    quiet : bool, optional
        Hide progress.

    Examples
    --------
    >>> summary = simulate_datastore('store', pointings=[(0.0, 0.0)], livetime=120.0, seed=1)  # doctest: +SKIP
    >>> DataStore.from_dir('store').obs_ids     # doctest: +SKIP
    [1]
    """
    out = Path(out_dir).expanduser().resolve()
    if models is None:
        models = default_models()
    elif isinstance(models, (str, Path)):
        models = Models.read(models)
    runs = make_runs(pointings, livetime, frame=frame, deadc=deadc, first_obs_id=first_obs_id)
    for m in sky_models(models):                         # fail before writing anything
        if m.spatial_model is None:
            raise ValueError(f"simulate: source {m.name!r} has no spatial model")
        sample_spatial(np.random.default_rng(0), m.spatial_model, 0)
    if irf is None:
        irf_path = write_parametric_irfs(out / "irf" / "irf_parametric.fits", parametric)
    else:
        src = Path(irf).expanduser().resolve()
        irf_hdus(src)                                     # fail before writing anything
        irf_path = out / "irf" / src.name
        if src != irf_path:
            with atomic_path(irf_path) as tmp:
                shutil.copyfile(src, tmp)
    irfs = IRFSet.from_file(irf_path)
    simulated = []
    for run in progress_bar(runs, desc="simulate", unit="run", quiet=quiet):
        simulated.append(SimulatedRun(run, simulate_events(run, irfs, models, run_rng(seed, run.obs_id))))
    write_datastore(out, simulated, irf_path)
    summary = {"out_dir": str(out), "seed": seed, "irf": str(irf_path.relative_to(out)),
               "models": [m.name for m in sky_models(models)],
               "runs": [{**{k: v for k, v in asdict(r.spec).items()}, "ontime": r.spec.ontime,
                         "n_events": len(r.events), "counts": r.events.counts_by_component(),
                         "dropped": r.events.dropped} for r in simulated]}
    write_json(summary, out / "simulation.json")
    return summary


# =========================================================================== cube level
def simulate_counts(dataset: xr.Dataset, npred, seed: int | np.random.Generator | None = None) -> xr.Dataset:
    """A copy of ``dataset`` whose ``counts`` are a Poisson realisation of ``npred``.

    ``npred`` (DataArray or array) must have the shape of ``dataset["counts"]``;
    with a DataArray, its dims must be those of counts.  Reproducible from ``seed``.

    Parameters
    ----------
    dataset : xarray.Dataset
        A reduced dataset.
    npred : xarray.DataArray or numpy.ndarray
        Predicted counts.
    seed : int or numpy.random.Generator, optional
        Random seed.
    """
    counts = dataset["counts"]
    if isinstance(npred, xr.DataArray):
        if set(npred.dims) != set(counts.dims):
            raise ValueError(f"simulate_counts: npred has dims {npred.dims}, counts has {counts.dims}")
        npred = npred.transpose(*counts.dims)
    mu = np.asarray(getattr(npred, "values", npred), dtype=float)
    if mu.shape != counts.shape:
        raise ValueError(f"simulate_counts: npred has shape {mu.shape}, counts has {counts.shape} {counts.dims}")
    if not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError("simulate_counts: npred must be finite and non-negative "
                         f"({int(np.count_nonzero(~np.isfinite(mu) | (mu < 0)))} bad bins)")
    out = dataset.copy()
    out["counts"] = xr.Variable(counts.dims, as_rng(seed).poisson(mu).astype(counts.dtype), dict(counts.attrs))
    return out
