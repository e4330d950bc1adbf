"""Field types of the configuration: quantities with a checked physical type, times,
paths kept as written, free-form parameters and the allowed literal values."""
import datetime
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.time import Time
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, PlainValidator, WithJsonSchema

from .errors import _short_repr

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
