"""The sky-map template spatial model, read from FITS (2D image or 3D cube).

:class:`TemplateSpatialModel` is re-exported by :mod:`gcxr.models.spatial`
(and :mod:`gcxr.models`); the flux of a template on a pixel grid is in
:mod:`gcxr.models.template`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .parameters import ModelError, Parameter
from .spatial import SpatialModel, frame_from_wcs, pixel_solid_angle
from .template import interp_log_multilinear, lin_interp_extrap

__all__ = ["TemplateSpatialModel"]


# --------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------
_AXIS_SCALES = {
    "log": (np.log, "log"),
    "lin": (lambda v: np.asarray(v, dtype=float), "lin"),
    "linear": (lambda v: np.asarray(v, dtype=float), "lin"),
    "sqrt": (np.sqrt, "sqrt"),
}

#: Units a template may carry with ``normalize=False``: surface brightness (the spectral
#: model carries the flux) or differential surface brightness (the spectral model is a norm).
TEMPLATE_UNITS = ("sr-1", "cm-2 s-1 TeV-1 sr-1")


class TemplateSpatialModel(SpatialModel):
    """Sky-map template read from FITS (2D image, or 3D cube with an energy axis).

    Parameters
    ----------
    filename : str or path
        FITS file: image (or cube) in the primary HDU, or the first image HDU.
        ``$GAMMAPY_DATA``/``$GCXR_DATA`` in the name are expanded.  A cube's
        energies come from its bands table (gammapy's ``<HDU>_BANDS`` layout
        with ``ENERGY_TRUE`` nodes or ``*_MIN``/``*_MAX`` edges, or the
        Fermi-LAT ``ENERGIES`` table) or from a spectral third WCS axis.
    normalize : bool
        Divide each energy plane by its sum and by the pixel solid angle, so
        that it integrates to one (sr^-1).  Otherwise the values are taken in
        the map's unit (``BUNIT``): a surface brightness (sr-1) or a
        differential one (cm-2 s-1 TeV-1 sr-1; then the spectral model must
        be a dimensionless norm).  A map without ``BUNIT`` is in sr-1, except
        a Fermi-LAT template (bands table ``ENERGIES``), which is in
        cm-2 s-1 MeV-1 sr-1 (gammapy's rule).
    lon_0, lat_0 : float, optional
        Shift the template so that its centre pixel lands here (deg; frozen,
        default the map centre).  Keyword-only, like ``hdu``.
    hdu : str or int, optional
        The HDU holding the map (default: the primary HDU, or the first image HDU).

    Notes
    -----
    ``evaluate(lon, lat[, energy])`` follows gammapy 2.1 (docs/conventions.md,
    "Energy-dependent templates"): multilinear interpolation of the
    logarithm of the map values (in the file's precision) in pixel
    coordinates, the energy pixel coordinate being linear in log E between
    the energy nodes (or the axis' ``INTERP`` scale); linear extrapolation
    over the outer half pixel (and half energy plane), 0 beyond it.  The
    extrapolation follows the slope of the last interval: next to zero-valued
    pixels it can overshoot, exactly as in gammapy.
    """

    tag: ClassVar[str] = "TemplateSpatialModel"
    tag_short: ClassVar[str] = "template"
    _defaults = (
        Parameter("lon_0", np.nan, "deg", frozen=True),
        Parameter("lat_0", np.nan, "deg", min=-90.0, max=90.0, frozen=True),
    )

    def __init__(
        self,
        filename: str | os.PathLike,
        normalize: bool = True,
        *,
        hdu: str | int | None = None,
        **parameters: Any,
    ) -> None:
        self.filename = str(filename)
        self.normalize = bool(normalize)
        self._hdu = hdu
        self._read()
        self._init_parameters(parameters)      # the frame is the map's
        c_lon, c_lat = self.map_center
        if np.isnan(self.parameters["lon_0"].value):
            self.parameters["lon_0"].value = c_lon
        if np.isnan(self.parameters["lat_0"].value):
            self.parameters["lat_0"].value = c_lat

    # -- reading ------------------------------------------------------------
    def _resolve_path(self, where: str) -> Path:
        from ..config import ConfigError, expand_path  # deferred: keeps import gcxr.models light (pydantic)

        try:
            path = expand_path(self.filename)
        except ConfigError as exc:
            raise ModelError(f"{where}: cannot resolve the file name ({exc})") from None
        if not path.exists():
            raise FileNotFoundError(f"{where}: template file {str(path)!r} not found")
        if path.is_dir():
            raise ModelError(f"{where}: {str(path)!r} is a directory, not a FITS file")
        return path

    def _read(self) -> None:
        import astropy.units as u  # deferred: heavy import (astropy)
        from astropy.io import fits  # deferred: heavy import (astropy)
        from astropy.wcs import WCS  # deferred: heavy import (astropy)

        where = f"TemplateSpatialModel({self.filename!r})"
        path = self._resolve_path(where)
        try:
            hdul_ctx = fits.open(path)
        except Exception as exc:  # astropy raises OSError, ValueError, TypeError... on garbage
            raise ModelError(f"{where}: cannot read {str(path)!r} as FITS ({type(exc).__name__}: {exc})") from None
        try:
            with hdul_ctx as hdul:
                if self._hdu is not None:
                    try:
                        hdu = hdul[self._hdu]
                    except (KeyError, IndexError):
                        raise ModelError(f"{where}: no HDU {self._hdu!r}") from None
                else:
                    hdu = next((h for h in hdul if getattr(h, "is_image", False) and h.data is not None
                                and h.data.ndim >= 2), None)
                    if hdu is None:
                        raise ModelError(f"{where}: no image HDU with 2 or 3 dimensions")
                raw = np.asarray(hdu.data)
                header = hdu.header.copy()
                bands = None
                bands_name = header.get("BANDSHDU")
                candidates = [bands_name] if bands_name else []
                candidates += [f"{hdu.name}_BANDS", "ENERGIES", "EBOUNDS"]
                for name in candidates:
                    if name and name in hdul:
                        bands = hdul[name].data.copy(), hdul[name].header.copy(), str(hdul[name].name)
                        break
                has_gti = "GTI" in hdul
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"{where}: cannot read {str(path)!r} ({type(exc).__name__}: {exc})") from None
        if raw.ndim not in (2, 3):
            raise ModelError(f"{where}: expected a 2D image or 3D cube, got {raw.ndim} dimensions")
        if not np.issubdtype(raw.dtype, np.number):
            raise ModelError(f"{where}: the image data are not numbers ({raw.dtype})")
        try:
            wcs_full = WCS(header)
        except Exception as exc:
            raise ModelError(f"{where}: invalid WCS header ({exc})") from None
        if wcs_full.celestial.naxis != 2:
            raise ModelError(f"{where}: the image has no celestial WCS (CTYPE {list(wcs_full.wcs.ctype)})")
        self.wcs = wcs_full.celestial
        self.frame = frame_from_wcs(self.wcs, where)
        self._energy_pix_nodes: tuple[np.ndarray, np.ndarray] | None = None
        self._energy_scale = "log"
        fermi = bands is not None and bands[2] == "ENERGIES"
        if raw.ndim == 2:
            raw = raw[np.newaxis]
            self.energy = None
        else:
            self.energy, self._energy_pix_nodes, self._energy_scale = self._read_energy(
                raw.shape[0], wcs_full, bands, where)
        # values as gammapy interpolates them: in the file's precision, non-finite -> 0
        if not np.issubdtype(raw.dtype, np.floating):
            raw = raw.astype(float)
        raw = raw.astype(raw.dtype.newbyteorder("="))
        raw = np.where(np.isfinite(raw), raw, 0)
        n_neg = int(np.count_nonzero(raw < 0))
        if n_neg:
            raise ModelError(f"{where}: {str(path)!r} has {n_neg} negative value(s) (min {raw.min():g}); a template "
                             f"is a surface brightness and must be >= 0")
        ny, nx = raw.shape[-2:]
        self.solid_angle = pixel_solid_angle(self.wcs, ny, nx)
        unit = str(header.get("BUNIT", "")).strip()
        if not unit and fermi:
            if has_gti:
                raise ModelError(f"{where}: this is a Fermi-LAT exposure cube (GTI table), not a template")
            unit = "cm-2 s-1 MeV-1 sr-1"   # gammapy's rule for Fermi-LAT templates without BUNIT
        scale = 1.0
        if self.normalize:
            total = raw.sum(axis=(-2, -1), keepdims=True)   # in the file's precision, as gammapy
            data = raw.astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                data = np.where(total != 0, data / np.where(total != 0, total, 1.0), 0.0) / self.solid_angle
            self.unit = "sr-1"
        else:
            data = raw
            try:
                parsed = u.Unit(unit) if unit else u.dimensionless_unscaled
            except (ValueError, TypeError):
                raise ModelError(f"{where}: cannot parse the map unit BUNIT={unit!r}") from None
            if parsed.physical_type == "dimensionless":
                parsed = u.Unit("sr-1")   # gammapy: a template without unit is in sr-1
            for target in TEMPLATE_UNITS:
                try:
                    scale = float(parsed.to(target))
                except u.UnitConversionError:
                    continue
                self.unit = target
                break
            else:
                raise ModelError(
                    f"{where}: with normalize=False the map unit must convert to sr-1 or "
                    f"cm-2 s-1 TeV-1 sr-1, got {unit!r}")
        # log of the values, clipped at the tiny of their own precision (gammapy's LogScale)
        tiny = np.finfo(data.dtype).tiny
        self._log_data = np.log(np.clip(data, tiny, None))   # kept in that precision (exact)
        self._scale = scale
        self.data = np.asarray(data, dtype=float) * scale  # (n_energy, ny, nx), in self.unit

    @staticmethod
    def _read_energy(n: int, wcs_full, bands, where: str):
        """Energy nodes (TeV), the (scaled energy, pixel) nodes and the scale name."""
        import astropy.units as u  # deferred: heavy import (astropy)

        def col(table, header, names):
            for name in names:
                if name in table.columns.names:
                    idx = table.columns.names.index(name) + 1
                    unit = header.get(f"TUNIT{idx}", "TeV") or "TeV"
                    return np.asarray(table[name], dtype=float) * u.Unit(unit).to("TeV")
            return None

        if bands is not None:
            table, header, hdu_name = bands
            axcols = ""
            if hdu_name == "ENERGIES":   # Fermi-LAT template: ENERGY nodes, always MeV, log
                interp = "log"
                name = next((c for c in ("Energy", "ENERGY", "energy") if c in table.columns.names), None)
                if name is None:
                    raise ModelError(f"{where}: the ENERGIES table has no ENERGY column")
                centre = np.asarray(table[name], dtype=float) * 1e-6
                lo = hi = None
            else:
                # gammapy reads INTERP1, "lin" when absent; tables without AXCOLS1 (which
                # gammapy cannot read) are taken as log
                interp = str(header.get("INTERP1", "lin" if "AXCOLS1" in header else "log")).strip().lower()
                centre = col(table, header, ["ENERGY_TRUE", "ENERGY"])
                lo = col(table, header, ["ENERGY_TRUE_MIN", "ENERGY_MIN", "E_MIN"])
                hi = col(table, header, ["ENERGY_TRUE_MAX", "ENERGY_MAX", "E_MAX"])
                axcols = str(header.get("AXCOLS1", ""))
                if hdu_name == "EBOUNDS" or (lo is not None and hi is not None and centre is None):
                    interp = str(header.get("INTERP1", "log")).strip().lower()
            if interp not in _AXIS_SCALES:
                raise ModelError(f"{where}: unknown energy interpolation INTERP1={interp!r}")
            fscale, interp = _AXIS_SCALES[interp]
            if lo is not None and hi is not None and (centre is None or "," in axcols):
                if len(lo) != n:
                    raise ModelError(f"{where}: {len(lo)} energy bins for {n} planes")
                edges = np.append(lo, hi[-1])
                nodes = np.sqrt(lo * hi)
                return nodes, (fscale(edges), np.arange(n + 1) - 0.5), interp
            if centre is not None:
                if len(centre) != n:
                    raise ModelError(f"{where}: {len(centre)} energies for {n} planes")
                return centre, (fscale(centre), np.arange(n, dtype=float)), interp
            raise ModelError(f"{where}: energy table has no ENERGY or E_MIN/E_MAX columns")
        if wcs_full.naxis == 3 and wcs_full.wcs.spec >= 0:
            w = wcs_full.sub([3])
            pix = np.arange(n, dtype=float)
            nodes = np.asarray(w.pixel_to_world_values(pix), dtype=float)
            unit = w.wcs.cunit[0].to_string() or "MeV"
            nodes = nodes * u.Unit(unit).to("TeV")
            return nodes, (np.log(nodes), pix), "log"
        raise ModelError(f"{where}: a 3D template needs an energy table HDU or a spectral WCS axis")

    # -- properties -----------------------------------------------------------
    @property
    def is_energy_dependent(self) -> bool:
        """Whether the template is a cube with energy planes."""
        return self.energy is not None

    @property
    def is_differential(self) -> bool:
        """True when the map is a differential surface brightness (cm-2 s-1 TeV-1 sr-1)."""
        return self.unit != "sr-1"

    @property
    def map_center(self) -> tuple[float, float]:
        """World coordinates (deg) of the map's central pixel."""
        ny, nx = self.data.shape[-2:]
        lon, lat = self.wcs.pixel_to_world_values((nx - 1) / 2.0, (ny - 1) / 2.0)
        return float(lon), float(lat)

    @property
    def evaluation_radius(self) -> float:
        """Half the larger map width (deg)."""
        from astropy.wcs.utils import proj_plane_pixel_scales  # deferred: heavy import (astropy)

        ny, nx = self.data.shape[-2:]
        sx, sy = np.abs(proj_plane_pixel_scales(self.wcs))  # deg (celestial CUNIT)
        return float(max(nx * sx, ny * sy) / 2.0)

    # -- evaluation -------------------------------------------------------------
    def evaluate(self, lon, lat, energy=None) -> np.ndarray:  # type: ignore[override]
        """Surface brightness at ``lon``, ``lat`` (deg, model frame) and ``energy``.

        Parameters
        ----------
        lon, lat : array_like
            Coordinates in the model's frame (deg).
        energy : array_like, optional
            True energy (TeV); required for a cube, ignored for an image.

        Returns
        -------
        ndarray
            Values in :attr:`unit` (sr-1, or cm-2 s-1 TeV-1 sr-1).
        """
        return self._evaluate(lon, lat, energy, **self.values)

    __call__ = evaluate

    def _sky_pix(self, lon, lat, lon_0=None, lat_0=None):
        """Template pixel coordinates (x, y) of ``lon``, ``lat`` after the lon_0/lat_0 shift."""
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        c_lon, c_lat = self.map_center
        if lon_0 is not None:
            lon = lon - (lon_0 - c_lon)
        if lat_0 is not None:
            lat = lat - (lat_0 - c_lat)
        x, y = self.wcs.world_to_pixel_values(lon, lat)
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def _energy_pix(self, energy):
        lnodes, pnodes = self._energy_pix_nodes  # type: ignore[misc]
        fscale = _AXIS_SCALES[self._energy_scale][0]
        with np.errstate(invalid="ignore", divide="ignore"):
            return lin_interp_extrap(fscale(np.asarray(energy, dtype=float)), lnodes, pnodes)

    def _interp(self, x, y, z) -> np.ndarray:
        """gammapy's rule at template pixel coordinates (z: energy pixel, or None)."""

        n_e, ny, nx = self._log_data.shape

        def invalid(p, n):   # gammapy: round to the nearest index, valid in [0, n)
            with np.errstate(invalid="ignore"):
                i = np.floor(p + 0.5)
            return ~np.isfinite(p) | (i < 0) | (i >= n)

        if z is None:
            z = np.zeros(())
            bad = invalid(x, nx) | invalid(y, ny)
        else:
            bad = invalid(x, nx) | invalid(y, ny) | invalid(z, n_e)
        logv = interp_log_multilinear(self._log_data, [z, y, x])
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.exp(logv)
        tiny = np.finfo(float).tiny
        out = np.where(np.abs(out) - tiny <= tiny, 0.0, out)
        out = np.where(np.broadcast_to(bad, out.shape) | ~np.isfinite(out), 0.0, out)
        return np.clip(out, 0.0, None) * self._scale

    def _evaluate(self, lon, lat, energy=None, lon_0=None, lat_0=None):  # type: ignore[override]
        x, y = self._sky_pix(lon, lat, lon_0, lat_0)
        z = None
        if self.energy is not None:
            if energy is None:
                raise ValueError(f"TemplateSpatialModel({self.filename!r}) is energy dependent: pass energy")
            z = self._energy_pix(energy)
        return self._interp(x, y, z)

    def evaluate_planes(self, lon, lat, energies, lon_0=None, lat_0=None) -> np.ndarray:
        """Values on a grid at several energies, shape ``(len(energies),) + grid``.

        Same numbers as :meth:`evaluate` at each energy (to rounding), faster:
        the spatial interpolation of each template plane is done once, and
        energies beyond the map's last half plane are not interpolated.

        Parameters
        ----------
        lon, lat : array_like
            Grid coordinates in the model's frame (deg).
        energies : array_like
            True energies (TeV), one plane each (ignored for an image, whose
            planes are all the same).
        lon_0, lat_0 : float, optional
            Shifted centre (deg) instead of the model's own (a pure evaluation
            at other parameter values).
        """

        values = dict(self.values)
        values.update({k: v for k, v in (("lon_0", lon_0), ("lat_0", lat_0)) if v is not None})
        x, y = self._sky_pix(lon, lat, **values)
        energies = np.atleast_1d(np.asarray(energies, dtype=float))
        if self.energy is None:
            img = self._interp(x, y, None)
            return np.broadcast_to(img, (energies.size,) + img.shape).copy()
        n_e = self._log_data.shape[0]
        z = np.atleast_1d(self._energy_pix(energies))
        out = np.zeros((z.size,) + x.shape)
        with np.errstate(invalid="ignore"):
            iz = np.floor(z + 0.5)
        valid = np.isfinite(z) & (iz >= 0) & (iz < n_e)
        if not valid.any():
            return out
        # the two planes each energy interpolates (or extrapolates) between
        z0 = np.clip(np.floor(z), 0, max(n_e - 2, 0)).astype(np.intp)
        needed = sorted({int(k) for k0 in z0[valid] for k in (k0, min(k0 + 1, n_e - 1))})
        spatial = {k: interp_log_multilinear(self._log_data[k][np.newaxis], [np.zeros(()), y, x])
                   for k in needed}
        ny, nx = self._log_data.shape[1:]
        with np.errstate(invalid="ignore"):
            ix, iy = np.floor(x + 0.5), np.floor(y + 0.5)
        bad = ~np.isfinite(x) | ~np.isfinite(y) | (ix < 0) | (ix >= nx) | (iy < 0) | (iy >= ny)
        tiny = np.finfo(float).tiny
        for i in np.flatnonzero(valid):
            if n_e == 1:
                logv = spatial[0]
            else:
                f = z[i] - z0[i]
                logv = spatial[int(z0[i])] * (1.0 - f) + spatial[int(z0[i]) + 1] * f
            with np.errstate(over="ignore", invalid="ignore"):
                v = np.exp(logv)
            v = np.where(np.abs(v) - tiny <= tiny, 0.0, v)
            v = np.where(bad | ~np.isfinite(v), 0.0, v)
            out[i] = np.clip(v, 0.0, None) * self._scale
        return out

    # -- YAML -------------------------------------------------------------------
    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """YAML form; the filename is written relative to ``relative_to`` (the
        YAML file's folder) when the template sits in that folder.

        Parameters
        ----------
        relative_to : str or Path, optional
            Folder that template file names are written relative to.

        Returns
        -------
        dict
            The mapping.
        """
        filename = self.filename
        if relative_to is not None:
            p = Path(os.path.expandvars(filename))
            if p.parent.resolve() == Path(relative_to).resolve():
                filename = p.name
        return {
            "type": self.tag,
            "frame": self.frame,
            "parameters": self._parameters_to_dict(),
            "filename": filename,
            "normalize": self.normalize,
            "unit": self.unit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], component: str | None = None, base_dir: str | os.PathLike | None = None) -> "TemplateSpatialModel":
        """From gammapy's YAML form ``{type, frame, filename, normalize, parameters}``.

        Parameters
        ----------
        data : dict
            The YAML mapping.
        component : str, optional
            The component's name.
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        TemplateSpatialModel
            The model; :class:`ModelError` names the file otherwise.
        """
        cls._check_type(data, component)
        where = f"component {component!r}: {cls.tag}" if component else cls.tag
        extra = set(data) - {"type", "frame", "parameters", "filename", "normalize", "unit"}
        if extra:
            raise ModelError(f"{where}: unexpected keys {sorted(extra)}")
        if "filename" not in data:
            raise ModelError(f"{where}: needs a 'filename'")
        filename = str(data["filename"])
        if base_dir is not None:
            cand = Path(base_dir) / os.path.expandvars(filename)
            if cand.exists():
                filename = str(cand)
        prefix = f"component {component!r}: " if component else ""
        try:
            model = cls(filename, normalize=data.get("normalize", True))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{prefix}{exc}") from None
        except ModelError as exc:
            raise ModelError(f"{prefix}{exc}") from None
        pars = cls._parameters_from_dict(data.get("parameters"), component)
        for p in pars:
            if np.isnan(p.value):
                p.value = model.parameters[p.name].value
        model.parameters = pars
        frame = data.get("frame")
        if frame is not None and frame != model.frame:
            raise ModelError(f"{where}: frame {frame!r} in the YAML but the map {filename!r} is {model.frame!r}")
        return model
