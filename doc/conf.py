"""Sphinx configuration of the skunroll documentation.

Build with ``python -m sphinx -b html . _build/html`` from this folder (or
``sphinx-build doc doc/_build/html`` from the repository root). The build needs
no network: intersphinx is deliberately not used.
"""

import os
import sys
import warnings

sys.path.insert(0, os.path.abspath(".."))

import skunroll  # noqa: E402

project = "skunroll"
author = "skunroll developers"
copyright = "skunroll developers"
release = skunroll.__version__
version = release.split(".dev")[0]

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc ----------------------------------------
autosummary_generate = True
# scikit-learn generates set_*_request methods (metadata routing) for estimators
# whose methods take extra arguments; their docstrings point into sklearn's docs
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    "exclude-members": ",".join(
        f"set_{method}_request"
        for method in ("fit", "partial_fit", "predict", "score", "transform")
    ),
}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- sphinx-gallery ------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    # no sg_execution_times.rst files (the one at the doc root is not ignored)
    "write_computation_times": False,
}

# The examples run with matplotlib's non-interactive backend.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg",
)

# -- HTML ----------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:
    html_theme = "alabaster"
    html_theme_options = {}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_prev_next": False,
    }
html_title = f"skunroll {release}"
html_static_path = []
