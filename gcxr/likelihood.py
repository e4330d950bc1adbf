"""The Cash likelihood as a pure function of a flat parameter vector.

A :class:`ParameterSpace` maps the free parameters of a :class:`~gcxr.models.Models`
to a vector (with per-parameter scales for the minimiser).  A
:class:`DatasetTerm` holds one dataset's fixed arrays, split in two:

* *near* bins, inside the cutouts of the sources, evaluated explicitly:
  ``mu = B a_E + sum_s npred_s``, ``stat = 2 sum (mu - n ln mu)``;
* *far* bins, which no source reaches, where ``mu = B a_E`` with
  ``a_E = norm (E_c/E_ref)^-tilt``, so their statistic needs only per-energy sums:
  ``2 sum_E [a_E SB_E - SN_E ln a_E - SNlnB_E]`` with ``SB = sum B``,
  ``SN = sum n`` and ``SNlnB = sum n ln B`` over the far bins of the fit mask.

A term is built once (numpy arrays and small value objects only, so it can be
pickled to a dask worker) and evaluated for any parameter vector; what it keeps
between calls are caches (each source's folded parts by spatial values, the
predicted counts at the last values), never state that changes a result.
Where the predicted counts cannot be represented (a source's bin flux or the
background factor overflows: MIGRAD probing e.g. a power law of index 500), the
statistic is ``+inf`` and its derivatives are NaN (:meth:`DatasetTerm.out_of_range`),
so that no NaN is computed silently through npred; :func:`gcxr.fit.fit` steps back
from such points.
:meth:`DatasetTerm.value_and_grad` adds the analytic gradient (``dstat/dmu =
2 (1 - n/mu)`` through npred, :meth:`gcxr.npred.SourceEvaluator.backprop`) and
:meth:`DatasetTerm.curvature` the Gauss-Newton diagonal.  :class:`JointLikelihood`
sums the terms; :class:`gcxr.distributed.DistributedLikelihood` does the same
on a cluster.
"""
from __future__ import annotations

from dataclasses import InitVar, dataclass, field

import numpy as np
import xarray as xr

from .datasets import combined_mask
from .geom import EnergyAxis
from .contract import geom_of
from .npred import OutsideDataset, SourceEvaluator, SparseSelection
from .stats import TRUNCATION, cash

__all__ = ["ParameterSpace", "DatasetTerm", "JointLikelihood", "build_terms", "total_stat", "term_hessian",
           "assemble_hessian", "term_parameters", "term_gradient", "term_value_and_grad", "assemble_gradient",
           "derivative_steps", "term_curvature", "check_models_reach"]

_ANGLES = {"lon_0", "lat_0"}
ANGLE_SCALE = 0.01     # deg: position parameters are fitted as offsets from the start in units of 0.01 deg


@dataclass
class ParameterSpace:
    """Free parameters of a model collection as a flat vector.

    Minuit sees factors ``f = (v - offset) / scale``: positions are offsets from
    their start value in units of 0.01 deg (so a source at RA 228 deg needs no
    bounds), other parameters are divided by the power of ten below their
    start value.
    """

    keys: list[tuple[str, str, str]]          # (model name, component, parameter name)
    start: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    frozen: dict                              # model -> component -> {name: value} (all parameters)
    units: list[str]
    limits: list[tuple[float, float]]

    @classmethod
    def from_models(cls, models) -> "ParameterSpace":
        """The free parameters of ``models`` with their start values, scales (design record 5) and limits.

        Parameters
        ----------
        models : Models
            The models.

        Returns
        -------
        ParameterSpace
            The space.
        """
        keys, start, scale, offset, units, limits = [], [], [], [], [], []
        frozen: dict = {}
        for m in models:
            comps = [("spectral", m.spectral_model)]
            if getattr(m, "spatial_model", None) is not None:
                comps.append(("spatial", m.spatial_model))
            for comp, sub in comps:
                vals = frozen.setdefault(m.name, {}).setdefault(comp, {})
                for p in sub.parameters:
                    vals[p.name] = float(p.value)
                    if p.frozen:
                        continue
                    keys.append((m.name, comp, p.name))
                    v = float(p.value)
                    if p.name in _ANGLES and comp == "spatial":
                        s, o = ANGLE_SCALE, v
                    else:
                        s, o = (10.0 ** np.floor(np.log10(abs(v))) if v != 0 else 1.0), 0.0
                    start.append(v)
                    scale.append(s)
                    offset.append(o)
                    units.append(p.unit)
                    limits.append((float(p.min), float(p.max)))
        return cls(keys, np.array(start), np.array(scale), np.array(offset), frozen, units, limits)

    @property
    def names(self) -> list[str]:
        """``<model>.<name>`` of each free parameter."""
        return [f"{m}.{n}" for m, _, n in self.keys]

    def to_factors(self, values: np.ndarray) -> np.ndarray:
        """Values to the factors MIGRAD sees, ``(value - offset) / scale``.

        Parameters
        ----------
        values : numpy.ndarray
            Values of the free parameters, in order.

        Returns
        -------
        numpy.ndarray
            The factors.
        """
        return (np.asarray(values, float) - self.offset) / self.scale

    def to_values(self, factors: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_factors`.

        Parameters
        ----------
        factors : numpy.ndarray
            Factors.

        Returns
        -------
        numpy.ndarray
            The values.
        """
        return np.asarray(factors, float) * self.scale + self.offset

    def factor_limits(self) -> list[tuple[float | None, float | None]]:
        """The parameters' limits in factor units, None where unbounded."""
        out = []
        for (lo, hi), s, o in zip(self.limits, self.scale, self.offset):
            a = None if not np.isfinite(lo) else (lo - o) / s
            b = None if not np.isfinite(hi) else (hi - o) / s
            out.append((a, b))
        return out

    def values_by_model(self, values: np.ndarray) -> dict:
        """All parameter values (frozen ones included) by model and component.

        Parameters
        ----------
        values : numpy.ndarray
            Values of the free parameters, in order.

        Returns
        -------
        dict
            ``{model: {component: {name: value}}}``.
        """
        out = {m: {c: dict(v) for c, v in comps.items()} for m, comps in self.frozen.items()}
        for (m, c, n), v in zip(self.keys, values):
            out[m][c][n] = float(v)
        return out


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
        bkg = ds["background"].values
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

    # ---- the sparse form
    # Most fit bins of a fine-binned cube have no counts.  Where mu >= 0 on every fit bin, the
    # statistic is 2 (sum mu - sum_{n>0} n ln mu): the first sum is per-plane sums of the folded
    # parts (background sums x a_E, F . DS per source), the second needs mu only on the bins with
    # counts (F . G per source, :meth:`SourceEvaluator.sparse_parts`).  A call then costs the bins
    # with counts, not the map; the same holds for the gradient of spectral and background
    # parameters, and for the curvature.  mu >= 0 holds when the background factors and every
    # source's bin fluxes are >= 0 (the folded spatial parts are); otherwise mu may be floored
    # on bins without counts and the dense form is used.
    def _selections(self) -> list:
        if self._sparse_sel is None:
            self._sparse_sel = [self.regions[rk].selection(dy, dx, ev.shape) for _, rk, (dy, dx), ev in self.sources]
        return self._sparse_sel

    def _sparse_state(self, a: np.ndarray, values: dict):
        """``(regions, sources)`` of the sparse form at these values, or None where it is not exact:
        per region ``[mu on the bins with counts, sum of mu over the fit bins]``, per source
        ``(F, G, DS)``.  Remembered for the last parameter values, like :meth:`_mus`."""
        key = self._values_key(values)
        if self._last_sparse is not None and self._last_sparse[0] == key:
            return self._last_sparse[1]
        state = None
        if self.sparse and np.all(a >= 0):
            fluxes = [ev.flux(values[m]["spectral"]) for m, *_, ev in self.sources]
            if all(np.all(F >= 0) and np.all(np.isfinite(F)) for F in fluxes):
                regs = []
                for r in self.regions:
                    ap = a[r.planes]
                    regs.append([ap[r.z_plane] * r.bkg_z, float(ap @ r.bkg_sum)])
                srcs = []
                for (m, rk, _, ev), F, (inside, sel) in zip(self.sources, fluxes, self._selections()):
                    G, DS = ev.sparse_parts(values[m].get("spatial", {}), sel)
                    regs[rk][0][inside] += F @ G
                    regs[rk][1] += float(F @ DS)
                    srcs.append((F, G, DS))
                state = (regs, srcs)
        self._last_sparse = (key, state)
        return state

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
        steps, outer = steps or {}, outer or {}
        keys = list(keys)
        a = self._bkg_factor(values)
        if self.out_of_range(values, a) or self._unsettled(values):
            return np.full((len(keys),) * 2, np.nan)
        state = self._sparse_state(a, values)
        if state is None:
            return None
        regs, srcs = state
        col = {k: i for i, k in enumerate(keys)}
        H = np.zeros((len(keys),) * 2)
        # ---- the background factor a_E(norm, tilt, ...): its first and second derivatives
        bkeys = [k for k in keys if k[0] == self.bkg_model] if self.bkg_model is not None else []
        da = {k: self._bkg_factor_derivative(a, values, k[2]) for k in bkeys}
        for k, d in da.items():
            if d is None:
                raise KeyError(f"background model {k[0]!r} has no parameter {k[2]!r}")
        d2a = {}
        for j, kb in enumerate(bkeys):
            hb = outer.get(kb) or 1e-4 * max(abs(values[kb[0]][kb[1]][kb[2]]), 1e-2)
            ups, downs = _shifted(values, kb, hb), _shifted(values, kb, -hb)
            a_up, a_down = self._bkg_factor(ups), self._bkg_factor(downs)
            for ka in bkeys[:j + 1]:
                d2a[(ka, kb)] = d2a[(kb, ka)] = (self._bkg_factor_derivative(a_up, ups, ka[2])
                                                 - self._bkg_factor_derivative(a_down, downs, ka[2])) / (2 * hb)
        pos = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            gn_far = np.where(pos, 2.0 * self.far_sn / np.where(pos, a, 1.0) ** 2, 0.0)
            w_far = np.where(pos, 2.0 * (self.far_sb - self.far_sn / np.where(pos, a, 1.0)), 0.0)
        for ka in bkeys:
            for kb in bkeys:
                H[col[ka], col[kb]] += float(gn_far @ (da[ka] * da[kb]) + w_far @ d2a[(ka, kb)])
        # ---- the regions: Jacobian on the bins with counts, second-order parts
        jac = [{} for _ in self.regions]                 # per region: key -> dmu on its bins with counts
        qs = []
        for rk, (r, (mu_z, _)) in enumerate(zip(self.regions, regs)):
            ok = mu_z > TRUNCATION
            q = np.where(ok, r.n_z / np.where(ok, mu_z, 1.0), 0.0)
            qs.append(q)
            for kb in bkeys:
                jac[rk][kb] = da[kb][r.planes][r.z_plane] * r.bkg_z
            for ka in bkeys:
                for kb in bkeys:
                    d2 = d2a[(ka, kb)][r.planes]
                    H[col[ka], col[kb]] += 2.0 * float(d2 @ r.bkg_sum - np.sum(q * d2[r.z_plane] * r.bkg_z))
        for (mname, rk, (dy, dx), ev), (F, G, DS), (inside, sel) in zip(self.sources, srcs, self._selections()):
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
            w = 2.0 * self.regions[rk].fit_mask[:, dy:dy + ny, dx:dx + nx].astype(float)
            w.reshape(w.shape[0], -1)[sel.plane, sel.pixel] -= 2.0 * qs[rk][inside]
            for ((c1, n1), (c2, n2)), val in ev.second_order(w, sv, pv, spec, spat, st, ot, reco=sel.reco).items():
                H[col[(mname, c1, n1)], col[(mname, c2, n2)]] += val
        for rk, (r, (mu_z, _)) in enumerate(zip(self.regions, regs)):
            if not jac[rk]:
                continue
            ok = mu_z > TRUNCATION
            q2 = np.where(ok, 2.0 * r.n_z / np.where(ok, mu_z, 1.0) ** 2, 0.0)
            ks = list(jac[rk])
            J = np.stack([np.broadcast_to(jac[rk][k], mu_z.shape) for k in ks], axis=1)
            idx = [col[k] for k in ks]
            H[np.ix_(idx, idx)] += J.T @ (q2[:, None] * J)
        return 0.5 * (H + H.T)

    def _sparse_curvature(self, state, values: dict, by_model: dict, steps: dict, h_a: np.ndarray) -> dict:
        """:meth:`curvature` in the sparse form (``2 n/mu^2`` vanishes on bins without counts);
        adds the background's part to ``h_a`` in place."""
        regs, srcs = state
        qq = []
        for r, (mu_z, _) in zip(self.regions, regs):
            q = np.where(mu_z > TRUNCATION, 2.0 * r.n_z / np.maximum(mu_z, TRUNCATION) ** 2, 0.0)
            h_a[r.planes] += np.bincount(r.z_plane, q * r.bkg_z ** 2, minlength=r.planes.size)
            qq.append(q)
        out: dict = {}
        for (mname, rk, _, ev), (F, G, DS), (inside, sel) in zip(self.sources, srcs, self._selections()):
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

    def _sparse_grads(self, state, values: dict, by_model: dict, steps: dict, g_a: np.ndarray) -> tuple[float, dict]:
        """The statistic of the regions and the sources' derivatives in the sparse form; adds
        ``dstat/da_E`` of the region bins to ``g_a`` in place.  A source with free spatial
        parameters is differentiated through :meth:`SourceEvaluator.backprop` on its cutout
        (``dstat/dmu = 2`` on the fit bins, ``2 (1 - n/mu)`` on those with counts)."""
        regs, srcs = state
        total, qs = 0.0, []
        for r, (mu_z, tot) in zip(self.regions, regs):
            total += self._sparse_cash(r, mu_z, tot)
            q = np.where(mu_z > TRUNCATION, r.n_z / np.maximum(mu_z, TRUNCATION), 0.0)
            g_a[r.planes] += 2.0 * (r.bkg_sum - np.bincount(r.z_plane, q * r.bkg_z, minlength=r.planes.size))
            qs.append(q)
        grads: dict = {}
        for (mname, rk, (dy, dx), ev), (F, G, DS), (inside, sel) in zip(self.sources, srcs, self._selections()):
            if mname not in by_model:
                continue
            v = values[mname]
            q = qs[rk][inside]
            spec = [n for m, c, n in by_model[mname] if c == "spectral"]
            spat = [n for m, c, n in by_model[mname] if c == "spatial"]
            st = {n: steps[(m, c, n)] for m, c, n in by_model[mname] if (m, c, n) in steps}
            if spat:
                ny, nx = ev.shape
                r = self.regions[rk]
                w = 2.0 * r.fit_mask[:, dy:dy + ny, dx:dx + nx].astype(float)
                w.reshape(w.shape[0], -1)[sel.plane, sel.pixel] -= 2.0 * q
                res = ev.backprop(w, v["spectral"], v.get("spatial", {}), spec, spat, st, reco=sel.reco)
            else:
                res = ev.spectral_gradient(2.0 * (DS - G @ q), v["spectral"], spec, st)
            for (c, n), g in res.items():
                grads[(mname, c, n)] = grads.get((mname, c, n), 0.0) + g
        return total, grads

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


def _shifted(values: dict, key: tuple, dv: float) -> dict:
    """``values`` (by model and component) with one parameter moved by ``dv`` (a new dict)."""
    m, c, n = key
    out = dict(values)
    out[m] = dict(values[m])
    out[m][c] = dict(values[m][c])
    out[m][c][n] += dv
    return out


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


def derivative_steps(space: ParameterSpace) -> dict:
    """Central-difference steps (in value units) of the cheap inner derivatives (flux integrals,
    spatial images): 1e-5 deg for angles, 1e-6 of the parameter's scale otherwise.

    Parameters
    ----------
    space : ParameterSpace
        The free parameters and their scales.

    Returns
    -------
    dict
        Step (value units) by parameter key.
    """
    return {key: (1e-5 if unit == "deg" else 1e-6 * s) for key, unit, s in zip(space.keys, space.units, space.scale)}


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
        asks for the statistic and the gradient at the same point)."""
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
        """First derivatives in factor space (analytic, term by term)."""
        return self.value_and_grad(factors)[1]

    def curvature(self, factors: np.ndarray) -> np.ndarray:
        """Gauss-Newton diagonal of the second derivatives in factor space (MIGRAD's ``g2``)."""
        return assemble_gradient(len(self.space.keys),
                                 self._per_term(term_curvature, self.space, np.asarray(factors, float), self.steps))

    def hessian(self, factors: np.ndarray, steps: np.ndarray, scheme: str = "central") -> np.ndarray:
        """Second derivatives in factor space, term by term (see :func:`term_hessian`)."""
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
