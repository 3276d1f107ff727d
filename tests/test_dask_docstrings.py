"""numpydoc validation of probspace.dask's public objects (the rules of tests/test_docstrings.py)."""

import inspect

import pytest

pytest.importorskip("dask")
numpydoc_validate = pytest.importorskip("numpydoc.validate")

import probspace.dask  # noqa: E402

IGNORED = {"SA01", "EX01", "ES01", "GL08", "RT02", "PR02", "SS05", "GL01", "GL02", "SS06", "YD01", "RT03"}


def _objects():
    for name in probspace.dask.__all__:
        obj = getattr(probspace.dask, name)
        yield f"{obj.__module__}.{obj.__qualname__}", obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                    yield f"{obj.__module__}.{obj.__qualname__}.{attr}", member


OBJECTS = dict(_objects())


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_numpydoc(name):
    obj = OBJECTS[name]
    if isinstance(obj, property):
        assert obj.__doc__, f"{name} has no docstring"
        return
    errors = [(c, m) for c, m in numpydoc_validate.validate(name)["errors"] if c not in IGNORED]
    assert not errors, errors
