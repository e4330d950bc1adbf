"""The seed's joint analysis through ``gcxr run`` with ``--scheduler local:2`` against threads.

Issue 12's first criterion: the seed's joint fit stage on ``local:2`` no slower than in process
(ratio <= 1.1).  Each side runs the whole program in a fresh process under ``measure.py``
(``gcxr run`` on the CTA-1DC seed runs with ``datasets.stack: false`` and the seed's point-source
model, as ``bench_seed.py``'s ``joint`` case), the two sides alternating, ``--repeat`` times each;
the stages come from each run's ``result.json`` (``timings_s``: reduce, fit, write, total; on
``local:2`` the cluster's start is in the process but in no stage) and the medians are compared.
The fits must be the same (statistic to 1e-9 relative).

    GCXR_DATA=../shared/data .venv/bin/python benchmarks/bench_cluster_seed.py --repeat 5
    # -> benchmarks/results/cluster-seed-DATE.json and a table
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_seed import REPO, SHARED, case_inputs, default_gcxr_python  # noqa: E402
from measure import measure  # noqa: E402

SCHEDULERS = ("threads", "local:2")
STAGES = ("reduce", "fit", "write", "total")


def run_one(python: Path, inputs: dict, scheduler: str, out: Path) -> dict:
    cmd = [str(python), "-m", "gcxr", "run", str(inputs["gcxr_config"]), "--models", str(inputs["models"]),
           "--out", str(out), "--scheduler", scheduler, "--quiet"]
    env = {"GCXR_DATA": os.environ.get("GCXR_DATA", str(SHARED / "data"))}
    r = measure(cmd, env=env, cwd=REPO, result_file=out / "result.json")
    res = r.get("stdout_json") or {}
    t = res.get("timings_s", {})
    return {"scheduler": scheduler, "rc": r["rc"], "wall_s": r["wall_s"], "peak_rss_tree_mb": r["peak_rss_mb"],
            "cpu_s": r.get("cpu_s"), "stages_s": {k: t.get(k) for k in STAGES},
            "compute": res.get("compute"), "total_stat": (res.get("fit") or {}).get("total_stat"),
            "nfev": (res.get("fit") or {}).get("nfev"), "stderr_tail": (r.get("stderr_tail") or "")[-1000:]}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for s in SCHEDULERS:
        ok = [r for r in runs if r["scheduler"] == s and r["rc"] == 0]
        out[s] = {"n": len(ok), "wall_s": [r["wall_s"] for r in ok],
                  **{f"{k}_s": [r["stages_s"][k] for r in ok] for k in STAGES}}
        out[s]["median"] = {k: statistics.median(v) for k, v in out[s].items() if k.endswith("_s") and v}
    a, b = out["threads"].get("median", {}), out["local:2"].get("median", {})
    out["ratio_local2_over_threads"] = {k: b[k] / a[k] for k in a if k in b and a[k]}
    stats = {r["total_stat"] for r in runs if r["rc"] == 0}
    ref = min(stats) if stats else None
    out["stat_rel_spread"] = (max(stats) - min(stats)) / abs(ref) if stats and ref else None
    return out


def table(summary: dict) -> str:
    lines = [f"{'stage':8s} {'threads (median)':>17s} {'local:2 (median)':>17s} {'ratio':>7s}"]
    for k in ("fit_s", "reduce_s", "write_s", "total_s", "wall_s"):
        a = summary["threads"]["median"].get(k)
        b = summary["local:2"]["median"].get(k)
        r = summary["ratio_local2_over_threads"].get(k)
        if a is not None and b is not None:
            lines.append(f"{k[:-2]:8s} {a:17.3f} {b:17.3f} {r:7.2f}")
    lines.append("ratio = local:2 / threads (issue 12: fit <= 1.1); wall = the whole process incl. the "
                 "cluster's start on local:2; statistic spread over all runs: "
                 f"{summary['stat_rel_spread']:.1e}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs per side, alternating (default 5)")
    ap.add_argument("--gcxr-python", default=str(default_gcxr_python()))
    today = _dt.date.today().isoformat()
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / f"cluster-seed-{today}.json"))
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="gcxr-bench-cluster-seed-") as tmp:
        tmp = Path(tmp)
        inputs = case_inputs("joint", SHARED / "reference" / "gammapy-2.1-cta1dc-gc", tmp)
        for i in range(args.repeat):
            for s in SCHEDULERS:
                r = run_one(Path(args.gcxr_python), inputs, s, tmp / f"out-{s.replace(':', '')}-{i}")
                print(f"[{i}] {s}: rc {r['rc']}, wall {r['wall_s']:.2f} s, stages {r['stages_s']}",
                      file=sys.stderr, flush=True)
                runs.append(r)
    summary = summarise(runs)
    report = {"date": _dt.datetime.now().isoformat(timespec="seconds"),
              "host": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                       "loadavg_end": list(os.getloadavg())},
              "settings": {"repeat": args.repeat, "schedulers": list(SCHEDULERS), "python": args.gcxr_python},
              "runs": runs, "summary": summary, "table": table(summary).splitlines()}
    Path(args.out).write_text(json.dumps(report, indent=1, default=float) + "\n")
    print(table(summary))
    print(f"wrote {args.out}")
    return 0 if all(r["rc"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
