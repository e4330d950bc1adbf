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
from typing import Any, ClassVar, Literal

import numpy as np

from ..coords import angular_separation, position_angle
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


def pixel_solid_angle(wcs, ny: int, nx: int) -> np.ndarray:
    """Solid angle (sr) of each pixel of a celestial WCS, (ny, nx), by gammapy's rule.

    gammapy 2.1 (``WcsGeom.solid_angle``) adds two planar triangles spanned by
    the pixel's corner directions, with great-circle side lengths and the
    corner angles from position angles; for CAR pixels of 0.125 deg this is
    within 1e-6 of the exact area, and it is what normalises templates.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The celestial WCS of the map.
    ny, nx : int
        The map's shape.

    Returns
    -------
    numpy.ndarray
        Solid angles (sr), shape ``(ny, nx)``.
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


# --------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------
def frame_from_wcs(wcs, where: str) -> str:
    """The model frame (``"galactic"`` or ``"icrs"``) of a celestial WCS, from its CTYPE1.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The map's WCS.
    where : str
        Prefix of the error message.

    Returns
    -------
    str
        The frame; :class:`ModelError` when CTYPE1 is neither GLON nor RA.
    """
    ctype = wcs.wcs.ctype[0].upper()
    if ctype.startswith("GLON"):
        return "galactic"
    if ctype.startswith("RA"):
        return "icrs"  # FK5/ICRS differences are far below a pixel
    raise ModelError(f"{where}: cannot tell the frame from CTYPE1 {wcs.wcs.ctype[0]!r}")


def check_frame(frame: Any, where: str) -> str:
    """``frame`` as a str when it is one of the supported frames (``"icrs"``, ``"galactic"``).

    Parameters
    ----------
    frame : object
        The frame given.
    where : str
        Prefix of the error message.

    Returns
    -------
    str
        The frame; :class:`ModelError` names the valid ones otherwise.
    """
    if frame not in FRAMES:
        raise ModelError(f"{where}: frame {frame!r} is not supported; valid frames: {', '.join(FRAMES)}")
    return str(frame)


# --------------------------------------------------------------------------
# base class
# --------------------------------------------------------------------------
class SpatialModel(ParametricModel):
    """Base class of spatial models (``lon_0``, ``lat_0`` in deg, a frame).

    Parameters
    ----------
    frame : {'icrs', 'galactic'}
        The frame of ``lon_0``/``lat_0`` (keyword-only, like the parameters).
    **parameters
        The model's parameters by name (see :class:`~gcxr.models._base.ParametricModel`).
    """

    kind: ClassVar[str] = "spatial"
    frame: str

    def __init__(self, *, frame: Frame = "icrs", **parameters: Any) -> None:
        self.frame = check_frame(frame, self.tag)
        super().__init__(**parameters)

    @property
    def position(self) -> tuple[float, float]:
        """``(lon_0, lat_0)`` in deg, in :attr:`frame`."""
        return self.parameters["lon_0"].value, self.parameters["lat_0"].value

    @property
    def skycoord(self):
        """The centre as an `astropy.coordinates.SkyCoord`."""
        import astropy.units as u  # deferred: heavy import (astropy)
        from astropy.coordinates import SkyCoord  # deferred: heavy import (astropy)

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
        model.frame = check_frame(data.get("frame", "icrs"), where)
        model.parameters = cls._parameters_from_dict(data.get("parameters"), component)
        return model


# --------------------------------------------------------------------------
# the models and their registry: the shapes and the template subclass
# SpatialModel, so their modules are imported once it is defined
# --------------------------------------------------------------------------
from .spatial_shapes import (  # noqa: E402
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
)
from .spatial_template import TemplateSpatialModel  # noqa: E402


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
