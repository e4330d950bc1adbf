"""Model parameters: a small mutable record and an ordered collection.

A :class:`Parameter` holds one number in the model's *canonical* unit (a plain
string such as ``"TeV"`` or ``"cm-2 s-1 TeV-1"``); units are converted once,
where a value enters (a constructor argument or a YAML file), never in the
numerical kernels.

How the fitter scales parameters (factors of order one for Minuit) is not a
property of a parameter: :class:`gcxr.likelihood.ParameterSpace` alone maps
models to the fit vector.

:class:`Parameters` is an ordered, list-like view on :class:`Parameter`
objects.  Every entry has a *unique name* (``"gc-source.spectral.index"`` in a
:class:`~gcxr.models.Models`; just ``"index"`` inside one spectral model) next
to the plain ``name``, and the collection may carry a covariance matrix over
its entries.  Subsets such as :attr:`Parameters.free` share the
:class:`Parameter` objects, so ``models.parameters.free.set_values(theta)``
updates the models.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence, overload

import numpy as np

__all__ = ["ModelError", "Parameter", "Parameters"]


class ModelError(ValueError):
    """A model specification is invalid (unknown type, parameter or unit)."""


@dataclass
class Parameter:
    """One model parameter, in the canonical unit of its model.

    Parameters
    ----------
    name : str
        Parameter name, as in gammapy (``"index"``, ``"lambda_"``, ``"lon_0"``).
    value : float
        Current value in ``unit``.
    unit : str
        Canonical unit string (``""`` for dimensionless).
    error : float
        1-sigma error (0 when unknown).
    min, max : float
        Limits for the fitter; NaN means unbounded.
    frozen : bool
        Frozen parameters are not varied by the fitter.
    """

    name: str
    value: float
    unit: str = ""
    error: float = 0.0
    min: float = math.nan
    max: float = math.nan
    frozen: bool = False

    def __post_init__(self) -> None:
        self.value = float(self.value)
        self.error = float(self.error)
        self.min = float(self.min)
        self.max = float(self.max)
        self.frozen = bool(self.frozen)
        self.unit = str(self.unit)

    @property
    def quantity(self):
        """The value as an `astropy.units.Quantity` (for display and interop)."""
        import astropy.units as u  # deferred: heavy import (astropy)

        return u.Quantity(self.value, self.unit)

    # -- serialisation ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Gammapy's YAML parameter form.

        ``name`` and ``value`` always; ``unit`` unless dimensionless; ``error``
        when non-zero; ``min``/``max`` when not NaN; ``frozen: true`` when frozen.
        """
        out: dict[str, Any] = {"name": self.name, "value": float(self.value)}
        if self.unit:
            out["unit"] = self.unit
        if self.error != 0.0:
            out["error"] = float(self.error)
        if not math.isnan(self.min):
            out["min"] = float(self.min)
        if not math.isnan(self.max):
            out["max"] = float(self.max)
        if self.frozen:
            out["frozen"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Parameter":
        """Inverse of :meth:`to_dict`; keys gcxr does not use (``interp``,
        ``scale_method``, ``scale_transform``, ``is_norm``) are ignored.

        No unit conversion happens here: the model that owns the parameter
        converts to its canonical unit (see :mod:`gcxr.models.spectral`).

        Parameters
        ----------
        data : dict
            The YAML entry: ``name``, ``value`` and optionally ``unit``, ``error``, ``min``,
            ``max``, ``frozen``.

        Returns
        -------
        Parameter
            The parameter; :class:`ModelError` for a bad entry.
        """
        known = {"name", "value", "unit", "error", "min", "max", "frozen"}
        ignored = {"interp", "scale_method", "scale_transform", "is_norm"}
        unsupported = set(data) - known - ignored
        if unsupported:
            raise ModelError(
                f"parameter {data.get('name')!r}: unsupported keys {sorted(unsupported)}; "
                f"allowed: {sorted(known | ignored)}"
            )
        if "name" not in data or data.get("value") is None:
            raise ModelError(f"parameter entry {data!r} needs 'name' and 'value'")
        kwargs = {k: data[k] for k in known if k in data and data[k] is not None}
        if not isinstance(kwargs.get("frozen", False), bool):
            raise ModelError(f"parameter {data['name']!r}: frozen must be true or false, got {data['frozen']!r}")
        try:
            value = float(kwargs["value"])
        except (TypeError, ValueError):
            raise ModelError(f"parameter {data['name']!r}: value {kwargs['value']!r} is not a number") from None
        if not math.isfinite(value):
            raise ModelError(f"parameter {data['name']!r}: value must be finite, got {kwargs['value']!r}")
        bounds = {}
        for key in ("min", "max"):
            if key in kwargs:
                try:
                    bounds[key] = float(kwargs[key])
                except (TypeError, ValueError):
                    raise ModelError(f"parameter {data['name']!r}: {key} {kwargs[key]!r} is not a number") from None
        if bounds.get("min", -math.inf) > bounds.get("max", math.inf):
            raise ModelError(f"parameter {data['name']!r}: min ({bounds['min']:g}) is above max ({bounds['max']:g})")
        return cls(**kwargs)

    def copy(self) -> "Parameter":
        """An independent copy."""
        return Parameter(**self.__dict__)


class Parameters(Sequence[Parameter]):
    """Ordered collection of :class:`Parameter` objects.

    Parameters
    ----------
    parameters : iterable of Parameter
        The entries (not copied: the collection is a view).
    unique_names : sequence of str, optional
        One distinct label per entry; defaults to the parameter names, which
        must then be distinct.
    covariance : array (n, n), optional
        Covariance over the entries, in their canonical units.

    Lookup by string accepts a unique name, or a plain parameter name when
    exactly one entry carries it.
    """

    def __init__(
        self,
        parameters: Iterable[Parameter] = (),
        unique_names: Sequence[str] | None = None,
        covariance: np.ndarray | None = None,
    ) -> None:
        self._parameters: list[Parameter] = list(parameters)
        for p in self._parameters:
            if not isinstance(p, Parameter):
                raise TypeError(f"expected Parameter, got {type(p).__name__}")
        if unique_names is None:
            unique_names = [p.name for p in self._parameters]
        unique_names = [str(n) for n in unique_names]
        if len(unique_names) != len(self._parameters):
            raise ValueError(
                f"{len(unique_names)} unique names for {len(self._parameters)} parameters"
            )
        if len(set(unique_names)) != len(unique_names):
            dup = sorted({n for n in unique_names if unique_names.count(n) > 1})
            raise ValueError(f"parameter names are not unique: {dup}")
        self._unique_names = unique_names
        self._covariance: np.ndarray | None = None
        if covariance is not None:
            self.covariance = covariance

    # -- sequence protocol ------------------------------------------------
    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters)

    @overload
    def __getitem__(self, key: int | str) -> Parameter: ...
    @overload
    def __getitem__(self, key: slice) -> "Parameters": ...

    def __getitem__(self, key):
        if isinstance(key, slice):
            idx = list(range(len(self)))[key]
            return self._subset(idx)
        return self._parameters[self.index(key)]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Parameter):
            return any(p is key for p in self._parameters)
        try:
            self.index(key)  # type: ignore[arg-type]
        except (KeyError, IndexError, TypeError):
            return False
        return True

    def index(self, key: int | str | Parameter, *args: Any) -> int:  # type: ignore[override]
        """Position of an entry given by index, unique name, plain name or object.

        Parameters
        ----------
        key : int, str or Parameter
            Index, unique name (``model.component.name``), plain name (if unique) or the object.

        Returns
        -------
        int
            The position.
        """
        if isinstance(key, Parameter):
            for i, p in enumerate(self._parameters):
                if p is key:
                    return i
            raise KeyError(f"parameter {key.name!r} is not in this collection")
        if isinstance(key, (int, np.integer)):
            n = len(self)
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"parameter index {i} out of range for {n} parameters")
            return i % n
        if isinstance(key, str):
            if key in self._unique_names:
                return self._unique_names.index(key)
            hits = [i for i, p in enumerate(self._parameters) if p.name == key]
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                cands = [self._unique_names[i] for i in hits]
                raise KeyError(f"parameter name {key!r} is ambiguous; use one of {cands}")
            # also accept a unique-name suffix such as "spectral.index"
            hits = [i for i, n in enumerate(self._unique_names) if n.endswith("." + key)]
            if len(hits) == 1:
                return hits[0]
            raise KeyError(
                f"no parameter {key!r}; available: {self._unique_names}"
            )
        raise TypeError(f"invalid parameter key type {type(key).__name__}")

    def __repr__(self) -> str:
        rows = [
            f"  {u:<32} {p.value:>14.6g} {p.error:>11.4g} {p.unit:<16}"
            f"{' frozen' if p.frozen else ''}"
            for u, p in zip(self._unique_names, self._parameters)
        ]
        return "Parameters(\n" + "\n".join(rows) + "\n)"

    # -- attribute arrays -------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Plain parameter names (may repeat across models)."""
        return [p.name for p in self._parameters]

    @property
    def unique_names(self) -> list[str]:
        """Distinct labels, e.g. ``"gc-source.spectral.index"``."""
        return list(self._unique_names)

    @property
    def values(self) -> np.ndarray:
        """Values, in order."""
        return np.array([p.value for p in self._parameters], dtype=float)

    @property
    def errors(self) -> np.ndarray:
        """1-sigma errors, in order."""
        return np.array([p.error for p in self._parameters], dtype=float)

    @property
    def units(self) -> list[str]:
        """Unit strings, in order."""
        return [p.unit for p in self._parameters]

    @property
    def mins(self) -> np.ndarray:
        """Lower limits (NaN: none)."""
        return np.array([p.min for p in self._parameters], dtype=float)

    @property
    def maxs(self) -> np.ndarray:
        """Upper limits (NaN: none)."""
        return np.array([p.max for p in self._parameters], dtype=float)

    @property
    def frozen(self) -> np.ndarray:
        """Boolean mask of frozen entries."""
        return np.array([p.frozen for p in self._parameters], dtype=bool)

    def set_values(self, values: Sequence[float] | np.ndarray) -> None:
        """Set all values, in order (length must match).

        Parameters
        ----------
        values : sequence of float
            One value per entry.
        """
        values = np.asarray(values, dtype=float).ravel()
        if values.size != len(self):
            raise ValueError(f"got {values.size} values for {len(self)} parameters {self._unique_names}")
        for p, v in zip(self._parameters, values):
            p.value = float(v)

    # -- subsets ------------------------------------------------------------
    def _subset(self, idx: Sequence[int]) -> "Parameters":
        cov = None
        if self._covariance is not None:
            cov = self._covariance[np.ix_(idx, idx)]
        return Parameters(
            [self._parameters[i] for i in idx],
            unique_names=[self._unique_names[i] for i in idx],
            covariance=cov,
        )

    @property
    def free(self) -> "Parameters":
        """The non-frozen entries (same objects, covariance sub-block)."""
        return self._subset([i for i, p in enumerate(self._parameters) if not p.frozen])

    def select(self, keys: Iterable[int | str | Parameter]) -> "Parameters":
        """Subset by keys (see :meth:`index`), in the given order.

        Parameters
        ----------
        keys : iterable
            Keys as for :meth:`index`.

        Returns
        -------
        Parameters
            A view on the selected entries.
        """
        return self._subset([self.index(k) for k in keys])

    # -- covariance ---------------------------------------------------------
    @property
    def covariance(self) -> np.ndarray | None:
        """Covariance matrix over all entries (canonical units), or None."""
        return self._covariance

    @covariance.setter
    def covariance(self, matrix: np.ndarray | None) -> None:
        if matrix is None:
            self._covariance = None
            return
        m = np.array(matrix, dtype=float)
        n = len(self)
        if m.shape != (n, n):
            raise ValueError(f"covariance must have shape {(n, n)}, got {m.shape}")
        self._covariance = m

    def set_covariance(self, names: Sequence[int | str | Parameter], matrix: np.ndarray) -> None:
        """Set the covariance block of the given entries (e.g. the free ones after a fit).

        Entries not named keep their rows and columns; the cross terms between
        named and other entries are reset to zero.  The errors of the named
        entries become ``sqrt(diag(matrix))``.

        Parameters
        ----------
        names : sequence
            Keys of the entries (as for :meth:`index`).
        matrix : numpy.ndarray
            Their covariance, ``(n, n)``.
        """
        idx = [self.index(k) for k in names]
        m = np.asarray(matrix, dtype=float)
        if m.shape != (len(idx), len(idx)):
            raise ValueError(f"matrix shape {m.shape} does not match {len(idx)} names")
        n = len(self)
        full = np.zeros((n, n)) if self._covariance is None else self._covariance.copy()
        full[idx, :] = 0.0
        full[:, idx] = 0.0
        full[np.ix_(idx, idx)] = m
        self._covariance = full
        for i, var in zip(idx, np.diag(m)):
            self._parameters[i].error = float(np.sqrt(var)) if var > 0 else 0.0

    @property
    def correlation(self) -> np.ndarray | None:
        """Correlation matrix derived from :attr:`covariance` (0 where a variance is 0)."""
        if self._covariance is None:
            return None
        sig = np.sqrt(np.clip(np.diag(self._covariance), 0.0, None))
        denom = np.outer(sig, sig)
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = np.where(denom > 0, self._covariance / denom, 0.0)
        return corr

    # -- misc ---------------------------------------------------------------
    def to_dict(self) -> list[dict[str, Any]]:
        """gammapy's YAML form: one dict per parameter (:meth:`Parameter.to_dict`)."""
        return [p.to_dict() for p in self._parameters]

    @classmethod
    def from_dict(cls, data: Sequence[dict[str, Any]]) -> "Parameters":
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : sequence of dict
            The YAML entries.

        Returns
        -------
        Parameters
            The collection.
        """
        return cls([Parameter.from_dict(d) for d in data])

    def copy(self) -> "Parameters":
        """Deep copy (new Parameter objects)."""
        return Parameters(
            [p.copy() for p in self._parameters],
            unique_names=self._unique_names,
            covariance=None if self._covariance is None else self._covariance.copy(),
        )
