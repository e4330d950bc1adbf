"""Observations and their GADF files: run specs, event lists, the events/GTI and index writers.

:class:`RunSpec` and :func:`make_runs` (the observation plan), :class:`EventList` (one run's
events), :func:`run_rng` (one run's random generator), :func:`write_run_events`,
:func:`write_index` and :func:`write_datastore` (the GADF store on disk).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..coords import transform_lonlat
from .irfs import GADF, irf_hdus, store_irf, write_fits

__all__ = ["RunSpec", "make_runs", "EventList", "SimulatedRun", "write_datastore", "write_run_events", "write_index",
           "run_rng", "as_rng", "MJDREF", "T0_DEFAULT", "SITE"]

MJDREF = (51544, 0.5)                  # MJDREFI, MJDREFF (2000-01-01 12:00 TT), as CTA 1DC
T0_DEFAULT = 788961600.0              # 2025-01-01 00:00 TT, in s since MJDREF
SITE = {"GEOLON": -70.3167, "GEOLAT": -24.6272, "ALTITUDE": 2150.0}   # a CTA-South-like site (deg, deg, m)


# =========================================================================== observations
@dataclass(frozen=True)
class RunSpec:
    """One simulated observation: pointing (ICRS, deg), livetime (s), dead-time fraction, start."""

    obs_id: int
    ra_pnt: float
    dec_pnt: float
    livetime: float = 1800.0
    deadc: float = 0.98
    tstart: float = T0_DEFAULT

    def __post_init__(self):
        if not self.livetime > 0:
            raise ValueError(f"run {self.obs_id}: livetime must be positive, got {self.livetime} s")
        if not 0 < self.deadc <= 1:
            raise ValueError(f"run {self.obs_id}: deadc must be in (0, 1], got {self.deadc}")

    @property
    def ontime(self) -> float:
        """Ontime (s): livetime / deadc."""
        return self.livetime / self.deadc

    @property
    def tstop(self) -> float:
        """End of the run (s, mission time)."""
        return self.tstart + self.ontime


def make_runs(pointings: Iterable[tuple[float, float]], livetime: float | Sequence[float] = 1800.0,
              frame: str = "galactic", deadc: float = 0.98, first_obs_id: int = 1,
              tstart: float = T0_DEFAULT, gap: float = 600.0) -> list[RunSpec]:
    """Consecutive runs at ``pointings`` ((lon, lat) deg in ``frame``), ``gap`` s apart.

    Parameters
    ----------
    pointings : iterable of (float, float)
        Pointing positions (deg).
    livetime : float or sequence of float
        Livetime per run (s).
    frame : {'galactic', 'icrs'}
        Frame of ``pointings``.
    deadc : float
        Dead-time fraction (livetime / ontime).
    first_obs_id : int
        The first run's OBS_ID.
    tstart : float
        Start of the first run (s, mission time).
    gap : float
        Time between runs (s).

    Returns
    -------
    list of RunSpec
        The runs.
    """
    pointings = [tuple(map(float, p)) for p in pointings]
    if not pointings:
        raise ValueError("make_runs: no pointings given")
    lt = np.broadcast_to(np.asarray(livetime, dtype=float), (len(pointings),))
    runs, t = [], float(tstart)
    for i, ((lon, lat), live) in enumerate(zip(pointings, lt)):
        ra, dec = transform_lonlat(np.array([lon]), np.array([lat]), frame, "icrs")
        run = RunSpec(first_obs_id + i, float(ra[0]), float(dec[0]), float(live), deadc, t)
        runs.append(run)
        t = run.tstop + gap
    return runs


@dataclass
class EventList:
    """Simulated events (ICRS deg, reco energy TeV, time s since MJDREF); ``mc_id`` 0 = background."""

    time: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    energy: np.ndarray
    mc_id: np.ndarray
    sources: tuple[str, ...] = ()
    dropped: int = 0          # source events without an energy-dispersion response (outside the IRF)

    def __len__(self) -> int:
        return int(self.time.size)

    def counts_by_component(self) -> dict[str, int]:
        """Number of events per component: ``background`` and the sky models' names."""
        out = {"background": int(np.count_nonzero(self.mc_id == 0))}
        for i, name in enumerate(self.sources, start=1):
            out[name] = int(np.count_nonzero(self.mc_id == i))
        return out

# =========================================================================== sampling helpers
def as_rng(seed) -> np.random.Generator:
    """``seed`` if it is a generator, else ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    seed : int, numpy.random.Generator or None
        A seed or a generator.

    Returns
    -------
    numpy.random.Generator
        The generator.
    """
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def run_rng(seed: int | None, obs_id: int) -> np.random.Generator:
    """The generator of one run: a function of (seed, obs_id) only.

    Parameters
    ----------
    seed : int or None
        The simulation's seed.
    obs_id : int
        The run.

    Returns
    -------
    numpy.random.Generator
        The run's generator.
    """
    entropy = [int(obs_id)] if seed is None else [int(seed), int(obs_id)]
    return np.random.default_rng(np.random.SeedSequence(entropy))



# =========================================================================== GADF writer
@dataclass(frozen=True)
class SimulatedRun:
    """A run and its simulated events (what :func:`write_datastore` writes)."""

    spec: RunSpec
    events: EventList = field(compare=False)


def _time_keys(t: float) -> dict:
    from astropy.time import Time  # deferred: heavy import (astropy)
    iso = Time(MJDREF[0] + MJDREF[1] + t / 86400.0, format="mjd", scale="tt").utc.isot
    return {"date": iso[:10], "time": iso[11:19]}


def _time_header() -> dict:
    return {"MJDREFI": MJDREF[0], "MJDREFF": MJDREF[1], "TIMEUNIT": "s", "TIMESYS": "TT", "TIMEREF": "LOCAL"}


def _events_hdus(run: RunSpec, ev: EventList) -> list[fits.BinTableHDU]:
    cols = [fits.Column("EVENT_ID", "K", array=np.arange(1, len(ev) + 1, dtype=np.int64)),
            fits.Column("TIME", "D", unit="s", array=ev.time),
            fits.Column("RA", "E", unit="deg", array=ev.ra.astype(np.float32)),
            fits.Column("DEC", "E", unit="deg", array=ev.dec.astype(np.float32)),
            fits.Column("ENERGY", "E", unit="TeV", array=ev.energy.astype(np.float32)),
            fits.Column("MC_ID", "J", array=ev.mc_id.astype(np.int32))]
    events = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    start, stop = _time_keys(run.tstart), _time_keys(run.tstop)
    events.header.update({
        **GADF, "HDUCLAS1": "EVENTS", "OBS_ID": run.obs_id, "TSTART": run.tstart, "TSTOP": run.tstop,
        "ONTIME": run.ontime, "LIVETIME": run.livetime, "DEADC": run.deadc, "TELAPSE": run.ontime,
        **_time_header(), "DATE-OBS": start["date"], "TIME-OBS": start["time"],
        "DATE-END": stop["date"], "TIME-END": stop["time"],
        "OBS_MODE": "POINTING", "RA_PNT": run.ra_pnt, "DEC_PNT": run.dec_pnt, "RADECSYS": "ICRS",
        "EQUINOX": 2000.0, "TELESCOP": "GCXR-SIM", "INSTRUME": "parametric", "CREATOR": "gcxr.simulate",
        "OBJECT": "simulation", "EUNIT": "TeV", **SITE})
    for i, name in enumerate(ev.sources, start=1):
        events.header[f"MMN{i:05d}"] = (name[:68], f"MC_ID {i}")
    gti = fits.BinTableHDU.from_columns([fits.Column("START", "D", unit="s", array=[run.tstart]),
                                         fits.Column("STOP", "D", unit="s", array=[run.tstop])], name="GTI")
    gti.header.update({**GADF, "HDUCLAS1": "GTI", **_time_header()})
    return [events, gti]


def _index_hdus(specs: Sequence[RunSpec], n_events: Sequence[int], files: dict, irf_rel: Path,
                irf_refs: dict) -> list:
    """HDU and observation index tables of runs given by their specs and event counts."""
    rows = []
    for spec in specs:
        d, f = files[spec.obs_id]
        rows += [(spec.obs_id, "events", "events", d, f, "EVENTS"), (spec.obs_id, "gti", "gti", d, f, "GTI")]
        for kind in ("aeff", "edisp", "psf", "bkg"):
            ref = irf_refs[kind]
            rows.append((spec.obs_id, kind, ref.hdu_class, str(irf_rel.parent), irf_rel.name, ref.hdu))
    hdu_t = Table(rows=rows, names=("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"),
                  dtype=(np.int64, "U6", "U10", "U64", "U64", "U32"))
    hdu_index = fits.table_to_hdu(hdu_t)
    hdu_index.name = "HDU_INDEX"
    hdu_index.header.update({**GADF, "HDUCLAS1": "INDEX", "HDUCLAS2": "HDU"})
    ra = np.array([r.ra_pnt for r in specs])
    dec = np.array([r.dec_pnt for r in specs])
    glon, glat = transform_lonlat(ra, dec, "icrs", "galactic")
    starts = [_time_keys(r.tstart) for r in specs]
    stops = [_time_keys(r.tstop) for r in specs]
    obs_t = Table({
        "OBS_ID": np.array([r.obs_id for r in specs], np.int64), "RA_PNT": ra, "DEC_PNT": dec,
        "GLON_PNT": glon, "GLAT_PNT": glat,
        "ONTIME": [r.ontime for r in specs], "LIVETIME": [r.livetime for r in specs],
        "DEADC": [r.deadc for r in specs], "TSTART": [r.tstart for r in specs],
        "TSTOP": [r.tstop for r in specs],
        "DATE-OBS": [s["date"] for s in starts], "TIME-OBS": [s["time"] for s in starts],
        "DATE-END": [s["date"] for s in stops], "TIME-END": [s["time"] for s in stops],
        "OBS_MODE": ["POINTING"] * len(specs), "OBJECT": ["simulation"] * len(specs),
        "EVENT_COUNT": np.array(n_events, np.int64)})
    for c in ("RA_PNT", "DEC_PNT", "GLON_PNT", "GLAT_PNT"):
        obs_t[c].unit = "deg"
    for c in ("ONTIME", "LIVETIME", "TSTART", "TSTOP"):
        obs_t[c].unit = "s"
    obs_index = fits.table_to_hdu(obs_t)
    obs_index.name = "OBS_INDEX"
    obs_index.header.update({**GADF, "HDUCLAS1": "INDEX", "HDUCLAS2": "OBS", **_time_header()})
    return [hdu_index, obs_index]


def write_datastore(out_dir: str | Path, runs: Sequence[SimulatedRun], irf_file: str | Path) -> Path:
    """Write a GADF data store: ``data/run_<obs_id>.fits.gz`` (EVENTS, GTI), the IRF file under
    ``irf/`` (copied there if it lives elsewhere), then ``hdu-index.fits.gz`` and ``obs-index.fits.gz``.

    Every file goes to a temporary name first; the index files come last, so an
    interrupted write never leaves a store that indexes missing or partial files.

    Parameters
    ----------
    out_dir : str or Path
        The store's folder.
    runs : sequence of SimulatedRun
        Runs with their events.
    irf_file : str or Path
        The IRF file.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    ids = [r.spec.obs_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"write_datastore: duplicate obs ids {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    if not runs:
        raise ValueError("write_datastore: no runs to write")
    out, irf_file = store_irf(out_dir, irf_file)
    for r in runs:
        write_run_events(out, r.spec, r.events)
    return write_index(out, [r.spec for r in runs], [len(r.events) for r in runs], irf_file)



def _run_file(obs_id: int) -> tuple[str, str]:
    return "data", f"run_{obs_id:06d}.fits.gz"


def write_run_events(out_dir: str | Path, spec: RunSpec, events: EventList, compresslevel: int = 6) -> Path:
    """Write one run's EVENTS and GTI to ``data/run_<obs_id>.fits.gz`` of a store (not yet indexed).

    With :func:`write_index` after the last run, a store is written one run at a time: only one
    run's events are in memory (what :func:`gcxr.survey.simulate_survey` does). ``compresslevel``
    is gzip's (1: ~4x faster to write than 6, files ~15 % larger).

    Parameters
    ----------
    out_dir : str or Path
        The store's folder.
    spec : RunSpec
        The run.
    events : EventList
        Its events.
    compresslevel : int
        gzip level.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    d, name = _run_file(spec.obs_id)
    return write_fits(_events_hdus(spec, events), Path(out_dir) / d / name, compresslevel)


def write_index(out_dir: str | Path, specs: Sequence[RunSpec], n_events: Sequence[int], irf_file: str | Path) -> Path:
    """Write ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` for runs already written with
    :func:`write_run_events`; ``irf_file`` must lie inside the store.

    Parameters
    ----------
    out_dir : str or Path
        The store's folder.
    specs : sequence of RunSpec
        The runs written.
    n_events : sequence of int
        Events per run.
    irf_file : str or Path
        The IRF file (inside the store).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir).expanduser().resolve()
    irf_file = Path(irf_file).expanduser().resolve()
    ids = [s.obs_id for s in specs]
    if not specs or len(set(ids)) != len(ids) or len(n_events) != len(specs):
        raise ValueError(f"write_index: need one event count per run and unique obs ids, got {len(specs)} runs, "
                         f"{len(n_events)} counts, {len(specs) - len(set(ids))} duplicate ids")
    refs = irf_hdus(irf_file)
    files = {i: _run_file(i) for i in ids}
    hdu_index, obs_index = _index_hdus(specs, n_events, files, irf_file.relative_to(out), refs)
    write_fits([hdu_index], out / "hdu-index.fits.gz")
    write_fits([obs_index], out / "obs-index.fits.gz")
    return out

