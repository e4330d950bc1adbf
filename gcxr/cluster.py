"""Where the work runs: in-process threads, a LocalCluster, or an existing scheduler.

gcxr never starts a cluster unless asked (``--scheduler`` or an explicit call).
For SLURM/PBS, start a dask-jobqueue cluster and pass its client (see docs/clusters.md).
"""
from __future__ import annotations

__all__ = ["make_client", "describe", "worker_environ"]


def make_client(spec: str | None):
    """(client, cluster, description) for ``threads`` | ``local:N`` | ``tcp://host:port`` | scheduler file."""
    if spec in (None, "", "threads"):
        return None, None, {"scheduler": "threads", "n_workers": 1}
    from distributed import Client, LocalCluster
    if spec.startswith("local"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else 2
        if n < 1:
            raise ValueError(f"--scheduler {spec}: need at least one worker")
        import dask
        with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
        print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
        return client, cluster, {"scheduler": spec, "n_workers": n}
    if spec.startswith(("tcp://", "tls://", "inproc://")):
        client = Client(spec)
        print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
        return client, None, {"scheduler": spec, "n_workers": len(client.scheduler_info()["workers"])}
    if spec.endswith(".json"):                   # a scheduler file (dask scheduler --scheduler-file ...)
        from pathlib import Path
        if not Path(spec).expanduser().exists():
            raise FileNotFoundError(f"--scheduler {spec}: scheduler file not found")
        client = Client(scheduler_file=str(Path(spec).expanduser()))
        print(f"gcxr: dask dashboard at {client.dashboard_link}", flush=True)
        return client, None, {"scheduler": client.scheduler.address,
                              "n_workers": len(client.scheduler_info()["workers"])}
    raise ValueError(f"--scheduler: expected threads, local:N, tcp://host:port or a scheduler file (*.json), "
                     f"got {spec!r}")


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
    if client is None:
        return {"scheduler": "threads", "n_workers": 1}
    return {"scheduler": client.scheduler.address, "n_workers": len(client.scheduler_info()["workers"])}
