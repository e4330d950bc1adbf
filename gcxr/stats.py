"""The Cash statistic and its friends, on plain numpy arrays.

    cash(n, mu) = 2 * (mu - n * ln mu)            (the n ln n - n term is omitted)

mu is floored at 1e-25 (and ln mu at ln 1e-25); the n ln mu term enters only
where n > 0.  Sums are float64.  This is the statistic of the reference
workflow (see docs/conventions.md, "Cash statistic").
"""
from __future__ import annotations

import numpy as np

__all__ = ["TRUNCATION", "cash", "cash_sum", "cash_counts_significance", "cash_ts_known_background",
           "significance_known_background"]

TRUNCATION = 1e-25


def cash(n, mu):
    """Per-bin Cash statistic 2 (mu - n ln mu).

    Parameters
    ----------
    n : array_like
        Observed counts.
    mu : array_like
        Predicted counts.

    Returns
    -------
    numpy.ndarray
        The statistic per bin.

    Examples
    --------
    >>> float(cash(0, 2.0))
    4.0
    """
    n = np.asarray(n, dtype=float)
    mu = np.asarray(mu, dtype=float)
    mu_t = np.where(mu > TRUNCATION, mu, TRUNCATION)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n > 0, n * np.log(mu_t), 0.0)
    return 2.0 * (mu_t - term)


def cash_sum(n, mu) -> float:
    """Total Cash statistic over the given bins.

    Parameters
    ----------
    n : array_like
        Observed counts.
    mu : array_like
        Predicted counts.

    Returns
    -------
    float
        The summed statistic.
    """
    return float(np.sum(cash(n, mu)))


def cash_ts_known_background(n, mu):
    """TS = cash(n, mu) - cash(n, n) = 2 [(mu - n) + n ln(n / mu)], clipped at 0.

    Parameters
    ----------
    n : array_like
        Observed counts.
    mu : array_like
        Predicted counts.

    Returns
    -------
    numpy.ndarray
        TS per bin.
    """
    n = np.asarray(n, dtype=float)
    mu = np.asarray(mu, dtype=float)
    return np.clip(cash(n, mu) - cash(n, n), 0.0, None)


def significance_known_background(n, mu):
    """sign(n - mu) sqrt(TS): the Li & Ma significance for a background known exactly.

    Parameters
    ----------
    n : array_like
        Observed counts.
    mu : array_like
        Predicted counts.

    Returns
    -------
    numpy.ndarray
        Significance per bin.
    """
    n = np.asarray(n, dtype=float)
    mu = np.asarray(mu, dtype=float)
    return np.sign(n - mu) * np.sqrt(cash_ts_known_background(n, mu))


def cash_counts_significance(n_on: float, mu_bkg: float) -> float:
    """The Li & Ma significance of ``n_on`` counts over a background ``mu_bkg`` known exactly (a scalar).

    Parameters
    ----------
    n_on : float
        Observed counts.
    mu_bkg : float
        Expected background counts.

    Returns
    -------
    float
        sign(n_on - mu_bkg) sqrt(TS).
    """
    return float(significance_known_background(n_on, mu_bkg))
