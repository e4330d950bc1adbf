"""Shared machinery of the parametric models: defaults, units, YAML form."""
from __future__ import annotations

import copy
import inspect
import math
from typing import Any, ClassVar, Mapping

from .parameters import ModelError, Parameter, Parameters

__all__ = ["ParametricModel", "unit_factor", "lookup_type"]


def unit_factor(unit_from: str, unit_to: str, where: str) -> float:
    """Multiplicative factor converting ``unit_from`` to ``unit_to``.

    ``where`` names the parameter in the error message.
    """
    unit_from = "" if unit_from is None else str(unit_from).strip()
    unit_to = str(unit_to).strip()
    if unit_from == unit_to:
        return 1.0
    import astropy.units as u  # deferred: heavy import (astropy)

    try:
        return float(u.Unit(unit_from).to(u.Unit(unit_to)))
    except (ValueError, TypeError) as exc:  # UnitsError is a ValueError
        raise ModelError(
            f"{where}: unit {unit_from!r} cannot be converted to {unit_to!r} ({exc})"
        ) from None


def _set_from_user(par: Parameter, value: Any, where: str) -> None:
    """Set ``par`` from a number, a string such as ``"1e-12 cm-2 s-1 TeV-1"``,
    an astropy Quantity or another Parameter (converted to ``par.unit``)."""
    if isinstance(value, Parameter):
        f = unit_factor(value.unit, par.unit, where)
        par.value = value.value * f
        par.error = value.error * abs(f)
        par.min = value.min * f
        par.max = value.max * f
        par.frozen = value.frozen
        return
    if isinstance(value, str):
        import astropy.units as u  # deferred: heavy import (astropy)

        try:
            value = u.Quantity(value)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{where}: cannot parse {value!r} as a quantity ({exc})") from None
    if hasattr(value, "unit") and hasattr(value, "value"):
        f = unit_factor(str(value.unit), par.unit, where)
        par.value = float(value.value) * f
        return
    try:
        par.value = float(value)
    except (TypeError, ValueError):
        raise ModelError(f"{where}: expected a number, got {value!r}") from None


def lookup_type(registry: Mapping[str, type], type_name: Any, kind: str, component: str | None) -> type:
    """Class for a model type name (long or short); ModelError listing the valid ones."""
    cls = registry.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        seen: list[str] = []
        for c in registry.values():
            label = f"{c.tag} ({c.tag_short})"
            if label not in seen:
                seen.append(label)
        where = f"component {component!r}: " if component else ""
        raise ModelError(
            f"{where}unknown {kind} model type {type_name!r}; valid types: {', '.join(seen)}"
        )
    return cls


class ParametricModel:
    """Base of spectral and spatial models: a tag and an ordered parameter set.

    Subclasses define ``tag``, ``tag_short``, ``kind`` and ``_defaults`` (the
    default :class:`Parameter` objects, in gammapy's order and with its frozen
    flags and limits): the one place a model names its parameters.  The
    constructor takes them as keyword arguments (a number in the canonical
    unit, a string such as ``"1e-12 cm-2 s-1 TeV-1"``, a Quantity or a
    :class:`Parameter`); a subclass that needs other options (a spatial
    model's ``frame``, a template's file) defines ``__init__(self, <options>,
    **parameters)`` and passes ``parameters`` on.  The class's signature
    (``help``, :func:`inspect.signature`) lists the options and the parameters
    with their defaults.  Parameters are reachable as attributes
    (``model.index.value``).
    """

    tag: ClassVar[str]
    tag_short: ClassVar[str]
    kind: ClassVar[str]
    _defaults: ClassVar[tuple[Parameter, ...]]

    parameters: Parameters

    def __init__(self, **parameters: Any) -> None:
        self._init_parameters(parameters)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "_defaults"):
            cls.__signature__ = cls._signature()

    @classmethod
    def _signature(cls) -> inspect.Signature:
        """The constructor's signature: the explicit options of ``__init__`` and, keyword-only,
        the parameters with their default values (None where the default is NaN: set later)."""
        init = inspect.signature(cls.__init__)
        explicit = [p for name, p in init.parameters.items()
                    if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]
        positional = [p for p in explicit if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        options = [p for p in explicit if p.kind is inspect.Parameter.KEYWORD_ONLY]
        pars = [inspect.Parameter(d.name, inspect.Parameter.KEYWORD_ONLY,
                                  default=None if math.isnan(d.value) else d.value)
                for d in cls._defaults]
        return inspect.Signature(positional + pars + options)

    def _init_parameters(self, values: Mapping[str, Any]) -> None:
        """The default parameters, updated by ``values`` (keyed by parameter name; None keeps the
        default); :class:`ModelError` naming the model and the allowed names for an unknown key."""
        valid = self.parameter_names()
        unknown = [k for k in values if k not in valid]
        if unknown:
            sig = getattr(type(self), "__signature__", None)
            allowed = list(sig.parameters) if sig is not None else valid
            raise ModelError(f"{type(self).__name__} has no parameter or option "
                             f"{', '.join(repr(k) for k in unknown)}; allowed: {', '.join(allowed)}")
        pars = []
        for spec in self._defaults:
            p = spec.copy()
            v = values.get(spec.name)
            if v is not None:
                _set_from_user(p, v, f"{self.tag} parameter {spec.name!r}")
            pars.append(p)
        self.parameters = Parameters(pars)

    @classmethod
    def parameter_names(cls) -> list[str]:
        return [p.name for p in cls._defaults]

    @classmethod
    def default_parameters(cls) -> Parameters:
        return Parameters([p.copy() for p in cls._defaults])

    def __getattr__(self, name: str) -> Parameter:
        if name.startswith("_") or name == "parameters":
            raise AttributeError(name)
        try:
            pars = object.__getattribute__(self, "parameters")
        except AttributeError:
            raise AttributeError(name) from None
        for p in pars:
            if p.name == name:
                return p
        raise AttributeError(f"{type(self).__name__} has no attribute or parameter {name!r}")

    @property
    def values(self) -> dict[str, float]:
        """Current parameter values by name, for the pure ``_evaluate`` forms."""
        return {p.name: p.value for p in self.parameters}

    def copy(self):
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        args = ", ".join(
            f"{p.name}={p.value:.6g}" + (f" {p.unit}" if p.unit else "") for p in self.parameters
        )
        return f"{type(self).__name__}({args})"

    # -- YAML -----------------------------------------------------------------
    def _parameters_to_dict(self) -> list[dict[str, Any]]:
        out = []
        for p, d in zip(self.parameters, self._defaults):
            entry = p.to_dict()
            if d.frozen and not p.frozen:
                entry["frozen"] = False  # so that a reader applying defaults gets it right
            out.append(entry)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.tag, "parameters": self._parameters_to_dict()}

    @classmethod
    def _parameters_from_dict(cls, entries: Any, component: str | None) -> Parameters:
        """Defaults updated by the YAML entries, converted to the canonical units."""
        where = f"component {component!r}: " if component else ""
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise ModelError(f"{where}{cls.tag}: 'parameters' must be a list, got {type(entries).__name__}")
        pars = cls.default_parameters()
        valid = cls.parameter_names()
        seen: set[str] = set()
        for entry in entries:
            if not isinstance(entry, dict) or "name" not in entry:
                raise ModelError(f"{where}{cls.tag}: parameter entry {entry!r} has no 'name'")
            name = entry["name"]
            if name not in valid:
                raise ModelError(
                    f"{where}{cls.kind} model {cls.tag} has no parameter {name!r}; "
                    f"valid parameters: {', '.join(valid)}"
                )
            if name in seen:
                raise ModelError(f"{where}{cls.tag}: parameter {name!r} given twice")
            seen.add(name)
            try:
                given = Parameter.from_dict(entry)
            except (ModelError, TypeError, ValueError) as exc:
                raise ModelError(f"{where}{cls.tag} parameter {name!r}: {exc}") from None
            target = pars[name]
            f = unit_factor(
                entry.get("unit", target.unit) or "", target.unit,
                f"{where}{cls.tag} parameter {name!r}",
            )
            target.value = given.value * f
            if "error" in entry:
                target.error = given.error * abs(f)
            if "min" in entry:
                target.min = given.min * f
            if "max" in entry:
                target.max = given.max * f
            if f < 0 and ("min" in entry or "max" in entry):  # pragma: no cover - no such units
                target.min, target.max = target.max, target.min
            if "frozen" in entry:
                target.frozen = given.frozen
            if target.min > target.max:   # one bound from the YAML, the other the default
                raise ModelError(f"{where}{cls.tag} parameter {name!r}: min ({target.min:g}) is above "
                                 f"max ({target.max:g}) (a bound not given in the file is the default)")
        return pars

    @classmethod
    def _check_type(cls, data: Mapping[str, Any], component: str | None) -> None:
        t = data.get("type")
        if t not in (cls.tag, cls.tag_short):
            where = f"component {component!r}: " if component else ""
            raise ModelError(f"{where}type {t!r} is not a {cls.tag} ({cls.tag_short})")
