"""Configuration errors: :class:`ConfigError` and the translation of pydantic's errors
into messages that name the dotted key and what is allowed there."""
import difflib
from collections.abc import Mapping, Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

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

        Parameters
        ----------
        exc : pydantic.ValidationError
            The error.
        model : type
            The section class validated.
        prefix : sequence
            Location of ``model`` in the whole configuration.
        source : str, optional
            The file the configuration came from.

        Returns
        -------
        ConfigError
            With one ``(key_path, message)`` per error.
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
