r"""Spatial models: surface brightness in sr^-1 on the sphere.

Coordinates are plain floats in degrees, in the model's ``frame``
(``"icrs"`` or ``"galactic"``); ``evaluate(lon, lat)`` broadcasts.  All models
integrate to one over the sphere (the elongated shapes to the accuracy of
their small-angle normalisation, as in gammapy).

Definitions (gammapy 2.1's, re-derived here):

* **Gaussian**, symmetric (``e = 0``): with :math:`a = 1 - \cos\sigma` and
  :math:`\theta` the angular distance from the centre,
  :math:`f = N \exp[-(1-\cos\theta)/(2a)]`,
  :math:`N = 1/(4\pi a (1 - e^{-1/a}))` — a Gaussian in
  :math:`\sqrt{2(1-\cos\theta)}` normalised exactly on the sphere
  (:math:`\approx \exp(-\theta^2/2\sigma^2)/(2\pi\sigma^2)` for small sigma).
* **Elongated shapes** (Gaussian and disk with eccentricity ``e > 0``):
  ``sigma`` / ``r_0`` is the *major* semi-axis :math:`a`, the minor one is
  :math:`b = a\sqrt{1-e^2}`, and ``phi`` is the position angle of the major
  axis, east of north (counter-clockwise from north towards increasing
  longitude).  In the direction at position angle :math:`\psi` from the centre
  the effective radius is :math:`r(\psi) = ab/\sqrt{(a\sin\Delta)^2 +
  (b\cos\Delta)^2}`, :math:`\Delta = \phi - \psi` (so :math:`r = a` along the
  major axis).  The elongated Gaussian uses :math:`r(\psi)` in place of
  sigma with the flat-sky norm :math:`1/(2\pi a b)`.
* **Disk**: a uniform disk of radius :math:`r(\psi)` (``r_0`` when ``e = 0``)
  with an error-function edge, :math:`f = N\,\tfrac12[1 - \mathrm{erf}(k
  (\theta - r)/(w r))]`, where ``w = edge_width`` is the fraction of the radius
  over which the profile falls from 95 % to 5 %, i.e. :math:`k = 2\,
  \mathrm{erfinv}(0.9)`.  :math:`N` is one over the solid angle of the
  sharp-edged disk (spherical cap :math:`2\pi(1-\cos r_0)`; for the ellipse
  :math:`2\int_0^\pi (1 - \cos\rho(x))dx` with :math:`\sin^{-2}\rho(x) =
  \cos^2x/\sin^2 a + \sin^2x/\sin^2 b`).

* **Generalised Gaussian** (``r_0``, ``eta``, ``e``, ``phi``):
  :math:`f = N \exp[-(\theta/r(\psi))^{1/\eta}]` with :math:`r(\psi)` the
  ellipse radius above (``r_0`` is the major semi-axis :math:`a`) and the
  flat-sky norm :math:`N = 1/(2\pi a b\,\eta\,\Gamma(2\eta))`.  ``eta = 0.5``
  is a Gaussian of :math:`\sigma = r_0/\sqrt2`, ``eta = 1`` a Laplace
  profile, ``eta -> 0`` a sharp disk.
* **Shell** (``radius`` :math:`r_i`, ``width`` :math:`w`, outer radius
  :math:`r_o = r_i + w`): the projection on the sky of a uniformly emitting
  spherical shell, :math:`f = N[\sqrt{r_o^2-\theta^2} -
  \sqrt{r_i^2-\theta^2}]` for :math:`\theta < r_i`,
  :math:`N\sqrt{r_o^2-\theta^2}` for :math:`r_i \le \theta \le r_o`, 0
  outside, with the flat-sky norm :math:`N = 3/(2\pi(r_o^3 - r_i^3))`
  (angles in radians).  **Shell2** is the same profile parametrised by the
  outer radius ``r_0`` = :math:`r_o` and the relative width ``eta``,
  :math:`r_i = (1 - \eta) r_0`.

The flat-sky norms (elongated shapes, generalised Gaussian, shells) make the
integral over the sphere one only to :math:`O(\theta^2)` of the extent (for a
1 deg shell, about 1e-4 low), exactly as in gammapy.

The point source has no surface brightness: its flux goes to the pixels
around ``(lon_0, lat_0)`` (bilinear weights, done by the npred code).

Sub-pixel sampling
------------------
Each model has ``evaluation_bin_size_min`` (deg; None when the model sets no
scale), the smallest pixel size at which evaluating at pixel centres is
deemed accurate, and :func:`oversampling_factor` turns it into the number of
sub-pixels per axis that gammapy 2.1 uses when it integrates the model over a
map's pixels.
"""
from __future__ import annotations

import os
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from ..geom import angular_separation
from ._base import ParametricModel, lookup_type
from .parameters import ModelError, Parameter, Parameters

__all__ = [
    "SpatialModel",
    "PointSpatialModel",
    "GaussianSpatialModel",
    "DiskSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "ShellSpatialModel",
    "Shell2SpatialModel",
    "TemplateSpatialModel",
    "SPATIAL_MODELS",
    "MAX_OVERSAMPLING",
    "oversampling_factor",
    "spatial_model_from_dict",
    "angular_separation",
    "position_angle",
]

Frame = Literal["icrs", "galactic"]
FRAMES: tuple[str, ...] = ("icrs", "galactic")
_TINY = np.finfo(np.float64).tiny
_EDGE_K = 2.0 * 1.1630871536766743   # 2 erfinv(0.9)  # 95 % -> 5 % over the edge width
MAX_OVERSAMPLING = 200  # gammapy 2.1's cap on the sub-pixels per axis (modeling/models/spatial.py)


# --------------------------------------------------------------------------
# spherical helpers (radians in, radians out)
# --------------------------------------------------------------------------
_TRIG_CACHE: "OrderedDict[tuple[int, int], tuple]" = OrderedDict()


def _grid_trig(lon, lat) -> tuple:
    """``(sin lon, cos lon, sin lat, cos lat)`` of pixel centres given in degrees.

    Memoised for read-only arrays that own their data (an evaluator's pixel grid, made once and
    frozen): a fit evaluates a model on the same grid hundreds of times, and these four are most
    of the cost of a separation.  Anything else is computed afresh.
    """
    cacheable = (isinstance(lon, np.ndarray) and isinstance(lat, np.ndarray) and lon.ndim > 0
                 and not lon.flags.writeable and not lat.flags.writeable and lon.flags.owndata and lat.flags.owndata)
    if cacheable:
        key = (id(lon), id(lat))
        hit = _TRIG_CACHE.get(key)
        if hit is not None and hit[0]() is lon and hit[1]() is lat:
            _TRIG_CACHE.move_to_end(key)
            return hit[2]
    lr, br = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    trig = (np.sin(lr), np.cos(lr), np.sin(br), np.cos(br))
    if cacheable:
        _TRIG_CACHE[key] = (weakref.ref(lon), weakref.ref(lat), trig)
        while len(_TRIG_CACHE) > 16:
            _TRIG_CACHE.popitem(last=False)
    return trig


def separation_from(lon, lat, lon_0, lat_0):
    """:func:`angular_separation` of pixel centres ``(lon, lat)`` in degrees from ``(lon_0,
    lat_0)`` in radians, with the pixels' sines and cosines memoised (:func:`_grid_trig`).

    Parameters
    ----------
    lon, lat : array_like
        Pixel centres (deg).
    lon_0, lat_0 : array_like
        The centre (radians).

    Returns
    -------
    numpy.ndarray
        Separation (radians).
    """
    sl, cl, sb, cb = _grid_trig(lon, lat)
    s0, c0 = np.sin(lat_0), np.cos(lat_0)
    sl0, cl0 = np.sin(lon_0), np.cos(lon_0)
    sd = sl0 * cl - cl0 * sl                  # sin(lon_0 - lon)
    cd = cl0 * cl + sl0 * sl                  # cos(lon_0 - lon)
    c0cd = c0 * cd
    num2 = cb * s0 - sb * c0cd
    den = sb * s0 + cb * c0cd
    return np.arctan2(np.hypot(c0 * sd, num2), den)


def position_angle(lon1, lat1, lon2, lat2):
    """Position angle of point 2 seen from point 1, east of north, radians.

    Parameters
    ----------
    lon1, lat1, lon2, lat2 : array_like
        The two positions (radians), broadcasting.

    Returns
    -------
    numpy.ndarray
        Position angle (radians).
    """
    dlon = lon2 - lon1
    c2 = np.cos(lat2)
    y = np.sin(dlon) * c2
    x = np.sin(lat2) * np.cos(lat1) - c2 * np.sin(lat1) * np.cos(dlon)
    return np.arctan2(y, x)


def _one_minus_cos(x):
    """``1 - cos(x)`` without cancellation for small x."""
    return 2.0 * np.sin(0.5 * x) ** 2


def _effective_radius(lon, lat, lon_0, lat_0, major, e, phi):
    """Radius of the ellipse (major semi-axis ``major``, eccentricity e, major
    axis at position angle phi) in the direction of each point; radians."""
    minor = major * np.sqrt(1.0 - e**2)
    d = phi - position_angle(lon_0, lat_0, lon, lat)
    den = np.hypot(major * np.sin(d), minor * np.cos(d))
    with np.errstate(divide="ignore", invalid="ignore"):
        return major * minor / den


def _radius_towards(lon, lat, lon_0, lat_0, major, e, phi):
    """``major`` for a circle (a scalar ``e == 0``: no per-direction work), else the ellipse's
    radius towards each point (:func:`_effective_radius`), where ``e == 0`` gives ``major``."""
    if np.ndim(e) == 0 and e == 0:
        return major
    return np.where(e == 0, major, _effective_radius(lon, lat, lon_0, lat_0, major, e, phi))


# --------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------
def _check_frame(frame: Any, where: str) -> str:
    if frame not in FRAMES:
        raise ModelError(f"{where}: frame {frame!r} is not supported; valid frames: {', '.join(FRAMES)}")
    return str(frame)


class SpatialModel(ParametricModel):
    """Base class of spatial models (``lon_0``, ``lat_0`` in deg, a frame)."""

    kind: ClassVar[str] = "spatial"
    frame: str

    @property
    def position(self) -> tuple[float, float]:
        """``(lon_0, lat_0)`` in deg, in :attr:`frame`."""
        return self.parameters["lon_0"].value, self.parameters["lat_0"].value

    @property
    def skycoord(self):
        """The centre as an `astropy.coordinates.SkyCoord`."""
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        lon, lat = self.position
        return SkyCoord(lon * u.deg, lat * u.deg, frame=self.frame)

    @property
    def evaluation_radius(self) -> float:
        """Radius (deg) outside which the model is negligible."""
        raise NotImplementedError

    @classmethod
    def has_sharp_edges(cls, values: dict[str, float], binsz_deg: float) -> bool:
        """Whether the shape has an edge narrower than a pixel of ``binsz_deg`` at these values.

        Evaluated at pixel centres, such a shape makes the statistic a staircase in its angular
        parameters; the likelihood then differentiates its image over half a pixel
        (:meth:`gcxr.npred.SourceEvaluator`).  Smooth shapes: False.

        Parameters
        ----------
        values : dict
            Parameter values by name.
        binsz_deg : float
            The pixel size (deg).

        Returns
        -------
        bool
        """
        return False

    @classmethod
    def evaluation_radius_at(cls, values: dict[str, float]) -> float:
        """:attr:`evaluation_radius` at the given parameter values (a pure form, for the likelihood,
        which never mutates models).

        Parameters
        ----------
        values : dict
            Parameter values by name.

        Returns
        -------
        float
            Radius (deg).
        """
        model = cls.__new__(cls)
        model.parameters = Parameters([Parameter(k, float(v)) for k, v in values.items()])
        return float(model.evaluation_radius)

    @staticmethod
    def _bin_size_min(**values) -> float | None:
        """Pure form of :attr:`evaluation_bin_size_min` (deg) from parameter values."""
        return None

    @property
    def evaluation_bin_size_min(self) -> float | None:
        """Largest pixel size (deg) at which the model is sampled finely enough
        by its pixel-centre values; None when the model sets no scale (no
        oversampling).  Used by :func:`oversampling_factor`."""
        return type(self)._bin_size_min(**self.values)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", frame={self.frame!r})"

    def evaluate(self, lon, lat) -> np.ndarray:
        """Surface brightness (sr^-1) at ``lon``, ``lat`` (deg, model frame).

        Parameters
        ----------
        lon, lat : array_like
            Positions in the model's frame (deg).

        Returns
        -------
        numpy.ndarray
            Surface brightness (sr-1).
        """
        return type(self)._evaluate(
            np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), **self.values
        )

    __call__ = evaluate

    def to_dict(self) -> dict[str, Any]:
        """gammapy's YAML form ``{type, frame, parameters}``."""
        return {"type": self.tag, "frame": self.frame, "parameters": self._parameters_to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], component: str | None = None, base_dir: str | os.PathLike | None = None) -> "SpatialModel":
        """Build from gammapy's YAML form ``{type, frame, parameters}``.

        Parameters
        ----------
        data : dict
            The YAML mapping.
        component : str, optional
            The component's name, for error messages.
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        SpatialModel
            The model.
        """
        if cls is SpatialModel:
            return spatial_model_from_dict(data, component, base_dir)
        cls._check_type(data, component)
        where = f"component {component!r}: {cls.tag}" if component else cls.tag
        extra = set(data) - {"type", "frame", "parameters"}
        if extra:
            raise ModelError(f"{where}: unexpected keys {sorted(extra)}")
        model = cls.__new__(cls)
        model.frame = _check_frame(data.get("frame", "icrs"), where)
        model.parameters = cls._parameters_from_dict(data.get("parameters"), component)
        return model


class PointSpatialModel(SpatialModel):
    """Point source at (``lon_0``, ``lat_0``) deg; ``lat_0`` limited to [-90, 90].

    It has no surface brightness (``evaluate`` raises); npred puts its flux on
    the pixels around the position.
    """

    tag: ClassVar[str] = "PointSpatialModel"
    tag_short: ClassVar[str] = "point"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
    )

    def __init__(self, lon_0: Any = 0.0, lat_0: Any = 0.0, frame: Frame = "icrs") -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0))

    @property
    def evaluation_radius(self) -> float:
        """0: a point source has no extent."""
        return 0.0

    @staticmethod
    def _bin_size_min(**values) -> float:
        """0 deg (gammapy's value; the point model is never oversampled, see
        :func:`oversampling_factor`)."""
        return 0.0

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0):
        raise TypeError(
            "PointSpatialModel has no surface brightness; its flux is assigned to "
            "the pixels around (lon_0, lat_0)"
        )


class GaussianSpatialModel(SpatialModel):
    """2D Gaussian on the sphere (see the module docstring).

    Parameters: ``lon_0``, ``lat_0`` (deg), ``sigma`` (1 deg, major semi-axis,
    min 0), ``e`` (0, frozen, [0, 1]), ``phi`` (0 deg, frozen, [-180, 180]).
    """

    tag: ClassVar[str] = "GaussianSpatialModel"
    tag_short: ClassVar[str] = "gauss"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
        Parameter("sigma", 1.0, "deg", min=0.0),
        Parameter("e", 0.0, min=0.0, max=1.0, frozen=True),
        Parameter("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True),
    )

    def __init__(
        self,
        lon_0: Any = 0.0,
        lat_0: Any = 0.0,
        sigma: Any = 1.0,
        e: Any = 0.0,
        phi: Any = 0.0,
        frame: Frame = "icrs",
    ) -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0, sigma=sigma, e=e, phi=phi))

    @property
    def evaluation_radius(self) -> float:
        """5 sigma (deg)."""
        return 5.0 * self.parameters["sigma"].value

    @staticmethod
    def _bin_size_min(sigma, **values) -> float:
        """sigma / 3 (deg)."""
        return sigma / 3.0

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0, sigma, e, phi):
        grid = (lon, lat)              # degrees: separation_from memoises their trig
        lon, lat, lon_0, lat_0, sigma, phi = (
            np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, lon_0, lat_0, sigma, phi)
        )
        e = np.asarray(e, dtype=float)
        sep = separation_from(*grid, lon_0, lat_0)
        phi = np.mod(phi, np.pi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # symmetric: exact normalisation on the sphere
            a_sym = _one_minus_cos(sigma)
            norm_sym = 1.0 / (4.0 * np.pi * a_sym * (-np.expm1(-1.0 / a_sym)))
            if e.ndim == 0 and e == 0:       # symmetric only: skip the per-direction radius
                return norm_sym * np.exp(-0.5 * _one_minus_cos(sep) / a_sym)
            # elongated: effective sigma per direction, flat-sky normalisation
            sig_eff = _effective_radius(lon, lat, lon_0, lat_0, sigma, e, phi)
            a_ell = _one_minus_cos(sig_eff)
            norm_ell = 1.0 / (2.0 * np.pi * sigma * sigma * np.sqrt(1.0 - e**2))
            sym = e == 0
            a = np.where(sym, a_sym, a_ell)
            norm = np.where(sym, norm_sym, norm_ell)
            return norm * np.exp(-0.5 * _one_minus_cos(sep) / a)


class DiskSpatialModel(SpatialModel):
    """Uniform (elliptical) disk with a smooth edge (see the module docstring).

    Parameters: ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg, major semi-axis,
    min 0), ``e`` (0, frozen), ``phi`` (0 deg, frozen), ``edge_width``
    (0.01 of r_0, frozen, [0, 1]).
    """

    tag: ClassVar[str] = "DiskSpatialModel"
    tag_short: ClassVar[str] = "disk"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
        Parameter("r_0", 1.0, "deg", min=0.0),
        Parameter("e", 0.0, min=0.0, max=1.0, frozen=True),
        Parameter("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True),
        Parameter("edge_width", 0.01, min=0.0, max=1.0, frozen=True),
    )

    def __init__(
        self,
        lon_0: Any = 0.0,
        lat_0: Any = 0.0,
        r_0: Any = 1.0,
        e: Any = 0.0,
        phi: Any = 0.0,
        edge_width: Any = 0.01,
        frame: Frame = "icrs",
    ) -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0, r_0=r_0, e=e, phi=phi, edge_width=edge_width))

    @classmethod
    def has_sharp_edges(cls, values: dict[str, float], binsz_deg: float) -> bool:
        """True when the edge (``edge_width x r_0``) is narrower than a pixel.

        Parameters
        ----------
        values : dict
            Parameter values by name.
        binsz_deg : float
            The pixel size (deg).

        Returns
        -------
        bool
        """
        return values.get("edge_width", 0.0) * values.get("r_0", 0.0) < binsz_deg

    @property
    def evaluation_radius(self) -> float:
        """1.1 r_0 (1 + edge_width), deg."""
        return 1.1 * self.parameters["r_0"].value * (1.0 + self.parameters["edge_width"].value)

    @staticmethod
    def _bin_size_min(r_0, edge_width, **values) -> float:
        """r_0 (1 - edge_width) / 10 (deg)."""
        return r_0 * (1 - edge_width) / 10.0

    @staticmethod
    def _solid_angle(r_0: float, e: float) -> float:
        """Solid angle (sr) of the sharp-edged disk; radians in."""
        if e == 0:
            return float(2.0 * np.pi * _one_minus_cos(r_0))
        b = r_0 * np.sqrt(1.0 - e**2)
        inv_a2 = 1.0 / np.sin(r_0) ** 2
        inv_b2 = 1.0 / np.sin(b) ** 2

        def one_minus_cos_rho(x: float) -> float:
            sin2 = 1.0 / (inv_b2 + (inv_a2 - inv_b2) * np.cos(x) ** 2)
            return sin2 / (1.0 + np.sqrt(1.0 - sin2))  # = 1 - cos(rho), no cancellation

        import scipy.integrate
        return float(2.0 * scipy.integrate.quad(one_minus_cos_rho, 0.0, np.pi, epsabs=0.0, epsrel=1e-12)[0])

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0, r_0, e, phi, edge_width):
        grid = (lon, lat)              # degrees: separation_from memoises their trig
        lon, lat, lon_0, lat_0, r_0, phi = (
            np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, lon_0, lat_0, r_0, phi)
        )
        e = np.asarray(e, dtype=float)
        edge_width = np.asarray(edge_width, dtype=float)
        sep = separation_from(*grid, lon_0, lat_0)
        phi = np.mod(phi, np.pi)
        norm = np.vectorize(DiskSpatialModel._solid_angle, otypes=[float])(r_0, e)
        norm = 1.0 / norm
        r_eff = _radius_towards(lon, lat, lon_0, lat_0, r_0, e, phi)
        width = r_eff * edge_width
        with np.errstate(divide="ignore", invalid="ignore"):
            import scipy.special
            smooth = 0.5 * scipy.special.erfc(_EDGE_K * (sep - r_eff) / width)
        sharp = np.where(sep < r_eff, 1.0, np.where(sep == r_eff, 0.5, 0.0))
        return norm * np.where(width > 0, smooth, sharp)


class GeneralizedGaussianSpatialModel(SpatialModel):
    r"""Generalised Gaussian :math:`\propto \exp[-(\theta/r(\psi))^{1/\eta}]`
    (see the module docstring).

    Parameters: ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg, major semi-axis,
    no limits), ``eta`` (0.5, [0.01, 1]; 0.5 Gaussian with
    :math:`\sigma = r_0/\sqrt2`, 1 Laplace, towards 0 a disk), ``e`` (0, frozen,
    [0, 1]), ``phi`` (0 deg, frozen, [-180, 180], east of north).
    """

    tag: ClassVar[str] = "GeneralizedGaussianSpatialModel"
    tag_short: ClassVar[str] = "gauss-general"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
        Parameter("r_0", 1.0, "deg"),
        Parameter("eta", 0.5, min=0.01, max=1.0),
        Parameter("e", 0.0, min=0.0, max=1.0, frozen=True),
        Parameter("phi", 0.0, "deg", min=-180.0, max=180.0, frozen=True),
    )

    def __init__(
        self,
        lon_0: Any = 0.0,
        lat_0: Any = 0.0,
        r_0: Any = 1.0,
        eta: Any = 0.5,
        e: Any = 0.0,
        phi: Any = 0.0,
        frame: Frame = "icrs",
    ) -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0, r_0=r_0, eta=eta, e=e, phi=phi))

    @property
    def evaluation_radius(self) -> float:
        """r_0 (1 + 8 eta) (deg): r_0 for a disk-like profile, 5 r_0 at eta = 0.5
        (beyond 5 sigma of the equivalent Gaussian), 9 r_0 at eta = 1."""
        return self.parameters["r_0"].value * (1 + 8 * self.parameters["eta"].value)

    @staticmethod
    def _bin_size_min(r_0, eta, e, **values) -> float:
        """r_0 / (3 + 8 eta) / (1 + e) (deg)."""
        return r_0 / (3 + 8 * eta) / (e + 1)

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0, r_0, eta, e, phi):
        import scipy.special

        grid = (lon, lat)              # degrees: separation_from memoises their trig
        lon, lat, lon_0, lat_0, r_0, phi = (
            np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, lon_0, lat_0, r_0, phi)
        )
        eta = np.asarray(eta, dtype=float)
        e = np.asarray(e, dtype=float)
        sep = separation_from(*grid, lon_0, lat_0)
        phi = np.mod(phi, np.pi)
        minor = r_0 * np.sqrt(1.0 - e**2)
        r_eff = _radius_towards(lon, lat, lon_0, lat_0, r_0, e, phi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            norm = 1.0 / (2.0 * np.pi * minor * r_0 * eta * scipy.special.gamma(2.0 * eta))
            return norm * np.exp(-((sep / r_eff) ** (1.0 / eta)))


def _shell_profile(sep, r_in, r_out):
    """Projected uniform spherical shell, flat-sky normalised; radians in, sr^-1 out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        norm = 3.0 / (2.0 * np.pi * (r_out**3 - r_in**3))
        outer = np.sqrt(np.clip((r_out - sep) * (r_out + sep), 0.0, None))
        inner = np.sqrt(np.clip((r_in - sep) * (r_in + sep), 0.0, None))
        return np.where(sep > r_out, 0.0, norm * (outer - inner))


class ShellSpatialModel(SpatialModel):
    """Projected uniform spherical shell of inner radius ``radius`` and
    thickness ``width`` (see the module docstring).

    Parameters: ``lon_0``, ``lat_0`` (deg), ``radius`` (1 deg, inner radius),
    ``width`` (0.2 deg); neither has limits (as in gammapy).
    """

    tag: ClassVar[str] = "ShellSpatialModel"
    tag_short: ClassVar[str] = "shell"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
        Parameter("radius", 1.0, "deg"),
        Parameter("width", 0.2, "deg"),
    )

    def __init__(
        self,
        lon_0: Any = 0.0,
        lat_0: Any = 0.0,
        radius: Any = 1.0,
        width: Any = 0.2,
        frame: Frame = "icrs",
    ) -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0, radius=radius, width=width))

    @classmethod
    def has_sharp_edges(cls, values: dict[str, float], binsz_deg: float) -> bool:
        """Always: the projected shell's inner and outer edges are sharp.

        Parameters
        ----------
        values : dict
            Parameter values by name.
        binsz_deg : float
            The pixel size (deg).

        Returns
        -------
        bool
        """
        return True

    @property
    def evaluation_radius(self) -> float:
        """The outer radius, radius + width (deg)."""
        return self.parameters["radius"].value + self.parameters["width"].value

    @staticmethod
    def _bin_size_min(width, **values) -> float:
        """The shell width (deg)."""
        return width

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0, radius, width):
        grid = (lon, lat)              # degrees: separation_from memoises their trig
        lon, lat, lon_0, lat_0, radius, width = (
            np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, lon_0, lat_0, radius, width)
        )
        sep = separation_from(*grid, lon_0, lat_0)
        return _shell_profile(sep, radius, radius + width)


class Shell2SpatialModel(SpatialModel):
    """The shell of :class:`ShellSpatialModel` parametrised by its outer radius
    ``r_0`` and its thickness relative to it, ``eta`` (inner radius
    ``(1 - eta) r_0``).

    Parameters: ``lon_0``, ``lat_0`` (deg), ``r_0`` (1 deg, no limits),
    ``eta`` (0.2, [0.02, 1]).
    """

    tag: ClassVar[str] = "Shell2SpatialModel"
    tag_short: ClassVar[str] = "shell2"
    _defaults = (
        Parameter("lon_0", 0.0, "deg"),
        Parameter("lat_0", 0.0, "deg", min=-90.0, max=90.0),
        Parameter("r_0", 1.0, "deg"),
        Parameter("eta", 0.2, min=0.02, max=1.0),
    )

    def __init__(
        self,
        lon_0: Any = 0.0,
        lat_0: Any = 0.0,
        r_0: Any = 1.0,
        eta: Any = 0.2,
        frame: Frame = "icrs",
    ) -> None:
        self.frame = _check_frame(frame, self.tag)
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0, r_0=r_0, eta=eta))

    @property
    def r_in(self) -> float:
        """Inner radius (1 - eta) r_0 (deg)."""
        return (1 - self.parameters["eta"].value) * self.parameters["r_0"].value

    @classmethod
    def has_sharp_edges(cls, values: dict[str, float], binsz_deg: float) -> bool:
        """Always: the projected shell's inner and outer edges are sharp.

        Parameters
        ----------
        values : dict
            Parameter values by name.
        binsz_deg : float
            The pixel size (deg).

        Returns
        -------
        bool
        """
        return True

    @property
    def evaluation_radius(self) -> float:
        """The outer radius r_0 (deg)."""
        return self.parameters["r_0"].value

    @staticmethod
    def _bin_size_min(r_0, eta, **values) -> float:
        """eta r_0 (deg), the shell thickness."""
        return eta * r_0

    @staticmethod
    def _evaluate(lon, lat, lon_0, lat_0, r_0, eta):
        grid = (lon, lat)              # degrees: separation_from memoises their trig
        lon, lat, lon_0, lat_0, r_0 = (
            np.radians(np.asarray(v, dtype=float)) for v in (lon, lat, lon_0, lat_0, r_0)
        )
        eta = np.asarray(eta, dtype=float)
        sep = separation_from(*grid, lon_0, lat_0)
        return _shell_profile(sep, (1 - eta) * r_0, r_0)


# --------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------
def _pixel_solid_angle(wcs, ny: int, nx: int) -> np.ndarray:
    """Solid angle (sr) of each pixel of a celestial WCS, (ny, nx), by gammapy's rule.

    gammapy 2.1 (``WcsGeom.solid_angle``) adds two planar triangles spanned by
    the pixel's corner directions, with great-circle side lengths and the
    corner angles from position angles; for CAR pixels of 0.125 deg this is
    within 1e-6 of the exact area, and it is what normalises templates.
    """
    yy, xx = np.mgrid[0 : ny + 1, 0 : nx + 1] - 0.5
    lon, lat = wcs.pixel_to_world_values(xx, yy)
    lon, lat = np.radians(lon), np.radians(lat)
    c = (lon, lat)
    ll = tuple(a[:-1, :-1] for a in c)
    lr = tuple(a[1:, :-1] for a in c)
    ul = tuple(a[:-1, 1:] for a in c)
    ur = tuple(a[1:, 1:] for a in c)
    low = angular_separation(*ll, *lr)
    left = angular_separation(*ll, *ul)
    up = angular_separation(*ul, *ur)
    right = angular_separation(*lr, *ur)
    angle_lr = position_angle(*lr, *ur) - position_angle(*lr, *ll)
    angle_ul = position_angle(*ul, *ur) - position_angle(*ll, *ul)
    return np.abs(0.5 * low * right * np.sin(angle_lr) + 0.5 * up * left * np.sin(angle_ul))


def _frame_from_wcs(wcs, where: str) -> str:
    ctype = wcs.wcs.ctype[0].upper()
    if ctype.startswith("GLON"):
        return "galactic"
    if ctype.startswith("RA"):
        return "icrs"  # FK5/ICRS differences are far below a pixel
    raise ModelError(f"{where}: cannot tell the frame from CTYPE1 {wcs.wcs.ctype[0]!r}")


def _lin_interp_extrap(x, xp, fp):
    """Piecewise-linear interpolation with linear extrapolation at both ends."""
    x = np.asarray(x, dtype=float)
    if len(xp) == 1:
        return np.full_like(x, fp[0])
    i = np.clip(np.searchsorted(xp, x) - 1, 0, len(xp) - 2)
    t = (x - xp[i]) / (xp[i + 1] - xp[i])
    return fp[i] + t * (fp[i + 1] - fp[i])


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
        default the map centre).

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
        lon_0: Any = None,
        lat_0: Any = None,
        hdu: str | int | None = None,
    ) -> None:
        self.filename = str(filename)
        self.normalize = bool(normalize)
        self._hdu = hdu
        self._read()
        self._init_parameters(dict(lon_0=lon_0, lat_0=lat_0))
        c_lon, c_lat = self.map_center
        if np.isnan(self.parameters["lon_0"].value):
            self.parameters["lon_0"].value = c_lon
        if np.isnan(self.parameters["lat_0"].value):
            self.parameters["lat_0"].value = c_lat

    # -- reading ------------------------------------------------------------
    def _resolve_path(self, where: str) -> Path:
        from ..config import ConfigError, expand_path

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
        import astropy.units as u
        from astropy.io import fits
        from astropy.wcs import WCS

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
        self.frame = _frame_from_wcs(self.wcs, where)
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
        self.solid_angle = _pixel_solid_angle(self.wcs, ny, nx)
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
        import astropy.units as u

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
        from astropy.wcs.utils import proj_plane_pixel_scales

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
            return _lin_interp_extrap(fscale(np.asarray(energy, dtype=float)), lnodes, pnodes)

    def _interp(self, x, y, z) -> np.ndarray:
        """gammapy's rule at template pixel coordinates (z: energy pixel, or None)."""
        from .template import interp_log_multilinear

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
        from .template import interp_log_multilinear

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


SPATIAL_MODELS: dict[str, type[SpatialModel]] = {}
for _cls in (
    PointSpatialModel,
    GaussianSpatialModel,
    DiskSpatialModel,
    GeneralizedGaussianSpatialModel,
    ShellSpatialModel,
    Shell2SpatialModel,
    TemplateSpatialModel,
):
    SPATIAL_MODELS[_cls.tag] = _cls
    SPATIAL_MODELS[_cls.tag_short] = _cls
del _cls


def spatial_model_from_dict(data: Any, component: str | None = None, base_dir: str | os.PathLike | None = None) -> SpatialModel:
    """Spatial model from its YAML mapping; the type may be the long or short name.

    Parameters
    ----------
    data : dict
        The ``spatial:`` mapping of a models YAML component.
    component : str, optional
        The component's name, for error messages.
    base_dir : str or Path, optional
        Resolves relative template file names.

    Returns
    -------
    SpatialModel
        The model; :class:`ModelError` names what is wrong otherwise.
    """
    if not isinstance(data, dict):
        where = f"component {component!r}: " if component else ""
        raise ModelError(f"{where}spatial model must be a mapping, got {data!r}")
    cls = lookup_type(SPATIAL_MODELS, data.get("type"), "spatial", component)
    if cls is TemplateSpatialModel:
        return cls.from_dict(data, component, base_dir)
    return cls.from_dict(data, component)


def oversampling_factor(model_cls_or_model: type[SpatialModel] | SpatialModel, values: dict[str, float] | None,
                        binsz_deg: float) -> int:
    r"""Sub-pixels per axis with which gammapy 2.1 integrates a spatial model over a map.

    The rule is that of ``SpatialModel.integrate_geom`` in gammapy 2.1
    (``gammapy/modeling/models/spatial.py``, automatic choice when no factor
    is passed): with :math:`s` the model's ``evaluation_bin_size_min`` (deg)
    and :math:`p` the map's largest pixel scale (deg),

    * :math:`s` is None (template) -> 1 (no oversampling);
    * :math:`s > 0` -> :math:`\min(\lceil p / s \rceil, 200)`;
    * :math:`s \le 0` -> 200 (``MAX_OVERSAMPLING``).

    The point model is the exception: its :math:`s` is 0 but gammapy's
    ``PointSpatialModel.integrate_geom`` never oversamples (it spreads the flux
    over four pixels), so this returns 1 for it.  gammapy also falls back to 1
    when the model's evaluation region does not overlap the map (the cutout
    fails); that depends on the map, not on ``binsz``, and is left to the
    caller.

    Parameters
    ----------
    model_cls_or_model : SpatialModel subclass or instance
        The model (or its class).
    values : dict or None
        Parameter values (canonical units, deg for angles) by name; None takes
        the instance's current values.  With an instance, the given values
        override its own.
    binsz_deg : float
        Largest pixel scale of the map, deg (gammapy's
        ``max(geom.pixel_scales)``).

    Returns
    -------
    int
        The oversampling factor, 1 to :data:`MAX_OVERSAMPLING`.
    """
    if isinstance(model_cls_or_model, SpatialModel):
        cls = type(model_cls_or_model)
        vals = dict(model_cls_or_model.values)
        vals.update(values or {})
    elif isinstance(model_cls_or_model, type) and issubclass(model_cls_or_model, SpatialModel):
        cls = model_cls_or_model
        vals = {p.name: p.value for p in getattr(cls, "_defaults", ())}  # defaults for missing values
        vals.update(values or {})
    else:
        raise TypeError(f"oversampling_factor: expected a SpatialModel class or instance, got {model_cls_or_model!r}")
    binsz = float(binsz_deg)
    if not np.isfinite(binsz) or binsz <= 0:
        raise ValueError(f"oversampling_factor: binsz_deg must be a positive number, got {binsz_deg!r}")
    if issubclass(cls, PointSpatialModel):
        return 1
    size = cls._bin_size_min(**vals)
    if size is None:
        return 1
    size = float(size)
    if size > 0:
        return int(min(int(np.ceil(binsz / size)), MAX_OVERSAMPLING))
    return MAX_OVERSAMPLING
