"""Multilinear interpolation on IRF node grids (linear extrapolation beyond the nodes).

Multilinear interpolation is separable, so the IRFs are first interpolated
along the axes evaluated at a handful of fixed values (energies), and then
jointly along the axes evaluated per pixel (offset, FoV position) with a
gather of the 2^k surrounding nodes.  Both helpers extrapolate linearly, as
the reference does; callers zero values outside the axis edges.
:func:`interp_linear_spline` is the same 1-D interpolation rounded as scipy's
degree-1 spline, for the one place where the last bit matters
(:func:`gcxr.safe_mask.edisp_mask_neighbours`).
"""
from __future__ import annotations

import itertools

import numpy as np

__all__ = ["lin_weights", "interp_axis", "interp_scattered", "interp_linear_spline"]


def lin_weights(nodes: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower node index (clipped to [0, n-2]) and the unclipped fractional weight."""
    nodes = np.asarray(nodes, dtype=float)
    x = np.asarray(x, dtype=float)
    if nodes.size == 1:
        return np.zeros(x.shape, np.int64), np.zeros(x.shape)
    i = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, nodes.size - 2)
    with np.errstate(invalid="ignore"):
        w = (x - nodes[i]) / (nodes[i + 1] - nodes[i])
    return i, w


def interp_axis(table: np.ndarray, nodes: np.ndarray, x: np.ndarray, axis: int = 0) -> np.ndarray:
    """Linear interpolation of ``table`` along ``axis`` at the 1-D points ``x``."""
    table = np.moveaxis(np.asarray(table, dtype=float), axis, 0)
    if np.asarray(nodes).size == 1:
        out = np.broadcast_to(table[:1], (np.size(x),) + table.shape[1:])
        return np.moveaxis(np.array(out), 0, axis)
    i, w = lin_weights(nodes, np.atleast_1d(x))
    w = w.reshape((-1,) + (1,) * (table.ndim - 1))
    out = table[i] * (1.0 - w) + table[i + 1] * w
    return np.moveaxis(out, 0, axis)


def interp_scattered(table: np.ndarray, nodes: list[np.ndarray], coords: list[np.ndarray]) -> np.ndarray:
    """Interpolate the trailing ``len(nodes)`` dims of ``table`` at scattered points.

    ``table`` has shape ``(*lead, n_1, ..., n_k)``; ``coords`` are k arrays of a
    common shape ``S``.  Returns ``(*lead, *S)``.  An axis with a single node
    is constant along it (its coordinate is not used, and infinite table values
    stay infinite rather than meeting a zero weight).  A float32 table is read
    as it is (each gathered value is exact in float64), not copied to float64.
    """
    table = np.asarray(table)
    if table.dtype.kind != "f":
        table = table.astype(float)
    k = len(nodes)
    lead = table.shape[: table.ndim - k]
    coords = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
    shape = coords[0].shape
    idx_w = [lin_weights(n, c.ravel()) for n, c in zip(nodes, coords)]
    flat = table.reshape(lead + (-1,))
    strides = [int(np.prod(table.shape[table.ndim - k + d + 1:])) for d in range(k)]
    multi = [d for d in range(k) if np.asarray(nodes[d]).size > 1]       # the axes interpolated along
    out = None
    for bits in itertools.product((0, 1), repeat=len(multi)):
        corner = dict(zip(multi, bits))
        lin = np.zeros(coords[0].size, np.int64)
        wt = np.ones(coords[0].size)
        for d in range(k):
            i, w = idx_w[d]                                              # i = 0 on a single-node axis
            lin += (i + corner.get(d, 0)) * strides[d]
            if d in corner:
                wt = wt * (w if corner[d] else (1.0 - w))
        term = np.take(flat, lin, axis=-1)           # a gather along the last axis (faster than [..., lin])
        if term.dtype == np.float64:
            term *= wt
        else:
            term = term * wt                         # float32 values, float64 products
        if out is None:
            out = term
        else:
            out += term
    return out.reshape(lead + shape)


def interp_linear_spline(xp: np.ndarray, fp: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation (linear extrapolation at the ends) rounded as scipy's
    ``interp1d(kind=1)``, i.e. a degree-1 B-spline evaluated by de Boor's recursion:
    ``w = 1 / (x_hi - x_lo)``, ``y_lo * (w (x_hi - x)) + y_hi * (w (x - x_lo))``, with the
    intervals of :func:`lin_weights`.  The rounding matters to
    :func:`gcxr.safe_mask.edisp_mask_neighbours`; this keeps scipy off the reduction path."""
    x = np.asarray(x, float)
    j, _ = lin_weights(xp, x)
    lo, hi = xp[j], xp[j + 1]
    w = 1.0 / (hi - lo)
    return 0.0 + fp[j] * (w * (hi - x)) + fp[j + 1] * (w * (x - lo))
