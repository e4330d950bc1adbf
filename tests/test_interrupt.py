"""Interruptions: SIGINT and SIGTERM at every stage of a ``gcxr run`` (docs/robustness.md,
"Interruptions and outputs").

Each case starts from an output folder that holds a complete earlier set of outputs, runs
``python -m gcxr run`` into it with ``GCXR_TEST_PAUSE_AT=<stage>`` (gcxr waits at that point:
``gcxr._testhook``), sends the signal once gcxr says it is there, and checks that the process
ended within 5 s with status 128 + signal, that the folder holds either the complete previous
set (byte for byte) or the complete new set (the files that its ``result.json`` lists), and that
nothing temporary is left.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gcxr
from gcxr.cli import main
from gcxr.outputs import JOURNAL, OUTPUT_NAMES, STAGING_PREFIX, OutputSet, recover

from conftest import SMALL_STORE_CONFIG, SMALL_STORE_MODELS

REPO = Path(gcxr.__file__).resolve().parents[1]
MODELS = SMALL_STORE_MODELS        # conftest: a point source on the small store
FULL_SET = sorted(OUTPUT_NAMES)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny store, its config and models, and a folder with a complete earlier set of outputs."""
    from gcxr.simulate import simulate_datastore
    base = tmp_path_factory.mktemp("interrupt")
    simulate_datastore(base / "store", pointings=[(0.0, 0.0)], livetime=120.0, seed=7, quiet=True)
    (base / "config.yaml").write_text(SMALL_STORE_CONFIG.format(store=base / "store"))
    (base / "models.yaml").write_text(MODELS)
    previous = base / "previous"
    assert main(["run", str(base / "config.yaml"), "--models", str(base / "models.yaml"), "--out", str(previous),
                 "--quiet"]) == 0
    return base, previous


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry of ``folder`` (hidden ones too) -> sha256 of its bytes ('dir' for folders)."""
    return {p.name: ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.iterdir())}


def is_complete_new_set(folder: Path, before: dict[str, str]) -> bool:
    """``result.json`` is new and lists exactly the files beside it, with their sizes."""
    listing = {p.name for p in folder.iterdir()}
    if "result.json" not in listing or snapshot(folder).get("result.json") == before.get("result.json"):
        return False
    outputs = json.loads((folder / "result.json").read_text())["outputs"]
    return (set(outputs) | {"result.json"} == listing
            and all((folder / n).stat().st_size == size for n, size in outputs.items()))


def gcxr_run(setup, out: Path, stage: str, sig: int, *extra: str):
    """Run gcxr into ``out``, signal it at ``stage``; (exit status, seconds after the signal, stderr)."""
    base, _ = setup
    env = dict(os.environ, GCXR_TEST_PAUSE_AT=stage, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "gcxr", "run", str(base / "config.yaml"), "--models", str(base / "models.yaml"),
           "--out", str(out), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines = []
    try:
        for line in proc.stderr:                     # wait until gcxr says it reached the stage
            lines.append(line)
            if f"test pause at {stage}" in line:
                break
        else:
            pytest.fail(f"gcxr never reached {stage!r}: {''.join(lines)[-2000:]}")
        proc.send_signal(sig)
        t0 = time.monotonic()
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"gcxr still running 5 s after {signal.Signals(sig).name} at {stage}")
        elapsed = time.monotonic() - t0
        lines.append(proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()                          # else a ResourceWarning (an error in the suite)
    return rc, elapsed, "".join(lines)


CASES = [
    ("reduce", signal.SIGINT), ("reduce", signal.SIGTERM),
    ("fit", signal.SIGINT), ("fit", signal.SIGTERM),
    ("write:datasets.nc", signal.SIGINT), ("write:datasets.nc", signal.SIGTERM),
    ("write:fit_result.nc", signal.SIGINT), ("write:models_bestfit.yaml", signal.SIGTERM),
    ("write:result.json", signal.SIGTERM),
    ("commit", signal.SIGINT), ("commit", signal.SIGTERM),
]


@pytest.mark.parametrize("stage,sig", CASES, ids=[f"{s}-{signal.Signals(g).name}" for s, g in CASES])
def test_signal_leaves_the_previous_or_the_new_set(setup, tmp_path, stage, sig):
    out = tmp_path / "out"
    shutil.copytree(setup[1], out)
    before = snapshot(out)
    assert sorted(before) == FULL_SET
    rc, elapsed, err = gcxr_run(setup, out, stage, sig)
    assert rc == 128 + sig, err[-2000:]
    assert elapsed < 5
    assert "Traceback" not in err, err[-2000:]
    assert signal.Signals(sig).name in err
    after = snapshot(out)
    assert not [n for n in after if n.startswith(".") or n.endswith(".tmp")], after     # no debris
    if stage == "commit":           # the swap had begun: the signal waits until it is done
        assert is_complete_new_set(out, before), after
    else:
        assert after == before


def test_no_fit_replaces_the_whole_set(setup, tmp_path):
    """``--no-fit`` into a folder with fit results: the old fit outputs go with the old datasets."""
    base, previous = setup
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    before = snapshot(out)
    assert main(["run", str(base / "config.yaml"), "--no-fit", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["datasets.nc", "result.json"]
    assert is_complete_new_set(out, before)
    assert json.loads((out / "result.json").read_text())["fit"] is None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_signal_taken_by_another_thread_still_ends_the_run_at_once(setup, tmp_path):
    """Every thread but the main one blocks SIGINT and SIGTERM (BLAS and dask pool threads), so a
    signal sent to any thread id is taken by the main thread, which is waiting for dask: the
    process ends within 5 s although the paused task would go on for 30 s."""
    base, _ = setup
    env = dict(os.environ, GCXR_TEST_PAUSE_AT="reduce", PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "gcxr", "run", str(base / "config.yaml"), "--models", str(base / "models.yaml"),
           "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        for line in proc.stderr:
            if "test pause at reduce" in line:
                break
        tasks = Path(f"/proc/{proc.pid}/task")
        others = sorted(int(t.name) for t in tasks.iterdir() if int(t.name) != proc.pid)
        assert others, "the reduction runs on a pool thread"
        both = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
        for tid in others:
            status = (tasks / str(tid) / "status").read_text()
            blocked = int(status.split("SigBlk:")[1].split()[0], 16)
            assert blocked & both == both, f"thread {tid} takes SIGINT/SIGTERM"
        os.kill(others[-1], signal.SIGTERM)          # directed at a worker thread first
        rc = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()                          # else a ResourceWarning (an error in the suite)
    assert rc == 128 + signal.SIGTERM


def test_stale_staging_folder_of_a_dead_process_is_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{STAGING_PREFIX}{dead.pid}"
    stale.mkdir()
    (stale / "datasets.nc").write_bytes(b"half")
    out = OutputSet(tmp_path).open()
    assert not stale.exists() and out.staging.is_dir()
    out.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_swap_cut_short_is_completed(tmp_path):
    """A process killed (SIGKILL) between the moves of its swap left the journal; recovery rolls forward."""
    (tmp_path / "result.json").write_text('{"old": 1}')
    (tmp_path / "fit_result.nc").write_bytes(b"old fit")
    staging = tmp_path / f"{STAGING_PREFIX}999999"
    staging.mkdir()
    (staging / "result.json").write_text('{"new": 1}')
    (tmp_path / "datasets.nc").write_bytes(b"new cube")          # moved before the kill
    (tmp_path / JOURNAL).write_text(json.dumps({"staging": staging.name, "remove": ["fit_result.nc"],
                                                "move": ["datasets.nc", "result.json"]}))
    assert recover(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datasets.nc", "result.json"]
    assert json.loads((tmp_path / "result.json").read_text()) == {"new": 1}
    assert not recover(tmp_path)
