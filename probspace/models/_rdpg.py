"""Random dot product graph: a posterior over the latent positions of a network's nodes."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._base import LatentModel
from .._docstrings import fill
from .._tags import ModelTags
from .._validation import Interval, Options
from ..inference import _rdpg
from ..posteriors import Empirical

__all__ = ["RDPG"]

_CHUNK = 50  # sweeps per compiled call (progress bar granularity; part of what a seed reproduces)
_PROGRESS_WORK = 4e9  # dyad visits (N^2 * chains * sweeps) above which progress=None shows a bar (~10 s)
_PREDICTIVE_MAX = 2e7  # entries of replicated adjacency matrices to_arviz writes at most


class RDPG(LatentModel):
    r"""Random dot product graph with a posterior over every node's latent position, by MCMC.

    The model for a simple undirected graph on :math:`N` nodes: node
    :math:`i` has a position :math:`x_i \in \mathbb{R}^d` (``d =
    n_components``), and each dyad :math:`i < j` is an edge independently
    with probability :math:`P_{ij} = x_i \cdot x_j`. The prior is
    :math:`\mathcal{N}(0, s^2 I_d)` per node, truncated to the model's
    support: every dot product in :math:`[0, 1]`. Positions are identifiable only up to an
    orthogonal transformation (:math:`x \mapsto x R` leaves every
    :math:`P_{ij}` unchanged), so every draw is aligned by orthogonal
    Procrustes to a fixed reference: the adjacency spectral embedding
    ``ase_``, the deterministic estimate of the same positions.
    :meth:`posterior` returns the aligned draws as an
    :class:`~probspace.posteriors.Empirical` posterior (chains kept): joint
    draws of all positions, ``mean``, ``variance``, ``interval`` and
    per-node elliptical ``credible_region``.

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension ``d`` (must be below the number of nodes).
    prior_scale : float, default=1.0
        Standard deviation ``s`` of the Gaussian prior on each coordinate.
    sampler : {"metropolis"}, default="metropolis"
        Metropolis-within-Gibbs: a random-walk move of one node's whole
        position at a time, compiled with numba, with per-node step sizes
        adapted during warmup (towards acceptance 0.35).
    n_chains : int, default=4
        Independent chains, each started near the spectral embedding.
    n_draws : int, default=1000
        Sweeps kept per chain (a sweep updates every node once).
    n_warmup : int, default=1000
        Sweeps discarded per chain (step sizes adapt during them).
    {random_state}
    progress : bool or None, default=None
        Show a progress bar during the fit; ``None`` shows one when the fit
        is expected to take more than about ten seconds.

    Attributes
    ----------
    ase_ : ndarray of shape (n_nodes, n_components)
        Adjacency spectral embedding (the deterministic embedding, and the
        reference of the Procrustes alignment).
    positions_ : ndarray of shape (n_nodes, n_components)
        Posterior mean of the aligned positions (``posterior(A).mean``).
    draws_ : dict of str to ndarray
        ``"position"``: the aligned draws, ``(n_chains, n_draws, n_nodes, n_components)``.
    sample_stats_ : dict of str to ndarray
        Per-draw ``total_log_likelihood`` (``log p(A | positions)``) and
        ``acceptance_rate`` (share of nodes moved in the sweep), each
        ``(n_chains, n_draws)``.
    edge_probabilities_ : ndarray of shape (n_nodes, n_nodes)
        Posterior predictive edge probabilities :math:`E[P_{ij} \mid A]`
        (averaged over every kept sweep, zero diagonal).
    adjacency_ : ndarray of int8, shape (n_nodes, n_nodes)
        The fitted graph (diagonal set to zero).
    step_size_ : ndarray of shape (n_chains, n_nodes)
        Adapted random-walk scale of each node's proposals.
    n_features_in_ : int
        Number of nodes of the fitted graph.
    n_iter_ : int
        Sweeps run per chain (``n_warmup + n_draws``).
    converged_ : bool
        Whether the largest split R-hat of the aligned coordinates is below 1.1.
    history_ : ndarray of shape (n_warmup + n_draws,)
        ``log p(A | positions)`` after every sweep, averaged over chains.
    rng_ : numpy.random.Generator
        The model's random stream; calls without ``random_state`` draw from it.
    backend_ : None
        No backend object: the sampler is probspace's own.

    See Also
    --------
    probspace.posteriors.Empirical : The sample-based posterior over positions.

    Notes
    -----
    **Why a random dot product graph** (identity link) rather than a
    logistic latent-space model: under it the adjacency spectral embedding
    is a consistent estimate of the very positions the posterior is about
    (Athreya et al., 2018, JMLR 18(226)), so the two can be put side by side
    on the same axes. The support constraint matters: with dot products
    merely clipped into :math:`[0, 1]` the likelihood is flat outside it,
    and a hub's position runs off until only the prior stops it (a hub's
    edges all get probability one, its non-edges zero). Probabilities are
    clipped to :math:`[10^{-6}, 1 - 10^{-6}]` inside the logarithms only.

    **Input.** ``A`` (passed as ``X``) is the dense ``(n_nodes, n_nodes)``
    adjacency matrix of a simple undirected graph: square, symmetric, 0/1,
    finite; anything else raises a ``ValueError`` naming the problem (a
    weighted graph must be binarised first, e.g. ``(W > 0)``). **Self-loops
    are ignored**: the model has no loops, the diagonal is never read, so a
    graph with loops fits as the same graph without them.

    **Which data the methods take.** Positions belong to the nodes of the
    fitted graph: ``posterior`` and ``embed`` accept only that graph and
    raise a ``ValueError`` for any other (fit a new model to a new graph; no
    out-of-sample extension is offered). ``log_likelihood`` takes any graph
    on the same nodes (the fitted one, or held-out edges observed again, such
    as a second snapshot): node ``i`` gets :math:`\sum_{j \ne i} \log
    p(A_{ij} \mid A_\text{fit})`, each dyad scored by its posterior
    predictive probability ``edge_probabilities_`` (a Monte Carlo estimate;
    every dyad counts in both its nodes' terms). ``sample(n)`` generates a
    new graph on ``n`` nodes whose positions are drawn from the fitted
    latent-position distribution (the nodes of one posterior draw, picked
    with replacement): ``(A_new, Z)`` of shapes ``(n, n)`` and ``(n, d)``.
    ``to_arviz`` writes the chains of aligned positions, the per-draw node
    log-likelihoods and, for graphs small enough (at most ``2e7`` entries
    over all draws), replicated adjacency matrices.
    Example: ``examples/networks/plot_karate_positions.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import RDPG
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.uniform(0.3, 0.7, size=(30, 2))
    >>> A = np.triu(rng.random((30, 30)) < Z @ Z.T, 1)
    >>> A = (A | A.T).astype(float)
    >>> model = RDPG(2, n_chains=2, n_draws=100, n_warmup=100, random_state=0).fit(A)
    >>> post = model.posterior(A)
    >>> post.sample(5).shape
    (5, 30, 2)
    >>> post.credible_region(0.9).radius2.shape
    (30,)
    """

    _latent_name = "position"
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "prior_scale": [Interval("real", 0, None, "neither")],
        "sampler": [Options("metropolis")],
        "n_chains": [Interval("int", 1, None)],
        "n_draws": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 0, None)],
        "random_state": ["random_state"],
        "progress": [None, "boolean"],
    }
    _tags = ModelTags(exact_posterior=False, exact_log_likelihood=False, min_samples=2)

    # Fit recipe for probspace.testing.
    _conformance_params = {"n_chains": 2, "n_draws": 100, "n_warmup": 100}
    _conformance_alt_params = {"n_components": 1, "prior_scale": 2.0, "n_chains": 1, "progress": False}
    _expected_failures = {
        "check_posterior_shapes": "the posterior is a set of MCMC draws (Empirical): it defines no density, so "
                                  "log_prob and entropy raise NotImplementedError (draw shapes are tested in "
                                  "tests/models/test_rdpg.py)",
        "check_generative_sample": "sample(n) generates a graph on n new nodes, an (n, n) adjacency matrix, not n "
                                   "rows over the fitted nodes; log_likelihood scores graphs on the fitted nodes",
    }

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        return _simulated_graph(rng, 30), None

    def __init__(self, n_components: int = 2, *, prior_scale: float = 1.0, sampler: str = "metropolis",
                 n_chains: int = 4, n_draws: int = 1000, n_warmup: int = 1000, random_state: Any = None,
                 progress: bool | None = None) -> None:
        self.n_components = n_components
        self.prior_scale = prior_scale
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.random_state = random_state
        self.progress = progress

    def _get_parameters(self) -> dict[str, Any]:
        return {"positions_": self.positions_, "draws_['position']": self.draws_["position"]}

    # -- input -------------------------------------------------------------------
    def _adjacency(self, X: np.ndarray, where: str) -> np.ndarray:
        """Check that validated ``X`` is a square, symmetric 0/1 adjacency matrix; return it as int8, loops removed."""
        name = type(self).__name__
        if X.ndim != 2 or X.shape[0] != X.shape[1]:
            raise ValueError(f"{name}.{where}: the adjacency matrix X must be square, one row and one column per "
                             f"node; got shape {X.shape} ({X.shape[0]} rows, {X.shape[1]} columns).")
        binary = (X == 0) | (X == 1)
        if not binary.all():
            i, j = np.argwhere(~binary)[0]
            raise ValueError(f"{name}.{where}: the adjacency matrix X must hold only 0 and 1 (an unweighted graph; "
                             f"binarise weights with (X > 0)); X[{i}, {j}] = {float(X[i, j]):g}.")
        A = X.astype(np.int8)
        np.fill_diagonal(A, 0)  # self-loops are ignored
        asym = A != A.T
        if asym.any():
            i, j = np.argwhere(asym)[0]
            raise ValueError(f"{name}.{where}: the adjacency matrix X must be symmetric (an undirected graph); "
                             f"X[{i}, {j}] = {A[i, j]} but X[{j}, {i}] = {A[j, i]}.")
        return A

    def _fitted_graph(self, X: np.ndarray, where: str) -> np.ndarray:
        A = self._adjacency(X, where)
        if not np.array_equal(A, self.adjacency_):
            n = int(np.count_nonzero(A != self.adjacency_)) // 2
            raise ValueError(
                f"{type(self).__name__}.{where}: X must be the fitted graph: posterior positions belong to the "
                f"nodes of the graph passed to fit, given its edges, and this graph differs from it in {n} dyads. "
                "Fit a new model to a new graph (log_likelihood scores other graphs on the same nodes)."
            )
        return A

    # -- hooks ---------------------------------------------------------------------
    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        A = self._adjacency(X, "fit")
        N, d = A.shape[0], self.n_components
        if d >= N:
            raise ValueError(f"n_components={d} must be below the number of nodes of the graph (n_nodes={N}).")
        precision = 1.0 / self.prior_scale**2
        ase = _rdpg.adjacency_spectral_embedding(A, d)
        log_step0 = _rdpg.initial_log_steps(A, ase, precision)
        jitter = 0.05 * max(float(np.sqrt(np.mean(ase**2))), 0.1)
        C, W, D = self.n_chains, self.n_warmup, self.n_draws
        n_total = W + D
        p_sum = np.zeros((N, N))
        bar = None
        show = self.progress if self.progress is not None else float(N) ** 2 * C * n_total > _PROGRESS_WORK
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=C * n_total, desc="RDPG", unit="sweep", leave=False)
        chains, steps = [], []
        try:
            for c in range(C):
                state = _rdpg.support_start(ase, rng, jitter)
                log_step = log_step0.copy()
                parts, done = [], 0
                while done < n_total:
                    n = min(_CHUNK, n_total - done)
                    keep = max(0, done + n - W) - max(0, done - W)
                    parts.append(_rdpg.run_chain(A, state, log_step, precision, n, keep, done, W, rng, p_sum))
                    done += n
                    if bar is not None:
                        bar.set_postfix(chain=c + 1)
                        bar.update(n)
                chains.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
                steps.append(np.exp(log_step[:N]))
        finally:
            if bar is not None:
                bar.close()
        raw = np.stack([ch["positions"] for ch in chains])  # (C, D, N, d)
        aligned = _rdpg.procrustes_align(raw, ase)
        P = (p_sum + p_sum.T) / (2.0 * C * D)
        np.fill_diagonal(P, 0.0)
        self.adjacency_ = A
        self.ase_ = ase
        self.draws_ = {"position": aligned}
        self.positions_ = aligned.mean(axis=(0, 1))
        self.edge_probabilities_ = P
        self.sample_stats_ = {"total_log_likelihood": np.stack([ch["log_likelihood"] for ch in chains]),
                              "acceptance_rate": np.stack([ch["acceptance_rate"] for ch in chains])}
        self.step_size_ = np.stack(steps)
        self.history_ = np.mean([ch["trace"] for ch in chains], axis=0)
        self.n_iter_ = n_total
        rhat = split_rhat(aligned.reshape(C, D, -1))
        self.converged_ = bool(np.all(rhat < 1.1))
        if not self.converged_:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"{type(self).__name__}: the chains have not mixed (largest split R-hat of the aligned "
                          f"positions {np.nanmax(rhat):.3f} >= 1.1); increase n_warmup and n_draws.",
                          ConvergenceWarning, stacklevel=3)
        self.backend_ = None

    def _posterior(self, X: np.ndarray, lengths: None) -> Empirical:
        self._fitted_graph(X, "posterior")
        return Empirical(self.draws_["position"], event_ndim=1)

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        A = self._adjacency(X, "log_likelihood")
        P = np.clip(self.edge_probabilities_, _rdpg.EPS, 1.0 - _rdpg.EPS)
        terms = np.where(A == 1, np.log(P), np.log1p(-P))
        np.fill_diagonal(terms, 0.0)
        return terms.sum(axis=1)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        flat = self.draws_["position"].reshape((-1,) + self.draws_["position"].shape[2:])
        draw = flat[rng.integers(0, flat.shape[0])]
        Z = draw[rng.integers(0, draw.shape[0], size=n_samples)]
        A = _rdpg.sample_graphs(_rdpg.edge_probabilities(Z), rng)
        return A.astype(np.float64), Z

    # -- ArviZ hooks -------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"position": ("node", "latent_dim"), "x": ("node", "node_bis")}

    def _pointwise_log_likelihood(self, X, lengths, params):
        if params is None:
            return self._log_likelihood(X, lengths)
        A = self._adjacency(X, "to_arviz")
        return _rdpg.node_log_likelihoods(A, np.ascontiguousarray(params["position"]))

    def _posterior_predictive(self, X, latents, params, rng):
        n_draws, N = latents.shape[:2]
        if float(n_draws) * N * N > _PREDICTIVE_MAX:
            return None
        return np.stack([_rdpg.sample_graphs(_rdpg.edge_probabilities(z), rng) for z in latents])


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Split R-hat (Gelman et al., BDA3) of each coordinate of ``(n_chains, n_draws, n_coords)`` draws.

    Parameters
    ----------
    draws : ndarray of shape (n_chains, n_draws, n_coords)
        MCMC draws by chain.

    Returns
    -------
    ndarray of shape (n_coords,)
        NaN where a coordinate does not vary, or with fewer than 4 draws per chain.
    """
    C, S = draws.shape[:2]
    half = S // 2
    if half < 2:
        return np.full(draws.shape[2:], np.nan)
    split = np.concatenate([draws[:, :half], draws[:, S - half:]], axis=0)  # (2C, half, K)
    means = split.mean(axis=1)
    within = split.var(axis=1, ddof=1).mean(axis=0)
    between = half * means.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_plus = (half - 1) / half * within + between / half
        return np.sqrt(var_plus / within)


def _simulated_graph(rng: np.random.Generator, n_nodes: int) -> np.ndarray:
    """Draw a graph from a 2-D RDPG with positions spread over the positive quadrant (radii 0.5 to 0.9)."""
    angle = rng.uniform(0.0, np.pi / 2, n_nodes)
    radius = rng.uniform(0.5, 0.9, n_nodes)
    Z = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return _rdpg.sample_graphs(_rdpg.edge_probabilities(Z), rng).astype(np.float64)


RDPG.__doc__ = fill(RDPG.__doc__)
