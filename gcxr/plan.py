"""What a config asks for: an ``AnalysisConfig`` translated into the plan of an analysis.

:class:`~gcxr.analysis.Analysis` carries out the steps; this module only reads the config (and,
for ``obs_file`` and ``obs_time``, the files and run times they name) and says what the steps are
to do, raising :class:`~gcxr.config.ConfigError` with the dotted key of anything it cannot honour:

* the reduction: :func:`spec_from_config` (sky grid, energy axes, safe mask, background), and
  :func:`check_memory` / :func:`estimate_dataset_bytes` / :func:`available_memory` (refuse a
  grid whose datasets cannot fit in memory before any run is read);
* the run selection: :func:`cone_from_config` (``obs_cone``), :func:`read_obs_file`
  (``obs_file``), :func:`select_time` (``obs_time``);
* the fit and the estimators: :func:`check_fit_selection` (``datasets.map_selection`` holds
  :data:`FIT_MAPS`), :func:`fit_range` (``fit.fit_range``), :func:`excess_map_options` and
  :func:`flux_points_edges` (``excess_map``, ``flux_points.energy``); the typed parameters of
  those sections are parsed in :mod:`gcxr.config.support`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .background import read_exclusion_mask
from .config import AnalysisConfig, ConfigError
from .config.support import check_supported, fov_options, safe_mask_options
from .datastore import DataStore
from .geom import EnergyAxis, SkyGeom
from .reduce import ReductionSpec

__all__ = ["spec_from_config", "read_obs_file", "select_time", "cone_from_config", "check_fit_selection",
           "FIT_MAPS", "fit_range", "excess_map_options", "flux_points_edges", "estimate_dataset_bytes",
           "available_memory", "check_memory"]


def _deg(q) -> float:
    return float(q.to_value("deg"))


def _tev(q) -> float:
    return float(q.to_value("TeV"))


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
    from astropy.table import Table  # deferred: heavy import (astropy)
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


def estimate_dataset_bytes(spec: ReductionSpec, n_datasets: int) -> int:
    """A lower bound of the memory the reduced datasets take: ``n_datasets`` x (counts, background
    (float64, reco energy), exposure (float64, true energy), safe mask (1 byte)) on the analysis grid.

    Parameters
    ----------
    spec : ReductionSpec
        The grid and the energy axes.
    n_datasets : int
        How many datasets are held at once (1 when stacked).

    Returns
    -------
    int
        Bytes.
    """
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

    Parameters
    ----------
    spec : ReductionSpec
        The grid and the energy axes.
    n_datasets : int
        How many datasets are held at once (1 when stacked).
    available : int, optional
        Bytes available (default: :func:`available_memory`).
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

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    tuple or None
        The cone.
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
    """Raise :class:`ConfigError` naming ``datasets.map_selection`` if it lacks a map a fit reads.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.
    """
    missing = [m for m in FIT_MAPS if m not in config.datasets.map_selection]
    if missing:
        raise ConfigError([("datasets.map_selection",
                            f"a fit needs the maps {list(FIT_MAPS)}; {missing} not selected "
                            f"(add them, or reduce only: gcxr run --no-fit)")])


def fit_range(config: AnalysisConfig) -> tuple[float | None, float | None] | None:
    """``fit.fit_range`` as (min, max) in TeV (either may be None: open), None if neither is set.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    tuple or None
        The bounds of the energy range the fit uses.
    """
    fr = config.fit.fit_range
    if fr.min is None and fr.max is None:
        return None
    return (_tev(fr.min) if fr.min is not None else None, _tev(fr.max) if fr.max is not None else None)


def excess_map_options(config: AnalysisConfig) -> dict:
    """The ``excess_map`` section as the keyword arguments of :func:`gcxr.estimators.excess_map`.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    dict
        ``correlation_radius`` (deg) and ``energy_edges`` (TeV, None: one band per reco-energy bin).
    """
    s = config.excess_map
    return {"correlation_radius": _deg(s.correlation_radius),
            "energy_edges": _axis_edges(s.energy_edges, "excess_map.energy_edges")}


def flux_points_edges(config: AnalysisConfig) -> np.ndarray:
    """The ``flux_points.energy`` bins: log-spaced edges in TeV; ConfigError if not given.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    numpy.ndarray
        The edges.
    """
    edges = _axis_edges(config.flux_points.energy, "flux_points.energy")
    if edges is None:
        raise ConfigError([("flux_points.energy", "min, max and nbins are required for flux points")])
    return edges
