"""The sparse form of a :class:`~gcxr.likelihood.DatasetTerm`: its state, gradient, curvature and
Hessian on the bins with counts.

Most fit bins of a fine-binned cube have no counts.  Where mu >= 0 on every fit bin, the
statistic is 2 (sum mu - sum_{n>0} n ln mu): the first sum is per-plane sums of the folded
parts (background sums x a_E, F . DS per source), the second needs mu only on the bins with
counts (F . G per source, :meth:`SourceEvaluator.sparse_parts`).  A call then costs the bins
with counts, not the map; the same holds for the gradient of spectral and background
parameters, and for the curvature.  mu >= 0 holds when the background factors and every
source's bin fluxes are >= 0 (the folded spatial parts are); otherwise mu may be floored
on bins without counts and the dense form is used.

The functions here are the bodies of the term's sparse-form methods (``_sparse_state``,
``_sparse_curvature``, ``_sparse_grads`` and :meth:`~gcxr.likelihood.DatasetTerm.hessian`),
which delegate to them; they read the term's arrays and caches.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..stats import TRUNCATION

if TYPE_CHECKING:                      # the term module imports this one
    from .term import DatasetTerm


def _shifted(values: dict, key: tuple, dv: float) -> dict:
    """``values`` (by model and component) with one parameter moved by ``dv`` (a new dict)."""
    m, c, n = key
    out = dict(values)
    out[m] = dict(values[m])
    out[m][c] = dict(values[m][c])
    out[m][c][n] += dv
    return out


def sparse_state(term: DatasetTerm, a: np.ndarray, values: dict):
    """``(regions, sources)`` of the sparse form at these values, or None where it is not exact:
    per region ``[mu on the bins with counts, sum of mu over the fit bins]``, per source
    ``(F, G, DS)``.  Remembered in the term for the last parameter values, like its predicted counts.

    Parameters
    ----------
    term : DatasetTerm
        The dataset term.
    a : numpy.ndarray
        The background factor per energy at these values.
    values : dict
        Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).

    Returns
    -------
    tuple or None
        ``(regions, sources)``, or None where the sparse form is not exact.
    """
    key = term._values_key(values)
    if term._last_sparse is not None and term._last_sparse[0] == key:
        return term._last_sparse[1]
    state = None
    if term.sparse and np.all(a >= 0):
        fluxes = [ev.flux(values[m]["spectral"]) for m, *_, ev in term.sources]
        if all(np.all(F >= 0) and np.all(np.isfinite(F)) for F in fluxes):
            regs = []
            for r in term.regions:
                ap = a[r.planes]
                regs.append([ap[r.z_plane] * r.bkg_z, float(ap @ r.bkg_sum)])
            srcs = []
            for (m, rk, _, ev), F, (inside, sel) in zip(term.sources, fluxes, term._selections()):
                G, DS = ev.sparse_parts(values[m].get("spatial", {}), sel)
                regs[rk][0][inside] += F @ G
                regs[rk][1] += float(F @ DS)
                srcs.append((F, G, DS))
            state = (regs, srcs)
    term._last_sparse = (key, state)
    return state


def sparse_curvature(term: DatasetTerm, state, values: dict, by_model: dict, steps: dict,
                     h_a: np.ndarray) -> dict:
    """:meth:`DatasetTerm.curvature` in the sparse form (``2 n/mu^2`` vanishes on bins without
    counts); adds the background's part to ``h_a`` in place.

    Parameters
    ----------
    term : DatasetTerm
        The dataset term.
    state : tuple
        The sparse state at these values (:func:`sparse_state`).
    values : dict
        Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
    by_model : dict
        The parameter keys to differentiate, by model name.
    steps : dict
        Inner difference steps by key (:func:`derivative_steps`).
    h_a : numpy.ndarray
        ``d2 stat/da_E^2`` of the far bins, per energy (added to in place).

    Returns
    -------
    dict
        ``{key: g2}`` of the sources' parameters.
    """
    regs, srcs = state
    qq = []
    for r, (mu_z, _) in zip(term.regions, regs):
        q = np.where(mu_z > TRUNCATION, 2.0 * r.n_z / np.maximum(mu_z, TRUNCATION) ** 2, 0.0)
        h_a[r.planes] += np.bincount(r.z_plane, q * r.bkg_z ** 2, minlength=r.planes.size)
        qq.append(q)
    out: dict = {}
    for (mname, rk, _, ev), (F, G, DS), (inside, sel) in zip(term.sources, srcs, term._selections()):
        if mname not in by_model:
            continue
        v = values[mname]
        q = qq[rk][inside]
        st = {n: steps[(m, c, n)] for m, c, n in by_model[mname] if (m, c, n) in steps}
        for m, c, n in by_model[mname]:
            if c == "spectral":
                dmu = ev.flux_derivative(v["spectral"], n, st) @ G
            else:
                cube = ev.dnpred(v["spectral"], v.get("spatial", {}), [], [n], st, reco=sel.reco)[("spatial", n)]
                dmu = cube.reshape(cube.shape[0], -1)[sel.plane, sel.pixel]
            out[(m, c, n)] = out.get((m, c, n), 0.0) + float(q @ dmu ** 2)
    return out


def sparse_grads(term: DatasetTerm, state, values: dict, by_model: dict, steps: dict,
                 g_a: np.ndarray) -> tuple[float, dict]:
    """The statistic of the regions and the sources' derivatives in the sparse form; adds
    ``dstat/da_E`` of the region bins to ``g_a`` in place.  A source with free spatial
    parameters is differentiated through :meth:`SourceEvaluator.backprop` on its cutout
    (``dstat/dmu = 2`` on the fit bins, ``2 (1 - n/mu)`` on those with counts).

    Parameters
    ----------
    term : DatasetTerm
        The dataset term.
    state : tuple
        The sparse state at these values (:func:`sparse_state`).
    values : dict
        Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
    by_model : dict
        The parameter keys to differentiate, by model name.
    steps : dict
        Inner difference steps by key (:func:`derivative_steps`).
    g_a : numpy.ndarray
        ``dstat/da_E`` of the far bins, per energy (added to in place).

    Returns
    -------
    tuple
        ``(stat of the regions, {key: dstat/dvalue})``.
    """
    regs, srcs = state
    total, qs = 0.0, []
    for r, (mu_z, tot) in zip(term.regions, regs):
        total += term._sparse_cash(r, mu_z, tot)
        q = np.where(mu_z > TRUNCATION, r.n_z / np.maximum(mu_z, TRUNCATION), 0.0)
        g_a[r.planes] += 2.0 * (r.bkg_sum - np.bincount(r.z_plane, q * r.bkg_z, minlength=r.planes.size))
        qs.append(q)
    grads: dict = {}
    for (mname, rk, (dy, dx), ev), (F, G, DS), (inside, sel) in zip(term.sources, srcs, term._selections()):
        if mname not in by_model:
            continue
        v = values[mname]
        q = qs[rk][inside]
        spec = [n for m, c, n in by_model[mname] if c == "spectral"]
        spat = [n for m, c, n in by_model[mname] if c == "spatial"]
        st = {n: steps[(m, c, n)] for m, c, n in by_model[mname] if (m, c, n) in steps}
        if spat:
            ny, nx = ev.shape
            r = term.regions[rk]
            w = 2.0 * r.fit_mask[:, dy:dy + ny, dx:dx + nx].astype(float)
            w.reshape(w.shape[0], -1)[sel.plane, sel.pixel] -= 2.0 * q
            res = ev.backprop(w, v["spectral"], v.get("spatial", {}), spec, spat, st, reco=sel.reco)
        else:
            res = ev.spectral_gradient(2.0 * (DS - G @ q), v["spectral"], spec, st)
        for (c, n), g in res.items():
            grads[(mname, c, n)] = grads.get((mname, c, n), 0.0) + g
    return total, grads


def sparse_hessian(term: DatasetTerm, values: dict, keys, steps: dict | None = None,
                   outer: dict | None = None) -> np.ndarray | None:
    """The statistic's second derivatives over ``keys`` (value units), or None where the sparse
    form does not hold: the body of :meth:`DatasetTerm.hessian` (see there).

    Parameters
    ----------
    term : DatasetTerm
        The dataset term.
    values : dict
        Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
    keys : sequence of tuple
        ``(model, component, name)`` of the parameters.
    steps, outer : dict, optional
        Inner and outer difference steps by key (value units).

    Returns
    -------
    numpy.ndarray or None
        ``(len(keys), len(keys))``; all NaN where :meth:`DatasetTerm.out_of_range`.
    """
    steps, outer = steps or {}, outer or {}
    keys = list(keys)
    a = term._bkg_factor(values)
    if term.out_of_range(values, a) or term._unsettled(values):
        return np.full((len(keys),) * 2, np.nan)
    state = term._sparse_state(a, values)
    if state is None:
        return None
    regs, srcs = state
    col = {k: i for i, k in enumerate(keys)}
    H = np.zeros((len(keys),) * 2)
    # ---- the background factor a_E(norm, tilt, ...): its first and second derivatives
    bkeys = [k for k in keys if k[0] == term.bkg_model] if term.bkg_model is not None else []
    da = {k: term._bkg_factor_derivative(a, values, k[2]) for k in bkeys}
    for k, d in da.items():
        if d is None:
            raise KeyError(f"background model {k[0]!r} has no parameter {k[2]!r}")
    d2a = {}
    for j, kb in enumerate(bkeys):
        hb = outer.get(kb) or 1e-4 * max(abs(values[kb[0]][kb[1]][kb[2]]), 1e-2)
        ups, downs = _shifted(values, kb, hb), _shifted(values, kb, -hb)
        a_up, a_down = term._bkg_factor(ups), term._bkg_factor(downs)
        for ka in bkeys[:j + 1]:
            d2a[(ka, kb)] = d2a[(kb, ka)] = (term._bkg_factor_derivative(a_up, ups, ka[2])
                                             - term._bkg_factor_derivative(a_down, downs, ka[2])) / (2 * hb)
    pos = a > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        gn_far = np.where(pos, 2.0 * term.far_sn / np.where(pos, a, 1.0) ** 2, 0.0)
        w_far = np.where(pos, 2.0 * (term.far_sb - term.far_sn / np.where(pos, a, 1.0)), 0.0)
    for ka in bkeys:
        for kb in bkeys:
            H[col[ka], col[kb]] += float(gn_far @ (da[ka] * da[kb]) + w_far @ d2a[(ka, kb)])
    # ---- the regions: Jacobian on the bins with counts, second-order parts
    jac = [{} for _ in term.regions]                 # per region: key -> dmu on its bins with counts
    qs = []
    for rk, (r, (mu_z, _)) in enumerate(zip(term.regions, regs)):
        ok = mu_z > TRUNCATION
        q = np.where(ok, r.n_z / np.where(ok, mu_z, 1.0), 0.0)
        qs.append(q)
        for kb in bkeys:
            jac[rk][kb] = da[kb][r.planes][r.z_plane] * r.bkg_z
        for ka in bkeys:
            for kb in bkeys:
                d2 = d2a[(ka, kb)][r.planes]
                H[col[ka], col[kb]] += 2.0 * float(d2 @ r.bkg_sum - np.sum(q * d2[r.z_plane] * r.bkg_z))
    for (mname, rk, (dy, dx), ev), (F, G, DS), (inside, sel) in zip(term.sources, srcs, term._selections()):
        mine = [k for k in keys if k[0] == mname]
        if not mine:
            continue
        v = values[mname]
        sv, pv = v["spectral"], v.get("spatial", {})
        spec = [n for m, c, n in mine if c == "spectral"]
        spat = [n for m, c, n in mine if c == "spatial"]
        st = {n: steps[(m, c, n)] for m, c, n in mine if (m, c, n) in steps}
        ot = {n: outer[(m, c, n)] for m, c, n in mine if (m, c, n) in outer}
        nz = qs[rk].size
        for n in spec:
            d = np.zeros(nz)
            d[inside] = ev.flux_derivative(sv, n, st) @ G
            jac[rk][(mname, "spectral", n)] = jac[rk].get((mname, "spectral", n), 0.0) + d
        if spat:
            cubes = ev.dnpred(sv, pv, [], spat, st, reco=sel.reco)
            for n in spat:
                c = cubes[("spatial", n)]
                d = np.zeros(nz)
                d[inside] = c.reshape(c.shape[0], -1)[sel.plane, sel.pixel]
                jac[rk][(mname, "spatial", n)] = jac[rk].get((mname, "spatial", n), 0.0) + d
        ny, nx = ev.shape
        w = 2.0 * term.regions[rk].fit_mask[:, dy:dy + ny, dx:dx + nx].astype(float)
        w.reshape(w.shape[0], -1)[sel.plane, sel.pixel] -= 2.0 * qs[rk][inside]
        for ((c1, n1), (c2, n2)), val in ev.second_order(w, sv, pv, spec, spat, st, ot, reco=sel.reco).items():
            H[col[(mname, c1, n1)], col[(mname, c2, n2)]] += val
    for rk, (r, (mu_z, _)) in enumerate(zip(term.regions, regs)):
        if not jac[rk]:
            continue
        ok = mu_z > TRUNCATION
        q2 = np.where(ok, 2.0 * r.n_z / np.where(ok, mu_z, 1.0) ** 2, 0.0)
        ks = list(jac[rk])
        J = np.stack([np.broadcast_to(jac[rk][k], mu_z.shape) for k in ks], axis=1)
        idx = [col[k] for k in ks]
        H[np.ix_(idx, idx)] += J.T @ (q2[:, None] * J)
    return 0.5 * (H + H.T)
