"""Derivatives of a source's npred: the chain rule through the cached parts (flux integrals and
images by central differences, the PSF folding exactly, by its adjoint), the second-order
terms of the statistic's Hessian, and the npred cubes' derivatives.

The bodies of :class:`~gcxr.npred.SourceEvaluator`'s ``backprop``, ``second_order``,
``dnpred``, ``_pixel_jacobian``, ``_shape_image`` and ``_shape_derivative``, which delegate here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .folding import support, union_box
from .kernels import taps

if TYPE_CHECKING:
    from .evaluator import SourceEvaluator

__all__ = ["ANGULAR", "step", "pixel_jacobian", "backprop", "shape_image", "shape_derivative", "second_order",
           "dnpred"]

ANGULAR = {"lon_0", "lat_0", "sigma", "r_0", "radius", "width", "phi"}


def step(name: str, values: dict, steps: dict) -> float:
    """Central-difference step of the cheap inner derivatives (flux integrals, images, pixel
    positions): the given one, else 1e-5 deg for angles and ``1e-6 * max(abs(v), 1e-3)`` otherwise.

    Parameters
    ----------
    name : str
        The parameter.
    values : dict
        Parameter values by name.
    steps : dict
        Steps given by name (they win).

    Returns
    -------
    float
        The step.
    """
    return steps.get(name) or (1e-5 if name in ANGULAR else 1e-6 * max(abs(values[name]), 1e-3))


def pixel_jacobian(ev: SourceEvaluator, spatial_values: dict, name: str, h: float) -> tuple[float, float]:
    """``(dx0/dv, dy0/dv)``: how the point's pixel position moves with one spatial parameter.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    name : str
        The parameter.
    h : float
        The central-difference step.

    Returns
    -------
    tuple of float
        ``(dx0/dv, dy0/dv)``, pixels per unit of the parameter.
    """
    up, down = dict(spatial_values), dict(spatial_values)
    up[name] += h
    down[name] -= h
    (xu, yu), (xd, yd) = ev._point_pixel(up), ev._point_pixel(down)
    return (xu - xd) / (2 * h), (yu - yd) / (2 * h)


def backprop(ev: SourceEvaluator, w: np.ndarray, spectral_values: dict, spatial_values: dict,
             spectral_free=(), spatial_free=(), steps: dict | None = None,
             reco: np.ndarray | None = None) -> dict:
    """The body of :meth:`gcxr.npred.SourceEvaluator.backprop` (which see).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    w, spectral_values, spatial_values, spectral_free, spatial_free, steps, reco
        As in :meth:`~gcxr.npred.SourceEvaluator.backprop`.

    Returns
    -------
    dict
        ``{("spectral" | "spatial", name): dstat/dvalue}``.
    """
    steps = steps or {}
    out = {}
    nt = ev.kernel.shape[0]
    C, planes = ev._folded(spatial_values)
    D = ev.edisp if reco is None else ev.edisp[:, reco]
    if not spatial_free and planes is not None and np.size(C[planes]) > 0:   # only planes with flux matter
        D, C = D[planes], C[planes]
    else:
        planes = None
    n = C.shape[0]
    u = (D @ w.reshape(w.shape[0], -1)).reshape((n,) + C.shape[1:])               # dstat/d(F_t C_t)
    if spectral_free:
        g_f = np.zeros(nt)
        g_f[planes if (not spatial_free and planes is not None) else slice(None)] = np.einsum(
            "tp,tp->t", u.reshape(n, -1), C.reshape(n, -1))                         # dstat/dF_t
        for name in spectral_free:
            dF = ev.flux_derivative(spectral_values, name, steps)
            out[("spectral", name)] = float(g_f @ dF)
    if spatial_free:
        F = ev.flux(spectral_values)
        v = u * ev.exposure_cut * F[:, None, None]                                 # dstat/d(X (*) K_t)
        if ev.is_point:
            x0, y0 = ev._point_pixel(spatial_values)
            gx = gy = 0.0
            for _, dwx, dwy, cs, ks in ev._windows(x0, y0, derivative=True):
                if dwx == 0 and dwy == 0:
                    continue
                r = float(np.einsum("tij,tij->", v[(slice(None),) + cs], ev.kernel[(slice(None),) + ks]))
                gx += dwx * r
                gy += dwy * r
            for name in spatial_free:
                dxdv, dydv = ev._pixel_jacobian(spatial_values, name, step(name, spatial_values, steps))
                out[("spatial", name)] = gx * dxdv + gy * dydv
        else:
            tpl = ev.spatial_template
            dXs = {name: ev._image_derivative(spatial_values, name, step(name, spatial_values, steps))
                   for name in spatial_free}
            per_plane = tpl is not None and tpl.is_energy_dependent
            box = None if per_plane else union_box([support(dX) for dX in dXs.values()])
            if box is None and not per_plane:
                return out | {("spatial", name): 0.0 for name in spatial_free}
            r = ev._correlate(v, per_plane=per_plane, box=box)                     # dstat/dX
            for name, dX in dXs.items():
                if box is None:
                    out[("spatial", name)] = float(np.sum(r * dX))
                else:
                    y0, y1, x0, x1 = box
                    out[("spatial", name)] = float(np.sum(r[y0:y1, x0:x1] * dX[y0:y1, x0:x1]))
    return out


def shape_image(ev: SourceEvaluator, spatial_values: dict) -> np.ndarray:
    """The spatial part that the PSF folds: the image for an extended source, for a point source
    the tap weights that place the kernel (:func:`gcxr.npred.folding.point_image`) as an image,
    (ny, nx).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.

    Returns
    -------
    numpy.ndarray
        The image.
    """
    if not ev.is_point:
        return ev.image(spatial_values)
    ny, nx = ev.shape
    out = np.zeros((ny, nx))
    x0, y0 = ev._point_pixel(spatial_values)
    for xi, wx in taps(x0, ev.point_weights):
        for yi, wy in taps(y0, ev.point_weights):
            if 0 <= yi < ny and 0 <= xi < nx:
                out[yi, xi] += wx * wy
    return out


def shape_derivative(ev: SourceEvaluator, spatial_values: dict, name: str, h: float) -> np.ndarray:
    """d :func:`shape_image` / d value (central difference, step ``h``; an extended source's
    is :func:`gcxr.npred.images.image_derivative`, with its rule for sharp edges).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    name : str
        The parameter.
    h : float
        The central-difference step.

    Returns
    -------
    numpy.ndarray
        The derivative image.
    """
    if not ev.is_point:
        return ev._image_derivative(spatial_values, name, h)
    up, down = dict(spatial_values), dict(spatial_values)
    up[name] += h
    down[name] -= h
    return (ev._shape_image(up) - ev._shape_image(down)) / (2.0 * h)


def second_order(ev: SourceEvaluator, w: np.ndarray, spectral_values: dict, spatial_values: dict, spectral_free=(),
                 spatial_free=(), steps: dict | None = None, outer: dict | None = None,
                 reco: np.ndarray | None = None) -> dict:
    """The body of :meth:`gcxr.npred.SourceEvaluator.second_order` (which see).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    w, spectral_values, spatial_values, spectral_free, spatial_free, steps, outer, reco
        As in :meth:`~gcxr.npred.SourceEvaluator.second_order`.

    Returns
    -------
    dict
        ``{(("spectral" | "spatial", name), (..., name)): value}``, both orders.
    """
    steps, outer = steps or {}, outer or {}
    spec, spat = list(spectral_free), list(spatial_free)
    D = ev.edisp if reco is None else ev.edisp[:, reco]
    nt = D.shape[0]
    ny, nx = ev.shape
    u = (D @ w.reshape(w.shape[0], -1)).reshape(nt, ny, nx)                 # dstat/d(F_t C_t)

    def h_out(name, values):
        return outer.get(name) or 100.0 * step(name, values, steps)

    def shifted(values, name, dv):
        out = dict(values)
        out[name] += dv
        return out

    def dF(values, name):
        return ev.flux_derivative(values, name, steps)

    if spat:
        P = ev._correlate(u * ev.exposure_cut, per_plane=True)             # (nt, ny, nx)

        def on_planes(img):                                                     # <P_t, X> per t
            if img.ndim == 3:
                return np.einsum("tij,tij->t", P, img)
            return np.einsum("tij,ij->t", P, img)
        base = on_planes(ev._shape_image(spatial_values))
    else:
        C, _ = ev._folded(spatial_values)
        base = np.einsum("tp,tp->t", u.reshape(nt, -1), C.reshape(nt, -1))
    res: dict = {}
    for j, b in enumerate(spec):                                               # spectral pairs
        hb = h_out(b, spectral_values)
        for a in spec[:j + 1]:
            d2 = (dF(shifted(spectral_values, b, hb), a) - dF(shifted(spectral_values, b, -hb), a)) / (2 * hb)
            res[(("spectral", a), ("spectral", b))] = float(base @ d2)
    if spat:
        F = ev.flux(spectral_values)
        inner = {n: step(n, spatial_values, steps) for n in spat}
        dX = {n: on_planes(ev._shape_derivative(spatial_values, n, inner[n])) for n in spat}
        for a in spec:                                                         # mixed pairs
            fa = dF(spectral_values, a)
            for n in spat:
                res[(("spectral", a), ("spatial", n))] = float(fa @ dX[n])
        for j, b in enumerate(spat):                                           # spatial pairs
            hb = h_out(b, spatial_values)
            up, down = shifted(spatial_values, b, hb), shifted(spatial_values, b, -hb)
            for a in spat[:j + 1]:
                d2 = (ev._shape_derivative(up, a, inner[a]) - ev._shape_derivative(down, a, inner[a])) / (2 * hb)
                res[(("spatial", a), ("spatial", b))] = float(F @ on_planes(d2))
    return res | {(k2, k1): v for (k1, k2), v in res.items()}


def dnpred(ev: SourceEvaluator, spectral_values: dict, spatial_values: dict, spectral_free=(), spatial_free=(),
           steps: dict | None = None, reco: np.ndarray | None = None) -> dict:
    """The body of :meth:`gcxr.npred.SourceEvaluator.dnpred` (which see).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spectral_values, spatial_values, spectral_free, spatial_free, steps, reco
        As in :meth:`~gcxr.npred.SourceEvaluator.dnpred`.

    Returns
    -------
    dict
        ``{("spectral" | "spatial", name): dnpred/dvalue}``.
    """
    steps = steps or {}
    out = {}
    C, _ = ev._folded(spatial_values)
    nt, ny, nx = C.shape
    D = ev.edisp if reco is None else ev.edisp[:, reco]
    for name in spectral_free:
        dF = ev.flux_derivative(spectral_values, name, steps)
        out[("spectral", name)] = ((D * dF[:, None]).T @ C.reshape(nt, -1)).reshape(-1, ny, nx)
    if spatial_free:
        DF = D * ev.flux(spectral_values)[:, None]
        for name in spatial_free:
            h = step(name, spatial_values, steps)
            if ev.is_point:
                dxdv, dydv = ev._pixel_jacobian(spatial_values, name, h)
                dc = np.zeros((nt, ny, nx))
                for _, dwx, dwy, cs, ks in ev._windows(*ev._point_pixel(spatial_values), derivative=True):
                    wgt = dwx * dxdv + dwy * dydv
                    if wgt != 0:
                        dc[(slice(None),) + cs] += wgt * ev.kernel[(slice(None),) + ks]
                dc *= ev.exposure_cut
            else:
                dc = ev._convolve(ev._image_derivative(spatial_values, name, h)) * ev.exposure_cut
            out[("spatial", name)] = (DF.T @ dc.reshape(nt, -1)).reshape(-1, ny, nx)
    return out
