"""Analytic derivatives: the gradient (chain rule through npred) and the Hessian (differences of
that gradient) taken dataset by dataset equal differences of the joint statistic, and a many-run
joint fit with them ends where Minuit's own derivatives end."""
import numpy as np
import pytest

from conftest import REF, needs_data

pytestmark = [needs_data]


@pytest.fixture(scope="module")
def seed_runs_reduced(seed_joint_analysis):
    return seed_joint_analysis.datasets


def _replicate(datasets, n):
    from gcxr.models import Models
    out = []
    for k in range(n // len(datasets)):
        for d in datasets:
            c = d.copy()
            c.attrs = dict(d.attrs) | {"name": f"{d.attrs['name']}-r{k:02d}"}
            out.append(c)
    models = Models([m for m in Models.read(REF / "seed_models_source.yaml") if m.name == "gc-source"])
    models.add_fov_background([d.attrs["name"] for d in out])
    return out, models


def test_term_wise_gradient_and_hessian_equal_joint_differences(seed_runs_reduced):
    from gcxr.likelihood import JointLikelihood, ParameterSpace, build_terms
    datasets, models = _replicate(seed_runs_reduced, 3)
    space = ParameterSpace.from_models(models)
    like = JointLikelihood(build_terms(datasets, models), space)
    f0 = space.to_factors(space.start) + 0.3          # away from the minimum: a real gradient
    h = 1e-3
    g = like.gradient(f0)
    for i in range(len(f0)):
        e = np.zeros_like(f0)
        e[i] = h
        assert g[i] == pytest.approx((like(f0 + e) - like(f0 - e)) / (2 * h), rel=1e-5, abs=1e-4)
    steps = np.full(len(f0), 0.005)
    H = like.hessian(f0, steps)
    n_src = 5
    norms = list(range(n_src, len(f0)))
    assert np.all(H[np.ix_(norms, norms)][~np.eye(len(norms), dtype=bool)] == 0)    # runs are independent
    for i, j in [(0, 0), (0, 2), (3, 4), (0, 5), (5, 5), (1, 6)]:
        ei, ej = np.zeros_like(f0), np.zeros_like(f0)
        ei[i], ej[j] = steps[i], steps[j]
        if i == j:
            full = (like(f0 + ei) - 2 * like(f0) + like(f0 - ei)) / steps[i] ** 2
        else:
            full = (like(f0 + ei + ej) - like(f0 + ei - ej) - like(f0 - ei + ej) + like(f0 - ei - ej)) / (
                4 * steps[i] * steps[j])
        assert H[i, j] == pytest.approx(full, rel=1e-4, abs=1e-3), (i, j)


def test_twelve_run_fit_structured_equals_minuit(seed_runs_reduced):
    from gcxr.fit import fit
    datasets, models = _replicate(seed_runs_reduced, 12)
    # cubic point rendering: with the default bilinear ("tent") weights the statistic is only
    # piecewise smooth in the position, with one local minimum per pixel cell near the source
    # (docs/parity.md), and two correct minimisers can end in neighbouring cells
    a = fit(datasets, models.copy(), point_weights="cubic")                       # analytic derivatives
    b = fit(datasets, models.copy(), derivatives="minuit", point_weights="cubic")
    assert a.timings["hessian"] == "analytic" and b.timings["hessian"] == "minuit"
    assert a.success and b.success
    assert a.total_stat == pytest.approx(b.total_stat, abs=0.01)
    for p, q in zip(a.parameters, b.parameters):
        if not q["frozen"]:
            assert abs(p["value"] - q["value"]) < 0.1 * q["error"], p["name"]
            assert p["error"] == pytest.approx(q["error"], rel=0.02), p["name"]
    assert a.timings["likelihood"]["likelihood_calls"] < 0.5 * b.timings["likelihood"]["likelihood_calls"]


def test_derivatives_option_is_checked(seed_runs_reduced):
    from gcxr.fit import fit
    datasets, models = _replicate(seed_runs_reduced, 3)
    with pytest.raises(ValueError, match="derivatives must be"):
        fit(datasets, models, derivatives="numeric")
