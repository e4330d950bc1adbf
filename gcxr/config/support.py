"""What gcxr does with each key of a gammapy ``AnalysisConfig``.

gcxr reads gammapy 2.1's configuration schema (:mod:`gcxr.config`); this module
says, key by key, whether the value acts as in gammapy or is refused.  A key is
never parsed and then ignored: :func:`check_supported` raises one
:class:`~gcxr.config.ConfigError` listing every key whose value gcxr cannot honour,
each with what gcxr does instead.  Default values of unsupported keys are accepted
(they ask for nothing).  The typed options of ``datasets.background.parameters``,
``datasets.safe_mask.parameters``, ``flux_points.parameters`` and
``excess_map.parameters`` are parsed here too (:func:`fov_options`,
:func:`safe_mask_options`, :func:`flux_points_options`).

Example
-------
>>> from gcxr.config import AnalysisConfig
>>> cfg = AnalysisConfig.from_yaml("datasets: {type: 3d, background: {method: ring}}")
>>> try:
...     check_supported(cfg)
... except ConfigError as err:
...     print(err.paths)
['datasets.background.method']
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import astropy.units as u

from .errors import ConfigError
from .schema import AnalysisConfig

__all__ = ["check_supported", "fov_options", "safe_mask_options", "flux_points_options",
           "FovOptions", "SafeMaskOptions", "REFUSED_KEYS"]

#: Keys gcxr refuses when set to a non-default value, and why (what gcxr does instead).
REFUSED_KEYS: dict[str, str] = {
    "datasets.on_region": "an ON region is used by gammapy only for 1D spectrum extraction "
                          "(datasets.type: 1d), which gcxr does not do; for a spectrum in a region of a "
                          "3D dataset use gcxr.estimators.spectral_residuals(ds, npred, region)",
    "datasets.containment_correction": "used by gammapy only for 1D spectrum extraction "
                                       "(datasets.type: 1d), which gcxr does not do; 3D datasets "
                                       "fold the full PSF",
    "light_curve": "gcxr has no light-curve estimator; reduce one dataset per time window "
                   "(observations.obs_time) and fit each",
}


def _is_default(config: AnalysisConfig, dotted: str) -> bool:
    """True if the section or key at ``dotted`` equals a fresh config's value."""
    value: Any = config
    default: Any = AnalysisConfig()
    for name in dotted.split("."):
        value, default = getattr(value, name), getattr(default, name)
    return value == default


def _changed_leaves(config: AnalysisConfig, dotted: str) -> list[str]:
    """The dotted keys below ``dotted`` whose value differs from the default."""
    from pydantic import BaseModel  # deferred: heavy import (pydantic)
    value: Any = config
    default: Any = AnalysisConfig()
    for name in dotted.split("."):
        value, default = getattr(value, name), getattr(default, name)
    if not isinstance(value, BaseModel):
        return [] if value == default else [dotted]
    out: list[str] = []
    for name in type(value).model_fields:
        out += _changed_leaves(config, f"{dotted}.{name}")
    return out


def check_supported(config: AnalysisConfig) -> None:
    """Raise :class:`ConfigError` naming every key whose value gcxr cannot honour.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration to check.

    Raises
    ------
    ConfigError
        With one ``(dotted key, reason)`` entry per refused key.
    """
    errors: list[tuple[str, str]] = []
    d = config.datasets
    if d.type != "3d":
        errors.append(("datasets.type", f"{d.type!r}: gcxr does 3D (map) analyses only; 1D spectrum "
                                         "extraction (ON/OFF, reflected regions) is not supported: set type: 3d"))
    for section, why in REFUSED_KEYS.items():
        for key in _changed_leaves(config, section):
            errors.append((key, f"not supported: {why}"))
    errors += _background_errors(config)
    errors += _safe_mask_errors(config)
    errors += _flux_points_errors(config)
    errors += _excess_map_errors(config)
    if config.general.n_jobs == 0:
        errors.append(("general.n_jobs", "0 threads; use a positive number, or -1 for all cores"))
    o = config.observations
    if o.obs_ids and o.obs_file is not None:
        errors.append(("observations.obs_file", "give obs_ids or obs_file, not both (as in gammapy)"))
    t = o.obs_time
    if (t.start is None) != (t.stop is None):
        missing = "stop" if t.stop is None else "start"
        errors.append((f"observations.obs_time.{missing}", "a time selection needs both start and stop"))
    elif t.start is not None and t.start.shape != t.stop.shape:
        errors.append(("observations.obs_time", "start and stop must be single times or lists of equal length"))
    if errors:
        raise ConfigError(errors)


# ------------------------------------------------------------------ background
@dataclass(frozen=True)
class FovOptions:
    """Options of gammapy's ``FoVBackgroundMaker`` that gcxr honours."""

    method: str = "scale"
    min_counts: float = 0.0
    min_npred_background: float = 0.0


_FOV_KEYS = ("method", "min_counts", "min_npred_background", "spectral_model", "spatial_model")
_NORM_MODELS = ("pl-norm", "PowerLawNormSpectralModel", "PowerLawNorm")


def _background_errors(config: AnalysisConfig) -> list[tuple[str, str]]:
    b = config.datasets.background
    key = "datasets.background"
    errors = []
    if b.method in ("ring", "reflected"):
        errors.append((f"{key}.method", f"{b.method!r} is not supported: gcxr's 3D datasets use the IRF "
                                        "background template, optionally normalised per run with "
                                        "method: fov_background (or null for the template as is)"))
    if b.method is None:
        if b.exclusion is not None:
            errors.append((f"{key}.exclusion", "an exclusion mask is used only with method: fov_background "
                                               "(it would have no effect here)"))
        if b.parameters:
            errors.append((f"{key}.parameters", "background parameters are used only with method: "
                                                f"fov_background (got {sorted(b.parameters)})"))
    if b.method == "fov_background":
        try:
            fov_options(config)
        except ConfigError as err:
            errors += err.errors
    return errors


def fov_options(config: AnalysisConfig) -> FovOptions:
    """The ``FoVBackgroundMaker`` options in ``datasets.background.parameters``.

    Accepted: ``method`` (``scale``, the default, or ``fit``: for a single norm both give
    ``sum(counts) / sum(background)``), ``min_counts``, ``min_npred_background``;
    ``spectral_model`` only as ``pl-norm`` (gammapy's default; its tilt stays frozen) and
    ``spatial_model`` only null.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    FovOptions
        The options; :class:`ConfigError` naming each key gcxr cannot honour.
    """
    p = dict(config.datasets.background.parameters or {})
    key = "datasets.background.parameters"
    errors = []
    for name in sorted(set(p) - set(_FOV_KEYS)):
        errors.append((f"{key}.{name}", f"unknown FoVBackgroundMaker option; gcxr accepts: {', '.join(_FOV_KEYS)}"))
    method = p.get("method", "scale")
    if method not in ("scale", "fit"):
        errors.append((f"{key}.method", f"{method!r}: allowed values are 'scale' and 'fit'"))
    if p.get("spectral_model", "pl-norm") not in _NORM_MODELS:
        errors.append((f"{key}.spectral_model", f"{p['spectral_model']!r}: gcxr fits the norm of the "
                                                "power-law norm model only ('pl-norm', tilt frozen)"))
    if p.get("spatial_model") is not None:
        errors.append((f"{key}.spatial_model", "a spatial model of the FoV background is not supported "
                                               "(gcxr scales the template as a whole)"))
    values = {}
    for name in ("min_counts", "min_npred_background"):
        try:
            values[name] = float(p.get(name, 0))
        except (TypeError, ValueError):
            errors.append((f"{key}.{name}", f"{p[name]!r} is not a number"))
    if errors:
        raise ConfigError(errors)
    return FovOptions(method=method, **values)


# ------------------------------------------------------------------ safe mask
@dataclass(frozen=True)
class SafeMaskOptions:
    """Options of gammapy's ``SafeMaskMaker`` that gcxr honours (angles in deg)."""

    offset_max: float = 3.0
    aeff_percent: float = 10.0
    bias_percent: float = 10.0
    fixed_offset: float | None = None


_SAFE_KEYS = ("offset_max", "aeff_percent", "bias_percent", "irfs", "position", "fixed_offset")


def _number(p: Mapping[str, Any], name: str, key: str, default: float, errors: list) -> float:
    value = p.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append((f"{key}.{name}", f"{value!r} is not a number"))
        return default
    return float(value)


def _angle(p: Mapping[str, Any], name: str, key: str, default: str, errors: list) -> float:
    value = p.get(name, default)
    try:
        q = u.Quantity(value)
        if q.unit == u.dimensionless_unscaled:
            raise u.UnitsError("no unit")
        return float(q.to_value("deg"))
    except Exception:
        errors.append((f"{key}.{name}", f"{value!r} is not an angle; write e.g. '2.5 deg'"))
        return float(u.Quantity(default).to_value("deg"))


def safe_mask_options(config: AnalysisConfig) -> SafeMaskOptions:
    """The ``SafeMaskMaker`` options in ``datasets.safe_mask.parameters``.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    SafeMaskOptions
        The options; :class:`ConfigError` naming each key gcxr cannot honour.
    """
    p = dict(config.datasets.safe_mask.parameters or {})
    key = "datasets.safe_mask.parameters"
    errors: list[tuple[str, str]] = []
    for name in sorted(set(p) - set(_SAFE_KEYS)):
        errors.append((f"{key}.{name}", f"unknown SafeMaskMaker option; valid: {', '.join(_SAFE_KEYS)}"))
    if p.get("irfs", "DL4") != "DL4":
        errors.append((f"{key}.irfs", f"{p['irfs']!r}: gcxr takes the safe-mask IRFs from the reduced maps "
                                      "only (gammapy's default 'DL4'); 'DL3' is not supported"))
    if p.get("position") is not None:
        errors.append((f"{key}.position", "not supported (gammapy needs a SkyCoord here, which YAML cannot "
                                          "give): use fixed_offset, or the default, the centre of each "
                                          "run's cutout"))
    fixed = None
    if p.get("fixed_offset") is not None:
        fixed = _angle(p, "fixed_offset", key, "0 deg", errors)
    opts = SafeMaskOptions(fixed_offset=fixed, offset_max=_angle(p, "offset_max", key, "3 deg", errors),
                           aeff_percent=_number(p, "aeff_percent", key, 10.0, errors),
                           bias_percent=_number(p, "bias_percent", key, 10.0, errors))
    if not 0 < opts.aeff_percent <= 100:
        errors.append((f"{key}.aeff_percent", f"{opts.aeff_percent} is not a percentage in (0, 100]"))
    if not opts.bias_percent > 0:
        errors.append((f"{key}.bias_percent", f"{opts.bias_percent} must be positive"))
    if not opts.offset_max > 0:
        errors.append((f"{key}.offset_max", f"{opts.offset_max} deg must be positive"))
    if fixed is not None and fixed < 0:
        errors.append((f"{key}.fixed_offset", f"{fixed} deg must not be negative"))
    if errors:
        raise ConfigError(errors)
    return opts


def _safe_mask_errors(config: AnalysisConfig) -> list[tuple[str, str]]:
    try:
        safe_mask_options(config)
    except ConfigError as err:
        return err.errors
    return []


# ------------------------------------------------------------------ estimators
_FP_KEYS = ("selection_optional", "reoptimize", "n_sigma_ul")


def flux_points_options(config: AnalysisConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`gcxr.estimators.flux_points` from ``flux_points.parameters``.

    Parameters
    ----------
    config : AnalysisConfig
        The configuration.

    Returns
    -------
    dict
        Keyword arguments; :class:`ConfigError` naming each key gcxr cannot honour.
    """
    p = dict(config.flux_points.parameters or {})
    key = "flux_points.parameters"
    errors = []
    for name in sorted(set(p) - set(_FP_KEYS)):
        errors.append((f"{key}.{name}", f"not supported by gcxr's flux points; accepted: {', '.join(_FP_KEYS)}"))
    if p.get("selection_optional", "all") not in ("all", None):
        errors.append((f"{key}.selection_optional", f"{p['selection_optional']!r}: gcxr always computes "
                                                    "norm_err and norm_ul and no likelihood scan; use 'all'"))
    out: dict[str, Any] = {}
    if "reoptimize" in p:
        if not isinstance(p["reoptimize"], bool):
            errors.append((f"{key}.reoptimize", f"{p['reoptimize']!r} is not true/false"))
        out["reoptimize"] = bool(p["reoptimize"])
    if "n_sigma_ul" in p:
        out["n_sigma_ul"] = _number(p, "n_sigma_ul", key, 2.0, errors)
    if errors:
        raise ConfigError(errors)
    return out


def _flux_points_errors(config: AnalysisConfig) -> list[tuple[str, str]]:
    try:
        flux_points_options(config)
    except ConfigError as err:
        return err.errors
    return []


def _excess_map_errors(config: AnalysisConfig) -> list[tuple[str, str]]:
    p = config.excess_map.parameters or {}
    return [(f"excess_map.parameters.{name}", "not supported: gcxr's excess map takes only "
                                              "correlation_radius and energy_edges (top-hat kernel, "
                                              "Cash significance)") for name in sorted(p)]
