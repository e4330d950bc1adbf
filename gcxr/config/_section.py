"""The base of every configuration section: strict keys, validated assignment,
:class:`ConfigError` on failure, equality that understands quantities and times."""
import difflib
from collections.abc import Mapping
from typing import Any, ClassVar, get_origin

import astropy.units as u
import numpy as np
from astropy.time import Time
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, ValidationInfo, field_validator

from .errors import ConfigError, _format_loc, _model_in_annotation

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
