"""GADF data store: index reading, selection by ids, sky cone and time; lazy run references."""
import pickle

import pytest
from astropy.time import Time

from conftest import DATA, needs_data

pytestmark = needs_data


def test_obs_ids_and_run_refs(cta_store):
    assert cta_store.obs_ids == [110380, 111140, 111159, 111630]
    run = cta_store.run(110380)
    assert set(run.hdu_types) == {"events", "gti", "aeff", "edisp", "psf", "bkg"}
    assert run.hdu("psf").hdu_class == "psf_3gauss"
    assert run.hdu("events").path.endswith("gps_baseline_110380.fits")
    assert pickle.loads(pickle.dumps(run)) == run           # shipped to dask workers by value


def test_select_cone(cta_store):
    # 3 deg around the Galactic Centre: the three GC runs, not the Vela run 111630
    assert cta_store.select(cone=(0.0, 0.0, 3.0, "galactic")) == [110380, 111140, 111159]
    # Vela region
    assert cta_store.select(cone=(264.0, -1.3, 1.0, "galactic")) == [111630]
    # icrs cone around the pointing of 110380
    assert cta_store.select(cone=(267.68, -29.61, 0.1, "icrs")) == [110380]


def test_select_time(cta_store):
    import astropy.units as u
    t = Time("2021-03-02T12:00:00", scale="tt")                       # 111140 ran 11:58-12:28 TT
    assert cta_store.select(time=(t - 0.5 * u.day, t + 0.5 * u.day)) == [111140]
    assert cta_store.select(time=(Time("2021-03-03", scale="tt"), None)) == [111159, 111630]


def test_select_combined_and_ordered(cta_store):
    assert cta_store.select(obs_ids=[111159, 110380]) == [111159, 110380]
    assert cta_store.select(obs_ids=[111159, 110380, 111630], cone=(0, 0, 3, "galactic")) == [111159, 110380]


def test_config_cone_selection(seed_config):
    from gcxr.analysis import Analysis
    cfg = seed_config.model_copy(deep=True).update({"observations": {
        "obs_ids": [], "obs_cone": {"frame": "galactic", "lon": "0 deg", "lat": "0 deg", "radius": "3 deg"}}})
    ana = Analysis(cfg)
    assert [r.obs_id for r in ana.get_observations()] == [110380, 111140, 111159]


def test_hess_store_paths(tmp_path):
    from gcxr.datastore import DataStore
    ds = DataStore.from_dir(DATA / "hess-dl3-dr1")
    run = ds.run(23523)
    assert run.hdu("psf").hdu_class == "psf_table"
    assert run.hdu("bkg").hdu == "bkg"
    with pytest.raises(Exception, match="obs id"):
        ds.run(1)


def test_from_dir_expands_environment_variables(tmp_path, monkeypatch):
    """``DataStore.from_dir("$GCXR_DATA/...")`` as the user guide writes it; $GAMMAPY_DATA stands in."""
    from gcxr.datastore import DataStore, DataStoreError
    from gcxr.simulate import simulate_datastore
    simulate_datastore(tmp_path / "store", pointings=[(0.0, 0.0)], livetime=60.0, seed=1, quiet=True)
    monkeypatch.setenv("GCXR_DATA", str(tmp_path))
    assert DataStore.from_dir("$GCXR_DATA/store").obs_ids == [1]
    assert DataStore.from_dir("${GCXR_DATA}/store").base_dir == tmp_path / "store"
    monkeypatch.delenv("GCXR_DATA")
    monkeypatch.setenv("GAMMAPY_DATA", str(tmp_path))
    assert DataStore.from_dir("$GCXR_DATA/store").obs_ids == [1]
    with pytest.raises(DataStoreError, match=r"NO_SUCH_GCXR_VAR is not set"):
        DataStore.from_dir("$NO_SUCH_GCXR_VAR/store")
