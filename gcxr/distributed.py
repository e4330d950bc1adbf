"""The joint Cash likelihood in chunks on a dask.distributed cluster.

Chunk plan: the dataset terms (:class:`gcxr.likelihood.DatasetTerm`, one per run
or stacked dataset) are grouped into one chunk per worker, balanced by their
number of fit bins; when whole terms do not balance (one stacked dataset, a few
runs) they are first cut into spatial tiles (one per group of overlapping source
cutouts, :meth:`DatasetTerm.split`; the bins no source reaches cost nothing per
call and stay with the first tile): :func:`chunk_units`.

Each chunk lives on its worker in a dask **Actor** (:class:`ChunkActor`), made
once per likelihood with the parameter space and the derivative steps.  A
round (a statistic, a gradient, a curvature or a Hessian) is one direct call
per actor, client to worker, without the scheduler in the loop: the calls are
made and awaited in one trip into the client's event loop and run in the
worker's event loop (no hand-over to a thread); a call carries the factor
vector (and the name of the per-term function), and returns per-term partial
results, which the client adds in term order (the same rounding as in process:
identical fits).  ``compute_info`` counts rounds, actor calls and the bytes sent
and received per round.

Workers compute with one BLAS thread per worker process (one worker process per
core is what a compute-bound likelihood wants; a second BLAS thread only adds
hand-overs), set once in the worker when an actor is made.

Faults: the client keeps each chunk's inputs (its terms or tiles, or the task that
builds its terms from run datasets kept on the cluster).  When a worker dies, the
calls to its actor fail (or, pending, see the actor's task leave "finished"); the client
waits until the scheduler has dropped that worker, rebuilds the lost chunks on
the remaining workers, and repeats the round.  A round is a pure function of the
factor vector, so the fit continues unchanged and ends on the same parameters.
"""
from __future__ import annotations

import pickle
import time
import uuid

import numpy as np

from .cluster import assemble_parts, dataset_parts, holders
from .datasets import is_lazy
from .fit import sources_moved
from .likelihood import (DatasetTerm, JointLikelihood, ParameterSpace, TermwiseDerivatives, build_terms,
                         check_models_reach, derivative_steps)

__all__ = ["DistributedLikelihood", "ChunkActor", "plan_chunks", "chunk_units", "is_lazy", "choose_placement", "round_cost",
           "build_on_workers"]

_SAMPLE = 3              # terms timed by the placement decision
_SPACE, _STEPS = "gcxr:resident-space", "gcxr:resident-steps"     # stand-ins for the actor's resident objects


WORKER_SLOWDOWN = 1.5     # a worker's likelihood compute against the client's (measured 0.66-1.05x speed)
# the cluster is taken only when its predicted round is below this fraction of the in-process one: a
# fit has gradient and Hessian rounds besides the statistic the prediction times, and the seed's
# 12- and 48-run fits went to the workers at predicted ratios of 0.90 and 0.80 and ran slower there
# (scaling-2026-11-29-quiet.json: 1.16 s against 0.67 s, 2.49 s against 2.35 s)
CLUSTER_MARGIN = 0.7
# whole terms go to the chunks when the largest chunk is within this factor of the mean (else tiles)
TILE_IMBALANCE = 1.2
# a fit's rounds, to weigh moving the terms once against every round's cost: statistic and gradient
# rounds of fits with the analytic gradient plus the Hessian round (21-60 measured on the seed,
# the validation cases and the survey)
ROUNDS_PER_FIT = 30
# bytes per second when built terms move between the client and the workers (pickled, on one host:
# 290 MB of 30 survey runs' terms came to the client in 1.2 s)
TRANSFER_RATE = 250e6


def round_cost(sample: list[DatasetTerm], space: ParameterSpace) -> tuple[float, float]:
    """``(shared, per_term)`` seconds of one statistic round, measured on a sample of terms.

    A round costs what every process pays once whatever its number of terms (the sources'
    spectral bin integrals, shared by all terms on one true-energy axis: :meth:`SourceEvaluator.flux`)
    plus a cost per term.  Both are measured: all the sample at one fresh point and its first
    term alone at another (every parameter moved, after a first call that folds the sources and
    fills the kernel caches); ``t_all = shared + k per_term``, ``t_one = shared + per_term``.
    With a single term the whole time counts as per term.

    Parameters
    ----------
    sample : list of DatasetTerm
        The terms timed (up to three are enough).
    space : ParameterSpace
        The free parameters.

    Returns
    -------
    tuple of float
        ``(shared, per_term)`` in seconds.
    """
    probe = JointLikelihood(sample, space)
    f0 = space.to_factors(space.start)
    probe(f0)                                        # folds the sources, fills the kernel caches
    step = np.where(f0 != 0, np.abs(f0), 1.0)
    t = time.perf_counter()
    probe(f0 + 1e-6 * step)
    t_all = time.perf_counter() - t
    k = len(sample)
    if k < 2:
        return 0.0, t_all
    one = JointLikelihood(sample[:1], space)
    one(f0)
    t = time.perf_counter()
    one(f0 + 2e-6 * step)
    t_one = time.perf_counter() - t
    per_term = max((t_all - t_one) / (k - 1), 0.0)
    return max(t_one - per_term, 0.0), per_term if per_term > 0 else t_all / k


def choose_placement(terms: list[DatasetTerm], space: ParameterSpace, client) -> tuple[str, "JointLikelihood", dict]:
    """Where a fit of in-memory terms runs faster: ``"cluster"`` or ``"process"``.

    A round on the cluster costs the slowest chunk's compute plus a round trip to the workers;
    in process it costs every term's compute.  Both are measured here: a round's shared and
    per-term costs on up to three of the terms (:func:`round_cost`: the spectral integrals are
    computed once per process, on every worker alike) and a trivial call on every worker (best
    of two; a builtin, so the workers import nothing for it).  With ``t_process = shared +
    n per_term`` and ``t_cluster = (shared + n_per_worker per_term) WORKER_SLOWDOWN + t_trip``,
    over ``ROUNDS_PER_FIT`` rounds, the cluster first paying for shipping the terms, it is chosen
    when its fit is below ``CLUSTER_MARGIN`` of the in-process one (:func:`_placement`): a few
    small datasets stay in process, where each round would mostly wait for the network; a
    survey's runs go to the workers.

    Parameters
    ----------
    terms : list of DatasetTerm
        The likelihood terms (built in this process).
    space : ParameterSpace
        The free parameters.
    client : distributed.Client
        The cluster.

    Returns
    -------
    tuple
        ``(choice, in-process likelihood of all the terms, figures)``.
    """
    sample = terms[::max(1, len(terms) // 3)][:3]
    n_workers = max(len(client.scheduler_info()["workers"]), 1)
    per_worker = -(-len(terms) // min(n_workers, max(len(terms), 1)))
    figures = _placement(client, sample, space, len(terms), per_worker, n_workers, terms_are="process")
    return figures["placement"], JointLikelihood(terms, space), figures


def _placement(client, sample: list, space: ParameterSpace, n_terms: int, n_largest: int, n_workers: int,
               terms_are: str, trip_workers: list | None = None) -> dict:
    """The placement decision and its figures: a round's parts measured on ``sample``
    (:func:`round_cost`) and a round trip; per round ``shared + n_terms per_term`` in process
    against ``(shared + n_largest per_term) WORKER_SLOWDOWN + t_trip`` on the cluster.  Over a fit
    of ``ROUNDS_PER_FIT`` rounds, the side where the terms are not (``terms_are``: ``"process"``
    or ``"cluster"``) first pays for moving them (their bytes, estimated from the sample, at
    ``TRANSFER_RATE``); the cluster is chosen only below ``CLUSTER_MARGIN`` of the process.

    Terms that are here already stay without any measurement when the cluster cannot win
    whatever a round costs: its largest chunk holds ``n_largest / n_terms`` of the work, and
    ``n_largest / n_terms x WORKER_SLOWDOWN >= CLUSTER_MARGIN`` bounds the cluster's fit from
    below by the margin (one stacked dataset, or two workers and terms that do not split: the
    measurement cost two full evaluations of the statistic, up to ~1 s for a survey's stacked
    dataset)."""
    if terms_are == "process" and n_largest / max(n_terms, 1) * WORKER_SLOWDOWN >= CLUSTER_MARGIN:
        return {"placement": "process", "workers": n_workers, "terms_timed": 0, "terms_are": terms_are,
                "why": f"the largest chunk would hold {n_largest} of {n_terms} terms: the cluster's round is at "
                       f"least {n_largest / max(n_terms, 1) * WORKER_SLOWDOWN:.2f} of the process's "
                       f"(CLUSTER_MARGIN {CLUSTER_MARGIN})"}
    shared, per_term = round_cost(sample, space)
    t_trip = _round_trip(client, trip_workers)
    t_process = shared + per_term * n_terms
    t_cluster = (shared + per_term * n_largest) * WORKER_SLOWDOWN + t_trip
    t_move = sum(t.nbytes for t in sample) / max(len(sample), 1) * n_terms / TRANSFER_RATE
    fit_process = ROUNDS_PER_FIT * t_process + (t_move if terms_are == "cluster" else 0.0)
    fit_cluster = ROUNDS_PER_FIT * t_cluster + (t_move if terms_are == "process" else 0.0)
    choice = "cluster" if fit_cluster < CLUSTER_MARGIN * fit_process else "process"
    return {"placement": choice, "round_in_process_s": t_process, "round_on_cluster_s_predicted": t_cluster,
            "round_trip_s": t_trip, "workers": n_workers, "terms_timed": len(sample),
            "round_shared_s": shared, "round_per_term_s": per_term, "terms_are": terms_are,
            "move_terms_s_predicted": t_move, "fit_in_process_s_predicted": fit_process,
            "fit_on_cluster_s_predicted": fit_cluster}


def _round_trip(client, workers: list | None = None) -> float:
    """An empty call to every worker (or to ``workers``: those not busy building), best of two
    (a builtin: the workers import nothing)."""
    import os
    trips = []
    for _ in range(2):
        t = time.perf_counter()
        client.run(os.getpid, workers=workers)
        trips.append(time.perf_counter() - t)
    return min(trips)


def plan_chunks(terms: list[DatasetTerm], n_chunks: int) -> list[list[int]]:
    """Indices of terms per chunk: largest first onto the least loaded chunk (by fit bins).

    Parameters
    ----------
    terms : list of DatasetTerm
        The likelihood terms to distribute.
    n_chunks : int
        The number of chunks (one per worker, typically).

    Returns
    -------
    list of list of int
        Term indices per chunk.
    """
    n_chunks = max(1, min(n_chunks, len(terms)))
    load = [0] * n_chunks
    out: list[list[int]] = [[] for _ in range(n_chunks)]
    for i in sorted(range(len(terms)), key=lambda k: -max(terms[k].n_bins, 1)):
        j = int(np.argmin(load))
        out[j].append(i)
        load[j] += max(terms[i].n_bins, 1)
    return [sorted(c) for c in out if c]


def chunk_units(terms: list[DatasetTerm], n_chunks: int) -> tuple[list[DatasetTerm], list[list[int]]]:
    """The units a chunk plan distributes and the plan (:func:`plan_chunks`): the terms
    themselves when they balance over the chunks (the largest chunk within ``TILE_IMBALANCE`` of
    the mean, by fit bins), else their spatial tiles (:meth:`DatasetTerm.split`: a stacked
    dataset, or a few runs).  Whole terms first because every unit costs a fixed overhead per
    call: 30 survey runs' statistic took 15 ms as 30 terms and 26 ms as their 42 tiles.

    Parameters
    ----------
    terms : list of DatasetTerm
        The terms.
    n_chunks : int
        The chunks wanted.

    Returns
    -------
    tuple
        ``(units, plan)``.
    """
    plan = plan_chunks(terms, n_chunks)
    load = [sum(max(terms[i].n_bins, 1) for i in idx) for idx in plan]
    if len(plan) >= min(n_chunks, 2) and max(load) <= TILE_IMBALANCE * sum(load) / n_chunks:
        return list(terms), plan
    tiles = [tile for t in terms for tile in t.split()]
    return tiles, plan_chunks(tiles, n_chunks)


class ChunkActor:
    """One chunk of dataset terms resident on a worker, with the parameter space and the
    derivative steps, evaluated in place for each round (a dask Actor)."""

    def __init__(self, terms: list, space: ParameterSpace, steps: dict):
        if len(terms) == 1 and isinstance(terms[0], list):        # built on this worker (_build_chunk)
            terms = terms[0]
        self.terms = terms
        self.space = space
        self.steps = steps
        # one BLAS thread in this worker process, set once (a limit around every call cost ~2 ms
        # per call); workers that gcxr starts have it from their environment already
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")

    def stat(self, factors: np.ndarray) -> list[float]:
        """The statistic of every term at the factor vector (in term order).

        Parameters
        ----------
        factors : numpy.ndarray
            The free parameters in factor units.

        Returns
        -------
        list of float
            One statistic per term.
        """
        values = self.space.values_by_model(self.space.to_values(factors))
        return [float(t.stat(values)) for t in self.terms]

    def apply(self, fn, *args) -> list:
        """``fn(term, *args)`` for every term; the stand-ins ``_SPACE``/``_STEPS`` in ``args`` are
        replaced by the resident space and steps (they are not sent with each round).

        Parameters
        ----------
        fn : callable
            ``fn(term, *args)``.
        *args
            Further arguments (stand-ins for the resident space and steps allowed).

        Returns
        -------
        bytes
            The pickled list of one result per term, in term order.
        """
        resident = {_SPACE: self.space, _STEPS: self.steps}
        args = tuple(resident[a] if isinstance(a, str) and a in resident else a for a in args)
        # one pickle of all the per-term results (gradients: a float and two small arrays per
        # term), sent as one frame instead of one serialised frame per array
        return pickle.dumps([fn(t, *args) for t in self.terms], protocol=pickle.HIGHEST_PROTOCOL)

    def fetch_terms(self) -> list:
        """The resident terms themselves (pickled to the caller): a fit that moves home.

        Returns
        -------
        list of DatasetTerm
            The terms, in chunk order.
        """
        return self.terms

    def nbytes(self) -> int:
        """Bytes of the resident terms (also the cheapest call: an empty round trip)."""
        return int(sum(t.nbytes for t in self.terms))

    def source_names(self) -> set:
        """Names of the sky models this chunk's terms evaluate."""
        return {m for t in self.terms for m, *_ in t.sources}

    def moved(self, models) -> bool:
        """:func:`gcxr.fit.sources_moved` on this chunk's terms.

        Parameters
        ----------
        models : Models
            The models at their current values.

        Returns
        -------
        bool
            Whether a source left the cutout of one of this chunk's terms.
        """
        return sources_moved(self.terms, models)

    def time_stat(self, factors: np.ndarray, repeats: int) -> float:
        """Seconds per statistic evaluation of this chunk on its worker (benchmarks: worker speed
        against the same terms in process).

        Parameters
        ----------
        factors : numpy.ndarray
            The free parameters in factor units.
        repeats : int
            Evaluations timed.

        Returns
        -------
        float
            Seconds per evaluation.
        """
        eps = np.zeros_like(factors)
        eps[0] = 1e-7
        self.stat(factors)
        t0 = time.perf_counter()
        for i in range(repeats):
            self.stat(factors + eps * (i % 2))
        return (time.perf_counter() - t0) / repeats


def _build_chunk(datasets, models, point_weights: str) -> list[DatasetTerm]:
    """Terms of a chunk's datasets, built on the worker that will hold them (whether every model
    reaches some dataset is checked over all chunks)."""
    return build_terms(datasets, models, point_weights, check=False)


def _plan_by_holder(client, datasets, workers: list[str], n_chunks: int | None) -> tuple[list[list[int]], list[str]]:
    """Chunks of datasets that live on the cluster, and the worker of each: a dataset goes to the
    chunk of the worker that holds most of its persisted bytes, so that building the terms moves
    no data (a seed run is ~36 MB; the persisted pieces are waited for first, as the build needs
    them); datasets with no persisted pieces are balanced by size over the workers, as
    :func:`plan_chunks` does.  With ``n_chunks`` set, or
    when the holders are too unequal (one worker with more than twice its share of the bins), the
    plan is by size alone (each chunk on worker ``k mod n``)."""
    sizes = [_SizeOf(ds) for ds in datasets]
    by_size = plan_chunks(sizes, n_chunks or len(workers))
    fallback = (by_size, [workers[k % len(workers)] for k in range(len(by_size))])
    if n_chunks is not None:
        return fallback
    try:
        from distributed import futures_of  # deferred: imported already (a cluster is in use)
        # the terms need the persisted pieces anyway: their holders are known once they are there
        held = holders(client, [futures_of(ds) for ds in datasets])
    except Exception:                       # no futures (not persisted) or an older distributed
        return fallback
    load = {w: 0 for w in workers}
    chunks: dict = {w: [] for w in workers}
    for i in sorted(range(len(datasets)), key=lambda k: -max(sizes[k].n_bins, 1)):
        w = held[i] if held[i] in load else min(load, key=load.get)
        chunks[w].append(i)
        load[w] += max(sizes[i].n_bins, 1)
    total = sum(load.values())
    if total and max(load.values()) > 2.0 * total / len(workers) and len(datasets) > len(workers):
        return fallback
    plan = [(sorted(c), w) for w, c in chunks.items() if c]
    return [p for p, _ in plan], [w for _, w in plan]


def _build_from_parts(pieces: list, models, point_weights: str) -> list[DatasetTerm]:
    """:func:`_build_chunk` of datasets given as :func:`_dataset_parts`."""
    return _build_chunk([assemble_parts(*p) for p in pieces], models, point_weights)


def _first_terms(terms: list, n: int) -> list:
    """The first ``n`` terms of a chunk built on a worker (a sample to time in the client)."""
    return terms[:n]


def build_on_workers(client, datasets, models, point_weights: str, n_chunks: int | None = None,
                     workers: list[str] | None = None) -> tuple:
    """Build the terms of datasets that live on the cluster, each chunk on the worker holding its
    datasets (:func:`_plan_by_holder`); nothing comes to the client.

    Parameters
    ----------
    client : distributed.Client
        The cluster.
    datasets : list of xarray.Dataset
        Dask-backed datasets (persisted, or still a graph).
    models : Models
        The models at their current values.
    point_weights : {'tent', 'cubic'}
        Rendering of point sources.
    n_chunks : int, optional
        Chunks (default: one per worker holding data).
    workers : list of str, optional
        The workers (default: all).

    Returns
    -------
    tuple
        ``(plan, homes, inputs, built)``: term indices per chunk, each chunk's worker, the task
        that rebuilds each chunk from the reduction graph (after a worker is lost), and the
        futures of the built chunks (lists of :class:`~gcxr.likelihood.DatasetTerm`).
    """
    workers = workers or sorted(client.scheduler_info()["workers"])
    plan, homes = _plan_by_holder(client, datasets, workers, n_chunks)
    inputs = [_ChunkGraph([datasets[i] for i in idx], models, point_weights) for idx in plan]
    built = []
    for k, (idx, home) in enumerate(zip(plan, homes)):
        pieces = [dataset_parts(datasets[i]) for i in idx]
        if all(p is not None for p in pieces):
            # persisted: the chunks go straight into the build task, on the worker holding them
            built.append(client.submit(_build_from_parts, pieces, models, point_weights, workers=[home],
                                       allow_other_workers=False, pure=False,
                                       key=f"gcxr-terms-{k}-{uuid.uuid4().hex[:8]}"))
        else:
            built.append(client.compute(inputs[k].delayed(), workers=[home], allow_other_workers=False))
    return plan, homes, inputs, built


class _ChunkGraph:
    """The task that builds a chunk's terms from its datasets' graphs (the reduction, when the
    persisted runs are lost with a worker), made only when needed: wrapping 30 survey runs in
    ``dask.delayed`` up front took 0.24 s of every cluster fit."""

    def __init__(self, datasets, models, point_weights: str):
        self.datasets, self.models, self.point_weights = datasets, models, point_weights

    def delayed(self):
        import dask  # deferred: heavy import (dask)
        return dask.delayed(_build_chunk, pure=False)(self.datasets, self.models, self.point_weights)


def _home_if_faster(client, built: tuple, space: ParameterSpace, models):
    """For terms built on the workers (:func:`build_on_workers`): the in-process likelihood of
    all of them when a round would be faster here, else None (the caller makes the chunk actors
    from the built terms, which stay where they are).

    Up to three terms of the first chunk built come to the client and a round's shared and
    per-term costs are measured on them (:func:`round_cost`) while the other chunks are still
    being built; a round in process is predicted as ``shared
    + n per_term``, on the cluster as ``(shared + n_largest_chunk per_term) WORKER_SLOWDOWN``
    plus a measured round trip; over a fit, the process first pays for bringing the terms here
    (:func:`_placement`).  When the process wins, every chunk's terms
    are gathered in term order (the fit is identical to one built here) and no actor is made.

    Parameters
    ----------
    client : distributed.Client
        The cluster.
    built : tuple
        ``(plan, homes, inputs, futures)`` from :func:`build_on_workers`.
    space : ParameterSpace
        The free parameters.
    models : Models
        The models (every one must reach some term: :func:`gcxr.likelihood.check_models_reach`).

    Returns
    -------
    JointLikelihood or None
        With ``placement_info`` (the figures) set.
    """
    import functools

    from distributed import as_completed  # deferred: imported already (a cluster is in use)
    plan, homes, _, futures = built
    n_terms = sum(len(idx) for idx in plan)
    big = max(range(len(plan)), key=lambda k: len(plan[k]))
    # the sample is the first chunk built: it is timed while the other workers still build
    first = next(iter(as_completed(futures)))
    k0 = next(k for k, f in enumerate(futures) if f is first)
    known: dict = {}
    if n_terms <= 2 * _SAMPLE:
        known[k0] = first.result()             # a few terms: the whole chunk comes in one call
        sample = known[k0][:_SAMPLE]
    else:
        sample = client.submit(_first_terms, first, _SAMPLE, pure=False).result()
        if len(plan[k0]) <= len(sample):
            known[k0] = sample
    figures = _placement(client, sample, space, n_terms, len(plan[big]), len(set(homes)), terms_are="cluster",
                         trip_workers=[homes[k0]])
    if figures["placement"] == "cluster":
        return None
    others = [k for k in range(len(plan)) if k not in known]
    known.update(zip(others, client.gather([futures[k] for k in others])))
    chunks = [known[k] for k in range(len(plan))]
    for f in futures:
        f.release()
    terms = [None] * n_terms
    for i, term in zip([i for idx in plan for i in idx], [t for c in chunks for t in c]):
        terms[i] = term
    check_models_reach(models, {m for t in terms for m, *_ in t.sources})
    like = JointLikelihood(terms, space)
    like.moved = functools.partial(sources_moved, terms)
    like.placement_info = figures
    return like


class _SizeOf:
    """A dataset's weight for the chunk plan (bins of its counts cube), without computing it."""

    def __init__(self, ds):
        self.n_bins = int(np.prod([ds.sizes[d] for d in ("energy", "lat", "lon") if d in ds.sizes]))


async def _call_all(actors: list, method: str, args: tuple) -> list[tuple[bool, object]]:
    """``method(*args)`` on every actor, made on the client's event loop and run in each worker's
    event loop (dask's ``separate_thread=False``: no hand-over to the actor thread and back,
    ~1-2 ms per chunk and round), settled by :func:`_settle`."""
    calls = []
    for a in actors:
        try:
            calls.append(getattr(a, method)(*args, separate_thread=False))
        except Exception as exc:                             # noqa: BLE001 - sorted by the caller
            calls.append(exc)
    return await _settle(calls, actors)


async def _settle(futures: list, actors: list) -> list[tuple[bool, object]]:
    """``(True, result)`` or ``(False, exception)`` of each actor call (or of an exception raised
    when it was made), awaited on the client's event loop.

    A call to a worker that has died can wait for ever inside dask (the actor retries once the
    actor's task is back, and a task pinned to a dead worker never is), so while a call is
    pending its actor's task is watched: once it is no longer "finished" the worker is lost."""
    import asyncio

    async def one(f, actor):
        if isinstance(f, Exception):
            return False, f
        task = asyncio.ensure_future(_awaited(f))
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.02)
            if done:
                return task.result()
            fut = getattr(actor, "_future", None)
            if fut is not None and fut.status != "finished":
                return False, RuntimeError(f"Worker holding Actor was lost (actor task {fut.status})")
    return [await one(f, a) for f, a in zip(futures, actors)]


async def _awaited(f) -> tuple[bool, object]:
    try:
        return True, await f
    except Exception as exc:                                 # noqa: BLE001 - sorted by the caller
        return False, exc


def _worker_lost(exc: BaseException) -> bool:
    """Whether an actor call failed because its worker is gone (not because the work raised)."""
    from distributed.comm.core import CommClosedError
    if isinstance(exc, (CommClosedError, OSError)):          # incl. "Unable to contact Actor's worker"
        return True
    return isinstance(exc, RuntimeError) and "Actor was lost" in str(exc)


class DistributedLikelihood(TermwiseDerivatives):
    """Callable on the factor vector, like :class:`gcxr.likelihood.JointLikelihood`, evaluated by
    chunk actors on a cluster (see the module docstring)."""

    def __init__(self, terms: list[DatasetTerm] | None, space: ParameterSpace, client, n_chunks: int | None = None,
                 timeout: float = 600.0, *, datasets=None, models=None, point_weights: str = "tent",
                 built: tuple | None = None):
        self.client = client
        self.space = space
        self.timeout = timeout
        workers = self._workers()
        if not workers:
            raise RuntimeError("DistributedLikelihood: the cluster has no workers")
        if terms is not None:
            # terms built here: whole, or cut into tiles where whole terms do not balance; the
            # units are the inputs
            units, self.plan = chunk_units(terms, n_chunks or len(workers))
            self.n_tiles = len(units)
            self._inputs = [[units[i] for i in idx] for idx in self.plan]       # kept to rebuild a lost chunk
            self.chunk_nbytes = [int(sum(t.nbytes for t in c)) for c in self._inputs]
        else:
            # datasets that live on the cluster (dask-backed): each chunk's terms are built on its
            # worker from its datasets; the inputs are the build tasks (their datasets are
            # recomputed from the reduction graph if a worker holding them is lost)
            self.n_tiles = len(datasets)
            built = built or build_on_workers(client, datasets, models, point_weights, n_chunks, workers)
            self.plan, homes, self._inputs, built = built
            self.chunk_nbytes = None
        self.steps = derivative_steps(space)
        self.tag = uuid.uuid4().hex[:8]
        self.n_calls = 0          # likelihood evaluations (statistic or statistic + gradient)
        self.n_rounds = 0         # rounds of actor calls (every kind)
        self.n_tasks = 0          # actor calls
        self.n_rebuilt = 0        # chunks rebuilt after a worker was lost
        self.bytes_sent = 0
        self.bytes_received = 0
        self._last = None
        self._futures = [None] * len(self.plan)
        self.actors = [None] * len(self.plan)
        self.placement = [None] * len(self.plan)
        if terms is not None:
            homes = [workers[k % len(workers)] for k in range(len(self.plan))]
        self._place(list(enumerate(homes)), built)
        if self.chunk_nbytes is None:
            self.chunk_nbytes = [f.result() for f in [a.nbytes() for a in self.actors]]
            check_models_reach(models, set().union(*[f.result() for f in [a.source_names() for a in self.actors]]))

    @classmethod
    def from_datasets(cls, datasets, models, space: ParameterSpace, client, point_weights: str = "tent",
                      n_chunks: int | None = None, placement: str = "cluster") -> "DistributedLikelihood":
        """The likelihood of ``datasets``: terms built here and shipped when the datasets are in
        memory; built on the workers when they are dask-backed (reduced or persisted on the
        cluster), so that the datasets never come to the client.

        Parameters
        ----------
        datasets : list of xarray.Dataset
            The datasets (in memory or dask-backed).
        models : Models
            The models at their current values.
        space : ParameterSpace
            The free parameters.
        client : distributed.Client
            The cluster.
        point_weights : {'tent', 'cubic'}
            Rendering of point sources.
        n_chunks : int, optional
            Chunks of terms (default: one per worker).
        placement : {'cluster', 'auto'}
            For in-memory datasets: always the cluster, or wherever a round is predicted to be
            faster (:func:`choose_placement`; a ``JointLikelihood`` in this process may come back).

        Returns
        -------
        DistributedLikelihood
            The likelihood.
        """
        if placement not in ("cluster", "auto"):
            raise ValueError(f"placement must be 'cluster' or 'auto', got {placement!r}")
        if any(is_lazy(ds) for ds in datasets):
            built = build_on_workers(client, datasets, models, point_weights, n_chunks)
            if placement == "auto":
                home = _home_if_faster(client, built, space, models)
                if home is not None:
                    return home
            return cls(None, space, client, n_chunks, datasets=datasets, models=models, point_weights=point_weights,
                       built=built)
        return cls._placed(build_terms(datasets, models, point_weights), space, client, n_chunks, placement)

    @classmethod
    def _placed(cls, terms, space, client, n_chunks, placement: str):
        """The likelihood of in-memory terms where ``placement`` puts it (see :func:`choose_placement`)."""
        if placement == "cluster":
            return cls(terms, space, client, n_chunks)
        choice, local, figures = choose_placement(terms, space, client)
        if choice == "cluster":
            like = cls(terms, space, client, n_chunks)
        else:
            import functools

            like = local
            like.moved = functools.partial(sources_moved, terms)
        like.placement_info = figures
        return like

    def moved(self, models) -> bool:
        """Whether a source moved or grew out of the cutout its terms were built for (each
        chunk checks its own terms, see :func:`gcxr.fit.sources_moved`).

        Parameters
        ----------
        models : Models
            The models at their current values.

        Returns
        -------
        bool
        """
        return any(self._round("moved", models))

    # ---- placement
    def _workers(self) -> list[str]:
        return sorted(self.client.scheduler_info()["workers"])

    def _place(self, placements: list[tuple[int, str]], built: list | None = None) -> None:
        """Make the actors of chunks ``k`` on their workers, all at once: each chunk's tiles are
        scattered to its worker first (no large task graph), or built there from its datasets
        (``built``: futures of terms built there already, :func:`build_on_workers`); then the
        actors are made."""
        made = []
        for k, worker in placements:
            inp = self._inputs[k]
            if built is not None:
                data = [built[k]]
            elif isinstance(inp, list):
                data = self.client.scatter(inp, workers=[worker], broadcast=False, hash=False)
            else:
                data = [self.client.compute(inp.delayed(), workers=[worker], allow_other_workers=False)]
            fut = self.client.submit(ChunkActor, data, self.space, self.steps, actor=True, workers=[worker],
                                     allow_other_workers=False, pure=False,
                                     key=f"gcxr-chunk-{self.tag}-{k}-{uuid.uuid4().hex[:6]}")
            made.append((k, worker, fut, data))
        for k, worker, fut, data in made:
            self.actors[k] = fut.result(timeout=self.timeout)
            self._futures[k] = (fut, data)
            if not isinstance(self._inputs[k], list):
                data[0].release()                 # the actor holds the terms; the build result can go
            self.placement[k] = worker

    def _rebuild(self, lost: list[int]) -> None:
        """Wait until the scheduler has dropped the dead workers, then make the lost chunks again
        on the workers left (round robin)."""
        dead = {self.placement[k] for k in lost}
        deadline = time.monotonic() + self.timeout
        while True:
            alive = [w for w in self._workers() if w not in dead]
            gone = not (dead & set(self._workers()))
            if alive and gone:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"DistributedLikelihood: workers {sorted(dead)} lost and no worker left "
                                   f"to rebuild chunks {lost} on")
            time.sleep(0.05)
        self._place([(k, alive[j % len(alive)]) for j, k in enumerate(lost)])
        self.n_rebuilt += len(lost)

    # ---- rounds
    def _round(self, method: str, *args) -> list:
        """One call per actor; per-chunk results in chunk order.  Repeated after rebuilding the
        chunks of a lost worker."""
        self.n_rounds += 1
        self.bytes_sent += len(self.actors) * len(pickle.dumps((method, args), protocol=5))
        for _attempt in range(3):
            self.n_tasks += len(self.actors)
            # the calls are made and their results awaited in one trip into the client's event
            # loop (a call made here wakes the loop once each, and a ``result()`` per call waits
            # on it once each: ~1 ms more per chunk and round)
            settled = self.client.sync(_call_all, self.actors, method, args, callback_timeout=self.timeout)
            results, lost = [], []
            for k, (ok, value) in enumerate(settled):
                if ok:
                    results.append(value)
                    continue
                if not _worker_lost(value):
                    raise value
                lost.append(k)
                results.append(None)
            if not lost:
                self.bytes_received += len(pickle.dumps(results, protocol=5))
                return results
            self._rebuild(lost)
        raise RuntimeError("DistributedLikelihood: workers kept failing; round abandoned after 3 attempts")

    def _in_term_order(self, per_chunk: list[list]) -> list:
        """Per-term results gathered chunk by chunk, put back in term order, so that sums are
        taken in the same order as in process (identical rounding, identical fits)."""
        out = [None] * self.n_tiles
        for idx, res in zip(self.plan, per_chunk):
            for i, r in zip(idx, res):
                out[i] = r
        return out

    @classmethod
    def factory(cls, client, n_chunks: int | None = None, placement: str = "cluster"):
        """A ``likelihood_factory`` for :func:`gcxr.fit.fit`: ``make(terms, space)``, and
        ``make.from_datasets(datasets, models, space, point_weights)`` which :func:`gcxr.fit.fit`
        prefers (terms built on the workers for datasets that live on the cluster).

        Parameters
        ----------
        client : distributed.Client
            The cluster.
        n_chunks : int, optional
            Chunks of terms (default: one per worker).
        placement : {'cluster', 'auto'}
            ``"auto"``: in-memory terms stay in this process when a round would be faster here
            (:func:`choose_placement`); ``"cluster"``: always on the workers.

        Returns
        -------
        callable
            ``make(terms, space)`` with ``make.from_datasets``.
        """
        if placement not in ("cluster", "auto"):
            raise ValueError(f"placement must be 'cluster' or 'auto', got {placement!r}")

        def make(terms, space):
            return cls._placed(terms, space, client, n_chunks, placement)

        def from_datasets(datasets, models, space, point_weights="tent"):
            return cls.from_datasets(datasets, models, space, client, point_weights, n_chunks, placement)
        make.from_datasets = from_datasets
        return make

    def stat_values(self, values: np.ndarray) -> float:
        """The joint statistic at ``values`` (one direct call per chunk actor).

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
        f = self.space.to_factors(values)
        return float(sum(self._in_term_order(self._round("stat", f))))

    def __call__(self, factors: np.ndarray) -> float:
        self.n_calls += 1
        return float(sum(self._in_term_order(self._round("stat", np.asarray(factors, float)))))

    def _per_term(self, fn, *args) -> list:
        """``fn(term, *args)`` for every term, each chunk on its worker, back in term order; the
        space and the steps stay on the workers (stand-ins are sent)."""
        args = tuple(_SPACE if a is self.space else _STEPS if a is self.steps else a for a in args)
        return self._in_term_order([pickle.loads(b) for b in self._round("apply", fn, *args)])

    def compute_info(self) -> dict:
        """Counters for ``result.json``'s ``compute`` block."""
        rounds = max(self.n_rounds, 1)
        return {"likelihood_rounds": self.n_rounds, "actor_calls": self.n_tasks, "chunks": len(self.plan),
                "chunks_rebuilt": self.n_rebuilt, "bytes_sent_per_round": self.bytes_sent / rounds,
                "bytes_received_per_round": self.bytes_received / rounds, "chunk_nbytes": self.chunk_nbytes}

    def close(self):
        """Release the chunk actors and the data they hold on the workers."""
        self.actors = []
        for pair in self._futures:
            if pair is not None:
                fut, data = pair
                fut.release()
                for d in data:
                    d.release()
        self._futures = []
