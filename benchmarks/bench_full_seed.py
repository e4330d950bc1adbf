"""The whole seed script side by side: gammapy_seed.py (gammapy 2.1) vs benchmarks/gcxr_seed.py.

Each runs in a fresh process under measure.py (wall time, peak RSS of the process tree).

    GCXR_DATA=../shared/data GAMMAPY_DATA=../shared/data python benchmarks/bench_full_seed.py \\
        [--gammapy-python .venv-gammapy/bin/python] [--out benchmarks/results/full-seed-DATE.json]
"""
import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEED = REPO.parent / "shared" / "reference" / "gammapy-2.1-cta1dc-gc" / "gammapy_seed.py"


def main():
    ap = argparse.ArgumentParser()
    default_gp = REPO / ".venv-gammapy" / "bin" / "python"
    if not default_gp.exists():
        default_gp = Path("/work/venv-gammapy/bin/python")
    ap.add_argument("--gammapy-python", default=str(default_gp))
    ap.add_argument("--gcxr-python", default=sys.executable)
    ap.add_argument("--out")
    a = ap.parse_args()
    env = dict(os.environ)
    data = env.get("GCXR_DATA") or env.get("GAMMAPY_DATA") or str(REPO.parent / "shared" / "data")
    env.update(GCXR_DATA=data, GAMMAPY_DATA=data)
    res = {"gammapy": measure([a.gammapy_python, str(SEED)], env=env),
           "gcxr": measure([a.gcxr_python, str(REPO / "benchmarks" / "gcxr_seed.py")], env=env)}
    g, x = res["gammapy"], res["gcxr"]
    print(f"{'':10s} {'gammapy':>10s} {'gcxr':>10s} {'ratio':>8s}")
    print(f"{'wall s':10s} {g['wall_s']:10.2f} {x['wall_s']:10.2f} {g['wall_s'] / x['wall_s']:8.1f}")
    print(f"{'peak MB':10s} {g['peak_rss_mb']:10.0f} {x['peak_rss_mb']:10.0f} {g['peak_rss_mb'] / x['peak_rss_mb']:8.1f}")
    gt, xt = (g.get("stdout_json") or {}).get("timings", {}), (x.get("stdout_json") or {}).get("timings", {})
    for k in sorted(set(gt) | set(xt)):
        gv, xv = gt.get(k), xt.get(k)
        ratio = f"{gv / xv:8.1f}" if gv and xv else ""
        print(f"{k:16s} {gv if gv is not None else '-':>8} {xv if xv is not None else '-':>8} {ratio}")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
