"""Saving and loading fitted models: one ``.npz`` file of arrays plus a versioned JSON header.

No pickle anywhere: the header is JSON, the arrays are loaded with
``allow_pickle=False``, and classes are looked up among the registered
families (every concrete subclass of :class:`~probspace.LatentModel` registers
itself when it is defined), never imported by a name read from the file. So a
file cannot run code.

Format 2 (this version) writes what a family's ``_get_state`` hook returns:
its public fitted attributes and, for a scikit-learn style backend, the
backend's constructor parameters and public fitted attributes; ``_set_state``
rebuilds the model from them. Nothing private of a backend is written, so a
file survives backend releases that rename private attributes. Files of
format 1 (raw backend attributes) and the VAE's own earlier format still load.
"""

from __future__ import annotations

import json
import numbers
import zipfile
from typing import Any

import numpy as np

__all__ = ["FORMAT_VERSION", "can_save", "load", "save"]

#: Version of the file layout. A reader accepts files whose version it knows (1 and 2).
FORMAT_VERSION = 2
_MAGIC = "probspace-model"


def _families() -> dict[str, type]:
    """Families that format-1 files name (by class name)."""
    from .models import GMMHMM, LDA, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM

    return {c.__name__: c for c in (GaussianMixture, GaussianHMM, CategoricalHMM, PoissonHMM, GMMHMM, LDA)}


def can_save(model: Any) -> bool:
    """Whether :func:`save` can write ``model`` so that :func:`load` reads it back.

    True for a registered family (every concrete subclass of
    :class:`~probspace.LatentModel` defined at module level) whose state hooks
    are implemented.

    Parameters
    ----------
    model : LatentModel
        A model, fitted or not.

    Returns
    -------
    bool
        ``True`` when ``model.save`` writes a file that :func:`load` reads.
    """
    if not _registered(type(model)):
        return False
    try:
        enc = _Encoder()
        enc.encode(_file_params(model), "params")
        if hasattr(model, "backend_"):
            enc.encode(model._get_state(), "state")
    except (NotImplementedError, TypeError):
        return False
    return True


def _registered(cls: type) -> bool:
    """Whether ``cls`` is the family a file naming it loads back (defined at module level, registered)."""
    from ._base import family_name, registered_family

    return "<locals>" not in cls.__qualname__ and registered_family(family_name(cls)) is cls


def _file_params(model: Any) -> dict[str, Any]:
    """Return the constructor parameters as written.

    A generator of random numbers is left out, and every parameter the family
    names in ``_given_at_load`` (an object such as a user's torch module) is
    written as ``None``: the family's ``_get_state`` writes its weights and
    its ``load`` takes the object again.
    """
    given = type(model)._given_at_load
    return {k: (None if k in given else v) for k, v in model.get_params(deep=False).items()
            if not isinstance(v, np.random.Generator)}


def _backends() -> dict[str, type]:
    from hmmlearn import hmm, vhmm
    from sklearn import decomposition, mixture

    from .models import _hmm

    # The HMM families' private backend subclasses under the names format-1 files give them
    # (``probspace.models._hmm.<name>``, where they were defined then), looked up in that one module, never
    # imported from the file; a name the module lacks is skipped, and saving a backend not listed raises TypeError.
    private = ("_KernelEStepGaussianHMM", "_GuardedCategoricalHMM", "_GuardedPoissonHMM", "_GuardedGMMHMM")
    classes = (mixture.GaussianMixture, mixture.BayesianGaussianMixture, decomposition.LatentDirichletAllocation,
               hmm.GaussianHMM, hmm.CategoricalHMM, hmm.PoissonHMM, hmm.GMMHMM, vhmm.VariationalGaussianHMM,
               vhmm.VariationalCategoricalHMM)
    return {**{f"{c.__module__}.{c.__qualname__}": c for c in classes},
            **{f"{_hmm.__name__}.{n}": getattr(_hmm, n) for n in private if hasattr(_hmm, n)}}


def _estimators() -> dict[str, type]:
    """scikit-learn transformers that may appear as a parameter (``Embedding(estimator)``), by qualified name.

    Only their constructor parameters and public fitted attributes are
    written; a file names one of these classes or it is refused.
    """
    from sklearn import decomposition, manifold, random_projection

    classes = (decomposition.PCA, decomposition.IncrementalPCA, decomposition.TruncatedSVD, decomposition.FastICA,
               decomposition.NMF, decomposition.FactorAnalysis, decomposition.SparsePCA, manifold.TSNE,
               manifold.SpectralEmbedding, manifold.MDS, random_projection.GaussianRandomProjection)
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
                if value.ndim == 1 and all(isinstance(v, str) for v in value):  # feature names
                    return {"__strings__": [str(v) for v in value]}
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
        name = f"{type(value).__module__}.{type(value).__qualname__}"
        if hasattr(value, "get_params") and name in _estimators():  # an unfitted estimator given as a parameter
            return {"__estimator__": name, "params": self.encode(value.get_params(deep=False), f"{where}.params")}
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
        if "__strings__" in value:
            return np.asarray(value["__strings__"], dtype=object)
        if "__estimator__" in value:
            cls = _estimators().get(value["__estimator__"])
            if cls is None:
                raise ValueError(f"unknown estimator {value['__estimator__']!r} in the file's header")
            return cls(**_decode(value["params"], arrays))
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


def _versions() -> dict[str, str]:
    import hmmlearn
    import scipy
    import sklearn

    from . import __version__

    versions = {"probspace": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
                "scikit-learn": sklearn.__version__, "hmmlearn": hmmlearn.__version__}
    import sys

    if "torch" in sys.modules:
        versions["torch"] = sys.modules["torch"].__version__
    return versions


def _check_versions(path: Any, recorded: Any, format_version: int) -> None:
    """Warn, naming both versions, when a backend library's release differs from the one that wrote the file."""
    import warnings

    if not isinstance(recorded, dict):
        return
    now = _versions()
    changed = [f"{lib} {recorded[lib]} -> {now[lib]}" for lib in ("scikit-learn", "hmmlearn", "torch")
               if lib in recorded and lib in now and recorded[lib].split(".")[:2] != now[lib].split(".")[:2]]
    if not changed:
        return
    how = ("it restores the backend's raw attributes, which a release may rename: if a method fails, refit and "
           "save again" if format_version == 1 else "it holds public fitted attributes only, which releases keep; "
           "check the results")
    warnings.warn(f"{path!s} was written with {', '.join(changed)} (now installed); {how}.", UserWarning, stacklevel=3)


def save(model: Any, path: Any) -> None:
    """Write a fitted model to ``path`` (see :meth:`probspace.LatentModel.save`).

    Parameters
    ----------
    model : LatentModel
        A fitted model of a registered family.
    path : str or path-like
        Destination.
    """
    from ._base import family_name

    model._check_fitted()
    cls = type(model)
    if not _registered(cls):
        raise TypeError(f"{cls.__name__} is not a registered probspace family (a class defined at module level, "
                        "subclassing LatentModel); pickle it instead.")
    enc = _Encoder()
    try:
        header = {
            "magic": _MAGIC,
            "format_version": FORMAT_VERSION,
            "family": family_name(cls),
            "versions": _versions(),
            "params": enc.encode(_file_params(model), "params"),
            "rng": enc.encode(model.rng_.bit_generator.state, "rng_"),
            "state": enc.encode(model._get_state(), "state"),
        }
    except (TypeError, NotImplementedError) as err:
        raise TypeError(f"{cls.__name__} cannot be written in probspace's pickle-free format ({err}); pickle it "
                        "instead.") from err
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
    return _load(path)


def _load(path: Any, _given: dict[str, Any] | None = None) -> Any:
    """Body of :func:`load`; ``_given`` supplies the parameters a family names in ``_given_at_load``."""
    try:
        with np.load(path, allow_pickle=False) as f:
            files = set(f.files)
            vae_file = "header" in files and "__header__" not in files
            if not vae_file:
                header = json.loads(str(f["__header__"]))
                arrays = {k: f[k] for k in files if k != "__header__"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path!s} is not a readable probspace model file ({type(err).__name__}: {err}).") from err
    if vae_file:  # the VAE's own earlier format; outside the try: its errors are already the right ValueErrors
        from .models._vae import VAE

        return VAE._load_legacy(path)
    if not isinstance(header, dict) or header.get("magic") != _MAGIC:
        raise ValueError(f"{path!s} is not a probspace model file (no probspace header).")
    from . import __version__

    version = header.get("format_version")
    if version not in (1, FORMAT_VERSION):
        written = header.get("versions", {}).get("probspace", "unknown")
        raise ValueError(f"{path!s} was written by probspace {written} in file format {version}; this is probspace "
                         f"{__version__}, which reads formats 1 and {FORMAT_VERSION}. Load it with probspace "
                         f"{written}.")
    _check_versions(path, header.get("versions"), version)
    if version == 1:
        return _load_format_1(path, header, arrays)
    from ._base import registered_family

    name = str(header.get("family"))
    family = registered_family(name)
    if family is None and "." not in name:
        # One of probspace's own families whose module is imported lazily (torch-based ones): ask the package,
        # which resolves only its own public names, never a module named in the file.
        import probspace

        candidate = getattr(probspace, name, None) if name in probspace.__all__ else None
        family = registered_family(name) if candidate is not None else None
    if family is None:
        raise ValueError(f"{path!s} holds an unknown model family {header.get('family')!r} (a family from another "
                         "package must be imported before its models are loaded).")
    given = dict(_given or {})
    missing = [k for k in family._given_at_load if given.get(k) is None]
    if missing:
        args = ", ".join(f"{k}=..." for k in missing)
        raise ValueError(f"{path!s} holds a {family.__name__} saved without its {', '.join(missing)} (a user "
                         f"object that the file cannot hold; its weights are in the file): load it with "
                         f"{family.__name__}.load(path, {args}), giving the same architecture again.")
    try:
        model = family(**{**_decode(header["params"], arrays), **given})
        model._set_state(_decode(header["state"], arrays))
        model.rng_ = _generator_from_state(_decode(header["rng"], arrays))
        model._check_fitted()
        model._check_fitted_parameters()  # every parameter readable and finite
    except (TypeError, KeyError, AttributeError, ValueError, IndexError, RuntimeError) as err:
        # RuntimeError: torch's load_state_dict on missing, extra or reshaped weights.
        raise ValueError(f"{path!s} is damaged or inconsistent: {type(err).__name__}: {err}") from err
    return model


def _load_format_1(path: Any, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """Read a format-1 file: the model's fitted ``__dict__`` and the backend's raw attributes."""
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
