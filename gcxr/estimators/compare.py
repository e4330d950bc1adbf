r"""Comparison of two fitted models: likelihood-ratio test and Akaike information criterion.

For a null model nested in an alternative one (the alternative has ``dof``
more free parameters and reduces to the null for particular values of them),
with fitted Cash statistics :math:`C = -2\ln L + \mathrm{const}` on the same
data:

* test statistic :math:`TS = C_\mathrm{null} - C_\mathrm{alt}`;
* Wilks' theorem: under the null, :math:`TS \sim \chi^2_\mathrm{dof}`, so the
  p-value is :math:`p = P(\chi^2_\mathrm{dof} > TS)`; with ``on_boundary``
  (one extra parameter whose null value is the edge of its range, such as a
  Gaussian width 0: Chernoff's theorem) the distribution is
  :math:`\tfrac12\chi^2_0 + \tfrac12\chi^2_1` and :math:`p` is halved;
* significance: the two-sided Gaussian equivalent,
  :math:`\sigma = \Phi^{-1}(1 - p/2)`, so that :math:`\sigma = \sqrt{TS}` for
  one degree of freedom;
* :math:`\mathrm{AIC} = C + 2k` for :math:`k` free parameters, and
  :math:`\Delta\mathrm{AIC} = \mathrm{AIC}_\mathrm{alt} - \mathrm{AIC}_\mathrm{null}`
  (negative: the alternative is preferred).  AIC does not need nesting.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

__all__ = ["ModelComparison", "compare_models", "fit_statistic"]


@dataclass(frozen=True)
class ModelComparison:
    """Result of :func:`compare_models` (all plain floats and ints).

    Attributes
    ----------
    stat_null, stat_alternative : float
        Fitted statistics.
    n_free_null, n_free_alternative : int
        Numbers of free parameters.
    ts : float
        ``stat_null - stat_alternative``.
    dof : int
        Degrees of freedom of the test.
    p_value : float
        Wilks (or Chernoff with ``on_boundary``) p-value of ``ts``.
    significance : float
        Two-sided Gaussian sigma of ``p_value`` (``sqrt(ts)`` for one dof);
        0 when ``ts <= 0``.
    aic_null, aic_alternative, delta_aic : float
        ``stat + 2 n_free`` of each model and ``aic_alternative - aic_null``.
    on_boundary : bool
        Whether Chernoff's halving was applied.
    """

    stat_null: float
    stat_alternative: float
    n_free_null: int
    n_free_alternative: int
    ts: float
    dof: int
    p_value: float
    significance: float
    aic_null: float
    aic_alternative: float
    delta_aic: float
    on_boundary: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def fit_statistic(result: Any) -> tuple[float, int]:
    """``(total statistic, number of free parameters)`` of a fit result.

    Parameters
    ----------
    result : FitResult, mapping or (float, int)
        A :class:`gcxr.fit.FitResult`; a mapping with ``total_stat`` and either
        ``n_free`` or ``parameters`` (a list of dicts with ``frozen``: the
        ``fit`` entry of ``result.json``); or a ``(stat, n_free)`` pair.
    """
    if isinstance(result, tuple) and len(result) == 2:
        stat, n_free = result
    else:
        get = result.get if isinstance(result, Mapping) else (lambda k, d=None: getattr(result, k, d))
        stat = get("total_stat")
        if stat is None:
            raise ValueError(f"fit result has no 'total_stat': {type(result).__name__}")
        n_free = get("n_free")
        if n_free is None:
            pars = get("parameters")
            if pars is None:
                raise ValueError("fit result has neither 'n_free' nor 'parameters' to count free parameters")
            n_free = sum(1 for p in pars if not (p["frozen"] if isinstance(p, Mapping) else p.frozen))
    stat = float(stat)
    if not math.isfinite(stat):
        raise ValueError(f"fit statistic is not finite: {stat}")
    if int(n_free) != n_free or n_free < 0:
        raise ValueError(f"number of free parameters must be a non-negative integer, got {n_free!r}")
    return stat, int(n_free)


def _chi2_logsf(x: float, dof: int) -> float:
    """ln P(chi2_dof > x), also where the probability underflows."""
    import scipy.stats  # deferred: heavy import (scipy)
    from scipy.special import gammaln, log_ndtr  # deferred: heavy import (scipy)

    if dof == 1:
        return float(math.log(2.0) + log_ndtr(-math.sqrt(x)))
    if dof == 2:
        return -0.5 * x
    value = float(scipy.stats.chi2.logsf(x, dof))
    if math.isfinite(value):
        return value
    # asymptotic series of the upper incomplete gamma function Q(a, y), y = x/2 >> a
    a, y = 0.5 * dof, 0.5 * x
    series = 1.0 + (a - 1) / y + (a - 1) * (a - 2) / y**2 + (a - 1) * (a - 2) * (a - 3) / y**3
    return float((a - 1) * math.log(y) - y - gammaln(a) + math.log(series))


def compare_models(null: Any, alternative: Any, dof: int | None = None,
                   on_boundary: bool = False) -> ModelComparison:
    """Likelihood-ratio test and AIC of two models fitted to the same data.

    Parameters
    ----------
    null, alternative : FitResult, mapping or (float, int)
        The fits (see :func:`fit_statistic`); ``null`` is nested in
        ``alternative`` for the test to hold.
    dof : int, optional
        Degrees of freedom; default the difference of the free-parameter counts.
    on_boundary : bool
        The extra parameter's null value is at the boundary of its range (one
        degree of freedom): halve the p-value (Chernoff).

    Returns
    -------
    ModelComparison

    Raises
    ------
    ValueError
        If ``dof`` is not positive (the alternative must have more free
        parameters), or with ``on_boundary`` and ``dof != 1``.
    """
    from scipy.special import ndtri_exp  # deferred: heavy import (scipy)

    s0, k0 = fit_statistic(null)
    s1, k1 = fit_statistic(alternative)
    if dof is None:
        dof = k1 - k0
    if int(dof) != dof or dof < 1:
        raise ValueError(f"the alternative model must have more free parameters than the null one "
                         f"(dof = {dof}; null {k0}, alternative {k1}); pass dof explicitly if they are counted differently")
    dof = int(dof)
    if on_boundary and dof != 1:
        raise ValueError(f"on_boundary (Chernoff) is for one extra parameter, got dof = {dof}")
    ts = s0 - s1
    if ts <= 0:
        log_p, sig = 0.0, 0.0
    else:
        log_p = _chi2_logsf(ts, dof)
        if on_boundary:
            log_p -= math.log(2.0)
        # two-sided Gaussian equivalent from the log p-value (no underflow for large TS)
        sig = float(-ndtri_exp(log_p - math.log(2.0)))
    return ModelComparison(
        stat_null=s0, stat_alternative=s1, n_free_null=k0, n_free_alternative=k1, ts=ts, dof=dof,
        p_value=math.exp(log_p), significance=max(sig, 0.0),
        aic_null=s0 + 2 * k0, aic_alternative=s1 + 2 * k1, delta_aic=(s1 + 2 * k1) - (s0 + 2 * k0),
        on_boundary=bool(on_boundary),
    )
