"""Fetch the public DL3 test data sets (``gcxr download cta-1dc|hess-dl3-dr1``).

The files come from the ``gammapy-data`` repository on GitHub (raw URLs), the
public mirror of the CTA first data challenge subset and of the H.E.S.S. DL3
DR1 release (originally https://zenodo.org/record/1421099).  The file list is
not hard-coded: the data set's ``hdu-index`` is fetched first and every file it
references is fetched next, so the local copy is a complete data store.

Integrity:

* every file of both data sets is pinned in :data:`MANIFEST` (size and sha256) and
  must match, else :class:`DownloadError` (``--no-verify`` records instead);
* a file the manifest does not list (the upstream index changed) must have the size
  the server announced (``Content-Length``); its sha256 is computed and recorded
  with ``check: size``;
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

#: (data set, path) -> (size in bytes, sha256) of every file ``gcxr download`` fetches: the index files,
#: the READMEs and every file the hdu-index references (computed on 2026-11-29 from the copies in the
#: shared data folder, which hold all of them; the CTA-1DC entries equal the earlier pinned ones).
MANIFEST: dict[tuple[str, str], tuple[int, str]] = {
    ("cta-1dc", "index/gps/hdu-index.fits.gz"):
        (951, "37f4b9b3bd19f1793822d85e6c545c98610644ce87ba5141a3c36761971e9c35"),
    ("cta-1dc", "index/gps/obs-index.fits.gz"):
        (1315, "90d6242519e5ae1c218a7cd7e049781e74faf41a2465474ae276bfcf7f828417"),
    ("cta-1dc", "README.md"):
        (497, "cdadb0159f75b9519f06e502867055347aa57623d8f1f36ac2202a41914581a1"),
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
    ("hess-dl3-dr1", "hdu-index.fits.gz"):
        (3879, "9218299bd5c73046723a7cf2bc2caf6f32a9c23405dbd9476f3dd09d066fe467"),
    ("hess-dl3-dr1", "obs-index.fits.gz"):
        (6980, "b808c0c1e659dcf5c807bbe0d27ffa53f18fb2c5d5b3d6f829aca66589a88e37"),
    ("hess-dl3-dr1", "README.md"):
        (730, "ca8c85f8a385b5fadfb102c868e40e9f8f02000d4980a14b8344fe56b55fcf99"),
    ("hess-dl3-dr1", "README.txt"):
        (1184, "0525229f8d7d0541ea62b64b96bd985819c258aaefeaca00d4dedba472b6780c"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020151.fits.gz"):
        (620141, "f6a1384b15ccd15baf949a66c12c76231e257a2c9215c5deea199b290c5bfc13"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020275.fits.gz"):
        (617436, "7200223a523178dad1714b7b6016a07ba7df774934864d878f241e25ba90afd8"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020339.fits.gz"):
        (721226, "f4e801edb77c6df8ecb8ee4214bd68c9be7e55e02456617488c576c187f97b15"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020561.fits.gz"):
        (634331, "a7279366a87fb2730f02ea5d0360ea0a511dd7819860f65addccab3cb4ed4559"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020734.fits.gz"):
        (632200, "f241f715b22bb2ed419f28029a71f5bc59f6d2bd65d34f667aba0f6d037f0a8f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_020915.fits.gz"):
        (619874, "182f1714a5a1dcd433b52c96f6948d3ef3dd63b97e266fdb58031adb2bc9206f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_021613.fits.gz"):
        (624838, "2493667c0621dc82c2121a286614bd16a8031d101aac424d38ae2db93588d9e1"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_021753.fits.gz"):
        (601014, "ae3146fb82b42efd3a8bd24ee2e583bf6e51e21af348d61352d8eb5b0ff8c875"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_021807.fits.gz"):
        (595843, "8708f6b59b6c6051923759ac5ad91da8ef420dcd5127e6b27b3e2f1d98284d15"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_021824.fits.gz"):
        (629810, "4424b70f015762f795b855db11716e2dccf00a38c66ef0f5028c0db04682a313"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_021851.fits.gz"):
        (539205, "c1cd96a05a8660fcd39daf7c4273034c2d4c1c6e387551264670687fb6e2abf7"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_022022.fits.gz"):
        (479333, "a23d9a75dff8683076ec79c96c3b1dec53d4ce3efdcd03d2ac4ad326375399b3"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_022593.fits.gz"):
        (566251, "33b1f1e6cbb250bc0b3692b98131b9aa58ee8c19fdf8819e76b132995e966c5b"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_022997.fits.gz"):
        (589811, "1d429af906b32d914ee6c6d577691891668a08e94a07f7a8815f89e8e72c79ba"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023040.fits.gz"):
        (597077, "fc60228897409ba026beeb7ecb141a9c256eab637d476af05e77405dab7146f9"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023077.fits.gz"):
        (536721, "156e5fc5d31dac1074ec946a658b1b387fb9444af3b19d720c6bb10fb208d8c4"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023143.fits.gz"):
        (599612, "b7b13059d3c01871f6f101ac47cee22cfdf66d4b8db685e81cefa48c1b6d6206"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023246.fits.gz"):
        (516177, "f9f8cc22d907a8c6afee30ddb7fbf3ade36b0ae4e31ad212acb2c308dc12d119"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023523.fits.gz"):
        (522418, "a661f489cd2241ebdafbda8f40c59f1ae76fe2b9331ccf6b25dede3751dbc08c"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023526.fits.gz"):
        (524967, "fee41e52877cf4faf907ff1bb80c8db1f70d85e12e97fb65b8d6968b18b164cd"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023559.fits.gz"):
        (526028, "27dc9e51e3592adbc15817137b41e806a0a32ab00cc4826c4df01d22ebdd5c28"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023573.fits.gz"):
        (609511, "3481802d378ac1255ec6adf8dc14ebb8f2e670ebd89d5c1aed33d255040f6125"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023592.fits.gz"):
        (517549, "79df8ee6bece9b2ee01760091e2cbe70b7d20026094308aace0b10f471dfa230"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023635.fits.gz"):
        (575723, "71818eedb0f6049800e6ebe08d28c4a72fdbf2d87f31e5c09a819377ff46699a"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023651.fits.gz"):
        (566669, "4652bb6a0daa97770632bf112ba4321717c90002125307f0dc19fd66e7e71607"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_023736.fits.gz"):
        (510540, "07c5dc242184324142479ee563f9f4576168fbbacb1d7a14fd166cdfb7a7105e"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_025345.fits.gz"):
        (574222, "1d7a92ab46006ce5d228401bbb49a0e30c30d31f61dab7b84d1553d05d3b8c83"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_025443.fits.gz"):
        (571433, "3458eb6df5decac614efe6490f1b57d3dd0dc3af7316ed2af07f5b3a8020e914"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_025511.fits.gz"):
        (520929, "3cdf0f3b42c736921c16048f5cd75a4c630066d2c813965382707299a87bf10f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_026077.fits.gz"):
        (510164, "e152dd0a033aa487d017dc01cb6aebf832285f9e8a0705fafaba27bc30341bb6"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_026791.fits.gz"):
        (456067, "35994eb62078725b7abbee6948b7e13b093b23af34f0e129d83a50fbe11154d7"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_026827.fits.gz"):
        (501570, "3e57814d0285a092195a74c15a2c75281540d5585ef139774e023668d8dbb06a"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_026850.fits.gz"):
        (575620, "c2c33fb5f71ed6b72c71e256c8ceea62dab978dc369ffa1e884ed044ecc46ff2"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_026964.fits.gz"):
        (568294, "9c57394ccaf010f1bc06e84979d9f7678dafd9957b4c98d70f4ff2e9205419e4"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_027044.fits.gz"):
        (579864, "e69891fbec0bb03824c6db6d0f6fa88ddbfd957627993a509c9f86dd291f6a92"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_027121.fits.gz"):
        (536228, "fbf40b328f3fff75d30987c2239e8075ab5d8228f59bb617de2b363390116ca7"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_027939.fits.gz"):
        (584350, "bf37efac9e84b88eca2a252af713e389eb69c9671827cad0648a363689f90b53"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_027987.fits.gz"):
        (568566, "facbe357bfec0afe7ca8840688a6533c61cd57ff255a2acb8954007fd85740d5"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_028341.fits.gz"):
        (549414, "09b155b75d2f77ae0eec0dacb6fc5814a95e7043ed9698db554c527e6492abcd"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_028967.fits.gz"):
        (541208, "f4df15ceff4a00054da8049c5d67210655e6e0f664f37a3aecb9f6f6acd2d5a3"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_028981.fits.gz"):
        (530802, "a1bed7e5d0f90e7fe65b31017cbd829307ef7fb993b6e8bfae5ca3280b0557ad"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029024.fits.gz"):
        (554693, "db10ed857df4a76edc34d30e41d3bbfb2002ec8fd8ffc809674a7f0553664ef4"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029072.fits.gz"):
        (516059, "7969e18eb0d2f36eaa97e97175b028b1f81a88ab9d78e13efa4484cafcdb50e9"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029118.fits.gz"):
        (504442, "11cb0ef3c1fd71ab5c70326646a29ffd4d9f696484cb58e44398cebc3a6b675e"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029177.fits.gz"):
        (539364, "5b7d38cffe1b8519ff0455a2bb437571674201abb7a8c363bd628a282d892df2"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029433.fits.gz"):
        (478919, "dc8024b1ec1d76fe2c9a228498882161e0614b70c1413d25e5d6bb2301d3f620"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029487.fits.gz"):
        (550331, "8acc72853a8d372973f721335bbcad73ea81dfdca03259ec71b500dba5a3bcbe"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029526.fits.gz"):
        (479577, "e85a2863b31042e45f00e8afdf4692b3478e7d903c68678a27bb470fd7ac3347"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029556.fits.gz"):
        (562762, "5d4defd33a7388c67c03f2447b83af7dd6d19b3a8c81cf6e894b4376985de329"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_029683.fits.gz"):
        (500322, "24678ebf3d1f8c698c85bc76bd2f0d1e8949e4a94737f416972cd0e71bdf171b"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033787.fits.gz"):
        (504999, "7f869f5940e2739c56969f5f8b1e72d806d1c50ba3a13739c01e0d8ad8d01192"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033788.fits.gz"):
        (539227, "7f192e37b5871caa638eb71eea78e81da07408af0b4dd8fcb5d1df42045573ea"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033789.fits.gz"):
        (585867, "5983b90b74b024d042a6dd0aba4b8c503ae322f6ca003eddffb9ccb46a8654cf"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033790.fits.gz"):
        (601307, "3e8b035a9ee6f925d1108a2a40cdae0a4b9fd0d84725c36ab492bea02c207b60"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033791.fits.gz"):
        (604425, "b54161430f710c878d93bf80c11a62d8c0c7fc504fc13f67f7dfc45194d28820"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033792.fits.gz"):
        (601842, "87259b9d7c5af0cdee6d65e41bb218a0beba65feae8a0ed6fef8ec7406fe078f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033793.fits.gz"):
        (599133, "be2d9499958a7a5ab749eccaa3faf3ca1411a88e3ced0506ffea38f88ed86d51"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033794.fits.gz"):
        (604278, "915a530a4955ce058ebd5fcb6245221e9448cd72a5854ba59cf02517680ddc25"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033795.fits.gz"):
        (595392, "9552a61c1e54a7645c025cafa864c92ad4549cd7655b6facbc1bc2074a62bb1f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033796.fits.gz"):
        (597036, "35451b2d87aa71cdbdd02ecc793f4834dea4935d0fd4bf7f948f6a2a07a38e8f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033797.fits.gz"):
        (588862, "54997267853f0b44c5c51b3d939d28a98296a6a1b75c84db3f14906708b32fa2"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033798.fits.gz"):
        (572633, "099b087894dcc29b6e940a23605c8c49843fa9f7e8a0f36669ad97b15d9a735a"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033799.fits.gz"):
        (553752, "26ca1b5c6133527ad509e21418f907b66a81ef553e69ae54a6d0bade673df8cd"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033800.fits.gz"):
        (525372, "e2b39879428da33b6a4b11b8dc094867c9ea8c1f3ecb29a8b6e352832ba98c2c"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_033801.fits.gz"):
        (507088, "ba49a7a337bb956d21c3acaf4439e28a780ae5cf8d99db1a097f36cc4e6583a5"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047802.fits.gz"):
        (524477, "d4dd63f7976abea1ec5196c0e19921257502d0c9676024e96fc158069702ba64"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047803.fits.gz"):
        (533120, "c96d5d953659edf946416157a99d432800b2fb95ff0b8d68c20b3403b3a30420"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047804.fits.gz"):
        (539539, "2f1f52afca9877c8de46c014aaf8cf8d43d0209d3705afb02792604328ac29c4"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047827.fits.gz"):
        (519018, "a336a9df265d6787fadb1bb6a5ad28b7f7b569111b861ec00ee4c48be831624f"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047828.fits.gz"):
        (532155, "59a2037124ab213ec73eff231c70e81f23afec8cfa20c6e8e5471c7f9c0c4f65"),
    ("hess-dl3-dr1", "data/hess_dl3_dr1_obs_id_047829.fits.gz"):
        (540430, "2355f9130be4ba450cdbf3319017cf8d351c3f77603cede90f8d24d8a987d2ce"),
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
    from astropy.io import fits  # deferred: heavy import (astropy)
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
    """Fetch data set ``name`` into ``out_dir/name``; returns that folder.

    Parameters
    ----------
    name : str
        The data set, one of ``DATASETS`` (e.g. ``'cta-1dc'``, ``'hess-dl3-dr1'``).
    out_dir : str or Path, optional
        Parent folder (default: ``$GCXR_DATA``, else the default data folder).
    verify : bool
        Check every file against its pinned size/checksum.
    timeout : float
        Network timeout per request (s).
    quiet : bool, optional
        Hide the progress bar (default: the global quiet flag).

    Returns
    -------
    pathlib.Path
        The folder ``out_dir/name``.
    """
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
