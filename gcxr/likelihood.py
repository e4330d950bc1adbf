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
pickled to a dask worker) and evaluated for any parameter vector without
mutating anything.  :class:`JointLikelihood` sums the terms.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .datasets import combined_mask
from .geom import EnergyAxis
from .npred import SourceEvaluator, dataset_geoms
from .stats import TRUNCATION, cash

__all__ = ["ParameterSpace", "DatasetTerm", "JointLikelihood", "build_terms", "total_stat", "term_hessian",
           "assemble_hessian", "term_parameters", "term_gradient", "assemble_gradient"]

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
        return [f"{m}.{n}" for m, _, n in self.keys]

    def to_factors(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, float) - self.offset) / self.scale

    def to_values(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(factors, float) * self.scale + self.offset

    def factor_limits(self) -> list[tuple[float | None, float | None]]:
        out = []
        for (lo, hi), s, o in zip(self.limits, self.scale, self.offset):
            a = None if not np.isfinite(lo) else (lo - o) / s
            b = None if not np.isfinite(hi) else (hi - o) / s
            out.append((a, b))
        return out

    def values_by_model(self, values: np.ndarray) -> dict:
        out = {m: {c: dict(v) for c, v in comps.items()} for m, comps in self.frozen.items()}
        for (m, c, n), v in zip(self.keys, values):
            out[m][c][n] = float(v)
        return out


@dataclass
class _Region:
    ys: slice
    xs: slice
    counts: np.ndarray          # (E, ny, nx) float
    background: np.ndarray
    mask: np.ndarray            # bool


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

    @classmethod
    def build(cls, ds: xr.Dataset, models, name: str | None = None, point_weights: str = "tent") -> "DatasetTerm":
        name = name or ds.attrs.get("name", "dataset")
        geom, irf = dataset_geoms(ds)
        mask = np.broadcast_to(combined_mask(ds).transpose("energy", "lat", "lon").values, ds["counts"].shape)
        counts = ds["counts"].values          # kept in their stored dtype; float64 only where needed
        bkg = ds["background"].values
        evs = []
        for m in models.sky_models:
            if m.applies_to(name):
                evs.append((m.name, SourceEvaluator.build(m, ds, geom, irf, point_weights=point_weights)))
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
            regions.append(_Region(slice(y0, y1), slice(x0, x1), counts[sl].astype(float), bkg[sl].astype(float),
                                   np.array(mask[sl])))
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
        return sum(r.counts.nbytes + r.background.nbytes + r.mask.nbytes for r in self.regions) + sum(
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
        n_far = self.n_bins - sum(int(r.mask.sum()) for r in self.regions)
        for k, r in enumerate(self.regions):
            first = k == 0
            t = DatasetTerm(f"{self.name}[tile {k}]", self.energy_centers, self.bkg_model, [r],
                            [(m, 0, off, ev) for m, rk, off, ev in self.sources if rk == k],
                            self.far_sb if first else zeros, self.far_sn if first else zeros,
                            self.far_snlnb if first else zeros, self.far_const if first else 0.0,
                            n_bins=int(r.mask.sum()) + (n_far if first else 0))
            t.nbytes = t._nbytes()
            out.append(t)
        return out

    def _bkg_factor(self, values: dict) -> np.ndarray:
        if self.bkg_model is None:
            return np.ones_like(self.energy_centers)
        v = values[self.bkg_model]["spectral"]
        return v["norm"] * (self.energy_centers / v.get("reference", 1.0)) ** (-v.get("tilt", 0.0))

    def stat(self, values: dict) -> float:
        """Cash statistic of this dataset for per-model parameter values."""
        a = self._bkg_factor(values)
        pos = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            far = np.where(pos, 2.0 * (a * self.far_sb - self.far_sn * np.log(np.where(pos, a, 1.0)) - self.far_snlnb),
                           2.0 * (-self.far_sn * np.log(TRUNCATION)))
        total = float(far.sum()) + self.far_const
        for k, r in enumerate(self.regions):
            mu = r.background * a[:, None, None]
            for mname, rk, (dy, dx), ev in self.sources:
                if rk != k:
                    continue
                v = values[mname]
                ny, nx = ev.shape
                mu[:, dy:dy + ny, dx:dx + nx] += ev.npred(v["spectral"], v.get("spatial", {}))
            mu = np.clip(mu, 0.0, None)
            total += float(cash(r.counts[r.mask], mu[r.mask]).sum())
        return total

    def npred_regions(self, values: dict) -> list[np.ndarray]:
        a = self._bkg_factor(values)
        out = []
        for k, r in enumerate(self.regions):
            mu = r.background * a[:, None, None]
            for mname, rk, (dy, dx), ev in self.sources:
                if rk == k:
                    v = values[mname]
                    ny, nx = ev.shape
                    mu[:, dy:dy + ny, dx:dx + nx] += ev.npred(v["spectral"], v.get("spatial", {}))
            out.append(np.clip(mu, 0.0, None))
        return out


def term_parameters(term: DatasetTerm, space: ParameterSpace) -> np.ndarray:
    """Indices of the free parameters a term depends on: its sources' and its background model's."""
    names = {m for m, *_ in term.sources}
    if term.bkg_model is not None:
        names.add(term.bkg_model)
    return np.array([i for i, (m, _, _) in enumerate(space.keys) if m in names], dtype=int)


def term_hessian(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, steps: np.ndarray):
    """(indices, H): the second derivatives of one term's statistic in factor space, over the
    parameters it depends on, by central differences with the given steps (in factor units;
    :func:`gcxr.fit.fit` uses 0.05 MIGRAD sigma)."""
    idx = term_parameters(term, space)
    f0 = np.asarray(factors, float)

    def stat(delta: dict) -> float:
        f = f0.copy()
        for i, d in delta.items():
            f[i] += d
        return term.stat(space.values_by_model(space.to_values(f)))

    p = idx.size
    H = np.zeros((p, p))
    c0 = stat({})
    for a, i in enumerate(idx):
        h = steps[i]
        H[a, a] = (stat({i: h}) - 2.0 * c0 + stat({i: -h})) / h ** 2
    for a in range(p):
        for b in range(a + 1, p):
            i, j = idx[a], idx[b]
            hi, hj = steps[i], steps[j]
            H[a, b] = H[b, a] = (stat({i: hi, j: hj}) - stat({i: hi, j: -hj}) - stat({i: -hi, j: hj})
                                 + stat({i: -hi, j: -hj})) / (4.0 * hi * hj)
    return idx, H


GRADIENT_STEP = 1e-3        # central-difference step of the structured gradient, in factor units


def term_gradient(term: DatasetTerm, space: ParameterSpace, factors: np.ndarray, step: float = GRADIENT_STEP):
    """(indices, g): first derivatives of one term's statistic in factor space over the parameters
    it depends on, by central differences (factors are O(1): positions in 0.01 deg, others scaled
    by their power of ten, so one step in factor units suits all of them)."""
    idx = term_parameters(term, space)
    f0 = np.asarray(factors, float)
    g = np.zeros(idx.size)
    for a, i in enumerate(idx):
        up, down = f0.copy(), f0.copy()
        up[i] += step
        down[i] -= step
        g[a] = (term.stat(space.values_by_model(space.to_values(up)))
                - term.stat(space.values_by_model(space.to_values(down)))) / (2.0 * step)
    return idx, g


def assemble_gradient(n: int, parts) -> np.ndarray:
    """The joint gradient from per-term (indices, g) parts."""
    g = np.zeros(n)
    for idx, v in parts:
        g[idx] += v
    return g


def assemble_hessian(n: int, parts) -> np.ndarray:
    """The joint Hessian from per-term (indices, H) blocks: the terms' statistics add up."""
    H = np.zeros((n, n))
    for idx, h in parts:
        H[np.ix_(idx, idx)] += h
    return H


def build_terms(datasets: list[xr.Dataset], models, point_weights: str = "tent") -> list[DatasetTerm]:
    return [DatasetTerm.build(ds, models, ds.attrs.get("name"), point_weights) for ds in datasets]


class JointLikelihood:
    """Sum of dataset terms as a function of the free-parameter vector (in-process)."""

    def __init__(self, terms: list[DatasetTerm], space: ParameterSpace):
        self.terms = terms
        self.space = space
        self.n_calls = 0
        self.n_tasks = 0

    def stat_values(self, values: np.ndarray) -> float:
        self.n_calls += 1
        v = self.space.values_by_model(values)
        return float(sum(t.stat(v) for t in self.terms))

    def __call__(self, factors: np.ndarray) -> float:
        return self.stat_values(self.space.to_values(factors))

    def gradient(self, factors: np.ndarray) -> np.ndarray:
        """First derivatives in factor space, term by term (see :func:`term_gradient`)."""
        self.n_calls += 1
        return assemble_gradient(len(self.space.keys), [term_gradient(t, self.space, factors) for t in self.terms])

    def hessian(self, factors: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Second derivatives in factor space, term by term (see :func:`term_hessian`)."""
        return assemble_hessian(len(self.space.keys),
                                [term_hessian(t, self.space, factors, steps) for t in self.terms])

    def close(self):
        pass


def total_stat(datasets: list[xr.Dataset], models, point_weights: str = "tent") -> float:
    """The joint Cash statistic of ``datasets`` at the models' current parameter values."""
    space = ParameterSpace.from_models(models)
    return JointLikelihood(build_terms(datasets, models, point_weights), space).stat_values(space.start)
