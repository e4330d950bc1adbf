"""One dataset's term of the likelihood: :class:`DatasetTerm` (built once, evaluated for any
parameter values) and its regions (rectangles around overlapping source cutouts).  The sparse
form's evaluation is in :mod:`gcxr.likelihood.sparse`.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np
import xarray as xr

from ..datasets import combined_mask
from ..geom import EnergyAxis
from ..contract import geom_of
from ..npred import OutsideDataset, SourceEvaluator, SparseSelection
from ..stats import TRUNCATION, cash
from .sparse import sparse_curvature, sparse_grads, sparse_hessian, sparse_state


@dataclass
class _Region:
    """A rectangle around a group of overlapping source cutouts, kept as what a call needs: the
    reco-energy planes with fit bins, the background on them, and the fit bins' flat indices and
    counts (the full counts, background and mask cubes are not kept: they would only travel)."""

    ys: slice
    xs: slice
    counts: InitVar[np.ndarray]          # (E, ny, nx)
    background: InitVar[np.ndarray]
    mask: InitVar[np.ndarray]            # bool

    def __post_init__(self, counts, background, mask):
        # reco-energy planes with fit bins: npred is computed on these only
        self.planes = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
        self.background_fit_planes = np.ascontiguousarray(background[self.planes], dtype=float)
        self.index = np.flatnonzero(mask[self.planes])           # fit bins, flat indices into those planes
        self.n_fit = np.asarray(counts[self.planes], float).ravel()[self.index]   # their counts
        # the sparse form (see DatasetTerm): fit bins with counts, and per-plane sums over the fit bins
        fit_mask = np.ascontiguousarray(mask[self.planes], dtype=bool)
        self.fit_mask = fit_mask
        has = self.n_fit > 0
        self.z = self.index[has]
        self.n_z = self.n_fit[has]
        ny, nx = fit_mask.shape[1:]
        self.z_plane, rest = np.divmod(self.z, ny * nx)
        self.z_y, self.z_x = np.divmod(rest, nx)
        self.bkg_z = self.background_fit_planes.ravel()[self.z]
        self.bkg_sum = np.where(fit_mask, self.background_fit_planes, 0.0).sum(axis=(1, 2))

    @property
    def n_bins(self) -> int:
        return int(self.index.size)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.background_fit_planes, self.index, self.n_fit, self.fit_mask, self.z,
                                      self.n_z, self.z_plane, self.z_y, self.z_x, self.bkg_z, self.bkg_sum))

    def selection(self, dy: int, dx: int, shape: tuple[int, int]) -> tuple[np.ndarray, SparseSelection]:
        """The fit bins with counts inside a source cutout at offset ``(dy, dx)`` (their positions in
        ``z``) and the :class:`~gcxr.npred.SparseSelection` that reads them from the cutout."""
        ny, nx = shape
        inside = np.flatnonzero((self.z_y >= dy) & (self.z_y < dy + ny) & (self.z_x >= dx) & (self.z_x < dx + nx))
        pixel = (self.z_y[inside] - dy) * nx + (self.z_x[inside] - dx)
        m = self.fit_mask[:, dy:dy + ny, dx:dx + nx].reshape(self.fit_mask.shape[0], -1)
        if m.shape[0] == 0 or np.all(m == m[:1]):
            keep = np.flatnonzero(m[0]) if m.shape[0] else np.zeros(0, int)
            sel = SparseSelection(self.planes, pixel, self.z_plane[inside], mask_uniform=keep)
        else:
            sel = SparseSelection(self.planes, pixel, self.z_plane[inside], mask=np.ascontiguousarray(m))
        return inside, sel

    def fit_values(self, mu: np.ndarray) -> np.ndarray:
        """``max(mu, TRUNCATION)`` on the fit bins (a new array)."""
        out = np.take(mu.reshape(-1), self.index)
        return np.maximum(out, TRUNCATION, out=out)

    def cash(self, mu_t: np.ndarray) -> float:
        """Cash statistic of the fit bins from their floored predicted counts."""
        return 2.0 * float(mu_t.sum() - self.n_fit @ np.log(mu_t))

    def dstat_dmu(self, mu_t: np.ndarray, shape) -> np.ndarray:
        """``2 (1 - n/mu)`` on the fit bins (0 where mu is floored), 0 elsewhere, in ``shape``."""
        w_fit = np.divide(self.n_fit, mu_t)
        np.subtract(1.0, w_fit, out=w_fit)
        w_fit *= 2.0
        floored = mu_t <= TRUNCATION
        if floored.any():
            w_fit[floored] = 0.0
        w = np.zeros(int(np.prod(shape)))
        w[self.index] = w_fit
        return w.reshape(shape)


@dataclass
class DatasetTerm:
    """One dataset's contribution to the Cash statistic (see module docstring)."""

    name: str
    energy_centers: np.ndarray
    bkg_model: str | None
    regions: list
    sources: list               # (model name, region index, (dy, dx) offset in region, SourceEvaluator)
    far_sb: np.ndarray
    far_sn: np.ndarray
    far_snlnb: np.ndarray
    far_const: float
    n_bins: int = 0
    nbytes: int = field(default=0)
    sparse: bool = True        # use the sparse form where it is exact (see _sparse_state); False: always dense
    _last_mu: tuple | None = field(default=None, repr=False, compare=False)   # (values key, [mu per region])
    _last_sparse: tuple | None = field(default=None, repr=False, compare=False)
    _sparse_sel: list | None = field(default=None, repr=False, compare=False)

    def __getstate__(self):                                # the caches stay behind when shipped
        return dict(self.__dict__, _last_mu=None, _last_sparse=None, _sparse_sel=None)

    @classmethod
    def build(cls, ds: xr.Dataset, models, name: str | None = None, point_weights: str = "tent") -> "DatasetTerm":
        """The term of one dataset: its sources' evaluators on cutout regions and per-energy sums elsewhere.

        Parameters
        ----------
        ds : xarray.Dataset
            A reduced dataset.
        models : Models
            The models.
        name : str, optional
            The dataset's name (default: its ``name`` attribute).
        point_weights : {'tent', 'cubic'}
            Rendering of point sources.

        Returns
        -------
        DatasetTerm
            The term.
        """
        name = name or ds.attrs.get("name", "dataset")
        geom, irf = geom_of(ds)
        mask = np.broadcast_to(combined_mask(ds).transpose("energy", "lat", "lon").values, ds["counts"].shape)
        counts = ds["counts"].values          # kept in their stored dtype; float64 only where needed
        # no background cube (a signal-only dataset): npred is the sources alone
        bkg = ds["background"].values if "background" in ds else np.zeros(ds["counts"].shape, np.float32)
        evs = []
        for m in models.sky_models:
            if m.applies_to(name):
                try:
                    evs.append((m.name, SourceEvaluator.build(m, ds, geom, irf, point_weights=point_weights)))
                except OutsideDataset:
                    continue            # its cutout misses this dataset: it predicts no counts here
        # group overlapping cutouts into rectangular regions
        boxes = [[ev.cut[0].start, ev.cut[0].stop, ev.cut[1].start, ev.cut[1].stop] for _, ev in evs]
        merged = True
        while merged:
            merged = False
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    if a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]:
                        boxes[i] = [min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])]
                        boxes.pop(j)
                        merged = True
                        break
                if merged:
                    break
        regions = []
        near = np.zeros(mask.shape[1:], bool)
        for y0, y1, x0, x1 in boxes:
            sl = (slice(None), slice(y0, y1), slice(x0, x1))
            regions.append(_Region(slice(y0, y1), slice(x0, x1), counts[sl], bkg[sl], mask[sl]))
            near[y0:y1, x0:x1] = True
        sources = []
        for mname, ev in evs:
            for k, r in enumerate(regions):
                if r.ys.start <= ev.cut[0].start and ev.cut[0].stop <= r.ys.stop and \
                        r.xs.start <= ev.cut[1].start and ev.cut[1].stop <= r.xs.stop:
                    sources.append((mname, k, (ev.cut[0].start - r.ys.start, ev.cut[1].start - r.xs.start), ev))
                    break
        # far-bin sums, one energy plane at a time (no full-cube float64 temporaries)
        nE = counts.shape[0]
        far_sb, far_sn, far_snlnb = np.zeros(nE), np.zeros(nE), np.zeros(nE)
        far_const = 0.0
        for k in range(nE):
            far = mask[k] & ~near
            b = bkg[k][far].astype(float)
            n = counts[k][far].astype(float)
            pos = b > 0
            far_sb[k] = b[pos].sum()
            far_sn[k] = n[pos].sum()
            npos = pos & (n > 0)
            far_snlnb[k] = float(np.sum(n[npos] * np.log(b[npos])))
            if (~pos).any():
                far_const += float(cash(n[~pos], np.zeros(int((~pos).sum()))).sum())
        bm = models.background_model(name)
        energy = EnergyAxis.from_coord(ds, "energy")
        term = cls(name, energy.centers, bm.name if bm is not None else None, regions, sources,
                   far_sb, far_sn, far_snlnb, far_const, n_bins=int(mask.sum()))
        term.nbytes = term._nbytes()
        return term

    def _nbytes(self) -> int:
        return sum(r.nbytes for r in self.regions) + sum(
            ev.exposure_cut.nbytes + ev.kernel.nbytes for *_, ev in self.sources)

    def split(self) -> list["DatasetTerm"]:
        """Spatial tiles: one term per region (a rectangle around a group of overlapping sources).

        The tiles' statistics add up to this term's (the far-bin sums go with the first
        tile), so tiles of one dataset can be evaluated on different workers.
        """
        if len(self.regions) <= 1:
            return [self]
        out = []
        zeros = np.zeros_like(self.far_sb)
        n_far = self.n_bins - sum(r.n_bins for r in self.regions)
        for k, r in enumerate(self.regions):
            first = k == 0
            t = DatasetTerm(f"{self.name}[tile {k}]", self.energy_centers, self.bkg_model, [r],
                            [(m, 0, off, ev) for m, rk, off, ev in self.sources if rk == k],
                            self.far_sb if first else zeros, self.far_sn if first else zeros,
                            self.far_snlnb if first else zeros, self.far_const if first else 0.0,
                            n_bins=r.n_bins + (n_far if first else 0), sparse=self.sparse)
            t.nbytes = t._nbytes()
            out.append(t)
        return out

    def _bkg_factor_derivative(self, a: np.ndarray, values: dict, name: str) -> np.ndarray | None:
        """``da_E/dv`` of the background factor ``a_E = norm (E/ref)^-tilt`` in one of its
        parameters (None for a name it does not have)."""
        v = values[self.bkg_model]["spectral"]
        ref, tilt = v.get("reference", 1.0), v.get("tilt", 0.0)
        if name == "norm":
            return (self.energy_centers / ref) ** (-tilt)
        if name == "tilt":
            return -a * np.log(self.energy_centers / ref)
        if name == "reference":
            return a * tilt / ref
        return None

    def _bkg_factor(self, values: dict) -> np.ndarray:
        if self.bkg_model is None:
            return np.ones_like(self.energy_centers)
        v = values[self.bkg_model]["spectral"]
        return v["norm"] * (self.energy_centers / v.get("reference", 1.0)) ** (-v.get("tilt", 0.0))

    def out_of_range(self, values: dict, a: np.ndarray | None = None) -> bool:
        """Whether the predicted counts cannot be represented at these values: the background factor
        is not finite, or a source's flux is not finite in a true-energy bin that carries flux on its
        cutout (an overflow far from any sensible model, such as the power law of index 500 that
        MIGRAD may probe from a bad start).  There the statistic is ``+inf`` and its derivatives NaN
        (undefined): nothing is folded, so no NaN flows through npred.

        Parameters
        ----------
        values : dict
            Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
        a : numpy.ndarray, optional
            The background factor at these values (computed if not given).

        Returns
        -------
        bool
            True where the model is out of the representable range.
        """
        if a is None:
            a = self._bkg_factor(values)
        if not np.all(np.isfinite(a)):
            return True
        return not all(ev.flux_finite(values[m]["spectral"], values[m].get("spatial", {}))
                       for m, *_, ev in self.sources)

    def _unsettled(self, values: dict) -> set:
        """Sources whose flux is not finite in some true-energy bin, though in none that reaches the
        data (so they predict no counts here): the statistic is defined, its derivatives with respect
        to their parameters are not (0 x inf) and are given as NaN."""
        return {m for m, *_, ev in self.sources if not np.all(np.isfinite(ev.flux(values[m]["spectral"])))}

    def _values_key(self, values: dict) -> tuple:
        names = [m for m, *_ in self.sources] + ([self.bkg_model] if self.bkg_model else [])
        return tuple((m, c, tuple(sorted(v.items()))) for m in names for c, v in sorted(values[m].items()))

    # ---- the sparse form (mu on the bins with counts and per-plane sums only, where mu >= 0 on every
    # fit bin): see gcxr.likelihood.sparse, whose functions these methods delegate to
    def _selections(self) -> list:
        if self._sparse_sel is None:
            self._sparse_sel = [self.regions[rk].selection(dy, dx, ev.shape) for _, rk, (dy, dx), ev in self.sources]
        return self._sparse_sel

    def _sparse_state(self, a: np.ndarray, values: dict):
        """``(regions, sources)`` of the sparse form at these values, or None where it is not exact
        (:func:`~gcxr.likelihood.sparse.sparse_state`); remembered for the last parameter values."""
        return sparse_state(self, a, values)

    @staticmethod
    def _sparse_cash(r: _Region, mu_z: np.ndarray, total: float) -> float:
        return 2.0 * (total - float(r.n_z @ np.log(np.maximum(mu_z, TRUNCATION))))

    def _mus(self, a: np.ndarray, values: dict) -> list[np.ndarray]:
        """Predicted counts of every region (read-only), remembered for the last parameter values:
        MIGRAD asks for the statistic, the gradient and the curvature at the same point."""
        key = self._values_key(values)
        if self._last_mu is None or self._last_mu[0] != key:
            self._last_mu = (key, [self._mu(k, r, a, values) for k, r in enumerate(self.regions)])
        return self._last_mu[1]

    def _mu(self, k: int, r: _Region, a: np.ndarray, values: dict) -> np.ndarray:
        """Predicted counts on region k, on its reco-energy planes with fit bins: background x its
        spectral factor + the sources."""
        mu = r.background_fit_planes * a[r.planes, None, None]
        for mname, rk, (dy, dx), ev in self.sources:
            if rk != k:
                continue
            v = values[mname]
            ny, nx = ev.shape
            mu[:, dy:dy + ny, dx:dx + nx] += ev.npred(v["spectral"], v.get("spatial", {}), reco=r.planes)
        return mu

    def _far(self, a: np.ndarray) -> float:
        pos = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            far = np.where(pos, 2.0 * (a * self.far_sb - self.far_sn * np.log(np.where(pos, a, 1.0)) - self.far_snlnb),
                           2.0 * (-self.far_sn * np.log(TRUNCATION)))
        return float(far.sum()) + self.far_const

    def stat(self, values: dict) -> float:
        """Cash statistic of this dataset for per-model parameter values.

        Parameters
        ----------
        values : dict
            Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).

        Returns
        -------
        float
            The statistic.
        """
        a = self._bkg_factor(values)
        if self.out_of_range(values, a):
            return np.inf
        total = self._far(a)
        state = self._sparse_state(a, values)
        if state is not None:
            return total + sum(self._sparse_cash(r, mu_z, tot) for r, (mu_z, tot) in zip(self.regions, state[0]))
        for r, mu in zip(self.regions, self._mus(a, values)):
            total += r.cash(r.fit_values(mu))
        return total

    def curvature(self, values: dict, keys, steps: dict | None = None) -> dict:
        """Gauss-Newton diagonal of the statistic's second derivatives, ``2 sum n/mu^2 (dmu/dv)^2``
        over the fit bins (exact for the far bins), for ``keys`` this term depends on: the
        curvature with which MIGRAD starts and rescales its steps (``Minuit(g2=...)``), in place
        of numerical second derivatives that cost two evaluations of every dataset per parameter.

        Parameters
        ----------
        values : dict
            Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
        keys : sequence of tuple
            ``(model, component, name)`` of the parameters to differentiate.
        steps : dict, optional
            Inner difference steps (:func:`derivative_steps`).

        Returns
        -------
        dict
            ``{key: g2}``.
        """
        steps = steps or {}
        a = self._bkg_factor(values)
        if self.out_of_range(values, a) or self._unsettled(values):
            return {k: np.nan for k in keys}
        pos = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            h_a = np.where(pos, 2.0 * self.far_sn / np.where(pos, a, 1.0) ** 2, 0.0)      # d2 stat/da_E^2
        by_model: dict = {}
        for key in keys:
            by_model.setdefault(key[0], []).append(key)
        state = self._sparse_state(a, values)
        out: dict = self._sparse_curvature(state, values, by_model, steps, h_a) if state is not None else {}
        for k, (r, mu) in enumerate(zip(self.regions, self._mus(a, values) if state is None else [])):
            mu_fit = mu.ravel()[r.index]
            q = np.zeros(mu.size)
            q[r.index] = np.where(mu_fit > TRUNCATION, 2.0 * r.n_fit / np.maximum(mu_fit, TRUNCATION) ** 2, 0.0)
            q = q.reshape(mu.shape)
            h_a[r.planes] += np.einsum("eij,eij,eij->e", q, r.background_fit_planes, r.background_fit_planes)
            for mname, rk, (dy, dx), ev in self.sources:
                if rk != k or mname not in by_model:
                    continue
                v = values[mname]
                ny, nx = ev.shape
                qc = q[:, dy:dy + ny, dx:dx + nx]
                st = {n: steps[(m, c, n)] for m, c, n in by_model[mname] if (m, c, n) in steps}
                for m, c, n in by_model[mname]:
                    spec, spat = ([n], []) if c == "spectral" else ([], [n])
                    for _, d in ev.dnpred(v["spectral"], v.get("spatial", {}), spec, spat, st, reco=r.planes).items():
                        out[(m, c, n)] = out.get((m, c, n), 0.0) + float(np.einsum("eij,eij,eij->", qc, d, d))
        if self.bkg_model is not None and self.bkg_model in by_model:
            for m, c, n in by_model[self.bkg_model]:
                da = self._bkg_factor_derivative(a, values, n)
                if da is not None:
                    out[(m, c, n)] = float(h_a @ da ** 2)
        return out

    def hessian(self, values: dict, keys, steps: dict | None = None, outer: dict | None = None) -> np.ndarray | None:
        """The statistic's second derivatives over ``keys`` (value units), or None where the sparse
        form does not hold (the caller then differences the gradient).

        ``H = sum_b 2 n_b/mu_b^2 dmu_b dmu_b^T + sum_b w_b d2mu_b`` with ``w = dstat/dmu = 2 (1 -
        n/mu)``.  The first sum runs over the bins with counts only (the Jacobian there: flux
        derivatives through the sparse parts, one PSF folding per spatial parameter); the second
        is the background factor's second derivatives on per-plane sums, and for each source
        :meth:`~gcxr.npred.SourceEvaluator.second_order` (one correlation per true-energy plane,
        then images and bin fluxes only).  A central difference of the gradient would instead
        refold every source and correlate it back twice per parameter.  ``outer`` (by key) are the
        steps of the differences inside (flux derivatives, image derivatives, the background
        factor's derivative), ``steps`` the inner ones.

        Parameters
        ----------
        values : dict
            Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
        keys : sequence of tuple
            ``(model, component, name)`` of the parameters.
        steps, outer : dict, optional
            Inner and outer difference steps by key (value units).

        Returns
        -------
        numpy.ndarray or None
            ``(len(keys), len(keys))``; all NaN where :meth:`out_of_range`.
        """
        return sparse_hessian(self, values, keys, steps, outer)

    def _sparse_curvature(self, state, values: dict, by_model: dict, steps: dict, h_a: np.ndarray) -> dict:
        """:meth:`curvature` in the sparse form (``2 n/mu^2`` vanishes on bins without counts);
        adds the background's part to ``h_a`` in place."""
        return sparse_curvature(self, state, values, by_model, steps, h_a)

    def _sparse_grads(self, state, values: dict, by_model: dict, steps: dict, g_a: np.ndarray) -> tuple[float, dict]:
        """The statistic of the regions and the sources' derivatives in the sparse form; adds
        ``dstat/da_E`` of the region bins to ``g_a`` in place (:func:`~gcxr.likelihood.sparse.sparse_grads`)."""
        return sparse_grads(self, state, values, by_model, steps, g_a)

    def value_and_grad(self, values: dict, keys, steps: dict | None = None) -> tuple[float, dict]:
        """The statistic and its derivatives with respect to ``keys`` (``(model, component,
        name)`` triples; those this term does not depend on are left out of the result).

        The derivatives follow the chain rule through npred: ``dstat/dmu = 2 (1 - n/mu)`` on the
        fit bins (0 where mu is floored), then the background factor and each source's
        :meth:`~gcxr.npred.SourceEvaluator.backprop`; the far bins are differentiated through
        their per-energy sums.

        Parameters
        ----------
        values : dict
            Parameter values by model and component (:meth:`ParameterSpace.values_by_model`).
        keys : sequence of tuple
            ``(model, component, name)`` of the parameters to differentiate.
        steps : dict, optional
            Inner difference steps (:func:`derivative_steps`).

        Returns
        -------
        tuple
            ``(stat, {key: dstat/dvalue})``.
        """
        steps = steps or {}
        a = self._bkg_factor(values)
        if self.out_of_range(values, a):
            return np.inf, {k: np.nan for k in keys}
        total = self._far(a)
        pos = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            g_a = np.where(pos, 2.0 * (self.far_sb - self.far_sn / np.where(pos, a, 1.0)), 0.0)   # dstat/da_E
        by_model: dict = {}
        for key in keys:
            by_model.setdefault(key[0], []).append(key)
        grads: dict = {}
        unsettled = self._unsettled(values)
        for mname in unsettled:                  # derivatives of 0 x inf: undefined (the fit steps back)
            grads.update({k: np.nan for k in by_model.get(mname, [])})
        state = self._sparse_state(a, values)
        if state is not None:
            stat_regions, grads = self._sparse_grads(state, values, by_model, steps, g_a)
            total += stat_regions
        for k, (r, mu) in enumerate(zip(self.regions, self._mus(a, values) if state is None else [])):
            mu_t = r.fit_values(mu)
            total += r.cash(mu_t)
            w = r.dstat_dmu(mu_t, mu.shape)
            g_a[r.planes] += np.einsum("eij,eij->e", w, r.background_fit_planes)
            for mname, rk, (dy, dx), ev in self.sources:
                if rk != k or mname not in by_model or mname in unsettled:
                    continue
                v = values[mname]
                spec = [n for m, c, n in by_model[mname] if c == "spectral"]
                spat = [n for m, c, n in by_model[mname] if c == "spatial"]
                ny, nx = ev.shape
                st = {n: steps[(m, c, n)] for m, c, n in by_model[mname] if (m, c, n) in steps}
                for (c, n), g in ev.backprop(w[:, dy:dy + ny, dx:dx + nx], v["spectral"], v.get("spatial", {}),
                                             spec, spat, st, reco=r.planes).items():
                    grads[(mname, c, n)] = grads.get((mname, c, n), 0.0) + g
        if self.bkg_model is not None and self.bkg_model in by_model:
            for m, c, n in by_model[self.bkg_model]:
                da = self._bkg_factor_derivative(a, values, n)
                if da is None:
                    raise KeyError(f"background model {m!r} has no parameter {n!r}")
                grads[(m, c, n)] = float(g_a @ da)
        return total, grads
