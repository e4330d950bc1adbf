"""The documentation builds and its code runs.

* The Sphinx + MyST build: every page, every API module imports, no broken toctree.
* Every fenced code block of README.md and docs/*.md runs: the ``python`` blocks of a page in
  order, in one namespace (a page is one session, as a reader would type it), in a scratch folder
  that holds the files the pages name (``analysis_config.yaml``: the reference workflow's config,
  ``models.yaml``: its stacked models, ``exercise_diffuse_models.yaml``, gammapy's
  ``stacked.fits.gz``); the lines of a ``bash``
  block that start with ``gcxr`` as subprocesses (``python -m gcxr ...``) that must exit 0.
  A block that needs a cluster, a download, an installation or a long runtime is preceded by an
  explicit marker with its reason, ``<!-- docs-test: skip (reason) -->``; a ``bash`` block with a
  command other than ``gcxr`` and no marker fails (so every block is either run or skipped on
  purpose).  Blocks without a language, and MyST directives (``{eval-rst}``, ``{toctree}``), are
  not code.  Pages whose blocks read the CTA-1DC runs skip without ``$GCXR_DATA``, unless ``CI``
  is set (then missing data fail).
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import DATA, REF

ROOT = Path(__file__).resolve().parents[1]

FATAL = re.compile(r"(ERROR|CRITICAL|failed to import|nonexisting document|undefined label|"
                   r"toctree contains|document isn't included|Unknown directive|Unknown interpreted)")


def test_docs_build(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
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


# --------------------------------------------------------------------------- code blocks
PAGES = [ROOT / "README.md"] + sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^`\s]*)\s*$")
SKIP = re.compile(r"^<!--\s*docs-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
CODE_LANGS = {"python", "bash", "sh", "shell"}


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    line: int            # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None     # the reason given by a ``docs-test: skip`` marker, if any

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def markdown_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page`` in order, with their skip markers."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        start, lang = i, m.group("lang")
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        prev = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        marker = SKIP.match(prev)
        body = "\n".join(x[len(m.group("indent")):] for x in lines[start + 1:j])
        out.append(Block(page, start + 1, lang, body, marker.group("reason") if marker else None))
        i = j + 1
    return out


def test_markdown_blocks_parser(tmp_path):
    """The collector finds languages, bodies and skip markers (a page written by hand)."""
    page = tmp_path / "page.md"
    page.write_text("text\n```python\nx = 1\n```\n\n<!-- docs-test: skip (needs a cluster) -->\n\n"
                    "```bash\ngcxr run a.yaml\n```\n```\nplain\n```\n```{eval-rst}\n.. x\n```\n")
    blocks = markdown_blocks(page)
    assert [(b.line, b.lang, b.code, b.skip) for b in blocks] == [
        (2, "python", "x = 1", None), (8, "bash", "gcxr run a.yaml", "needs a cluster"), (14, "{eval-rst}", ".. x", None)]


def shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def _needs_real_data() -> None:
    if not (DATA / "cta-1dc").exists() or not REF.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the shared data are missing ({DATA}, {REF})")
        pytest.skip("the documented examples read the CTA-1DC runs: set GCXR_DATA (and GCXR_SHARED)")


@pytest.fixture
def docs_workdir(tmp_path, monkeypatch):
    """A scratch folder holding the files the pages name, as the current directory."""
    _needs_real_data()
    shutil.copy(REF / "analysis_config.yaml", tmp_path / "analysis_config.yaml")
    shutil.copy(REF / "seed_models_stacked.yaml", tmp_path / "models.yaml")
    shutil.copy(REF / "exercise_diffuse_models.yaml", tmp_path / "exercise_diffuse_models.yaml")
    (tmp_path / "stacked.fits.gz").symlink_to(REF / "stacked.fits.gz")     # gammapy's stacked dataset
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GCXR_DATA", str(DATA))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    return tmp_path


def _blocks(langs: set[str]) -> list:
    params = []
    for page in PAGES:
        blocks = [b for b in markdown_blocks(page) if b.lang in langs]
        if blocks:
            params.append(pytest.param(page, blocks, id=str(page.relative_to(ROOT))))
    return params


@pytest.mark.parametrize("page, blocks", _blocks({"python"}))
def test_docs_python_blocks_run(page, blocks, docs_workdir):
    import matplotlib
    import matplotlib.pyplot as plt
    matplotlib.use("Agg")
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    try:
        for block in blocks:
            if block.skip:
                continue
            try:
                exec(compile(block.code, block.where, "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{block.where}: the python block fails: {type(exc).__name__}: {exc}") from exc
            ran += 1
    finally:
        plt.close("all")
    if not ran:
        pytest.skip(f"{page.name}: every python block is marked skip")


@pytest.mark.parametrize("page, blocks", _blocks({"bash", "sh", "shell"}))
def test_docs_shell_blocks_run(page, blocks, docs_workdir):
    ran = 0
    for block in blocks:
        commands = shell_commands(block.code)
        if block.skip:
            continue
        others = [c for c in commands if not c.startswith("gcxr ")]
        assert not others, (f"{block.where}: commands other than gcxr {others}: run them here or mark the block "
                            "with <!-- docs-test: skip (reason) -->")
        for command in commands:
            argv = shlex.split(command, comments=True)
            proc = subprocess.run([sys.executable, "-m", "gcxr", *argv[1:]], capture_output=True, text=True,
                                  timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
            assert proc.returncode == 0, f"{block.where}: `{command}` exited {proc.returncode}:\n{proc.stderr[-2000:]}"
            ran += 1
    if not ran:
        pytest.skip(f"{page.name}: every shell block is marked skip")


def test_every_code_block_is_run_or_skipped_with_a_reason():
    """Every python/bash block of README.md and docs/ is collected above; a skip gives its reason."""
    blocks = [b for page in PAGES for b in markdown_blocks(page)]
    code = [b for b in blocks if b.lang in CODE_LANGS]
    assert len(code) >= 20, [b.where for b in code]
    unknown = sorted({b.lang for b in blocks} - CODE_LANGS - {"{eval-rst}", "{toctree}", "yaml", "text", "console"})
    assert not unknown, f"code blocks in a language the docs test does not run: {unknown}"
    for b in code:
        assert b.skip is None or len(b.skip) > 10, f"{b.where}: say why the block is skipped"
