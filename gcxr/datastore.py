"""GADF data store: obs-index and hdu-index -> run references.

A :class:`RunRef` is a value object holding file paths and HDU names only; it
is cheap to pickle and is opened where the work happens (possibly on a dask
worker).  The readers at the bottom of this module open events and GTIs and
raise :class:`DataStoreError` naming the file, run and HDU when something is
missing or malformed.
"""
from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ._fitsio import FitsFile, read_fits
from .coords import separation_deg, transform_lonlat

__all__ = ["DataStore", "RunRef", "HDURef", "DataStoreError", "Events", "read_events", "read_gti",
           "open_hdu", "file_cache"]

IRF_TYPES = ("aeff", "edisp", "psf", "bkg")


class DataStoreError(ValueError):
    """Bad or missing DL3 input; the message names the file, run, HDU or key."""


@dataclass(frozen=True)
class HDURef:
    path: str
    hdu: str
    hdu_class: str
    hdu_type: str

    def __str__(self) -> str:
        return f"{self.path}[{self.hdu}] ({self.hdu_type}/{self.hdu_class})"


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def file_cache(maxsize: int = 64):
    """``functools.lru_cache`` keyed also on the file's mtime and size.

    For readers whose first argument is an :class:`HDURef` or a path: a file
    rewritten in place (a store simulated again, an IRF replaced) is read anew
    instead of being served from the cache.

    Parameters
    ----------
    maxsize : int
        Entries kept.

    Returns
    -------
    callable
        The decorator.
    """
    def deco(fn):
        @functools.lru_cache(maxsize=maxsize)
        def cached(stamp, *args):
            return fn(*args)

        @functools.wraps(fn)
        def wrapper(*args):
            first = args[0]
            return cached(_file_stamp(first.path if isinstance(first, HDURef) else str(first)), *args)
        wrapper.cache_clear = cached.cache_clear
        wrapper.cache_info = cached.cache_info
        return wrapper
    return deco


@dataclass(frozen=True)
class RunRef:
    """Everything needed to open one observation, by path."""

    obs_id: int
    hdus: tuple[tuple[str, HDURef], ...]
    ra_pnt: float = float("nan")
    dec_pnt: float = float("nan")
    tstart: float = float("nan")
    tstop: float = float("nan")

    def hdu(self, hdu_type: str) -> HDURef:
        """The HDU of one type (``events``, ``gti``, ``aeff``, ``edisp``, ``psf``, ``bkg``).

        Parameters
        ----------
        hdu_type : str
            The HDU type of the hdu-index.

        Returns
        -------
        HDURef
            The file and HDU; :class:`DataStoreError` if missing.
        """
        for t, ref in self.hdus:
            if t == hdu_type:
                return ref
        raise DataStoreError(f"run {self.obs_id}: no '{hdu_type}' HDU in the hdu-index "
                             f"(available: {', '.join(t for t, _ in self.hdus)})")

    @property
    def hdu_types(self) -> tuple[str, ...]:
        """The HDU types the hdu-index lists for this run."""
        return tuple(t for t, _ in self.hdus)


def _resolve(path: Path, who: str = "") -> Path:
    """``path.resolve()``, with a symbolic link loop named as a :class:`DataStoreError`."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as err:     # RuntimeError: "Symlink loop" (Python < 3.13)
        raise DataStoreError(f"{who}{path}: cannot resolve the path: a symbolic link loop ({err})") from None


def _find_index(base: Path, stem: str) -> Path:
    for suffix in (".fits.gz", ".fits"):
        p = base / f"{stem}{suffix}"
        if p.exists():
            return p
    raise DataStoreError(f"data store {base}: no {stem}.fits(.gz) found")


def _read_table(path: Path, hdu: str | int) -> tuple[Table, fits.Header]:
    """(table, header) of a binary-table HDU; any failure to read it is a :class:`DataStoreError`
    naming the file (a truncated or corrupt gzip stream raises zlib.error, EOFError or IndexError
    inside astropy)."""
    try:
        with fits.open(path, memmap=False) as h:
            x = h[hdu]
            if not isinstance(x, fits.BinTableHDU):
                raise DataStoreError(f"{path}: HDU {hdu!r} is not a binary table ({type(x).__name__})")
            return Table(x.data), x.header.copy()
    except DataStoreError:
        raise
    except KeyError:
        raise DataStoreError(f"{path}: missing HDU '{hdu}'") from None
    except Exception as err:     # OSError, zlib.error, EOFError, IndexError, TypeError, ValueError ...
        raise DataStoreError(f"{path}: cannot read FITS ({type(err).__name__}: {err})") from None


def _strip(x) -> str:
    return x.decode().strip() if isinstance(x, bytes) else str(x).strip()


@dataclass
class DataStore:
    """A GADF data store (a directory with ``obs-index`` and ``hdu-index``)."""

    base_dir: Path
    obs_table: Table
    hdu_table: Table
    _runs: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dir(cls, path: str | Path) -> "DataStore":
        """Open the data store in ``path`` (``$VAR``, ``${VAR}`` and ``~`` are expanded;
        ``$GCXR_DATA`` and ``$GAMMAPY_DATA`` stand in for each other).

        Parameters
        ----------
        path : str or Path
            The folder holding ``obs-index`` and ``hdu-index``.

        Returns
        -------
        DataStore
            The store; :class:`DataStoreError` naming the file otherwise.

        Examples
        --------
        >>> store = DataStore.from_dir('$GCXR_DATA/cta-1dc/index/gps')     # doctest: +SKIP
        """
        from .config import ConfigError, expand_path  # deferred: keeps gcxr.reduce free of pydantic (gcxr.config)
        try:
            base = expand_path(path)
        except ConfigError as exc:
            raise DataStoreError(f"data store path {str(path)!r}: {exc.errors[0][1]}") from None
        if not base.is_dir():
            if base.is_symlink():
                _resolve(base, "data store directory: ")
                raise DataStoreError(f"data store directory not found: {base} (a symbolic link to "
                                     f"{os.readlink(base)}, which does not exist)")
            raise DataStoreError(f"data store directory not found: {base}")
        hdu_path = _find_index(base, "hdu-index")
        obs_path = _find_index(base, "obs-index")
        hdu_table, base_hdr = _read_table(hdu_path, 1)
        obs_table, _ = _read_table(obs_path, 1)
        for need, tab, p in ((("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"), hdu_table,
                              hdu_path), (("OBS_ID",), obs_table, obs_path)):
            missing = [c for c in need if c not in tab.colnames]
            if missing:
                raise DataStoreError(f"{p}: missing column(s) {missing}")
        store = cls(base, obs_table, hdu_table)
        store._index_base = base / base_hdr.get("BASE_DIR", "") if base_hdr.get("BASE_DIR") else base
        return store

    # ---- selection
    @property
    def obs_ids(self) -> list[int]:
        """Every OBS_ID of the obs-index, in order."""
        return [int(x) for x in self.obs_table["OBS_ID"]]

    def select(self, obs_ids=None, cone=None, time=None) -> list[int]:
        """Obs ids matching all given criteria, in the order requested (or index order).

        ``cone`` is ``(lon, lat, radius, frame)`` in deg; ``time`` is ``(tstart, tstop)``
        as astropy Times (runs overlapping the interval are kept).

        Parameters
        ----------
        obs_ids : sequence of int, optional
            Runs to keep.
        cone : tuple, optional
            ``(lon, lat, radius, frame)`` (deg).
        time : tuple of astropy.time.Time, optional
            ``(tstart, tstop)``.

        Returns
        -------
        list of int
            The matching obs ids.
        """
        ids = self.obs_ids
        if obs_ids is not None:
            obs_ids = [int(o) for o in obs_ids]
            unknown = [o for o in obs_ids if o not in set(ids)]
            if unknown:
                raise DataStoreError(f"obs id(s) {unknown} not in the obs-index of {self.base_dir} "
                                     f"({len(ids)} runs, e.g. {ids[:5]})")
            ids = obs_ids
        if cone is not None:
            lon, lat, radius, frame = cone
            if not {"RA_PNT", "DEC_PNT"} <= set(self.obs_table.colnames):
                raise DataStoreError(f"{self.base_dir}: obs-index has no RA_PNT/DEC_PNT for a cone selection")
            rows = {int(o): i for i, o in enumerate(self.obs_table["OBS_ID"])}
            ra = np.array([float(self.obs_table["RA_PNT"][rows[o]]) for o in ids])
            dec = np.array([float(self.obs_table["DEC_PNT"][rows[o]]) for o in ids])
            l0, b0 = transform_lonlat(np.array([lon]), np.array([lat]), frame or "icrs", "icrs")
            sep = separation_deg(ra, dec, l0[0], b0[0])
            ids = [o for o, s in zip(ids, sep) if s <= radius]
        if time is not None:
            start, stop = time
            rows = {int(o): i for i, o in enumerate(self.obs_table["OBS_ID"])}
            t0, t1 = self._run_times()
            keep = []
            for o in ids:
                a, b = t0[rows[o]], t1[rows[o]]
                if (start is None or b >= start) and (stop is None or a <= stop):
                    keep.append(o)
            ids = keep
        return ids

    def _run_times(self):
        from astropy.time import Time  # deferred: heavy import (astropy)
        tab = self.obs_table
        if not {"TSTART", "TSTOP"} <= set(tab.colnames):
            raise DataStoreError(f"{self.base_dir}: obs-index has no TSTART/TSTOP for a time selection")
        hdr = fits.getheader(_find_index(self.base_dir, "obs-index"), 1)
        mjdref = hdr.get("MJDREFI", 51910) + hdr.get("MJDREFF", 0.0)
        scale = str(hdr.get("TIMESYS", "tt")).lower()
        t0 = Time(mjdref + np.asarray(tab["TSTART"], float) / 86400.0, format="mjd", scale=scale)
        t1 = Time(mjdref + np.asarray(tab["TSTOP"], float) / 86400.0, format="mjd", scale=scale)
        return t0, t1

    def run_times(self) -> dict[int, tuple]:
        """``{obs_id: (start, stop)}`` as astropy Times, from the obs-index TSTART/TSTOP."""
        t0, t1 = self._run_times()
        return {int(o): (a, b) for o, a, b in zip(self.obs_table["OBS_ID"], t0, t1)}

    # ---- run references
    def run(self, obs_id: int) -> RunRef:
        """The reference of one run (cached).

        Parameters
        ----------
        obs_id : int
            The run.

        Returns
        -------
        RunRef
            File paths, HDU names, pointing, times; :class:`DataStoreError` if unknown.
        """
        obs_id = int(obs_id)
        if obs_id in self._runs:
            return self._runs[obs_id]
        rows = self.hdu_table[np.asarray(self.hdu_table["OBS_ID"]) == obs_id]
        if len(rows) == 0:
            raise DataStoreError(f"obs id {obs_id} not in the hdu-index of {self.base_dir}")
        base = getattr(self, "_index_base", self.base_dir)
        hdus = []
        for r in rows:
            t = _strip(r["HDU_TYPE"])
            path = _resolve(base / _strip(r["FILE_DIR"]) / _strip(r["FILE_NAME"]), f"run {obs_id}: ")
            hdus.append((t, HDURef(str(path), _strip(r["HDU_NAME"]), _strip(r["HDU_CLASS"]), t)))
        obs = self.obs_table[np.asarray(self.obs_table["OBS_ID"]) == obs_id]
        kw = {}
        if len(obs):
            for key, col in (("ra_pnt", "RA_PNT"), ("dec_pnt", "DEC_PNT"), ("tstart", "TSTART"), ("tstop", "TSTOP")):
                if col in obs.colnames:
                    kw[key] = float(obs[col][0])
        ref = RunRef(obs_id, tuple(hdus), **kw)
        self._runs[obs_id] = ref
        return ref

    def runs(self, obs_ids, required_irf=IRF_TYPES, skip_missing: bool = False) -> list[RunRef]:
        """Run references; a run lacking a required HDU raises (or is skipped with a warning).

        Parameters
        ----------
        obs_ids : iterable of int
            The runs.
        required_irf : sequence of str
            HDU types each run must have.
        skip_missing : bool
            Skip runs that lack one (with a warning) instead of raising.

        Returns
        -------
        list of RunRef
            The references.
        """
        out, skipped = [], []
        for o in obs_ids:
            ref = self.run(o)
            missing = [t for t in ("events", "gti", *required_irf) if t not in ref.hdu_types]
            if missing:
                if skip_missing:
                    skipped.append((o, missing))
                    continue
                raise DataStoreError(f"run {o}: missing required HDU(s) {missing} in the hdu-index of {self.base_dir}")
            out.append(ref)
        if skipped:
            warnings.warn(f"skipped {len(skipped)} run(s) with missing HDUs: {skipped}", stacklevel=2)
        return out


# --------------------------------------------------------------------------- readers
@file_cache(maxsize=4)
def _fits_file(path: str) -> FitsFile:
    """The whole file, read and decompressed once (HDUs of one run are read from one buffer)."""
    return read_fits(path)


def open_hdu(ref: HDURef, obs_id: int | None = None):
    """(data, header) of an HDU, with errors naming the file, run and HDU.

    ``data`` is a :class:`gcxr._fitsio.FitsTable` (None for an HDU without rows);
    its columns are views of the file's decompressed bytes, read once per file.

    Parameters
    ----------
    ref : HDURef
        The file and HDU.
    obs_id : int, optional
        The run, for messages.

    Returns
    -------
    tuple
        ``(data, header)``.
    """
    who = f"run {obs_id}: " if obs_id is not None else ""
    p = Path(ref.path)
    if not p.exists():
        raise DataStoreError(f"{who}file not found: {p} (needed for the '{ref.hdu_type}' HDU '{ref.hdu}')")
    try:
        f = _fits_file(str(p))
        try:
            hdr = f.header(ref.hdu)
        except KeyError:
            raise DataStoreError(f"{who}{p}: missing HDU '{ref.hdu}' (file has {f.names})") from None
        return f.table(ref.hdu), hdr.copy()
    except DataStoreError:
        raise
    except Exception as err:  # truncated / corrupt FITS
        raise DataStoreError(f"{who}{p}: cannot read HDU '{ref.hdu}': {err}") from None


@dataclass(frozen=True)
class Events:
    obs_id: int
    ra: np.ndarray          # float32 as stored (deg)
    dec: np.ndarray
    energy: np.ndarray      # TeV
    ra_pnt: float
    dec_pnt: float
    deadc: float
    header: dict


def read_events(run: RunRef) -> Events:
    """The run's events (RA, Dec, energy in TeV) and pointing and dead-time from the EVENTS header.

    Parameters
    ----------
    run : RunRef
        The run.

    Returns
    -------
    Events
        The events; :class:`DataStoreError` naming the file, HDU or key otherwise.
    """
    ref = run.hdu("events")
    data, hdr = open_hdu(ref, run.obs_id)
    if data is None:
        raise DataStoreError(f"run {run.obs_id}: {ref}: empty events table")
    cols = {c.upper() for c in data.columns.names}
    for c in ("RA", "DEC", "ENERGY"):
        if c not in cols:
            raise DataStoreError(f"run {run.obs_id}: {ref}: missing column {c}")
    for k in ("RA_PNT", "DEC_PNT"):
        if k not in hdr:
            raise DataStoreError(f"run {run.obs_id}: {ref}: missing header key {k}")
    energy = np.asarray(data["ENERGY"])
    eunit = ""
    for i, n in enumerate(data.columns.names):
        if n.upper() == "ENERGY":
            eunit = (data.columns[i].unit or "TeV").strip()
    if eunit.lower() not in ("tev", ""):
        import astropy.units as u  # deferred: heavy import (astropy)
        try:
            energy = (energy * u.Unit(eunit)).to_value("TeV")
        except Exception:
            raise DataStoreError(f"run {run.obs_id}: {ref}: ENERGY column has unit '{eunit}', not an energy") from None
    deadc = header_float(hdr, "DEADC", f"run {run.obs_id}: {ref}", default=1.0)
    if not 0.0 < deadc <= 1.0:
        raise DataStoreError(f"run {run.obs_id}: {ref}: header key DEADC = {deadc}; the dead-time fraction must "
                             "be in (0, 1] (livetime = ontime x DEADC)")
    return Events(run.obs_id, np.asarray(data["RA"]), np.asarray(data["DEC"]), energy,
                  header_float(hdr, "RA_PNT", f"run {run.obs_id}: {ref}"),
                  header_float(hdr, "DEC_PNT", f"run {run.obs_id}: {ref}"), deadc,
                  {k: hdr[k] for k in ("RA_PNT", "DEC_PNT", "DEADC", "LIVETIME", "ONTIME", "CREATOR", "HDUVERS")
                   if k in hdr})


def header_float(hdr, key: str, where: str, default: float | None = None) -> float:
    """Header keyword ``key`` as a finite float, or a :class:`DataStoreError` naming ``where`` and the key."""
    if key not in hdr:
        if default is None:
            raise DataStoreError(f"{where}: missing header key {key}")
        return float(default)
    value = hdr[key]
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = float("nan")
    if isinstance(value, bool) or not np.isfinite(out):
        raise DataStoreError(f"{where}: header key {key} = {value!r} is not a finite number")
    return out


@file_cache(maxsize=256)
def _gti_cached(path: str, hdu: str, obs_id: int):
    data, hdr = open_hdu(HDURef(path, hdu, "gti", "gti"), obs_id)
    if data is None or len(data) == 0:
        raise DataStoreError(f"run {obs_id}: {path}[{hdu}]: empty GTI")
    where = f"run {obs_id}: {path}[{hdu}]"
    names = {n.upper() for n in data.columns.names}
    missing = [c for c in ("START", "STOP") if c not in names]
    if missing:
        raise DataStoreError(f"{where}: GTI without column(s) {missing} (columns: {data.columns.names})")
    start, stop = np.asarray(data["START"], float), np.asarray(data["STOP"], float)
    return check_gti(start, stop, where)


def check_gti(start: np.ndarray, stop: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(start, stop)`` unchanged if every GTI row is finite with STOP >= START.

    Raises
    ------
    DataStoreError
        Naming ``where`` (run, file and HDU) and the first bad row: a NaN or infinite time would
        make the run's livetime NaN (and the run vanish from a stack); STOP < START would subtract time.
    """
    bad = ~(np.isfinite(start) & np.isfinite(stop))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataStoreError(f"{where}: {int(bad.sum())} GTI row(s) with a non-finite START or STOP "
                             f"(row {i}: START={start[i]}, STOP={stop[i]})")
    back = stop < start
    if back.any():
        i = int(np.flatnonzero(back)[0])
        raise DataStoreError(f"{where}: {int(back.sum())} GTI row(s) with STOP < START "
                             f"(row {i}: START={start[i]}, STOP={stop[i]})")
    return start, stop


def read_gti(run: RunRef) -> tuple[np.ndarray, np.ndarray]:
    """The run's good time intervals.

    Parameters
    ----------
    run : RunRef
        The run.

    Returns
    -------
    tuple of numpy.ndarray
        ``(start, stop)`` (s).
    """
    ref = run.hdu("gti")
    return _gti_cached(ref.path, ref.hdu, run.obs_id)
