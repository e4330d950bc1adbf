"""The documentation builds (Sphinx + MyST): every page, every API module imports, no broken toctree."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

FATAL = re.compile(r"(ERROR|CRITICAL|failed to import|nonexisting document|undefined label|"
                   r"toctree contains|document isn't included|Unknown directive|Unknown interpreted)")


def test_docs_build(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "--keep-going",
                           "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(out)],
                          capture_output=True, text=True, timeout=600)
    log = proc.stderr
    fatal = [line for line in log.splitlines() if FATAL.search(line)]
    assert proc.returncode == 0, log[-3000:]
    assert not fatal, "\n".join(fatal)
    # warnings raised by the pages themselves (not by docstrings) are errors too
    page_warnings = [line for line in log.splitlines()
                     if "WARNING" in line and re.search(r"/docs/[^:]+\.md:\d+", line)]
    assert not page_warnings, "\n".join(page_warnings)
    for page in ("index", "quickstart", "user-guide", "clusters", "api", "conventions", "performance", "parity"):
        html = out / f"{page}.html"
        assert html.exists() and html.stat().st_size > 3000, page
    api = (out / "api.html").read_text()
    for name in ("gcxr.fit.fit", "gcxr.io.write_fit_result", "gcxr.estimators.excess_map", "gcxr.plot"):
        assert name in api, name
