"""Parameter constraints, data checks and the shared error messages.

Everything a user can get wrong is checked here, once, so that every family
raises the same kind of error with the same shape of message: the argument,
what was expected, and what was given.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.utils.validation import validate_data

__all__ = [
    "InvalidParameterError",
    "Interval",
    "Options",
    "check_gaussian_scale",
    "check_lengths",
    "check_n_samples",
    "validate_params",
    "validate_X",
    "warn_unconverged",
]


class InvalidParameterError(ValueError, TypeError):
    """A constructor parameter has a value outside its documented range.

    Subclasses both :class:`ValueError` and :class:`TypeError`, as
    scikit-learn's own error of that name does, so code written against either
    catches it.
    """


@dataclass(frozen=True)
class Interval:
    """A numeric range that a parameter must lie in.

    Parameters
    ----------
    kind : {"int", "real"}
        ``"int"`` accepts integers only; ``"real"`` accepts any real number.
    left, right : float or None
        Bounds; ``None`` means unbounded on that side.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    """

    kind: str
    left: float | None
    right: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        """Return whether ``value`` lies in the interval."""
        if isinstance(value, bool):
            return False
        if self.kind == "int" and not isinstance(value, numbers.Integral):
            return False
        if not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        lb = "[" if self.closed in ("both", "left") and self.left is not None else "("
        rb = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        noun = "an int" if self.kind == "int" else "a float"
        return f"{noun} in the range {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """A finite set of allowed values (usually strings)."""

    values: frozenset

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", frozenset(values))

    def accepts(self, value: Any) -> bool:
        """Return whether ``value`` is one of the options."""
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in sorted(self.values, key=str))


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "random_state":
        return value is None or isinstance(value, np.random.Generator) or (
            isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0
        )
    if constraint == "array-like":
        return hasattr(value, "__len__") or hasattr(value, "__array__")
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return constraint.accepts(value)


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if constraint == "random_state":
        return "None, a non-negative int or a numpy.random.Generator"
    if constraint == "array-like":
        return "an array-like"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def validate_params(estimator: Any) -> None:
    """Check every constructor parameter against ``_parameter_constraints``.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the class, what is allowed and what was given.
    """
    constraints = getattr(estimator, "_parameter_constraints", {})
    params = estimator.get_params(deep=False)
    for name, allowed in constraints.items():
        value = params[name]
        if any(_accepts(c, value) for c in allowed):
            continue
        described = " or ".join(_describe(c) for c in allowed)
        raise InvalidParameterError(
            f"The {name!r} parameter of {type(estimator).__name__} must be {described}. "
            f"Got {value!r} instead."
        )


def validate_X(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    allow_nan: bool = False,
    non_negative: bool = False,
    accept_sparse: bool = False,
    min_samples: int = 1,
) -> np.ndarray:
    """Validate data for ``estimator`` with scikit-learn's public ``validate_data``.

    Checks that ``X`` is a non-empty 2-D array of finite floats (NaN allowed
    where the family marginalises missing values), and, when ``reset`` is
    false, that its number of features matches the fit, naming both numbers.
    """
    if X is None:
        raise ValueError(
            f"{type(estimator).__name__} requires X, a 2-D array of shape (n_samples, n_features); got None."
        )
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=np.float64,
        accept_sparse="csr" if accept_sparse else False,
        ensure_all_finite="allow-nan" if allow_nan else True,
        ensure_min_samples=min_samples,
    )
    if non_negative:
        data = X.data if hasattr(X, "data") and not isinstance(X, np.ndarray) else X
        if np.any(data < 0):
            raise ValueError(
                f"Negative values in data passed to {type(estimator).__name__}: X must contain non-negative "
                f"values; its smallest entry is {np.nanmin(data):g}."
            )
    return X


def check_gaussian_scale(X: np.ndarray, owner: str) -> None:
    """Reject data whose squares overflow float64, which every Gaussian density and M-step forms.

    Raises
    ------
    ValueError
        Naming the largest magnitude in ``X`` and what to do.
    """
    big = max(float(np.max(X)), -float(np.min(X))) if X.size else 0.0  # two passes, no copies
    if not np.isfinite(big):  # NaN (missing values) or inf present: the slower, copying pass
        with np.errstate(all="ignore"):
            finite = X[np.isfinite(X)]
            big = float(np.max(np.abs(finite))) if finite.size else 0.0
    if big > _GAUSSIAN_MAX_ABS:
        raise ValueError(
            f"X passed to {owner} has entries as large as {big:.3g} in magnitude; Gaussian densities and "
            f"variances square them, which overflows float64 above about {_GAUSSIAN_MAX_ABS:.0e}. Rescale X "
            "(the fit is equivariant: divide X by a constant and scale the fitted means and covariances back)."
        )


#: Largest magnitude of data a Gaussian family accepts: squares (and their sums) stay finite in float64.
_GAUSSIAN_MAX_ABS = 1e150


def warn_unconverged(model: Any, max_iter: int, detail: str = "") -> None:
    """Issue scikit-learn's ``ConvergenceWarning`` for a fit that stopped at ``max_iter``.

    Parameters
    ----------
    model : estimator
        The model whose fit did not converge.
    max_iter : int
        The iteration limit it reached.
    detail : str, optional
        What was still changing (appended to the message).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    detail = f": {detail}" if detail else ""
    warnings.warn(
        f"{type(model).__name__} stopped after max_iter={max_iter} iterations before converging{detail}. "
        "Increase max_iter (or tol) and check history_.",
        ConvergenceWarning,
        stacklevel=4,
    )


def check_lengths(lengths: Any, n_samples: int, *, sequential: bool, owner: str) -> np.ndarray | None:
    """Check hmmlearn-style ``lengths`` against the number of rows of ``X``.

    Returns ``None`` for non-sequential families (where ``lengths`` must be
    ``None``), and an int array summing to ``n_samples`` otherwise.
    """
    if not sequential:
        if lengths is not None:
            raise ValueError(
                f"{owner} models independent observations and takes no 'lengths'; got lengths={lengths!r}."
            )
        return None
    if lengths is None:
        return np.array([n_samples], dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"'lengths' must be a non-empty 1-D sequence of ints; got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"'lengths' must contain integers; got {arr.tolist()!r}.")
    arr = arr.astype(np.int64)
    if np.any(arr <= 0):
        raise ValueError(f"Every entry of 'lengths' must be positive; got {arr.tolist()!r}.")
    if arr.sum() != n_samples:
        raise ValueError(
            f"'lengths' must add up to the number of rows of X ({n_samples}); they add up to {int(arr.sum())}."
        )
    return arr


def check_n_samples(n_samples: Any, *, name: str = "n_samples") -> int:
    """Check that a requested number of draws is a positive int and return it."""
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral):
        raise ValueError(f"'{name}' must be a positive int; got {n_samples!r}.")
    if n_samples < 1:
        raise ValueError(f"'{name}' must be a positive int; got {n_samples}.")
    return int(n_samples)
