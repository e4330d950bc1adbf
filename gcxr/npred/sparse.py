"""A statistic that reads one source's npred on a few bins plus per-plane sums: the selection
(:class:`SparseSelection`) and the source's parts on it (:func:`sparse_parts`, the body of
:meth:`~gcxr.npred.SourceEvaluator.sparse_parts`)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .evaluator import SourceEvaluator

__all__ = ["SparseSelection", "sparse_parts"]


@dataclass(eq=False)
class SparseSelection:
    """Where a statistic reads one source's npred: ``reco`` (the reco-energy planes evaluated),
    ``pixel``/``plane`` of the selected bins (flat pixel index in the source's cutout, position in
    ``reco``), and the mask whose per-plane sums are wanted, either ``mask`` (n_reco, n_pixels,
    bool) or, when every plane has the same mask, ``mask_uniform`` (the flat pixel indices it
    keeps)."""

    reco: np.ndarray
    pixel: np.ndarray
    plane: np.ndarray
    mask: np.ndarray | None = None
    mask_uniform: np.ndarray | None = None


def sparse_parts(ev: SourceEvaluator, spatial_values: dict, sel: SparseSelection) -> tuple[np.ndarray, np.ndarray]:
    """The body of :meth:`gcxr.npred.SourceEvaluator.sparse_parts` (which see).

    Parameters
    ----------
    ev : SourceEvaluator
        The evaluator.
    spatial_values : dict
        Spatial parameter values by name.
    sel : SparseSelection
        The bins and per-plane masks of the statistic.

    Returns
    -------
    tuple of numpy.ndarray
        ``(G, DS)``.
    """
    key = tuple(sorted((k, float(v)) for k, v in spatial_values.items()))
    C, _ = ev._folded(spatial_values)
    extras = ev._aux.setdefault("sparse", OrderedDict())
    hit = extras.get((key, id(sel)))
    if hit is not None and hit[0] is C and hit[1] is sel:
        return hit[2], hit[3]
    nt = C.shape[0]
    Cf = C.reshape(nt, -1)
    D = ev.edisp[:, sel.reco]
    G = D[:, sel.plane] * Cf[:, sel.pixel]
    if sel.mask_uniform is not None:                       # the same mask on every plane
        S = (Cf[:, sel.mask_uniform].sum(axis=1) if sel.mask_uniform.size < Cf.shape[1]
             else Cf.sum(axis=1))
        DS = D.sum(axis=1) * S
    else:                                                  # per-plane masks (bool, n_reco x n_pixels)
        S = np.stack([Cf @ m.astype(float) for m in sel.mask], axis=1)
        DS = np.einsum("tp,tp->t", D, S)
    extras[(key, id(sel))] = (C, sel, G, DS)
    while len(extras) > 2 * ev.CACHE_SIZE:
        extras.popitem(last=False)
    return G, DS
