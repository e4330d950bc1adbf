"""The joint likelihood: per-term derivatives in factor space (:func:`term_value_and_grad`,
:func:`term_curvature`, :func:`term_hessian`), their assembly, the terms of a set of datasets
(:func:`build_terms`) and their sum (:class:`JointLikelihood`, :func:`total_stat`).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from .space import ParameterSpace, derivative_steps
from .term import DatasetTerm


def term_parameters(term: DatasetTerm, space: ParameterSpace) -> np.ndarray:
    """Indices of the free parameters a term depends on: its sources' and its background model's.

    Parameters
    ----------
    term : DatasetTerm
        One dataset's likelihood term.
    space : ParameterSpace
        The free parameters and their scales.

    Returns
    -------
    numpy.ndarray
        Indices into ``space``.
    """
    names = {m for m, *_ in term.sources}
    if term.bkg_model is not None:
        names.add(term.bkg_model)
    return np.array([i for i, (m, _, _) in enumerate(space.keys) if m in names], dtype=int)

def term_value_and_grad(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, steps: dict | None = None,
                        idx: np.ndarray | None = None):
    """(stat, indices, g): one term's statistic and its first derivatives in factor space over the
    parameters it depends on (analytic through npred, :meth:`DatasetTerm.value_and_grad`).

    Parameters
    ----------
    term : DatasetTerm
        One dataset's likelihood term.
    space : ParameterSpace
        The free parameters and their scales.
    factors : numpy.ndarray
        Parameter values in factor units (``value / scale``).
    steps : dict, optional
        Inner difference steps (default: :func:`derivative_steps`).
    idx : numpy.ndarray, optional
        Differentiate these parameters only (indices into ``space``; default: all the term's).

    Returns
    -------
    tuple
        ``(stat, indices, g)``.
    """
    if idx is None:
        idx = term_parameters(term, space)
    values = space.values_by_model(space.to_values(factors))
    keys = [space.keys[i] for i in idx]
    stat, grads = term.value_and_grad(values, keys, steps if steps is not None else derivative_steps(space))
    g = np.array([grads.get(k, 0.0) for k in keys]) * space.scale[idx]
    return stat, idx, g


def term_curvature(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, steps: dict | None = None):
    """(indices, g2): one term's Gauss-Newton diagonal curvature in factor space (see
    :meth:`DatasetTerm.curvature`).

    Parameters
    ----------
    term : DatasetTerm
        One dataset's likelihood term.
    space : ParameterSpace
        The free parameters and their scales.
    factors : numpy.ndarray
        Parameter values in factor units (``value / scale``).
    steps : dict, optional
        Inner difference steps (default: :func:`derivative_steps`).

    Returns
    -------
    tuple
        ``(indices, g2)``.
    """
    idx = term_parameters(term, space)
    values = space.values_by_model(space.to_values(factors))
    keys = [space.keys[i] for i in idx]
    c = term.curvature(values, keys, steps if steps is not None else derivative_steps(space))
    return idx, np.array([c.get(k, 0.0) for k in keys]) * space.scale[idx] ** 2


def term_gradient(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, steps: dict | None = None):
    """(indices, g): first derivatives of one term's statistic in factor space over the parameters
    it depends on.

    Parameters
    ----------
    term : DatasetTerm
        One dataset's likelihood term.
    space : ParameterSpace
        The free parameters and their scales.
    factors : numpy.ndarray
        Parameter values in factor units (``value / scale``).
    steps : dict, optional
        Inner difference steps (default: :func:`derivative_steps`).

    Returns
    -------
    tuple
        ``(indices, g)``.
    """
    _, idx, g = term_value_and_grad(term, space, factors, steps)
    return idx, g


def term_hessian(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, steps: np.ndarray,
                 scheme: str = "central"):
    """(indices, H): second derivatives of one term's statistic in factor space over the parameters
    it depends on, by differences of its analytic gradient with the given steps (factor units;
    :func:`gcxr.fit.fit` uses 0.05 MIGRAD sigma).  ``scheme="central"``: 2 gradients per
    parameter; ``"forward"``: 1 per parameter plus one at ``factors`` (cheaper, less accurate: on
    the seed fit it inflates the spectral errors by ~2.5 %).

    The Hessian is symmetric, so each column is differentiated only over the rows that no earlier
    column gave: a spatial parameter's column (its moves refold the source) gives every row; a
    spectral or background parameter's column gives the rows of the other non-spatial parameters
    only, and those gradients need no PSF correlation (the folded parts stay cached) - the
    costly derivatives are taken once per spatial parameter instead of once per parameter.
    Entries given by two columns are averaged.

    Parameters
    ----------
    term : DatasetTerm
        One dataset's likelihood term.
    space : ParameterSpace
        The free parameters and their scales.
    factors : numpy.ndarray
        Parameter values in factor units (``value / scale``).
    steps : numpy.ndarray
        Steps per parameter (factor units).
    scheme : {'central', 'forward'}
        The difference scheme.

    Returns
    -------
    tuple
        ``(indices, H)``.
    """
    if scheme not in ("central", "forward", "analytic"):
        raise ValueError(f"term_hessian: scheme must be 'analytic', 'central' or 'forward', got {scheme!r}")
    idx = term_parameters(term, space)
    f0 = np.asarray(factors, float)
    inner = derivative_steps(space)
    if scheme == "analytic":
        keys = [space.keys[i] for i in idx]
        values = space.values_by_model(space.to_values(f0))
        outer = {k: float(steps[i] * space.scale[i]) for k, i in zip(keys, idx)}
        H = term.hessian(values, keys, inner, outer)
        if H is not None:
            sc = space.scale[idx]
            return idx, H * np.outer(sc, sc)
        scheme = "central"                     # the dense form (negative fluxes or factors)
    p = idx.size
    spatial = np.array([space.keys[i][1] == "spatial" for i in idx], dtype=bool)
    rest = np.flatnonzero(~spatial)

    def grad(f, rows):
        return term_value_and_grad(term, space, f, inner, idx[rows])[2]

    H = np.full((p, p), np.nan)
    g0 = {}
    for a, i in enumerate(idx):
        rows = np.arange(p) if spatial[a] else rest
        up = f0.copy()
        up[i] += steps[i]
        if scheme == "forward":
            key = rows.size
            if key not in g0:
                g0[key] = grad(f0, rows)
            col = (grad(up, rows) - g0[key]) / steps[i]
        else:
            down = f0.copy()
            down[i] -= steps[i]
            col = (grad(up, rows) - grad(down, rows)) / (2 * steps[i])
        H[rows, a] = col
    both = np.isfinite(H) & np.isfinite(H.T)
    H = np.where(both, 0.5 * (H + H.T), np.where(np.isfinite(H), H, H.T))
    return idx, H


def assemble_gradient(n: int, parts) -> np.ndarray:
    """The joint gradient from per-term (indices, g) parts.

    Parameters
    ----------
    n : int
        The number of free parameters.
    parts : iterable of tuple
        ``(indices, g)`` per term.

    Returns
    -------
    numpy.ndarray
        The gradient, length ``n``.
    """
    g = np.zeros(n)
    for idx, v in parts:
        g[idx] += v
    return g


def assemble_hessian(n: int, parts) -> np.ndarray:
    """The joint Hessian from per-term (indices, H) blocks: the terms' statistics add up.

    Parameters
    ----------
    n : int
        The number of free parameters.
    parts : iterable of tuple
        ``(indices, H)`` per term.

    Returns
    -------
    numpy.ndarray
        The Hessian, ``(n, n)``.
    """
    H = np.zeros((n, n))
    for idx, h in parts:
        H[np.ix_(idx, idx)] += h
    return H


def build_terms(datasets: list[xr.Dataset], models, point_weights: str = "tent",
                check: bool = True) -> list[DatasetTerm]:
    """One :class:`DatasetTerm` per dataset; with ``check``, a sky model that reaches no dataset
    is refused (:func:`check_models_reach`).

    Parameters
    ----------
    datasets : list of xarray.Dataset
        The reduced datasets.
    models : Models
        The models (at their current values).
    point_weights : {'tent', 'cubic'}
        Rendering of point sources.
    check : bool
        Refuse free sky models that reach no dataset.

    Returns
    -------
    list of DatasetTerm
        In the order of ``datasets``.
    """
    terms = [DatasetTerm.build(ds, models, ds.attrs.get("name"), point_weights) for ds in datasets]
    if check:
        check_models_reach(models, {m for t in terms for m, *_ in t.sources})
    return terms


def check_models_reach(models, present: set) -> None:
    """Raise ``ValueError`` naming every sky model with free parameters that no dataset term
    evaluates (its cutout misses every dataset, or it applies to none): those parameters would be
    unconstrained (a frozen model that reaches nothing is harmless and allowed).

    Parameters
    ----------
    models : Models
        The models.
    present : set of str
        Names of the sky models some dataset term evaluates.
    """
    def free(m):
        subs = [m.spectral_model] + ([m.spatial_model] if getattr(m, "spatial_model", None) is not None else [])
        return any(not p.frozen for sub in subs for p in sub.parameters)
    lost = [m.name for m in models.sky_models if m.name not in present and free(m)]
    if lost:
        raise ValueError(f"model(s) {lost}: no dataset is reached by the source's cutout (evaluation radius "
                         "+ PSF) or named in its datasets_names; check the position and datasets_names, or "
                         "remove the model")


class TermwiseDerivatives:
    """Gradient, curvature and Hessian assembled from per-term parts, shared by the in-process and
    the distributed likelihood: a subclass says only how to apply a per-term function to every
    term (:meth:`_per_term`, results in term order, so sums round identically everywhere)."""

    space: ParameterSpace
    steps: dict
    n_calls: int
    _last = None

    def _per_term(self, fn, *args) -> list:
        raise NotImplementedError

    def value_and_grad(self, factors: np.ndarray) -> tuple[float, np.ndarray]:
        """Statistic and analytic gradient in factor space; the last pair is remembered (MIGRAD
        asks for the statistic and the gradient at the same point).

        Parameters
        ----------
        factors : numpy.ndarray
            Parameter values in factor units.

        Returns
        -------
        tuple
            ``(stat, gradient)``.
        """
        f = np.asarray(factors, float)
        if self._last is not None and np.array_equal(self._last[0], f):
            return self._last[1], self._last[2].copy()
        self.n_calls += 1
        parts = self._per_term(term_value_and_grad, self.space, f, self.steps)
        stat = float(sum(p[0] for p in parts))
        g = assemble_gradient(len(self.space.keys), [(p[1], p[2]) for p in parts])
        self._last = (f.copy(), stat, g)
        return stat, g.copy()

    def gradient(self, factors: np.ndarray) -> np.ndarray:
        """First derivatives in factor space (analytic, term by term).

        Parameters
        ----------
        factors : numpy.ndarray
            Parameter values in factor units.

        Returns
        -------
        numpy.ndarray
            The gradient.
        """
        return self.value_and_grad(factors)[1]

    def curvature(self, factors: np.ndarray) -> np.ndarray:
        """Gauss-Newton diagonal of the second derivatives in factor space (MIGRAD's ``g2``).

        Parameters
        ----------
        factors : numpy.ndarray
            Parameter values in factor units.

        Returns
        -------
        numpy.ndarray
            The diagonal curvature.
        """
        return assemble_gradient(len(self.space.keys),
                                 self._per_term(term_curvature, self.space, np.asarray(factors, float), self.steps))

    def hessian(self, factors: np.ndarray, steps: np.ndarray, scheme: str = "central") -> np.ndarray:
        """Second derivatives in factor space, term by term (see :func:`term_hessian`).

        Parameters
        ----------
        factors : numpy.ndarray
            Parameter values in factor units.
        steps : numpy.ndarray
            Steps per parameter (factor units).
        scheme : {'analytic', 'central', 'forward'}
            The difference scheme.

        Returns
        -------
        numpy.ndarray
            The Hessian, ``(n, n)``.
        """
        return assemble_hessian(len(self.space.keys),
                                self._per_term(term_hessian, self.space, np.asarray(factors, float),
                                               np.asarray(steps, float), scheme))


class JointLikelihood(TermwiseDerivatives):
    """Sum of dataset terms as a function of the free-parameter vector (in-process).

    ``like(f)`` is the statistic; :meth:`value_and_grad` adds its analytic gradient.  The
    sources' folded parts are cached per source by spatial parameter values, and each term
    remembers its predicted counts at the last parameter values.
    """

    def __init__(self, terms: list[DatasetTerm], space: ParameterSpace):
        self.terms = terms
        self.space = space
        self.steps = derivative_steps(space)
        self.n_calls = 0
        self.n_tasks = 0
        self._last = None

    def _per_term(self, fn, *args) -> list:
        return [fn(t, *args) for t in self.terms]

    def stat_values(self, values: np.ndarray) -> float:
        """The joint statistic at ``values``.

        Parameters
        ----------
        values : numpy.ndarray
            Values of the free parameters, in order.

        Returns
        -------
        float
            The statistic.
        """
        self.n_calls += 1
        v = self.space.values_by_model(values)
        return float(sum(t.stat(v) for t in self.terms))

    def __call__(self, factors: np.ndarray) -> float:
        return self.stat_values(self.space.to_values(factors))

    def close(self):
        """Release resources (nothing to release in process; the distributed likelihood frees its workers)."""
        pass


def total_stat(datasets: list[xr.Dataset], models, point_weights: str = "tent") -> float:
    """The joint Cash statistic of ``datasets`` at the models' current parameter values.

    Parameters
    ----------
    datasets : list of xarray.Dataset
        The reduced datasets.
    models : Models
        The models.
    point_weights : {'tent', 'cubic'}
        Rendering of point sources.

    Returns
    -------
    float
        The summed Cash statistic.
    """
    space = ParameterSpace.from_models(models)
    return JointLikelihood(build_terms(datasets, models, point_weights), space).stat_values(space.start)
