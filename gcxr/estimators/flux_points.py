r"""Flux points: the normalisation of a fitted source spectrum in energy bins.

In each bin :math:`[E_1, E_2]` (whole reco-energy bins) the source's spectrum
is scaled by a factor ``norm`` (its ``amplitude`` is the free parameter,
``norm = amplitude / amplitude_best``); every other parameter stays at its
best-fit value, and the background norms too unless ``reoptimize=True`` (then
they are re-fitted in each bin, and profiled for TS and upper limits).  The
Cash statistic is restricted to the bin through each dataset's ``mask_fit``
(``mask_fit & E in bin``) and minimised with :func:`gcxr.fit.fit`:

* ``norm_err``: the HESSE error of the norm (curvature at the minimum);
  a negative norm can clip npred at 0 in some bins, where the truncated Cash
  statistic jumps: if MIGRAD stops behind such a cliff (``stat(norm = 0)`` is
  lower than its minimum), the bin is refitted with ``norm >= 0`` and flagged
  in ``norm_bounded``;
* ``ts = stat(norm = 0) - stat_min``, ``sqrt_ts = sign(norm) sqrt(ts)``;
* ``norm_ul``: the norm above the best fit where the statistic has risen by
  ``n_sigma_ul^2`` (4: a 2-sigma upper limit), computed for every bin;
  ``is_ul`` flags bins with ``ts < n_sigma_ul^2``;
* ``e_ref = sqrt(E_1 E_2)``, ``dnde = norm x dN/dE_best(e_ref)``,
  ``e2dnde = e_ref^2 dnde`` (and the same for errors and limits).

These are the conventions of the reference's ``FluxPointsEstimator`` with its
defaults (``reoptimize=False``).
"""
from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..datasets import combined_mask
from ..fit import fit
from ..likelihood import JointLikelihood, ParameterSpace, build_terms
from ._core import EDGE_RTOL, as_tev, energy_edge_list, snap_energy_edges

__all__ = ["flux_points"]

NORM_PARAMETERS = ("amplitude", "norm")
RETRY_TOL = 1e-3           # stat(norm = 0) below the fitted minimum by more than this: fit again
START_NEAR_NULL = 1e-2     # ... with norm >= 0, starting from norm = 0.01


def _fmt(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def _amplitude_name(spectral) -> str:
    names = [p.name for p in spectral.parameters]
    for n in NORM_PARAMETERS:
        if n in names:
            return n
    raise ValueError(f"flux_points: the spectral model {type(spectral).__name__} has no normalisation "
                     f"parameter ({' or '.join(NORM_PARAMETERS)}); its parameters are {names}")


def _bin_datasets(datasets, idx_per_ds, k) -> list[xr.Dataset]:
    """Shallow copies whose mask_fit keeps only energy bin group ``k``; datasets without bins are left out."""
    out = []
    for ds, idx in zip(datasets, idx_per_ds):
        in_bin = np.zeros(ds.sizes["energy"], bool)
        in_bin[idx[k]:idx[k + 1]] = True
        mf = xr.DataArray(in_bin, dims="energy", coords={"energy": ds["energy"]})
        if "mask_fit" in ds:
            mf = ds["mask_fit"].astype(bool) & mf
        d = ds.assign(mask_fit=mf)
        if bool(combined_mask(d).values.any()):
            out.append(d)
    return out


def _stat_function(sliced, models, source, amp_name, reoptimize):
    """stat(amplitude) with the amplitude fixed, other free parameters (background norms) re-fitted."""
    if not reoptimize:
        like = JointLikelihood(build_terms(sliced, models), ParameterSpace.from_models(models))
        return lambda a: like.stat_values(np.array([a]))

    def stat(a):
        m = models.copy()
        p = m[source].spectral_model.parameters[amp_name]
        p.value, p.frozen = float(a), True
        return fit(sliced, m, hesse=False, max_refresh=0).total_stat
    return stat


def _upper_limit(stat, a_best, err, target) -> float:
    """Smallest amplitude above the best fit where stat reaches ``target`` (stat convex in it)."""
    from scipy.optimize import brentq  # deferred: heavy import (scipy)
    step = 2.0 * err if np.isfinite(err) and err > 0 else max(abs(a_best), 1e-300)
    hi = a_best + step
    for _ in range(60):
        if stat(hi) > target:
            break
        step *= 2.0
        hi = a_best + step
    else:
        return float("nan")
    return float(brentq(lambda a: stat(a) - target, a_best, hi, xtol=1e-5 * step, rtol=1e-10))


def flux_points(datasets, models, source: str, energy_edges, reoptimize: bool = False,
                n_sigma_ul: float = 2.0) -> xr.Dataset:
    """Flux points of ``source`` in energy bins (see the module docstring for the definitions).

    Parameters
    ----------
    datasets : xarray.Dataset or list of them
        Reduced datasets (their ``mask_fit``, if any, still applies).
    models : Models
        The best-fit models (not modified).
    source : str
        Name of the sky model.
    energy_edges : sequence of float (TeV) or Quantity
        Requested bin edges.  Each is moved to the nearest reco-energy bin edge of the
        datasets (in log energy, within the axis; as gammapy does), with a warning naming the
        edges used when any moved; the result's ``energy_edges_requested`` and
        ``energy_edges`` attrs record both.
    reoptimize : bool
        Re-fit the background norms in each bin (default: frozen at the best fit).
    n_sigma_ul : float
        Confidence of the upper limits, in sigma (statistic rise ``n_sigma_ul**2``).

    Returns
    -------
    xarray.Dataset on ``energy`` (the geometric bin centres ``e_ref``, with
    ``energy_bounds``): ``norm``, ``norm_err``, ``norm_ul``, ``ts``,
    ``sqrt_ts``, ``is_ul``, ``dnde(_err, _ul)``, ``e2dnde(_err, _ul)``,
    ``dnde_ref``, ``counts`` (masked counts in the bin), ``stat``,
    ``stat_null``, ``success`` and ``norm_bounded``.

    Examples
    --------
    >>> fp = flux_points(datasets, models, "gc-source", energy_edges=[0.4, 1, 2.5, 10])  # doctest: +SKIP
    >>> fp.attrs["energy_edges"]   # the bin edges used, e.g. 0.398, 1, 2.51, 10 TeV  # doctest: +SKIP
    """
    datasets = [datasets] if isinstance(datasets, xr.Dataset) else list(datasets)
    if not datasets:
        raise ValueError("flux_points: no datasets")
    if source not in models.names:
        raise KeyError(f"flux_points: no model {source!r}; the models are {models.names}")
    spectral = models[source].spectral_model
    amp_name = _amplitude_name(spectral)
    amp0 = float(spectral.parameters[amp_name].value)
    if amp0 == 0 or not np.isfinite(amp0):
        raise ValueError(f"flux_points: {source}.{amp_name} is {amp0}; the reference spectrum needs a non-zero value")

    idx_per_ds = [snap_energy_edges(ds, energy_edges)[0] for ds in datasets]
    edges = energy_edge_list(datasets[0], idx_per_ds[0])
    for ds, idx in zip(datasets[1:], idx_per_ds[1:]):
        if not np.allclose(energy_edge_list(ds, idx), edges, rtol=1e-6):
            raise ValueError("flux_points: the datasets' energy edges differ")
    requested = as_tev(energy_edges)
    if requested.shape != edges.shape or not np.allclose(requested, edges, rtol=EDGE_RTOL):
        warnings.warn(f"flux_points: energy edges {_fmt(requested)} TeV snapped to the nearest bin edges "
                      f"of the datasets, {_fmt(edges)} TeV", UserWarning, stacklevel=2)

    base = models.copy()
    for p in base.parameters:
        p.frozen = True
    base[source].spectral_model.parameters[amp_name].frozen = False
    if reoptimize:
        for ds in datasets:
            bm = base.background_model(ds.attrs.get("name", ""))
            if bm is not None:
                bm.spectral_model.parameters["norm"].frozen = False

    lo, hi = edges[:-1], edges[1:]
    e_ref = np.sqrt(lo * hi)
    nb = lo.size
    cols = {k: np.full(nb, np.nan) for k in ("norm", "norm_err", "norm_ul", "ts", "stat", "stat_null", "counts")}
    success = np.zeros(nb, bool)
    bounded = np.zeros(nb, bool)
    target_rise = float(n_sigma_ul) ** 2
    for k in range(nb):
        sliced = _bin_datasets(datasets, idx_per_ds, k)
        if not sliced:
            continue
        m = base.copy()
        res = fit(sliced, m, max_refresh=0)
        res.apply(m)                 # the stat function (re)fits from the bin's best fit
        stat = _stat_function(sliced, m, source, amp_name, reoptimize)
        stat_null = stat(0.0)
        if stat_null < res.total_stat - RETRY_TOL:
            # a false minimum: a negative norm clips npred at 0 in some bins, and the Cash
            # truncation makes a cliff behind which MIGRAD can stop; fit again with norm >= 0
            m_retry = base.copy()
            par = m_retry[source].spectral_model.parameters[amp_name]
            par.value = START_NEAR_NULL * amp0
            if amp0 > 0:
                par.min = 0.0
            else:
                par.max = 0.0
            res_retry = fit(sliced, m_retry, max_refresh=0)
            res_retry.apply(m_retry)
            if res_retry.total_stat < res.total_stat:
                res, m = res_retry, m_retry
                bounded[k] = True
        p = res.parameter(source, amp_name)
        a_best, a_err = p["value"], p["error"]
        stat_min = res.total_stat
        cols["norm"][k] = a_best / amp0
        cols["norm_err"][k] = a_err / abs(amp0)
        cols["stat"][k] = stat_min
        cols["stat_null"][k] = stat_null
        cols["ts"][k] = stat_null - stat_min
        cols["norm_ul"][k] = _upper_limit(stat, a_best, a_err, stat_min + target_rise) / amp0
        cols["counts"][k] = sum(float(np.asarray(d["counts"].values, float)[np.broadcast_to(
            combined_mask(d).transpose("energy", "lat", "lon").values, d["counts"].shape)].sum()) for d in sliced)
        success[k] = res.success

    ts = cols["ts"]
    sqrt_ts = np.sign(cols["norm"]) * np.sqrt(np.clip(ts, 0, None))
    dnde_ref = np.asarray(spectral.evaluate(e_ref), float)
    unit, eunit = "cm-2 s-1 TeV-1", "TeV cm-2 s-1"
    data = {
        "norm": (cols["norm"], "1", "Norm of the reference spectrum"),
        "norm_err": (cols["norm_err"], "1", "1-sigma error of norm (HESSE)"),
        "norm_ul": (cols["norm_ul"], "1", f"{n_sigma_ul:g}-sigma upper limit of norm"),
        "ts": (ts, "1", "TS of the source in the bin"),
        "sqrt_ts": (sqrt_ts, "1", "sign(norm) sqrt(TS)"),
        "dnde_ref": (dnde_ref, unit, "Best-fit dN/dE at e_ref"),
        "dnde": (cols["norm"] * dnde_ref, unit, "dN/dE at e_ref"),
        "dnde_err": (cols["norm_err"] * dnde_ref, unit, "1-sigma error of dN/dE"),
        "dnde_ul": (cols["norm_ul"] * dnde_ref, unit, "Upper limit of dN/dE"),
        "e2dnde": (cols["norm"] * dnde_ref * e_ref ** 2, eunit, "E^2 dN/dE at e_ref"),
        "e2dnde_err": (cols["norm_err"] * dnde_ref * e_ref ** 2, eunit, "1-sigma error of E^2 dN/dE"),
        "e2dnde_ul": (cols["norm_ul"] * dnde_ref * e_ref ** 2, eunit, "Upper limit of E^2 dN/dE"),
        "counts": (cols["counts"], "1", "Counts in the bin (safe and fit masks)"),
        "stat": (cols["stat"], "1", "Cash statistic at the best norm"),
        "stat_null": (cols["stat_null"], "1", "Cash statistic at norm = 0"),
    }
    out = xr.Dataset({k: ("energy", v, {"units": u, "long_name": ln}) for k, (v, u, ln) in data.items()},
                     coords={"energy": ("energy", e_ref, {"units": "TeV", "long_name": "Reference energy e_ref",
                                                          "bounds": "energy_bounds"}),
                             "energy_bounds": (("energy", "bnds"), np.stack([lo, hi], -1), {"units": "TeV"})})
    out["is_ul"] = ("energy", ts < target_rise, {"long_name": f"ts < {target_rise:g}: quote norm_ul"})
    out["success"] = ("energy", success, {"long_name": "The fit in the bin converged"})
    out["norm_bounded"] = ("energy", bounded, {"long_name": "norm refitted with norm >= 0 (false minimum at norm < 0)"})
    out.attrs = {"source": source, "norm_parameter": amp_name, "reoptimize": int(bool(reoptimize)),
                 "n_sigma_ul": float(n_sigma_ul), "sed_type": "likelihood",
                 "energy_edges_requested": requested, "energy_edges": edges}
    return out
