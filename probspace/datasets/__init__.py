"""Small real datasets that ship with probspace (offline), each with its provenance."""

from ._docstring_corpus import load_docstring_corpus
from ._loaders import load_discoveries, load_nile, load_old_faithful

__all__ = ["load_discoveries", "load_docstring_corpus", "load_nile", "load_old_faithful"]
