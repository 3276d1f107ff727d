import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from probspace.datasets import load_discoveries, load_docstring_corpus, load_nile, load_old_faithful
from probspace.datasets._docstring_corpus import _build


def test_old_faithful():
    data = load_old_faithful()
    assert data.data.shape == (272, 2)
    assert data.feature_names == ["eruptions", "waiting"]
    # R's summary(faithful): eruptions 1.6 .. 5.1, mean 3.488; waiting 43 .. 96, mean 70.9
    np.testing.assert_allclose(data.data.min(axis=0), [1.6, 43])
    np.testing.assert_allclose(data.data.max(axis=0), [5.1, 96])
    np.testing.assert_allclose(data.data.mean(axis=0), [3.487783, 70.897059], atol=1e-6)
    assert "Härdle" in data.DESCR


def test_nile():
    data = load_nile()
    assert data.data.shape == (100, 1)
    assert data.year[0] == 1871 and data.year[-1] == 1970
    assert data.data[0, 0] == 1120 and data.data[-1, 0] == 740


def test_discoveries():
    data = load_discoveries()
    assert data.data.shape == (100, 1)
    assert np.issubdtype(data.data.dtype, np.integer)
    assert data.feature_names == ["count"]
    np.testing.assert_array_equal(data.year, np.arange(1860, 1960))
    # R: discoveries[1:5] is 5 3 0 2 0; sum 310, max 12 (in 1885), var 5.080808
    np.testing.assert_array_equal(data.data[:5, 0], [5, 3, 0, 2, 0])
    assert data.data.sum() == 310 and data.data.max() == 12 and data.year[data.data.argmax()] == 1885
    np.testing.assert_allclose(data.data.var(ddof=1), 5.080808, atol=1e-6)
    assert "World Almanac" in data.DESCR


def test_docstring_corpus():
    corpus = load_docstring_corpus()
    assert len(corpus.data) > 1000
    assert len(corpus.data) == len(corpus.names) == len(corpus.package)
    assert corpus.names == sorted(corpus.names) and len(set(corpus.names)) == len(corpus.names)
    assert len(set(corpus.data)) == len(corpus.data)  # identical docstrings are kept once
    assert set(corpus.package) == {"numpy", "scipy", "sklearn"}
    assert all(name.split(".")[0] == pkg for name, pkg in zip(corpus.names, corpus.package, strict=True))
    assert all(len(doc.split()) >= 20 for doc in corpus.data)
    assert not any(part.startswith("_") for name in corpus.names for part in name.split("."))
    assert not any(".tests." in name or ".experimental." in name for name in corpus.names)
    assert "sklearn.decomposition.LatentDirichletAllocation" in corpus.names
    assert "numpy.mean" in corpus.names  # objects are named by their shortest public path
    assert corpus.versions["sklearn"] in corpus.DESCR and "BSD" in corpus.DESCR
    # a fresh build (bypassing the in-memory cache) gives the same corpus
    uncached = _build.__wrapped__(("numpy", "scipy", "sklearn"), 20)
    assert list(uncached[0]) == corpus.names and list(uncached[1]) == corpus.data
    # the cache hands out copies
    corpus.data.clear()
    assert load_docstring_corpus().data


def test_docstring_corpus_arguments():
    small = load_docstring_corpus("sklearn", min_words=100)
    assert set(small.package) == {"sklearn"} and list(small.versions) == ["sklearn"]
    assert all(len(doc.split()) >= 100 for doc in small.data)
    assert set(small.names) <= set(load_docstring_corpus(["sklearn"]).names)
    with pytest.raises(ValueError, match="could not be imported"):
        load_docstring_corpus(("probspace_no_such_package",))
    with pytest.raises(ValueError, match="min_words"):
        load_docstring_corpus(min_words=-1)


def _corpus_digest(names, data):
    return hashlib.sha256(repr((list(names), list(data))).encode()).hexdigest()


def test_docstring_corpus_same_in_another_process():
    # SciPy writes random draws and hash-ordered sets into some docstrings at import time, and
    # scikit-learn's experimental switches add public names: the loader normalises the first and
    # leaves the switched objects out, so a process with another hash seed and the switches on
    # builds the same corpus
    corpus = load_docstring_corpus()
    code = ("import hashlib; from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer; "
            "from probspace.datasets import load_docstring_corpus as f; c = f(); "
            "print(hashlib.sha256(repr((c.names, c.data)).encode()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == _corpus_digest(corpus.names, corpus.data)
