"""Where the work runs: in-process threads, a LocalCluster, or an existing scheduler.

gcxr never starts a cluster unless asked (``--scheduler`` or an explicit call).
For SLURM/PBS, start a dask-jobqueue cluster and pass its client (see docs/clusters.md).

Accepted ``--scheduler`` specs, nothing else (a typo must not start workers):

- ``threads`` (default): in-process threads, no cluster;
- ``local:N``: a LocalCluster of N worker processes, ``1 <= N <= max_local_workers()``;
- ``tcp://host:port`` or ``tls://host:port``: a running scheduler, connected to within
  ``timeout`` seconds;
- a scheduler file ``*.json`` written by ``dask scheduler --scheduler-file``.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager

__all__ = ["make_client", "describe", "parse_scheduler", "max_local_workers", "DEFAULT_CONNECT_TIMEOUT",
           "worker_environ", "dataset_parts", "assemble_parts", "map_on_data", "holders", "default_client_or_none"]

DEFAULT_CONNECT_TIMEOUT = 10.0
# imported by every worker gcxr starts, while it starts (dask's ``preload``): the reduction and the
# likelihood code, so that the first task of each kind does not pay the imports (measured on the seed
# joint fit: building a chunk's terms took 0.20-0.27 s on a fresh worker, 0.07-0.11 s afterwards).
# For workers started by hand: ``dask worker --preload gcxr.likelihood --preload gcxr.reduce ...``
WORKER_PRELOAD = ("gcxr.reduce", "gcxr.likelihood")
"""Seconds to wait for a running scheduler (``--scheduler-timeout``)."""

_LOCAL = re.compile(r"local:(\d+)")
_ADDRESS = re.compile(r"(tcp|tls)://\S+:\d+")
_VALID = "threads, local:N, tcp://host:port, tls://host:port or a scheduler file (*.json)"


def max_local_workers() -> int:
    """The largest N accepted for ``local:N``: four worker processes per CPU core."""
    return 4 * (os.cpu_count() or 1)


def _error(spec: str, why: str):
    from .config import ConfigError          # deferred: config imports astropy and pydantic
    return ConfigError([("--scheduler", f"{spec!r}: {why}")])


def parse_scheduler(spec: str | None) -> tuple[str, object]:
    """Check a ``--scheduler`` spec before anything starts.

    Parameters
    ----------
    spec : str or None
        ``threads`` (or None / ""), ``local:N``, ``tcp://host:port``, ``tls://host:port`` or a
        path ending in ``.json``.

    Returns
    -------
    (kind, value) : tuple
        ``("threads", None)``, ``("local", N)``, ``("address", spec)`` or ``("file", path)``.

    Raises
    ------
    ConfigError
        For anything else (``localhost:8786``, ``locale:3``, ``local:abc``, ``inproc://x``), and
        for ``local:N`` with N outside ``1..max_local_workers()``.
    """
    if spec in (None, "", "threads"):
        return "threads", None
    spec = str(spec)
    m = _LOCAL.fullmatch(spec)
    if m:
        n, top = int(m.group(1)), max_local_workers()
        if not 1 <= n <= top:
            raise _error(spec, f"the number of local workers must be between 1 and {top} "
                               f"(4 per CPU core of this machine), got {n}")
        return "local", n
    if _ADDRESS.fullmatch(spec):
        return "address", spec
    if spec.endswith(".json"):
        return "file", spec
    hint = ""
    if re.fullmatch(r"[\w.\-]+:\d+", spec) and not spec.startswith("local:"):
        hint = f" (did you mean tcp://{spec}?)"
    elif spec.startswith("local"):
        hint = "; a local cluster is written local:N with a whole number N of worker processes"
    elif "://" in spec:
        hint = "; only tcp:// and tls:// scheduler addresses with a port are accepted"
    raise _error(spec, f"expected {_VALID}{hint}")


def _connect(spec: str, timeout: float, scheduler_file: str | None = None):
    from distributed import Client
    try:
        if scheduler_file is not None:
            return Client(scheduler_file=scheduler_file, timeout=timeout)
        return Client(spec, timeout=timeout)
    except (OSError, TimeoutError) as err:
        where = scheduler_file or spec
        raise _error(spec, f"no dask scheduler answered at {where} within {timeout:g} s ({err}); "
                           f"start one (dask scheduler) or raise --scheduler-timeout") from None


def make_client(spec: str | None, timeout: float = DEFAULT_CONNECT_TIMEOUT):
    """(client, cluster, description) for a ``--scheduler`` spec (see :func:`parse_scheduler`).

    Parameters
    ----------
    spec : str or None
        The scheduler spec.
    timeout : float
        Seconds to wait for a running scheduler to answer (``tcp://``, ``tls://``, scheduler file).

    Raises
    ------
    ConfigError
        For a spec :func:`parse_scheduler` refuses, a non-positive ``timeout``, or a scheduler that
        does not answer within ``timeout``.
    FileNotFoundError
        For a scheduler file that does not exist.
    """
    kind, value = parse_scheduler(spec)
    if kind == "threads":
        return None, None, {"scheduler": "threads", "n_workers": 1}
    if not timeout > 0:
        raise _error(spec, f"--scheduler-timeout must be positive, got {timeout}")
    if kind == "local":
        from distributed import Client, LocalCluster
        import dask
        env = worker_environ()
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env, **WORKER_CONFIG}), _environ(env):
            cluster = LocalCluster(n_workers=value, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   preload=list(WORKER_PRELOAD))
        client = Client(cluster)
        print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
        return client, cluster, {"scheduler": spec, "n_workers": value}
    if kind == "address":
        client = _connect(spec, timeout)
        print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
        return client, None, {"scheduler": spec, "n_workers": len(client.scheduler_info()["workers"])}
    from pathlib import Path
    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--scheduler {spec}: scheduler file not found")
    client = _connect(spec, timeout, scheduler_file=str(path))
    print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
    return client, None, {"scheduler": client.scheduler.address, "n_workers": len(client.scheduler_info()["workers"])}


# dask settings of the workers gcxr starts: no statistical profiler (it samples every thread's
# stack every 10 ms, holding the GIL: the likelihood's chunks, many small numpy calls, took
# 1.7-2x the client's time for the same terms with it)
WORKER_CONFIG = {"distributed.worker.profile.enabled": False}

MMAP_THRESHOLD = 64 * 2 ** 20
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD


@contextmanager
def _environ(env: dict):
    """``env`` in ``os.environ`` while the workers are spawned, the previous values restored after.

    dask's nannies take a variable from ``os.environ`` over their ``pre-spawn-environ`` config,
    and write that config into ``os.environ`` when they spawn: after any other LocalCluster in
    the process, gcxr's workers would otherwise get that cluster's ``MALLOC_TRIM_THRESHOLD_``."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def worker_environ() -> dict:
    """Environment for the worker processes gcxr starts: dask's defaults (one BLAS/OpenMP thread
    per worker) plus ``MALLOC_MMAP_THRESHOLD_`` = 64 MiB and ``MALLOC_TRIM_THRESHOLD_`` = 128 MiB
    (instead of dask's 64 kB).  A fixed trim threshold also fixes glibc's mmap threshold at
    128 kB, so every larger temporary of a likelihood call would be a fresh mmap, and a small trim
    threshold hands freed heap back to the system after every call (page faults on every call:
    workers computed the same terms 4-5x slower than the client); the two settings restore heap
    reuse for them, as in the client.  For clusters gcxr does not start, set the same variables
    and :data:`WORKER_CONFIG` for the workers (docs/clusters.md)."""
    import dask
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.setdefault("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)
    env["MALLOC_TRIM_THRESHOLD_"] = TRIM_THRESHOLD
    for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(key, 1)
    return env


def describe(client) -> dict:
    """Where a client's work runs: ``{"scheduler": address, "n_workers": n}`` (threads for None).

    Parameters
    ----------
    client : distributed.Client or None
        The client.

    Returns
    -------
    dict
        ``{'scheduler': ..., 'n_workers': ...}``.
    """
    if client is None:
        return {"scheduler": "threads", "n_workers": 1}
    return {"scheduler": client.scheduler.address, "n_workers": len(client.scheduler_info()["workers"])}


# ---- datasets that live on the cluster ------------------------------------------------------------

class _Held:
    """A variable of a persisted dataset that is not a dask array (e.g. a fit mask set on the
    client after the reduction): it travels with the task as it is."""

    def __init__(self, values):
        self.values = values


def dataset_parts(ds):
    """A dataset persisted on a cluster as ``(skeleton, layout, parts)``, or None when a dask
    variable has a chunk that is not persisted (the graph must run) or nothing is persisted.

    ``parts`` maps each variable to the nested futures of its chunks (or, for a variable in
    memory, the values).  A task given the parts receives the chunks themselves, on the worker
    that holds them, and :func:`assemble_parts` puts the dataset together without copying a
    single-chunk array: no finalize task per dataset (which copies, and costs a scheduler hop:
    50-70 ms per seed run).

    Parameters
    ----------
    ds : xarray.Dataset
        A dask-backed dataset (``client.persist``).

    Returns
    -------
    tuple or None
    """
    from distributed import futures_of  # deferred: distributed is imported only where a cluster is used
    futures = {f.key: f for f in futures_of(ds)}
    if not futures:
        return None

    def to_futures(k):
        if isinstance(k, list):
            return [to_futures(x) for x in k]
        return futures[k]
    parts = {}
    for name, var in ds.data_vars.items():
        if not hasattr(var.data, "__dask_keys__"):
            parts[name] = _Held(var.data)
            continue
        try:
            parts[name] = to_futures(var.data.__dask_keys__())
        except KeyError:                     # a chunk not persisted: the graph must run
            return None
    skeleton = ds.drop_vars(list(ds.data_vars))
    layout = {name: (var.dims, dict(var.attrs), dict(var.encoding)) for name, var in ds.data_vars.items()}
    return skeleton, layout, parts


def assemble_parts(skeleton, layout: dict, parts: dict):
    """Inverse of :func:`dataset_parts`, on the worker (the futures have become arrays).

    Parameters
    ----------
    skeleton : xarray.Dataset
        The coordinates and attributes.
    layout : dict
        Each variable's ``(dims, attrs, encoding)``.
    parts : dict
        Each variable's chunks (nested lists of arrays) or held values.

    Returns
    -------
    xarray.Dataset
    """
    import xarray as xr  # deferred: keeps gcxr.cluster light (the command line imports it)
    # one constructor call: assigning the variables one by one aligns each against the others
    # (~1 ms per variable, 24-40 ms for the 13 of a seed run)
    variables = {}
    for name, (dims, attrs, encoding) in layout.items():
        chunks = parts[name]
        if isinstance(chunks, _Held):
            data = chunks.values
        else:
            data = chunks[0] if len(dims) == 0 else _block(chunks)
        variables[name] = xr.Variable(dims, data, attrs, encoding)
    return xr.Dataset(variables, coords=skeleton.coords, attrs=skeleton.attrs)


def _block(nested):
    """``np.block`` of a nested list of chunks; the array itself when there is a single chunk."""
    import numpy as np  # deferred: keeps gcxr.cluster light (the command line imports it)
    inner = nested
    while isinstance(inner, list) and len(inner) == 1:
        inner = inner[0]
    return inner if not isinstance(inner, list) else np.block(nested)


def _apply_to_many(fn, pieces: list, *args) -> list:
    return [fn(assemble_parts(*p), *args) for p in pieces]


def _futures_in(nested) -> list:
    """The futures in a :func:`dataset_parts` ``parts`` dict (nested lists; held values skipped)."""
    if isinstance(nested, dict):
        return [f for v in nested.values() for f in _futures_in(v)]
    if isinstance(nested, list):
        return [f for v in nested for f in _futures_in(v)]
    return [] if isinstance(nested, _Held) else [nested]


def holders(client, futures: list[list]) -> list[str | None]:
    """The worker holding most of each dataset's persisted chunks (None where it has none), from
    one scheduler call for all of them; unfinished chunks are waited for first.

    Parameters
    ----------
    client : distributed.Client
        The cluster.
    futures : list of list of distributed.Future
        Each dataset's chunk futures.

    Returns
    -------
    list of str or None
        One worker address (or None) per dataset.
    """
    from distributed import wait  # deferred: distributed is imported only where a cluster is used
    every = [f for fs in futures for f in fs]
    if every and not all(f.done() for f in every):
        wait(every)
    who = client.who_has(every) if every else {}
    out = []
    for fs in futures:
        count: dict = {}
        for f in fs:
            for w in who.get(f.key, ()):
                count[w] = count.get(w, 0) + 1
        out.append(max(count, key=count.get) if count else None)
    return out


def map_on_data(client, fn, datasets, *args) -> list | None:
    """``fn(dataset, *args)`` for each persisted dataset, computed where the datasets are: one
    task per worker over the datasets it holds (one scheduler call finds the holders), only
    the results come back, in the order of ``datasets``.  None when a dataset is not wholly
    persisted (:func:`dataset_parts`): compute from the graph instead.

    Instead of a dask graph of reductions over each cube (the summary numbers of 30 survey runs
    took 5.2 s that way on ``local:2``), or a task per dataset (200 runs: 4.2 s, mostly the
    per-task cost), a worker applies ``fn`` to its runs in one task.

    Parameters
    ----------
    client : distributed.Client
        The cluster.
    fn : callable
        ``fn(xarray.Dataset, *args)``; must be importable on the workers.
    datasets : list of xarray.Dataset
        Persisted datasets.
    *args
        Further arguments of ``fn``.

    Returns
    -------
    object or None
        The running tasks: ``.result()`` waits and returns ``fn``'s results, one per dataset.
    """
    pieces = [dataset_parts(ds) for ds in datasets]
    if any(p is None for p in pieces):
        return None
    groups: dict = {}
    for i, w in enumerate(holders(client, [_futures_in(p[2]) for p in pieces])):
        groups.setdefault(w, []).append(i)
    tasks = [(idx, client.submit(_apply_to_many, fn, [pieces[i] for i in idx], *args, pure=False,
                                 workers=[w] if w is not None else None, allow_other_workers=True))
             for w, idx in groups.items()]
    return _Mapped(tasks, len(datasets))


class _Mapped:
    """The running tasks of :func:`map_on_data`; :meth:`result` waits and puts the results in order
    (the caller may do its own work while the workers compute)."""

    def __init__(self, tasks: list, n: int):
        self.tasks, self.n = tasks, n

    def result(self) -> list:
        out: list = [None] * self.n
        for idx, task in self.tasks:
            for i, r in zip(idx, task.result()):
                out[i] = r
        return out


def default_client_or_none():
    """The default dask.distributed client, or None (distributed not imported in this process,
    or no client made).

    Returns
    -------
    distributed.Client or None
    """
    if "distributed" not in sys.modules:       # no cluster was ever made in this process
        return None
    from distributed import default_client  # deferred: imported already (checked just above)
    try:
        return default_client()
    except ValueError:
        return None
