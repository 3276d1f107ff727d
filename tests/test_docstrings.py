"""Docstrings: numpydoc validation of the public API, and no leftover fragments."""

import inspect
import re

import pytest

import probspace
import probspace.datasets
import probspace.diagnostics
import probspace.inference
import probspace.posteriors
import probspace.testing

numpydoc_validate = pytest.importorskip("numpydoc.validate")

PUBLIC = [probspace, probspace.posteriors, probspace.datasets, probspace.diagnostics, probspace.inference,
          probspace.testing]
# Checks we do not enforce: see-also on everything, examples on every method, summary starting with infinitive verb.
IGNORED = {"SA01", "EX01", "ES01", "GL08", "RT02", "PR02", "SS05", "GL01", "GL02", "SS06", "YD01", "RT03"}


def _public_objects():
    seen = set()
    for module in PUBLIC:
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)  # (VAE/CVAE load torch here: this test needs it installed)
            if name.startswith("__") or id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            yield f"{obj.__module__}.{obj.__qualname__}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                        yield f"{obj.__module__}.{obj.__qualname__}.{attr}", member


OBJECTS = dict(_public_objects())


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_numpydoc(name):
    obj = OBJECTS[name]
    if isinstance(obj, property):
        assert obj.__doc__, f"{name} has no docstring"
        return
    result = numpydoc_validate.validate(name)
    errors = [(code, msg) for code, msg in result["errors"] if code not in IGNORED]
    assert not errors, errors


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_no_leftover_placeholders(name):
    doc = inspect.getdoc(OBJECTS[name]) or ""
    from probspace._docstrings import FRAGMENTS

    leftovers = [f for f in FRAGMENTS if "{" + f + "}" in doc]
    assert not leftovers
    assert not re.search(r"\{[a-z_]+\}\n", doc)
