"""Parametric IRFs, the IRF HDUs of any IRF file, and the IRF file of a store.

:class:`ParametricIRF` and :func:`write_parametric_irfs` (CTA-like analytic responses as GADF
HDUs), :func:`irf_hdus` and :class:`IRFSet` (the four IRF HDUs of a file, read with gcxr's
readers), :func:`store_irf` (the IRF file inside a store) and :func:`write_fits` (how every
simulated FITS file is written).
"""
from __future__ import annotations

import gzip
import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from ..datastore import DataStoreError, HDURef
from ..io import atomic_path
from ..irf import read_aeff, read_bkg, read_edisp, read_psf

__all__ = ["ParametricIRF", "write_parametric_irfs", "IRFSet", "irf_hdus", "store_irf", "write_fits", "geom_edges",
           "GADF"]

GADF = {"HDUCLASS": "GADF", "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
         "HDUVERS": "0.3"}


# =========================================================================== parametric IRFs
def geom_edges(lo, hi, per_decade):
    """Log-spaced edges from ``lo`` to ``hi``, about ``per_decade`` bins per decade (at least one bin).

    Parameters
    ----------
    lo, hi : float
        The first and last edge.
    per_decade : int
        Bins per decade.

    Returns
    -------
    tuple of float
        The edges.
    """
    n = max(int(round(np.log10(hi / lo) * per_decade)), 1)
    return tuple(np.geomspace(lo, hi, n + 1))


@dataclass(frozen=True)
class ParametricIRF:
    """CTA-like analytic responses (all energies in TeV, angles in deg).

    * ``A(E, θ) = area_max / (1 + (energy_threshold / E)^2) * exp(-θ² / 2 area_offset_sigma²)`` (m²)
    * PSF: a Gaussian of width ``σ = clip(psf_sigma_1tev * E^-psf_index, 0.02, 0.5) * (1 + (θ/psf_offset_scale)²)``
    * EDISP: log-normal in migra, ``ln migra ~ N(edisp_bias, s)`` with ``s = clip(edisp_resolution_1tev * E^-0.2, 0.05, 0.4)``
    * background: ``bkg_rate_1tev * E^-bkg_index / (1 + (energy_threshold/E)^2) * exp(-r² / 2 bkg_offset_sigma²)``
      (s⁻¹ TeV⁻¹ sr⁻¹; ``r`` the FoV offset), radially symmetric.
    """

    area_max: float = 5e5
    energy_threshold: float = 0.1
    area_offset_sigma: float = 3.0
    psf_sigma_1tev: float = 0.06
    psf_index: float = 0.3
    psf_offset_scale: float = 4.0
    psf_class: Literal["psf_3gauss", "psf_table"] = "psf_3gauss"
    edisp_resolution_1tev: float = 0.1
    edisp_bias: float = 0.0
    bkg_rate_1tev: float = 15.0
    bkg_index: float = 2.7
    bkg_offset_sigma: float = 2.5
    energy_edges: tuple[float, ...] = geom_edges(0.02, 200.0, 10)
    offset_edges: tuple[float, ...] = tuple(np.linspace(0.0, 6.0, 13))
    migra_edges: tuple[float, ...] = tuple(np.linspace(0.2, 3.0, 141))
    rad_edges: tuple[float, ...] = tuple(np.linspace(0.0, 1.0, 101))
    fov_edges: tuple[float, ...] = tuple(np.linspace(-6.0, 6.0, 49))

    def __post_init__(self):
        if self.psf_class not in ("psf_3gauss", "psf_table"):
            raise ValueError(f"psf_class must be 'psf_3gauss' or 'psf_table', got {self.psf_class!r}")
        for name in ("area_max", "energy_threshold", "area_offset_sigma", "psf_sigma_1tev", "bkg_offset_sigma",
                     "edisp_resolution_1tev"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ParametricIRF.{name} must be positive, got {getattr(self, name)}")

    # ---- the functions, on node grids
    @staticmethod
    def _centres(edges, log):
        e = np.asarray(edges)
        return np.sqrt(e[:-1] * e[1:]) if log else 0.5 * (e[:-1] + e[1:])

    def _threshold(self, energy):
        return 1.0 / (1.0 + (self.energy_threshold / energy) ** 2)

    def aeff(self, energy, offset):
        """(nE, nθ) m².

        Parameters
        ----------
        energy : numpy.ndarray
            True energies (TeV).
        offset : numpy.ndarray
            Offsets (deg).
        """
        e, th = np.asarray(energy)[:, None], np.asarray(offset)[None, :]
        return self.area_max * self._threshold(e) * np.exp(-0.5 * (th / self.area_offset_sigma) ** 2)

    def psf_sigma(self, energy, offset):
        """(nE, nθ) deg.

        Parameters
        ----------
        energy : numpy.ndarray
            True energies (TeV).
        offset : numpy.ndarray
            Offsets (deg).
        """
        e, th = np.asarray(energy)[:, None], np.asarray(offset)[None, :]
        return np.clip(self.psf_sigma_1tev * e ** -self.psf_index, 0.02, 0.5) * (1 + (th / self.psf_offset_scale) ** 2)

    def edisp(self, energy, migra, offset):
        """(nE, n_migra, nθ) probability density in migra (normalised on the migra edges).

        Parameters
        ----------
        energy : numpy.ndarray
            True energies (TeV).
        migra : numpy.ndarray
            Migration values.
        offset : numpy.ndarray
            Offsets (deg).
        """
        e = np.asarray(energy)[:, None, None]
        m = np.asarray(migra)[None, :, None]
        s = np.clip(self.edisp_resolution_1tev * e ** -0.2, 0.05, 0.4)
        dens = np.exp(-0.5 * ((np.log(m) - self.edisp_bias) / s) ** 2) / (m * s * np.sqrt(2 * np.pi))
        dens = np.broadcast_to(dens, (len(energy), len(migra), len(offset)))
        norm = (dens * np.diff(self.migra_edges)[None, :, None]).sum(axis=1, keepdims=True)
        return dens / norm

    def bkg(self, energy, fov_lon, fov_lat):
        """(nE, n_lon, n_lat) s⁻¹ TeV⁻¹ sr⁻¹.

        Parameters
        ----------
        energy : numpy.ndarray
            Energies (TeV).
        fov_lon, fov_lat : numpy.ndarray
            Field-of-view coordinates (deg).
        """
        e = np.asarray(energy)[:, None, None]
        r2 = np.asarray(fov_lon)[None, :, None] ** 2 + np.asarray(fov_lat)[None, None, :] ** 2
        return (self.bkg_rate_1tev * e ** -self.bkg_index * self._threshold(e)
                * np.exp(-0.5 * r2 / self.bkg_offset_sigma ** 2))

    # ---- GADF HDUs
    def hdus(self) -> list[fits.BinTableHDU]:
        """The four IRF HDUs: EFFECTIVE AREA, ENERGY DISPERSION, POINT SPREAD FUNCTION, BACKGROUND."""
        e, th = np.asarray(self.energy_edges), np.asarray(self.offset_edges)
        ec, thc = self._centres(e, True), self._centres(th, False)
        ax_e = [("ENERG_LO", e[:-1], "TeV"), ("ENERG_HI", e[1:], "TeV")]
        ax_th = [("THETA_LO", th[:-1], "deg"), ("THETA_HI", th[1:], "deg")]
        out = [_irf_hdu("EFFECTIVE AREA", "EFF_AREA", "AEFF_2D",
                        ax_e + ax_th + [("EFFAREA", self.aeff(ec, thc).T, "m2")])]
        m = np.asarray(self.migra_edges)
        out.append(_irf_hdu("ENERGY DISPERSION", "EDISP", "EDISP_2D",
                            ax_e + [("MIGRA_LO", m[:-1], ""), ("MIGRA_HI", m[1:], "")] + ax_th
                            + [("MATRIX", self.edisp(ec, self._centres(m, False), thc).T, "")]))
        sig = self.psf_sigma(ec, thc)
        if self.psf_class == "psf_3gauss":
            zero = np.zeros_like(sig)
            cols = [("SCALE", (1.0 / (2 * np.pi * sig ** 2)).T, ""), ("SIGMA_1", sig.T, "deg"),
                    ("AMPL_2", zero.T, ""), ("SIGMA_2", sig.T, "deg"), ("AMPL_3", zero.T, ""),
                    ("SIGMA_3", sig.T, "deg")]
            out.append(_irf_hdu("POINT SPREAD FUNCTION", "RPSF", "PSF_3GAUSS", ax_e + ax_th + cols))
        else:
            r = np.asarray(self.rad_edges)
            rc = self._centres(r, False)
            s = sig[:, :, None]
            rpsf = np.exp(-0.5 * (rc[None, None, :] / s) ** 2) / (2 * np.pi * s ** 2) * (180.0 / np.pi) ** 2
            out.append(_irf_hdu("POINT SPREAD FUNCTION", "RPSF", "PSF_TABLE",
                                ax_e + ax_th + [("RAD_LO", r[:-1], "deg"), ("RAD_HI", r[1:], "deg"),
                                                ("RPSF", rpsf.T, "sr-1")]))
        f = np.asarray(self.fov_edges)
        fc = self._centres(f, False)
        rate = self.bkg(ec, fc, fc) / 1e6                                # TeV-1 -> MeV-1
        out.append(_irf_hdu("BACKGROUND", "BKG", "BKG_3D",
                            [("DETX_LO", f[:-1], "deg"), ("DETX_HI", f[1:], "deg"), ("DETY_LO", f[:-1], "deg"),
                             ("DETY_HI", f[1:], "deg")] + ax_e + [("BKG", rate, "s-1 MeV-1 sr-1")],
                            {"FOVALIGN": "RADEC"}))
        return out


def _irf_hdu(extname, clas2, clas4, columns, extra=None) -> fits.BinTableHDU:
    """A one-row GADF IRF table; N-d columns are given in FITS (reversed) axis order."""
    t = Table()
    for name, arr, unit in columns:
        t[name] = np.asarray(arr, dtype=np.float32)[None]
        if unit:
            t[name].unit = unit
    hdu = fits.table_to_hdu(t)
    hdu.name = extname
    hdu.header.update({**GADF, "HDUCLAS1": "RESPONSE", "HDUCLAS2": clas2, "HDUCLAS3": "FULL-ENCLOSURE",
                       "HDUCLAS4": clas4, **(extra or {})})
    return hdu


def write_fits(hdus: Sequence[fits.hdu.base.ExtensionHDU], path: Path, compresslevel: int = 6) -> Path:
    """Write a primary HDU plus ``hdus`` atomically; ``.gz`` names are gzipped (reproducibly).

    Parameters
    ----------
    hdus : sequence of astropy.io.fits HDUs
        The extensions.
    path : pathlib.Path
        The file.
    compresslevel : int
        gzip level (``.gz`` names only).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buf)
    data = buf.getvalue()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_parametric_irfs(path: str | Path, irf: ParametricIRF | None = None) -> Path:
    """Write the HDUs of ``irf`` (default :class:`ParametricIRF`) to one FITS file.

    Parameters
    ----------
    path : str or Path
        The FITS file.
    irf : ParametricIRF, optional
        The IRFs.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    return write_fits((irf or ParametricIRF()).hdus(), Path(path))


# =========================================================================== IRF files
_KINDS = {"EFF_AREA": "aeff", "EDISP": "edisp", "RPSF": "psf", "BKG": "bkg"}
_EXTNAMES = {"EFFECTIVE AREA": "aeff", "AEFF": "aeff", "ENERGY DISPERSION": "edisp", "EDISP": "edisp",
             "POINT SPREAD FUNCTION": "psf", "PSF": "psf", "BACKGROUND": "bkg", "BKG": "bkg"}


def _hdu_class(kind: str, hdu) -> str:
    c4 = str(hdu.header.get("HDUCLAS4", "")).strip().upper()
    cols = {c.upper() for c in getattr(hdu, "columns", fits.ColDefs([])).names}
    if kind == "psf":
        if "3GAUSS" in c4 or (not c4 and "SIGMA_1" in cols):
            return "psf_3gauss"
        if "KING" in c4:
            return "psf_king"
        return "psf_table"
    if kind == "bkg":
        return "bkg_2d" if "2D" in c4 else "bkg_3d"
    return {"aeff": "aeff_2d", "edisp": "edisp_2d"}[kind]


def irf_hdus(path: str | Path) -> dict[str, HDURef]:
    """The aeff/edisp/psf/bkg HDUs of an IRF file, found by HDUCLAS2/HDUCLAS4 (else EXTNAME).

    Parameters
    ----------
    path : str or Path
        An IRF FITS file.

    Returns
    -------
    dict
        HDURef by IRF kind (``aeff``, ``edisp``, ``psf``, ``bkg``).
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DataStoreError(f"IRF file not found: {path}")
    try:
        with fits.open(path, memmap=False) as h:
            found = {}
            for hdu in h[1:]:
                c2 = str(hdu.header.get("HDUCLAS2", "")).strip().upper()
                kind = _KINDS.get(c2) or _EXTNAMES.get(hdu.name.strip().upper())
                if kind and kind not in found:
                    found[kind] = HDURef(str(path), hdu.name, _hdu_class(kind, hdu), kind)
            names = [x.name for x in h]
    except OSError as err:
        raise DataStoreError(f"{path}: cannot read IRF file ({err})") from None
    missing = [k for k in ("aeff", "edisp", "psf", "bkg") if k not in found]
    if missing:
        raise DataStoreError(f"{path}: no {'/'.join(missing)} HDU found (HDUs: {names}); "
                             "IRF HDUs are recognised by HDUCLAS2 = EFF_AREA, EDISP, RPSF, BKG")
    return found


@dataclass(frozen=True)
class IRFSet:
    """The IRF HDUs of one file, read with gcxr's readers (DataArrays with named dims)."""

    refs: tuple[tuple[str, HDURef], ...]

    @classmethod
    def from_file(cls, path: str | Path) -> "IRFSet":
        """The IRFs of a FITS file (HDUs found by :func:`irf_hdus`).

        Parameters
        ----------
        path : str or Path
            The IRF file.

        Returns
        -------
        IRFSet
            The IRFs.
        """
        return cls(tuple(irf_hdus(path).items()))

    def ref(self, kind: str) -> HDURef:
        """The HDU of one IRF kind.

        Parameters
        ----------
        kind : {'aeff', 'edisp', 'psf', 'bkg'}
            The IRF.

        Returns
        -------
        HDURef
            
        """
        return dict(self.refs)[kind]

    @property
    def path(self) -> Path:
        """The IRF file."""
        return Path(self.ref("aeff").path)

    @property
    def aeff(self) -> xr.DataArray:
        """The effective area (:func:`gcxr.irf.aeff.read_aeff`)."""
        return read_aeff(self.ref("aeff"))

    @property
    def psf(self) -> xr.DataArray:
        """The PSF (:func:`gcxr.irf.psf.read_psf`)."""
        return read_psf(self.ref("psf"))

    @property
    def edisp(self) -> xr.DataArray:
        """The energy dispersion (:func:`gcxr.irf.edisp.read_edisp`)."""
        return read_edisp(self.ref("edisp"))

    @property
    def bkg(self) -> xr.DataArray:
        """The background rate (:func:`gcxr.irf.background.read_bkg`)."""
        return read_bkg(self.ref("bkg"))


def store_irf(out_dir: str | Path, irf_file: str | Path) -> tuple[Path, Path]:
    """(store directory, IRF file inside it): the IRF is copied under ``irf/`` if it lives elsewhere.

    Parameters
    ----------
    out_dir : str or Path
        The store's directory (made if missing).
    irf_file : str or Path
        The IRF file.

    Returns
    -------
    tuple of Path
        ``(store directory, IRF file inside it)``.
    """
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    irf_file = Path(irf_file).expanduser().resolve()
    if out not in irf_file.parents:
        dest = out / "irf" / irf_file.name
        with atomic_path(dest) as tmp:
            shutil.copyfile(irf_file, tmp)
        irf_file = dest
    return out, irf_file
