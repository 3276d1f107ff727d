"""Model selection across families: one table, one ranking."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["compare"]

_LOWER_IS_BETTER = {"bic", "aic"}


def _information_criteria(model: Any, X: Any, lengths: Any) -> dict[str, float]:
    tags = model._model_tags()
    if tags.parameter_posterior or not tags.exact_log_likelihood:
        return {}
    if hasattr(model, "bic") and hasattr(model, "aic"):  # mixtures
        return {"bic": model.bic(X), "aic": model.aic(X)}
    backend = getattr(model, "backend_", None)
    if tags.sequential and hasattr(backend, "bic"):  # hmmlearn's own counts of free parameters
        Xc, lengths = model._check_input(X, lengths)
        return {"bic": float(backend.bic(Xc, lengths)), "aic": float(backend.aic(Xc, lengths))}
    return {}


def compare(models: Any, X: Any, *, lengths: Any = None, X_test: Any = None, lengths_test: Any = None,
            criterion: str | None = None, n_draws: int = 500, random_state: Any = None):
    """Score fitted models on the same data and rank them, whatever their family.

    For every model: the mean log-likelihood per observation (per sequence for
    HMMs, per document for LDA) with its standard error, on held-out data
    when ``X_test`` is given; BIC and AIC for maximum-likelihood (EM) fits
    with an exact likelihood; PSIS-LOO and WAIC through ArviZ for fits with
    parameter draws (Bayesian mixtures).

    Parameters
    ----------
    models : dict of str to LatentModel, or list of LatentModel
        Fitted models; a list is named by ``repr``.
    X : array-like
        Data the models were fitted on (for BIC, AIC and LOO).
    lengths : array-like of int, optional
        Sequence lengths of ``X`` (HMMs).
    X_test : array-like, optional
        Held-out data: the preferred basis for comparing different families.
    lengths_test : array-like of int, optional
        Sequence lengths of ``X_test``.
    criterion : {"heldout", "log_likelihood", "bic", "aic", "loo", "waic"}, optional
        What to rank by. Default: ``"heldout"`` with ``X_test``, else ``"bic"``
        when every model has it, else ``"loo"`` when every model has it, else
        the in-sample ``"log_likelihood"``.
    n_draws : int, default=500
        Posterior draws for LOO and WAIC.
    random_state : None, int or numpy.random.Generator, optional
        Seed of those draws.

    Returns
    -------
    pandas.DataFrame
        One row per model, best first, with columns ``family``,
        ``log_likelihood``, ``se``, ``exact`` (False where the
        log-likelihood is a bound or an estimate), ``bic``, ``aic``,
        ``elpd_loo``, ``se_loo``, ``elpd_waic``, ``se_waic``, ``max_pareto_k``
        (where defined), and ``rank``.

    Notes
    -----
    Log-likelihoods are comparable across models only on the same data in
    the same units; for LDA and VAEs they are lower bounds or estimates
    (``exact`` says so). Scores are means per observation (sequence,
    document), so they work with scikit-learn's ``GridSearchCV`` through
    each model's ``score``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GaussianMixture, compare
    >>> X = np.r_[np.random.default_rng(0).normal(-3, 1, (80, 1)), np.random.default_rng(1).normal(3, 1, (80, 1))]
    >>> models = {f"K={k}": GaussianMixture(k, random_state=0).fit(X) for k in (1, 2, 3)}
    >>> compare(models, X).index[0]
    'K=2'
    """
    import pandas as pd

    if not isinstance(models, dict):
        models = {repr(m): m for m in models}
    if not models:
        raise ValueError("compare needs at least one fitted model.")
    rows = {}
    for name, model in models.items():
        model._check_fitted()
        tags = model._model_tags()
        kw = {"lengths": lengths} if tags.sequential else {}
        data, data_kw = (X_test, {"lengths": lengths_test} if tags.sequential else {}) if X_test is not None \
            else (X, kw)
        ll = model.log_likelihood(data, **data_kw)
        row = {"family": type(model).__name__, "log_likelihood": float(ll.mean()),
               "se": float(ll.std(ddof=1) / np.sqrt(ll.size)) if ll.size > 1 else np.nan,
               "exact": bool(tags.exact_log_likelihood and not tags.parameter_posterior)}
        row.update(_information_criteria(model, X, lengths if tags.sequential else None))
        if tags.parameter_posterior:
            from .diagnostics._arviz import loo_waic

            row.update(loo_waic(model.to_arviz(X, n_samples=n_draws, random_state=random_state, **kw)))
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    if criterion is None:
        if X_test is not None:
            criterion = "heldout"
        elif "bic" in table and table["bic"].notna().all():
            criterion = "bic"
        elif "elpd_loo" in table and table["elpd_loo"].notna().all():
            criterion = "loo"
        else:
            criterion = "log_likelihood"
    column = {"heldout": "log_likelihood", "loo": "elpd_loo", "waic": "elpd_waic"}.get(criterion, criterion)
    if criterion == "heldout" and X_test is None:
        raise ValueError("criterion='heldout' needs X_test.")
    if column not in table or table[column].isna().any():
        missing = list(table.index[table[column].isna()]) if column in table else list(table.index)
        raise ValueError(f"criterion={criterion!r} is not defined for: {missing}.")
    table = table.sort_values(column, ascending=criterion in _LOWER_IS_BETTER)
    table["rank"] = np.arange(1, len(table) + 1)
    table.attrs["criterion"] = criterion
    return table
