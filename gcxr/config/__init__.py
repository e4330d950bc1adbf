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

This module validates the schema only; which values gcxr can honour (and the
refusals of the others, e.g. ``datasets.type: 1d``) is decided by
:func:`gcxr.config.support.check_supported`, which :class:`gcxr.Analysis` runs.

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

from .errors import ConfigError
from .paths import DATA_ENV_VARS, expand_path
from .schema import (
    AnalysisConfig,
    BackgroundConfig,
    DatasetsConfig,
    EnergyAxesConfig,
    EnergyAxisConfig,
    EnergyRangeConfig,
    ExcessMapConfig,
    FitConfig,
    FluxPointsConfig,
    GeneralConfig,
    GeomConfig,
    LightCurveConfig,
    LogConfig,
    MetadataConfig,
    ObservationsConfig,
    SafeMaskConfig,
    SelectionConfig,
    SkyCoordConfig,
    SpatialCircleConfig,
    TimeRangeConfig,
    WcsConfig,
    WidthConfig,
)

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
