"""Latent Dirichlet allocation over scikit-learn's ``LatentDirichletAllocation``, or by collapsed Gibbs sampling."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import digamma, gammaln, logsumexp
from sklearn import decomposition

from .._base import LatentModel
from .._docstrings import fill
from .._random import as_generator, child_generator, sklearn_seed
from .._tags import ModelTags
from .._validation import Interval, Options, check_n_samples, validate_params, warn_unconverged
from ..inference import _lda as _gibbs
from ..inference._progress import progress_bar
from ..posteriors import Dirichlet, FiniteMixture
from ..posteriors._dirichlet import sample_dirichlet

__all__ = ["LDA"]


# Largest posterior-predictive array (draws x documents x words) to_arviz writes for LDA.
_MAX_PREDICTIVE_ENTRIES = 20_000_000
#: From this many topics on, the Gibbs sweeps use SparseLDA's buckets; below it the dense kernel, which is
#: faster there (benchmarks/bench_lda.py times both: at K=20 on the docstring corpus they are within noise).
_SPARSE_FROM_K = 40
#: Sweeps of fold-in Gibbs sampling before a new document's draws are kept (topics fixed: fast mixing).
_FOLD_IN_WARMUP = 20
_CHUNK = 10  # sweeps per progress-bar update
_MAX_TOKENS = 2**31 - 1  # int32 counts
#: Expected token visits (tokens x chains x sweeps) above which progress=None shows a bar (about 10 s).
_PROGRESS_WORK = 4e8


class TokenTopicDraws(NamedTuple):
    """Draws of the topic assignments of word tokens, in the sparse layout of ``X``.

    Parameters
    ----------
    rows, cols : ndarray of shape (nnz,)
        Document and word of each non-zero count.
    counts : ndarray of shape (nnz,)
        The counts.
    draws : ndarray of shape (n_samples, nnz, n_components)
        Tokens of each (document, word) entry given to each topic; sums to ``counts`` over topics.
    """

    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    draws: np.ndarray

    def to_dense(self, shape: tuple[int, int]) -> np.ndarray:
        """Return the draws as a dense ``(n_samples, n_docs, n_words, n_components)`` array.

        Parameters
        ----------
        shape : tuple of int
            ``(n_docs, n_words)`` of ``X``.

        Returns
        -------
        ndarray
            Dense counts; large for many documents.
        """
        out = np.zeros((self.draws.shape[0], *shape, self.draws.shape[2]), dtype=self.draws.dtype)
        out[:, self.rows, self.cols, :] = self.draws
        return out


def _e_log_dirichlet(param: np.ndarray) -> np.ndarray:
    """``E[log x]`` under ``Dirichlet(param)``, row-wise."""
    return digamma(param) - digamma(param.sum(axis=1, keepdims=True))


def _rows_cols_counts(X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if sp.issparse(X):
        coo = X.tocoo()
        return coo.row, coo.col, coo.data
    rows, cols = np.nonzero(X)
    return rows, cols, X[rows, cols]


def _token_log_norm(e_log_theta, e_log_beta, rows, cols):
    """``log sum_k exp(E log theta_dk + E log beta_kw)`` for each non-zero (d, w)."""
    a_max = e_log_theta.max(axis=1)
    b_max = e_log_beta.max(axis=0)
    a = np.exp(e_log_theta - a_max[:, None])
    b = np.exp(e_log_beta - b_max[None, :])
    inner = np.einsum("ik,ki->i", a[rows], b[:, cols])
    out = np.empty(rows.shape[0])
    ok = inner > 0
    out[ok] = np.log(inner[ok]) + a_max[rows[ok]] + b_max[cols[ok]]
    if not ok.all():  # no topic is likely for both the document and the word: exact log-sum-exp
        out[~ok] = logsumexp(e_log_theta[rows[~ok]] + e_log_beta[:, cols[~ok]].T, axis=1)
    return out


def _token_layout(X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token arrays of a count matrix: ``(doc_ptr, word, entry)``, the tokens of each document in CSR order.

    ``entry`` is the index of each token's non-zero ``(document, word)`` entry in ``X.tocsr()``.
    """
    X = sp.csr_matrix(X)
    X.sum_duplicates()
    counts = X.data.astype(np.int64)
    total = int(counts.sum())
    if total > _MAX_TOKENS:
        raise ValueError(f"X holds {total} word tokens; LDA(algorithm='gibbs') keeps the topic of every token and "
                         f"its int32 counts allow at most {_MAX_TOKENS}. Use algorithm='variational' for such X.")
    lengths = np.add.reduceat(counts, X.indptr[:-1]) if counts.size else np.zeros(X.shape[0], np.int64)
    lengths[np.diff(X.indptr) == 0] = 0
    doc_ptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    word = np.repeat(X.indices, counts).astype(np.int32)
    entry = np.repeat(np.arange(counts.size), counts)
    return doc_ptr, word, entry


def _align_topics(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Permutation ``perm`` with ``other[perm]`` closest to ``reference`` (rows are topic-word distributions).

    Topics of separate chains carry arbitrary labels; they are matched by
    maximising the summed Bhattacharyya overlap (Hungarian algorithm).
    """
    from scipy.optimize import linear_sum_assignment

    overlap = np.sqrt(reference) @ np.sqrt(other).T
    _, perm = linear_sum_assignment(-overlap)
    return perm


class _CollapsedGibbsFit:
    """What ``LDA.backend_`` holds after ``fit`` with ``algorithm="gibbs"``: the sampled state, by chain.

    Public attributes (saved and restored by the state hooks):
    ``components_`` ``(K, V)`` topic-word pseudo-counts whose normalised rows
    are the posterior mean topics (chains pooled); ``chain_components_``
    ``(C, K, V)`` the same per chain; ``doc_topic_counts_`` ``(C, D, K)``
    mean topic counts of each training document over the kept draws;
    ``draws_`` and ``sample_stats_`` (ArviZ); ``infer_seed_`` the seed of the
    fold-in sampler (so that ``posterior(X)`` is a fixed function of ``X``).
    """

    def __init__(self, n_components: int, doc_topic_prior: float, topic_word_prior: float,
                 sampler: str = "collapsed_gibbs") -> None:
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.sampler = sampler

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """Return the constructor parameters (as a scikit-learn estimator does; read by the state hooks)."""
        return {"n_components": self.n_components, "doc_topic_prior": self.doc_topic_prior,
                "topic_word_prior": self.topic_word_prior, "sampler": self.sampler}

    @property
    def doc_topic_prior_(self) -> float:
        return self.doc_topic_prior

    @property
    def topic_word_prior_(self) -> float:
        return self.topic_word_prior


class LDA(LatentModel):
    r"""Latent Dirichlet allocation with a Dirichlet posterior over each document's topic mix.

    The model: topics :math:`\beta_k \sim \mathrm{Dirichlet}(\eta)`, topic
    proportions :math:`\theta_d \sim \mathrm{Dirichlet}(\alpha)`, and each word
    token :math:`z_{dn} \sim \theta_d`, :math:`w_{dn} \sim \beta_{z_{dn}}`.
    Fitted by variational Bayes with
    :class:`sklearn.decomposition.LatentDirichletAllocation` (batch or online).
    :meth:`posterior` returns :class:`~probspace.posteriors.Dirichlet`
    distributions over :math:`\theta_d`, whose concentrations are the
    variational parameters (the prior plus the expected topic counts): a
    short document gets a wide posterior, a long one a narrow one, where a
    normalised point estimate looks equally confident for both.
    :meth:`topic_posterior` is the Dirichlet over the topic-word matrix, and
    :meth:`sample_token_topics` draws the topic of every word token.

    With ``algorithm="gibbs"`` the fit is a compiled collapsed Gibbs sampler
    instead (Griffiths and Steyvers, 2004): ``theta`` and the topics are
    integrated out, and each sweep redraws the topic of every training token
    from its exact full conditional (SparseLDA's bucket decomposition from 40
    topics on), so after burn-in the chains' states are draws from the joint
    posterior of all token topics, not a factorised approximation. New
    documents are inferred by fold-in Gibbs sampling with the topics fixed;
    :meth:`training_posterior` gives the training documents' proportions from
    the fit's own draws.

    Parameters
    ----------
    n_components : int, default=10
        Number of topics.
    doc_topic_prior : float, optional
        :math:`\alpha`; ``None`` gives ``1 / n_components``.
    topic_word_prior : float, optional
        :math:`\eta`; ``None`` gives ``1 / n_components``.
    learning_method : {"batch", "online"}, default="batch"
        Variational Bayes over the whole corpus per iteration, or online VB
        on minibatches (also used by :meth:`partial_fit`).
    learning_decay : float, default=0.7
        Online learning-rate decay.
    learning_offset : float, default=10.0
        Online learning-rate offset.
    max_iter : int, default=100
        Most passes over the corpus (scikit-learn's default is 10).
    batch_size : int, default=128
        Documents per online minibatch.
    evaluate_every : int, default=5
        Compute the training perplexity every this many iterations and stop
        when it changes by less than ``perp_tol`` (scikit-learn's default is
        -1: never, so a fit always runs ``max_iter`` passes and its
        convergence is not checked; ``converged_`` is then False and no
        warning is issued).
    total_samples : int, default=1000000
        Corpus size assumed by online updates.
    perp_tol : float, default=1.0
        Perplexity tolerance between two evaluations (scikit-learn's default
        is 0.1, which takes about twice the passes on the examples' corpus).
    mean_change_tol : float, default=1e-3
        Stopping tolerance of each document's E-step.
    max_doc_update_iter : int, default=100
        Most E-step iterations per document.
    {random_state}
    verbose : int, default=0
        Verbosity passed to the backend.
    algorithm : {"variational", "gibbs"}, default="variational"
        Variational Bayes with scikit-learn (the settings above), or collapsed
        Gibbs sampling (the settings below; ``learning_method`` to
        ``max_doc_update_iter`` are then unused).
    n_chains : int, default=2
        Gibbs: independent chains, run one after the other from random
        assignments; their topics are matched to the first chain's.
    n_warmup : int, default=100
        Gibbs: burn-in sweeps per chain, discarded.
    n_draws : int, default=50
        Gibbs: draws kept per chain after burn-in.
    thin : int, default=2
        Gibbs: sweeps per kept draw (every ``thin``-th sweep is kept).
    progress : bool or None, default=None
        Gibbs: show a progress bar; ``None`` shows one when the fit is long
        (about ten seconds or more).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Variational parameters of the topic-word Dirichlets (pseudo-counts),
        as in scikit-learn.
    doc_topic_prior_ : float
        The :math:`\alpha` in use.
    topic_word_prior_ : float
        The :math:`\eta` in use.
    mean_doc_length_ : float
        Mean number of tokens per training document (used by :meth:`sample`).
    draws_ : dict of str to ndarray or None
        Gibbs fits: per-draw quantities by chain, ``(n_chains, n_draws, ...)``:
        ``topic_share``, the share of training tokens in each topic (topics
        matched across chains). ``None`` for variational fits.
    sample_stats_ : dict of str to ndarray or None
        Gibbs fits: ``lp``, the collapsed log joint ``log p(w, z)`` of each
        kept draw, and ``log_p_words``, its part ``log p(w | z)``, shape
        ``(n_chains, n_draws)``. ``None`` for variational fits.
    {common_attributes}

    See Also
    --------
    sklearn.decomposition.LatentDirichletAllocation : The backend.
    probspace.posteriors.Dirichlet : The posterior over topic proportions.

    Notes
    -----
    ``log_likelihood`` is a variational lower bound per document, not an
    exact log-likelihood: the terms of scikit-learn's bound that belong to
    one document, ``E_q[log p(w_d | theta_d, beta)] + E_q[log p(theta_d) -
    log q(theta_d)]`` with ``beta`` at its variational posterior. Their sum
    over documents plus the corpus-level topic term
    ``E_q[log p(beta) - log q(beta)]`` is scikit-learn's ``score(X)``. For a
    number comparable across tools use :meth:`completion_perplexity`.
    ``to_arviz`` writes replicated documents (``posterior_predictive``) only
    while draws x documents x words stays under 20 million entries. ``X``
    must hold non-negative integer counts (dense or sparse); a document of
    all zeros is allowed and its posterior is the prior. ``history_`` is the
    training per-word bound :math:`-\log(\text{perplexity})` at each
    evaluation (every ``evaluate_every`` passes; it should rise and level
    off); with ``evaluate_every <= 0`` it holds only the final value.
    Worked example: :ref:`sphx_glr_auto_examples_lda_plot_docstring_topics.py`.

    Gibbs fits (``algorithm="gibbs"``): ``components_`` is ``beta`` plus the
    topic-word counts, scaled so that its normalised rows are the posterior
    mean topics :math:`E[(\eta + n_{kw}) / (V\eta + n_k)]` over all kept draws
    of all chains. :meth:`posterior` runs fold-in Gibbs on ``X``: for each
    chain, ``n_draws`` draws of every token's topic with the topics fixed at
    that chain's posterior mean (after 20 burn-in sweeps, from a seed fixed
    at fit time, so the result is a function of ``X``); given a draw's counts
    :math:`n_{dk}` the document's proportions are exactly
    :math:`\mathrm{Dirichlet}(\alpha + n_{dk})`, and the posterior is the equal
    mixture of these Dirichlets over all draws
    (:class:`~probspace.posteriors.FiniteMixture`, ``method="mcmc"``).
    ``log_likelihood`` is then the plug-in
    :math:`\sum_w n_{dw} \log \sum_k \bar\theta_{dk} \bar\phi_{kw}` at the
    posterior means (an optimistic estimate: ``theta`` is inferred from the
    same words it scores); :meth:`completion_perplexity` is the honest
    held-out number. ``history_`` is the collapsed log joint per sweep
    (averaged over chains); ``converged_`` is True when the split R-hat of
    the log joint over the kept draws is below 1.1; above it (LDA's posterior
    is multimodal, and chains often settle in different modes) ``components_``
    averages different topic sets, and each chain's own topics remain in
    ``backend_.chain_components_`` (normalise the rows). ``to_arviz`` keeps the
    chains: ``sample_stats`` has ``lp`` per draw, ``posterior`` the topic
    shares, ``log_likelihood`` the per-document
    :math:`\log p(w_d \mid \theta_d^{(s)}, \phi)` of each draw, so
    ``arviz.rhat``, ``ess`` and ``loo`` apply.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import LDA
    >>> X = np.random.default_rng(0).poisson(1.0, size=(30, 12))
    >>> lda = LDA(3, random_state=0).fit(X)
    >>> lda.posterior(X).sample(5).shape
    (5, 30, 3)
    >>> gibbs = LDA(3, algorithm="gibbs", n_warmup=20, n_draws=10, random_state=0).fit(X)
    >>> gibbs.draws_["topic_share"].shape, gibbs.posterior(X).method
    ((2, 10, 3), 'mcmc')
    """

    _latent_name = "theta"
    _tags = ModelTags(non_negative=True, accept_sparse=True, exact_posterior=False, exact_log_likelihood=False)
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "doc_topic_prior": [None, Interval("real", 0, None, "neither")],
        "topic_word_prior": [None, Interval("real", 0, None, "neither")],
        "learning_method": [Options("batch", "online")],
        "learning_decay": [Interval("real", 0, 1, "right")],
        "learning_offset": [Interval("real", 1, None, "left")],
        "max_iter": [Interval("int", 1, None)],
        "batch_size": [Interval("int", 1, None)],
        "evaluate_every": [Interval("int", None, None)],
        "total_samples": [Interval("real", 0, None, "neither")],
        "perp_tol": [Interval("real", 0, None)],
        "mean_change_tol": [Interval("real", 0, None)],
        "max_doc_update_iter": [Interval("int", 0, None)],
        "random_state": ["random_state"],
        "verbose": [Interval("int", 0, None)],
        "algorithm": [Options("variational", "gibbs")],
        "n_chains": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 0, None)],
        "n_draws": [Interval("int", 1, None)],
        "thin": [Interval("int", 1, None)],
        "progress": [None, "boolean"],
    }
    _conformance_params = {"n_components": 2, "max_iter": 20}
    _conformance_alt_params = {"learning_method": "online", "doc_topic_prior": 0.3, "batch_size": 16}

    def __init__(self, n_components: int = 10, *, doc_topic_prior: float | None = None,
                 topic_word_prior: float | None = None, learning_method: str = "batch", learning_decay: float = 0.7,
                 learning_offset: float = 10.0, max_iter: int = 100, batch_size: int = 128, evaluate_every: int = 5,
                 total_samples: float = 1e6, perp_tol: float = 1.0, mean_change_tol: float = 1e-3,
                 max_doc_update_iter: int = 100, random_state: Any = None, verbose: int = 0,
                 algorithm: str = "variational", n_chains: int = 2, n_warmup: int = 100, n_draws: int = 50,
                 thin: int = 2, progress: bool | None = None) -> None:
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.random_state = random_state
        self.verbose = verbose
        self.algorithm = algorithm
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.thin = thin
        self.progress = progress

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        topics = np.array([[8, 8, 8, 8, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5],
                           [0.5, 0.5, 1, 1, 1, 1, 8, 8, 8, 8, 0.5, 0.5]], dtype=float)
        topics /= topics.sum(axis=1, keepdims=True)
        theta = rng.dirichlet([0.5, 0.5], size=60)
        return np.stack([rng.multinomial(rng.integers(5, 60), t @ topics) for t in theta]).astype(float), None

    # -- fitted parameters ------------------------------------------------------------
    components_ = property(lambda self: self.backend_.components_, doc="Topic-word pseudo-counts (K, V).")
    doc_topic_prior_ = property(lambda self: self.backend_.doc_topic_prior_, doc="Prior on topic proportions.")
    topic_word_prior_ = property(lambda self: self.backend_.topic_word_prior_, doc="Prior on topic-word weights.")
    draws_ = property(lambda self: getattr(self.backend_, "draws_", None), doc="Gibbs per-draw quantities.")
    sample_stats_ = property(lambda self: getattr(self.backend_, "sample_stats_", None), doc="Gibbs statistics.")

    @property
    def sampler(self) -> str | None:
        """``"collapsed_gibbs"`` for a Gibbs fit, ``None`` for a variational one (read by the ArviZ bridge)."""
        return getattr(self.backend_, "sampler", None)

    def _gibbs_fit(self) -> bool:
        return isinstance(getattr(self, "backend_", None), _CollapsedGibbsFit)

    def _model_tags(self) -> ModelTags:
        if self.algorithm == "gibbs" or self._gibbs_fit():
            return ModelTags(non_negative=True, accept_sparse=True, exact_posterior=False,
                             exact_log_likelihood=False, parameter_posterior=True)
        return self._tags

    def _get_parameters(self) -> dict[str, Any]:
        return {"components_": self.components_}

    def _new_backend(self, params: dict[str, Any]):
        if params.get("sampler") == "collapsed_gibbs":
            return _CollapsedGibbsFit(**params)
        return decomposition.LatentDirichletAllocation(**params)

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        state["n_docs_seen"] = getattr(self, "_n_docs_seen", None)
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        super()._set_state(state)
        if state.get("n_docs_seen") is not None:
            self._n_docs_seen = state["n_docs_seen"]
        if self._gibbs_fit():
            return
        # partial_fit draws from the backend's own RandomState, which is not saved: restart it from its seed.
        self.backend_.random_state_ = np.random.RandomState(self.backend_.random_state)

    # -- validation ---------------------------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super()._check_X(X, lengths, reset=reset)
        data = X.data if sp.issparse(X) else X
        if data.size and np.any(data != np.round(data)):
            bad = data[data != np.round(data)][:3]
            raise ValueError(f"X passed to LDA must hold non-negative integer word counts; got values such as {bad}.")
        return X, lengths

    # -- hooks ---------------------------------------------------------------------------
    def _backend(self, rng: np.random.Generator) -> decomposition.LatentDirichletAllocation:
        return decomposition.LatentDirichletAllocation(
            n_components=self.n_components, doc_topic_prior=self.doc_topic_prior,
            topic_word_prior=self.topic_word_prior, learning_method=self.learning_method,
            learning_decay=self.learning_decay, learning_offset=self.learning_offset, max_iter=self.max_iter,
            batch_size=self.batch_size, evaluate_every=self.evaluate_every, total_samples=self.total_samples,
            perp_tol=self.perp_tol, mean_change_tol=self.mean_change_tol,
            max_doc_update_iter=self.max_doc_update_iter, random_state=sklearn_seed(rng), verbose=self.verbose)

    def _record(self, X, perplexities: list[float]) -> None:
        b = self.backend_
        self.n_iter_ = int(b.n_iter_)
        self.converged_ = bool(self.evaluate_every > 0 and b.n_iter_ < self.max_iter)
        bound = getattr(b, "bound_", None)
        trace = perplexities or ([] if bound is None else [bound])
        self.history_ = -np.log(np.asarray(trace, dtype=np.float64))
        lengths = np.asarray(X.sum(axis=1)).ravel()
        self.mean_doc_length_ = float(lengths.mean()) if lengths.size else 0.0

    def _fit(self, X, lengths, rng) -> None:
        if self.algorithm == "gibbs":
            self._fit_gibbs(X, rng)
            return
        backend = self._backend(rng)
        perplexities: list[float] = []
        if self.evaluate_every > 0:
            # scikit-learn computes the training perplexity at each evaluation but keeps only the last; its
            # verbose report (public output, one line per evaluation) is read here for the whole trace.
            # tests/models/test_lda.py::test_history_is_the_perplexity_trace fails if that line changes.
            import contextlib
            import io
            import re

            backend.set_params(verbose=max(self.verbose, 1))
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                backend.fit(X)
            backend.set_params(verbose=self.verbose)
            text = out.getvalue()
            perplexities = [float(v) for v in re.findall(r"perplexity: ([0-9.eE+-]+)", text)]
            if self.verbose:
                print(text, end="")
        else:
            backend.fit(X)
        self.backend_ = backend
        self._record(X, perplexities)
        if self.evaluate_every > 0 and not self.converged_:
            warn_unconverged(self, self.max_iter, f"the training perplexity still changed by more than "
                             f"perp_tol={self.perp_tol:g} between evaluations")

    # -- collapsed Gibbs ------------------------------------------------------------------
    def _priors(self) -> tuple[float, float]:
        K = self.n_components
        alpha = 1.0 / K if self.doc_topic_prior is None else float(self.doc_topic_prior)
        beta = 1.0 / K if self.topic_word_prior is None else float(self.topic_word_prior)
        return alpha, beta

    def _fit_gibbs(self, X, rng: np.random.Generator) -> None:
        K = self.n_components
        D, V = X.shape
        a, beta = self._priors()
        alpha = np.full(K, a)
        doc_ptr, word, _ = _token_layout(X)
        C, W, S, thin = self.n_chains, self.n_warmup, self.n_draws, self.thin
        n_sweeps = W + S * thin
        sweep = _gibbs.sweep_sparse if K >= _SPARSE_FROM_K else _gibbs.sweep_dense
        show = self.progress if self.progress is not None else word.size * C * n_sweeps > _PROGRESS_WORK
        phi_sum = np.zeros((C, K, V))
        ndk_sum = np.zeros((C, D, K))
        share = np.zeros((C, S, K))
        lp = np.zeros((C, S))
        lw = np.zeros((C, S))
        trace = np.zeros(n_sweeps)
        with progress_bar(show, C * n_sweeps, f"{type(self).__name__} Gibbs", "sweep") as bar:
            for c in range(C):
                z = rng.integers(0, K, size=word.size).astype(np.int32)
                n_dk = np.zeros((D, K), np.int32)
                n_wk = np.zeros((V, K), np.int32)
                n_k = np.zeros(K, np.int32)
                _gibbs.count_topics(doc_ptr, word, z, n_dk, n_wk, n_k)
                seeds = rng.integers(0, 2**31 - 1, size=n_sweeps)
                for t in range(n_sweeps):
                    sweep(doc_ptr, word, z, n_dk, n_wk, n_k, alpha, beta, 1, int(seeds[t]))
                    log_z, log_w = _gibbs.log_joint(n_dk, n_wk, n_k, alpha, beta)
                    trace[t] += (log_z + log_w) / C
                    kept = t - W
                    if kept >= 0 and (kept + 1) % thin == 0:
                        s = kept // thin
                        phi_sum[c] += ((n_wk + beta) / (n_k + V * beta)).T
                        ndk_sum[c] += n_dk
                        share[c, s] = n_k / max(word.size, 1)
                        lp[c, s], lw[c, s] = log_z + log_w, log_w
                    if (t + 1) % _CHUNK == 0 or t + 1 == n_sweeps:
                        bar.update((t % _CHUNK) + 1)
        phi = phi_sum / S
        for c in range(1, C):  # chains label topics arbitrarily: match each to the first
            perm = _align_topics(phi[0], phi[c])
            phi[c], ndk_sum[c], share[c] = phi[c][perm], ndk_sum[c][:, perm], share[c][:, perm]
        scale = share.mean(axis=1)[:, :, None] * max(word.size, 1) + V * beta  # mean topic sizes + V beta
        fit = _CollapsedGibbsFit(K, a, beta)
        fit.chain_components_ = phi * scale
        fit.components_ = phi.mean(axis=0) * scale.mean(axis=0)
        fit.doc_topic_counts_ = (ndk_sum / S).astype(np.float32)
        fit.draws_ = {"topic_share": share}
        fit.sample_stats_ = {"lp": lp, "log_p_words": lw}
        fit.infer_seed_ = int(rng.integers(0, 2**31 - 1))
        self.backend_ = fit
        self.n_iter_ = n_sweeps
        self.history_ = trace
        from ._rdpg import split_rhat

        rhat = float(split_rhat(lp[:, :, None])[0]) if C > 1 else np.nan
        self.converged_ = bool(C == 1 or rhat < 1.1)
        lengths = np.diff(doc_ptr)
        self.mean_doc_length_ = float(lengths.mean()) if lengths.size else 0.0
        if not self.converged_:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"{type(self).__name__}: the Gibbs chains have not mixed (split R-hat of the log joint "
                          f"{rhat:.3f} >= 1.1); increase n_warmup and n_draws.", ConvergenceWarning, stacklevel=4)

    def _fold_in(self, X, n_draws: int, seed: int, *, tokens: bool = False):
        """Fold-in Gibbs draws for ``X`` with each chain's topics fixed.

        Returns the document-topic counts ``(n_chains * n_draws, D, K)`` (chain
        major) and, with ``tokens``, the token layout and assignments
        ``(n_chains * n_draws, n_tokens)``.
        """
        fit = self.backend_
        doc_ptr, word, entry = _token_layout(X)
        C, K, _ = fit.chain_components_.shape
        alpha = np.full(K, fit.doc_topic_prior)
        rng = np.random.default_rng(seed)
        dtype = np.int32 if word.size < 2**31 else np.int64
        counts = np.zeros((C, n_draws, X.shape[0], K), dtype=dtype)
        z_out = np.zeros((C, n_draws if tokens else 0, word.size), dtype=np.int32)
        for c in range(C):
            phi_wk = np.ascontiguousarray((fit.chain_components_[c] / fit.chain_components_[c].sum(axis=1,
                                                                                                    keepdims=True)).T)
            z = rng.integers(0, K, size=word.size).astype(np.int32)
            _gibbs.fold_in(doc_ptr, word, z, phi_wk, alpha, _FOLD_IN_WARMUP, 1, counts[c], z_out[c],
                           int(rng.integers(0, 2**31 - 1)))
        counts = counts.reshape((C * n_draws,) + counts.shape[2:])
        if tokens:
            return counts, (doc_ptr, word, entry, z_out.reshape(C * n_draws, -1))
        return counts

    def _doc_counts(self, X) -> np.ndarray:
        """Fold-in document-topic counts of ``X`` for every kept draw of the fit (fixed seed)."""
        return self._fold_in(X, self.draws_["topic_share"].shape[1], self.backend_.infer_seed_)

    def _gibbs_posterior(self, counts: np.ndarray) -> FiniteMixture:
        alpha = self.backend_.doc_topic_prior
        return FiniteMixture(lambda s: Dirichlet(alpha + counts[s].astype(np.float64), method="mcmc"), counts.shape[0])

    def _plugin_log_likelihood(self, X, theta: np.ndarray) -> np.ndarray:
        """``sum_w n_dw log sum_k theta_dk phi_kw`` per document, for each row set of ``theta`` ``(..., D, K)``."""
        rows, cols, counts = _rows_cols_counts(X)
        beta = self.components_ / self.components_.sum(axis=1, keepdims=True)
        theta = np.asarray(theta)
        lead = theta.shape[:-2]
        flat = theta.reshape((-1,) + theta.shape[-2:])
        out = np.empty((flat.shape[0], X.shape[0]))
        for s, th in enumerate(flat):
            p = np.einsum("ik,ki->i", th[rows], beta[:, cols])
            out[s] = np.bincount(rows, weights=counts * np.log(p), minlength=X.shape[0])
        return out.reshape(lead + (X.shape[0],))

    def partial_fit(self, X: Any, y: Any = None) -> LDA:
        """Update the topics with one minibatch of documents (online variational Bayes).

        The first call starts a fit; later calls continue it, so a corpus can
        be streamed in pieces.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Word counts of the minibatch.
        y : None
            Ignored.

        Returns
        -------
        self
            The updated model.
        """
        first = not self.__sklearn_is_fitted__()
        if first:
            validate_params(self)
        if self.algorithm == "gibbs" or self._gibbs_fit():
            raise ValueError("partial_fit is online variational Bayes; it does not apply to algorithm='gibbs' "
                             "(use fit on the whole corpus).")
        X, _ = self._check_X(X, None, reset=first)
        if first:
            self.rng_ = as_generator(self.random_state)
            self.backend_ = self._backend(self.rng_)
        self.backend_.partial_fit(X)
        self.n_iter_ = getattr(self, "n_iter_", 0) if not first else 0
        self.n_iter_ += 1  # minibatches seen
        self.converged_ = False
        self.history_ = np.array([], dtype=np.float64)  # online minibatches: no training-set evaluation
        lengths = np.asarray(X.sum(axis=1)).ravel()
        seen = getattr(self, "_n_docs_seen", 0)
        mean = getattr(self, "mean_doc_length_", 0.0)
        self._n_docs_seen = seen + lengths.size
        self.mean_doc_length_ = float((mean * seen + lengths.sum()) / max(self._n_docs_seen, 1))
        return self

    def _gamma(self, X) -> np.ndarray:
        return self.backend_.transform(X, normalize=False)

    def _posterior(self, X, lengths) -> Dirichlet | FiniteMixture:
        if self._gibbs_fit():
            return self._gibbs_posterior(self._doc_counts(X))
        return Dirichlet(self._gamma(X), method="variational")

    def _log_likelihood(self, X, lengths) -> np.ndarray:
        if self._gibbs_fit():
            return self._plugin_log_likelihood(X, self._posterior(X, None).mean)
        return self._doc_bound(X, self._gamma(X))

    def _doc_bound(self, X, gamma: np.ndarray) -> np.ndarray:
        """Per-document terms of scikit-learn's variational bound."""
        e_log_theta = _e_log_dirichlet(gamma)
        e_log_beta = _e_log_dirichlet(self.components_)
        rows, cols, counts = _rows_cols_counts(X)
        words = np.bincount(rows, weights=counts * _token_log_norm(e_log_theta, e_log_beta, rows, cols),
                            minlength=X.shape[0])
        alpha, K = self.doc_topic_prior_, self.n_components
        prior = (((alpha - gamma) * e_log_theta).sum(axis=1) + (gammaln(gamma) - gammaln(alpha)).sum(axis=1)
                 + gammaln(alpha * K) - gammaln(gamma.sum(axis=1)))
        return words + prior

    def topic_term(self) -> float:
        """Return the corpus-level term ``E_q[log p(beta) - log q(beta)]`` of scikit-learn's bound.

        Returns
        -------
        float
            Add it to ``log_likelihood(X).sum()`` to get ``backend_.score(X)``.
        """
        self._check_fitted()
        if self._gibbs_fit():
            raise ValueError("topic_term is a term of the variational bound; this LDA was fitted by Gibbs sampling.")
        lam, eta = self.components_, self.topic_word_prior_
        e_log_beta = _e_log_dirichlet(lam)
        V = lam.shape[1]
        return float(((eta - lam) * e_log_beta).sum() + (gammaln(lam) - gammaln(eta)).sum()
                     + (gammaln(eta * V) - gammaln(lam.sum(axis=1))).sum())

    def _sample(self, n_samples, rng, doc_length=None):
        theta = sample_dirichlet(np.full(self.n_components, self.doc_topic_prior_), n_samples, rng)
        if doc_length is None:
            lengths = rng.poisson(self.mean_doc_length_, size=n_samples)
        else:
            lengths = np.broadcast_to(np.asarray(doc_length), (n_samples,))
            if np.any(lengths < 0) or np.any(lengths != np.round(lengths)):
                raise ValueError(f"'doc_length' must be non-negative integers; got {doc_length!r}.")
        beta = self.components_ / self.components_.sum(axis=1, keepdims=True)
        word_probs = theta @ beta
        X = np.stack([rng.multinomial(int(n), p / p.sum()) for n, p in zip(lengths, word_probs, strict=True)])
        return X, theta

    def sample(self, n_samples: int = 1, *, doc_length: Any = None,
               random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Generate documents: topic proportions from the prior, then word counts.

        Parameters
        ----------
        n_samples : int, default=1
            Number of documents.
        doc_length : int or array-like of int, optional
            Tokens per document; drawn from a Poisson with the training mean
            document length when ``None``.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Word counts.
        theta : ndarray of shape (n_samples, n_components)
            The topic proportions that generated them.
        """
        self._check_fitted()
        n_samples = check_n_samples(n_samples)
        return self._sample(n_samples, self._generator(random_state), doc_length)

    def transform(self, X: Any) -> np.ndarray:
        """Posterior mean topic proportions, as scikit-learn's ``transform`` (same as :meth:`embed`).

        Lets ``LDA`` sit inside a :class:`~sklearn.pipeline.Pipeline` before
        another estimator. The point estimate drops the posterior's spread;
        :meth:`posterior` keeps it.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Word counts.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to one.
        """
        return self.embed(X)

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit the topics to ``X``, then return its posterior mean topic proportions.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Word counts.
        y : None
            Ignored.

        Returns
        -------
        ndarray of shape (n_samples, n_components)
            Rows sum to one.
        """
        return self.fit(X).transform(X)

    def __sklearn_tags__(self):  # noqa: D105
        from sklearn.utils import TransformerTags

        tags = super().__sklearn_tags__()
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64"])
        return tags

    # -- LDA-specific views ---------------------------------------------------------------
    def topic_posterior(self) -> Dirichlet:
        r"""Return the posterior over the topic-word matrix: a Dirichlet per topic.

        Variational fits: the variational Dirichlets (``components_``). Gibbs
        fits: :math:`\mathrm{Dirichlet}(\eta + \bar n_{kw})`, the exact
        conditional posterior of the topics given topic counts
        :math:`\bar n_{kw}` averaged over the kept draws of all chains (topics
        matched across chains); its mean is the posterior mean topics. It
        leaves out the spread of the counts between draws, small next to the
        Dirichlet's own when the topics are well identified.

        Returns
        -------
        Dirichlet
            Batch shape ``(n_components,)``, event shape ``(n_features,)``.
        """
        self._check_fitted()
        method = "mcmc" if self._gibbs_fit() else "variational"
        return Dirichlet(self.components_, method=method, random_state=child_generator(self.rng_))

    def training_posterior(self) -> FiniteMixture:
        r"""Posterior over the training documents' topic proportions from the fit's own draws (Gibbs fits).

        Given a draw of the training tokens' topics, document :math:`d`'s
        proportions are exactly :math:`\mathrm{Dirichlet}(\alpha + n_{dk})`. This
        returns, per chain, that Dirichlet at the counts averaged over the
        chain's kept draws (which leaves out the spread of the counts between
        draws), as an equal mixture over the chains; unlike
        :meth:`posterior`, the topics are not held fixed.

        Returns
        -------
        FiniteMixture
            Batch shape ``(n_train_docs,)``, event shape ``(n_components,)``.
        """
        self._check_fitted()
        if not self._gibbs_fit():
            raise ValueError("training_posterior needs a Gibbs fit (algorithm='gibbs'); a variational fit's "
                             "posterior(X_train) is its training posterior.")
        fit = self.backend_
        counts = fit.doc_topic_counts_.astype(np.float64)
        post = FiniteMixture(lambda c: Dirichlet(fit.doc_topic_prior + counts[c], method="mcmc"), counts.shape[0])
        post._rng = child_generator(self.rng_)
        return post

    def token_topic_probs(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Variational posterior ``q(z = k)`` of the topic of each word type in each document.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Word counts.

        Returns
        -------
        rows, cols, counts : ndarray of shape (nnz,)
            Document, word and count of each non-zero entry of ``X``.
        probs : ndarray of shape (nnz, n_components)
            ``phi_dwk``, proportional to ``exp(E log theta_dk + E log beta_kw)``;
            for Gibbs fits, the share of the fold-in draws (all chains) that
            give the entry's tokens each topic.
        """
        X, _ = self._check_input(X, None)
        if self._gibbs_fit():  # the share of draws giving each token of an entry each topic
            rows, cols, counts = _rows_cols_counts(sp.csr_matrix(X))
            per_chain = self.draws_["topic_share"].shape[1]
            summed = self._token_draws(X, per_chain, self.backend_.infer_seed_, total=True)
            n_draws = per_chain * self.draws_["topic_share"].shape[0]
            probs = summed / np.maximum(counts[:, None] * n_draws, 1)
            return rows, cols, counts.astype(np.int64), probs
        e_log_theta = _e_log_dirichlet(self._gamma(X))
        e_log_beta = _e_log_dirichlet(self.components_)
        rows, cols, counts = _rows_cols_counts(X)
        logits = e_log_theta[rows] + e_log_beta[:, cols].T
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return rows, cols, counts.astype(np.int64), probs

    def sample_token_topics(self, X: Any, n_samples: int = 1, *, random_state: Any = None) -> TokenTopicDraws:
        """Draw the topic assignment of every word token from the posterior.

        Variational fits: each word type's ``n_dw`` tokens are split among
        topics by a multinomial with probabilities ``phi_dw`` (the mean-field
        posterior treats tokens independently). Gibbs fits: joint draws of all
        tokens' topics by fold-in Gibbs sampling (topics fixed at each chain's
        posterior mean, 20 burn-in sweeps, then consecutive sweeps spread
        evenly over the chains), so tokens of one document are dependent as
        in the exact posterior.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Word counts.
        n_samples : int, default=1
            Number of draws.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only.

        Returns
        -------
        TokenTopicDraws
            ``rows``, ``cols``, ``counts`` of the non-zero entries of ``X`` and
            ``draws`` of shape ``(n_samples, nnz, n_components)``, which sum to
            ``counts`` over topics; ``to_dense`` expands them.
        """
        n_samples = check_n_samples(n_samples)
        if self._gibbs_fit():
            Xc, _ = self._check_input(X, None)
            rows, cols, counts = _rows_cols_counts(sp.csr_matrix(Xc))
            rng = self._generator(random_state)
            per_chain = -(-n_samples // self.backend_.chain_components_.shape[0])
            draws = self._token_draws(Xc, per_chain, int(rng.integers(0, 2**31 - 1)))
            pick = np.sort(rng.choice(draws.shape[0], size=n_samples, replace=False))
            return TokenTopicDraws(rows, cols, counts.astype(np.int64), draws[pick])
        rows, cols, counts, probs = self.token_topic_probs(X)
        rng = self._generator(random_state)
        draws = rng.multinomial(counts[None, :], probs[None, :, :], size=(n_samples, counts.size))
        return TokenTopicDraws(rows, cols, counts, draws)

    def completion_perplexity(self, X: Any, *, random_state: Any = None) -> float:
        """Document-completion perplexity: infer from half of each document, score the other half.

        Each token of each document goes to the observed half or the held-out
        half with probability 1/2. The topic proportions are inferred from the
        observed half (their variational posterior mean), and the held-out
        tokens are scored under ``theta_d @ beta`` with ``beta`` the normalised
        topics (Gibbs fits: ``theta`` the posterior mean of fold-in Gibbs on
        the observed half, ``beta`` the posterior mean topics). Lower is
        better; the same protocol applies to any topic model, which makes the
        number comparable across tools.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Held-out word counts.
        random_state : None, int or numpy.random.Generator, optional
            Seed of the random split.

        Returns
        -------
        float
            ``exp(-(sum of held-out token log-probabilities) / (number of held-out tokens))``.
        """
        X, _ = self._check_input(X, None)
        rng = self._generator(random_state)
        rows, cols, counts = _rows_cols_counts(X)
        seen = rng.binomial(counts.astype(np.int64), 0.5)
        held = counts - seen
        shape = X.shape
        observed = sp.csr_matrix((seen.astype(np.float64), (rows, cols)), shape=shape)
        theta = np.asarray(self._posterior(observed, None).mean)
        beta = self.components_ / self.components_.sum(axis=1, keepdims=True)
        keep = held > 0
        p = np.einsum("ik,ki->i", theta[rows[keep]], beta[:, cols[keep]])
        total = held[keep].sum()
        if total == 0:
            raise ValueError("X has no held-out tokens to score (every document has fewer than two tokens).")
        return float(np.exp(-(held[keep] * np.log(p)).sum() / total))

    def top_words(self, n_words: int = 10, *, feature_names: Any = None, level: float = 0.9) -> list[list[tuple]]:
        """Most probable words of each topic, with credible intervals of their probabilities.

        Parameters
        ----------
        n_words : int, default=10
            Words per topic.
        feature_names : array-like of str or a fitted vectoriser, optional
            Vocabulary; a vectoriser's ``get_feature_names_out()`` is used, and
            ``feature_names_in_`` when the model was fitted on a DataFrame.
            Word indices otherwise.
        level : float, default=0.9
            Probability inside each interval.

        Returns
        -------
        list of list of tuple
            For each topic, ``(word, mean, lower, upper)`` tuples, most
            probable first.
        """
        post = self.topic_posterior()
        if hasattr(feature_names, "get_feature_names_out"):
            feature_names = feature_names.get_feature_names_out()
        if feature_names is None:
            feature_names = getattr(self, "feature_names_in_", None)
        names = np.arange(self.components_.shape[1]) if feature_names is None else np.asarray(feature_names)
        if names.shape[0] != self.components_.shape[1]:
            raise ValueError(f"feature_names has {names.shape[0]} entries but the model has "
                             f"{self.components_.shape[1]} words.")
        mean = post.mean
        lower, upper = post.credible_interval(level)
        out = []
        for k in range(self.n_components):
            top = np.argsort(mean[k])[::-1][:n_words]
            out.append([(names[w].item() if hasattr(names[w], "item") else names[w], float(mean[k, w]),
                         float(lower[k, w]), float(upper[k, w])) for w in top])
        return out

    # -- ArviZ hooks ---------------------------------------------------------------------
    def _arviz_dims(self):
        return {"theta": ("doc", "topic"), "x": ("doc", "term"), "topic_share": ("topic",),
                "topic_word": ("topic", "term")}

    def _token_draws(self, X, per_chain: int, seed: int, *, total: bool = False) -> np.ndarray:
        """Fold-in token draws as ``(n_chains * per_chain, nnz, K)`` counts per non-zero entry of ``X``.

        With ``total``, their sum over draws, ``(nnz, K)``.
        """
        _, (_, _, entry, z) = self._fold_in(X, per_chain, seed, tokens=True)
        K = self.n_components
        nnz = sp.csr_matrix(X).nnz
        flat = entry[None, :] * K + z
        if total:
            return np.bincount(flat.ravel(), minlength=nnz * K).reshape(nnz, K)
        return np.stack([np.bincount(f, minlength=nnz * K).reshape(nnz, K) for f in flat]).astype(np.int64)

    def _sample_parameters(self, n_samples, rng):
        """Topic-word matrices: a chain at random, then its Dirichlet given the chain's mean counts."""
        comps = self.backend_.chain_components_
        chains = rng.integers(0, comps.shape[0], size=n_samples)
        return {"topic_word": np.stack([sample_dirichlet(comps[c], 1, rng)[0] for c in chains])}

    def _pointwise_log_likelihood(self, X, lengths, params):
        """Gibbs fits: ``log p(w_d | theta_d^(s), phi_c)`` for the draws ``to_arviz`` keeps; else per document."""
        if not self._gibbs_fit():
            return self._log_likelihood(X, lengths)
        counts = self._doc_counts(X)
        C, S = self.draws_["topic_share"].shape[:2]
        n_kept = 0 if params is None else next(iter(params.values())).shape[0] // C
        keep = np.unique(np.linspace(0, S - 1, n_kept or S).round().astype(np.int64))  # as the bridge keeps them
        index = (np.arange(C)[:, None] * S + keep[None, :]).ravel()
        alpha = self.backend_.doc_topic_prior
        theta = counts[index] + alpha
        theta /= theta.sum(axis=-1, keepdims=True)
        return self._plugin_log_likelihood(X, theta)

    def _posterior_predictive(self, X, latents, params, rng):
        """Replicated documents of the observed lengths, one per draw of theta (skipped when too large)."""
        n_draws, n_docs, _ = latents.shape
        V = self.components_.shape[1]
        if n_draws * n_docs * V > _MAX_PREDICTIVE_ENTRIES:
            return None
        lengths = np.asarray(X.sum(axis=1)).ravel().astype(np.int64)
        beta = self.components_ / self.components_.sum(axis=1, keepdims=True)
        probs = latents @ beta
        probs /= probs.sum(axis=-1, keepdims=True)
        return rng.multinomial(np.broadcast_to(lengths, (n_draws, n_docs)), probs).astype(np.float64)


LDA.__doc__ = fill(LDA.__doc__)
