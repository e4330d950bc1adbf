"""The fit vector: :class:`ParameterSpace` maps the free parameters of a :class:`~gcxr.models.Models`
to the factors MIGRAD sees (with per-parameter scales), and :func:`derivative_steps` gives the
steps of the cheap inner derivatives.

This is the only map between models and the fit vector: parameters carry values, errors and
limits, never a scale; :func:`parameter_scale` is the one scale rule.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_ANGLES = {"lon_0", "lat_0"}
ANGLE_SCALE = 0.01     # deg: position parameters are fitted as offsets from the start in units of 0.01 deg


def parameter_scale(value: float) -> float:
    """The scale of a (non-angle) parameter in the fit vector: the power of ten at or below ``|value|``.

    ``10**floor(log10|value|)``, so that the factor ``value / scale`` MIGRAD sees lies in
    [1, 10) (an amplitude of 2.8e-12 becomes 2.8 x 1e-12); 1 for a zero or non-finite value.

    Parameters
    ----------
    value : float
        The parameter's start value.

    Returns
    -------
    float
        The scale.
    """
    v = float(value)
    if v == 0.0 or not np.isfinite(v):
        return 1.0
    return float(10.0 ** np.floor(np.log10(abs(v))))


@dataclass
class ParameterSpace:
    """Free parameters of a model collection as a flat vector.

    Minuit sees factors ``f = (v - offset) / scale``: positions are offsets from
    their start value in units of 0.01 deg (so a source at RA 228 deg needs no
    bounds), other parameters are divided by the power of ten below their
    start value (:func:`parameter_scale`).  :meth:`values_by_model` gives the
    values of all parameters for a trial vector without touching the models.
    """

    keys: list[tuple[str, str, str]]          # (model name, component, parameter name)
    start: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    frozen: dict                              # model -> component -> {name: value} (all parameters)
    units: list[str]
    limits: list[tuple[float, float]]

    @classmethod
    def from_models(cls, models) -> "ParameterSpace":
        """The free parameters of ``models`` with their start values, scales (design record 5) and limits.

        Parameters
        ----------
        models : Models
            The models.

        Returns
        -------
        ParameterSpace
            The space.
        """
        keys, start, scale, offset, units, limits = [], [], [], [], [], []
        frozen: dict = {}
        for m in models:
            comps = [("spectral", m.spectral_model)]
            if getattr(m, "spatial_model", None) is not None:
                comps.append(("spatial", m.spatial_model))
            for comp, sub in comps:
                vals = frozen.setdefault(m.name, {}).setdefault(comp, {})
                for p in sub.parameters:
                    vals[p.name] = float(p.value)
                    if p.frozen:
                        continue
                    keys.append((m.name, comp, p.name))
                    v = float(p.value)
                    if p.name in _ANGLES and comp == "spatial":
                        s, o = ANGLE_SCALE, v
                    else:
                        s, o = parameter_scale(v), 0.0
                    start.append(v)
                    scale.append(s)
                    offset.append(o)
                    units.append(p.unit)
                    limits.append((float(p.min), float(p.max)))
        return cls(keys, np.array(start), np.array(scale), np.array(offset), frozen, units, limits)

    @property
    def names(self) -> list[str]:
        """``<model>.<name>`` of each free parameter."""
        return [f"{m}.{n}" for m, _, n in self.keys]

    def to_factors(self, values: np.ndarray) -> np.ndarray:
        """Values to the factors MIGRAD sees, ``(value - offset) / scale``.

        Parameters
        ----------
        values : numpy.ndarray
            Values of the free parameters, in order.

        Returns
        -------
        numpy.ndarray
            The factors.
        """
        return (np.asarray(values, float) - self.offset) / self.scale

    def to_values(self, factors: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_factors`.

        Parameters
        ----------
        factors : numpy.ndarray
            Factors.

        Returns
        -------
        numpy.ndarray
            The values.
        """
        return np.asarray(factors, float) * self.scale + self.offset

    def factor_limits(self) -> list[tuple[float | None, float | None]]:
        """The parameters' limits in factor units, None where unbounded."""
        out = []
        for (lo, hi), s, o in zip(self.limits, self.scale, self.offset):
            a = None if not np.isfinite(lo) else (lo - o) / s
            b = None if not np.isfinite(hi) else (hi - o) / s
            out.append((a, b))
        return out

    def values_by_model(self, values: np.ndarray) -> dict:
        """All parameter values (frozen ones included) by model and component.

        Parameters
        ----------
        values : numpy.ndarray
            Values of the free parameters, in order.

        Returns
        -------
        dict
            ``{model: {component: {name: value}}}``.
        """
        out = {m: {c: dict(v) for c, v in comps.items()} for m, comps in self.frozen.items()}
        for (m, c, n), v in zip(self.keys, values):
            out[m][c][n] = float(v)
        return out


def derivative_steps(space: ParameterSpace) -> dict:
    """Central-difference steps (in value units) of the cheap inner derivatives (flux integrals,
    spatial images): 1e-5 deg for angles, 1e-6 of the parameter's scale otherwise.

    Parameters
    ----------
    space : ParameterSpace
        The free parameters and their scales.

    Returns
    -------
    dict
        Step (value units) by parameter key.
    """
    return {key: (1e-5 if unit == "deg" else 1e-6 * s) for key, unit, s in zip(space.keys, space.units, space.scale)}
