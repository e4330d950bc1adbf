"""The :class:`Models` collection: sky and FoV background models, their parameters (with the
covariance) and gammapy's YAML I/O.

The YAML layout is gammapy's (see :mod:`gcxr.models.sky` for a component's form)::

    components: [...]                     # SkyModel and FoVBackgroundModel entries
    covariance: models_covariance.dat     # optional, a table beside the YAML
    metadata: {creator: ..., date: ...}   # optional, informative only

The parameter order is always the models' (spectral before spatial, components in file order),
the order :class:`~gcxr.likelihood.ParameterSpace` gives the fitter.
"""
from __future__ import annotations

import copy
import datetime as _dt
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence, overload
import io

import numpy as np
import yaml

from .._yaml import load_yaml
from .._atomic import atomic_write_text
from .parameters import ModelError, Parameter, Parameters
from .sky import MODEL_TYPES, FoVBackgroundModel, Model, SkyModel

__all__ = ["Models"]

_YAML_FORMAT = dict(sort_keys=False, indent=4, width=80, default_flow_style=False)


def _version() -> str:
    try:
        from importlib.metadata import version  # deferred: importlib.metadata takes ~38 ms to import

        return version("gcxr")
    except Exception:  # not installed (running from a checkout)
        return "unknown"


class Models(Sequence[Model]):
    """Ordered collection of :class:`SkyModel` and :class:`FoVBackgroundModel`.

    Model names are unique; there is at most one FoV background model per
    dataset.  :attr:`parameters` lists every parameter in model order (each
    model: spectral, then spatial) with unique names
    ``"<model>.<spectral|spatial>.<parameter>"``; the object is kept between
    calls while the models are unchanged, and carries the covariance.
    """

    def __init__(self, models: Iterable[Model] = (), metadata: dict[str, Any] | None = None) -> None:
        self._models: list[Model] = []
        self._param_cache: Parameters | None = None
        self._param_ids: list[int] = []
        self.metadata: dict[str, Any] = dict(metadata or {})
        for m in models:
            self.append(m)

    # -- sequence ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[Model]:
        return iter(self._models)

    @overload
    def __getitem__(self, key: int | str) -> Model: ...
    @overload
    def __getitem__(self, key: slice) -> "Models": ...

    def __getitem__(self, key):
        if isinstance(key, slice):
            return Models(self._models[key])
        if isinstance(key, str):
            for m in self._models:
                if m.name == key:
                    return m
            raise KeyError(f"no model named {key!r}; models: {self.names}")
        return self._models[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self.names
        return any(m is key for m in self._models)

    def _check_new(self, model: Model) -> None:
        if not isinstance(model, (SkyModel, FoVBackgroundModel)):
            raise TypeError(f"expected SkyModel or FoVBackgroundModel, got {type(model).__name__}")
        if model.name in self.names:
            raise ModelError(f"model names must be unique: {model.name!r} is already in {self.names}")
        if isinstance(model, FoVBackgroundModel) and self.background_model(model.dataset_name) is not None:
            raise ModelError(f"dataset {model.dataset_name!r} already has a FoV background model")

    def append(self, model: Model) -> None:
        """Add a model at the end (names must stay unique).

        Parameters
        ----------
        model : SkyModel or FoVBackgroundModel
            The model.
        """
        self._check_new(model)
        self._models.append(model)

    def extend(self, models: Iterable[Model]) -> None:
        """Add several models at the end.

        Parameters
        ----------
        models : iterable
            The models.
        """
        for m in models:
            self.append(m)

    def insert(self, index: int, model: Model) -> None:
        """Add a model at ``index``.

        Parameters
        ----------
        index : int
            The position.
        model : SkyModel or FoVBackgroundModel
            The model.
        """
        self._check_new(model)
        self._models.insert(index, model)

    def remove(self, key: str | Model) -> None:
        """Remove a model.

        Parameters
        ----------
        key : str or model
            Its name or the object.
        """
        m = self[key] if isinstance(key, str) else key
        self._models = [x for x in self._models if x is not m]

    def __repr__(self) -> str:
        lines = [f"Models ({len(self)} components)"]
        for m in self._models:
            lines.append(f"  {m!r}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"Models {self.names}\n{self.parameters!r}"

    # -- views ------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The models' names, in order."""
        return [m.name for m in self._models]

    @property
    def sky_models(self) -> list[SkyModel]:
        """The :class:`SkyModel` entries, in order."""
        return [m for m in self._models if isinstance(m, SkyModel)]

    @property
    def background_models(self) -> dict[str, FoVBackgroundModel]:
        """FoV background models by dataset name."""
        return {m.dataset_name: m for m in self._models if isinstance(m, FoVBackgroundModel)}

    def background_model(self, dataset_name: str) -> FoVBackgroundModel | None:
        """The FoV background model of a dataset, or None.

        Parameters
        ----------
        dataset_name : str
            The dataset's name.

        Returns
        -------
        FoVBackgroundModel or None
            The dataset's background model.
        """
        for m in self._models:
            if isinstance(m, FoVBackgroundModel) and m.dataset_name == dataset_name:
                return m
        return None

    def add_fov_background(self, dataset_names: str | Iterable[str]) -> "Models":
        """Append a default :class:`FoVBackgroundModel` for every dataset lacking one.

        Parameters
        ----------
        dataset_names : str or iterable of str
            The datasets.

        Returns
        -------
        Models
            ``self``.
        """
        if isinstance(dataset_names, str):
            dataset_names = [dataset_names]
        for name in dataset_names:
            if self.background_model(name) is None:
                self.append(FoVBackgroundModel(name))
        return self

    def for_dataset(self, dataset_name: str) -> "Models":
        """The models that apply to one dataset (same objects).

        Parameters
        ----------
        dataset_name : str
            The dataset's name.

        Returns
        -------
        Models
            The models that apply.
        """
        out = Models()
        out._models = [m for m in self._models if m.applies_to(dataset_name)]
        return out

    @property
    def parameters(self) -> Parameters:
        """Every parameter, in model order, with unique names ``<model>.<component>.<name>``."""
        pars: list[Parameter] = []
        names: list[str] = []
        for m in self._models:
            mp = m.parameters
            pars.extend(mp)
            names.extend(f"{m.name}.{u}" for u in mp.unique_names)
        ids = [id(p) for p in pars]
        cache = self._param_cache
        if cache is not None and ids == self._param_ids and names == cache.unique_names:
            return cache
        new = Parameters(pars, unique_names=names)
        if cache is not None and cache.covariance is not None:
            # carry the covariance of the parameter objects that are still here
            old = {id(p): i for i, p in enumerate(cache)}
            keep = [(i, old[id(p)]) for i, p in enumerate(pars) if id(p) in old]
            if keep:
                cov = np.zeros((len(pars), len(pars)))
                ni = [k[0] for k in keep]
                oi = [k[1] for k in keep]
                cov[np.ix_(ni, ni)] = cache.covariance[np.ix_(oi, oi)]
                new.covariance = cov
        self._param_cache = new
        self._param_ids = ids
        return new

    @property
    def covariance(self) -> np.ndarray | None:
        """The covariance over :attr:`parameters` (set by a fit), or None."""
        return self.parameters.covariance

    @covariance.setter
    def covariance(self, matrix: np.ndarray | None) -> None:
        self.parameters.covariance = matrix

    def copy(self) -> "Models":
        """Deep copy (new parameter objects, covariance kept)."""
        return copy.deepcopy(self)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_param_ids"] = []  # object ids do not survive pickling; cache rebuilt
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        cov = None
        cache = state.get("_param_cache")
        if cache is not None:
            cov = cache.covariance
        self.__dict__.update(state)
        self._param_cache = None
        self._param_ids = []
        if cov is not None and len(self.parameters) == cov.shape[0]:
            self.parameters.covariance = cov

    def __deepcopy__(self, memo: dict[int, Any]) -> "Models":
        new = Models.__new__(Models)
        memo[id(self)] = new
        new._models = copy.deepcopy(self._models, memo)
        new.metadata = copy.deepcopy(self.metadata, memo)
        new._param_cache = None
        new._param_ids = []
        cov = self.parameters.covariance
        if cov is not None:
            new.parameters.covariance = cov.copy()
        return new

    # -- YAML -------------------------------------------------------------------
    def to_dict(self, path: str | os.PathLike | None = None) -> dict[str, Any]:
        """``{"components": [...]}``; templates relative to ``path``'s folder.

        Parameters
        ----------
        path : str or Path, optional
            The file the YAML will go to.

        Returns
        -------
        dict
            The mapping.
        """
        rel = None if path is None else Path(path).parent
        return {"components": [m.to_dict(relative_to=rel) for m in self._models]}

    def _metadata(self) -> dict[str, Any]:
        return {
            "creator": f"gcxr {_version()}",
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "origin": self.metadata.get("origin"),
        }

    def to_yaml(self, path: str | os.PathLike | None = None, metadata: bool = True) -> str:
        """YAML text (gammapy layout); ``metadata`` appends creator and date.

        ``path`` is where the text will live (template filenames are written
        relative to its folder).

        Parameters
        ----------
        path : str or Path, optional
            The file the YAML will go to.
        metadata : bool
            Append the metadata block.

        Returns
        -------
        str
            The YAML text.
        """
        data = self.to_dict(path)
        if metadata:
            data["metadata"] = self._metadata()
        return yaml.safe_dump(data, **_YAML_FORMAT)

    def write(self, path: str | os.PathLike, overwrite: bool = False, write_covariance: bool = True) -> None:
        """Write the YAML (atomically: temporary file + ``os.replace``).

        With a covariance, it goes to ``<stem>_covariance.dat`` beside the YAML
        (gammapy's ``|``-delimited table) and the YAML names it.

        Parameters
        ----------
        path : str or Path
            The YAML file.
        overwrite : bool
            Replace an existing file.
        write_covariance : bool
            Also write ``<stem>_covariance.dat`` when there is a covariance.
        """
        path = Path(os.path.expandvars(str(path)))
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        data = self.to_dict(path)
        cov = self.covariance
        if write_covariance and cov is not None and len(cov):
            cov_name = f"{path.stem}_covariance.dat"
            self._write_covariance(path.parent / cov_name)
            data["covariance"] = cov_name
        data["metadata"] = self._metadata()
        atomic_write_text(path, yaml.safe_dump(data, **_YAML_FORMAT))

    def _write_covariance(self, path: Path) -> None:
        from astropy.table import Table  # deferred: heavy import (astropy)

        pars = self.parameters
        cov = pars.covariance
        table = Table()
        table["Parameters"] = pars.unique_names
        for i in range(len(pars)):
            table[str(i)] = cov[i]
        buf = io.StringIO()
        table.write(buf, format="ascii.fixed_width", delimiter="|")
        atomic_write_text(path, buf.getvalue())

    def _read_covariance(self, path: Path) -> None:
        """Read gammapy's ``|``-delimited table (header ``Parameters | 0 | 1 ...``)."""
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                rows.append(cells)
        if not rows or rows[0][0] != "Parameters":
            raise ModelError(f"covariance file {path}: expected a 'Parameters' header column")
        names = [r[0] for r in rows[1:]]
        try:
            mat = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=float)
        except ValueError as exc:
            raise ModelError(f"covariance file {path}: {exc}") from None
        pars = self.parameters
        if mat.shape != (len(names), len(names)):
            raise ModelError(f"covariance file {path}: matrix shape {mat.shape} for {len(names)} names")
        if names == pars.unique_names:
            pars.covariance = mat
            return
        missing = [n for n in names if n not in pars.unique_names]
        if missing:
            if len(names) == len(pars):  # names differ (e.g. renamed models): trust the order
                pars.covariance = mat
                return
            raise ModelError(f"covariance file {path}: unknown parameters {missing[:5]}")
        idx = [pars.unique_names.index(n) for n in names]
        full = np.zeros((len(pars), len(pars)))
        full[np.ix_(idx, idx)] = mat
        pars.covariance = full

    @classmethod
    def from_dict(cls, data: Any, base_dir: str | os.PathLike | None = None) -> "Models":
        """From the YAML mapping; ``base_dir`` resolves template and covariance files.

        Parameters
        ----------
        data : dict
            The YAML mapping (``components``, optional ``covariance`` and ``metadata``).
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        Models
            The models; :class:`ModelError` names the component and parameter otherwise.
        """
        if not isinstance(data, dict) or "components" not in data:
            raise ModelError("a models YAML needs a top-level 'components' list")
        extra = set(data) - {"components", "covariance", "metadata", "checksum"}
        if extra:
            raise ModelError(f"unexpected top-level keys {sorted(extra)}; allowed: components, covariance, metadata")
        comps = data["components"] or []
        if not isinstance(comps, list):
            raise ModelError("'components' must be a list")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ModelError(f"'metadata' must be a mapping, got {type(metadata).__name__} {metadata!r:.60}")
        models = cls(metadata=metadata)
        for i, comp in enumerate(comps):
            if not isinstance(comp, dict):
                raise ModelError(f"component #{i} must be a mapping, got {comp!r}")
            t = comp.get("type")
            label = comp.get("name") or f"#{i}"
            if not isinstance(t, str) or t not in MODEL_TYPES:
                raise ModelError(
                    f"component {label!r}: unknown model type {t!r}; valid types: {', '.join(MODEL_TYPES)}"
                )
            model = MODEL_TYPES[t].from_dict(comp, base_dir=base_dir)
            try:
                models.append(model)
            except ModelError as exc:
                raise ModelError(f"component {label!r}: {exc}") from None
        cov_file = data.get("covariance")
        if cov_file:
            p = Path(os.path.expandvars(str(cov_file)))
            if base_dir is not None and not p.is_absolute() and (Path(base_dir) / p).exists():
                p = Path(base_dir) / p
            if p.exists():
                models._read_covariance(p)
            else:
                warnings.warn(f"covariance file {str(cov_file)!r} not found; covariance not loaded", stacklevel=2)
        return models

    @classmethod
    def from_yaml(cls, text: str, base_dir: str | os.PathLike | None = None) -> "Models":
        """Parse gammapy's models YAML text.

        Parameters
        ----------
        text : str
            The YAML.
        base_dir : str or Path, optional
            Resolves relative template file names.

        Returns
        -------
        Models
            The models; :class:`ModelError` otherwise.
        """
        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            raise ModelError(f"invalid YAML: {exc}") from None
        return cls.from_dict(data, base_dir=base_dir)

    @classmethod
    def read(cls, path: str | os.PathLike) -> "Models":
        """Read gammapy's models YAML file (``$VAR`` in ``path`` is expanded).

        Parameters
        ----------
        path : str or Path
            The file.

        Returns
        -------
        Models
            The models; :class:`ModelError` naming the file otherwise.

        Examples
        --------
        >>> models = Models.read('models.yaml')      # doctest: +SKIP
        >>> models['gc-source'].spectral_model.index.value   # doctest: +SKIP
        """
        path = Path(os.path.expandvars(str(path)))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"{path}: cannot read the models file ({exc.strerror or exc})") from None
        try:
            return cls.from_yaml(text, base_dir=path.parent)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
