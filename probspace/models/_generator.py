"""Posterior over the latent code of any torch generator g(z), by NUTS per observation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._base import LatentModel
from .._docstrings import fill
from .._tags import ModelTags
from .._validation import Interval, Options
from ..posteriors._empirical import Empirical

__all__ = ["GeneratorPosterior"]


class GeneratorPosterior(LatentModel):
    r"""Posterior over the latent codes of any torch generator, by MCMC (Pyro NUTS) per observation.

    The model: :math:`z_i \sim \mathcal{N}(0, I_d)` and :math:`x_i \mid z_i \sim
    \mathcal{N}(g(z_i), \sigma^2 I)` (``likelihood="gaussian"``, ``noise_scale``
    :math:`\sigma`) or :math:`\mathrm{Bernoulli}(\mathrm{sigmoid}(g(z_i)))`
    (``likelihood="bernoulli"``: ``g`` returns logits), for a fixed generator
    ``g`` (a GAN's generator, a VAE's decoder, any ``torch.nn.Module`` or
    callable mapping a ``(n, d)`` tensor to ``(n, D)``). Nothing is trained:
    ``fit`` only checks that ``g`` maps codes to ``X``'s width.
    ``posterior(X)`` runs ``n_chains`` NUTS chains over the codes of all rows
    of ``X`` (they are independent a posteriori; one joint run with a diagonal
    mass matrix) and returns an :class:`~probspace.posteriors.Empirical` of the
    draws, by chain: mean, variance, intervals, credible regions; ``log_prob``
    raises (a set of draws has no density).

    Parameters
    ----------
    generator : torch.nn.Module or callable
        ``g``: maps a float tensor of codes ``(n, n_components)`` to ``(n, n_features)``.
    n_components : int, default=2
        Code dimension ``d``.
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        Observation model around ``g(z)`` (logits for Bernoulli).
    noise_scale : float, default=1.0
        Gaussian observation standard deviation :math:`\sigma`.
    n_chains : int, default=2
        MCMC chains (R-hat and ESS need at least two).
    n_warmup : int, default=300
        Warm-up iterations per chain (step size and mass matrix adaptation).
    n_draws : int, default=500
        Kept draws per chain.
    target_accept : float, default=0.8
        NUTS target acceptance probability.
    sampler : {"nuts"}, default="nuts"
        The MCMC kernel (Pyro's NUTS).
    {random_state}

    Attributes
    ----------
    draws_ : dict of str to ndarray
        ``{{"z": (n_chains, n_draws, n_obs, d)}}``: the chains of the latest ``posterior`` call.
    sample_stats_ : dict of str to ndarray
        Per-draw sampler statistics of that call (``diverging``, ``acceptance_rate``, ``step_size``, ``lp``,
        ``energy``), each ``(n_chains, n_draws)``.
    {common_attributes}

    See Also
    --------
    probspace.VAE : Its decoder is a generator; its encoder the amortised approximation to this posterior.
    probspace.posteriors.Empirical : The posterior returned.

    Notes
    -----
    ``fit`` learns nothing (``history_`` is empty, ``backend_`` is the
    generator). ``log_likelihood`` raises ``NotImplementedError``: the
    marginal ``p(x)`` would need an integral over codes that this class does
    not estimate.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from probspace import GeneratorPosterior
    >>> g = torch.nn.Linear(2, 5)
    >>> X = np.random.default_rng(0).normal(size=(3, 5))
    >>> gp = GeneratorPosterior(g, n_warmup=50, n_draws=50, random_state=0).fit(X)
    >>> gp.posterior(X).draws.shape
    (2, 50, 3, 2)
    """

    _latent_name = "z"
    _tags = ModelTags(exact_posterior=False, exact_log_likelihood=False, density=False)
    _parameter_constraints = {
        "generator": [None, Callable],
        "n_components": [Interval("int", 1, None)],
        "likelihood": [Options("gaussian", "bernoulli")],
        "noise_scale": [Interval("real", 0, None, "neither")],
        "n_chains": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 1, None)],
        "n_draws": [Interval("int", 1, None)],
        "target_accept": [Interval("real", 0, 1, "neither")],
        "sampler": [Options("nuts")],
        "random_state": ["random_state"],
    }

    def __init__(self, generator: Any = None, *, n_components: int = 2, likelihood: str = "gaussian",
                 noise_scale: float = 1.0, n_chains: int = 2, n_warmup: int = 300, n_draws: int = 500,
                 target_accept: float = 0.8, sampler: str = "nuts", random_state: Any = None) -> None:
        self.generator = generator
        self.n_components = n_components
        self.likelihood = likelihood
        self.noise_scale = noise_scale
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.target_accept = target_accept
        self.sampler = sampler
        self.random_state = random_state

    # -- torch helpers --------------------------------------------------------------------
    def _dtype(self):
        import torch

        params = getattr(self.generator, "parameters", None)
        first = next(iter(params()), None) if callable(params) else None
        return first.dtype if first is not None else torch.float32

    def _g(self, z):
        return self.generator(z.to(self._dtype()))

    def _means(self, z: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self._g(torch.as_tensor(np.asarray(z, dtype=np.float64).reshape(-1, self.n_components)))
            if self.likelihood == "bernoulli":
                out = torch.sigmoid(out)
        return out.double().numpy().reshape(np.shape(z)[:-1] + (-1,))

    # -- hooks ------------------------------------------------------------------------------
    def _fit(self, X, lengths, rng) -> None:
        if self.generator is None:
            raise ValueError("GeneratorPosterior needs a generator: a torch module or callable mapping codes "
                             "(n, n_components) to data (n, n_features).")
        width = self._means(np.zeros((1, self.n_components))).shape[-1]
        if width != X.shape[1]:
            raise ValueError(f"the generator maps {self.n_components}-D codes to {width} features, but X has "
                             f"{X.shape[1]}.")
        if self.likelihood == "bernoulli" and X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError("likelihood='bernoulli' needs X in [0, 1].")
        self.backend_ = self.generator
        self.history_ = np.zeros(0)
        self.n_iter_ = 0
        self.converged_ = True

    def _get_parameters(self) -> dict[str, Any]:
        return {}

    def _log_lik_torch(self, X):
        import torch

        Xt = torch.as_tensor(X, dtype=torch.float64)
        d = self.n_components

        def log_likelihood(values):
            out = self._g(values["z"].reshape(-1, d)).double()
            if self.likelihood == "bernoulli":
                return -torch.nn.functional.binary_cross_entropy_with_logits(out, Xt, reduction="sum")
            return torch.distributions.Normal(out, self.noise_scale).log_prob(Xt).sum()

        return log_likelihood

    def _posterior(self, X, lengths) -> Empirical:
        import torch

        from ..inference._nuts import Site, run_nuts

        rng = np.random.default_rng(self.rng_.integers(0, 2**63 - 1))
        n, d = X.shape[0], self.n_components
        prior = torch.distributions.Normal(torch.zeros((), dtype=torch.float64),
                                           torch.ones((), dtype=torch.float64))
        site = Site("z", (n, d), "real", prior)
        inits = [{"z": rng.normal(size=(n, d)) * 0.5} for _ in range(self.n_chains)]
        draws, stats = run_nuts([site], self._log_lik_torch(X), inits, self.n_warmup, self.n_draws, rng,
                                target_accept=self.target_accept)
        self._last = ({"z": draws["z"]}, stats)
        return Empirical(draws["z"], random_state=rng)

    @property
    def draws_(self) -> dict[str, np.ndarray]:
        """Chains of the latest ``posterior`` call, ``{"z": (n_chains, n_draws, n_obs, d)}``."""
        return self._last[0] if hasattr(self, "_last") else None

    @property
    def sample_stats_(self) -> dict[str, np.ndarray]:
        """Per-draw sampler statistics of the latest ``posterior`` call."""
        return self._last[1] if hasattr(self, "_last") else None

    def _log_likelihood(self, X, lengths) -> np.ndarray:
        raise NotImplementedError(
            "GeneratorPosterior does not estimate the marginal log p(x) (an integral over codes); it gives the "
            "posterior over codes. Use VAE.log_likelihood (an IWAE estimate) for a fitted VAE's decoder.")

    def _sample(self, n_samples, rng):
        z = rng.standard_normal((n_samples, self.n_components))
        mean = self._means(z)
        if self.likelihood == "bernoulli":
            return (rng.random(mean.shape) < mean).astype(np.float64), z
        return mean + self.noise_scale * rng.standard_normal(mean.shape), z

    # -- ArviZ hooks --------------------------------------------------------------------------
    def _arviz_dims(self):
        return {"z": ("obs", "latent_dim"), "x": ("obs", "feature")}

    def _pointwise_log_likelihood(self, X, lengths, params, **cond):
        return None  # no marginal density is estimated

    def _posterior_predictive(self, X, latents, params, rng):
        return self._means(latents)


GeneratorPosterior.__doc__ = fill(GeneratorPosterior.__doc__)
