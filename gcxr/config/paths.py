"""Paths in a configuration: ``$VAR``/``${VAR}``/``~`` expansion."""
import os
import re
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
