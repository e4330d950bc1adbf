"""Reading single-row GADF IRF tables into plain arrays, with unit checks."""
from __future__ import annotations

import functools
import warnings

import astropy.units as u
import numpy as np

from ..datastore import DataStoreError, HDURef, file_cache, open_hdu

__all__ = ["IRFTable", "read_irf_table", "edges", "column", "axis_coords"]

_warned: set = set()

# Unit strings that astropy cannot parse but whose meaning is known, with that meaning.  Only these
# are read with a warning; any other unparsable unit is an error (a guess could be off by 1e6).
KNOWN_INVALID_UNITS = {
    "1/s/MeV/sr": "s-1 MeV-1 sr-1",         # CTA-1DC background (BGD), prod3b irf_file.fits
}


def _warn_once(key, msg):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(msg, stacklevel=3)


class IRFTable:
    """Columns of a single-row IRF BINTABLE, as float arrays with their unit strings."""

    def __init__(self, ref: HDURef, data, header):
        self.ref = ref
        self.header = header
        self._data = data.copy() if hasattr(data, "copy") else data     # not a view of the whole file
        self._units = {}
        for i, name in enumerate(data.columns.names):
            self._units[name.upper()] = (data.columns[i].unit or "").strip()
        self._names = {n.upper(): n for n in data.columns.names}

    def __contains__(self, name):
        return name.upper() in self._names

    def raw(self, name: str) -> np.ndarray:
        if name.upper() not in self._names:
            raise DataStoreError(f"{self.ref}: missing column {name} (columns: {list(self._names)})")
        return np.asarray(self._data[self._names[name.upper()]][0])

    def unit(self, name: str) -> str:
        return self._units.get(name.upper(), "")

    def get(self, name: str, unit: str | None = None, assume: str | None = None) -> np.ndarray:
        """Column ``name`` as float64 in ``unit`` (converted if the file uses another one)."""
        v = self.raw(name).astype(float)
        if unit is None:
            return v
        ustr = self.unit(name)
        if not ustr:
            if assume is None:
                _warn_once((self.ref.path, name), f"{self.ref}: column {name} has no unit; assuming {unit}")
                return v
            ustr = assume
        try:
            src = _parse_unit(ustr)
        except ValueError:
            known = KNOWN_INVALID_UNITS.get(ustr.replace(" ", ""))
            if known is None:
                raise DataStoreError(f"{self.ref}: column {name} has unit '{ustr}', which is not a valid FITS unit "
                                     f"(write e.g. '{unit}'; the only invalid spellings read are "
                                     f"{sorted(KNOWN_INVALID_UNITS)})") from None
            _warn_once(("unit", ustr, name), f"{self.ref}: invalid unit '{ustr}' in column {name}; "
                                             f"read as {known}")
            src = _parse_unit(known)
        try:
            scale = _unit_scale(src, unit)
        except u.UnitConversionError:
            raise DataStoreError(f"{self.ref}: column {name} has unit '{ustr}', "
                                 f"not convertible to {unit}") from None
        return v if scale is None else v * scale


@functools.lru_cache(maxsize=256)
def _parse_unit(ustr: str):
    return u.Unit(ustr, parse_strict="raise")


@functools.lru_cache(maxsize=256)
def _unit_scale(src, unit: str):
    """The factor from ``src`` to ``unit`` (None for 1), as ``Quantity.to_value`` applies it."""
    from astropy.units.utils import is_effectively_unity  # deferred: heavy import (astropy)
    scale = src._to(u.Unit(unit))
    return None if is_effectively_unity(scale) else scale


@file_cache(maxsize=64)
def _cached(path: str, hdu: str, hdu_class: str, hdu_type: str) -> IRFTable:
    ref = HDURef(path, hdu, hdu_class, hdu_type)
    data, header = open_hdu(ref)
    if data is None or len(data) < 1:
        raise DataStoreError(f"{ref}: empty IRF table")
    return IRFTable(ref, data, header)


def read_irf_table(ref: HDURef) -> IRFTable:
    return _cached(ref.path, ref.hdu, ref.hdu_class, ref.hdu_type)


def edges(tab: IRFTable, lo: str, hi: str, unit: str | None = None) -> np.ndarray:
    """Bin edges of an IRF axis from its LO/HI columns.

    Where LO == HI the column lists *nodes* (the H.E.S.S. DR1 offset axes): the
    edges are then the midpoints between nodes, extended by half a step at both
    ends, so that the bin centres are the nodes again.
    """
    a, b = tab.get(lo, unit, assume=unit), tab.get(hi, unit, assume=unit)
    if a.size > 1 and np.allclose(a, b):
        mid = 0.5 * (a[1:] + a[:-1])
        e = np.concatenate([[a[0] - (mid[0] - a[0])], mid, [a[-1] + (a[-1] - mid[-1])]])
    else:
        e = np.append(a, b[-1])
    if not np.all(np.diff(e) > 0):
        raise DataStoreError(f"{tab.ref}: axis {lo}/{hi} is not strictly increasing")
    return e


def axis_coords(name: str, e: np.ndarray, log: bool) -> dict:
    """Coordinates of one IRF axis from its edges: ``name`` at the bin centres (geometric for a
    log axis such as energy, arithmetic otherwise) and ``name_lo`` / ``name_hi`` on that dim.

    Parameters
    ----------
    name : str
        The axis (dim) name.
    e : numpy.ndarray
        Its edges.
    log : bool
        Geometric bin centres.

    Returns
    -------
    dict
        The coordinates, for an ``xarray.DataArray``.
    """
    c = np.sqrt(e[:-1] * e[1:]) if log else 0.5 * (e[:-1] + e[1:])
    return {name: c, f"{name}_lo": (name, e[:-1]), f"{name}_hi": (name, e[1:])}


def column(tab: IRFTable, name: str, shape: tuple, unit: str | None = None, assume: str | None = None,
           transpose: bool = True) -> np.ndarray:
    """An IRF data column reshaped to ``shape`` (gcxr axis order).

    FITS stores the axes in reverse order; ``transpose`` undoes that.  NaN values
    are an error; negative values are clipped to 0 with a warning naming the HDU.
    """
    v = tab.get(name, unit, assume=assume)
    if v.size != int(np.prod(shape)):
        raise DataStoreError(f"{tab.ref}: column {name} has {v.size} values, axes need {shape}")
    if transpose:
        v = v.reshape(shape[::-1]).T
    else:
        v = v.reshape(shape)
    if not np.all(np.isfinite(v)):
        n = int(np.count_nonzero(~np.isfinite(v)))
        raise DataStoreError(f"{tab.ref}: column {name} has {n} non-finite value(s)")
    if np.any(v < 0):
        n = int(np.count_nonzero(v < 0))
        _warn_once(("neg", tab.ref.path, tab.ref.hdu, name),
                   f"{tab.ref}: column {name} has {n} negative value(s); set to 0")
        v = np.clip(v, 0, None)
    return np.ascontiguousarray(v)
