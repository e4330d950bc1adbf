"""Paths in a configuration: ``$VAR``/``${VAR}``/``~`` expansion and atomic text writes."""
import os
import re
import tempfile
from pathlib import Path

from .errors import ConfigError

#: Environment variables naming the data root; either one stands in for the other.
DATA_ENV_VARS: tuple[str, ...] = ("GAMMAPY_DATA", "GCXR_DATA")


_ENV_RE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _lookup_env(name: str, raw: str, key: str | None) -> str:
    where = f" (in {key} = {raw!r})" if key else f" (in path {raw!r})"
    if not _ENV_NAME_RE.match(name):
        raise ConfigError([(key or "<path>", f"malformed variable reference ${{{name}}}{where}")])
    value = os.environ.get(name)
    if value:
        return value
    if name in DATA_ENV_VARS:
        for other in DATA_ENV_VARS:
            if os.environ.get(other):
                return os.environ[other]
        names = " nor ".join(f"${n}" for n in DATA_ENV_VARS)
        msg = f"environment variable ${name} is not set{where}; neither {names} is set (either one works)"
    else:
        msg = f"environment variable ${name} is not set{where}"
    raise ConfigError([(key or "<path>", msg)])


def expand_path(path: str | os.PathLike[str], key: str | None = None) -> Path:
    """Expand ``$VAR``, ``${VAR}`` and a leading ``~`` in ``path``.

    ``$GAMMAPY_DATA`` and ``$GCXR_DATA`` are interchangeable: when the one named is
    unset (or empty) the other is used.  Any other unset or empty variable raises
    :class:`ConfigError` naming the variable and ``key`` (the config key the path
    came from, used only in the message).  A ``$`` not followed by a variable name
    is kept literally.

    Parameters
    ----------
    path : str or os.PathLike
        The path as written.
    key : str, optional
        The config key, for error messages.

    Returns
    -------
    pathlib.Path
        The expanded path.

    Examples
    --------
    >>> expand_path('$GCXR_DATA/cta-1dc')     # with GCXR_DATA=/data   # doctest: +SKIP
    PosixPath('/data/cta-1dc')
    """
    raw = os.fspath(path)
    expanded = _ENV_RE.sub(
        lambda m: _lookup_env(
            m.group("braced") if m.group("braced") is not None else m.group("plain"), raw, key
        ),
        raw,
    )
    return Path(os.path.expanduser(expanded))


def _atomic_write_text(path: Path, text: str, overwrite: bool) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600; give it the permissions a plain open() would.
        if path.exists():
            mode = path.stat().st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        if overwrite:
            os.replace(tmp, path)
        else:
            # link() refuses to clobber a file that appeared since the check above.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(
                    f"{path} already exists; pass overwrite=True to replace it"
                ) from None
            except OSError:  # file system without hard links
                if path.exists():
                    raise FileExistsError(
                        f"{path} already exists; pass overwrite=True to replace it"
                    ) from None
                os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
