"""Writing a file so that it is either complete or absent: the one implementation gcxr uses
(:func:`gcxr.io.atomic_path`, config and models writers).  Standard library only, so that any
module may use it without import cost."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


def _mode_for(path: Path) -> int:
    """The permissions a plain ``open()`` would give ``path``: the existing file's, else 0666 & ~umask
    (``mkstemp`` creates 0600)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = True):
    """Yield a temporary path next to ``path``; move it into place only when the block succeeds.

    Parameters
    ----------
    path : str or Path
        The target file.
    overwrite : bool
        Replace an existing file (else FileExistsError, also when the file appears meanwhile).

    Examples
    --------
    >>> with atomic_path("result.json") as tmp:     # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)                     # refuses to clobber a file that appeared since
            except FileExistsError:
                raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it") from None
            except OSError:                            # a file system without hard links
                if path.exists():
                    raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it") from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str, overwrite: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`, flushed to the disk first.

    Parameters
    ----------
    path : str or Path
        The target file.
    text : str
        The content.
    overwrite : bool
        Replace an existing file.
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
