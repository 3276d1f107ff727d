"""Sphinx configuration for the probspace documentation.

Build from this folder with::

    python -m sphinx -W --keep-going -b html . _build/html

Environment variables read here:

``PROBSPACE_DOCS_INTERSPHINX=1``
    Turn on intersphinx links to Python, NumPy, scikit-learn, ArviZ, hmmlearn
    and Pyro. It is off by default because fetching the remote inventories
    needs the network; offline, every failed fetch is a warning, which ``-W``
    turns into an error.
``PROBSPACE_EXAMPLES_FAST``
    Set to ``1`` here (unless already set) so that the gallery examples run with
    few draws and the build stays quick. Set it to ``0`` for full-size runs.
"""

import os
import sys
from pathlib import Path

# Build the documentation of the checkout this folder belongs to, even when
# another copy of probspace is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import probspace  # noqa: E402

os.environ.setdefault("PROBSPACE_EXAMPLES_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

# -- project -----------------------------------------------------------------
project = "probspace"
author = "the probspace developers"
copyright = "the probspace developers"
release = probspace.__version__
version = ".".join(release.split(".")[:2])

# -- general -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "obj"

autosummary_generate = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # numpydoc sections already carry the types

numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True

# -- intersphinx (opt-in, see the module docstring) ------------------------------
_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "arviz": ("https://python.arviz.org/en/stable/", None),
    "hmmlearn": ("https://hmmlearn.readthedocs.io/en/stable/", None),
    "pyro": ("https://docs.pyro.ai/en/stable/", None),
}
intersphinx_mapping = _INTERSPHINX if os.environ.get("PROBSPACE_DOCS_INTERSPHINX") == "1" else {}

# -- sphinx-gallery ----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    # Only plot_*.py scripts belong in the gallery; other scripts under
    # examples/ (such as the tour.py demo) are left out rather than rendered
    # as untitled pages.
    "ignore_pattern": r"__init__\.py|(^|/)(?!plot_)[^/]+\.py$",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "image_scrapers": ("matplotlib",),
    # "Examples using X" lists on the API pages (see _templates/autosummary).
    "doc_module": ("probspace",),
    "backreferences_dir": "api/generated/backreferences",
    "reference_url": {"probspace": None},
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"probspace {release}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
}
html_static_path = []
