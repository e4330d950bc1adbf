"""A small reader of FITS binary tables: each file read and decompressed once, columns as views.

DL3 files are a few binary tables (events, GTI, IRFs) in one file, often gzipped.
Opening one HDU with astropy reads the gzip stream from the start up to that HDU
and builds column objects and a header of cards, which costs 10-50 ms per HDU;
a H.E.S.S. DR1 run has six HDUs in one file.  Here the file is read and
decompressed once, all headers are parsed with a few string operations, and
each binary table becomes a numpy structured array over the decompressed
bytes (big-endian, no copy).  Anything beyond plain fixed-size columns
(scaled columns, variable-length arrays, complex or bit columns) is handed to
astropy for that HDU, so the result is always the same.
"""
from __future__ import annotations

import gzip
import re
import zlib
import io

import numpy as np

__all__ = ["FitsError", "FitsHeader", "FitsTable", "FitsFile", "read_fits"]

BLOCK = 2880
CARD = 80


class FitsError(ValueError):
    """A file that is not a readable FITS file (the message says why)."""


class FitsHeader(dict):
    """Header keywords -> values (str, int, float, bool or None), looked up case-insensitively."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key.upper())

    def __contains__(self, key):
        return dict.__contains__(self, key.upper()) if isinstance(key, str) else False

    def get(self, key, default=None):
        return dict.get(self, key.upper(), default)

    def copy(self) -> "FitsHeader":
        return FitsHeader(self)


class _Column:
    __slots__ = ("name", "unit", "format", "dim")

    def __init__(self, name, unit, format="", dim=None):
        self.name, self.unit, self.format, self.dim = name, unit, format, dim


class _Columns(list):
    @property
    def names(self) -> list[str]:
        return [c.name for c in self]


class FitsTable:
    """The columns of a binary table: ``t["NAME"]`` (numpy array, one row per entry), ``len(t)``,
    ``t.columns.names`` and ``t.columns[i].unit`` (as in astropy's ``FITS_rec``)."""

    def __init__(self, columns: list[_Column], arrays: dict, nrows: int):
        self.columns = _Columns(columns)
        self._arrays = arrays
        self._upper = {c.name.upper(): c.name for c in columns}
        self._nrows = int(nrows)

    def __len__(self) -> int:
        return self._nrows

    def __getitem__(self, name: str) -> np.ndarray:
        key = self._upper.get(name.upper())
        if key is None:
            raise KeyError(f"no column {name!r} (columns: {self.columns.names})")
        return self._arrays[key]

    def copy(self) -> "FitsTable":
        """A table whose columns no longer point into the file's buffer."""
        return FitsTable(list(self.columns), {k: np.array(v) for k, v in self._arrays.items()}, self._nrows)


_STR_RE = re.compile(r"'((?:[^']|'')*)'")
_INT_RE = re.compile(r"^[+-]?\d+$")


def _parse_value(s: str):
    s = s.strip()
    if not s:
        return None
    if s[0] == "'":
        m = _STR_RE.match(s)
        if not m:
            return s
        return m.group(1).replace("''", "'").rstrip()
    v = s.split("/", 1)[0].strip()
    if v == "T":
        return True
    if v == "F":
        return False
    if not v:
        return None
    if _INT_RE.match(v):
        return int(v)
    try:
        return float(v.replace("D", "E").replace("d", "e"))
    except ValueError:
        return v


def _parse_header(buf, pos: int, end: int) -> tuple[FitsHeader, int]:
    """Parse header cards from ``pos``; returns the header and the start of the data (block-aligned)."""
    hdr = FitsHeader()
    last_str_key = None
    p = pos
    while True:
        if p + BLOCK > end:
            raise FitsError("file truncated inside a header")
        block = bytes(buf[p:p + BLOCK]).decode("ascii", errors="replace")
        p += BLOCK
        for i in range(0, BLOCK, CARD):
            card = block[i:i + CARD]
            key = card[:8].rstrip()
            if key == "END":
                return hdr, p
            if key == "CONTINUE" and last_str_key is not None:
                prev = hdr[last_str_key]
                more = _parse_value(card[8:])
                if isinstance(prev, str) and prev.endswith("&") and isinstance(more, str):
                    hdr[last_str_key] = prev[:-1] + more
                continue
            if key == "HIERARCH":
                body = card[9:]
                if "=" not in body:
                    continue
                k, v = body.split("=", 1)
                key, val = k.strip().upper(), _parse_value(v)
            elif card[8:10] == "= ":
                key, val = key.upper(), _parse_value(card[10:])
            else:
                last_str_key = None
                continue                       # COMMENT, HISTORY, blank cards
            if key not in hdr:                 # the first occurrence wins, as in astropy
                dict.__setitem__(hdr, key, val)
            last_str_key = key if isinstance(val, str) else None


_CODES = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM_RE = re.compile(r"^\s*(\d*)([A-Z])")


def _table_dtype(hdr: FitsHeader):
    """numpy dtype of a BINTABLE row, or None if a column needs astropy."""
    n = int(hdr.get("TFIELDS", 0))
    names, formats, cols, scales = [], [], [], {}
    for i in range(1, n + 1):
        tform = str(hdr.get(f"TFORM{i}", ""))
        m = _TFORM_RE.match(tform.upper())
        if not m:
            return None
        rep, code = int(m.group(1) or 1), m.group(2)
        scal, zero = hdr.get(f"TSCAL{i}"), hdr.get(f"TZERO{i}")
        scaled = None
        if scal is not None or zero is not None:
            if code not in "BIJKED" or not isinstance(scal if scal is not None else 1, (int, float)) \
                    or not isinstance(zero if zero is not None else 0, (int, float)):
                return None
            scaled = (1 if scal is None else scal, 0 if zero is None else zero)
        name = str(hdr.get(f"TTYPE{i}", f"col{i}")).strip()
        dim = hdr.get(f"TDIM{i}")
        if code == "A":
            fmt = f"S{rep}"
            shape = ()
        elif code in _CODES:
            shape = (rep,) if rep != 1 else ()
            if dim:
                try:
                    shape = tuple(int(x) for x in str(dim).strip("() ").split(","))[::-1]
                except ValueError:
                    return None
                if int(np.prod(shape)) != rep:
                    return None
            fmt = (_CODES[code], shape) if shape else _CODES[code]
            if rep == 0:
                fmt = (_CODES[code], (0,))
        else:
            return None                        # L, X, C, M, P, Q: astropy
        if name in names:
            return None
        names.append(name)
        formats.append(fmt)
        unit = hdr.get(f"TUNIT{i}")
        cols.append(_Column(name, str(unit).strip() if unit is not None else "", tform, dim))
        if scaled is not None:
            scales[name] = (code, *scaled)
    dt = np.dtype({"names": names, "formats": formats})
    if dt.itemsize != int(hdr.get("NAXIS1", -1)):
        return None
    return dt, cols, scales


_UNSIGNED = {"I": (">u2", 1 << 15), "J": (">u4", 1 << 31), "K": (">u8", 1 << 63)}


def _unscale(raw: np.ndarray, code: str, scal, zero) -> np.ndarray:
    """Physical values of a scaled column (TSCAL/TZERO), as astropy gives them."""
    if code in _UNSIGNED and scal == 1 and zero == _UNSIGNED[code][1]:
        udt, bit = _UNSIGNED[code]
        return raw.view(udt) ^ np.array(bit, udt)            # + 2^(n-1) modulo 2^n: unsigned integers
    if code == "B" and scal == 1 and zero == -128:
        return (raw.view("i1") ^ np.int8(-128))
    return raw.astype(np.float64) * scal + zero


class FitsFile:
    """All HDUs of one FITS file: ``f.names``, ``f.header(name)``, ``f.table(name)``."""

    def __init__(self, data: bytes, path: str = "<bytes>"):
        self.path = path
        self._buf = memoryview(data)
        self._hdus: list[tuple[str, FitsHeader, int, int]] = []      # name, header, data start, data size
        self._error = None
        pos, end = 0, len(data)
        if end < BLOCK or not bytes(self._buf[:9]) == b"SIMPLE  =":
            raise FitsError("not a FITS file (no SIMPLE card at the start)")
        while pos < end:
            try:
                hdr, start = _parse_header(self._buf, pos, end)
            except FitsError as err:
                if self._hdus and not bytes(self._buf[pos:min(end, pos + BLOCK)]).strip(b"\0 "):
                    break                        # padding after the last HDU
                self._error = str(err)
                break
            naxis = int(hdr.get("NAXIS", 0))
            size = 0
            if naxis > 0:
                size = abs(int(hdr.get("BITPIX", 8))) // 8 * int(hdr.get("GCOUNT", 1)) * (
                    int(hdr.get("PCOUNT", 0)) + int(np.prod([int(hdr.get(f"NAXIS{i}", 0))
                                                             for i in range(1, naxis + 1)])))
            name = str(hdr.get("EXTNAME", "PRIMARY" if not self._hdus else "")).strip().upper()
            self._hdus.append((name, hdr, start, size))
            pos = start + (size + BLOCK - 1) // BLOCK * BLOCK
            if start + size > end:
                self._error = f"file truncated in the data of HDU '{name}'"
                break

    @property
    def names(self) -> list[str]:
        return [h[0] for h in self._hdus]

    def _find(self, name: str):
        key = name.strip().upper()
        for h in self._hdus:
            if h[0] == key:
                return h
        if self._error:
            raise FitsError(f"HDU '{name}' not found before the end of the readable part ({self._error})")
        raise KeyError(name)

    def header(self, name: str) -> FitsHeader:
        return self._find(name)[1]

    def table(self, name: str) -> FitsTable | None:
        """The binary table of HDU ``name`` (None if it has no data)."""
        hname, hdr, start, size = self._find(name)
        if start + size > len(self._buf):
            raise FitsError(f"file truncated in the data of HDU '{hname}'")
        if str(hdr.get("XTENSION", "")).strip().upper() != "BINTABLE":
            raise FitsError(f"HDU '{hname}' is not a binary table")
        nrows = int(hdr.get("NAXIS2", 0))
        if nrows == 0 or int(hdr.get("NAXIS1", 0)) == 0:
            return None
        got = _table_dtype(hdr)
        if got is None:
            return self._astropy_table(hname)
        dt, cols, scales = got
        rec = np.frombuffer(self._buf, dtype=dt, count=nrows, offset=start)
        arrays = {n: rec[n] if n not in scales else _unscale(rec[n], *scales[n]) for n in dt.names}
        return FitsTable(cols, arrays, nrows)

    def _astropy_table(self, name: str) -> FitsTable | None:

        from astropy.io import fits  # deferred: heavy import (astropy)
        with fits.open(io.BytesIO(bytes(self._buf)), memmap=False) as h:
            data = h[name].data
            if data is None:
                return None
            cols = [_Column(c.name, (c.unit or "").strip(), str(c.format), c.dim) for c in data.columns]
            arrays = {c.name: np.array(data[c.name]) for c in data.columns}
            return FitsTable(cols, arrays, len(data))


def read_fits(path: str) -> FitsFile:
    """Read (and gunzip) a whole FITS file once."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        d = zlib.decompressobj(31)
        try:
            out = d.decompress(raw)
            if not d.eof or d.unused_data:          # truncated, or several gzip members
                out = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise FitsError(f"corrupt or truncated gzip stream ({err})") from None
        raw = out
    return FitsFile(raw, path)
