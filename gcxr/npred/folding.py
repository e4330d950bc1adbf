"""Folding with the PSF on a source's cutout: FFT convolution and its adjoint, point sources as
shifted kernels, and the support boxes that size the FFTs.

The bodies of :class:`~gcxr.npred.SourceEvaluator`'s ``_fft``, ``_convolve``, ``_correlate``,
``_windows`` and ``_point``, which delegate here.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from .kernels import taps

if TYPE_CHECKING:
    from .evaluator import SourceEvaluator

__all__ = ["SUPPORT_FLOOR", "support", "union_box", "kernel_fft", "convolve", "correlate", "windows", "point_image"]

SUPPORT_FLOOR = 1e-15     # image pixels below this fraction of the peak are outside the support


def support(img: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, y1, x0, x1)``: the smallest box holding every pixel of a 2D image whose magnitude
    exceeds ``SUPPORT_FLOOR`` times the image's largest (None for an empty image).  A Gaussian's
    tails far outside its evaluation radius (1e-45 of the peak at 11 sigma) are left out; what is
    left out is below 1e-15 of npred's largest bin, far below any parity tolerance.

    Parameters
    ----------
    img : numpy.ndarray
        A 2D image.

    Returns
    -------
    tuple of int or None
        ``(y0, y1, x0, x1)``.
    """
    a = np.abs(img)
    peak = float(a.max()) if a.size else 0.0
    if not peak > 0:
        return None
    keep = a > SUPPORT_FLOOR * peak
    rows = np.flatnonzero(keep.any(axis=1))
    cols = np.flatnonzero(keep.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def union_box(boxes) -> tuple[int, int, int, int] | None:
    """The smallest box holding every box of ``boxes`` (None where none is given).

    Parameters
    ----------
    boxes : iterable of tuple of int or None
        ``(y0, y1, x0, x1)`` boxes, as :func:`support` gives them (None: empty).

    Returns
    -------
    tuple of int or None
        ``(y0, y1, x0, x1)``.
    """
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    return (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))


def _fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (sizes that FFTs handle fastest)."""
    best = 1 << max(int(n - 1).bit_length(), 0)
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < n:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def kernel_fft(ev: SourceEvaluator, box: tuple[int, int] | None = None):
    """(padded shape, rFFT of the kernels) for a linear convolution of an image of ``box``
    (rows, columns; default the whole cutout) with the kernels, computed once per padded shape.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator (its kernels and its cache of their transforms).
    box : tuple of int, optional
        (rows, columns) of the image to convolve.

    Returns
    -------
    tuple
        ``(padded shape, rFFT of the kernels)``.
    """
    ny, nx = box or ev.shape
    nk = ev.kernel.shape[-1]
    s = (_fast_len(ny + nk - 1), _fast_len(nx + nk - 1))
    cache = ev._aux.setdefault("kf", OrderedDict())
    kf = cache.get(s)
    if kf is None:
        kf = cache[s] = np.fft.rfft2(ev.kernel, s=s)
        while len(cache) > 4:
            cache.popitem(last=False)
    return s, kf


def convolve(ev: SourceEvaluator, img: np.ndarray) -> np.ndarray:
    """``img (*) K_t`` for every t, cropped to the cutout ("same" alignment), (n_true, ny, nx).

    A 2D image is convolved over its support only (the box of pixels above ``SUPPORT_FLOOR``
    of its peak, see :func:`support`): the FFTs are sized by the model's extent plus the
    kernel, not by the cutout (which must also hold the PSF's spread).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator (its kernels and cutout).
    img : numpy.ndarray
        An image on the cutout, (ny, nx), or one per true-energy plane, (n_true, ny, nx).

    Returns
    -------
    numpy.ndarray
        The convolved planes, (n_true, ny, nx).
    """
    ny, nx = ev.shape
    h = ev.kernel.shape[-1] // 2
    if img.ndim == 3:               # one plane per true energy: empty planes stay empty
        s, kf = ev._fft()
        out = np.zeros((kf.shape[0], ny, nx))
        live = np.flatnonzero(np.any(img.reshape(img.shape[0], -1) != 0, axis=1))
        if live.size:
            full = np.fft.irfft2(np.fft.rfft2(img[live], s=s) * kf[live], s=s)
            out[live] = full[:, h:h + ny, h:h + nx]
        return out
    out = np.zeros((ev.kernel.shape[0], ny, nx))
    box = support(img)
    if box is None:
        return out
    y0, y1, x0, x1 = box
    s, kf = ev._fft((y1 - y0, x1 - x0))
    full = np.fft.irfft2(np.fft.rfft2(img[y0:y1, x0:x1], s=s) * kf, s=s)
    # full[i] lands on cutout pixel y0 - h + i (and likewise in x), i < box + kernel - 1
    nk = ev.kernel.shape[-1]
    ya, yb = max(y0 - h, 0), min(y1 - 1 + (nk - 1 - h), ny - 1) + 1
    xa, xb = max(x0 - h, 0), min(x1 - 1 + (nk - 1 - h), nx - 1) + 1
    out[:, ya:yb, xa:xb] = full[:, ya - (y0 - h):yb - (y0 - h), xa - (x0 - h):xb - (x0 - h)]
    return out


def correlate(ev: SourceEvaluator, v: np.ndarray, per_plane: bool = False, box=None) -> np.ndarray:
    """Adjoint of :func:`convolve`: ``sum_p v_t[p] dconv_t[p]/dimg[q]``, summed over t into one
    (ny, nx) image, or one per plane (n_true, ny, nx) for an energy-dependent image.  With
    ``box = (y0, y1, x0, x1)`` only the pixels of the box are computed (the rest are 0): the
    FFTs then cover the box plus the kernel.

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator (its kernels and cutout).
    v : numpy.ndarray
        Weights on the cutout, (n_true, ny, nx).
    per_plane : bool
        One output image per true-energy plane instead of their sum.
    box : tuple of int, optional
        ``(y0, y1, x0, x1)``: the output pixels wanted.

    Returns
    -------
    numpy.ndarray
        (ny, nx), or (n_true, ny, nx) with ``per_plane``.
    """
    ny, nx = ev.shape
    nk = ev.kernel.shape[-1]
    h = nk // 2
    if box is None or per_plane:
        s, kf = ev._fft()
        pad = np.zeros((v.shape[0],) + s)
        pad[:, h:h + ny, h:h + nx] = v
        spec = np.fft.rfft2(pad) * np.conj(kf)
        if not per_plane:
            spec = spec.sum(axis=0)
        return np.fft.irfft2(spec, s=s)[..., :ny, :nx]
    y0, y1, x0, x1 = box
    s, kf = ev._fft((y1 - y0, x1 - x0))
    # the output at box pixel q reads v on [y0 - h + q, y0 - h + q + nk): copy that window of v
    # (zero outside the cutout) to the start of the padded array
    ly, lx = (y1 - y0) + nk - 1, (x1 - x0) + nk - 1
    pad = np.zeros((v.shape[0],) + s)
    ya, yb = max(y0 - h, 0), min(y0 - h + ly, ny)
    xa, xb = max(x0 - h, 0), min(x0 - h + lx, nx)
    pad[:, ya - (y0 - h):yb - (y0 - h), xa - (x0 - h):xb - (x0 - h)] = v[:, ya:yb, xa:xb]
    spec = (np.fft.rfft2(pad) * np.conj(kf)).sum(axis=0)
    out = np.zeros((ny, nx))
    out[y0:y1, x0:x1] = np.fft.irfft2(spec, s=s)[:y1 - y0, :x1 - x0]
    return out


def windows(ev: SourceEvaluator, x0: float, y0: float, derivative: bool = False):
    """(weight, d weight/dx, d weight/dy, cutout slices, kernel slices) of each tap around (x0, y0).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator (its kernels, cutout and ``point_weights``).
    x0, y0 : float
        The point's pixel coordinates on the cutout.
    derivative : bool
        Also yield the taps whose weight is 0 but whose derivative is not.

    Yields
    ------
    tuple
        ``(weight, d weight/dx, d weight/dy, cutout slices, kernel slices)``.
    """
    ny, nx = ev.shape
    nk = ev.kernel.shape[-1]
    h = nk // 2
    for (xi, wx, dwx) in taps(x0, ev.point_weights, True):
        for (yi, wy, dwy) in taps(y0, ev.point_weights, True):
            if wx * wy == 0 and not (derivative and (dwx * wy != 0 or wx * dwy != 0)):
                continue
            y_a, x_a = yi - h, xi - h
            cy0, cy1 = max(y_a, 0), min(y_a + nk, ny)
            cx0, cx1 = max(x_a, 0), min(x_a + nk, nx)
            if cy1 <= cy0 or cx1 <= cx0:
                continue
            yield (wx * wy, dwx * wy, wx * dwy, (slice(cy0, cy1), slice(cx0, cx1)),
                   (slice(cy0 - y_a, cy1 - y_a), slice(cx0 - x_a, cx1 - x_a)))


def point_image(ev: SourceEvaluator, x0, y0):
    """A point source: shifted copies of the kernel at the pixels around (x0, y0), weighted.

    ``point_weights="tent"`` (default): bilinear weights on the 2 x 2 pixels, the reference's
    convention (parity of the statistic to 1e-4). npred is then only piecewise linear in the
    position: fitted positions lock towards pixel centres by up to ~0.1 px and HESSE
    underestimates position errors by ~1.5x (docs/parity.md, "Point-source rendering").
    ``"cubic"``: cubic B-spline weights on the 4 x 4 nearest pixels; npred is twice
    continuously differentiable in the position and position pulls are unit-normal
    (tests/test_closure.py); the rendering adds a 1/3 px^2 variance to the PSF.
    ``"keys"``: Catmull-Rom weights (C1, no added variance).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator (its kernels, cutout and ``point_weights``).
    x0, y0 : float
        The point's pixel coordinates on the cutout.

    Returns
    -------
    numpy.ndarray
        The kernels placed at the point, (n_true, ny, nx).
    """
    out = np.zeros((ev.kernel.shape[0],) + ev.shape)
    for w, _, _, cs, ks in ev._windows(x0, y0):
        out[(slice(None),) + cs] += w * ev.kernel[(slice(None),) + ks]
    return out
