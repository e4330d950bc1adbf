"""The survey-like simulated store (gcxr.survey): plan, catalogue, configs, a 6-run 3-source mini survey."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from astropy.io import fits

from gcxr.config import AnalysisConfig
from gcxr.coords import transform_lonlat
from gcxr.datastore import DataStore, read_events, read_gti
from gcxr.coords import separation_deg
from gcxr.models import Models
from gcxr.survey import SHAPES, SPECTRA, SurveyPlan, default_survey_irf, simulate_survey, survey_models

from conftest import DATA

needs_1dc = pytest.mark.skipif(not (DATA / "cta-1dc").exists(), reason="CTA-1DC IRF not found (set GCXR_DATA)")

MINI = SurveyPlan(length=3.0, spacing=1.0)          # 3 pointings per row, 6 runs per pass
MINI_ARGS = dict(seed=3, n_sources=3, plan=MINI, binsz=0.05, quiet=True)


def _in_strip(lon, lat, plan):
    dl = (np.asarray(lon) - plan.l_center + 180.0) % 360.0 - 180.0
    return (np.abs(dl) <= plan.length / 2) & (np.abs(np.asarray(lat)) <= plan.height / 2)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    if not (DATA / "cta-1dc").exists():
        pytest.skip("CTA-1DC IRF not found (set GCXR_DATA)")
    out = tmp_path_factory.mktemp("survey") / "store"
    return out, simulate_survey(out, n_runs=6, **MINI_ARGS)


# ---------------------------------------------------------------- plan and catalogue (no simulation)
def test_default_plan_is_gps_like_and_prefixes_cover_the_strip():
    plan = SurveyPlan()
    pts = np.array(plan.pointings(200))
    assert pts.shape == (200, 2) and plan.runs_per_pass == 100
    assert np.all(_in_strip(pts[:, 0], pts[:, 1], plan))
    assert set(pts[:, 1]) == {-1.0, 1.0}
    for first in (pts[:100], pts[100:]):                   # each pass: 2 rows x 50 pointings 0.6 deg apart
        dl = np.sort((first[first[:, 1] == 1.0, 0] + 180) % 360 - 180)
        assert len(dl) == 50
        np.testing.assert_allclose(np.diff(dl), 0.6, atol=1e-9)
        assert dl[0] < -14.4 and dl[-1] > 14.4
    assert len({tuple(p) for p in pts}) == 200             # the second pass interleaves the first
    with pytest.raises(ValueError, match="rows"):
        SurveyPlan(rows=(3.0,))


def test_catalogue_mixes_shapes_and_spectra_inside_the_strip():
    models = survey_models()                              # the default survey's 18 sources
    assert len(models) >= 15
    names = [m.name for m in models]
    assert {n.split("-")[1] for n in names} == set(SHAPES) and {n.split("-")[2] for n in names} == set(SPECTRA)
    kinds = {type(m.spatial_model).__name__ for m in models} | {type(m.spectral_model).__name__ for m in models}
    assert kinds == {"PointSpatialModel", "GaussianSpatialModel", "DiskSpatialModel", "ShellSpatialModel",
                     "PowerLawSpectralModel", "ExpCutoffPowerLawSpectralModel", "LogParabolaSpectralModel"}
    pos = np.array([m.spatial_model.position for m in models])
    assert np.all(_in_strip(pos[:, 0], pos[:, 1], SurveyPlan()))
    assert np.all(np.abs(pos[:, 1]) + 0.5 < 2.0)           # extended sources stay inside the strip too
    assert survey_models(seed=0).to_dict() == models.to_dict()
    assert survey_models(seed=1).to_dict() != models.to_dict()


# ---------------------------------------------------------------- the mini survey
@needs_1dc
def test_mini_store_runs_point_inside_the_strip_and_read_back(mini):
    out, summary = mini
    store = DataStore.from_dir(out)
    assert store.obs_ids == [1, 2, 3, 4, 5, 6]
    with fits.open(out / "obs-index.fits.gz") as h:
        obs = h[1].data
        assert np.all(_in_strip(obs["GLON_PNT"], obs["GLAT_PNT"], MINI))
        np.testing.assert_allclose(obs["LIVETIME"], 1800.0)
        assert list(obs["EVENT_COUNT"]) == [r["n_events"] for r in summary["runs"]]
    with fits.open(out / "hdu-index.fits.gz") as h:
        irf_files = set(h[1].data["FILE_NAME"][h[1].data["HDU_TYPE"] == "aeff"])
    assert irf_files == {default_survey_irf().name}        # the seed runs' CTA-1DC IRF, copied into the store
    for run, info in zip(store.runs(store.obs_ids), summary["runs"]):
        ev = read_events(run)
        start, stop = read_gti(run)
        time, mc_id = _columns(run, "TIME", "MC_ID")
        assert len(ev.energy) == info["n_events"] > 1e5      # 1DC background: ~1.2e5 events in 30 min
        assert start[0] <= time.min() and time.max() <= stop[-1]
        assert np.bincount(mc_id).tolist() == list(info["counts"].values())
        assert separation_deg(ev.ra, ev.dec, run.ra_pnt, run.dec_pnt).max() < 10.0
        assert all(info["counts"][name] > 50 for name in summary["models"])


@needs_1dc
def test_mini_models_and_configs_read_back(mini):
    out, summary = mini
    models = Models.read(out / "survey_models.yaml")
    assert [m.name for m in models] == summary["models"]
    assert models.to_dict() == survey_models(3, 3, MINI).to_dict()
    stacked = AnalysisConfig.read(out / "survey_stacked.yaml")
    joint = AnalysisConfig.read(out / "survey_joint.yaml")
    assert stacked.datasets.stack is True and joint.datasets.stack is False
    assert stacked.observations.datastore_path == out.resolve()
    wcs = stacked.datasets.geom.wcs
    assert wcs.skydir.frame == "galactic" and wcs.width.width.to_value("deg") == MINI.length
    assert wcs.width.height.to_value("deg") == MINI.height and wcs.binsize.to_value("deg") == 0.05
    assert stacked.to_dict()["datasets"]["geom"] == joint.to_dict()["datasets"]["geom"]
    sim = json.loads((out / "simulation.json").read_text())
    assert sim["plan"]["spacing"] == MINI.spacing and sim["n_runs"] == 6


@needs_1dc
def test_mini_source_counts_close_on_npred(mini):
    """Simulated events of each source inside the analysis cuts ~ its npred on the stacked dataset."""
    from gcxr import Analysis, npred_cubes
    out, summary = mini
    ana = Analysis(out / "survey_stacked.yaml", progress=False)
    ana.get_observations()
    ds = ana.get_datasets()[0]
    models = Models.read(out / "survey_models.yaml")
    store = DataStore.from_dir(out)
    for k, m in enumerate(models, start=1):
        expected = float(npred_cubes(ds, Models([m]), name="stacked")["npred_signal"].where(
            ds["mask_safe"].astype(bool)).sum())
        n = 0
        for run in store.runs(store.obs_ids):
            ev = read_events(run)
            lon, lat = transform_lonlat(ev.ra, ev.dec, "icrs", "galactic")
            sel = _columns(run, "MC_ID")[0] == k
            sel &= (ev.energy >= 0.1) & (ev.energy <= 10.0) & _in_strip(lon, lat, MINI)
            sel &= separation_deg(ev.ra, ev.dec, run.ra_pnt, run.dec_pnt) < 2.5
            n += int(sel.sum())
        assert n > 300, (m.name, n)
        print(f"{m.name}: {n} events, npred {expected:.1f}, ratio {n / expected:.3f}")
        assert 0.9 < n / expected < 1.1, (m.name, n, expected)      # 4 sigma of the Poisson noise at n ~ 1500


def _columns(run, *names):
    with fits.open(run.hdu("events").path) as h:
        return [np.asarray(h["EVENTS"].data[n]) for n in names]


@needs_1dc
def test_mini_is_deterministic_and_runs_independent_of_the_store_size(mini, tmp_path):
    out, summary = mini
    again = simulate_survey(tmp_path / "again", n_runs=2, **MINI_ARGS)
    for i in (1, 2):
        name = f"data/run_{i:06d}.fits.gz"
        assert _sha(out / name) == _sha(tmp_path / "again" / name)
    assert [r["counts"] for r in again["runs"]] == [r["counts"] for r in summary["runs"][:2]]
    assert (Models.read(out / "survey_models.yaml").to_dict()
            == Models.read(tmp_path / "again" / "survey_models.yaml").to_dict())
    other = simulate_survey(tmp_path / "other", n_runs=1, **{**MINI_ARGS, "seed": 4})
    assert other["runs"][0]["counts"] != summary["runs"][0]["counts"]


@needs_1dc
def test_cli_simulate_survey(tmp_path, capsys):
    from gcxr.cli import main
    assert main(["simulate", "--survey", "1", "--out", str(tmp_path / "s"), "--livetime", "5 min"]) == 0
    text = capsys.readouterr().out
    assert "1 runs" in text and "18 sources" in text and "survey_stacked.yaml" in text
    for name in ("survey_models.yaml", "survey_stacked.yaml", "survey_joint.yaml", "obs-index.fits.gz"):
        assert (tmp_path / "s" / name).exists()
    assert len(Models.read(tmp_path / "s" / "survey_models.yaml")) == 18
    assert main(["simulate", "--survey", "1", "--out", str(tmp_path / "t"), "--pointings", "0,1"]) == 2
    assert "--pointings" in capsys.readouterr().err


@needs_1dc
def test_mini_joint_fit_with_sources_restricted_to_their_runs(mini):
    """survey_models_joint.yaml: each source on the runs that reach it; the joint fit (one background
    norm per run, spatial parameters frozen here for speed) runs and recovers the amplitudes."""
    from gcxr import Analysis
    out, summary = mini
    models = Models.read(out / "survey_models_joint.yaml")
    truth = Models.read(out / "survey_models.yaml")
    store = DataStore.from_dir(out)
    for m in models:
        assert m.datasets_names and set(m.datasets_names) <= {f"obs-{i}" for i in store.obs_ids}
        for p in m.spatial_model.parameters:
            p.frozen = True
    ana = Analysis(out / "survey_joint.yaml", progress=False)
    ana.get_observations()
    ana.get_datasets()
    assert [ds.attrs["name"] for ds in ana.datasets] == [f"obs-{i}" for i in store.obs_ids]
    ana.set_models(models)
    result = ana.run_fit()
    assert result.success
    bkg = ana.models.background_models
    assert sorted(bkg) == sorted(ds.attrs["name"] for ds in ana.datasets)     # one FoV background per run
    assert all(not m.spectral_model.parameters["norm"].frozen for m in bkg.values())
    for m, t in zip(ana.models.sky_models, truth):
        amp, err = m.spectral_model.parameters["amplitude"].value, m.spectral_model.parameters["amplitude"].error
        assert abs(amp - t.spectral_model.parameters["amplitude"].value) < 5 * err, m.name


def test_joint_models_restricts_sources_to_runs_in_reach():
    from gcxr.survey import joint_models
    models = survey_models(n_sources=4, plan=MINI)
    pointings = {1: (359.0, -1.0), 2: (1.0, 1.0), 3: (30.0, 0.0)}
    jm = joint_models(models, pointings, offset_max=1.0)
    for m, orig in zip(jm, models):
        lon, lat = m.spatial_model.position
        reach = 1.0 + m.spatial_model.evaluation_radius
        expect = [f"obs-{i}" for i, (pl, pb) in pointings.items()
                  if abs((pl - lon + 180) % 360 - 180) < reach and abs(pb - lat) < reach]
        assert m.datasets_names == expect and orig.datasets_names is None
    assert all("obs-3" not in m.datasets_names for m in jm)
