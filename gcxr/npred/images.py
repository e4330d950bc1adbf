"""The spatial part of an extended source on its cutout: surface brightness times solid angle at
the pixel centres, oversampled where the model is small, and its central differences.

The bodies of :class:`~gcxr.npred.SourceEvaluator`'s ``_oversampled_image``, ``_fine_grid``,
``_image_at``, ``_model_lonlat``, ``_grid``, ``_centre`` and ``_image_derivative``, which
delegate here.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from ..coords import transform_lonlat
from .derivatives import ANGULAR

if TYPE_CHECKING:
    from ..geom import SkyGeom
    from .evaluator import SourceEvaluator

__all__ = ["MAX_SUBPIXELS", "oversampled_image", "fine_grid", "image_at", "model_lonlat", "cutout_grid", "centre",
           "image_derivative"]

MAX_SUBPIXELS = 2 ** 22   # sub-pixels of one oversampled evaluation (32 MB a float64 array)


def _frozen(a) -> np.ndarray:
    """A read-only array owning its data (a copy of ``a``): the pixel grids, whose trigonometry
    the spatial models memoise (:func:`gcxr.models.spatial.separation_from`)."""
    out = np.array(a, dtype=float, copy=True, order="C")
    out.setflags(write=False)
    return out


def oversampled_image(ev: SourceEvaluator, spatial_values: dict, f: int) -> np.ndarray:
    """The image (:meth:`~gcxr.npred.SourceEvaluator.image`) with ``f x f`` sub-pixels inside the
    model's evaluation radius (plus a pixel), plain pixel centres outside (where the model is
    negligible by definition).  The box is capped at ``MAX_SUBPIXELS`` sub-pixels by lowering ``f``
    (a source far smaller than a pixel in a large cutout), so memory stays bounded whatever the
    parameters.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    f : int
        The oversampling factor.

    Returns
    -------
    numpy.ndarray
        The image, (ny, nx).
    """
    img = ev._image_at(spatial_values, *ev._grid())
    sub = ev._aux["sub"]
    lon0, lat0 = ev._centre(spatial_values)
    x0, y0 = sub.world_to_pix(lon0, lat0)
    r = ev.spatial_cls.evaluation_radius_at(spatial_values)
    rx = r / (abs(sub.dlon) * np.cos(np.deg2rad(min(abs(lat0) + r, 89.0)))) + 1.0
    ry = r / abs(sub.dlat) + 1.0
    ny, nx = ev.shape
    ya, yb = max(int(np.floor(y0 - ry)), 0), min(int(np.ceil(y0 + ry)) + 1, ny)
    xa, xb = max(int(np.floor(x0 - rx)), 0), min(int(np.ceil(x0 + rx)) + 1, nx)
    if yb <= ya or xb <= xa:
        return img
    f = int(min(f, max(np.sqrt(MAX_SUBPIXELS / ((yb - ya) * (xb - xa))), 1.0)))
    if f <= 1:
        return img
    fine = ev._image_at(spatial_values, *ev._fine_grid(ya, yb, xa, xb, f))
    img[ya:yb, xa:xb] = fine.reshape(yb - ya, f, xb - xa, f).sum(axis=(1, 3))
    return img


def fine_grid(ev: SourceEvaluator, ya: int, yb: int, xa: int, xb: int, f: int) -> tuple:
    """(lon, lat, solid angle) of the ``f x f`` sub-pixels of the cutout's box ``[ya:yb, xa:xb]``
    (read-only), kept for the last few boxes: a fit moves a small source by less than a pixel
    between most calls, so the box and its sub-pixels repeat.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    ya, yb, xa, xb : int
        The box on the cutout.
    f : int
        The oversampling factor.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat, solid angle)`` in the model's frame.
    """
    key = (ya, yb, xa, xb, f)
    cache = ev._aux.setdefault("fine", OrderedDict())
    hit = cache.get(key)
    if hit is None:
        box = ev._aux["sub"].slice(slice(ya, yb), slice(xa, xb)).subdivide(f)
        hit = cache[key] = tuple(_frozen(a) for a in (*ev._model_lonlat(box), box.solid_angle()))
        while len(cache) > 4:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return hit


def image_at(ev: SourceEvaluator, spatial_values: dict, lon, lat, omega) -> np.ndarray:
    """Surface brightness x solid angle at the given pixel centres (model frame).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    lon, lat : numpy.ndarray
        Pixel centres in the model's frame, deg.
    omega : numpy.ndarray
        Their solid angles, sr.

    Returns
    -------
    numpy.ndarray
        The image (one plane per true-energy bin for an energy-dependent template).
    """
    tpl = ev.spatial_template
    if tpl is not None and tpl.is_energy_dependent:
        img = tpl.evaluate_planes(lon, lat, ev.energy_true.centers, **spatial_values)
    elif tpl is not None:
        img = tpl._evaluate(lon, lat, None, **spatial_values)
    else:
        img = ev.spatial_cls._evaluate(lon, lat, **spatial_values)
    return np.asarray(img, float) * omega


def model_lonlat(ev: SourceEvaluator, grid: SkyGeom):
    """Pixel-centre (lon, lat) of ``grid`` in the model's frame.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    grid : SkyGeom
        A grid in the dataset's frame.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat)``, deg.
    """
    lon, lat = grid.grid_lonlat()
    if ev.frame_model != ev.geom.frame:
        lon, lat = transform_lonlat(lon, lat, ev.geom.frame, ev.frame_model)
    return lon, lat


def cutout_grid(ev: SourceEvaluator):
    """(lon, lat) in the model frame and solid angles of the cutout's pixels, computed once.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.

    Returns
    -------
    tuple of numpy.ndarray
        ``(lon, lat, solid angle)``, read-only.
    """
    if "grid" not in ev._aux:
        sub = ev._aux["sub"]
        ev._aux["grid"] = tuple(_frozen(a) for a in (*ev._model_lonlat(sub), sub.solid_angle()))
    return ev._aux["grid"]


def centre(ev: SourceEvaluator, spatial_values: dict) -> tuple[float, float]:
    """The model's ``(lon_0, lat_0)`` at these values, in the dataset's frame.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.

    Returns
    -------
    tuple of float
        ``(lon, lat)``, deg.
    """
    lon0, lat0 = spatial_values["lon_0"], spatial_values["lat_0"]
    if ev.frame_model != ev.geom.frame:
        l, b = transform_lonlat(np.array([lon0]), np.array([lat0]), ev.frame_model, ev.geom.frame)
        lon0, lat0 = float(l[0]), float(b[0])
    return lon0, lat0


def image_derivative(ev: SourceEvaluator, spatial_values: dict, name: str, h: float) -> np.ndarray:
    """Central difference of the image (:meth:`~gcxr.npred.SourceEvaluator.image`) in one
    parameter (step ``h``), cached with the folded parts' key: the gradient and the curvature at
    one point share it.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    name : str
        The parameter.
    h : float
        The step (widened to half a pixel for an edge narrower than a pixel).

    Returns
    -------
    numpy.ndarray
        d image / d value.
    """
    if name in ANGULAR and ev.spatial_cls is not None and ev.spatial_cls.has_sharp_edges(
            spatial_values, ev.geom.binsz):
        # the image at pixel centres is a staircase in this parameter (an edge narrower than a
        # pixel): difference over half a pixel, the slope of the pixel-averaged statistic that
        # MIGRAD should follow, not the slope of one stair
        h = max(h, 0.5 * ev.geom.binsz)
    key = (tuple(sorted((k, float(v)) for k, v in spatial_values.items())), name, float(h))
    cache = ev._aux.setdefault("dimage", OrderedDict())
    hit = cache.get(key)
    if hit is not None:
        return hit
    up, down = dict(spatial_values), dict(spatial_values)
    up[name] += h
    down[name] -= h
    d = (ev.image(up) - ev.image(down)) / (2.0 * h)
    cache[key] = d
    while len(cache) > 4 * max(len(spatial_values), 1):
        cache.popitem(last=False)
    return d
