"""The outputs of one ``gcxr run`` as one unit: staged in a private folder, then swapped in.

A reader of the output folder sees either the complete previous set of outputs or the complete
new one, and an interrupted run leaves neither debris nor a hang (docs/robustness.md,
"Interruptions and outputs"):

1. :meth:`OutputSet.open`, before any reduction, checks the folder (``--out`` a file, not
   creatable, read-only: :class:`OutputError`), finishes a swap that an earlier process left
   half-done (see step 4), removes staging folders of processes that no longer exist, and makes
   this run's staging folder ``<out>/.gcxr-tmp-<pid>/`` (same file system, so the moves of step 3
   are atomic ``rename`` calls).
2. :meth:`OutputSet.write` writes each output there under its final name; a full disk becomes
   an :class:`OutputError` that names the file and the free space.
3. :meth:`OutputSet.commit` swaps the set in: it writes a journal ``<out>/.gcxr-commit.json``
   (what to remove, what to move, in order), removes the previous ``result.json`` (the manifest
   of a set) and the previous outputs that the new set does not have (``gcxr run --no-fit``
   removes ``fit_result.nc``, ``models_bestfit.yaml`` ...), moves every new file into place with
   ``os.replace`` and ``result.json`` - which lists the set - last, then deletes the journal and
   the staging folder.  So whenever ``result.json`` exists, the files it lists in ``outputs``
   are the ones beside it.
4. A process killed (SIGKILL, power loss) during those few renames leaves the journal; the next
   :meth:`OutputSet.open` of that folder, or :func:`recover`, completes the swap (every staged
   file was already complete).

:func:`handle_signals` turns SIGINT and SIGTERM into a clean exit that fits the phase: while
computing, an :class:`Interrupted` exception (a ``KeyboardInterrupt``) unwinds the command and
the staging folder is removed; while an output file is being written (netCDF-C and xarray hold
locks that an exception raised inside them can leave taken), the staging folder is removed and
the process exits at once with ``os._exit``; during the swap the signal waits until the swap is
done.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ._testhook import pause_point, release

__all__ = ["OutputError", "Interrupted", "OutputSet", "OUTPUT_NAMES", "MANIFEST", "recover", "handle_signals"]

#: the files one ``gcxr run`` writes, in the order they are written (the manifest last)
OUTPUT_NAMES = ("datasets.nc", "fit_result.nc", "models_bestfit.yaml", "models_bestfit_covariance.dat",
                "result.json")
MANIFEST = "result.json"
STAGING_PREFIX = ".gcxr-tmp-"
JOURNAL = ".gcxr-commit.json"
_LOW_SPACE = 1 << 20          # bytes: below this a netCDF "HDF error" is taken for a full disk


class OutputError(ValueError):
    """The outputs cannot be written: ``--out`` unusable, the disk full, a write failed."""


class Interrupted(KeyboardInterrupt):
    """The process received SIGINT or SIGTERM; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int, note: str = ""):
        self.signum = int(signum)
        self.exit_code = 128 + self.signum
        self.note = note
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}" + (f"; {note}" if note else ""))


# --------------------------------------------------------------------------- the swap
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # a process of another user: alive
        return True
    return True


def _apply(out: Path, journal: dict) -> None:
    """Carry out a swap journal (idempotent: what was done already is skipped)."""
    staging = out / journal["staging"]
    for name in journal["remove"]:
        try:
            (out / name).unlink()
        except FileNotFoundError:
            pass
    for i, name in enumerate(journal["move"]):
        if (staging / name).exists():
            os.replace(staging / name, out / name)
        if i == 0:
            pause_point("commit")            # tests only: GCXR_TEST_PAUSE_AT=commit (gcxr._testhook)
    try:
        (out / JOURNAL).unlink()
    except FileNotFoundError:
        pass
    shutil.rmtree(staging, ignore_errors=True)


def recover(out: str | Path) -> bool:
    """Finish a swap of outputs that a killed process left half-done in ``out``.

    Returns True if there was one.  Safe to call on any folder; :meth:`OutputSet.open` calls it.

    Parameters
    ----------
    out : str or Path
        An output folder.
    """
    out = Path(out)
    path = out / JOURNAL
    if not path.is_file():
        return False
    try:
        journal = json.loads(path.read_text())
        ok = (isinstance(journal, dict) and isinstance(journal.get("staging"), str)
              and journal["staging"].startswith(STAGING_PREFIX) and "/" not in journal["staging"]
              and all(isinstance(journal.get(k), list) and all(n in OUTPUT_NAMES for n in journal[k])
                      for k in ("remove", "move")))
    except (OSError, ValueError):
        ok = False
    if not ok:
        raise OutputError(f"{path}: unreadable swap journal of an interrupted gcxr run; remove it (and any "
                          f"{STAGING_PREFIX}* folder beside it) by hand")
    _apply(out, journal)
    return True


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _write_failure(target: Path, folder: Path, exc: BaseException) -> OutputError:
    """An :class:`OutputError` naming ``target`` and, when the disk is full, the free space."""
    free = _free_bytes(folder)
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        isinstance(exc, RuntimeError) and free is not None and free < _LOW_SPACE)
    if full:
        where = f"{free / 1e6:.1f} MB free" if free is not None else "free space unknown"
        return OutputError(f"{target}: no space left on the disk while writing it ({where} in {folder}); "
                           f"free some space or choose another --out ({exc})")
    return OutputError(f"{target}: cannot write it: {exc}")


class OutputSet:
    """The outputs of one command: staged in ``<out>/.gcxr-tmp-<pid>/``, swapped in by :meth:`commit`.

    Parameters
    ----------
    out : str or Path, optional
        The output folder (made if missing); it can also be given to :meth:`open`.

    Examples
    --------
    >>> import tempfile
    >>> out = OutputSet(tempfile.mkdtemp()).open()
    >>> _ = out.write("result.json", lambda p: p.write_text("{}"))
    >>> [p.name for p in out.commit()]
    ['result.json']
    """

    def __init__(self, out: str | Path | None = None):
        self.out = Path(os.path.expandvars(str(out))).expanduser() if out is not None else Path("gcxr-out")
        self.staging: Path | None = None
        self.staged: dict[str, Path] = {}
        self.phase = "idle"            # idle | write | commit | done; read by the signal handler
        self.pending_signal: int | None = None
        self._created = False          # open() made the folder: discard() removes it if left empty

    def open(self, out: str | Path | None = None) -> "OutputSet":
        """Check ``out`` (default: the folder given when made), finish an interrupted swap there,
        make this run's staging folder.

        Parameters
        ----------
        out : str or Path, optional
            The output folder (default: the one given when made).

        Returns
        -------
        OutputSet
            ``self``.
        """
        if out is not None:
            self.out = Path(os.path.expandvars(str(out))).expanduser()
        out = self.out
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out}: exists and is not a folder")
        self._created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
        if not os.access(out, os.W_OK | os.X_OK):
            raise OutputError(f"--out {out}: the folder is not writable")
        recover(out)
        for old in out.glob(STAGING_PREFIX + "*"):
            pid = old.name[len(STAGING_PREFIX):]
            if old.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        staging = out / f"{STAGING_PREFIX}{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.mkdir()
        except OSError as exc:
            raise OutputError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
        self.staging = staging
        return self

    def write(self, name: str, writer: Callable[[Path], object]) -> Path:
        """Stage output ``name``: ``writer(path)`` writes the file at ``path``; returns ``path``.

        Parameters
        ----------
        name : str
            One of ``OUTPUT_NAMES``.
        writer : callable
            ``writer(path)`` writes the file.

        Returns
        -------
        pathlib.Path
            The staged path.
        """
        if self.staging is None:
            raise RuntimeError("OutputSet.write before open()")
        if name not in OUTPUT_NAMES:
            raise ValueError(f"unknown output {name!r}; outputs: {', '.join(OUTPUT_NAMES)}")
        path = self.staging / name
        self.phase = "write"
        try:
            if not name.endswith(".nc"):     # tests only (gcxr._testhook); netCDF files pause inside
                pause_point(f"write:{name}")    # gcxr.io, with the file open and half-written
            writer(path)
        except (OSError, RuntimeError) as exc:
            if isinstance(exc, RuntimeError) and not str(exc).startswith("NetCDF"):
                raise
            raise _write_failure(self.out / name, self.out, exc) from exc
        finally:
            self.phase = "idle"
        self.staged[name] = path
        return path

    def stage_file(self, name: str) -> None:
        """Count a file that a writer made beside another (``models_bestfit_covariance.dat``).

        Parameters
        ----------
        name : str
            The file's name in the staging folder.
        """
        if self.staging is not None and (self.staging / name).exists():
            self.staged[name] = self.staging / name

    def commit(self) -> list[Path]:
        """Swap the staged set in (see the module docstring); returns the final paths."""
        if self.staging is None:
            raise RuntimeError("OutputSet.commit before open()")
        names = [n for n in OUTPUT_NAMES if n in self.staged]
        move = [n for n in names if n != MANIFEST] + ([MANIFEST] if MANIFEST in names else [])
        # the previous manifest first, then the previous outputs the new set does not replace
        remove = [n for n in (MANIFEST, *OUTPUT_NAMES) if n == MANIFEST or n not in move]
        remove = [n for n in dict.fromkeys(remove) if (self.out / n).exists()]
        journal = {"staging": self.staging.name, "remove": remove, "move": move}
        self.phase = "commit"
        try:
            tmp = self.staging / (JOURNAL + ".tmp")
            tmp.write_text(json.dumps(journal))
            os.replace(tmp, self.out / JOURNAL)
            _apply(self.out, journal)
        finally:
            self.phase = "done"
            self.staging = None
        if self.pending_signal is not None:
            raise Interrupted(self.pending_signal, "the new outputs were complete and are in place")
        return [self.out / n for n in move]

    def discard(self) -> None:
        """Remove the staging folder (the previous outputs stay as they were), and ``out`` if this
        set made it and it is empty."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
            if self._created:
                try:
                    self.out.rmdir()          # only if empty
                except OSError:
                    pass


# --------------------------------------------------------------------------- signals
@contextmanager
def handle_signals(outputs: OutputSet):
    """SIGINT and SIGTERM end the command cleanly, as the module docstring says.

    Installed only in the main thread (elsewhere Python allows no handlers); the previous
    handlers come back at the end.  The staging folder is removed however the block ends,
    unless :meth:`OutputSet.commit` has swapped it in.

    Parameters
    ----------
    outputs : OutputSet
        The outputs of the running command.
    """
    def handler(signum, frame):
        release()                                  # end test pauses (worker threads too)
        phase = outputs.phase
        if phase == "commit":
            outputs.pending_signal = signum
            return
        if phase in ("write", "exiting"):
            outputs.discard()
            print(f"gcxr run: interrupted by {signal.Signals(signum).name}; {outputs.out} keeps its previous "
                  f"outputs", file=sys.stderr, flush=True)
            try:
                sys.stdout.flush()
            finally:
                os._exit(128 + signum)
        if phase == "done":
            note = "the new outputs were complete and are in place"
        elif outputs.staging is None:          # before the output folder was opened
            note = "nothing was written"
        else:
            note = f"{outputs.out} keeps its previous outputs"
        outputs.phase = "exiting"                  # a second signal while unwinding ends at once
        raise Interrupted(signum, note)

    main = threading.current_thread() is threading.main_thread()
    old = {}
    if main:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, handler)
    try:
        yield outputs
    finally:
        outputs.discard()
        for s, h in old.items():
            signal.signal(s, h)
