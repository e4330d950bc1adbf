"""Fetch the public DL3 test data sets (``gcxr download cta-1dc|hess-dl3-dr1``).

The files come from the ``gammapy-data`` repository on GitHub (raw URLs), the
public mirror of the CTA first data challenge subset and of the H.E.S.S. DL3
DR1 release (originally https://zenodo.org/record/1421099).  The file list is
not hard-coded: the data set's ``hdu-index`` is fetched first and every file it
references is fetched next, so the local copy is a complete data store.

Integrity:

* files listed in :data:`MANIFEST` (the CTA-1DC subset) must match its size and
  sha256, else :class:`DownloadError` (``--no-verify`` records instead);
* every other file must have the size the server announced
  (``Content-Length``); its sha256 is computed and recorded;
* each file is streamed to a temporary name and moved into place when complete;
  a ``gcxr-download-manifest.json`` beside the data lists path, URL, size,
  sha256 and how each file was checked.  Files already present with the
  recorded size and checksum are not fetched again.

Offline, the first request fails within ``timeout`` seconds with a message
saying so and pointing at ``GCXR_DATA``.
"""
from __future__ import annotations

import hashlib
import json
import os
import posixpath
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import urlopen

from .io import atomic_path, write_json
from .progress import progress_bar

__all__ = ["DATASETS", "MANIFEST", "DownloadError", "OfflineError", "download", "default_data_dir"]

BASE_URL = "https://raw.githubusercontent.com/gammapy/gammapy-data/master/"
MANIFEST_NAME = "gcxr-download-manifest.json"
TIMEOUT = 10.0                    # seconds, per request


class DownloadError(RuntimeError):
    """A file could not be fetched or failed its size/checksum check (the message names it)."""


class OfflineError(DownloadError):
    """No network: the message says where to point ``GCXR_DATA`` instead."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    index_dir: str                       # folder of hdu-index / obs-index, relative to the data set
    extra: tuple[str, ...] = ()          # other files (READMEs)

    def url(self, rel: str) -> str:
        return f"{BASE_URL}{self.name}/{rel}"


DATASETS: dict[str, DatasetSpec] = {
    "cta-1dc": DatasetSpec("cta-1dc", "index/gps", ("README.md",)),
    "hess-dl3-dr1": DatasetSpec("hess-dl3-dr1", "", ("README.md", "README.txt")),
}

#: (data set, path) -> (size in bytes, sha256) for the files whose content is known.
MANIFEST: dict[tuple[str, str], tuple[int, str]] = {
    ("cta-1dc", "README.md"): (497, "cdadb0159f75b9519f06e502867055347aa57623d8f1f36ac2202a41914581a1"),
    ("cta-1dc", "index/gps/hdu-index.fits.gz"):
        (951, "37f4b9b3bd19f1793822d85e6c545c98610644ce87ba5141a3c36761971e9c35"),
    ("cta-1dc", "index/gps/obs-index.fits.gz"):
        (1315, "90d6242519e5ae1c218a7cd7e049781e74faf41a2465474ae276bfcf7f828417"),
    ("cta-1dc", "caldb/data/cta/1dc/bcf/South_z20_50h/irf_file.fits"):
        (3755520, "f293a4282bbecbf8bb3e4cded25cc79903c1e24dab4bd4672ca0d13aadf3a464"),
    ("cta-1dc", "data/baseline/gps/gps_baseline_110380.fits"):
        (3859200, "774cee07caaad7af0d9402a9bd7b7fd2f3f068127a0afbea657ae7e2901ff4fe"),
    ("cta-1dc", "data/baseline/gps/gps_baseline_111140.fits"):
        (3862080, "640902fa04162911e8e3812dc31d85be0abd4c3ac7a475aa7b39ea4c2d6fe61d"),
    ("cta-1dc", "data/baseline/gps/gps_baseline_111159.fits"):
        (3841920, "4b3f506552a20356e0b80a096492ead22b61caeb134a1f72d14684011f4e1757"),
    ("cta-1dc", "data/baseline/gps/gps_baseline_111630.fits"):
        (4078080, "0f0d86838681c08e6890f4842e84c1a9eb3deb54e837127534276424fec0b97f"),
}


def default_data_dir() -> Path:
    """``$GCXR_DATA``, else ``$GAMMAPY_DATA``, else ``./gcxr-data``."""
    for var in ("GCXR_DATA", "GAMMAPY_DATA"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    return Path("gcxr-data")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _offline(url: str, err) -> OfflineError:
    host = url.split("/")[2]
    return OfflineError(
        f"cannot reach {host} ({getattr(err, 'reason', err)}): this machine seems to be offline. "
        "Copy the data set by other means (e.g. from a machine with network access) and point GCXR_DATA "
        "(or GAMMAPY_DATA) at the folder that contains it, e.g. `export GCXR_DATA=/path/to/data` with "
        "/path/to/data/cta-1dc/index/gps/hdu-index.fits.gz; or run `gcxr demo`, which simulates a data set.")


def _fetch(url: str, dest: Path, timeout: float, expect: tuple[int, str] | None, verify: bool,
           quiet: bool | None) -> dict:
    """Stream ``url`` to ``dest`` (atomically), checking sizes and checksums; a manifest entry."""
    try:
        resp = urlopen(url, timeout=timeout)
    except HTTPError as err:
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (URLError, socket.timeout, TimeoutError, ConnectionError) as err:
        raise _offline(url, err) from None
    h = hashlib.sha256()
    size = 0
    with resp, atomic_path(dest) as tmp:
        length = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
        total = int(length) if length is not None else None
        with open(tmp, "wb") as f, progress_bar(total=total, desc=dest.name, unit="B", unit_scale=True,
                                                unit_divisor=1024, quiet=quiet) as bar:
            while True:
                try:
                    block = resp.read(1 << 16)
                except (socket.timeout, TimeoutError, ConnectionError) as err:
                    raise DownloadError(f"{url}: connection lost after {size} bytes ({err})") from None
                if not block:
                    break
                f.write(block)
                h.update(block)
                size += len(block)
                bar.update(len(block))
        digest = h.hexdigest()
        if total is not None and size != total:
            raise DownloadError(f"{url}: got {size} bytes, the server announced {total} (truncated download)")
        check = "size" if total is not None else "none"
        if expect is not None:
            exp_size, exp_sha = expect
            if (size, digest) != (exp_size, exp_sha):
                if verify:
                    raise DownloadError(f"{url}: checksum mismatch for {dest.name}: expected {exp_size} bytes "
                                        f"sha256 {exp_sha}, got {size} bytes sha256 {digest} "
                                        "(file not kept; `gcxr download --no-verify` accepts and records it)")
                check = "mismatch-accepted"
            else:
                check = "sha256"
    return {"url": url, "size": size, "sha256": digest, "check": check}


def _index_files(index: Path, index_dir: str) -> list[str]:
    """Paths (relative to the data set) of every file an hdu-index references."""
    from astropy.io import fits
    try:
        with fits.open(index) as h:
            rows = h["HDU_INDEX"].data if "HDU_INDEX" in h else h[1].data
            pairs = {(str(d).strip(), str(n).strip()) for d, n in zip(rows["FILE_DIR"], rows["FILE_NAME"])}
    except (OSError, KeyError, TypeError, ValueError) as err:
        raise DownloadError(f"{index}: not a readable hdu-index ({err})") from None
    out = []
    for d, n in sorted(pairs):
        rel = posixpath.normpath(posixpath.join(index_dir, d, n))
        if rel.startswith("../") or rel.startswith("/") or rel == "..":
            raise DownloadError(f"{index}: FILE_DIR/FILE_NAME {d}/{n} points outside the data set")
        out.append(rel)
    return out


def download(name: str, out_dir: str | Path | None = None, verify: bool = True, timeout: float = TIMEOUT,
             quiet: bool | None = None) -> Path:
    """Fetch data set ``name`` into ``out_dir/name``; returns that folder."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    root = Path(out_dir).expanduser() if out_dir is not None else default_data_dir()
    root = root.resolve() / name
    manifest_path = root / MANIFEST_NAME
    record = json.loads(manifest_path.read_text())["files"] if manifest_path.exists() else {}

    def get(rel: str) -> None:
        dest = root / rel
        expect = MANIFEST.get((name, rel))
        have = record.get(rel)
        if dest.exists() and have and dest.stat().st_size == have["size"] and (
                expect is None or (have["size"], have["sha256"]) == expect) and _sha256(dest) == have["sha256"]:
            return
        record[rel] = _fetch(spec.url(rel), dest, timeout, expect, verify, quiet)

    index_dir = spec.index_dir
    first = posixpath.join(index_dir, "hdu-index.fits.gz") if index_dir else "hdu-index.fits.gz"
    get(first)                                           # the first request: fails fast when offline
    files = [posixpath.join(index_dir, "obs-index.fits.gz") if index_dir else "obs-index.fits.gz",
             *spec.extra, *_index_files(root / first, index_dir)]
    try:
        for rel in progress_bar(files, desc=f"download {name}", unit="file", quiet=quiet):
            get(rel)
    finally:
        write_json({"dataset": name, "base_url": spec.url(""), "files": record}, manifest_path)
    return root
