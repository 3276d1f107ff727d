"""Shared validation, randomness helpers and import hygiene."""

import subprocess
import sys

import numpy as np
import pytest

from probspace._random import as_generator, child_generator, torch_fork_rng
from probspace._validation import Interval, InvalidParameterError, Options, check_lengths, check_n_samples


def test_interval_and_options():
    assert Interval("int", 1, None).accepts(3)
    assert not Interval("int", 1, None).accepts(0)
    assert not Interval("int", 1, None).accepts(2.0)
    assert not Interval("int", 1, None).accepts(True)
    assert Interval("real", 0, None, "neither").accepts(0.5)
    assert not Interval("real", 0, None, "neither").accepts(0.0)
    assert not Interval("real", 0, 1).accepts(float("nan"))
    assert str(Interval("int", 1, None)) == "an int in the range [1, inf)"
    assert Options("a", "b").accepts("a") and not Options("a").accepts(["a"])
    assert issubclass(InvalidParameterError, ValueError)


@pytest.mark.parametrize(
    "lengths, match",
    [([3, 0, 7], "positive"), ([3, 3], "add up to the number of rows of X \\(10\\)"), ([[10]], "1-D"),
     ([], "1-D"), ([4.5, 5.5], "integers")],
)
def test_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=match):
        check_lengths(lengths, 10, sequential=True, owner="M")


def test_good_lengths():
    np.testing.assert_array_equal(check_lengths([1, 9], 10, sequential=True, owner="M"), [1, 9])
    np.testing.assert_array_equal(check_lengths(None, 10, sequential=True, owner="M"), [10])
    np.testing.assert_array_equal(check_lengths(np.array([4.0, 6.0]), 10, sequential=True, owner="M"), [4, 6])


def test_check_n_samples():
    assert check_n_samples(np.int64(3)) == 3
    for bad in (0, -1, 2.0, True, None, "3"):
        with pytest.raises(ValueError, match="positive int"):
            check_n_samples(bad)


def test_generators():
    gen = np.random.default_rng(0)
    assert as_generator(gen) is gen
    assert as_generator(5).integers(1000) == as_generator(5).integers(1000)
    with pytest.raises(ValueError, match="random_state"):
        as_generator(-1)
    with pytest.raises(ValueError, match="random_state"):
        as_generator("x")
    a, b = child_generator(as_generator(1)), child_generator(as_generator(1))
    assert a.integers(10**9) == b.integers(10**9)


def test_torch_fork_rng_leaves_global_state_alone():
    torch = pytest.importorskip("torch")
    before = torch.random.get_rng_state().clone()
    with torch_fork_rng(np.random.default_rng(0)):
        first = torch.rand(3)
    with torch_fork_rng(np.random.default_rng(0)):
        second = torch.rand(3)
    assert torch.equal(first, second)
    assert torch.equal(before, torch.random.get_rng_state())


def test_import_is_lazy():
    code = "import sys, probspace; print(sorted(m for m in ('torch', 'pyro', 'arviz') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_global_numpy_state_untouched():
    from probspace import GaussianMixture

    state = np.random.get_state()[1].copy()
    X = np.random.default_rng(0).normal(size=(50, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    gm.posterior(X).sample(3)
    gm.sample(3)
    np.testing.assert_array_equal(state, np.random.get_state()[1])
