"""Saving and loading fitted models: one ``.npz`` file of arrays plus a versioned JSON header.

No pickle anywhere: the header is JSON, the arrays are loaded with
``allow_pickle=False``, and classes are looked up in an explicit allow-list,
never imported by a name read from the file. So a file cannot run code.
"""

from __future__ import annotations

import json
import numbers
import zipfile
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "can_save", "load", "save"]

#: Version of the file layout. A reader accepts files whose version it knows.
FORMAT_VERSION = 1
_MAGIC = "probspace-model"
_SKIP_TYPES = ("ConvergenceMonitor", "_RecordingMonitor", "RandomState")


def _families() -> dict[str, type]:
    from .models import GMMHMM, LDA, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM

    return {c.__name__: c for c in (GaussianMixture, GaussianHMM, CategoricalHMM, PoissonHMM, GMMHMM, LDA)}


def can_save(model: Any) -> bool:
    """Whether :func:`save` (or ``VAE.save``) knows ``model``'s family, so that :func:`load` reads it back.

    Exactly the test that saving applies: the class itself, not a subclass
    of it, must be in an allow-list.

    Parameters
    ----------
    model : LatentModel
        A model, fitted or not.

    Returns
    -------
    bool
        ``True`` when ``model.save`` writes a file that :func:`load` reads.
    """
    from .models._vae import _families as vae_families

    cls = type(model)
    return any(families.get(cls.__name__) is cls for families in (_families(), vae_families()))


def _backends() -> dict[str, type]:
    from hmmlearn import hmm, vhmm
    from sklearn import decomposition, mixture

    from .models import _hmm

    # The HMM families' private backend subclasses, by name (looked up in that one module, never imported
    # from the file); a name the module lacks is skipped, and saving a backend not listed raises TypeError.
    private = ("_KernelEStepGaussianHMM", "_GuardedCategoricalHMM", "_GuardedPoissonHMM", "_GuardedGMMHMM")
    classes = (mixture.GaussianMixture, mixture.BayesianGaussianMixture, decomposition.LatentDirichletAllocation,
               hmm.GaussianHMM, hmm.CategoricalHMM, hmm.PoissonHMM, hmm.GMMHMM, vhmm.VariationalGaussianHMM,
               vhmm.VariationalCategoricalHMM, *(getattr(_hmm, n) for n in private if hasattr(_hmm, n)))
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


class _Encoder:
    """JSON-able values, with arrays moved to an ``npz`` mapping and referenced by key."""

    def __init__(self, prefix: str = "a") -> None:
        self.prefix = prefix
        self.arrays: dict[str, np.ndarray] = {}

    def encode(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            v = float(value)
            return v if np.isfinite(v) else {"__float__": repr(v)}
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"cannot save {where}: an object array")
            key = f"{self.prefix}{len(self.arrays)}"
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self.encode(v, f"{where}.{k}") for k, v in value.items()}}
        raise TypeError(f"cannot save {where}: unsupported type {type(value).__name__}")


def _decode(value: Any, arrays: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        if "__array__" in value:
            return arrays[value["__array__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, arrays) for v in value["__tuple__"])
        if "__float__" in value:
            return float(value["__float__"])
        if "__dict__" in value:
            return {k: _decode(v, arrays) for k, v in value["__dict__"].items()}
        raise ValueError(f"unknown entry in the file's header: {sorted(value)}")
    return value


def _generator_from_state(state: Any) -> np.random.Generator:
    """Rebuild a generator from a saved ``bit_generator.state``: it continues the saved stream exactly.

    Children drawn by ``child_generator`` come from this stream too, so they match the original's.
    """
    bit_generators = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "Philox": np.random.Philox,
                      "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}
    rng = np.random.Generator(bit_generators[state["bit_generator"]]())
    rng.bit_generator.state = state
    return rng


def _state(obj: Any, skip: set[str], enc: _Encoder, where: str) -> dict[str, Any]:
    out = {}
    for name, value in vars(obj).items():
        if name in skip or type(value).__name__ in _SKIP_TYPES:
            continue
        out[name] = enc.encode(value, f"{where}.{name}")
    return out


def _versions() -> dict[str, str]:
    import hmmlearn
    import scipy
    import sklearn

    from . import __version__

    return {"probspace": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__, "hmmlearn": hmmlearn.__version__}


def save(model: Any, path: Any) -> None:
    """Write a fitted model to ``path`` (see :meth:`probspace.LatentModel.save`).

    Parameters
    ----------
    model : LatentModel
        A fitted model of a family in the allow-list.
    path : str or path-like
        Destination.
    """
    model._check_fitted()
    family = type(model).__name__
    if _families().get(family) is not type(model):
        raise TypeError(f"{family} is not a probspace family that save() knows; pickle it instead.")
    enc = _Encoder()
    backend = model.backend_
    backend_name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    if backend_name not in _backends():
        raise TypeError(f"cannot save a backend of type {backend_name}")
    backend_params = {k: (v if not isinstance(v, np.random.RandomState) else None)
                      for k, v in backend.get_params(deep=False).items()}
    header = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "family": family,
        "versions": _versions(),
        "params": enc.encode({k: v for k, v in model.get_params(deep=False).items()
                              if not isinstance(v, np.random.Generator)}, "params"),
        "fitted": {"__dict__": _state(model, set(model.get_params(deep=False)) | {"backend_", "rng_"}, enc,
                                      family)},
        "rng": enc.encode(model.rng_.bit_generator.state, "rng_"),
        "backend": {"class": backend_name, "params": enc.encode(backend_params, "backend params"),
                    "state": {"__dict__": _state(backend, set(backend_params), enc, backend_name)}},
    }
    with open(path, "wb") as fh:
        np.savez(fh, __header__=np.array(json.dumps(header)), **enc.arrays)


def load(path: Any) -> Any:
    """Read a model written by ``model.save(path)``, of any probspace family.

    Loading never unpickles and never imports a class named in the file:
    families and backends come from a fixed allow-list.

    Parameters
    ----------
    path : str or path-like
        A file written by :meth:`probspace.LatentModel.save` (or ``VAE.save``).

    Returns
    -------
    LatentModel
        The fitted model, with the same random stream it had when saved.

    Raises
    ------
    ValueError
        For a file that is not a probspace model, is damaged, names an unknown
        family, or was written in a file format this version cannot read (the
        message names both probspace versions).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import probspace
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> model = probspace.GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "gmm.npz")
    >>> model.save(path)
    >>> bool(np.array_equal(probspace.load(path).embed(X), model.embed(X)))
    True
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            vae_file = "header" in files and "__header__" not in files
            if not vae_file:
                header = json.loads(str(f["__header__"]))
                arrays = {k: f[k] for k in files if k != "__header__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path!s} is not a readable probspace model file ({type(err).__name__}: {err}).") from err
    if vae_file:  # outside the try: VAE.load's own errors are already ValueErrors with the right message
        from .models._vae import VAE

        return VAE.load(path)
    if not isinstance(header, dict) or header.get("magic") != _MAGIC:
        raise ValueError(f"{path!s} is not a probspace model file (no probspace header).")
    from . import __version__

    version = header.get("format_version")
    if version != FORMAT_VERSION:
        written = header.get("versions", {}).get("probspace", "unknown")
        raise ValueError(f"{path!s} was written by probspace {written} in file format {version}; this is probspace "
                         f"{__version__}, which reads format {FORMAT_VERSION}. Load it with probspace {written}.")
    family = _families().get(header.get("family"))
    if family is None:
        raise ValueError(f"{path!s} holds an unknown model family {header.get('family')!r}.")
    backend_cls = _backends().get(header["backend"]["class"])
    if backend_cls is None:
        raise ValueError(f"{path!s} names an unknown backend {header['backend']['class']!r}.")
    try:
        model = family(**_decode(header["params"], arrays))
        backend = backend_cls(**_decode(header["backend"]["params"], arrays))
        for name, value in _decode(header["backend"]["state"], arrays).items():
            backend.__dict__[name] = value  # raw attributes: no property setters involved
        model.backend_ = backend
        for name, value in _decode(header["fitted"], arrays).items():
            setattr(model, name, value)
        model.rng_ = _generator_from_state(_decode(header["rng"], arrays))
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        raise ValueError(f"{path!s} is damaged or inconsistent: {type(err).__name__}: {err}") from err
    return model
