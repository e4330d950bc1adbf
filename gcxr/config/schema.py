"""gammapy 2.1's ``AnalysisConfig`` schema: one pydantic model per section, same keys
and defaults as gammapy's."""
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import astropy.units as u
import yaml
from pydantic import BaseModel, BeforeValidator, Field, PositiveInt, ValidationError, model_validator

from ._section import _Section
from .errors import ConfigError, _model_in_annotation
from .._atomic import atomic_write_text
from .paths import expand_path
from .types import (
    AngleQuantity,
    BackgroundMethod,
    EnergyQuantity,
    Frame,
    LatitudeQuantity,
    LogLevel,
    MapSelection,
    Parameters,
    PathStr,
    PositiveAngleQuantity,
    ReductionType,
    RequiredIrf,
    SafeMaskMethod,
    TimeValue,
    _normalise_level,
    _quantity_to_str,
)
from .._yaml import load_yaml
from .yaml_io import _YAML_DUMP_OPTIONS, _deep_merge, _UniqueKeyLoader

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
        """Validate a nested mapping (as loaded from YAML).

        Parameters
        ----------
        data : mapping or None
            The nested sections (None: all defaults).
        source : str, optional
            The file it came from, for messages.

        Returns
        -------
        AnalysisConfig
            The validated config; :class:`ConfigError` otherwise.
        """
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
        """Parse YAML text; an empty document gives the defaults.

        Parameters
        ----------
        text : str
            The YAML document.
        source : str, optional
            The file it came from, for messages.

        Returns
        -------
        AnalysisConfig
            The validated config; :class:`ConfigError` otherwise.
        """
        try:
            data = load_yaml(text, Loader=_UniqueKeyLoader)     # bounded alias expansion (gcxr._yaml)
        except yaml.YAMLError as exc:
            raise ConfigError([("<yaml>", f"YAML syntax error: {exc}")], source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> "AnalysisConfig":
        """Read a YAML file (``$VAR`` and ``~`` in ``path`` are expanded).

        Parameters
        ----------
        path : str or os.PathLike
            The YAML file.

        Returns
        -------
        AnalysisConfig
            The validated config; :class:`ConfigError` naming the file otherwise.
        """
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

        Parameters
        ----------
        path : str or os.PathLike
            The YAML file.
        overwrite : bool
            Replace an existing file.
        """
        filename = expand_path(path)
        atomic_write_text(filename, self.to_yaml(), overwrite=overwrite)
        return filename

    # ---------------------------------------------------------------------- helpers
    def update(self, other: "str | Mapping[str, Any] | AnalysisConfig") -> "AnalysisConfig":
        """A new config with the keys *set* in ``other`` (YAML text, mapping or
        config) laid over this one; nested sections are merged key by key.

        Parameters
        ----------
        other : str, mapping or AnalysisConfig
            The keys to set.

        Returns
        -------
        AnalysisConfig
            The merged config (this one is unchanged).
        """
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
