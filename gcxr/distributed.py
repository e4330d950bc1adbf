"""The joint Cash likelihood in chunks on a dask.distributed cluster.

Chunk plan: the dataset terms (:class:`gcxr.likelihood.DatasetTerm`, one per run
or stacked dataset) are first cut into spatial tiles (one per group of
overlapping source cutouts, :meth:`DatasetTerm.split`; the bins no source
reaches cost nothing per call and stay with the first tile), then the tiles of
all datasets are grouped into one chunk per worker, balanced by their number of
fit bins, and each chunk is placed on its worker **once** by a ``gcxr-chunk``
task.  A likelihood evaluation then sends only the per-model
parameter values (a few hundred bytes) to one ``gcxr-cash-chunk`` task per
chunk and gathers one float per chunk; the data are never re-sent.

Faults: a chunk is the result of a task whose inputs the scheduler keeps, so if
its worker dies the scheduler rebuilds it on another worker and re-runs the
evaluation tasks that were in flight; the statistic is the same sum, so the fit
continues unchanged.
"""
from __future__ import annotations

import uuid

import numpy as np

from .likelihood import DatasetTerm, ParameterSpace, _TermwiseDerivatives, derivative_steps

__all__ = ["DistributedLikelihood", "plan_chunks"]


def plan_chunks(terms: list[DatasetTerm], n_chunks: int) -> list[list[int]]:
    """Indices of terms per chunk: largest first onto the least loaded chunk (by fit bins)."""
    n_chunks = max(1, min(n_chunks, len(terms)))
    load = [0] * n_chunks
    out: list[list[int]] = [[] for _ in range(n_chunks)]
    for i in sorted(range(len(terms)), key=lambda k: -max(terms[k].n_bins, 1)):
        j = int(np.argmin(load))
        out[j].append(i)
        load[j] += max(terms[i].n_bins, 1)
    return [sorted(c) for c in out if c]


def _make_chunk(terms: list[DatasetTerm]) -> list[DatasetTerm]:
    return terms


def _chunk_stat(chunk: list[DatasetTerm], values: dict) -> list[float]:
    return [float(t.stat(values)) for t in chunk]          # per term: the client adds them in term order


def _chunk_apply(chunk: list[DatasetTerm], fn, *args) -> list:
    """A per-term function (gradient, curvature, Hessian parts) over one chunk's terms."""
    return [fn(t, *args) for t in chunk]


class DistributedLikelihood(_TermwiseDerivatives):
    """Callable on the factor vector, like :class:`gcxr.likelihood.JointLikelihood`, evaluated on a cluster."""

    def __init__(self, terms: list[DatasetTerm], space: ParameterSpace, client, n_chunks: int | None = None):
        self.client = client
        self.space = space
        workers = list(client.scheduler_info()["workers"])
        if not workers:
            raise RuntimeError("DistributedLikelihood: the cluster has no workers")
        terms = [tile for t in terms for tile in t.split()]
        self.n_tiles = len(terms)
        self.plan = plan_chunks(terms, n_chunks or len(workers))
        self.chunk_nbytes = [int(sum(terms[i].nbytes for i in idx)) for idx in self.plan]
        tag = uuid.uuid4().hex[:8]
        self.chunks = [
            client.submit(_make_chunk, [terms[i] for i in idx], key=f"gcxr-chunk-{tag}-{k}",
                          workers=[workers[k % len(workers)]], allow_other_workers=True, pure=False)
            for k, idx in enumerate(self.plan)]
        from distributed import wait
        wait(self.chunks)
        self.steps = derivative_steps(space)
        self.n_calls = 0
        self.n_tasks = 0
        self._last = None

    @classmethod
    def factory(cls, client, n_chunks: int | None = None):
        """A ``likelihood_factory`` for :func:`gcxr.fit.fit`."""
        def make(terms, space):
            return cls(terms, space, client, n_chunks)
        return make

    def stat_values(self, values: np.ndarray) -> float:
        self.n_calls += 1
        v = self.space.values_by_model(values)
        futures = [self.client.submit(_chunk_stat, c, v, pure=False,
                                      key=f"gcxr-cash-chunk-{uuid.uuid4().hex[:12]}") for c in self.chunks]
        self.n_tasks += len(futures)
        return float(sum(self._in_term_order(self.client.gather(futures))))

    def _in_term_order(self, per_chunk: list[list]) -> list:
        """Per-term results gathered chunk by chunk, put back in term order, so that sums are
        taken in the same order as in process (identical rounding, identical fits)."""
        out = [None] * self.n_tiles
        for idx, res in zip(self.plan, per_chunk):
            for i, r in zip(idx, res):
                out[i] = r
        return out

    def __call__(self, factors: np.ndarray) -> float:
        return self.stat_values(self.space.to_values(factors))

    def _per_term(self, fn, *args) -> list:
        """``fn(term, *args)`` for every term, each chunk on its worker, back in term order."""
        name = fn.__name__.replace("term_", "").replace("_", "-")
        futures = [self.client.submit(_chunk_apply, c, fn, *args, pure=False,
                                      key=f"gcxr-{name}-chunk-{uuid.uuid4().hex[:12]}") for c in self.chunks]
        self.n_tasks += len(futures)
        return self._in_term_order(self.client.gather(futures))

    def close(self):
        for f in self.chunks:
            f.release()
        self.chunks = []
