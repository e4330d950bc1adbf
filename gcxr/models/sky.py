"""Sky models and FoV background models: the components of a :class:`~gcxr.models.Models`
collection (:mod:`gcxr.models.collection`, which holds the collection and its YAML I/O).

The YAML layout is gammapy's, so files travel both ways::

    components:
    -   name: gc-source
        type: SkyModel
        spectral: {type: ExpCutoffPowerLawSpectralModel, parameters: [...]}
        spatial: {type: PointSpatialModel, frame: galactic, parameters: [...]}
    -   type: FoVBackgroundModel
        datasets_names: [stacked]
        spectral: {type: PowerLawNormSpectralModel, parameters: [...]}
    covariance: models_covariance.dat     # optional, a table beside the YAML
    metadata: {creator: ..., date: ...}  # optional, informative only

Parameters absent from a file take the model defaults (values, limits and
frozen flags); values are converted to gcxr's canonical units on read.  The
parameter order is always the model's (spectral before spatial, components in
file order), which is the order the fitter sees.
"""
from __future__ import annotations

import copy
import os
import uuid
from typing import Any, Sequence, Union

import numpy as np

from .parameters import ModelError, Parameter, Parameters
from .spatial import SpatialModel, TemplateSpatialModel, spatial_model_from_dict
from .spectral import PowerLawNormSpectralModel, SpectralModel, spectral_model_from_dict

__all__ = ["SkyModel", "FoVBackgroundModel", "Model", "MODEL_TYPES"]

def _make_name() -> str:
    return uuid.uuid4().hex[:8]


def _check_keys(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(data) - allowed
    if "temporal" in extra:
        raise ModelError(f"{where}: temporal models are not supported by gcxr")
    if extra:
        raise ModelError(f"{where}: unexpected keys {sorted(extra)}; allowed: {sorted(allowed)}")


def _datasets_names(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ModelError(f"{where}: datasets_names must be a list of strings, got {value!r}")


class SkyModel:
    """A source: spectral model times (optionally) a spatial model.

    Parameters
    ----------
    spectral_model : SpectralModel
    spatial_model : SpatialModel, optional
        None for a spatially unresolved (1D) model.
    name : str, optional
        Unique name in a :class:`Models`; random 8 characters by default.
    datasets_names : list of str, optional
        Datasets the source applies to; None means all.
    """

    tag = "SkyModel"

    def __init__(
        self,
        spectral_model: SpectralModel,
        spatial_model: SpatialModel | None = None,
        name: str | None = None,
        datasets_names: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(spectral_model, SpectralModel):
            raise TypeError(f"spectral_model must be a SpectralModel, got {type(spectral_model).__name__}")
        if spatial_model is not None and not isinstance(spatial_model, SpatialModel):
            raise TypeError(f"spatial_model must be a SpatialModel, got {type(spatial_model).__name__}")
        self.spectral_model = spectral_model
        self.spatial_model = spatial_model
        self.name = _make_name() if name is None else str(name)
        self.datasets_names = None if datasets_names is None else list(datasets_names)

    @property
    def parameters(self) -> Parameters:
        """Spectral parameters, then spatial ones (unique names ``spectral.index``...)."""
        pars: list[Parameter] = list(self.spectral_model.parameters)
        names = [f"spectral.{p.name}" for p in pars]
        if self.spatial_model is not None:
            sp = list(self.spatial_model.parameters)
            pars += sp
            names += [f"spatial.{p.name}" for p in sp]
        return Parameters(pars, unique_names=names)

    def applies_to(self, dataset_name: str) -> bool:
        """Whether the model contributes to a dataset (``datasets_names`` empty or naming it).

        Parameters
        ----------
        dataset_name : str
            The dataset's name.

        Returns
        -------
        bool
        """
        return self.datasets_names is None or dataset_name in self.datasets_names

    def evaluate(self, energy, lon=None, lat=None) -> np.ndarray:
        """dN/dE/dOmega (cm-2 s-1 TeV-1 sr-1) for extended models, dN/dE otherwise.

        Parameters
        ----------
        energy : array_like
            Energies (TeV).
        lon, lat : array_like, optional
            Positions in the spatial model's frame (deg).

        Returns
        -------
        numpy.ndarray
            The flux density.
        """
        value = self.spectral_model.evaluate(energy)
        if self.spatial_model is None:
            return value
        if lon is None or lat is None:
            raise ValueError(f"SkyModel {self.name!r}: lon and lat are needed with a spatial model")
        if isinstance(self.spatial_model, TemplateSpatialModel) and self.spatial_model.is_energy_dependent:
            return self.spatial_model.evaluate(lon, lat, energy) * value
        return self.spatial_model.evaluate(lon, lat) * value

    def copy(self, name: str | None = None) -> "SkyModel":
        """A deep copy, optionally renamed.

        Parameters
        ----------
        name : str, optional
            The new name.

        Returns
        -------
        SkyModel
            The copy.
        """
        new = copy.deepcopy(self)
        if name is not None:
            new.name = name
        return new

    def __repr__(self) -> str:
        return (
            f"SkyModel(name={self.name!r}, spectral={self.spectral_model!r}, "
            f"spatial={self.spatial_model!r}, datasets_names={self.datasets_names!r})"
        )

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """gammapy's YAML form of the component.

        Parameters
        ----------
        relative_to : str or Path, optional
            Folder that template file names are written relative to.

        Returns
        -------
        dict
            The mapping.
        """
        data: dict[str, Any] = {"name": self.name, "type": self.tag}
        if self.datasets_names is not None:
            data["datasets_names"] = list(self.datasets_names)
        data["spectral"] = self.spectral_model.to_dict()
        if self.spatial_model is not None:
            if isinstance(self.spatial_model, TemplateSpatialModel):
                data["spatial"] = self.spatial_model.to_dict(relative_to)
            else:
                data["spatial"] = self.spatial_model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | os.PathLike | None = None) -> "SkyModel":
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            The component's YAML mapping.
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        SkyModel
            The model; :class:`ModelError` names what is wrong otherwise.
        """
        name = data.get("name")
        where = f"component {name!r}" if name is not None else "SkyModel component"
        _check_keys(data, {"name", "type", "spectral", "spatial", "datasets_names"}, where)
        if name is None:
            raise ModelError(f"{where}: a SkyModel needs a 'name'")
        if "spectral" not in data:
            raise ModelError(f"{where}: a SkyModel needs a 'spectral' model")
        spectral = spectral_model_from_dict(data["spectral"], component=name)
        spatial = None
        if data.get("spatial") is not None:
            spatial = spatial_model_from_dict(data["spatial"], component=name, base_dir=base_dir)
        return cls(
            spectral_model=spectral,
            spatial_model=spatial,
            name=name,
            datasets_names=_datasets_names(data.get("datasets_names"), where),
        )


class FoVBackgroundModel:
    """Background-template multiplier for one dataset: ``background x spectral(E)``.

    Parameters
    ----------
    dataset_name : str
        The dataset whose background map it scales.
    spectral_model : SpectralModel, optional
        A norm model; default :class:`PowerLawNormSpectralModel` (norm 1, tilt
        0 frozen, reference 1 TeV frozen).
    name : str, optional
        Default ``f"{dataset_name}-bkg"`` (gammapy's; not written to YAML
        unless different).
    """

    tag = "FoVBackgroundModel"

    def __init__(
        self,
        dataset_name: str,
        spectral_model: SpectralModel | None = None,
        name: str | None = None,
    ) -> None:
        if spectral_model is None:
            spectral_model = PowerLawNormSpectralModel()
        if not isinstance(spectral_model, SpectralModel) or not spectral_model.is_norm:
            raise ModelError(
                f"FoVBackgroundModel for dataset {dataset_name!r}: the spectral model must be a "
                f"norm model such as PowerLawNormSpectralModel, got {type(spectral_model).__name__}"
            )
        self.dataset_name = str(dataset_name)
        self.spectral_model = spectral_model
        self.name = f"{self.dataset_name}-bkg" if name is None else str(name)

    @property
    def datasets_names(self) -> list[str]:
        """``[dataset_name]``, as in gammapy's YAML."""
        return [self.dataset_name]

    @property
    def spatial_model(self) -> None:
        """None: the background template's shape is not a parameter."""
        return None

    @property
    def parameters(self) -> Parameters:
        """The spectral model's parameters (norm, tilt, reference)."""
        pars = list(self.spectral_model.parameters)
        return Parameters(pars, unique_names=[f"spectral.{p.name}" for p in pars])

    def applies_to(self, dataset_name: str) -> bool:
        """Whether this is the background model of ``dataset_name``.

        Parameters
        ----------
        dataset_name : str
            The dataset's name.

        Returns
        -------
        bool
        """
        return dataset_name == self.dataset_name

    def evaluate(self, energy) -> np.ndarray:
        """The multiplier at ``energy`` (TeV).

        Parameters
        ----------
        energy : array_like
            Energies (TeV).

        Returns
        -------
        numpy.ndarray
            The multiplier.
        """
        return self.spectral_model.evaluate(energy)

    def copy(self, name: str | None = None) -> "FoVBackgroundModel":
        """A deep copy, optionally renamed.

        Parameters
        ----------
        name : str, optional
            The new name.

        Returns
        -------
        FoVBackgroundModel
            The copy.
        """
        new = copy.deepcopy(self)
        if name is not None:
            new.name = name
        return new

    def __repr__(self) -> str:
        return f"FoVBackgroundModel(dataset_name={self.dataset_name!r}, spectral={self.spectral_model!r})"

    def to_dict(self, relative_to: str | os.PathLike | None = None) -> dict[str, Any]:
        """gammapy's YAML form of the component.

        Parameters
        ----------
        relative_to : str or Path, optional
            Folder that template file names are written relative to.

        Returns
        -------
        dict
            The mapping.
        """
        data: dict[str, Any] = {"type": self.tag}
        if self.name != f"{self.dataset_name}-bkg":
            data["name"] = self.name
        data["datasets_names"] = [self.dataset_name]
        data["spectral"] = self.spectral_model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | os.PathLike | None = None) -> "FoVBackgroundModel":
        """Inverse of :meth:`to_dict`.

        Parameters
        ----------
        data : dict
            The component's YAML mapping.
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        FoVBackgroundModel
            The model.
        """
        names = data.get("datasets_names")
        label = data.get("name") or (f"{names[0]}-bkg" if isinstance(names, list) and names else None)
        where = f"component {label!r}" if label else "FoVBackgroundModel component"
        _check_keys(data, {"name", "type", "spectral", "datasets_names"}, where)
        names = _datasets_names(names, where)
        if not names or len(names) != 1:
            raise ModelError(f"{where}: a FoVBackgroundModel needs exactly one entry in datasets_names, got {names!r}")
        spectral = None
        if data.get("spectral") is not None:
            spectral = spectral_model_from_dict(data["spectral"], component=label)
        return cls(names[0], spectral_model=spectral, name=data.get("name"))


Model = Union[SkyModel, FoVBackgroundModel]
MODEL_TYPES: dict[str, type] = {"SkyModel": SkyModel, "FoVBackgroundModel": FoVBackgroundModel}
