"""Posterior over the latent code of any torch generator g(z), by NUTS per observation."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from .._base import LatentModel
from .._docstrings import fill
from .._tags import ModelTags
from .._validation import Interval, Options
from ..posteriors._empirical import Empirical

__all__ = ["GeneratorPosterior"]

# The conformance suite's generator: a fixed linear map from 2-D codes to 6 features (logits for Bernoulli).
_CONFORMANCE_W = np.array([[1.5, 0.0], [0.0, 1.5], [1.0, -1.0], [-1.0, 1.0], [0.8, 0.8], [-0.8, 0.4]])
_CONFORMANCE_B = np.array([0.0, 0.3, -0.3, 0.0, 0.2, -0.2])


def _conformance_generator(z):
    """``z @ W.T + b`` for the conformance recipe (a plain callable: torch is imported on use)."""
    import torch

    return z @ torch.as_tensor(_CONFORMANCE_W.T, dtype=z.dtype) + torch.as_tensor(_CONFORMANCE_B, dtype=z.dtype)


class GeneratorPosterior(LatentModel):
    r"""Posterior over the latent codes of any torch generator, by MCMC (Pyro NUTS or HMC) per observation.

    The model: :math:`z_i \sim \mathcal{N}(0, s^2 I_d)` (``prior_scale``
    :math:`s`, 1 by default: the standard normal of most GANs and VAEs) and :math:`x_i \mid z_i \sim
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
    raises (a set of draws has no density). Missing entries of ``X`` (NaN)
    are summed out of the likelihood: the posterior of a partly observed (an
    occluded) row conditions on its observed entries only.

    ``posterior(X)`` is a function of the fitted model and ``X``: the chains
    are seeded from a seed drawn at ``fit`` from ``random_state`` together with
    a checksum of ``X``, so the same ``random_state`` gives the same draws on
    every call (and after ``save``/``load``), and two different batches of
    rows get independent chains. Only the posterior's unseeded ``sample``
    continues the model's random stream.

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
    prior_scale : float, default=1.0
        Standard deviation :math:`s` of the normal prior on each code coordinate.
    n_chains : int, default=2
        MCMC chains (R-hat and ESS need at least two).
    n_warmup : int, default=300
        Warm-up iterations per chain (step size and mass matrix adaptation).
    n_draws : int, default=500
        Kept draws per chain.
    target_accept : float, default=0.8
        NUTS target acceptance probability.
    sampler : {"nuts", "hmc"}, default="nuts"
        The MCMC kernel: Pyro's NUTS, or static-path HMC (adapted step size
        and diagonal mass matrix, ``num_steps`` leapfrog steps per draw).
    num_steps : int, optional
        Leapfrog steps per HMC transition (``sampler="hmc"`` only; NUTS picks
        its own path length, and giving ``num_steps`` with it is an error).
        ``None``: Pyro's default trajectory length :math:`2\pi` divided by the
        adapted step size.
    {random_state}

    Attributes
    ----------
    draws_ : dict of str to ndarray or None
        ``{{"z": (n_chains, n_draws, n_obs, d)}}``: the chains of the latest
        ``posterior`` (or ``embed``, ``to_arviz``) call, the same array as that
        posterior's ``draws``; ``None`` before the first call. Kept so that
        ``to_arviz`` and diagnostics can read them; each call replaces them,
        and ``save`` does not write them (the same call after ``load``
        gives them back).
    sample_stats_ : dict of str to ndarray or None
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
    generator). All rows of ``X`` share one run, hence one step size: rows
    whose posteriors differ much in scale (a sharp one and a broad one) are
    better sampled by one ``posterior`` call each, each with its own
    adaptation (at the cost of one run per row; see the GAN inversion
    example). ``log_likelihood`` raises ``NotImplementedError``: the marginal
    ``p(x)`` would need an integral over codes that this class does not
    estimate.

    **Saving and loading.** A file in probspace's pickle-free format cannot
    hold the generator itself (a user's torch module is code), so
    ``generator`` is a parameter *given again at load time* (the family lists
    it in ``_given_at_load``; see the user guide's "Writing your own family").
    ``save`` writes ``generator=None`` among the parameters, and the
    generator's weights (its ``state_dict`` arrays, or those of the module a
    bound-method generator such as ``vae.module_.decode_raw`` belongs to) in
    the state. :func:`probspace.load` refuses such a file with a message
    naming :meth:`load`; ``GeneratorPosterior.load(path, generator=g)``
    loads the saved weights into ``g`` (same architecture: names, shapes and
    output width checked) and restores the seed and random stream, so that
    ``posterior`` gives the draws the saved model gives.

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
    _tags = ModelTags(exact_posterior=False, exact_log_likelihood=False, density=False, allow_nan=True,
                      allow_nan_in_fit=True)
    _parameter_constraints = {
        "generator": [None, Callable],
        "n_components": [Interval("int", 1, None)],
        "likelihood": [Options("gaussian", "bernoulli")],
        "noise_scale": [Interval("real", 0, None, "neither")],
        "prior_scale": [Interval("real", 0, None, "neither")],
        "n_chains": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 1, None)],
        "n_draws": [Interval("int", 1, None)],
        "target_accept": [Interval("real", 0, 1, "neither")],
        "sampler": [Options("nuts", "hmc")],
        "num_steps": [None, Interval("int", 1, None)],
        "random_state": ["random_state"],
    }
    # -- the conformance recipe: a fixed linear generator (any instance's own generator is replaced by it) --------
    _conformance_params: ClassVar[dict[str, Any]] = {
        "generator": _conformance_generator, "n_components": 2, "n_chains": 2, "n_warmup": 25, "n_draws": 25}
    _conformance_alt_params: ClassVar[dict[str, Any]] = {"likelihood": "bernoulli", "sampler": "hmc",
                                                         "num_steps": 4}
    _expected_failures: ClassVar[dict[str, str]] = {
        "check_posterior_shapes": "the posterior is a set of MCMC draws (Empirical), which has no density: "
                                  "log_prob and entropy raise NotImplementedError (shapes are tested in "
                                  "tests/models/test_generator_posterior.py)"}

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        """Binary rows drawn through ``_conformance_generator`` (fit both likelihoods)."""
        z = rng.standard_normal((8, 2))
        logits = z @ _CONFORMANCE_W.T + _CONFORMANCE_B
        return (rng.random(logits.shape) < 1.0 / (1.0 + np.exp(-logits))).astype(np.float64), None

    def __init__(self, generator: Any = None, *, n_components: int = 2, likelihood: str = "gaussian",
                 noise_scale: float = 1.0, prior_scale: float = 1.0, n_chains: int = 2, n_warmup: int = 300,
                 n_draws: int = 500, target_accept: float = 0.8, sampler: str = "nuts", num_steps: int | None = None,
                 random_state: Any = None) -> None:
        self.generator = generator
        self.n_components = n_components
        self.likelihood = likelihood
        self.noise_scale = noise_scale
        self.prior_scale = prior_scale
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.target_accept = target_accept
        self.sampler = sampler
        self.num_steps = num_steps
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
        if self.likelihood == "bernoulli" and np.any(np.isfinite(X)) and (np.nanmin(X) < 0 or np.nanmax(X) > 1):
            raise ValueError("likelihood='bernoulli' needs X in [0, 1].")
        if self.num_steps is not None and self.sampler != "hmc":
            raise ValueError(f"num_steps={self.num_steps} sets the HMC trajectory length: it needs "
                             f"sampler='hmc' (NUTS, sampler={self.sampler!r}, chooses its own).")
        self._chain_seed = int(rng.integers(0, 2**63 - 1))
        self.backend_ = self.generator
        self.history_ = np.zeros(0)
        self.n_iter_ = 0
        self.converged_ = True

    def _get_parameters(self) -> dict[str, Any]:
        return {}

    # -- saving: the generator's weights, never the generator -----------------------------------
    #: Constructor parameters that ``save`` cannot write (a user's torch object): written as ``None``, given
    #: again to :meth:`load`.
    _given_at_load = ("generator",)

    def _weights_owner(self):
        """Return the ``torch.nn.Module`` holding the generator's weights.

        The generator itself, or the module of a bound method
        (``vae.module_.decode_raw``); ``None`` for a plain callable.
        """
        import torch

        g = self.generator
        owner = g if isinstance(g, torch.nn.Module) else getattr(g, "__self__", None)
        return owner if isinstance(owner, torch.nn.Module) else None

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        state["chain_seed"] = self._chain_seed
        owner = self._weights_owner()
        state["weights"] = ({} if owner is None else
                            {k: v.detach().cpu().numpy() for k, v in owner.state_dict().items()})
        return state

    def _set_state(self, state: dict[str, Any]) -> None:
        import torch

        super()._set_state(state)
        self._chain_seed = int(state["chain_seed"])
        saved = state["weights"]
        owner = self._weights_owner()
        if owner is None:
            if saved:
                raise ValueError(f"the file holds {len(saved)} weight arrays of a torch module, but the generator "
                                 "given is not a torch.nn.Module (nor a method of one)")
        else:
            current = owner.state_dict()
            if set(current) != set(saved):
                raise ValueError(f"the generator's weights are {sorted(current)}, the file's are {sorted(saved)}: "
                                 "give a module of the same architecture")
            wrong = [f"{k}: {tuple(current[k].shape)} given, {np.shape(saved[k])} saved" for k in current
                     if tuple(current[k].shape) != np.shape(saved[k])]
            if wrong:
                raise ValueError("the generator's weights have other shapes than the file's (" + "; ".join(wrong)
                                 + "): give a module of the same architecture")
            owner.load_state_dict({k: torch.as_tensor(v) for k, v in saved.items()})
        width = self._means(np.zeros((1, self.n_components))).shape[-1]
        if width != int(self.n_features_in_):
            raise ValueError(f"the generator maps codes to {width} features, the saved model has "
                             f"{int(self.n_features_in_)}")
        self.backend_ = self.generator

    @classmethod
    def load(cls, path: Any, *, generator: Any) -> GeneratorPosterior:
        """Read a model written by ``save``, putting the saved weights into ``generator``.

        A file cannot hold the generator itself (a user's torch module, code
        that the pickle-free format does not run), only its ``state_dict``
        arrays; so :func:`probspace.load` refuses such a file with a
        ``ValueError`` naming this method, and here the generator is given
        again: a module of the same architecture (or a bound method of one,
        such as ``vae.module_.decode_raw``), whose weights are *overwritten*
        in place by the saved ones. A plain callable without weights is used
        as given.

        Parameters
        ----------
        path : str or path-like
            File written by ``save``.
        generator : torch.nn.Module or callable
            The generator, of the same architecture as the saved one.

        Returns
        -------
        GeneratorPosterior
            The fitted model, with the saved weights and random stream: its
            ``posterior`` draws are those the saved model would have made.

        Raises
        ------
        ValueError
            For a file of another family, or a generator whose weight names,
            shapes or output width differ from the saved ones.
        """
        from .._persistence import _load

        if generator is None:
            raise ValueError("GeneratorPosterior.load needs the generator (a module of the saved architecture).")
        model = _load(path, {"generator": generator})
        if not isinstance(model, cls):
            raise ValueError(f"{path!s} holds a {type(model).__name__}, not a {cls.__name__}.")
        return model

    def _log_lik_torch(self, X):
        import torch

        seen = torch.as_tensor(~np.isnan(X))
        Xt = torch.as_tensor(np.nan_to_num(X, nan=0.0), dtype=torch.float64)
        d = self.n_components

        def log_likelihood(values):
            # a missing entry (NaN) is summed out: with a factorised likelihood, its term is dropped
            out = self._g(values["z"].reshape(-1, d)).double()
            if self.likelihood == "bernoulli":
                terms = -torch.nn.functional.binary_cross_entropy_with_logits(out, Xt, reduction="none")
            else:
                terms = torch.distributions.Normal(out, self.noise_scale).log_prob(Xt)
            return torch.where(seen, terms, torch.zeros((), dtype=terms.dtype)).sum()

        return log_likelihood

    def _posterior(self, X, lengths) -> Empirical:
        import torch

        from ..inference._nuts import Site, run_nuts

        # seeded by the fit and the data, not by the model's stream: posterior(X) is a function of (model, X)
        rng = np.random.default_rng([self._chain_seed, zlib.crc32(np.ascontiguousarray(X).tobytes())])
        n, d = X.shape[0], self.n_components
        prior = torch.distributions.Normal(torch.zeros((), dtype=torch.float64),
                                           torch.tensor(float(self.prior_scale), dtype=torch.float64))
        site = Site("z", (n, d), "real", prior)
        inits = [{"z": rng.normal(size=(n, d)) * 0.5 * self.prior_scale} for _ in range(self.n_chains)]
        draws, stats = run_nuts([site], self._log_lik_torch(X), inits, self.n_warmup, self.n_draws, rng,
                                target_accept=self.target_accept, kernel=self.sampler,
                                  num_steps=self.num_steps)
        self._last = ({"z": draws["z"]}, stats)
        return Empirical(draws["z"], random_state=self.rng_)

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
        z = self.prior_scale * rng.standard_normal((n_samples, self.n_components))
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
