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

__all__ = ["make_client", "describe", "parse_scheduler", "max_local_workers", "DEFAULT_CONNECT_TIMEOUT",
           "worker_environ"]

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
        with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
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


MMAP_THRESHOLD = 64 * 2 ** 20


def worker_environ() -> dict:
    """Environment for the worker processes gcxr starts: dask's defaults (one BLAS/OpenMP thread
    per worker, ``MALLOC_TRIM_THRESHOLD_``) plus ``MALLOC_MMAP_THRESHOLD_`` = 64 MiB.  Setting the
    trim threshold fixes glibc's mmap threshold at 128 kB, so every larger temporary of a
    likelihood call would be a fresh mmap (page faults on every call: workers computed the same
    terms 4-5x slower than the client); the mmap threshold restores heap reuse for them.  For
    clusters gcxr does not start, set the same variables for the workers (docs/clusters.md)."""
    import dask
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.setdefault("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)
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
