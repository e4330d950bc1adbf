r"""Spectral models: dN/dE and its integral over energy bins.

Units (plain floats): energy in TeV, dN/dE in cm-2 s-1 TeV-1, bin integrals in
cm-2 s-1 and energy fluxes in TeV cm-2 s-1.  Norm models
(:class:`PowerLawNormSpectralModel`) are dimensionless multipliers.

Each model has two forms:

* ``Model._evaluate(energy, **values)`` and ``Model._integral(emin, emax,
  **values)``: pure functions of arbitrary parameter values (arrays broadcast
  against the energies), used by the likelihood, which never mutates models;
* ``model.evaluate(energy)`` and ``model.integral(emin, emax)``: the same at
  the model's current parameter values.

Bin integrals follow gammapy 2.1 so that predicted counts agree to ~1e-15:

* power laws (and the norm power law) are integrated analytically,
  :math:`\int_{E_1}^{E_2}\phi_0 (E/E_0)^{-\Gamma}dE =
  \phi_0 E_0 [(E_2/E_0)^{1-\Gamma} - (E_1/E_0)^{1-\Gamma}]/(1-\Gamma)`,
  with :math:`\phi_0 E_0 \ln(E_2/E_1)` when ``isclose(1 - Gamma, 0)``;
* every other model is integrated numerically: each bin is split by
  ``num = int(max(max(100 * log10(emax/emin)), 2))`` geometrically spaced
  points (the same count for all bins, set by the widest), the model is
  evaluated at the points and each of the ``num - 1`` sub-intervals is
  integrated exactly as the power law through its two end values
  (:func:`trapz_loglog`).  For the 14 true-energy bins of the seed analysis
  (0.08-12 TeV) this is 15 points per bin and the rule is within 7.6e-6 of
  the exact integral of the exponential-cutoff power law.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np

from .._maths import trapz_loglog
from ._base import ParametricModel, lookup_type
from .parameters import ModelError, Parameter

__all__ = [
    "SpectralModel",
    "PowerLawSpectralModel",
    "ExpCutoffPowerLawSpectralModel",
    "LogParabolaSpectralModel",
    "PowerLawNormSpectralModel",
    "SPECTRAL_MODELS",
    "spectral_model_from_dict",
    "trapz_loglog",
    "powerlaw_integral",
    "integrate_spectrum",
    "propagate_errors",
    "PROPAGATION_STEP",
]

_TINY = np.finfo(np.float64).tiny
AMPLITUDE_UNIT = "cm-2 s-1 TeV-1"
PROPAGATION_STEP = 1e-3    # central-difference step of propagate_errors, in units of each parameter's sigma


def propagate_errors(func: Callable[..., Any], values: dict[str, float], names, covariance) -> np.ndarray:
    r"""1-sigma error of ``func(**values)`` by linear error propagation.

    .. math:: \sigma^2 = J^T C J, \qquad J_i = \partial f / \partial p_i

    The derivatives are central differences with a step of
    :data:`PROPAGATION_STEP` (1e-3) of each parameter's sigma,
    ``sqrt(covariance[i, i])``; parameters with no positive variance do not
    contribute.  (gammapy samples the parameters instead; the two agree where
    ``func`` is close to linear over the errors.)  This is the one rule used by
    :meth:`SpectralModel.integral_error` and
    :func:`gcxr.estimators.spectrum_band`.

    Parameters
    ----------
    func : callable
        ``func(**values)`` -> array; a pure form such as
        ``functools.partial(Model._integral, emin, emax)``.
    values : dict
        All of ``func``'s parameter values by name (the point to expand around).
    names : sequence of str
        The parameters the covariance is over, in its order (a subset of ``values``).
    covariance : numpy.ndarray
        Their covariance, ``(n, n)``.

    Returns
    -------
    numpy.ndarray
        The errors, of ``func``'s shape.
    """
    names = list(names)
    cov = np.asarray(covariance, dtype=float)
    n = len(names)
    if cov.shape != (n, n):
        raise ValueError(f"covariance must have shape {(n, n)} for {names}, got {cov.shape}")
    f0 = np.asarray(func(**values), dtype=float)
    jac = np.zeros((n,) + f0.shape)
    for i, name in enumerate(names):
        if not cov[i, i] > 0:
            continue
        h = PROPAGATION_STEP * np.sqrt(cov[i, i])
        up = dict(values, **{name: values[name] + h})
        lo = dict(values, **{name: values[name] - h})
        jac[i] = (np.asarray(func(**up), float) - np.asarray(func(**lo), float)) / (2 * h)
    var = np.einsum("i...,ij,j...->...", jac, cov, jac)
    return np.sqrt(np.clip(var, 0.0, None))


# --------------------------------------------------------------------------
# numerical kernels (plain arrays, no units)
# --------------------------------------------------------------------------
def powerlaw_integral(energy_min, energy_max, index, amplitude, reference):
    r"""Analytic :math:`\int_{E_1}^{E_2} A (E/E_0)^{-\Gamma} dE`, broadcasting.

    Uses :math:`A E_0 \ln(E_2/E_1)` where ``numpy.isclose(1 - Gamma, 0)``
    (i.e. :math:`|1-\Gamma| \le 10^{-8}`), and gives 0 for an infinite index.

    Parameters
    ----------
    energy_min, energy_max : array_like
        Integration bounds (TeV).
    index, amplitude, reference : array_like
        Power-law parameters (amplitude in cm-2 s-1 TeV-1, reference in TeV).

    Returns
    -------
    numpy.ndarray
        The integrals (cm-2 s-1).
    """
    energy_min = np.asarray(energy_min, dtype=float)
    energy_max = np.asarray(energy_max, dtype=float)
    g1 = 1.0 - np.asarray(index, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pref = amplitude * reference / g1
        general = pref * ((energy_max / reference) ** g1 - (energy_min / reference) ** g1)
        logform = amplitude * reference * np.log(energy_max / energy_min)
    return np.where(np.isclose(g1, 0.0), logform, general)


def _powerlaw_energy_flux(energy_min, energy_max, index, amplitude, reference):
    r"""Analytic :math:`\int_{E_1}^{E_2} E\,A (E/E_0)^{-\Gamma} dE`."""
    energy_min = np.asarray(energy_min, dtype=float)
    energy_max = np.asarray(energy_max, dtype=float)
    g2 = 2.0 - np.asarray(index, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pref = amplitude * reference**2 / g2
        general = pref * ((energy_max / reference) ** g2 - (energy_min / reference) ** g2)
        logform = amplitude * reference**2 * np.log(energy_max / energy_min)
    return np.where(np.isclose(g2, 0.0), logform, general)


def _n_points(energy_min: np.ndarray, energy_max: np.ndarray, ndecade: float = 100) -> int:
    """Points per bin of the numerical rule: ``int(max(max(ndecade*log10(emax/emin)), 2))``."""
    return int(max(np.max(ndecade * np.log10(energy_max / energy_min)), 2))


def integrate_spectrum(
    func: Callable[..., np.ndarray],
    energy_min,
    energy_max,
    values: dict[str, Any] | None = None,
    energy_flux: bool = False,
    ndecade: float = 100,
) -> np.ndarray:
    r"""Bin integrals of ``func(energy, **values)`` with the log-log rule.

    Each bin ``[emin_i, emax_i]`` gets the same number of ``geomspace``
    points (see :func:`_n_points`); the ``num - 1`` power-law segments are
    summed.  ``values`` may hold arrays that broadcast against ``energy_min``;
    ``energy_flux=True`` integrates :math:`E\,f(E)` instead.

    Parameters
    ----------
    func : callable
        ``func(energy, **values)`` -> dN/dE.
    energy_min, energy_max : array_like
        Bin bounds (TeV).
    values : dict, optional
        Parameter values passed to ``func``.
    energy_flux : bool
        Integrate E f(E) instead of f(E).
    ndecade : float
        Integration points per decade of energy.

    Returns
    -------
    numpy.ndarray
        Bin integrals.
    """
    emin = np.asarray(energy_min, dtype=float)
    emax = np.asarray(energy_max, dtype=float)
    emin, emax = np.broadcast_arrays(emin, emax)
    num = _n_points(emin, emax, ndecade)
    energy = np.geomspace(emin, emax, num=num, axis=-1)  # emin.shape + (num,)
    kw = {k: np.asarray(v, dtype=float)[..., np.newaxis] for k, v in (values or {}).items()}
    y = func(energy, **kw)
    if energy_flux:
        y = y * energy
    y, energy = np.broadcast_arrays(y, energy)
    return trapz_loglog(y, energy).sum(axis=-1)


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
class SpectralModel(ParametricModel):
    """Base class: ``evaluate``/``integral``/``energy_flux`` on current values.

    Subclasses implement the static ``_evaluate(energy, **values)``; models
    with a closed-form integral override ``_integral``.
    """

    kind: ClassVar[str] = "spectral"
    unit: ClassVar[str] = AMPLITUDE_UNIT
    """Unit of ``evaluate`` (``integral`` is this times TeV)."""
    is_norm: ClassVar[bool] = False

    _evaluate: ClassVar[Callable[..., np.ndarray]]

    # -- pure forms ---------------------------------------------------------
    @classmethod
    def _integral(cls, energy_min, energy_max, **values) -> np.ndarray:
        """Bin integrals at arbitrary parameter values (numerical rule)."""
        return integrate_spectrum(cls._evaluate, energy_min, energy_max, values)

    @classmethod
    def _energy_flux(cls, energy_min, energy_max, **values) -> np.ndarray:
        """Energy-flux bin integrals at arbitrary parameter values (numerical rule)."""
        return integrate_spectrum(cls._evaluate, energy_min, energy_max, values, energy_flux=True)

    # -- current values -----------------------------------------------------
    def evaluate(self, energy) -> np.ndarray:
        """dN/dE at ``energy`` (TeV), in :attr:`unit`.

        Parameters
        ----------
        energy : array_like
            Energies (TeV).

        Returns
        -------
        numpy.ndarray
            dN/dE.

        Examples
        --------
        >>> float(PowerLawSpectralModel(index=2, amplitude=1e-12).evaluate(1.0))
        1e-12
        """
        return type(self)._evaluate(np.asarray(energy, dtype=float), **self.values)

    __call__ = evaluate

    def integral(self, energy_min, energy_max) -> np.ndarray:
        """Integrated flux in the bins ``[energy_min, energy_max]`` (TeV), cm-2 s-1.

        Parameters
        ----------
        energy_min, energy_max : array_like
            Bin bounds (TeV).

        Returns
        -------
        numpy.ndarray
            Integrated flux (cm-2 s-1).
        """
        return type(self)._integral(energy_min, energy_max, **self.values)

    def energy_flux(self, energy_min, energy_max) -> np.ndarray:
        """Energy flux in the bins (TeV cm-2 s-1).

        Parameters
        ----------
        energy_min, energy_max : array_like
            Bin bounds (TeV).

        Returns
        -------
        numpy.ndarray
            Energy flux (TeV cm-2 s-1).
        """
        return type(self)._energy_flux(energy_min, energy_max, **self.values)

    def integral_error(self, energy_min, energy_max, covariance: np.ndarray | None = None) -> np.ndarray:
        """1-sigma error of :meth:`integral` by linear error propagation (:func:`propagate_errors`).

        ``covariance`` is over ``self.parameters`` (all of them, in order); by
        default the parameters' own covariance, else ``diag(error**2)``.
        Derivatives are central differences with steps of 1e-3 of each
        parameter's sigma.  (gammapy samples the parameters instead; the two
        agree when the integral is close to linear over the errors.)

        Parameters
        ----------
        energy_min, energy_max : array_like
            Bin bounds (TeV).
        covariance : numpy.ndarray, optional
            Over the model's parameters (default: theirs).

        Returns
        -------
        numpy.ndarray
            The errors (cm-2 s-1).
        """
        pars = self.parameters
        if covariance is None:
            covariance = pars.covariance
        if covariance is None:
            covariance = np.diag(pars.errors**2)
        integral = type(self)._integral

        def func(**values):
            return integral(energy_min, energy_max, **values)

        return propagate_errors(func, self.values, pars.names, covariance)

    @classmethod
    def from_dict(cls, data: dict[str, Any], component: str | None = None) -> "SpectralModel":
        """Build from gammapy's YAML form ``{type: ..., parameters: [...]}``.

        Parameters
        ----------
        data : dict
            The YAML mapping.
        component : str, optional
            The component's name, for error messages.

        Returns
        -------
        SpectralModel
            The model.
        """
        if cls is SpectralModel:
            return spectral_model_from_dict(data, component)
        cls._check_type(data, component)
        extra = set(data) - {"type", "parameters"}
        if extra:
            where = f"component {component!r}: " if component else ""
            raise ModelError(f"{where}{cls.tag}: unexpected keys {sorted(extra)}")
        model = cls.__new__(cls)
        model.parameters = cls._parameters_from_dict(data.get("parameters"), component)
        return model


class PowerLawSpectralModel(SpectralModel):
    r"""Power law :math:`\phi(E) = \phi_0 (E/E_0)^{-\Gamma}`.

    Parameters: ``index`` (2), ``amplitude`` (1e-12 cm-2 s-1 TeV-1),
    ``reference`` (1 TeV, frozen).  Integrals are analytic.
    """

    tag: ClassVar[str] = "PowerLawSpectralModel"
    tag_short: ClassVar[str] = "pl"
    _defaults = (
        Parameter("index", 2.0),
        Parameter("amplitude", 1e-12, AMPLITUDE_UNIT),
        Parameter("reference", 1.0, "TeV", frozen=True),
    )

    @staticmethod
    def _evaluate(energy, index, amplitude, reference):
        return amplitude * np.power(energy / reference, -index)

    @classmethod
    def _integral(cls, energy_min, energy_max, index, amplitude, reference):
        return powerlaw_integral(energy_min, energy_max, index, amplitude, reference)

    @classmethod
    def _energy_flux(cls, energy_min, energy_max, index, amplitude, reference):
        return _powerlaw_energy_flux(energy_min, energy_max, index, amplitude, reference)


class ExpCutoffPowerLawSpectralModel(SpectralModel):
    r"""Power law with exponential cutoff,
    :math:`\phi(E) = \phi_0 (E/E_0)^{-\Gamma} \exp(-(\lambda E)^{\alpha})`.

    Parameters: ``index`` (1.5), ``amplitude`` (1e-12 cm-2 s-1 TeV-1),
    ``reference`` (1 TeV, frozen), ``lambda_`` (0.1 TeV-1; unbounded, so
    negative values are allowed as in gammapy), ``alpha`` (1, frozen).
    Integrals are numerical (module docstring).
    """

    tag: ClassVar[str] = "ExpCutoffPowerLawSpectralModel"
    tag_short: ClassVar[str] = "ecpl"
    _defaults = (
        Parameter("index", 1.5),
        Parameter("amplitude", 1e-12, AMPLITUDE_UNIT),
        Parameter("reference", 1.0, "TeV", frozen=True),
        Parameter("lambda_", 0.1, "TeV-1"),
        Parameter("alpha", 1.0, frozen=True),
    )

    @staticmethod
    def _evaluate(energy, index, amplitude, reference, lambda_, alpha):
        return amplitude * (energy / reference) ** (-index) * np.exp(-np.power(energy * lambda_, alpha))


class LogParabolaSpectralModel(SpectralModel):
    r"""Log parabola with natural logarithm,
    :math:`\phi(E) = \phi_0 (E/E_0)^{-\alpha - \beta \ln(E/E_0)}`.

    Parameters: ``amplitude`` (1e-12 cm-2 s-1 TeV-1), ``reference`` (10 TeV,
    frozen), ``alpha`` (2), ``beta`` (1).  Integrals are numerical.
    """

    tag: ClassVar[str] = "LogParabolaSpectralModel"
    tag_short: ClassVar[str] = "lp"
    _defaults = (
        Parameter("amplitude", 1e-12, AMPLITUDE_UNIT),
        Parameter("reference", 10.0, "TeV", frozen=True),
        Parameter("alpha", 2.0),
        Parameter("beta", 1.0),
    )

    @classmethod
    def from_log10(cls, amplitude: Any, reference: Any, alpha: Any, beta: Any) -> "LogParabolaSpectralModel":
        """From the base-10 form :math:`(E/E_0)^{-\\alpha - \\beta \\log_{10}(E/E_0)}`.

        Parameters
        ----------
        amplitude, reference : float, str or Quantity
            As in the natural-log form.
        alpha, beta : float
            Index and curvature of the base-10 form.

        Returns
        -------
        LogParabolaSpectralModel
            The model (beta converted to the natural-log form).
        """
        return cls(amplitude=amplitude, reference=reference, alpha=alpha, beta=float(beta) / np.log(10))

    @staticmethod
    def _evaluate(energy, amplitude, reference, alpha, beta):
        x = energy / reference
        return amplitude * np.power(x, -alpha - beta * np.log(x))


class PowerLawNormSpectralModel(SpectralModel):
    r"""Dimensionless power-law multiplier :math:`n (E/E_0)^{-t}`, used for backgrounds.

    Parameters: ``tilt`` (0, frozen), ``norm`` (1), ``reference`` (1 TeV,
    frozen), in gammapy's order.  ``integral`` is analytic and has unit TeV.
    """

    tag: ClassVar[str] = "PowerLawNormSpectralModel"
    tag_short: ClassVar[str] = "pl-norm"
    unit: ClassVar[str] = ""
    is_norm: ClassVar[bool] = True
    _defaults = (
        Parameter("tilt", 0.0, frozen=True),
        Parameter("norm", 1.0),
        Parameter("reference", 1.0, "TeV", frozen=True),
    )

    @staticmethod
    def _evaluate(energy, tilt, norm, reference):
        return norm * np.power(energy / reference, -tilt)

    @classmethod
    def _integral(cls, energy_min, energy_max, tilt, norm, reference):
        return powerlaw_integral(energy_min, energy_max, tilt, norm, reference)

    @classmethod
    def _energy_flux(cls, energy_min, energy_max, tilt, norm, reference):
        return _powerlaw_energy_flux(energy_min, energy_max, tilt, norm, reference)


SPECTRAL_MODELS: dict[str, type[SpectralModel]] = {}
for _cls in (
    PowerLawSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    LogParabolaSpectralModel,
    PowerLawNormSpectralModel,
):
    SPECTRAL_MODELS[_cls.tag] = _cls
    SPECTRAL_MODELS[_cls.tag_short] = _cls
del _cls


def spectral_model_from_dict(data: Any, component: str | None = None) -> SpectralModel:
    """Spectral model from its YAML mapping; the type may be the long or short name.

    Parameters
    ----------
    data : dict
        The ``spectral:`` mapping of a models YAML component.
    component : str, optional
        The component's name, for error messages.

    Returns
    -------
    SpectralModel
        The model; :class:`ModelError` names what is wrong otherwise.
    """
    if not isinstance(data, dict):
        where = f"component {component!r}: " if component else ""
        raise ModelError(f"{where}spectral model must be a mapping, got {data!r}")
    cls = lookup_type(SPECTRAL_MODELS, data.get("type"), "spectral", component)
    return cls.from_dict(data, component)
