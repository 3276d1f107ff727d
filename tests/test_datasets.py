import numpy as np

from probspace.datasets import load_nile, load_old_faithful


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
