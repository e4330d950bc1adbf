"""Start-up costs of gcxr: ``python -c pass``, ``import gcxr``, ``gcxr --help``, ``gcxr --version``.

Each command runs ``--repeat`` times in a fresh process under ``measure.py``; the best wall time
and the median are reported (the best is the least disturbed by other load on the machine).
``--checkout DIR`` (repeatable) measures other copies of gcxr side by side, interleaved run by
run so that a change of load hits all of them alike: e.g. a ``git archive`` of an older commit.

    python benchmarks/bench_startup.py --repeat 7
    python benchmarks/bench_startup.py --checkout before=/tmp/gcxr-old --checkout after=. --out results.json

``--run CONFIG`` adds the whole process ``gcxr run CONFIG --no-fit --quiet`` (e.g. the seed's
``analysis_config.yaml``; needs ``$GCXR_DATA``) to the cases.

``--importtime`` also prints the ten largest cumulative entries of ``python -X importtime``
for ``import gcxr`` and ``gcxr --help`` of each checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measure  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass": ["-c", "pass"],
    "import gcxr": ["-c", "import gcxr"],
    "gcxr --help": ["-m", "gcxr", "--help"],
    "gcxr --version": ["-m", "gcxr", "--version"],
}


def importtime_top(python: str, args: list[str], env: dict, n: int = 10) -> list[tuple[float, str]]:
    """The ``n`` largest cumulative entries (ms, module) of ``python -X importtime ARGS``."""
    proc = subprocess.run([python, "-X", "importtime", *args], capture_output=True, text=True, env=env, timeout=300,
                          cwd="/")      # not this folder: with -c it would come first on sys.path
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S.*)", line)
        if m:
            rows.append((int(m.group(1)) / 1e3, m.group(2) + m.group(3)))
    return sorted(rows, reverse=True)[:n]


def _per(values: dict, fn) -> dict:
    """fn over each list of values (None where a case never succeeded)."""
    return {n: {c: (fn(v) if v else None) for c, v in per_case.items()} for n, per_case in values.items()}


def _fmt(x) -> str:
    return f"{'-':>13s}" if x is None else f"{x:13.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--python", default=sys.executable, help="interpreter with gcxr's dependencies")
    ap.add_argument("--checkout", action="append", default=[], metavar="NAME=DIR",
                    help="a copy of gcxr to measure (its folder holding gcxr/); default: this checkout")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--importtime", action="store_true", help="print the largest -X importtime entries")
    ap.add_argument("--run", metavar="CONFIG", help="also measure 'gcxr run CONFIG --no-fit --quiet'")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    checkouts = dict(c.split("=", 1) for c in args.checkout) if args.checkout else {"gcxr": str(REPO)}
    envs = {name: {"PYTHONPATH": str(Path(d).resolve())} for name, d in checkouts.items()}
    cases = dict(CASES)
    tmp = tempfile.TemporaryDirectory(prefix="gcxr-startup-")
    if args.run:
        cases["gcxr run --no-fit"] = ["-m", "gcxr", "run", str(Path(args.run).resolve()), "--no-fit", "--quiet",
                                      "--out", tmp.name]

    walls: dict = {name: {case: [] for case in cases} for name in checkouts}
    cpus: dict = {name: {case: [] for case in cases} for name in checkouts}
    for _ in range(args.repeat):
        for case, cmd in cases.items():
            for name in checkouts:
                r = measure([args.python, *cmd], env=envs[name], cwd="/")
                if r["rc"] != 0:      # e.g. --version of a checkout that has none: reported, not timed
                    print(f"{name}: {case} failed (rc {r['rc']}): {r.get('stderr_tail', '')[-300:]}", file=sys.stderr)
                    continue
                walls[name][case].append(r["wall_s"])
                cpus[name][case].append(r["cpu_s"])

    report = {"repeat": args.repeat, "checkouts": checkouts, "python": args.python, "load_avg": os.getloadavg(),
              "wall_s": walls, "best_s": _per(walls, min), "median_s": _per(walls, statistics.median),
              "cpu_s": cpus, "best_cpu_s": _per(cpus, min)}
    head = f"{'case':18s}" + "".join(f" {n + ' best':>13s} {n + ' median':>13s} {n + ' cpu':>13s}"
                                     for n in checkouts)
    print(head)
    for case in cases:
        print(f"{case:18s}" + "".join(f" {_fmt(report['best_s'][n][case])} {_fmt(report['median_s'][n][case])}"
                                      f" {_fmt(report['best_cpu_s'][n][case])}" for n in checkouts))
    print(f"(wall s: best and median of {args.repeat}; cpu: least user+system s; "
          f"load average at the end {os.getloadavg()[0]:.1f})")
    if args.importtime:
        report["importtime_ms"] = {}
        for name in checkouts:
            env = dict(os.environ, **envs[name])
            for case in ("import gcxr", "gcxr --help"):
                top = importtime_top(args.python, CASES[case], env)
                report["importtime_ms"][f"{name}: {case}"] = top
                print(f"\n{name}: python -X importtime {' '.join(CASES[case])} (cumulative ms)")
                for ms, mod in top:
                    print(f"  {ms:9.1f}  {mod}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
