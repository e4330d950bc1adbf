"""Where the work runs: in-process threads, a LocalCluster, or an existing scheduler.

gcxr never starts a cluster unless asked (``--scheduler`` or an explicit call).
For SLURM/PBS, start a dask-jobqueue cluster and pass its client (see docs/clusters.md).
"""
from __future__ import annotations

__all__ = ["make_client", "describe"]


def make_client(spec: str | None):
    """(client, cluster, description) for ``threads`` | ``local:N`` | ``tcp://host:port`` | scheduler file."""
    if spec in (None, "", "threads"):
        return None, None, {"scheduler": "threads", "n_workers": 1}
    from distributed import Client, LocalCluster
    if spec.startswith("local"):
        n = int(spec.split(":", 1)[1]) if ":" in spec else 2
        if n < 1:
            raise ValueError(f"--scheduler {spec}: need at least one worker")
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


def describe(client) -> dict:
    if client is None:
        return {"scheduler": "threads", "n_workers": 1}
    return {"scheduler": client.scheduler.address, "n_workers": len(client.scheduler_info()["workers"])}
