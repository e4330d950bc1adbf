"""``gcxr download`` against a mocked ``urlopen`` (no network in tests)."""
from __future__ import annotations

import hashlib
import io
import json
import time
from urllib.error import URLError

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

import gcxr.download as dl
from gcxr.cli import main


REAL_MANIFEST = dict(dl.MANIFEST)        # the pinned checksums of the real files


@pytest.fixture(autouse=True)
def fake_files_not_pinned(monkeypatch):
    """The fake server's files are not the real ones: the tests start from an empty manifest."""
    monkeypatch.setattr(dl, "MANIFEST", {})


def _hdu_index(rows) -> bytes:
    t = Table(rows=rows, names=("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME"))
    hdu = fits.table_to_hdu(t)
    hdu.name = "HDU_INDEX"
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buf)
    return buf.getvalue()


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes, length: int | None = None):
        super().__init__(data)
        self.headers = {} if length is None else {"Content-Length": str(length)}


class FakeServer:
    """url -> bytes; records every request."""

    def __init__(self, files: dict[str, bytes], lie_about_length: set[str] = frozenset()):
        self.files = files
        self.lie = lie_about_length
        self.calls: list[str] = []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        rel = url[len(dl.BASE_URL):]
        if rel not in self.files:
            from urllib.error import HTTPError
            raise HTTPError(url, 404, "Not Found", {}, None)
        data = self.files[rel]
        return FakeResponse(data, len(data) + (10 if rel in self.lie else 0))


def _hess_files():
    idx = _hdu_index([(1, "events", "events", "data", "run1.fits.gz", "EVENTS"),
                      (1, "aeff", "aeff_2d", "data", "run1.fits.gz", "AEFF"),
                      (2, "events", "events", "data", "run2.fits.gz", "EVENTS")])
    pre = "hess-dl3-dr1/"
    return {pre + "hdu-index.fits.gz": idx, pre + "obs-index.fits.gz": b"obs", pre + "README.md": b"readme",
            pre + "README.txt": b"terms of use", pre + "data/run1.fits.gz": b"x" * 100000,
            pre + "data/run2.fits.gz": b"y" * 5000}


def test_download_fetches_everything_the_index_references(tmp_path, monkeypatch):
    server = FakeServer(_hess_files())
    monkeypatch.setattr(dl, "urlopen", server)
    root = dl.download("hess-dl3-dr1", tmp_path, quiet=True)
    assert root == tmp_path.resolve() / "hess-dl3-dr1"
    assert (root / "data" / "run1.fits.gz").read_bytes() == b"x" * 100000
    assert len(server.calls) == 6                                   # the shared file once
    man = json.loads((root / dl.MANIFEST_NAME).read_text())
    entry = man["files"]["data/run2.fits.gz"]
    assert entry["sha256"] == hashlib.sha256(b"y" * 5000).hexdigest() and entry["check"] == "size"
    assert not list(root.rglob("*.tmp"))
    # a second call finds every file in place and fetches nothing
    server.calls.clear()
    dl.download("hess-dl3-dr1", tmp_path, quiet=True)
    assert server.calls == []


def test_known_checksum_verified_and_mismatch_rejected(tmp_path, monkeypatch):
    files = _hess_files()
    good = files["hess-dl3-dr1/README.txt"]
    monkeypatch.setitem(dl.MANIFEST, ("hess-dl3-dr1", "README.txt"), (len(good), hashlib.sha256(good).hexdigest()))
    monkeypatch.setattr(dl, "urlopen", FakeServer(files))
    root = dl.download("hess-dl3-dr1", tmp_path / "a", quiet=True)
    assert json.loads((root / dl.MANIFEST_NAME).read_text())["files"]["README.txt"]["check"] == "sha256"

    files["hess-dl3-dr1/README.txt"] = b"tampered!!!!"
    monkeypatch.setattr(dl, "urlopen", FakeServer(files))
    with pytest.raises(dl.DownloadError, match="checksum mismatch for README.txt"):
        dl.download("hess-dl3-dr1", tmp_path / "b", quiet=True)
    assert not (tmp_path / "b" / "hess-dl3-dr1" / "README.txt").exists()
    root = dl.download("hess-dl3-dr1", tmp_path / "c", verify=False, quiet=True)
    assert json.loads((root / dl.MANIFEST_NAME).read_text())["files"]["README.txt"]["check"] == "mismatch-accepted"


def test_truncated_download_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "urlopen", FakeServer(_hess_files(), lie_about_length={"hess-dl3-dr1/data/run1.fits.gz"}))
    with pytest.raises(dl.DownloadError, match="truncated"):
        dl.download("hess-dl3-dr1", tmp_path, quiet=True)
    root = tmp_path / "hess-dl3-dr1"
    assert not (root / "data" / "run1.fits.gz").exists()
    assert not list(root.rglob("*.tmp"))
    assert "run1" not in (root / dl.MANIFEST_NAME).read_text()


def test_index_pointing_outside_the_data_set_is_refused(tmp_path, monkeypatch):
    files = _hess_files()
    files["hess-dl3-dr1/hdu-index.fits.gz"] = _hdu_index([(1, "events", "events", "../..", "etc.fits", "EVENTS")])
    monkeypatch.setattr(dl, "urlopen", FakeServer(files))
    with pytest.raises(dl.DownloadError, match="outside the data set"):
        dl.download("hess-dl3-dr1", tmp_path, quiet=True)


def test_cta_1dc_layout_resolves_relative_dirs(tmp_path, monkeypatch):
    """The CTA-1DC index lives in index/gps and points to ../../data; known checksums are enforced."""
    idx = _hdu_index([(110380, "events", "events", "../../data/baseline/gps", "gps_baseline_110380.fits", "EVENTS")])
    files = {"cta-1dc/index/gps/hdu-index.fits.gz": idx, "cta-1dc/index/gps/obs-index.fits.gz": b"o",
             "cta-1dc/README.md": b"r", "cta-1dc/data/baseline/gps/gps_baseline_110380.fits": b"e"}
    monkeypatch.setattr(dl, "MANIFEST", {})
    monkeypatch.setattr(dl, "urlopen", FakeServer(files))
    root = dl.download("cta-1dc", tmp_path, quiet=True)
    assert (root / "data" / "baseline" / "gps" / "gps_baseline_110380.fits").read_bytes() == b"e"


def test_offline_fails_fast_with_a_clear_message(tmp_path, monkeypatch, capsys):
    def offline(url, timeout=None):
        raise URLError(OSError(-3, "Temporary failure in name resolution"))
    monkeypatch.setattr(dl, "urlopen", offline)
    t0 = time.perf_counter()
    with pytest.raises(dl.OfflineError, match="offline.*GCXR_DATA"):
        dl.download("cta-1dc", tmp_path, quiet=True)
    assert time.perf_counter() - t0 < 5
    assert main(["download", "cta-1dc", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "offline" in err and "GCXR_DATA" in err and "raw.githubusercontent.com" in err


def test_unknown_dataset():
    with pytest.raises(ValueError, match="available: cta-1dc, hess-dl3-dr1"):
        dl.download("fermi-lat", "/nonexistent")
    assert np.isfinite(dl.TIMEOUT) and dl.TIMEOUT <= 30


@pytest.mark.parametrize("name", list(dl.DATASETS))
def test_every_file_download_fetches_is_pinned(name):
    """Size and sha256 are pinned for the index files, the READMEs and every file the real hdu-index
    references; where the shared data hold the files, the pins equal their sizes and checksums."""
    import os
    import posixpath
    from pathlib import Path
    spec = dl.DATASETS[name]
    root = Path(os.environ.get("GCXR_DATA", "")) / name
    first = posixpath.join(spec.index_dir, "hdu-index.fits.gz") if spec.index_dir else "hdu-index.fits.gz"
    if not (root / first).exists():
        from conftest import skip_or_fail
        skip_or_fail(f"no local copy of {name} in $GCXR_DATA")
    files = [first, posixpath.join(spec.index_dir, "obs-index.fits.gz") if spec.index_dir else "obs-index.fits.gz",
             *spec.extra, *dl._index_files(root / first, spec.index_dir)]
    assert set(files) == {rel for (n, rel) in REAL_MANIFEST if n == name}
    for rel in files:
        size, sha = REAL_MANIFEST[(name, rel)]
        p = root / rel
        if p.exists():
            assert p.stat().st_size == size and dl._sha256(p) == sha, rel
