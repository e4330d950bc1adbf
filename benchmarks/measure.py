"""Run a command and measure its wall time and the peak memory of its whole process tree.

Peak memory is sampled: every ``poll_s`` (20 ms) the resident set sizes of the child and all its
descendants (dask workers, multiprocessing pools) are summed with psutil, and the largest sum is
reported as ``peak_rss_mb``. Allocations that rise and fall between two samples are missed, and
shared pages are counted once per process. Two kernel figures are reported beside it:

* ``ru_maxrss_mb``: ``os.wait4`` of this child - the largest RSS of any *single* process in its
  tree (the child, or a descendant it waited for), exact but not a sum over processes;
* ``cpu_s``: user + system CPU seconds of the child and the descendants it waited for (``os.wait4``),
  a figure that, unlike the wall time, does not grow when other processes share the cores;
* ``ru_maxrss_children_mb``: ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of the measuring
  process after the child ended - the same kind of maximum, but over every child this process has
  waited for so far (so it only grows across repeated calls).

Per process, from the same samples: ``processes`` lists every process seen in the tree (the child
first, then by first appearance) with its ``pid``, ``ppid``, ``name``, a shortened ``cmdline``, a
``role`` (``root`` for the child; ``worker`` for a multiprocessing or dask worker, recognised by
its command line; ``other`` otherwise), its sampled ``peak_rss_mb`` and ``n_samples``.
``peak_rss_max_process_mb`` is the largest of those peaks. For ``gcxr run --scheduler local:N``
the root process holds the client, the scheduler and the nannies; the workers are its children.

Library use::

    from measure import measure
    r = measure(["python", "-c", "print('{}')"])            # -> dict
    r = measure(cmd, env={"GAMMAPY_DATA": "..."}, result_file="out/result.json")

``stdout_json`` is the parsed JSON of ``result_file`` if given, else of the child's stdout (whole
stdout, or failing that its last line that parses), else None. A command that cannot be started
gives ``rc = 127`` and an ``error`` entry instead of an exception.

Command line::

    python benchmarks/measure.py [--result-file F] [--env KEY=VALUE ...] -- CMD [ARGS ...]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

__all__ = ["measure"]

_MAXRSS_TO_MB = 1 / 1024 if sys.platform.startswith("linux") else 1 / 1024**2  # kB on Linux, bytes on macOS
_TAIL = 4000


def _tree_rss(proc: psutil.Process, per_process: dict | None = None) -> int:
    """Sum of the RSS of ``proc`` and all its living descendants, in bytes.

    With ``per_process`` (a dict), each process's peak is recorded there by pid (see
    :func:`_note_process`).
    """
    try:
        procs = [proc, *proc.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0
    total = 0
    for p in procs:
        try:
            rss = p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        total += rss
        if per_process is not None:
            _note_process(per_process, p, rss, root=p.pid == proc.pid)
    return total


_CMDLINE_CHARS = 300


def _role(cmdline: str, root: bool) -> str:
    if root:
        return "root"
    if "multiprocessing.spawn" in cmdline or "multiprocessing.forkserver" in cmdline or "dask_worker" in cmdline \
            or "dask worker" in cmdline or "distributed.cli" in cmdline:
        return "worker"
    return "other"


def _note_process(per_process: dict, p: psutil.Process, rss: int, root: bool) -> None:
    """Keep the largest RSS of process ``p``; its identity is read once, when it is first seen."""
    entry = per_process.get(p.pid)
    if entry is None:
        try:
            cmdline = " ".join(p.cmdline())
            name, ppid = p.name(), p.ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            cmdline, name, ppid = "", "", None
        entry = per_process[p.pid] = {"pid": p.pid, "ppid": ppid, "name": name, "cmdline": cmdline[:_CMDLINE_CHARS],
                                      "role": _role(cmdline, root), "peak_rss": 0, "n_samples": 0}
    entry["peak_rss"] = max(entry["peak_rss"], rss)
    entry["n_samples"] += 1


def _process_table(per_process: dict) -> list[dict]:
    """The per-process records in MB, the root first, then in order of first appearance."""
    rows = sorted(per_process.values(), key=lambda e: e["role"] != "root")      # stable: first seen order kept
    return [{k: v for k, v in e.items() if k != "peak_rss"} | {"peak_rss_mb": e["peak_rss"] / 1024**2} for e in rows]


def _parse_json(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


@functools.lru_cache(maxsize=None)
def compile_gcxr() -> int:
    """Compile gcxr's modules to bytecode (``__pycache__``) once, before anything is measured.

    A package installed by pip has its bytecode compiled at install time (gammapy's is); an
    editable install of gcxr compiles each module on first import and caches it, unless
    ``PYTHONDONTWRITEBYTECODE`` is set - as it was in this project's shells until 2026-11-29, so
    every measured gcxr process compiled its ~100 modules from source (~0.2-0.3 s of each
    process, counted in its import stage) while gammapy's were read compiled.  Compiling here
    puts both sides on the footing of a normal installation.  Returns the number of files
    compiled (0 when the cache was current).
    """
    import compileall
    root = Path(__file__).resolve().parents[1] / "gcxr"
    before = sum(1 for _ in root.rglob("__pycache__/*.pyc"))
    compileall.compile_dir(str(root), quiet=1)
    return sum(1 for _ in root.rglob("__pycache__/*.pyc")) - before


def measure(
    cmd: Sequence[str],
    env: Mapping[str, str] | None = None,
    result_file: str | os.PathLike | None = None,
    *,
    cwd: str | os.PathLike | None = None,
    poll_s: float = 0.02,
    timeout_s: float | None = None,
) -> dict:
    """Run ``cmd`` (argv list, no shell) and return timing, memory and its JSON output.

    Parameters
    ----------
    cmd : argv of the command.
    env : extra environment variables, added to a copy of ``os.environ``.
    result_file : read ``stdout_json`` from this file (after the command ends) instead of stdout.
    cwd : working directory of the command.
    poll_s : memory sampling interval in seconds.
    timeout_s : kill the command's process tree after this many seconds (rc is then -9).

    Returns
    -------
    dict with ``cmd, wall_s, peak_rss_mb, rc, stdout_json`` and ``ru_maxrss_mb``,
    ``ru_maxrss_children_mb``, ``cpu_s``, ``n_samples``, ``timed_out``, ``processes`` (per-process
    peaks, see the module docstring), ``peak_rss_max_process_mb``, ``stderr_tail`` (and ``error`` if the
    command could not be started, ``stdout_tail`` if stdout was not JSON).
    """
    cmd = [str(c) for c in cmd]
    compile_gcxr()
    full_env = dict(os.environ)
    if env:
        full_env.update({k: str(v) for k, v in env.items()})
    out: dict[str, Any] = {"cmd": cmd, "wall_s": None, "peak_rss_mb": None, "rc": None, "stdout_json": None}

    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        t0 = time.perf_counter()
        try:
            child = subprocess.Popen(cmd, stdout=fout, stderr=ferr, env=full_env, cwd=cwd)
        except OSError as exc:
            out.update(rc=127, wall_s=0.0, peak_rss_mb=0.0, error=f"cannot start {cmd[0]!r}: {exc}")
            return out
        ps = psutil.Process(child.pid)
        peak, n_samples, timed_out = 0, 0, False
        per_process: dict[int, dict] = {}
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid == child.pid:
                break
            peak = max(peak, _tree_rss(ps, per_process))
            n_samples += 1
            if timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                timed_out = True
                for p in [*ps.children(recursive=True), ps]:
                    try:
                        p.kill()
                    except psutil.Error:
                        pass
            time.sleep(poll_s)
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4; keep Popen consistent

        fout.seek(0)
        stdout = fout.read().decode(errors="replace")
        ferr.seek(0)
        stderr = ferr.read().decode(errors="replace")

    out["wall_s"] = wall
    out["peak_rss_mb"] = peak / 1024**2
    out["rc"] = child.returncode
    out["ru_maxrss_mb"] = usage.ru_maxrss * _MAXRSS_TO_MB
    out["ru_maxrss_children_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * _MAXRSS_TO_MB
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["n_samples"] = n_samples
    out["timed_out"] = timed_out
    out["processes"] = _process_table(per_process)
    out["peak_rss_max_process_mb"] = max((e["peak_rss_mb"] for e in out["processes"]), default=0.0)

    if result_file is not None:
        path = Path(result_file)
        if path.is_file():
            try:
                out["stdout_json"] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                out["error"] = f"result file {path} is not JSON: {exc}"
        else:
            out["error"] = f"result file {path} was not written"
    else:
        out["stdout_json"] = _parse_json(stdout)
    if out["stdout_json"] is None and stdout.strip():
        out["stdout_tail"] = stdout[-_TAIL:]
    out["stderr_tail"] = stderr[-_TAIL:]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Run a command; print JSON with wall time, peak RSS of its process tree and its JSON output.",
        usage="%(prog)s [--result-file F] [--env KEY=VALUE ...] -- CMD [ARGS ...]",
    )
    ap.add_argument("--result-file", help="read the command's JSON result from this file instead of stdout")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment variable")
    ap.add_argument("--poll", type=float, default=0.02, help="memory sampling interval in s (default 0.02)")
    ap.add_argument("--timeout", type=float, default=None, help="kill the command after this many seconds")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command given (put it after --)")
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    result = measure(cmd, env=env, result_file=args.result_file, poll_s=args.poll, timeout_s=args.timeout)
    print(json.dumps(result, indent=1))
    return 0 if result["rc"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
