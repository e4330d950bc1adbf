"""iminuit driver: MIGRAD then HESSE on a likelihood f(theta) -> :class:`FitResult`.

Errors are HESSE errors at the minimum (a fresh second-derivative matrix), not
MIGRAD's running covariance estimate; see docs/conventions.md for why this
matters for strongly correlated spectral parameters.

The PSF kernel, EDISP matrix and cutout of each source are taken at the
source's position when the likelihood is built.  If a fit ends with a source
more than 0.1 deg from that position, they are rebuilt there and MIGRAD runs
again from the current best fit (at most ``max_refresh`` times), so a fit is a
sequence of minimisations of pure functions.

:func:`fit` does not change the models it is given: it works on the vector of
:class:`~gcxr.likelihood.ParameterSpace` (and a private copy of the models
where the IRFs must be rebuilt at moved positions).  The :class:`FitResult`
owns the best-fit values, errors and covariance of the free parameters;
:meth:`FitResult.apply` writes them to models explicitly.
"""
from __future__ import annotations

import copy
import functools
import time
from dataclasses import dataclass, field
import warnings

import numpy as np

from .contract import as_runs
from .coords import separation_deg, transform_lonlat
from .datasets import check_fit_data
from .likelihood import JointLikelihood, ParameterSpace, build_terms

__all__ = ["FitResult", "fit", "profile_interval", "REFRESH_DEG"]

REFRESH_DEG = 0.1
HESSIAN_STEP = 0.05          # Hessian of the gradient: central-difference steps in MIGRAD sigmas


@dataclass
class FitResult:
    """The outcome of :func:`fit`: it owns the values, errors and covariance of the free parameters.

    Attributes
    ----------
    success : bool
        MIGRAD converged.
    nfev : int
        Statistic evaluations.
    total_stat : float
        The statistic at the best fit.
    parameters : list of dict
        Every parameter of the models (``model``, ``name``, ``value``, ``error``, ``unit``,
        ``frozen``) at the best fit; frozen ones with error 0.
    covariance : numpy.ndarray
        Covariance of the free parameters (value units, in the order of ``names``); NaN when
        HESSE was not run or failed.
    names : list of str
        ``<model>.<name>`` of each free parameter.

    The models are not changed by a fit; :meth:`apply` sets their values, errors and
    covariance block from the result.
    """

    success: bool
    nfev: int
    total_stat: float
    parameters: list[dict]
    covariance: np.ndarray
    names: list[str]
    message: str = ""
    edm: float = float("nan")
    n_refresh: int = 0
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-ready dict: success, nfev, total_stat, parameters, message, edm."""
        return {"success": bool(self.success), "nfev": int(self.nfev), "total_stat": float(self.total_stat),
                "parameters": self.parameters, "message": self.message, "edm": float(self.edm)}

    def parameter(self, model: str, name: str) -> dict:
        """One parameter's entry (value, error, unit, frozen ...).

        Parameters
        ----------
        model : str
            The component's name.
        name : str
            The parameter's name.

        Returns
        -------
        dict
            The entry; KeyError if there is none.
        """
        for p in self.parameters:
            if p["model"] == model and p["name"] == name:
                return p
        raise KeyError(f"no parameter {model}.{name}")

    @property
    def values(self) -> np.ndarray:
        """Best-fit values of the free parameters, in the order of :attr:`names`."""
        return np.array([self.parameter(*n.rsplit(".", 1))["value"] for n in self.names], dtype=float)

    @property
    def errors(self) -> np.ndarray:
        """1-sigma errors of the free parameters, in the order of :attr:`names`."""
        return np.array([self.parameter(*n.rsplit(".", 1))["error"] for n in self.names], dtype=float)

    def apply(self, models):
        """Set the free parameters of ``models`` to this result: values, errors and covariance.

        The values and errors of the result's free parameters are written to the models'
        parameters, and (when the covariance is finite) their block of
        ``models.parameters.covariance`` is set (:meth:`gcxr.models.Parameters.set_covariance`:
        cross terms with other parameters become zero).  Other parameters are not touched.

        Parameters
        ----------
        models : Models
            Models holding the result's free parameters (usually those that were fitted, or a copy).

        Returns
        -------
        Models
            ``models``, updated.
        """
        unique = []
        for name in self.names:
            model, pname = name.rsplit(".", 1)
            entry = self.parameter(model, pname)
            try:
                comp = models[model]
            except KeyError:
                raise KeyError(f"FitResult.apply: the models have no component {model!r} "
                               f"(the result's free parameters are {self.names})") from None
            for cname in ("spectral", "spatial"):
                sub = getattr(comp, f"{cname}_model", None)
                if sub is not None and pname in sub.parameter_names():
                    break
            else:
                raise KeyError(f"FitResult.apply: model {model!r} has no parameter {pname!r}")
            par = sub.parameters[pname]
            par.value = float(entry["value"])
            par.error = float(entry["error"])
            unique.append(f"{model}.{cname}.{pname}")
        cov = np.asarray(self.covariance, float)
        if unique and cov.shape == (len(unique), len(unique)) and np.all(np.isfinite(cov)):
            models.parameters.set_covariance(unique, cov)
        return models

    def table(self):
        """Parameters as an astropy Table."""
        from astropy.table import Table  # deferred: heavy import (astropy)
        return Table(rows=[(p["model"], p["name"], p["value"], p["error"], p["unit"], p["frozen"])
                           for p in self.parameters],
                     names=("model", "name", "value", "error", "unit", "frozen"))

    def __repr__(self) -> str:
        lines = [f"FitResult(success={self.success}, nfev={self.nfev}, total_stat={self.total_stat:.4f})"]
        for p in self.parameters:
            if not p["frozen"]:
                lines.append(f"  {p['model']}.{p['name']} = {p['value']:.6g} +- {p['error']:.3g} {p['unit']}")
        return "\n".join(lines)


def sources_moved(terms, models) -> bool:
    """True if a source (at the models' current values) moved more than REFRESH_DEG from where its
    IRFs and cutout were taken, or its extent grew beyond the radius its cutout was sized for.

    Parameters
    ----------
    terms : list of DatasetTerm
        The likelihood terms (their sources' evaluators remember where they were built).
    models : Models
        The models at their current values.

    Returns
    -------
    bool
        Whether the terms must be rebuilt.
    """
    for t in terms:
        for mname, _, _, ev in t.sources:
            sp = models[mname].spatial_model
            if not ev.is_point and float(getattr(sp, "evaluation_radius", 0.0) or 0.0) > ev.radius * 1.05 + 1e-9:
                return True
            lon, lat = transform_lonlat(np.array([sp.position[0]]), np.array([sp.position[1]]), ev.frame_model,
                                        ev.geom.frame)
            if separation_deg(lon[0], lat[0], *ev.irf_position) > REFRESH_DEG:
                return True
    return False


def _set_values(models, space: ParameterSpace, values, errors):
    """Write a vector of the space to ``models`` (fit's private copy)."""
    for (m, comp, n), v, e in zip(space.keys, values, errors):
        sub = models[m].spectral_model if comp == "spectral" else models[m].spatial_model
        sub.parameters[n].value = float(v)
        sub.parameters[n].error = float(e)


def _private_copy(models):
    """A copy of ``models`` with new parameter objects, for fit to move; the component models'
    array attributes (template maps, which no parameter changes) are shared, not copied."""
    memo: dict = {}
    for m in models:
        for sub in (getattr(m, "spectral_model", None), getattr(m, "spatial_model", None)):
            if sub is not None:
                for v in vars(sub).values():
                    if isinstance(v, np.ndarray):
                        memo[id(v)] = v
    return copy.deepcopy(models, memo)


def free_background_datasets(datasets, models) -> tuple[str, ...]:
    """Names of the datasets whose FoV background model has a free parameter.

    Parameters
    ----------
    datasets : list of xarray.Dataset
        The datasets (their ``name`` attributes).
    models : Models
        The models.

    Returns
    -------
    tuple of str
        The dataset names.
    """
    out = []
    for ds in datasets:
        name = ds.attrs.get("name")
        bm = models.background_model(name) if name is not None else None
        if bm is not None and any(not p.frozen for p in bm.parameters):
            out.append(name)
    return tuple(out)


def fit(datasets, models, likelihood_factory=None, tol: float = 0.1, strategy: int = 1,
        max_refresh: int = 3, hesse: bool = True, progress=None, point_weights: str = "tent",
        derivatives: str = "auto", check_data: bool = True) -> FitResult:
    """Fit ``models`` to ``datasets`` (list of xarray Datasets).

    The models are not changed; apply the result with ``result.apply(models)``
    (:meth:`FitResult.apply`: values, errors and covariance of the free parameters).

    ``likelihood_factory(terms, space)`` builds the likelihood (default: in-process
    :class:`JointLikelihood`; :mod:`gcxr.distributed` provides one on a dask cluster).

    ``derivatives``: ``"analytic"`` (default; ``"auto"`` and ``"structured"`` are the same): MIGRAD
    gets the analytic gradient of the statistic (the chain rule through npred, see
    :meth:`gcxr.likelihood.DatasetTerm.value_and_grad`), and the covariance comes from the
    Hessian assembled dataset by dataset over the parameters each depends on
    (:meth:`gcxr.likelihood.DatasetTerm.hessian`: Gauss-Newton on the bins with counts plus
    npred's second derivatives; central differences of the gradient where the sparse form does
    not hold); if that Hessian is not positive definite, Minuit's HESSE decides.
    ``"minuit"``: MIGRAD's numerical gradient and Minuit's HESSE on the joint statistic.

    Parameters
    ----------
    datasets : list of xarray.Dataset or xarray.Dataset
        The reduced datasets (their safe and fit masks apply); a joint set along ``obs`` (e.g. a
        runs file read back) is split into its runs (:func:`gcxr.contract.split_runs`).
    models : Models
        The models; their free parameters are fitted from their current values.  Not modified.
    likelihood_factory : callable, optional
        ``factory(terms, space)`` -> likelihood (default: in-process).
    tol : float
        MIGRAD's tolerance (EDM goal 0.002 x tol).
    strategy : int
        Minuit strategy (0, 1 or 2).
    max_refresh : int
        How often the IRFs may be rebuilt at a moved source position (design record 4).
    hesse : bool
        Compute the covariance at the minimum.
    progress : FitProgress, optional
        Receives the statistic after each evaluation.
    point_weights : {'tent', 'cubic'}
        Rendering of point sources (design record 6).
    derivatives : {'auto', 'analytic', 'minuit'}
        How gradients and covariance are computed (see above).
    check_data : bool
        Refuse data a Cash fit cannot use first (:func:`gcxr.datasets.check_fit_data`); False when
        the caller has checked them (``Analysis.run_fit``).

    Returns
    -------
    FitResult
        Parameters, errors, covariance, statistic and convergence information.

    Examples
    --------
    >>> result = fit(datasets, models)     # doctest: +SKIP
    >>> result.success, result.total_stat    # doctest: +SKIP
    >>> result.apply(models)                 # the best fit into the models  # doctest: +SKIP
    """
    if derivatives not in ("auto", "analytic", "minuit", "structured"):
        raise ValueError(f"fit: derivatives must be 'analytic', 'minuit' (or 'auto'), got {derivatives!r}")
    datasets = as_runs(datasets, "fit")           # each held to the contract
    from threadpoolctl import threadpool_limits  # deferred: heavy import (threadpoolctl)
    # one BLAS thread: the likelihood's products are small (a vector dot over the bins with counts,
    # 14 x 10 matrices against a cutout), where a second BLAS thread only adds a hand-over that
    # costs milliseconds on a busy machine (measured: 7.6 ms instead of 0.03 ms for a 1e5-long dot
    # with another process on the second core); parallelism comes from dask, between datasets
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(datasets, models, likelihood_factory, tol, strategy, max_refresh, hesse, progress,
                    point_weights, derivatives, check_data)


def _fit(datasets, models, likelihood_factory, tol, strategy, max_refresh, hesse, progress, point_weights,
         derivatives, check_data) -> FitResult:
    t0 = time.perf_counter()
    factory = likelihood_factory or JointLikelihood
    space = ParameterSpace.from_models(models)
    if not space.keys:
        raise ValueError("fit: no free parameters")
    # the caller's models are not changed: the vector lives in ``space``; a private copy follows it
    # where terms are (re)built at the current positions and where ``moved`` reads them
    models = _private_copy(models)
    if check_data:            # Analysis.run_fit has checked them already (with the counts, in one pass)
        check_fit_data(datasets, free_background_datasets(datasets, models))
    method = "minuit" if derivatives == "minuit" else "analytic"
    nfev = 0
    n_refresh = 0
    values = space.start.copy()
    like = None
    counts = {"likelihood_calls": 0, "likelihood_tasks": 0}

    def _count(lk):
        if hasattr(lk, "placement_info"):               # where auto placement put the terms, and why
            counts["placement"] = lk.placement_info
        counts["likelihood_calls"] += int(getattr(lk, "n_calls", 0))
        counts["likelihood_tasks"] += int(getattr(lk, "n_tasks", 0))
        if hasattr(lk, "compute_info"):                  # a distributed likelihood: rounds and bytes
            info = lk.compute_info()
            n = info["likelihood_rounds"]
            for key in ("likelihood_rounds", "chunks_rebuilt"):
                counts[key] = counts.get(key, 0) + int(info[key])
            for key in ("bytes_sent", "bytes_received"):
                counts[key] = counts.get(key, 0) + info[f"{key}_per_round"] * n
            counts["chunks"] = info["chunks"]

    while True:
        if like is not None:
            _count(like)
            like.close()
        if hasattr(factory, "from_datasets"):          # the likelihood builds its terms (e.g. on workers)
            like = factory.from_datasets(datasets, models, space, point_weights)
            moved = like.moved
        else:
            terms = build_terms(datasets, models, point_weights)
            like = factory(terms, space)
            moved = functools.partial(sources_moved, terms)

        def fcn(f, _like=like):
            s = _like(f)
            if progress is not None:
                progress(s)
            return s if np.isfinite(s) else 1e300

        bad_gradient = []
        grad = g2 = None
        if method == "analytic" and hasattr(like, "value_and_grad"):
            def grad(f, _like=like):
                g = _like.value_and_grad(np.asarray(f, float))[1]
                if not np.all(np.isfinite(g)):          # overflow far from any sensible model
                    bad_gradient.append(True)
                    return np.where(np.isfinite(g), g, 0.0)
                return g
        if grad is not None and hasattr(like, "curvature"):
            seed_g2 = []

            def g2(f, _like=like):
                # Gauss-Newton diagonal: MIGRAD's starting curvature without 2 evaluations per
                # parameter.  Minuit2 asks for it at every iteration but only the seed's enters the
                # minimisation (same calls and bit-identical results on the seed, Gaussian, diffuse
                # and four validation fits, benchmarks/bench_fit_engine.py), so it is computed once:
                # 20-40 % of an extended-source fit's time was these Jacobian cubes
                if not seed_g2:
                    c = _like.curvature(np.asarray(f, float))
                    seed_g2.append(np.where(np.isfinite(c) & (c > 0), c, 1.0))
                return seed_g2[0]
        m = _migrad(fcn, space, space.to_factors(values), grad, g2, tol, strategy)
        if bad_gradient:
            # the analytic gradient overflowed somewhere on MIGRAD's path: it cannot be trusted
            # there, so MIGRAD starts again with its own numerical derivatives (and may fail, saying so)
            nfev += m.nfcn
            method = "minuit"
            m = _migrad(fcn, space, space.to_factors(values), None, None, tol, strategy)
        nfev += m.nfcn
        values = space.to_values(np.array(m.values))
        _set_values(models, space, values, np.zeros_like(values))
        if n_refresh < max_refresh and moved(models):
            n_refresh += 1
            continue
        break
    t_migrad = time.perf_counter() - t0
    cov_f = None
    if hesse and m.valid and method == "analytic" and hasattr(like, "hessian"):
        f_best, cov_f, n_newton = _newton_covariance(like, np.array(m.values), np.array(m.errors),
                                                     space.factor_limits(), 0.002 * tol)
        nfev += n_newton
        if cov_f is None:
            method = "minuit"          # not positive definite: let HESSE sort it out
        else:
            values = space.to_values(f_best)
    if hesse and m.valid and method == "minuit":
        m.hesse()
        for _ in range(2):
            # HESSE re-estimates the EDM with the exact second derivatives; if that shows the
            # minimum is not yet reached (a rough surface: point-source positions are piecewise
            # linear in the pixel grid), MIGRAD continues from there with the better covariance.
            if m.valid:
                break
            n0 = m.nfcn
            m.migrad()
            nfev += m.nfcn - n0
            m.hesse()
        values = space.to_values(np.array(m.values))
    if cov_f is None and m.covariance is not None:
        cov_f = np.array(m.covariance)
    errors_f = np.sqrt(np.clip(np.diag(cov_f), 0, None)) if cov_f is not None else np.full(len(values), np.nan)
    errors = errors_f * space.scale
    cov = cov_f * np.outer(space.scale, space.scale) if cov_f is not None else np.full((len(values),) * 2, np.nan)
    _set_values(models, space, values, errors)
    total = like(space.to_factors(values))
    _count(like)
    like.close()
    params = []
    free = {(mm, n): i for i, (mm, _, n) in enumerate(space.keys)}
    for model in models:
        comps = [model.spectral_model] + ([model.spatial_model] if getattr(model, "spatial_model", None) else [])
        for sub in comps:
            for p in sub.parameters:
                params.append({"model": model.name, "name": p.name, "value": float(p.value),
                               "error": float(p.error) if (model.name, p.name) in free else 0.0,
                               "unit": p.unit, "frozen": bool(p.frozen)})
    success = bool(m.valid)
    msg = "Optimization terminated successfully." if success else (
        f"MIGRAD did not converge (EDM {m.fmin.edm:.3g}, calls {nfev}); "
        "check start values, free parameters and the fit range")
    if not success:
        warnings.warn(f"fit: {msg}", RuntimeWarning, stacklevel=2)
    return FitResult(success, int(nfev), float(total), params, cov, space.names, msg, float(m.fmin.edm), n_refresh,
                     {"fit": time.perf_counter() - t0, "migrad": t_migrad, "likelihood": counts,
                      "hessian": method if hesse else "none"})


def _migrad(fcn, space: ParameterSpace, start, grad, g2, tol: float, strategy: int):
    """MIGRAD from ``start`` (factor space), run again up to twice while it reports an invalid minimum."""
    from iminuit import Minuit  # deferred: heavy import (iminuit)
    m = Minuit(fcn, start, grad=grad, g2=g2, name=[f"par_{i:03d}_{n}" for i, n in enumerate(space.names)])
    m.errordef = 1.0     # the statistic is -2 ln L: a 1-sigma interval is where it rises by 1
    m.tol = tol
    # with the analytic gradient, strategy 0: the numerical second derivatives of strategy 1 would
    # cost O(n_par) evaluations of all datasets; the covariance comes from the Hessian of the
    # gradient afterwards
    m.strategy = 0 if grad is not None else strategy
    m.print_level = 0
    m.errors = np.ones(len(space.keys))
    for i, (lo, hi) in enumerate(space.factor_limits()):
        if lo is not None or hi is not None:
            m.limits[i] = (lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
    m.migrad()
    for _ in range(2):          # MIGRAD may stop short of the EDM goal on a rough surface: run it again
        if m.valid:
            break
        m.migrad()
    return m


def _newton_covariance(like, factors: np.ndarray, errors: np.ndarray, limits, edm_goal: float,
                       max_steps: int = 5):
    """(factors, covariance, statistic evaluations): the covariance ``2 H^-1`` from the Hessian of
    the analytic gradient at MIGRAD's minimum, after Newton steps ``-H^-1 g`` (halved until the
    statistic drops, within the limits) while the expected distance to the minimum ``g H^-1 g / 2``
    exceeds ``edm_goal``.  MIGRAD's own distance estimate rests on its running curvature, which
    starts from a diagonal; the exact Hessian shows when it stopped short (strong correlations, as
    between many runs' background norms and a source's amplitude).  (None for the covariance if
    the Hessian is not positive definite.)"""
    f = np.asarray(factors, float).copy()
    lo = np.array([-np.inf if a is None else a for a, _ in limits])
    hi = np.array([np.inf if b is None else b for _, b in limits])
    n_eval = 0
    for _ in range(max_steps + 1):
        cov = _hessian_covariance(like, f, errors)
        if cov is None:
            return f, None, n_eval
        stat, g = like.value_and_grad(f)
        step = -0.5 * cov @ g                       # -H^-1 g
        if 0.25 * float(g @ cov @ g) <= edm_goal:   # g H^-1 g / 2
            break
        for _ in range(6):
            trial = np.clip(f + step, lo, hi)
            n_eval += 1
            if like(trial) < stat:
                f = trial
                break
            step = 0.5 * step
        else:
            break
    return f, cov, n_eval


def _hessian_covariance(like, factors: np.ndarray, errors: np.ndarray) -> np.ndarray | None:
    """2 H^-1 (the statistic is -2 ln L) from the likelihood's term-wise Hessian, assembled from
    its parts (:meth:`gcxr.likelihood.DatasetTerm.hessian`: Gauss-Newton on the bins with counts
    plus npred's second derivatives against the frozen weights; central differences of the
    analytic gradient where the sparse form does not hold); None unless H is finite and positive definite.
    The outer difference steps are 0.05 MIGRAD sigma: on the seed fits the errors then agree with
    Minuit's HESSE within 1 % (at 1 sigma the cutoff's non-quadratic shape inflates them)."""
    steps = HESSIAN_STEP * np.where(np.isfinite(errors) & (errors > 0), errors, 0.2)
    H = like.hessian(factors, steps, "analytic")
    if not np.all(np.isfinite(H)):      # e.g. npred not representable there (DatasetTerm.out_of_range)
        return None                     # (np.linalg.cholesky passes NaN through without an error)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    return 2.0 * np.linalg.inv(H)


def profile_interval(datasets, models, model: str, name: str, delta: float = 1.0, max_sigma: float = 4.0):
    """Profile-likelihood interval of one parameter: where the re-minimised statistic rises by ``delta``.

    ``models`` must hold a best fit (values and errors); it is left unchanged.
    Returns ``(lower, upper)`` values.

    Parameters
    ----------
    datasets : list of xarray.Dataset
        The datasets of the fit.
    models : Models
        Best-fit models (values and errors); not modified.
    model, name : str
        The component and parameter, e.g. ``'gc-source', 'index'``.
    delta : float
        The rise of the statistic that defines the interval (1: 1 sigma).
    max_sigma : float
        How far (in errors) to search for each end.
    """
    from scipy.optimize import brentq  # deferred: heavy import (scipy)
    best_models = models.copy()
    comp = best_models[model]
    par = None
    for sub in (comp.spectral_model, getattr(comp, "spatial_model", None)):
        if sub is not None and name in [p.name for p in sub.parameters]:
            par = sub.parameters[name]
    if par is None:
        raise KeyError(f"profile_interval: model {model!r} has no parameter {name!r}")
    v0, err = float(par.value), float(par.error)
    if not err > 0:
        raise ValueError(f"profile_interval: {model}.{name} has no error; fit first")
    stat0 = fit(datasets, best_models, hesse=False).total_stat

    def dstat(v):
        m = best_models.copy()
        c = m[model]
        for sub in (c.spectral_model, getattr(c, "spatial_model", None)):
            if sub is not None and name in [p.name for p in sub.parameters]:
                sub.parameters[name].value = float(v)
                sub.parameters[name].frozen = True
        return fit(datasets, m, hesse=False, max_refresh=0).total_stat - stat0 - delta

    lo = brentq(dstat, v0 - max_sigma * err, v0, xtol=1e-3 * err)
    hi = brentq(dstat, v0, v0 + max_sigma * err, xtol=1e-3 * err)
    return lo, hi
