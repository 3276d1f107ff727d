import numpy as np

from probspace.datasets import load_discoveries, load_nile, load_old_faithful


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
