"""Numerical helpers shared by the IRFs, the models and the simulation, with no gcxr imports.

:func:`trapz_loglog` integrates tabulated values as power-law segments (gammapy's rule for
spectra and IRF tables); the IRF background (:mod:`gcxr.irf`), the spectral models
(:mod:`gcxr.models.spectral`) and the simulation all use this one implementation.
"""
from __future__ import annotations

import numpy as np

__all__ = ["trapz_loglog"]

_TINY = np.finfo(np.float64).tiny


def trapz_loglog(y, x, axis: int = -1) -> np.ndarray:
    r"""Integrals of the power-law segments through consecutive samples along ``axis``.

    For each pair of neighbours the segment through ``(x0, y0)`` and ``(x1, y1)`` has the local
    index ``g = -ln(y0/y1) / ln(x0/x1)`` (ratios floored at the float64 ``tiny`` before the
    log; a NaN index becomes +inf, i.e. a zero integral) and is integrated analytically,
    :math:`y_0 x_0 [(x_1/x_0)^{1-g} - 1] / (1-g)`, or :math:`y_0 x_0 \ln(x_1/x_0)` where
    ``numpy.isclose(1 - g, 0)``.  Non-finite integrals (a zero sample next to a non-zero one,
    NaN samples) are returned as they come; sum the result along ``axis`` for the total.

    Parameters
    ----------
    y : array_like
        The samples.
    x : array_like
        Positive, increasing abscissae along ``axis``: either the shape of ``y`` (or one that
        broadcasts to it), or 1-D with one value per sample along ``axis``.
    axis : int
        The axis of ``y`` to integrate along.

    Returns
    -------
    numpy.ndarray
        Per-segment integrals: the shape of ``y`` with one fewer along ``axis``.

    Examples
    --------
    >>> e = np.array([1.0, 10.0, 100.0])
    >>> np.round(trapz_loglog(e ** -2.0, e), 12).tolist()
    [0.9, 0.09]
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    y = np.moveaxis(y, axis, -1)
    if x.ndim == y.ndim:
        x = np.moveaxis(x, axis, -1)
    # else: x is 1-D and lies along the (now last) axis of y
    x0, x1 = x[..., :-1], x[..., 1:]
    y0, y1 = y[..., :-1], y[..., 1:]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = -np.log(np.clip(y0 / y1, _TINY, None)) / np.log(np.clip(x0 / x1, _TINY, None))
        g = np.where(np.isnan(g), np.inf, g)
        g1 = 1.0 - g
        general = y0 * x0 / g1 * ((x1 / x0) ** g1 - 1.0)
        logform = y0 * x0 * np.log(x1 / x0)
    return np.moveaxis(np.where(np.isclose(g1, 0.0), logform, general), -1, axis)
