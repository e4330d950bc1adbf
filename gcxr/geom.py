"""Sky grids and energy axes.

A :class:`SkyGeom` is a plate-carree (CAR) grid whose reference latitude is 0,
so that pixel longitudes depend on the column only and latitudes on the row
only: the grid is fully described by 1-D ``lon`` and ``lat`` coordinates of the
pixel centres, and converts exactly to and from an astropy WCS
(``CTYPE = GLON-CAR/GLAT-CAR`` or ``RA---CAR/DEC--CAR``).  Array order is always
``(..., lat, lon)``.  A grid centred at latitude b0 has a longitude step of
binsz / cos(b0), so that pixels are square on the sky along the centre row
(for b0 = 0 it is the reference workflow's grid exactly).

An :class:`EnergyAxis` keeps its bin edges (written as a CF ``bounds``
variable); bin "centres" are geometric means, as IRFs are evaluated there.

The per-run cutout follows the convention of the reference workflow: a square
of ``n = round(width / binsz)`` pixels centred on the pointing, trimmed at the
edges of the parent grid (see docs/conventions.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import xarray as xr

if TYPE_CHECKING:                      # astropy.wcs is imported where a WCS is made (not by a reduction)
    from astropy.wcs import WCS

from . import accessor as _accessor  # noqa: F401  registers ds.gcxr wherever gcxr makes datasets (all use geom)
from .coords import lonlat_to_unit

__all__ = ["EnergyAxis", "SkyGeom", "FRAMES", "COORD_LONG_NAMES"]

Frame = Literal["icrs", "galactic"]
MAX_CENTRE_LAT = 75.0
FRAMES: dict[str, tuple[str, str]] = {"galactic": ("GLON", "GLAT"), "icrs": ("RA--", "DEC-")}
#: frame -> long names of the ``lon`` and ``lat`` coordinates (:meth:`SkyGeom.coords`)
COORD_LONG_NAMES: dict[str, tuple[str, str]] = {
    "galactic": ("Galactic longitude", "Galactic latitude"),
    "icrs": ("Right ascension (ICRS)", "Declination (ICRS)"),
}


# --------------------------------------------------------------------------- axes
@dataclass(frozen=True)
class EnergyAxis:
    """Energy bins in TeV. ``name`` is ``"energy"`` (reconstructed) or ``"energy_true"``."""

    edges: tuple[float, ...]
    name: str = "energy"

    def __post_init__(self):
        e = np.asarray(self.edges, dtype=float)
        if e.ndim != 1 or e.size < 2:
            raise ValueError(f"{self.name}: need at least two bin edges, got {self.edges!r}")
        if not np.all(np.diff(e) > 0) or e[0] <= 0:
            raise ValueError(f"{self.name}: edges must be positive and strictly increasing, got {e}")
        object.__setattr__(self, "edges", tuple(float(x) for x in e))

    @classmethod
    def from_bounds(cls, emin: float, emax: float, nbin: int, name: str = "energy") -> "EnergyAxis":
        """Log-spaced bins between ``emin`` and ``emax`` (TeV).

        Parameters
        ----------
        emin, emax : float
            The axis range (TeV).
        nbin : int
            The number of bins.
        name : {'energy', 'energy_true'}
            The axis name.

        Returns
        -------
        EnergyAxis
            The axis.

        Examples
        --------
        >>> EnergyAxis.from_bounds(0.1, 10, 2).edges
        (0.1, 1.0, 10.0)
        """
        if int(nbin) < 1:
            raise ValueError(f"{name}: nbins must be >= 1, got {nbin}")
        return cls(tuple(np.geomspace(float(emin), float(emax), int(nbin) + 1)), name)

    @classmethod
    def from_coord(cls, da: xr.DataArray | xr.Dataset, name: str = "energy") -> "EnergyAxis":
        """Rebuild the axis from a dataset holding ``name`` and ``name_bounds``.

        Parameters
        ----------
        da : xarray.Dataset or xarray.DataArray
            Holds ``name`` and ``<name>_bounds``.
        name : str
            The axis name.

        Returns
        -------
        EnergyAxis
            The axis.
        """
        b = np.asarray(da[f"{name}_bounds"].values, dtype=float)
        return cls(tuple(np.append(b[:, 0], b[-1, 1])), name)

    @property
    def edges_array(self) -> np.ndarray:
        """The bin edges (TeV) as an array."""
        return np.asarray(self.edges)

    @property
    def lo(self) -> np.ndarray:
        """Lower bin edges (TeV)."""
        return self.edges_array[:-1]

    @property
    def hi(self) -> np.ndarray:
        """Upper bin edges (TeV)."""
        return self.edges_array[1:]

    @property
    def centers(self) -> np.ndarray:
        """Log (geometric) bin centres (TeV)."""
        return np.sqrt(self.lo * self.hi)

    @property
    def nbin(self) -> int:
        """The number of bins."""
        return len(self.edges) - 1

    def coords(self) -> dict:
        """xarray coordinates: log centres plus a CF bounds variable."""
        long = "Reconstructed energy" if self.name == "energy" else "True energy"
        return {
            self.name: xr.Variable(self.name, self.centers,
                                   {"units": "TeV", "long_name": long, "bounds": f"{self.name}_bounds"}),
        }

    def bounds(self) -> xr.DataArray:
        """The CF bounds variable: (lo, hi) per bin, dims (name, bnds), TeV."""
        return xr.DataArray(np.stack([self.lo, self.hi], axis=-1), dims=(self.name, "bnds"),
                            attrs={"units": "TeV"})

    def mask_range(self, emin: float | None = None, emax: float | None = None) -> np.ndarray:
        """Bins lying *fully* inside ``[emin, emax]`` (TeV); ``None`` means open.

        Parameters
        ----------
        emin, emax : float, optional
            The range (TeV).

        Returns
        -------
        numpy.ndarray
            Boolean mask per bin.
        """
        keep = np.ones(self.nbin, bool)
        rtol = 1e-9
        if emin is not None:
            keep &= self.lo >= emin * (1 - rtol)
        if emax is not None:
            keep &= self.hi <= emax * (1 + rtol)
        return keep


def _wrap180(x):
    return (np.asarray(x, dtype=float) + 180.0) % 360.0 - 180.0


# --------------------------------------------------------------------------- sky grid
@dataclass(frozen=True)
class SkyGeom:
    """A plate-carree pixel grid.

    ``lon(x) = lon0 + dlon * (x - x_ref)`` and ``lat(y) = dlat * (y - y_ref)`` for
    0-based pixel indices; ``dlon < 0`` (longitude grows to the left as on the sky).
    """

    frame: str
    lon0: float          # CRVAL1
    dlon: float          # CDELT1 (negative)
    dlat: float          # CDELT2
    x_ref: float         # CRPIX1 - 1
    y_ref: float         # CRPIX2 - 1 (pixel where lat = 0)
    nx: int
    ny: int

    def __post_init__(self):
        if self.frame not in FRAMES:
            raise ValueError(f"frame must be one of {sorted(FRAMES)}, got {self.frame!r}")
        if self.nx < 1 or self.ny < 1:
            raise ValueError(f"a sky grid needs at least one pixel, got nx={self.nx}, ny={self.ny}")

    # ---- constructors
    @classmethod
    def create(cls, skydir: tuple[float, float], binsz: float, width: tuple[float, float] | float,
               frame: str = "galactic") -> "SkyGeom":
        """Grid of ``width`` (deg, or (width, height)) centred on ``skydir`` (deg).

        Parameters
        ----------
        skydir : tuple of float
            Centre (lon, lat) in ``frame`` (deg), latitude within 75 deg of the equator.
        binsz : float
            Pixel size (deg).
        width : float or tuple of float
            Width (and height) of the map (deg).
        frame : {'galactic', 'icrs'}
            The sky frame.

        Returns
        -------
        SkyGeom
            The grid.

        Examples
        --------
        >>> SkyGeom.create((0.0, 0.0), 0.02, (10.0, 8.0), 'galactic').shape
        (400, 500)
        """
        w, h = (width, width) if np.isscalar(width) else width
        if binsz <= 0:
            raise ValueError(f"binsize must be positive, got {binsz}")
        nx, ny = int(np.rint(w / binsz)), int(np.rint(h / binsz))
        if nx < 1 or ny < 1:
            raise ValueError(f"width {w} x {h} deg at binsize {binsz} deg gives no pixels")
        lon0, lat0 = float(skydir[0]), float(skydir[1])
        if abs(lat0) > MAX_CENTRE_LAT:
            raise ValueError(f"skydir latitude {lat0} deg: plate-carree grids are limited to |lat| <= "
                             f"{MAX_CENTRE_LAT} deg at the centre; use the other frame (icrs/galactic)")
        # pixels are binsz on the sky at the centre row: the longitude step is binsz / cos(lat0)
        dlon = float(binsz) / np.cos(np.deg2rad(lat0))
        if nx * dlon > 360.0 + 1e-9:
            raise ValueError(f"width {w} deg at binsize {binsz} deg (centre latitude {lat0} deg) spans "
                             f"{nx * dlon:g} deg of longitude, more than 360 deg (columns would repeat)")
        return cls(frame=frame, lon0=lon0, dlon=-dlon, dlat=float(binsz),
                   x_ref=(nx - 1) / 2.0, y_ref=(ny - 1) / 2.0 - lat0 / binsz, nx=nx, ny=ny)

    @classmethod
    def from_wcs(cls, wcs: "WCS", shape: tuple[int, int]) -> "SkyGeom":
        """From a CAR WCS whose CRVAL2 is 0 (the grids gcxr writes).

        Parameters
        ----------
        wcs : astropy.wcs.WCS
            A CAR WCS with CRVAL2 = 0.
        shape : tuple of int
            (ny, nx).

        Returns
        -------
        SkyGeom
            The grid.
        """
        w = wcs.celestial
        ctype = [c.upper() for c in w.wcs.ctype]
        if not ctype[0].endswith("-CAR"):
            raise ValueError(f"only CAR projections are supported, got CTYPE {ctype}")
        frame = "galactic" if ctype[0].startswith("GLON") else "icrs"
        if abs(w.wcs.crval[1]) > 1e-12:
            raise ValueError("only CAR grids with CRVAL2 = 0 (plate carree) are supported")
        cdelt = w.wcs.get_cdelt() if w.wcs.has_cd() or w.wcs.has_pc() else w.wcs.cdelt
        return cls(frame=frame, lon0=float(w.wcs.crval[0]), dlon=float(cdelt[0]), dlat=float(cdelt[1]),
                   x_ref=float(w.wcs.crpix[0]) - 1.0, y_ref=float(w.wcs.crpix[1]) - 1.0,
                   nx=int(shape[1]), ny=int(shape[0]))

    # ---- basic properties
    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return (self.ny, self.nx)

    @property
    def binsz(self) -> float:
        """Pixel size in latitude (deg)."""
        return abs(self.dlat)

    @property
    def wcs(self) -> "WCS":
        """The grid as an astropy WCS (CAR, CRVAL2 = 0)."""
        from astropy.wcs import WCS  # deferred: heavy import (astropy)
        w = WCS(naxis=2)
        a, b = FRAMES[self.frame]
        w.wcs.ctype = [f"{a}-CAR", f"{b}-CAR"]
        w.wcs.crval = [self.lon0, 0.0]
        w.wcs.cdelt = [self.dlon, self.dlat]
        w.wcs.crpix = [self.x_ref + 1.0, self.y_ref + 1.0]
        if self.frame == "icrs":
            w.wcs.radesys = "ICRS"
        w.array_shape = self.shape
        return w

    @property
    def lon(self) -> np.ndarray:
        """Pixel-centre longitudes (deg), length nx."""
        return self.lon0 + self.dlon * (np.arange(self.nx) - self.x_ref)

    @property
    def lat(self) -> np.ndarray:
        """Pixel-centre latitudes (deg), length ny."""
        return self.dlat * (np.arange(self.ny) - self.y_ref)

    @property
    def center(self) -> tuple[float, float]:
        """World coordinates of the geometric centre ((nx-1)/2, (ny-1)/2)."""
        return self.pix_to_world((self.nx - 1) / 2.0, (self.ny - 1) / 2.0)

    def pix_to_world(self, x, y):
        """World coordinates (deg) of 0-based pixel coordinates.

        Parameters
        ----------
        x, y : array_like
            Pixel coordinates (column, row).

        Returns
        -------
        lon, lat : numpy.ndarray
            (deg).
        """
        return (self.lon0 + self.dlon * (np.asarray(x, float) - self.x_ref),
                self.dlat * (np.asarray(y, float) - self.y_ref))

    def world_to_pix(self, lon, lat):
        """0-based pixel coordinates; longitudes are wrapped to the grid's reference.

        Parameters
        ----------
        lon, lat : array_like
            Positions in the grid's frame (deg).

        Returns
        -------
        x, y : numpy.ndarray
            Pixel coordinates.
        """
        dl = _wrap180(np.asarray(lon, float) - self.lon0)
        return dl / self.dlon + self.x_ref, np.asarray(lat, float) / self.dlat + self.y_ref

    def world_to_index(self, lon, lat):
        """Integer pixel indices (nearest centre) and a validity mask.

        Parameters
        ----------
        lon, lat : array_like
            Positions in the grid's frame (deg).

        Returns
        -------
        ix, iy : numpy.ndarray of int
            Column and row.
        ok : numpy.ndarray of bool
            Inside the grid.
        """
        x, y = self.world_to_pix(lon, lat)
        ix, iy = np.floor(x + 0.5).astype(np.int64), np.floor(y + 0.5).astype(np.int64)
        ok = (ix >= 0) & (ix < self.nx) & (iy >= 0) & (iy < self.ny)
        return ix, iy, ok

    def coords(self) -> dict:
        """xarray ``lon`` and ``lat`` coordinates with units, long names and CF axes."""
        ln, lt = COORD_LONG_NAMES[self.frame]
        return {
            "lon": xr.Variable("lon", self.lon, {"units": "degree", "long_name": ln, "axis": "X"}),
            "lat": xr.Variable("lat", self.lat, {"units": "degree", "long_name": lt, "axis": "Y"}),
        }

    def grid_lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """2-D (ny, nx) arrays of pixel-centre longitude and latitude."""
        lon, lat = np.meshgrid(self.lon, self.lat)
        return lon, lat

    def unit_vectors(self) -> np.ndarray:
        """(ny, nx, 3) unit vectors of the pixel centres in the grid frame."""
        return lonlat_to_unit(*self.grid_lonlat())

    def solid_angle(self) -> np.ndarray:
        """Exact pixel solid angle (sr), shape (ny, nx): dlon * (sin b_hi - sin b_lo)."""
        lat = self.lat
        b_lo = np.deg2rad(lat - self.dlat / 2.0)
        b_hi = np.deg2rad(lat + self.dlat / 2.0)
        lo, hi = np.minimum(b_lo, b_hi), np.maximum(b_lo, b_hi)
        lo, hi = np.clip(lo, -np.pi / 2, np.pi / 2), np.clip(hi, -np.pi / 2, np.pi / 2)
        row = abs(np.deg2rad(self.dlon)) * (np.sin(hi) - np.sin(lo))
        return np.broadcast_to(row[:, None], self.shape).copy()

    # ---- sub grids
    def slice(self, ys: slice, xs: slice) -> "SkyGeom":
        """The sub-grid of rows ``ys`` and columns ``xs``.

        Parameters
        ----------
        ys, xs : slice
            Row and column slices.

        Returns
        -------
        SkyGeom
            The sub-grid.
        """
        y0, y1, _ = ys.indices(self.ny)
        x0, x1, _ = xs.indices(self.nx)
        return SkyGeom(self.frame, self.lon0, self.dlon, self.dlat, self.x_ref - x0, self.y_ref - y0,
                       x1 - x0, y1 - y0)

    def cutout_slices(self, lon: float, lat: float, npix: int) -> tuple[slice, slice]:
        """Slices of a square ``npix`` cutout centred on (lon, lat), trimmed at the edges.

        Raises ``ValueError`` if the cutout does not overlap the grid.

        Parameters
        ----------
        lon, lat : float
            Centre (deg).
        npix : int
            Cutout size (pixels).

        Returns
        -------
        tuple of slice
            (ys, xs).
        """
        x, y = self.world_to_pix(lon, lat)
        out = []
        for p, n in ((float(y), self.ny), (float(x), self.nx)):
            start = int(np.ceil(p - npix / 2.0))
            lo, hi = max(start, 0), min(start + npix, n)
            if hi <= lo:
                raise ValueError(f"cutout of {npix} px around ({lon:.4f}, {lat:.4f}) does not overlap the grid")
            out.append(slice(lo, hi))
        return out[0], out[1]

    def cutout(self, lon: float, lat: float, width_deg: float, min_npix: int = 1):
        """(sub geometry, (ys, xs)) of a trimmed square cutout of ``width_deg``.

        Parameters
        ----------
        lon, lat : float
            Centre (deg).
        width_deg : float
            Cutout width (deg).
        min_npix : int
            Smallest size (pixels).

        Returns
        -------
        tuple
            ``(SkyGeom, (ys, xs))``.
        """
        npix = int(np.rint(max(width_deg / self.binsz, min_npix)))
        ys, xs = self.cutout_slices(lon, lat, npix)
        return self.slice(ys, xs), (ys, xs)

    def subdivide(self, f: int) -> "SkyGeom":
        """The same area with every pixel split into ``f x f`` sub-pixels (same frame and projection).

        Parameters
        ----------
        f : int
            Sub-pixels per pixel along each axis.

        Returns
        -------
        SkyGeom
            The finer grid.
        """
        return SkyGeom(self.frame, self.lon0, self.dlon / f, self.dlat / f, f * self.x_ref + (f - 1) / 2.0,
                       f * self.y_ref + (f - 1) / 2.0, self.nx * f, self.ny * f)

    # ---- (de)serialisation
    def to_header_string(self) -> str:
        """The FITS WCS header as a string."""
        return self.wcs.to_header_string(relax=True)

    def to_attrs(self) -> dict:
        """The grid's parameters as a dict of plain numbers (netCDF attributes)."""
        return {"frame": self.frame, "lon0": self.lon0, "dlon": self.dlon, "dlat": self.dlat,
                "x_ref": self.x_ref, "y_ref": self.y_ref, "nx": self.nx, "ny": self.ny}

    @classmethod
    def from_attrs(cls, attrs: dict) -> "SkyGeom":
        """Inverse of :meth:`to_attrs`.

        Parameters
        ----------
        attrs : dict
            The attributes.

        Returns
        -------
        SkyGeom
            The grid.
        """
        return cls(frame=str(attrs["frame"]), lon0=float(attrs["lon0"]), dlon=float(attrs["dlon"]),
                   dlat=float(attrs["dlat"]), x_ref=float(attrs["x_ref"]), y_ref=float(attrs["y_ref"]),
                   nx=int(attrs["nx"]), ny=int(attrs["ny"]))

    @classmethod
    def from_coords(cls, ds: xr.Dataset | xr.DataArray, frame: str) -> "SkyGeom":
        """Rebuild a grid from 1-D regular ``lon``/``lat`` coordinates.

        Parameters
        ----------
        ds : xarray.Dataset or xarray.DataArray
            Holds ``lon`` and ``lat``.
        frame : {'galactic', 'icrs'}
            The frame.

        Returns
        -------
        SkyGeom
            The grid.
        """
        lon = np.asarray(ds["lon"].values, float)
        lat = np.asarray(ds["lat"].values, float)
        dlon = float(lon[1] - lon[0]) if lon.size > 1 else -float(lat[1] - lat[0])
        dlat = float(lat[1] - lat[0]) if lat.size > 1 else -dlon
        return cls(frame=frame, lon0=float(lon[0]), dlon=dlon, dlat=dlat, x_ref=0.0,
                   y_ref=-float(lat[0]) / dlat, nx=lon.size, ny=lat.size)
