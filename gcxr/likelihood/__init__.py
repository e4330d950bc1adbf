"""The Cash likelihood as a pure function of a flat parameter vector.

A :class:`ParameterSpace` maps the free parameters of a :class:`~gcxr.models.Models`
to a vector (with per-parameter scales for the minimiser).  A
:class:`DatasetTerm` holds one dataset's fixed arrays, split in two:

* *near* bins, inside the cutouts of the sources, evaluated explicitly:
  ``mu = B a_E + sum_s npred_s``, ``stat = 2 sum (mu - n ln mu)``;
* *far* bins, which no source reaches, where ``mu = B a_E`` with
  ``a_E = norm (E_c/E_ref)^-tilt``, so their statistic needs only per-energy sums:
  ``2 sum_E [a_E SB_E - SN_E ln a_E - SNlnB_E]`` with ``SB = sum B``,
  ``SN = sum n`` and ``SNlnB = sum n ln B`` over the far bins of the fit mask.

A term is built once (numpy arrays and small value objects only, so it can be
pickled to a dask worker) and evaluated for any parameter vector; what it keeps
between calls are caches (each source's folded parts by spatial values, the
predicted counts at the last values), never state that changes a result.
Where the predicted counts cannot be represented (a source's bin flux or the
background factor overflows: MIGRAD probing e.g. a power law of index 500), the
statistic is ``+inf`` and its derivatives are NaN (:meth:`DatasetTerm.out_of_range`),
so that no NaN is computed silently through npred; :func:`gcxr.fit.fit` steps back
from such points.
:meth:`DatasetTerm.value_and_grad` adds the analytic gradient (``dstat/dmu =
2 (1 - n/mu)`` through npred, :meth:`gcxr.npred.SourceEvaluator.backprop`) and
:meth:`DatasetTerm.curvature` the Gauss-Newton diagonal.  :class:`JointLikelihood`
sums the terms; :class:`gcxr.distributed.DistributedLikelihood` does the same
on a cluster.
"""
from __future__ import annotations

from .space import ANGLE_SCALE, ParameterSpace, derivative_steps, parameter_scale
from .term import DatasetTerm
from .joint import (JointLikelihood, TermwiseDerivatives, assemble_gradient, assemble_hessian, build_terms,
                    check_models_reach, term_curvature, term_gradient, term_hessian, term_parameters,
                    term_value_and_grad, total_stat)

__all__ = ["ParameterSpace", "parameter_scale", "DatasetTerm", "JointLikelihood", "build_terms", "total_stat", "term_hessian",
           "assemble_hessian", "term_parameters", "term_gradient", "term_value_and_grad", "assemble_gradient",
           "derivative_steps", "term_curvature", "check_models_reach"]
