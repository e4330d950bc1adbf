"""Analysis configuration: the gammapy ``AnalysisConfig`` YAML schema, validated.

gcxr reads and writes the same YAML files as gammapy's high-level interface, so
a configuration written for one tool runs in the other.  The document is a tree
of sections; every level is a strict pydantic model (unknown keys are errors):

``general``
    logging (``log.level``, ``log.filename`` ...), ``outdir``, ``n_jobs`` and the
    optional ``datasets_file`` / ``models_file`` paths.
``observations``
    ``datastore`` (a path that may use ``$VAR``, ``${VAR}`` and ``~``),
    ``obs_ids`` or ``obs_file``, an ``obs_cone`` (frame, lon, lat, radius),
    an ``obs_time`` window (ISO times) and the ``required_irf`` components.
``datasets``
    reduction ``type`` (``1d`` or ``3d``), ``stack``, the map geometry
    (``geom.wcs`` sky position, ``binsize``, ``width``, ``binsize_irf``;
    ``geom.selection.offset_max``; the reconstructed and true energy axes in
    ``geom.axes``), ``map_selection``, ``background``, ``safe_mask``,
    ``on_region`` and ``containment_correction``.
``fit``
    ``fit_range`` (energy min/max).
``flux_points``, ``excess_map``, ``light_curve``
    estimator settings: energy binning, source name, time intervals and
    free-form ``parameters``.
``metadata``
    provenance written by gammapy (``creator``, ``date``, ``origin``); kept as is.

Physical quantities are written as strings such as ``0.02 deg`` or ``0.1 TeV``
and become :class:`astropy.units.Quantity` (angles are
:class:`astropy.coordinates.Angle`) after their physical type is checked.  Times
become :class:`astropy.time.Time`.  Every field name and default is the same as
in gammapy's schema, so a partial file gets the defaults gammapy would use.

Any problem (unknown key, wrong unit, value outside the allowed set, YAML
syntax) raises :class:`ConfigError`, a :class:`ValueError` whose message names the
dotted key path (e.g. ``datasets.geom.wcs.binsize``) and what is allowed there.

Example
-------
>>> config = AnalysisConfig.from_yaml("datasets: {type: 3d, geom: {wcs: {binsize: 0.05 deg}}}")
>>> config.datasets.geom.wcs.binsize
<Angle 0.05 deg>
>>> config.datasets.geom.selection.offset_max  # gammapy's default
<Angle 2.5 deg>
"""

import datetime
import difflib
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import astropy.units as u
import numpy as np
import yaml
from astropy.coordinates import Angle
from astropy.time import Time
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from ._yaml import load_yaml

__all__ = [
    "AnalysisConfig",
    "ConfigError",
    "expand_path",
    "DATA_ENV_VARS",
    "GeneralConfig",
    "LogConfig",
    "ObservationsConfig",
    "DatasetsConfig",
    "GeomConfig",
    "WcsConfig",
    "WidthConfig",
    "SelectionConfig",
    "EnergyAxesConfig",
    "EnergyAxisConfig",
    "EnergyRangeConfig",
    "SkyCoordConfig",
    "SpatialCircleConfig",
    "TimeRangeConfig",
    "BackgroundConfig",
    "SafeMaskConfig",
    "FitConfig",
    "FluxPointsConfig",
    "ExcessMapConfig",
    "LightCurveConfig",
    "MetadataConfig",
]

#: Environment variables naming the data root; either one stands in for the other.
DATA_ENV_VARS: tuple[str, ...] = ("GAMMAPY_DATA", "GCXR_DATA")

# Same layout as the files gammapy writes (4-space indent, block style, key order kept).
_YAML_DUMP_OPTIONS: dict[str, Any] = dict(
    sort_keys=False, indent=4, width=80, default_flow_style=False, allow_unicode=True
)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class ConfigError(ValueError):
    """An invalid analysis configuration.

    ``errors`` holds ``(key_path, message)`` pairs, e.g.
    ``("datasets.geom.wcs.binsz", "unknown key ...")``; ``source`` is the file the
    configuration came from, when known.
    """

    def __init__(self, errors: Sequence[tuple[str, str]] | str, source: str | None = None):
        if isinstance(errors, str):
            errors = [("<config>", errors)]
        self.errors: list[tuple[str, str]] = [(str(p), str(m)) for p, m in errors]
        self.source = source
        #: The underlying pydantic error, when there is one.
        self.validation_error: ValidationError | None = None
        super().__init__(self._format())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors, self.source))

    @property
    def paths(self) -> list[str]:
        """The dotted key paths of all errors."""
        return [path for path, _ in self.errors]

    def _format(self) -> str:
        head = "invalid analysis configuration"
        if self.source:
            head += f" in {self.source}"
        if len(self.errors) == 1:
            path, msg = self.errors[0]
            return f"{head}: {path}: {msg}"
        lines = [f"{head} ({len(self.errors)} errors):"]
        lines += [f"  - {path}: {msg}" for path, msg in self.errors]
        return "\n".join(lines)

    @classmethod
    def from_validation_error(
        cls,
        exc: ValidationError,
        model: type[BaseModel],
        prefix: Sequence[str | int] = (),
        source: str | None = None,
    ) -> "ConfigError":
        """Translate a pydantic error raised while validating ``model``.

        ``prefix`` is the location of ``model`` inside the whole configuration; it
        is prepended to every error location.
        """
        errors = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            path = _format_loc(tuple(prefix) + loc)
            errors.append((path, _describe_error(err, model, loc, prefix)))
        error = cls(errors, source=source)
        error.validation_error = exc
        return error


def _format_loc(loc: Sequence[str | int]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out or "<root>"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _model_in_annotation(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model class inside a (possibly Optional/Annotated) annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in_annotation(arg)
        if found is not None:
            return found
    return None


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """Follow ``loc`` through the nested models of ``model``."""
    current: type[BaseModel] | None = model
    for item in loc:
        if current is None:
            return None
        if isinstance(item, int):
            continue
        field = current.model_fields.get(item)
        if field is None:
            return None
        current = _model_in_annotation(field.annotation)
    return current


def _describe_error(
    err: Mapping[str, Any], model: type[BaseModel], loc: tuple, prefix: Sequence[str | int]
) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = _model_at(model, loc[:-1])
        valid = list(parent.model_fields) if parent is not None else []
        where = _format_loc(tuple(prefix) + loc[:-1])
        msg = f"unknown key {key!r}"
        close = difflib.get_close_matches(key, valid, n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        if valid:
            msg += f"; valid keys at {where!r} are: {', '.join(valid)}"
        return msg
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        return f"invalid value {_short_repr(value)}; allowed values: {ctx.get('expected')}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        sub = _model_at(model, loc)
        if sub is not None:
            keys = ", ".join(sub.model_fields)
            return f"expected a mapping with keys among: {keys}; got {_short_repr(value)}"
        return f"expected a mapping; got {_short_repr(value)}"
    return f"{err['msg']} (got {_short_repr(value)})"


# --------------------------------------------------------------------------------------
# Paths and environment variables
# --------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------
def _quantity_to_str(q: u.Quantity) -> str:
    return f"{q.value} {q.unit.to_string()}"


def _physical_name(unit: u.UnitBase) -> str:
    return str(unit.physical_type).split("/")[0]


def _quantity_validator(
    kind: str, unit: u.UnitBase, example: str, positive: bool, max_abs: float | None = None
) -> Any:
    article = "an" if kind[0] in "aeiou" else "a"

    def validate(value: Any) -> u.Quantity:
        if isinstance(value, u.Quantity):
            q = u.Quantity(value)
        elif isinstance(value, str):
            try:
                q = u.Quantity(value)
            except Exception:
                raise ValueError(
                    f"cannot parse {value!r} as {article} {kind}; "
                    f"write a number and a unit, e.g. {example!r}"
                ) from None
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            raise ValueError(f"{value!r} has no unit; write {article} {kind} with its unit, e.g. {example!r}")
        else:
            raise ValueError(
                f"expected {article} {kind} such as {example!r}, got {type(value).__name__} "
                f"{_short_repr(value)}"
            )
        if not q.isscalar:
            raise ValueError(f"expected a single {kind}, got {q.size} values")
        if q.unit == u.dimensionless_unscaled:
            raise ValueError(f"{value!r} has no unit; write {article} {kind} with its unit, e.g. {example!r}")
        if not q.unit.is_equivalent(unit):
            raise ValueError(
                f"{_short_repr(value)} is not {article} {kind}: unit {q.unit.to_string()!r} is "
                f"{_physical_name(q.unit)}; use {article} {kind} unit, e.g. {example!r}"
            )
        if not np.isfinite(q.value):
            raise ValueError(f"{kind} must be finite, got {_short_repr(value)}")
        if positive and q.value <= 0:
            raise ValueError(f"{kind} must be positive, got {_short_repr(value)}")
        if max_abs is not None and abs(q.to_value(unit)) > max_abs:
            raise ValueError(
                f"{kind} must lie within ±{max_abs} {unit.to_string()}, got {_short_repr(value)}"
            )
        return Angle(q) if unit.physical_type == "angle" else q

    return PlainValidator(validate)


_QUANTITY_SERIALIZER = PlainSerializer(_quantity_to_str, return_type=str, when_used="json-unless-none")
_STRING_SCHEMA = WithJsonSchema({"type": "string"})

#: Any angle, e.g. a longitude ("83.6 deg").
AngleQuantity = Annotated[
    Angle,
    _quantity_validator("angle", u.deg, "0.5 deg", positive=False),
    _QUANTITY_SERIALIZER,
    _STRING_SCHEMA,
]
#: A latitude: an angle within ±90 deg.
LatitudeQuantity = Annotated[
    Angle,
    _quantity_validator("angle", u.deg, "-0.5 deg", positive=False, max_abs=90.0),
    _QUANTITY_SERIALIZER,
    _STRING_SCHEMA,
]
#: A strictly positive angle (sizes, radii).
PositiveAngleQuantity = Annotated[
    Angle,
    _quantity_validator("angle", u.deg, "0.02 deg", positive=True),
    _QUANTITY_SERIALIZER,
    _STRING_SCHEMA,
]
#: A strictly positive energy.
EnergyQuantity = Annotated[
    u.Quantity,
    _quantity_validator("energy", u.TeV, "0.1 TeV", positive=True),
    _QUANTITY_SERIALIZER,
    _STRING_SCHEMA,
]


def _time_to_json(t: Time) -> str | list[str]:
    """ISO strings (UTC) with the fewest decimals that still round-trip to 1 ns."""
    utc = t.utc
    text: Any = None
    for precision in (3, 6, 9):
        candidate = Time(utc, precision=precision)
        text = candidate.isot
        back = Time(text, format="isot", scale="utc")
        if np.all(np.abs((back - utc).to_value(u.ns)) < 1.0):
            break
    return text.tolist() if isinstance(text, np.ndarray) else str(text)


def _validate_time(value: Any) -> Time:
    def plain(v: Any) -> Any:
        if isinstance(v, datetime.date) and not isinstance(v, datetime.datetime):
            return v.isoformat()
        return v

    if isinstance(value, Time):
        t = value.copy()
    else:
        if isinstance(value, bool) or isinstance(value, (int, float, np.number)):
            raise ValueError(
                f"{value!r} is not a time; use an ISO string such as '2021-03-01T00:00:00'"
            )
        if isinstance(value, (list, tuple)):
            value = [plain(v) for v in value]
        else:
            value = plain(value)
        try:
            t = Time(value)
        except Exception:
            raise ValueError(
                f"cannot parse {_short_repr(value)} as a time; "
                "use an ISO string such as '2021-03-01T00:00:00' (or a list of them)"
            ) from None
    if t.ndim > 1:
        raise ValueError("expected a time or a flat list of times")
    return t


#: An ISO time string, or a list of them, as :class:`astropy.time.Time`.
TimeValue = Annotated[
    Time,
    PlainValidator(_validate_time),
    PlainSerializer(_time_to_json, when_used="json-unless-none"),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def _coerce_path(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


#: A path kept as written (variables are expanded only when it is resolved).
PathStr = Annotated[str, BeforeValidator(_coerce_path)]


def _plain(value: Any) -> Any:
    """Make free-form parameter values YAML-safe (quantities become strings)."""
    if isinstance(value, u.Quantity):
        return _quantity_to_str(value) if value.isscalar else [_plain(v) for v in value]
    if isinstance(value, Time):
        return _time_to_json(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


#: Free-form options passed to a maker or estimator, stored as plain YAML values
#: (a quantity given here is kept as its string, e.g. ``'0.7 deg'``).
Parameters = Annotated[
    dict[str, Any], AfterValidator(_plain), PlainSerializer(_plain, when_used="json")
]

ReductionType = Literal["1d", "3d"]
Frame = Literal["icrs", "galactic"]
RequiredIrf = Literal["aeff", "edisp", "psf", "bkg", "events", "gti", "rad_max"]
BackgroundMethod = Literal["reflected", "fov_background", "ring"]
SafeMaskMethod = Literal["aeff-default", "aeff-max", "offset-max", "edisp-bias", "bkg-peak"]
MapSelection = Literal["counts", "exposure", "background", "psf", "edisp"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "notset"]

_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}


def _normalise_level(value: Any) -> Any:
    if isinstance(value, str):
        low = value.strip().lower()
        return _LEVEL_ALIASES.get(low, low)
    return value


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------
class _Section(BaseModel):
    """Common behaviour: strict keys, validated assignment, ConfigError on failure."""

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        validate_default=True,
        arbitrary_types_allowed=True,
    )

    # Location of this section in AnalysisConfig, filled in below for sections that
    # occur exactly once (used to name keys in errors raised on direct use).
    _section_path: ClassVar[tuple[str, ...] | None] = None

    # Where this instance sits in its AnalysisConfig; set by the root after validation.
    _location: tuple[str, ...] | None = PrivateAttr(default=None)

    @classmethod
    def _error_prefix(cls) -> tuple[str, ...]:
        if cls._section_path is not None:
            return cls._section_path
        return (cls.__name__,)

    def _prefix(self) -> tuple[str, ...]:
        location = self.__pydantic_private__.get("_location") if self.__pydantic_private__ else None
        return location if location is not None else type(self)._error_prefix()

    def _set_locations(self, location: tuple[str, ...]) -> None:
        self._location = location
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, _Section):
                value._set_locations(location + (name,))

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc, type(self), type(self)._error_prefix()) from None

    # Tell pydantic this is not a custom __init__: nested sections are then built
    # by the validator directly and errors keep their full location.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc, cls, cls._error_prefix()) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
            return
        cls = type(self)
        prefix = self._prefix()
        if name not in cls.model_fields:
            msg = f"unknown key {name!r}"
            close = difflib.get_close_matches(name, list(cls.model_fields), n=1)
            if close:
                msg += f" (did you mean {close[0]!r}?)"
            msg += f"; valid keys at {_format_loc(prefix)!r} are: {', '.join(cls.model_fields)}"
            raise ConfigError([(_format_loc(prefix + (name,)), msg)])
        previous = self.__dict__.get(name)
        try:
            super().__setattr__(name, value)
        except ValidationError as exc:
            # A failing model-level check runs after the field was stored: undo it.
            self.__dict__[name] = previous
            raise ConfigError.from_validation_error(exc, cls, prefix) from None
        new = getattr(self, name)
        if isinstance(new, _Section):
            new._set_locations(prefix + (name,))

    @field_validator("*", mode="before")
    @classmethod
    def _empty_means_default(cls, value: Any, info: ValidationInfo) -> Any:
        # A bare ``section:`` line in YAML is ``None``; treat it as an empty section.
        if value is None and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if _model_in_annotation(annotation) is annotation or get_origin(annotation) is dict:
                return {}
        return value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseModel):
            return NotImplemented
        if type(self) is not type(other):
            return False
        return all(
            _values_equal(getattr(self, name), getattr(other, name))
            for name in type(self).model_fields
        )

    __hash__ = None  # type: ignore[assignment]


def _values_equal(a: Any, b: Any) -> bool:
    if isinstance(a, BaseModel) or isinstance(b, BaseModel):
        return a == b
    if isinstance(a, Time) or isinstance(b, Time):
        if not (isinstance(a, Time) and isinstance(b, Time)) or a.shape != b.shape:
            return False
        return bool(np.all(np.abs((a - b).to_value(u.ns)) < 1.0))
    if isinstance(a, u.Quantity) or isinstance(b, u.Quantity):
        if not (isinstance(a, u.Quantity) and isinstance(b, u.Quantity)) or a.shape != b.shape:
            return False
        if not a.unit.is_equivalent(b.unit):
            return False
        return bool(np.all(a == b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


class SkyCoordConfig(_Section):
    """A sky position: ``frame`` plus ``lon``/``lat`` angles."""

    frame: Frame | None = Field(None, description="'icrs' or 'galactic'")
    lon: AngleQuantity | None = Field(None, description="longitude / right ascension")
    lat: LatitudeQuantity | None = Field(None, description="latitude / declination")


class SpatialCircleConfig(_Section):
    """A circular sky region: centre (``frame``, ``lon``, ``lat``) and ``radius``."""

    frame: Frame | None = None
    lon: AngleQuantity | None = None
    lat: LatitudeQuantity | None = None
    radius: PositiveAngleQuantity | None = None


class EnergyRangeConfig(_Section):
    """An energy interval; either end may be open (``null``)."""

    min: EnergyQuantity | None = None
    max: EnergyQuantity | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "EnergyRangeConfig":
        _check_energy_order(self.min, self.max)
        return self


class EnergyAxisConfig(_Section):
    """A log-spaced energy axis: ``min``, ``max`` and the number of bins."""

    min: EnergyQuantity | None = None
    max: EnergyQuantity | None = None
    nbins: PositiveInt | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "EnergyAxisConfig":
        _check_energy_order(self.min, self.max)
        return self


def _check_energy_order(emin: u.Quantity | None, emax: u.Quantity | None) -> None:
    if emin is not None and emax is not None and not emin < emax:
        raise ValueError(
            f"energy min ({_quantity_to_str(emin)}) must be below max ({_quantity_to_str(emax)})"
        )


class TimeRangeConfig(_Section):
    """Start and stop times (ISO strings, or equal-length lists of them)."""

    start: TimeValue | None = None
    stop: TimeValue | None = None


class LogConfig(_Section):
    """Arguments for :func:`logging.basicConfig`."""

    level: Annotated[LogLevel, BeforeValidator(_normalise_level)] = "info"
    filename: PathStr | None = None
    filemode: str | None = None
    format: str | None = None
    datefmt: str | None = None


class GeneralConfig(_Section):
    """Logging, output folder, parallelism and auxiliary files."""

    log: LogConfig = Field(default_factory=LogConfig)
    outdir: PathStr = "."
    n_jobs: int = 1
    datasets_file: PathStr | None = None
    models_file: PathStr | None = None

    @property
    def outdir_path(self) -> Path:
        """``outdir`` with environment variables and ``~`` expanded."""
        return expand_path(self.outdir, key="general.outdir")

    @property
    def datasets_file_path(self) -> Path | None:
        """``datasets_file`` expanded, or None."""
        return _maybe_expand(self.datasets_file, "general.datasets_file")

    @property
    def models_file_path(self) -> Path | None:
        """``models_file`` expanded, or None."""
        return _maybe_expand(self.models_file, "general.models_file")


def _maybe_expand(path: str | None, key: str) -> Path | None:
    return None if path is None else expand_path(path, key=key)


class ObservationsConfig(_Section):
    """Which observations to use, and from where."""

    datastore: PathStr = Field(
        "$GAMMAPY_DATA/hess-dl3-dr1", description="data store directory or index file"
    )
    obs_ids: list[int] = Field(default_factory=list)
    obs_file: PathStr | None = None
    obs_cone: SpatialCircleConfig = Field(default_factory=SpatialCircleConfig)
    obs_time: TimeRangeConfig = Field(default_factory=TimeRangeConfig)
    required_irf: list[RequiredIrf] = Field(
        default_factory=lambda: ["aeff", "edisp", "psf", "bkg"]
    )

    @property
    def datastore_path(self) -> Path:
        """``datastore`` with ``$VAR``/``${VAR}``/``~`` expanded (see :func:`expand_path`)."""
        return expand_path(self.datastore, key="observations.datastore")

    @property
    def obs_file_path(self) -> Path | None:
        """``obs_file`` expanded, or None."""
        return _maybe_expand(self.obs_file, "observations.obs_file")


class WidthConfig(_Section):
    """Map extent."""

    width: PositiveAngleQuantity = Field("5 deg")
    height: PositiveAngleQuantity = Field("5 deg")


class WcsConfig(_Section):
    """WCS map geometry: centre, pixel size, extent and IRF pixel size."""

    skydir: SkyCoordConfig = Field(default_factory=SkyCoordConfig)
    binsize: PositiveAngleQuantity = Field("0.02 deg")
    width: WidthConfig = Field(default_factory=WidthConfig)
    binsize_irf: PositiveAngleQuantity = Field("0.2 deg")


class SelectionConfig(_Section):
    """Event / IRF selection: maximum field-of-view offset."""

    offset_max: PositiveAngleQuantity = Field("2.5 deg")


class EnergyAxesConfig(_Section):
    """Reconstructed (``energy``) and true (``energy_true``) energy axes."""

    energy: EnergyAxisConfig = Field(
        default_factory=lambda: EnergyAxisConfig(min="1 TeV", max="10 TeV", nbins=5)
    )
    energy_true: EnergyAxisConfig = Field(
        default_factory=lambda: EnergyAxisConfig(min="0.5 TeV", max="20 TeV", nbins=16)
    )


class GeomConfig(_Section):
    """Dataset geometry."""

    wcs: WcsConfig = Field(default_factory=WcsConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    axes: EnergyAxesConfig = Field(default_factory=EnergyAxesConfig)


class BackgroundConfig(_Section):
    """Background estimation method, exclusion mask file and method options."""

    method: BackgroundMethod | None = None
    exclusion: PathStr | None = None
    parameters: Parameters = Field(default_factory=dict)

    @property
    def exclusion_path(self) -> Path | None:
        """``exclusion`` expanded, or None."""
        return _maybe_expand(self.exclusion, "datasets.background.exclusion")


class SafeMaskConfig(_Section):
    """Safe-data-range methods and their options."""

    methods: list[SafeMaskMethod] = Field(default_factory=lambda: ["aeff-default"])
    parameters: Parameters = Field(default_factory=dict)


class DatasetsConfig(_Section):
    """Data reduction into datasets."""

    type: ReductionType = "1d"
    stack: bool = True
    geom: GeomConfig = Field(default_factory=GeomConfig)
    map_selection: list[MapSelection] = Field(
        default_factory=lambda: ["counts", "exposure", "background", "psf", "edisp"]
    )
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    safe_mask: SafeMaskConfig = Field(default_factory=SafeMaskConfig)
    on_region: SpatialCircleConfig = Field(default_factory=SpatialCircleConfig)
    containment_correction: bool = True


class FitConfig(_Section):
    """Model fitting."""

    fit_range: EnergyRangeConfig = Field(default_factory=EnergyRangeConfig)


class FluxPointsConfig(_Section):
    """Flux point estimation."""

    energy: EnergyAxisConfig = Field(default_factory=EnergyAxisConfig)
    source: str = "source"
    parameters: Parameters = Field(default_factory=lambda: {"selection_optional": "all"})


class ExcessMapConfig(_Section):
    """Excess / significance maps."""

    correlation_radius: PositiveAngleQuantity = Field("0.1 deg")
    parameters: Parameters = Field(default_factory=dict)
    energy_edges: EnergyAxisConfig = Field(default_factory=EnergyAxisConfig)


class LightCurveConfig(_Section):
    """Light curve estimation."""

    time_intervals: TimeRangeConfig = Field(default_factory=TimeRangeConfig)
    energy_edges: EnergyAxisConfig = Field(default_factory=EnergyAxisConfig)
    source: str = "source"
    parameters: Parameters = Field(default_factory=lambda: {"selection_optional": "all"})


class MetadataConfig(_Section):
    """Provenance block that gammapy appends to the files it writes."""

    creator: str | None = None
    date: TimeValue | None = None
    origin: str | None = None


class AnalysisConfig(_Section):
    """A complete analysis configuration (gammapy ``AnalysisConfig`` schema).

    Build one with defaults (``AnalysisConfig()``), from YAML text
    (:meth:`from_yaml`) or a file (:meth:`read`); save it with :meth:`to_yaml` /
    :meth:`write`.  Attribute assignment is validated, e.g.
    ``config.datasets.geom.wcs.binsize = "0.05 deg"``.
    """

    general: GeneralConfig = Field(default_factory=GeneralConfig)
    observations: ObservationsConfig = Field(default_factory=ObservationsConfig)
    datasets: DatasetsConfig = Field(default_factory=DatasetsConfig)
    fit: FitConfig = Field(default_factory=FitConfig)
    flux_points: FluxPointsConfig = Field(default_factory=FluxPointsConfig)
    excess_map: ExcessMapConfig = Field(default_factory=ExcessMapConfig)
    light_curve: LightCurveConfig = Field(default_factory=LightCurveConfig)
    metadata: MetadataConfig = Field(default_factory=MetadataConfig)

    def model_post_init(self, context: Any, /) -> None:
        self._set_locations(())

    # ----------------------------------------------------------------------- input
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str | None = None) -> "AnalysisConfig":
        """Validate a nested mapping (as loaded from YAML)."""
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(
                [("<root>", f"expected a mapping of sections ({', '.join(cls.model_fields)}), "
                            f"got {type(data).__name__}")],
                source=source,
            )
        try:
            return super(_Section, cls).model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError.from_validation_error(exc, cls, (), source=source) from None

    @classmethod
    def from_yaml(cls, text: str, source: str | None = None) -> "AnalysisConfig":
        """Parse YAML text; an empty document gives the defaults."""
        try:
            data = load_yaml(text, Loader=_UniqueKeyLoader)
        except yaml.YAMLError as exc:
            raise ConfigError([("<yaml>", f"YAML syntax error: {exc}")], source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> "AnalysisConfig":
        """Read a YAML file (``$VAR`` and ``~`` in ``path`` are expanded)."""
        filename = expand_path(path)
        return cls.from_yaml(filename.read_text(encoding="utf-8"), source=str(filename))

    # ---------------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML-ready nested dict (quantities as strings like ``'0.02 deg'``)."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        """YAML text in gammapy's layout."""
        return yaml.safe_dump(self.to_dict(), **_YAML_DUMP_OPTIONS)

    def write(self, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
        """Write :meth:`to_yaml` to ``path`` atomically; returns the path written.

        The text goes to a temporary file in the target directory which then
        replaces ``path``.  An existing file is an error unless ``overwrite``.
        """
        filename = expand_path(path)
        _atomic_write_text(filename, self.to_yaml(), overwrite=overwrite)
        return filename

    # ---------------------------------------------------------------------- helpers
    def update(self, other: "str | Mapping[str, Any] | AnalysisConfig") -> "AnalysisConfig":
        """A new config with the keys *set* in ``other`` (YAML text, mapping or
        config) laid over this one; nested sections are merged key by key."""
        if isinstance(other, str):
            other = type(self).from_yaml(other)
        elif isinstance(other, Mapping):
            other = type(self).from_dict(other)
        elif not isinstance(other, AnalysisConfig):
            raise TypeError(f"cannot update from {type(other).__name__}")
        merged = _deep_merge(self.to_dict(), other.model_dump(mode="json", exclude_unset=True))
        return type(self).from_dict(merged)

    def __str__(self) -> str:
        body = self.to_yaml().rstrip("\n").replace("\n", "\n    ")
        return f"{type(self).__name__}\n\n    {body}\n"


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects duplicate keys instead of keeping the last one."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader reports unhashable keys itself
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _collect_section_paths(
    model: type[BaseModel], prefix: tuple[str, ...], out: dict[type, list[tuple[str, ...]]]
) -> None:
    for name, field in model.model_fields.items():
        sub = _model_in_annotation(field.annotation)
        if sub is not None:
            out.setdefault(sub, []).append(prefix + (name,))
            _collect_section_paths(sub, prefix + (name,), out)


def _assign_section_paths() -> None:
    found: dict[type, list[tuple[str, ...]]] = {}
    _collect_section_paths(AnalysisConfig, (), found)
    AnalysisConfig._section_path = ()
    for section, paths in found.items():
        if len(paths) == 1 and issubclass(section, _Section):
            section._section_path = paths[0]


_assign_section_paths()
