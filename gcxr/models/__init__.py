"""Source and background models: parameters, spectra, spatial shapes, YAML I/O.

What to use when:

* :class:`Models` - read/write gammapy-style YAML, list the fit parameters
  (``models.parameters.free``), find a dataset's background model.
* :class:`SkyModel` - a source (spectral x spatial); :class:`FoVBackgroundModel`
  - the norm (and tilt) of one dataset's background template.
* Spectral models - ``evaluate(E)`` (dN/dE, cm-2 s-1 TeV-1) and
  ``integral(emin, emax)`` (cm-2 s-1, gammapy's integration rules); the pure
  ``Model._evaluate(E, **values)`` / ``Model._integral(emin, emax, **values)``
  forms take arbitrary parameter values and never touch the model.
* Spatial models - ``evaluate(lon, lat)`` in sr^-1 (deg in, model frame):
  point, Gaussian, disk, generalised Gaussian, shell, shell2, template;
  :func:`oversampling_factor` gives gammapy's sub-pixel factor for a pixel size.

Units are canonical and stored as strings on each :class:`Parameter`: TeV,
cm-2 s-1 TeV-1, TeV-1, deg; YAML values in other units are converted on read.
"""
from .parameters import ModelError, Parameter, Parameters
from .collection import Models
from .sky import MODEL_TYPES, FoVBackgroundModel, SkyModel
from .spatial import (
    MAX_OVERSAMPLING,
    SPATIAL_MODELS,
    DiskSpatialModel,
    GaussianSpatialModel,
    GeneralizedGaussianSpatialModel,
    PointSpatialModel,
    Shell2SpatialModel,
    ShellSpatialModel,
    SpatialModel,
    TemplateSpatialModel,
    angular_separation,
    oversampling_factor,
    position_angle,
    spatial_model_from_dict,
)
from .spectral import (
    SPECTRAL_MODELS,
    ExpCutoffPowerLawSpectralModel,
    LogParabolaSpectralModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SpectralModel,
    integrate_spectrum,
    powerlaw_integral,
    spectral_model_from_dict,
    trapz_loglog,
)

__all__ = [
    "ModelError",
    "Parameter",
    "Parameters",
    "SpectralModel",
    "PowerLawSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "LogParabolaSpectralModel",
    "PowerLawNormSpectralModel",
    "SPECTRAL_MODELS",
    "spectral_model_from_dict",
    "integrate_spectrum",
    "powerlaw_integral",
    "trapz_loglog",
    "SpatialModel",
    "PointSpatialModel",
    "GaussianSpatialModel",
    "DiskSpatialModel",
    "GeneralizedGaussianSpatialModel",
    "ShellSpatialModel",
    "Shell2SpatialModel",
    "TemplateSpatialModel",
    "SPATIAL_MODELS",
    "MAX_OVERSAMPLING",
    "oversampling_factor",
    "spatial_model_from_dict",
    "angular_separation",
    "position_angle",
    "SkyModel",
    "FoVBackgroundModel",
    "Models",
    "MODEL_TYPES",
]
