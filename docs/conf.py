"""Sphinx configuration: the pages are Markdown (MyST); the API reference comes from docstrings."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "gcxr"
author = "the gcxr developers"
copyright = "2026, the gcxr developers"
try:
    from gcxr import __version__ as release
except Exception:          # docs can build from a source tree without the package installed
    release = "0.1.0"
version = release

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode",
              "sphinx.ext.mathjax"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
master_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "ref.python"]   # ambiguous short names in type hints

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = False
napoleon_numpy_docstring = True

html_theme = "alabaster"
html_title = f"gcxr {release}"
html_static_path = []
