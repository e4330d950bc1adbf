"""Analytic spatial shapes: point, Gaussian, disk, generalised Gaussian, shell, shell2.

Their definitions (profiles, norms, elongation) are in :mod:`gcxr.models.spatial`,
which defines the base class :class:`~gcxr.models.spatial.SpatialModel` and
re-exports these classes; import them from there (or from :mod:`gcxr.models`).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from .parameters import Parameter
from .spatial import SpatialModel, position_angle, separation_from

__all__ = [
    "PointSpatialModel",
    "GaussianSpatialModel",
    "DiskSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "ShellSpatialModel",
    "Shell2SpatialModel",
]

_EDGE_K = 2.0 * 1.1630871536766743   # 2 erfinv(0.9)  # 95 % -> 5 % over the edge width


# --------------------------------------------------------------------------
# ellipse helpers (radians in, radians out)
# --------------------------------------------------------------------------

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
# shapes
# --------------------------------------------------------------------------
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

        import scipy.integrate  # deferred: heavy import (scipy)
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
            import scipy.special  # deferred: heavy import (scipy)
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
        import scipy.special  # deferred: heavy import (scipy)

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
