"""Prototype: the tutorial's "add a diffuse component" exercise fitted by gcxr, templates through
``gcxr.models.template.flux_parts``.

gcxr's npred engine (``gcxr.npred.SourceEvaluator``) does not evaluate energy-dependent
templates yet; this script patches its spatial step *in this process only* to show the
integration and to measure the result against gammapy 2.1
(``exercise_diffuse_result.json``). For a template the spatial part per true-energy bin is the
PSF-convolved plane ``P[k(t)]`` of ``flux_parts`` (cached: it depends on the spatial
parameters only) and the spectral part is the bin integral, as for any other source.

    GCXR_DATA=../shared/data python benchmarks/diffuse_exercise_prototype.py
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REF = Path(os.environ.get("GCXR_SHARED", ROOT.parent / "shared")) / "reference" / "gammapy-2.1-cta1dc-gc"
os.environ.setdefault("GCXR_DATA", str(REF.parents[1] / "data"))


def _template_planes(ev, spatial_values):
    """``P[k(t)]`` of ``flux_parts`` for the evaluator's template on its cutout, (n_true, ny, nx)."""
    from gcxr.models import PowerLawNormSpectralModel, PowerLawSpectralModel, SkyModel
    from gcxr.models.template import flux_parts

    tpl = ev.spatial_template
    for name, value in spatial_values.items():
        tpl.parameters[name].value = value
    spectral = PowerLawNormSpectralModel() if tpl.is_differential else PowerLawSpectralModel()
    lon, lat = ev._aux["lonlat_model"]
    parts = flux_parts(SkyModel(spectral, tpl, name="template"), lon, lat, ev._aux["omega"], ev.energy_true)
    return parts.planes[parts.plane_index]


def patch_source_evaluator():
    """Route energy-dependent templates through flux_parts, in this process only.

    Engine with ``SourceEvaluator.image`` (cached folded parts): the image of a 3D template is
    one plane per true-energy bin, convolved plane by plane by the engine.  Older engine with
    ``SourceEvaluator.spatial``: the PSF-convolved planes, cached here.
    """
    from scipy.signal import fftconvolve

    from gcxr import npred

    cls = npred.SourceEvaluator
    if hasattr(cls, "image"):
        original_image = cls.image

        def image(self, spatial_values):
            tpl = self.spatial_template
            if tpl is None or not tpl.is_energy_dependent:
                return original_image(self, spatial_values)
            return _template_planes(self, spatial_values)

        cls.image = image
        return
    original = cls.spatial

    def spatial(self, spatial_values):
        if self.spatial_template is None:
            return original(self, spatial_values)
        key = tuple(sorted(spatial_values.items()))
        cache = self._aux.setdefault("template_planes", {})
        if key not in cache:
            planes = _template_planes(self, spatial_values)
            cache.clear()
            cache[key] = np.stack([fftconvolve(planes[t], self.kernel[t], mode="same")
                                   for t in range(planes.shape[0])])
        return cache[key]

    cls.spatial = spatial


def main() -> None:
    from gcxr.analysis import Analysis
    patch_source_evaluator()
    t0 = time.perf_counter()
    ana = Analysis(REF / "analysis_config_stacked_fit.yaml", progress=False)
    ana.read_models(REF / "exercise_diffuse_models.yaml")
    ana.get_observations()
    ana.get_datasets()
    t1 = time.perf_counter()
    r = ana.run_fit()
    t2 = time.perf_counter()
    ref = json.loads((REF / "exercise_diffuse_result.json").read_text())["fit"]
    print(f"reduce {t1 - t0:.1f} s, fit {t2 - t1:.1f} s (gammapy fit {json.loads((REF / 'exercise_diffuse_result.json').read_text())['timings_s']['fit']:.0f} s)")
    print(f"total_stat gcxr {r.total_stat:.4f}  gammapy {ref['total_stat']:.4f}  success {r.success} nfev {r.nfev}")
    for p in ref["parameters"]:
        if p["frozen"]:
            continue
        g = r.parameter(p["model"], p["name"])
        print(f"{p['model']:>12s}.{p['name']:<10s} gcxr {g['value']: .6g} +- {g['error']:.3g}   "
              f"gammapy {p['value']: .6g} +- {p['error']:.3g}   ({(g['value'] - p['value']) / p['error']:+.3f} sigma)")


if __name__ == "__main__":
    main()
