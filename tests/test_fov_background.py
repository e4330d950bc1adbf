"""``datasets.background.method: fov_background`` against gammapy 2.1's FoVBackgroundMaker.

The reference numbers (tests/data/fov_background_gammapy.json) and the exclusion mask
(tests/data/fov_exclusion_gc.fits.gz: circles of 0.3 deg around the Galactic-Centre
source and G0.9+0.1) were made by tests/data/make_fov_background_reference.py with
gammapy 2.1 on the three seed runs.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REF, needs_data

DATA = Path(__file__).parent / "data"
MASK = DATA / "fov_exclusion_gc.fits.gz"
CASES = [(stack, excl) for excl in (False, True) for stack in (False, True)]


def _key(stack, excl):
    return f"{'stacked' if stack else 'joint'}_{'exclusion' if excl else 'no_exclusion'}"


@pytest.fixture(scope="module")
def gammapy_ref():
    return json.loads((DATA / "fov_background_gammapy.json").read_text())["cases"]


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """Each case reduced once by gcxr's Analysis and written to / read back from datasets.nc."""
    from gcxr.analysis import Analysis
    from gcxr.config import AnalysisConfig
    from gcxr.io import read_datasets, write_datasets
    out = {}
    for stack, excl in CASES:
        config = AnalysisConfig.read(REF / "analysis_config.yaml")
        config.datasets.stack = stack
        config.datasets.background.method = "fov_background"
        if excl:
            config.datasets.background.exclusion = str(MASK)
        ana = Analysis(config, progress=False)
        ana.get_observations()
        ana.get_datasets()
        path = tmp_path_factory.mktemp("fov") / "datasets.nc"
        write_datasets(ana.datasets[0] if stack else ana.datasets, path, spec=ana.spec)
        out[(stack, excl)] = (ana, read_datasets(path).load())
    return out


def _safe_sum_per_energy(ds):
    m = ds["mask_safe"].values.astype(bool)
    return (np.nan_to_num(ds["background"].values) * m).sum(axis=(-2, -1))


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("excl", [False, True], ids=["no_exclusion", "exclusion"])
def test_per_run_norms(reduced, gammapy_ref, excl):
    ana, _ = reduced[(False, excl)]
    ref = gammapy_ref[_key(False, excl)]
    by_obs = {r["obs_ids"][0]: r for r in ref}
    assert sorted(by_obs) == [110380, 111140, 111159]
    for ds in ana.datasets:
        r = by_obs[int(ds.attrs["obs_id"])]
        assert float(ds["background_norm"]) == pytest.approx(r["norm"], rel=1e-3)
    norms = {int(ds.attrs["obs_id"]): float(ds["background_norm"]) for ds in ana.datasets}
    if excl:   # excluding the sources lowers every norm (their counts no longer feed the background)
        no_excl = {int(ds.attrs["obs_id"]): float(ds["background_norm"]) for ds in reduced[(False, False)][0].datasets}
        assert all(norms[o] < no_excl[o] for o in norms)


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("stack,excl", CASES, ids=[_key(*c) for c in CASES])
def test_background_the_fit_starts_from(reduced, gammapy_ref, stack, excl):
    """result.json's ``background`` sums and the datasets.nc cube include the FoV norm."""
    ana, nc = reduced[(stack, excl)]
    ref = gammapy_ref[_key(stack, excl)]
    summaries = ana.dataset_summaries()                       # what `gcxr run` writes to result.json
    if stack:
        assert summaries[0]["background"] == pytest.approx(ref[0]["npred_background_safe"], rel=1e-3)
        np.testing.assert_allclose(_safe_sum_per_energy(nc), ref[0]["npred_background_safe_per_energy"], rtol=1e-3)
        # the FoV norm is what makes the stacked background equal the stacked counts over the safe bins
        if not excl:
            assert summaries[0]["background"] == pytest.approx(summaries[0]["counts"], rel=1e-6)
        return
    by_obs = {r["obs_ids"][0]: r for r in ref}
    nc_obs = [int(o) for o in nc["obs"].values]
    for ds, summary in zip(ana.datasets, summaries):
        obs = int(ds.attrs["obs_id"])
        r = by_obs[obs]
        assert summary["background"] == pytest.approx(r["npred_background_safe"], rel=1e-3)
        assert summary["background"] != pytest.approx(r["background_safe"], rel=1e-2)   # the norm is applied
        run_nc = nc.isel(obs=nc_obs.index(obs))
        np.testing.assert_allclose(_safe_sum_per_energy(run_nc), r["npred_background_safe_per_energy"], rtol=1e-3)
        assert float(run_nc["background_norm"]) == pytest.approx(r["norm"], rel=1e-3)


def test_fov_norm_by_hand():
    from gcxr.background import fov_background_norm
    counts = np.array([[[4, 6], [100, 2]]])
    bkg = np.array([[[2.0, 3.0], [1.0, 1.0]]])
    mask = np.array([[[True, True], [False, True]]])          # the 100 counts are excluded
    res = fov_background_norm(counts, bkg, mask)
    assert res.ok and res.norm == 12 / 6 and res.error == pytest.approx(np.sqrt(12) / 6)
    assert not fov_background_norm(counts, bkg, mask, min_counts=12).ok       # needs more than 12 counts
    assert not fov_background_norm(counts, bkg, mask, min_npred_background=6).ok
    assert not fov_background_norm(counts * 0, bkg, mask).ok


def test_exclusion_mask_round_trip(tmp_path):
    from gcxr.background import exclusion_mask_from_circles, read_exclusion_mask, write_exclusion_mask
    from gcxr.geom import SkyGeom
    g = SkyGeom.create((0, 0), 0.02, (10, 8), "galactic")
    mask = exclusion_mask_from_circles(g, [(0, 0, 0.3), (0.87, 0.07, 0.3)])
    # the mask gammapy made from the same circles (regions' contains on pixel centres)
    gp = read_exclusion_mask(MASK, g).array
    assert int((~gp).sum()) > 2 * int(np.pi * 0.28 ** 2 / 0.02 ** 2)
    # they differ only on pixel centres lying on a circle (0.3 deg within 1e-6 deg: regions tests them in pixel coordinates)
    from gcxr.coords import separation_deg
    ys, xs = np.nonzero(mask != gp)
    assert ys.size < 20
    for y, x in zip(ys, xs):
        seps = [separation_deg(g.lon[x], g.lat[y], lon, lat) for lon, lat in ((0, 0), (0.87, 0.07))]
        assert min(abs(s - 0.3) for s in seps) < 1e-6
    write_exclusion_mask(tmp_path / "m.fits", g, mask)
    np.testing.assert_array_equal(read_exclusion_mask(tmp_path / "m.fits", g).array, mask)
    # a coarser grid reads the nearest mask pixel; outside the image is excluded
    wide = SkyGeom.create((0, 0), 0.5, (12, 4), "galactic")
    arr = read_exclusion_mask(tmp_path / "m.fits", wide).array
    assert not arr[:, 0].any() and not arr[:, -1].any() and arr[0, 5]


def test_exclusion_mask_errors(tmp_path):
    from gcxr.background import read_exclusion_mask
    from gcxr.config import ConfigError
    from gcxr.geom import SkyGeom
    g = SkyGeom.create((0, 0), 0.5, (2, 2), "galactic")
    with pytest.raises(ConfigError, match="datasets.background.exclusion.*does not exist"):
        read_exclusion_mask(tmp_path / "missing.fits", g)
    (tmp_path / "bad.fits").write_text("not fits")
    with pytest.raises(ConfigError, match="datasets.background.exclusion.*bad.fits"):
        read_exclusion_mask(tmp_path / "bad.fits", g)


@needs_data
@pytest.mark.data
@pytest.mark.parametrize("stack", [False, True], ids=["joint", "stacked"])
def test_gcxr_run_writes_the_normalised_background(tmp_path, gammapy_ref, stack):
    """`gcxr run --no-fit` with fov_background and the exclusion mask: result.json and datasets.nc."""
    from gcxr.cli import main
    from gcxr.config import AnalysisConfig
    from gcxr.io import read_datasets
    config = AnalysisConfig.read(REF / "analysis_config.yaml")
    config.datasets.stack = stack
    config.datasets.background.method = "fov_background"
    config.datasets.background.exclusion = str(MASK)
    config.write(tmp_path / "config.yaml")
    assert main(["run", str(tmp_path / "config.yaml"), "--no-fit", "--quiet", "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    ref = gammapy_ref[_key(stack, True)]
    got = sorted(d["background"] for d in result["datasets"])
    np.testing.assert_allclose(got, sorted(r["npred_background_safe"] for r in ref), rtol=1e-3)
    nc = read_datasets(tmp_path / "out" / "datasets.nc")
    total = _safe_sum_per_energy(nc).sum()
    assert total == pytest.approx(sum(r["npred_background_safe"] for r in ref), rel=1e-3)
