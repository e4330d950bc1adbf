r"""Simulated DL3 data: parametric IRFs, event sampling, a GADF data-store writer.

What to use when:

* :func:`simulate_datastore` - one call: IRFs (parametric or a supplied file),
  events for every run, a complete GADF store on disk (what ``gcxr simulate``
  runs).
* :class:`ParametricIRF` / :func:`write_parametric_irfs` - CTA-like effective
  area, Gaussian PSF (``psf_3gauss`` or ``psf_table``), log-normal energy
  dispersion (``edisp_2d``) and background (``bkg_3d``) as GADF HDUs.
* :class:`IRFSet` - the four IRF HDUs of any IRF file (found by their HDUCLAS
  keywords), read with gcxr's own readers.
* :func:`make_runs`, :func:`simulate_events`, :func:`write_datastore` - the
  steps of :func:`simulate_datastore`, for custom observation plans.
* :func:`simulate_counts` - a Poisson realisation of a predicted-counts cube
  (closure tests at the cube level, no events).

Sampling (one Poisson process per run and component)
----------------------------------------------------
Sources: true energy and direction follow
:math:`\phi(E)\,S(\Omega)\,A_\mathrm{eff}(E, \theta(\Omega))\,T_\mathrm{live}`.
They are drawn by *thinning*: candidates from :math:`\phi(E)\,S(\Omega)\,
\hat A(E)` where :math:`\hat A` is the maximum of the interpolated effective
area over the energy cell and the offsets the source can reach (exact: a
bilinear interpolant peaks on its nodes or on the domain corners), each kept
with probability :math:`A_\mathrm{eff}/\hat A`.  The reconstructed direction is
the true one displaced by a radius drawn from the PSF at (E, offset) in a
uniform position angle; the reconstructed energy is ``E * migra`` with migra
drawn from the energy dispersion.

Background: the ``bkg_3d`` rate (per unit *ontime*) is integrated on a fine
(energy, FoV) grid, a Poisson number of events is drawn per cell, placed
uniformly in (lon, sin lat) of the field-of-view frame and power-law
distributed in energy within the cell.

The IRFs are evaluated with the interpolation gcxr's reduction uses (bilinear
in (ln E, offset); log-trilinear for the background), so the events follow the
response that the reduction predicts.  Every draw comes from a
``numpy.random.Generator`` seeded by ``(seed, obs_id)``: a run's events do not
depend on which other runs are simulated.
"""
from __future__ import annotations

import gzip
import io
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from .coords import fov_matrix, transform_lonlat
from .datastore import DataStoreError, HDURef
from .geom import lonlat_to_unit, separation_deg, unit_to_lonlat
from .io import atomic_path
from .irf import eval_aeff, eval_bkg_rate, read_aeff, read_bkg, read_edisp, read_psf, trapz_loglog
from .irf._interp import interp_scattered

__all__ = ["ParametricIRF", "write_parametric_irfs", "IRFSet", "irf_hdus", "RunSpec", "make_runs", "EventList",
           "simulate_events", "SimulatedRun", "write_datastore", "write_run_events", "write_index",
           "simulate_datastore", "default_models",
           "simulate_counts", "MJDREF", "T0_DEFAULT"]

MJDREF = (51544, 0.5)                  # MJDREFI, MJDREFF (2000-01-01 12:00 TT), as CTA 1DC
T0_DEFAULT = 788961600.0              # 2025-01-01 00:00 TT, in s since MJDREF
_GADF = {"HDUCLASS": "GADF", "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
         "HDUVERS": "0.3"}
_CHUNK = 20000                         # events per chunk of per-event IRF tables
CM2_PER_M2 = 1e4
SITE = {"GEOLON": -70.3167, "GEOLAT": -24.6272, "ALTITUDE": 2150.0}   # a CTA-South-like site (deg, deg, m)


# =========================================================================== parametric IRFs
def _geom_edges(lo, hi, per_decade):
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
    energy_edges: tuple[float, ...] = _geom_edges(0.02, 200.0, 10)
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
    hdu.header.update({**_GADF, "HDUCLAS1": "RESPONSE", "HDUCLAS2": clas2, "HDUCLAS3": "FULL-ENCLOSURE",
                       "HDUCLAS4": clas4, **(extra or {})})
    return hdu


def _write_fits(hdus: Sequence[fits.hdu.base.ExtensionHDU], path: Path, compresslevel: int = 6) -> Path:
    """Write a primary HDU plus ``hdus`` atomically; ``.gz`` names are gzipped (reproducibly)."""
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
    return _write_fits((irf or ParametricIRF()).hdus(), Path(path))


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
def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def run_rng(seed: int | None, obs_id: int) -> np.random.Generator:
    """The generator of one run: a function of (seed, obs_id) only."""
    entropy = [int(obs_id)] if seed is None else [int(seed), int(obs_id)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _edges_of(da: xr.DataArray, dim: str) -> np.ndarray:
    return np.append(da[f"{dim}_lo"].values, da[f"{dim}_hi"].values[-1])


def _powerlaw_draw(u, lo, hi, f_lo, f_hi):
    """Energies in [lo, hi] from the power law through (lo, f_lo), (hi, f_hi); log-uniform if degenerate."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = np.log(f_lo / f_hi) / np.log(hi / lo)
        g = np.where(np.isfinite(g), g, 1.0)
        a = 1.0 - g
        t = (hi / lo) ** a
        e = lo * (1.0 + u * (t - 1.0)) ** (1.0 / a)
        e = np.where(np.abs(a) < 1e-6, lo * (hi / lo) ** u, e)
    return np.clip(np.where(np.isfinite(e), e, lo * (hi / lo) ** u), lo, hi)


def _offset_by(lon, lat, pa, r):
    """Points at angular distance ``r`` and position angle ``pa`` (east of north) from (lon, lat); deg."""
    lon, lat, pa, r = (np.deg2rad(np.asarray(x, float)) for x in (lon, lat, pa, r))
    slat = np.sin(lat) * np.cos(r) + np.cos(lat) * np.sin(r) * np.cos(pa)
    lat2 = np.arcsin(np.clip(slat, -1.0, 1.0))
    dlon = np.arctan2(np.sin(pa) * np.sin(r) * np.cos(lat), np.cos(r) - np.sin(lat) * slat)
    return np.rad2deg(lon + dlon) % 360.0, np.rad2deg(lat2)


def _pairwise(table: np.ndarray, nodes: list[np.ndarray], coords: list[np.ndarray]) -> np.ndarray:
    """Multilinear interpolation of the trailing dims of ``table`` at per-event coordinates."""
    return interp_scattered(table, nodes, coords)


def _aeff_at(aeff: xr.DataArray, energy: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """A_eff (m²) per (energy, offset) pair, as :func:`gcxr.irf.eval_aeff` interpolates."""
    val = np.clip(_pairwise(aeff.values, [np.log(aeff["energy_true"].values), aeff["offset"].values],
                            [np.log(energy), offset]), 0.0, None)
    e_e, o_e = _edges_of(aeff, "energy_true"), _edges_of(aeff, "offset")
    val[(energy < e_e[0]) | (energy > e_e[-1]) | (offset < o_e[0]) | (offset > o_e[-1])] = 0.0
    return val


def _sphere_accept(rng, propose, n: int):
    r"""``n`` draws (theta, pa; deg) from a flat-sky proposal, made exact on the sphere.

    ``propose(m)`` returns ``m`` draws whose density in the tangent plane
    (:math:`\theta\,d\theta\,d\psi`) is the model's profile; keeping each
    with probability :math:`\sin\theta/\theta` turns that into the profile's
    density per solid angle (:math:`\sin\theta\,d\theta\,d\psi`), which is
    what the model's ``evaluate`` gives (sr^-1).
    """
    th_out, pa_out, got = [], [], 0
    while got < n:
        m = int(1.05 * (n - got)) + 16
        theta, pa = propose(m)
        t = np.deg2rad(theta)
        keep = (t < np.pi) & (rng.random(m) * t <= np.sin(t))
        th_out.append(theta[keep])
        pa_out.append(pa[keep])
        got += int(keep.sum())
    if not th_out:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(th_out)[:n], np.concatenate(pa_out)[:n]


def _shell_proposal(rng, r_in: float, r_out: float):
    """Flat-sky draws of a projected uniform spherical shell (deg): a uniform
    point in the 3D shell (radius^2-weighted radius, isotropic direction) seen
    along the line of sight."""
    def propose(m):
        radius = np.cbrt(r_in ** 3 + rng.random(m) * (r_out ** 3 - r_in ** 3))
        cos_los = rng.uniform(-1.0, 1.0, m)
        return radius * np.sqrt(1.0 - cos_los ** 2), rng.uniform(0.0, 360.0, m)
    return propose


def _sample_template(rng, model, n: int):
    """Pixels drawn by their flux (brightness x solid angle), uniform within a pixel."""
    where = f"simulate: TemplateSpatialModel({model.filename!r})"
    if model.is_energy_dependent:
        raise ValueError(f"{where}: energy-dependent (3D) templates are not supported for event "
                         "sampling; use a 2D template")
    flux = np.clip(model.data[0] * model.solid_angle, 0.0, None)
    total = flux.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError(f"{where}: the map has no positive flux to sample")
    ny, nx = flux.shape
    idx = rng.choice(flux.size, size=n, p=(flux / total).ravel())
    iy, ix = np.unravel_index(idx, (ny, nx))
    x = ix + rng.uniform(-0.5, 0.5, n)
    y = iy + rng.uniform(-0.5, 0.5, n)
    lon, lat = (np.asarray(v, dtype=float) for v in model.wcs.pixel_to_world_values(x, y))
    c_lon, c_lat = model.map_center
    lon0, lat0 = model.position                   # lon_0/lat_0 move the template (as in evaluate)
    return (lon + (lon0 - c_lon)) % 360.0, lat + (lat0 - c_lat)


def _sample_disk_rejection(rng, model, n: int):
    """Elongated disk: uniform draws on the cap of the evaluation radius, kept
    with probability f / max f (exact, smooth edge included, cut where gammapy
    stops evaluating the model)."""
    vals = model.values
    lon0, lat0 = model.position
    reach = np.deg2rad(model.evaluation_radius)
    f_max = float(np.max(type(model)._evaluate(np.array([lon0]), np.array([lat0]), **vals)))
    lon_out, lat_out, got = [], [], 0
    while got < n:
        m = 2 * (n - got) + 16
        x = rng.random(m) * 2.0 * np.sin(reach / 2.0) ** 2          # 1 - cos(theta), uniform on the cap
        theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(x / 2.0)))
        lon, lat = _offset_by(np.full(m, lon0), np.full(m, lat0), rng.uniform(0.0, 360.0, m), theta)
        keep = rng.random(m) * f_max < type(model)._evaluate(lon, lat, **vals)
        lon_out.append(lon[keep])
        lat_out.append(lat[keep])
        got += int(keep.sum())
    if not lon_out:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(lon_out)[:n], np.concatenate(lat_out)[:n]


def _sample_spatial(rng, model, n: int):
    """(lon, lat) deg in the model's frame, ``n`` draws of the spatial model.

    Point, Gaussian, disk, generalised Gaussian, shell, shell2 and 2D template
    models.  The generalised Gaussian and the shells are drawn from their
    flat-sky profile and made exact on the sphere by :func:`_sphere_accept`;
    the elongated disk by rejection on the cap of its evaluation radius (as far
    as gammapy evaluates it); a template by pixel flux, uniform in each pixel.
    """
    from .models import (DiskSpatialModel, GaussianSpatialModel, GeneralizedGaussianSpatialModel,
                         PointSpatialModel, Shell2SpatialModel, ShellSpatialModel, TemplateSpatialModel)
    if isinstance(model, TemplateSpatialModel):
        return _sample_template(rng, model, n)
    lon0, lat0 = model.position
    tag = type(model).__name__
    if isinstance(model, PointSpatialModel):
        return np.full(n, lon0), np.full(n, lat0)
    if isinstance(model, GaussianSpatialModel):
        sigma, e, phi = (model.parameters[k].value for k in ("sigma", "e", "phi"))
        if e == 0:
            # 1 - cos(theta) is exponential with mean 2a on [0, 2] (a = 1 - cos sigma): exact on the sphere
            a = 2.0 * np.sin(np.deg2rad(sigma) / 2.0) ** 2
            x = -2.0 * a * np.log1p(-rng.random(n) * -np.expm1(-1.0 / a))
            theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(np.clip(x / 2.0, 0.0, 1.0))))
            pa = rng.uniform(0.0, 360.0, n)
        else:      # elongated: flat-sky bivariate normal, major axis at position angle phi
            major = rng.normal(0.0, sigma, n)
            minor = rng.normal(0.0, sigma * np.sqrt(1.0 - e ** 2), n)
            theta = np.hypot(major, minor)
            pa = phi + np.rad2deg(np.arctan2(minor, major))
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    if isinstance(model, DiskSpatialModel):
        if model.parameters["e"].value == 0:
            r0 = np.deg2rad(model.parameters["r_0"].value)
            x = rng.random(n) * 2.0 * np.sin(r0 / 2.0) ** 2
            theta = np.rad2deg(2.0 * np.arcsin(np.sqrt(x / 2.0)))
            return _offset_by(np.full(n, lon0), np.full(n, lat0), rng.uniform(0.0, 360.0, n), theta)
        return _sample_disk_rejection(rng, model, n)
    if isinstance(model, GeneralizedGaussianSpatialModel):
        r_0, eta, e, phi = (model.parameters[k].value for k in ("r_0", "eta", "e", "phi"))
        minor = r_0 * np.sqrt(1.0 - e ** 2)

        def propose(m):
            # u = (theta / r_eff)^(1/eta) has density u^(2 eta - 1) exp(-u): Gamma(2 eta)
            rho = rng.gamma(2.0 * eta, 1.0, m) ** eta
            t = rng.uniform(0.0, 2.0 * np.pi, m)
            x, y = r_0 * rho * np.cos(t), minor * rho * np.sin(t)      # along the major / minor axis
            return np.hypot(x, y), phi + np.rad2deg(np.arctan2(y, x))
        theta, pa = _sphere_accept(rng, propose, n)
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    if isinstance(model, (ShellSpatialModel, Shell2SpatialModel)):
        if isinstance(model, ShellSpatialModel):
            r_in = model.parameters["radius"].value
            r_out = r_in + model.parameters["width"].value
        else:
            r_out = model.parameters["r_0"].value
            r_in = (1.0 - model.parameters["eta"].value) * r_out
        if not (0.0 <= r_in <= r_out and r_out > 0):
            raise ValueError(f"simulate: {tag} needs 0 <= inner radius <= outer radius, outer > 0; "
                             f"got {r_in} and {r_out} deg")
        theta, pa = _sphere_accept(rng, _shell_proposal(rng, r_in, r_out), n)
        return _offset_by(np.full(n, lon0), np.full(n, lat0), pa, theta)
    raise ValueError(f"simulate: spatial model {tag} is not supported for event sampling "
                     "(supported: Point, Gaussian, Disk, GeneralizedGaussian, Shell, Shell2, 2D Template)")


def _aeff_envelope(aeff, e_edges, off_lo, off_hi):
    """Max of the interpolated A_eff over each energy cell x [off_lo, off_hi] (exact for bilinear)."""
    en = aeff["energy_true"].values
    on = aeff["offset"].values
    e_pts = np.unique(np.concatenate([e_edges, en[(en > e_edges[0]) & (en < e_edges[-1])]]))
    o_pts = np.unique(np.concatenate([[off_lo, off_hi], on[(on > off_lo) & (on < off_hi)]]))
    a = eval_aeff(aeff, e_pts, o_pts).max(axis=1)
    i0 = np.searchsorted(e_pts, e_edges[:-1])
    i1 = np.searchsorted(e_pts, e_edges[1:])
    return np.array([a[i:j + 1].max() for i, j in zip(i0, i1)])


def _psf_radius(rng, psf: xr.DataArray, energy, offset) -> np.ndarray:
    """PSF displacement (deg) per event."""
    nodes = [np.log(psf["energy_true"].values), psf["offset"].values]
    n = energy.size
    r = np.zeros(n)
    for s in range(0, n, _CHUNK):
        sl = slice(s, s + _CHUNK)
        coords = [np.log(energy[sl]), offset[sl]]
        if psf.attrs["hdu_class"] == "psf_3gauss":
            scale, s1, a2, s2, a3, s3 = np.clip(_pairwise(psf.values, nodes, coords), 0.0, None)
            w = np.stack([scale * s1 ** 2, scale * a2 * s2 ** 2, scale * a3 * s3 ** 2])
            tot = w.sum(axis=0)
            cum = np.cumsum(w, axis=0) / np.where(tot > 0, tot, 1.0)
            k = (rng.random(s1.size)[None] > cum).sum(axis=0).clip(0, 2)
            sig = np.choose(k, [s1, s2, s3])
            r[sl] = np.where(tot > 0, sig * np.sqrt(-2.0 * np.log1p(-rng.random(s1.size))), 0.0)
        else:
            tab = np.moveaxis(psf.values, 2, 0)                              # (rad, E, offset)
            dens = np.clip(_pairwise(tab, nodes, coords), 0.0, None)        # (rad, n) sr^-1
            r_e = _edges_of(psf, "rad")
            rc = 0.5 * (r_e[:-1] + r_e[1:])
            e_e, o_e = _edges_of(psf, "energy_true"), _edges_of(psf, "offset")
            out = (energy[sl] < e_e[0]) | (energy[sl] > e_e[-1]) | (offset[sl] < o_e[0]) | (offset[sl] > o_e[-1])
            dens[:, out] = 0.0
            r[sl] = _inverse_cdf(rng, dens * (rc * np.diff(r_e))[:, None], r_e, area=True)
    return r


def _inverse_cdf(rng, weights: np.ndarray, edges: np.ndarray, area: bool = False) -> np.ndarray:
    """One draw per column of ``weights`` (bins x n): a bin by its weight, then uniform within it
    (uniform in r² when ``area``); NaN where a column has no weight."""
    cdf = np.cumsum(weights, axis=0)
    tot = cdf[-1]
    u = rng.random(weights.shape[1]) * tot
    j = np.minimum((cdf < u[None]).sum(axis=0), len(edges) - 2)
    lo, hi = edges[j], edges[j + 1]
    f = rng.random(weights.shape[1])
    x = np.sqrt(lo ** 2 + f * (hi ** 2 - lo ** 2)) if area else lo + f * (hi - lo)
    return np.where(tot > 0, x, np.nan)


def _migra(rng, edisp: xr.DataArray, energy, offset) -> np.ndarray:
    """migra = E_reco / E_true per event (NaN where the dispersion is zero)."""
    tab = np.moveaxis(edisp.values, 1, 0)                                    # (migra, E, offset)
    nodes = [np.log(edisp["energy_true"].values), edisp["offset"].values]
    m_e, o_e = _edges_of(edisp, "migra"), _edges_of(edisp, "offset")
    out = np.empty(energy.size)
    for s in range(0, energy.size, _CHUNK):
        sl = slice(s, s + _CHUNK)
        dens = np.clip(_pairwise(tab, nodes, [np.log(energy[sl]), offset[sl]]), 0.0, None)
        dens[:, (offset[sl] < o_e[0]) | (offset[sl] > o_e[-1])] = 0.0
        out[sl] = _inverse_cdf(rng, dens * np.diff(m_e)[:, None], m_e)
    return out


# =========================================================================== events
def _sample_source(rng, model, run: RunSpec, irfs: IRFSet, per_decade: int = 20):
    """(ra, dec, energy_reco, n_dropped) of one source's events in one run."""
    aeff = irfs.aeff
    spatial, spectral = model.spatial_model, model.spectral_model
    if spatial is None:
        raise ValueError(f"simulate: source {model.name!r} has no spatial model")
    frame = spatial.frame
    e_lo, e_hi = _edges_of(aeff, "energy_true")[[0, -1]]
    e_edges = np.asarray(_geom_edges(e_lo, e_hi, per_decade))
    # offsets the source can reach
    lon0, lat0 = spatial.position
    ra0, dec0 = transform_lonlat(np.array([lon0]), np.array([lat0]), frame, "icrs")
    theta0 = float(separation_deg(ra0, dec0, run.ra_pnt, run.dec_pnt)[0])
    reach = spatial.evaluation_radius
    if not np.isfinite(reach):
        reach = 180.0
    off_lo, off_hi = max(theta0 - reach, 0.0), min(theta0 + reach, 180.0)
    a_env = _aeff_envelope(aeff, e_edges, off_lo, off_hi)
    flux = np.asarray(spectral.integral(e_edges[:-1], e_edges[1:]), float)          # cm-2 s-1
    mu = np.clip(flux, 0.0, None) * a_env * CM2_PER_M2 * run.livetime
    n_bin = rng.poisson(mu)
    idx = np.repeat(np.arange(mu.size), n_bin)
    lo, hi = e_edges[idx], e_edges[idx + 1]
    phi = np.asarray(spectral.evaluate(e_edges), float)
    energy = _powerlaw_draw(rng.random(idx.size), lo, hi, phi[idx], phi[idx + 1])
    lon, lat = _sample_spatial(rng, spatial, idx.size)
    ra, dec = transform_lonlat(lon, lat, frame, "icrs")
    offset = separation_deg(ra, dec, run.ra_pnt, run.dec_pnt)
    keep = rng.random(idx.size) * a_env[idx] < _aeff_at(aeff, energy, offset)
    ra, dec, energy, offset = ra[keep], dec[keep], energy[keep], offset[keep]
    # instrument: PSF displacement, energy dispersion
    r = _psf_radius(rng, irfs.psf, energy, offset)
    ra, dec = _offset_by(ra, dec, rng.uniform(0.0, 360.0, r.size), r)
    migra = _migra(rng, irfs.edisp, energy, offset)
    ok = np.isfinite(migra)
    return ra[ok], dec[ok], (energy * migra)[ok], int(np.count_nonzero(~ok))


def _sample_background(rng, bkg: xr.DataArray, run: RunSpec, n_sub_e: int = 4, n_sub_xy: int = 2):
    """(ra, dec, energy) of background events from the rate x ontime."""
    def sub(edges, k, log):
        pts = [np.geomspace(a, b, k + 1)[:-1] if log else np.linspace(a, b, k + 1)[:-1]
               for a, b in zip(edges[:-1], edges[1:])]
        return np.append(np.concatenate(pts), edges[-1])
    e = sub(_edges_of(bkg, "energy"), n_sub_e, True)
    x = sub(_edges_of(bkg, "fov_lon"), n_sub_xy, False)
    y = sub(_edges_of(bkg, "fov_lat"), n_sub_xy, False)
    xc, yc = 0.5 * (x[:-1] + x[1:]), 0.5 * (y[:-1] + y[1:])
    X, Y = np.meshgrid(xc, yc, indexing="ij")
    rate = eval_bkg_rate(bkg, e, X, Y)                                       # (nE+1, nx, ny)
    integ = trapz_loglog(rate, e, axis=0)                                    # s-1 sr-1
    sin_y = np.sin(np.deg2rad(y))
    omega = np.deg2rad(np.diff(x))[:, None] * np.diff(sin_y)[None, :]       # sr
    mu = integ * omega[None] * run.ontime
    n = rng.poisson(mu)
    ie, ix, iy = np.unravel_index(np.repeat(np.arange(mu.size), n.ravel()), mu.shape)
    energy = _powerlaw_draw(rng.random(ie.size), e[ie], e[ie + 1], rate[ie, ix, iy], rate[ie + 1, ix, iy])
    fov_lon = x[ix] + rng.random(ie.size) * (x[ix + 1] - x[ix])
    fov_lat = np.rad2deg(np.arcsin(sin_y[iy] + rng.random(ie.size) * (sin_y[iy + 1] - sin_y[iy])))
    # FoV frame (RADEC alignment, fov_lon = -lon') -> ICRS
    v = lonlat_to_unit(-fov_lon, fov_lat) @ fov_matrix(run.ra_pnt, run.dec_pnt, "icrs")
    ra, dec = unit_to_lonlat(v)
    return ra, dec, energy


def sky_models(models) -> list:
    """The sky models of a model collection (background models left out; None: none).

    Parameters
    ----------
    models : Models or None
        The models.

    Returns
    -------
    list of SkyModel
        The sky models, in order.
    """
    if models is None:
        return []
    from .models import SkyModel
    return [m for m in models if isinstance(m, SkyModel)]


def simulate_events(run: RunSpec, irfs: IRFSet, models=None, rng: np.random.Generator | int | None = None,
                    background: bool = True) -> EventList:
    """Events of one run: every :class:`~gcxr.models.SkyModel` in ``models`` plus the IRF background.

    ``mc_id`` is 0 for background and ``k`` for the k-th sky model (1-based).
    FoV background models in ``models`` are ignored (the background comes from the IRF).

    Parameters
    ----------
    run : RunSpec
        The run.
    irfs : IRFSet
        The IRFs.
    models : Models or list of SkyModel, optional
        The sources.
    rng : numpy.random.Generator or int, optional
        Random generator or seed.
    background : bool
        Include the IRF background.

    Returns
    -------
    EventList
        The events.
    """
    rng = _rng(rng)
    parts, names, dropped = [], [], 0
    if background:
        ra, dec, en = _sample_background(rng, irfs.bkg, run)
        parts.append((ra, dec, en, np.zeros(ra.size, np.int32)))
    for k, m in enumerate(sky_models(models), start=1):
        ra, dec, en, nd = _sample_source(rng, m, run, irfs)
        parts.append((ra, dec, en, np.full(ra.size, k, np.int32)))
        names.append(m.name)
        dropped += nd
    if parts:
        ra, dec, en, mc = (np.concatenate(p) for p in zip(*parts))
    else:
        ra = dec = en = np.zeros(0)
        mc = np.zeros(0, np.int32)
    time = run.tstart + rng.random(ra.size) * run.ontime
    order = np.argsort(time, kind="stable")
    return EventList(time[order], ra[order], dec[order], en[order], mc[order], tuple(names), dropped)


# =========================================================================== GADF writer
@dataclass(frozen=True)
class SimulatedRun:
    spec: RunSpec
    events: EventList = field(compare=False)


def _time_keys(t: float) -> dict:
    from astropy.time import Time
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
        **_GADF, "HDUCLAS1": "EVENTS", "OBS_ID": run.obs_id, "TSTART": run.tstart, "TSTOP": run.tstop,
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
    gti.header.update({**_GADF, "HDUCLAS1": "GTI", **_time_header()})
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
    hdu_index.header.update({**_GADF, "HDUCLAS1": "INDEX", "HDUCLAS2": "HDU"})
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
    obs_index.header.update({**_GADF, "HDUCLAS1": "INDEX", "HDUCLAS2": "OBS", **_time_header()})
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
    return _write_fits(_events_hdus(spec, events), Path(out_dir) / d / name, compresslevel)


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
    _write_fits([hdu_index], out / "hdu-index.fits.gz")
    _write_fits([obs_index], out / "obs-index.fits.gz")
    return out


# =========================================================================== one call
DEFAULT_POINTINGS = ((0.0, 1.0), (0.0, -1.0), (359.0, 0.0))


def default_models():
    """A Galactic-Centre-like sky: a point source with an ECPL spectrum and a Gaussian source (galactic)."""
    from .models import (ExpCutoffPowerLawSpectralModel, GaussianSpatialModel, Models, PointSpatialModel,
                         PowerLawSpectralModel, SkyModel)
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
    from .progress import progress_bar
    out = Path(out_dir).expanduser().resolve()
    if models is None:
        models = default_models()
    elif isinstance(models, (str, Path)):
        from .models import Models
        models = Models.read(models)
    runs = make_runs(pointings, livetime, frame=frame, deadc=deadc, first_obs_id=first_obs_id)
    for m in sky_models(models):                         # fail before writing anything
        if m.spatial_model is None:
            raise ValueError(f"simulate: source {m.name!r} has no spatial model")
        _sample_spatial(np.random.default_rng(0), m.spatial_model, 0)
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
    from .io import write_json
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
    out["counts"] = xr.Variable(counts.dims, _rng(seed).poisson(mu).astype(counts.dtype), dict(counts.attrs))
    return out
