"""The command line: one exit status per kind of failure, everything checked before the reduction,
no global logging or warnings configuration, and where each output went."""
from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path

import pytest

from gcxr import cli
from gcxr.analysis import Analysis
from gcxr.cli import main

from conftest import SMALL_STORE_CONFIG, SMALL_STORE_MODELS

MODELS = SMALL_STORE_MODELS        # conftest: a point source on the small store


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from gcxr.simulate import simulate_datastore
    base = tmp_path_factory.mktemp("cli")
    simulate_datastore(base / "store", pointings=[(0.0, 0.0)], livetime=120.0, seed=11, quiet=True)
    (base / "config.yaml").write_text(SMALL_STORE_CONFIG.format(store=base / "store"))
    (base / "models.yaml").write_text(MODELS)
    return base


@pytest.fixture
def no_reduction(monkeypatch):
    """Fail the test if the reduction starts (or the data store is even opened)."""
    def refuse(self, *a, **k):
        raise AssertionError("the reduction started before the arguments were checked")
    monkeypatch.setattr(Analysis, "get_observations", refuse)
    monkeypatch.setattr(Analysis, "get_datasets", refuse)


def run(files, *args):
    return main(["run", str(files / "config.yaml"), *args])


def test_exit_statuses_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for status in (cli.EXIT_OK, cli.EXIT_BUG, cli.EXIT_USAGE, cli.EXIT_DATA, cli.EXIT_MODEL, cli.EXIT_FIT,
                   cli.EXIT_OUTPUT, 130, 143):
        assert f"\n  {status} " in text, status
    assert len({cli.EXIT_BUG, cli.EXIT_USAGE, cli.EXIT_DATA, cli.EXIT_MODEL, cli.EXIT_FIT, cli.EXIT_OUTPUT}) == 6


# --------------------------------------------------------------------------- checked before the reduction
def test_missing_models_option_is_a_usage_error(files, tmp_path, no_reduction, capsys):
    assert run(files, "--out", str(tmp_path / "out")) == cli.EXIT_USAGE == 2
    assert "--models MODELS (or general.models_file in the config) is required" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_config_file_is_a_usage_error(tmp_path, no_reduction, capsys):
    assert main(["run", str(tmp_path / "nope.yaml"), "--no-fit", "--out", str(tmp_path / "out")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_bad_config_key_is_a_usage_error(files, tmp_path, no_reduction, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((files / "config.yaml").read_text().replace("binsize_irf", "binsz_irf"))
    assert main(["run", str(cfg), "--no-fit", "--out", str(tmp_path / "out")]) == 2
    assert "binsz_irf" in capsys.readouterr().err


def test_missing_models_file_is_a_model_error(files, tmp_path, no_reduction, capsys):
    assert run(files, "--models", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "out")) == cli.EXIT_MODEL == 4
    err = capsys.readouterr().err
    assert "none.yaml: cannot read the models file" in err
    assert not (tmp_path / "out").exists()


def test_bounds_min_above_max_is_a_model_error(files, tmp_path, no_reduction, capsys):
    m = tmp_path / "m.yaml"
    m.write_text(MODELS.replace("value: 2.3}", "value: 2.3, min: 4, max: 1}"))
    assert run(files, "--models", str(m), "--out", str(tmp_path / "out")) == 4
    err = capsys.readouterr().err
    assert "m.yaml" in err and "'src'" in err and "'index'" in err and "min (4) is above max (1)" in err


def test_out_being_a_file_is_an_output_error(files, tmp_path, no_reduction, capsys):
    (tmp_path / "out").write_text("not a folder")
    assert run(files, "--models", str(files / "models.yaml"), "--out", str(tmp_path / "out")) == cli.EXIT_OUTPUT == 6
    assert f"--out {tmp_path / 'out'}: exists and is not a folder" in capsys.readouterr().err


def test_read_only_out_is_an_output_error(files, tmp_path, no_reduction, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == out else real(p, mode, **k))
    assert run(files, "--no-fit", "--out", str(out)) == 6
    assert f"--out {out}: the folder is not writable" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_for_real(files, tmp_path, no_reduction, capsys):
    out = tmp_path / "out"
    out.mkdir(mode=0o500)
    assert run(files, "--no-fit", "--out", str(out)) == 6


# --------------------------------------------------------------------------- a run
def test_run_prints_where_each_output_went_and_configures_no_logging(files, tmp_path, capsys):
    root = logging.getLogger()
    handlers, level, filters = list(root.handlers), root.level, list(warnings.filters)
    out = tmp_path / "out"
    assert run(files, "--models", str(files / "models.yaml"), "--out", str(out)) == 0
    assert root.handlers == handlers and root.level == level        # no logging.basicConfig
    assert warnings.filters == filters
    stdout = capsys.readouterr().out
    listed = stdout.split("outputs:\n", 1)[1].split()
    assert sorted(listed) == sorted(str(p) for p in out.iterdir())
    assert len(listed) == 5


def test_quiet_hides_progress_never_warnings(files, tmp_path, capsys):
    m = tmp_path / "m.yaml"
    m.write_text(MODELS.replace("value: 2.3", "value: 50"))         # MIGRAD cannot converge from there
    with pytest.warns(RuntimeWarning, match="MIGRAD did not converge"):
        rc = run(files, "--models", str(m), "--out", str(tmp_path / "out"), "--quiet")
    assert rc == cli.EXIT_FIT == 5
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "the fit did not converge" in captured.err


def test_library_info_logs_stay_off_the_terminal(files, tmp_path, capsys):
    """distributed sets its loggers to INFO; with a root handler (logging.basicConfig) every such line
    reached the terminal.  A run adds no handler to the root logger (nothing that would pass a
    library's INFO line to the terminal), and its own logger has at most one handler.  (Checked on
    the handlers, not on captured output: distributed's own handler, made at its import, may hold a
    stream an earlier test's capture has closed.)"""
    root = logging.getLogger()
    before = list(root.handlers), root.level
    assert run(files, "--no-fit", "--out", str(tmp_path / "out"), "--quiet") == 0
    assert (list(root.handlers), root.level) == before
    assert len(logging.getLogger("gcxr").handlers) <= 1              # gcxr's own logger, one handler


# --------------------------------------------------------------------------- the Analysis owns its outputs
def test_analysis_write_gives_the_files_of_gcxr_run(files, tmp_path):
    """``ana.write(out)`` in a session writes what ``gcxr run`` writes, as one set: the same files and
    the same ``result.json`` keys; a later set without a fit removes the fit's files; a failed write
    leaves the previous set and no staging folder."""
    import json

    from gcxr.outputs import OutputError
    by_cli = tmp_path / "cli"
    assert run(files, "--models", str(files / "models.yaml"), "--out", str(by_cli), "--quiet") == 0
    ana = Analysis(files / "config.yaml", progress=False)
    ana.get_observations()
    ana.get_datasets()
    ana.read_models(files / "models.yaml")
    ana.run_fit()
    result = ana.result()
    assert set(result) == {"datasets", "fit", "compute", "timings_s"} and result["fit"]["success"]
    out = tmp_path / "session"
    paths = ana.write(out)
    assert [p.name for p in paths][-1] == "result.json"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in by_cli.iterdir())
    mine, theirs = (json.loads((d / "result.json").read_text()) for d in (out, by_cli))
    assert list(mine) == list(theirs) and list(mine["timings_s"]) == list(theirs["timings_s"])
    assert list(mine["compute"]) == list(theirs["compute"]) and mine["outputs"].keys() == theirs["outputs"].keys()
    assert [q["name"] for q in mine["fit"]["parameters"]] == [q["name"] for q in theirs["fit"]["parameters"]]
    # a reduction-only analysis replaces the set: no fit files stay beside its result.json
    ana.fit_result = None
    ana.write(out)
    assert sorted(p.name for p in out.iterdir()) == ["datasets.nc", "result.json"]
    assert json.loads((out / "result.json").read_text())["fit"] is None
    # a write that fails keeps the previous set and leaves nothing temporary
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    ana.datasets = []
    with pytest.raises(Exception, match="no datasets"):
        ana.write(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OutputError, match="not a folder"):
        ana.write(tmp_path / "a-file")


# --------------------------------------------------------------------------- simulate
def test_simulate_refuses_an_existing_store(files, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(files / "store", store)
    before = {p.name: p.read_bytes() for p in store.glob("*index*")}
    assert main(["simulate", "--out", str(store), "--livetime", "10", "--pointings", "0,0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "already holds a data store" in err and "hdu-index" in err and "--overwrite" in err
    assert {p.name: p.read_bytes() for p in store.glob("*index*")} == before
    assert main(["simulate", "--out", str(store), "--livetime", "10", "--pointings", "0,0", "--overwrite",
                 "--quiet"]) == 0
    assert {p.name: p.read_bytes() for p in store.glob("*index*")} != before


# --------------------------------------------------------------------------- a full disk
def test_full_disk_netcdf_error_names_the_file_and_the_space(files, tmp_path, monkeypatch, capsys):
    """netCDF-C reports a full disk as "NetCDF: HDF error": gcxr names the file and the free space."""
    import collections

    import xarray as xr

    def hdf_error(self, store, **k):
        raise RuntimeError("NetCDF: HDF error")
    monkeypatch.setattr(xr.Dataset, "dump_to_store", hdf_error)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: collections.namedtuple("u", "total used free")(10**9, 10**9, 0))
    out = tmp_path / "out"
    (out).mkdir()
    (out / "result.json").write_text("{}")                          # an earlier set stays as it was
    assert run(files, "--no-fit", "--out", str(out)) == cli.EXIT_OUTPUT
    err = capsys.readouterr().err
    assert f"{out / 'datasets.nc'}: no space left on the disk while writing it (0.0 MB free" in err, err
    assert "NetCDF: HDF error" in err
    assert sorted(p.name for p in out.iterdir()) == ["result.json"]


def test_other_netcdf_errors_are_not_called_a_full_disk(files, tmp_path, monkeypatch, capsys):
    import xarray as xr

    def hdf_error(self, store, **k):
        raise RuntimeError("NetCDF: HDF error")
    monkeypatch.setattr(xr.Dataset, "dump_to_store", hdf_error)
    out = tmp_path / "out"
    assert run(files, "--no-fit", "--out", str(out)) == cli.EXIT_OUTPUT
    err = capsys.readouterr().err
    assert f"{out / 'datasets.nc'}: cannot write it: NetCDF: HDF error" in err and "no space" not in err
    assert not out.exists()                        # made by this run, left empty: removed again
