"""Shared numpydoc fragments, filled into docstrings explicitly with :func:`fill`.

A test checks that no ``{placeholder}`` survives in any public docstring.
"""

from __future__ import annotations

import inspect
import textwrap

__all__ = ["FRAGMENTS", "fill"]

FRAGMENTS: dict[str, str] = {
    "random_state": """\
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the fit and every later call made without its own
        ``random_state``. ``fit`` builds ``rng_`` from it: with an int, a refit
        replays the same sequence of draws; consecutive unseeded calls differ.""",
    "held_params": """\
    fixed : dict, optional
        Parameters held during fitting (EM and MCMC), by name without the
        trailing underscore (``"startprob"``, ``"transmat"``, the emission's
        arrays): an array of the parameter's shape whose finite entries are
        held at that value and whose NaN entries are estimated. A held 0 is a
        structural zero and stays exactly 0. ``sampler="nuts"`` holds entries
        on Pyro's NUTS (whole arrays on the compiled one). See :ref:`hmm-variants`.
    topology : {"ergodic", "left-to-right", "banded"}, optional
        Allowed transitions: ``"left-to-right"`` (``i -> j`` for ``j >= i``,
        at most ``bandwidth`` states ahead; starts in state 0) or
        ``"banded"`` (``|i - j| <= bandwidth``); forbidden transitions are
        structural zeros.
    bandwidth : int, optional
        Width of the band (``"banded"``: default 1; ``"left-to-right"``: no limit).""",
    "common_attributes": """\
    n_features_in_ : int
        Number of features seen during ``fit``.
    n_iter_ : int
        Number of iterations the backend ran in its best initialisation.
    converged_ : bool
        Whether the backend's iterations converged.
    history_ : ndarray of shape (n_iterations,)
        Objective after each iteration of the kept initialisation: the mean
        log-likelihood per observation (EM) or the evidence lower bound
        divided by the number of observations (variational fits). Diagnose
        EM and variational fits with it, not with R-hat.
    rng_ : numpy.random.Generator
        The model's random stream; calls without ``random_state`` draw from it.
    backend_ : object
        The fitted backend estimator.""",
}


def fill(doc: str | None, **extra: str) -> str:
    """Substitute ``{name}`` fragments into ``doc`` (dedented first).

    Parameters
    ----------
    doc : str
        Docstring template with ``{name}`` placeholders.
    **extra : str
        Fragments beyond :data:`FRAGMENTS`.

    Returns
    -------
    str
    """
    text = inspect.cleandoc(doc or "")
    fragments = {**FRAGMENTS, **extra}
    for name, value in fragments.items():
        text = text.replace("{" + name + "}", textwrap.dedent(value).strip("\n"))
    return text
