"""How much faster two processes are than one on this machine, for memory-bound numpy work.

The ceiling of a two-worker cluster for a likelihood round that streams its terms through
memory: the same multiply-and-sum over arrays of 0.08, 8 and 80 MB, in one process alone and
then in two processes at once (one BLAS/OpenMP thread each); throughput = 2 x t_alone / the
slower of the two.

    .venv/bin/python benchmarks/bench_memory_throughput.py   # -> benchmarks/results/memory-throughput-DATE.json
"""

from __future__ import annotations

import datetime as _dt
import json
import multiprocessing as mp
import os
import platform
import time
from pathlib import Path

import numpy as np

SIZES = (10_000, 1_000_000, 10_000_000)       # float64 elements: 0.08, 8, 80 MB per array
TOTAL = 3e8                                    # elements processed per measurement


def work(size: int) -> float:
    a = np.random.default_rng(0).random(size)
    b = np.random.default_rng(1).random(size)
    out = np.empty_like(a)
    np.multiply(a, b, out=out)                 # first touch outside the timing
    t = time.perf_counter()
    for _ in range(int(TOTAL // size)):
        np.multiply(a, b, out=out)
        out.sum()
    return time.perf_counter() - t


def main() -> int:
    rows = []
    with mp.get_context("spawn").Pool(2) as pool:
        pool.map(work, [1000, 1000])           # start both processes before timing
        for size in SIZES:
            alone = work(size)
            two = pool.map(work, [size, size])
            rows.append({"array_mb": size * 8 / 1e6, "alone_s": alone, "two_at_once_s": two,
                         "throughput_two_over_one": 2 * alone / max(two)})
            print(f"{size * 8 / 1e6:7.2f} MB arrays: alone {alone:.2f} s, two at once {two[0]:.2f} / {two[1]:.2f} s"
                  f" -> x{rows[-1]['throughput_two_over_one']:.2f}")
    out = Path(__file__).resolve().parent / "results" / f"memory-throughput-{_dt.date.today().isoformat()}.json"
    out.write_text(json.dumps({"date": _dt.datetime.now().isoformat(timespec="seconds"),
                               "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                        "loadavg": list(os.getloadavg())},
                               "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
