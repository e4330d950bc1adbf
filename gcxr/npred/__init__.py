"""Forward folding: flux x exposure -> PSF -> energy dispersion, plus background x norm.

For a source s on a dataset:

    npred_true(t, p) = F_t * [S (*) K_t](p) * Exposure(t, p) * 1e4     (F_t: flux in true-energy bin t)
    npred_sig(r, p)  = sum_t npred_true(t, p) * D[t, r]                (D: EDISP matrix)

evaluated on a cutout around the source.  S is the source's spatial
distribution on the pixels (bilinear "tent" weights for a point source; the
surface brightness times the pixel solid angle for extended ones), K_t the PSF
kernel at the source position.  The PSF kernel, the EDISP matrix and the
cutout are computed once, at the position the source has when the evaluator is
built (see :mod:`gcxr.fit` for when they are rebuilt), so that a likelihood
call is a pure function of the parameters.  Background:
``npred_bkg = B * norm * (E_c / E_ref)^-tilt`` with E_c the reco-bin centre.

The package, by job: :mod:`~gcxr.npred.kernels` (PSF kernel, containment, cutout sizes,
point-source tap weights, background factor), :mod:`~gcxr.npred.evaluator`
(:class:`SourceEvaluator`, :class:`OutsideDataset`),
:mod:`~gcxr.npred.folding` (FFT convolution and its adjoint, support boxes),
:mod:`~gcxr.npred.images` (extended sources' images on the cutout),
:mod:`~gcxr.npred.derivatives` (backprop, second order, npred derivatives),
:mod:`~gcxr.npred.sparse` (:class:`SparseSelection`: the bins a statistic reads) and
:mod:`~gcxr.npred.cubes` (:func:`npred_cubes`).
"""
from __future__ import annotations

from .cubes import npred_cubes
from .evaluator import OutsideDataset, SourceEvaluator
from .folding import SUPPORT_FLOOR  # noqa: F401  (re-exported, as before the split)
from .images import MAX_SUBPIXELS  # noqa: F401
from .kernels import (MARGIN_DEG, POINT_WEIGHTS, RAD_SR_TO_DEG2,  # noqa: F401
                      containment_radius, oddup, psf_kernel, psf_profile_at)
from .sparse import SparseSelection

__all__ = ["SourceEvaluator", "SparseSelection", "OutsideDataset", "psf_kernel", "psf_profile_at", "containment_radius",
           "npred_cubes", "oddup", "MARGIN_DEG"]
