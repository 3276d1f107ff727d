"""The VAE as one PyroModule: encoder, decoder, ``model`` and ``guide`` (math only, no user API).

Imported lazily by ``probspace.models._vae``, so ``import probspace`` does not load torch or pyro.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn
from torch.nn import functional as F

__all__ = ["VAEModule"]


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class VAEModule(PyroModule):
    """Amortised Gaussian encoder q(z | x[, y]) and decoder p(x | z[, y]).

    Parameters
    ----------
    n_features : int
        Data dimension.
    n_latent : int
        Code dimension.
    hidden_dims : tuple of int
        Hidden layer widths (the decoder mirrors them).
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}
        Observation model.
    n_cond : int
        Width of the condition ``y`` (0 for an unconditional VAE).
    scale : float or None
        Gaussian observation scale; ``None`` learns one per feature.
    """

    def __init__(self, n_features: int, n_latent: int, hidden_dims: tuple[int, ...], likelihood: str,
                 n_cond: int = 0, scale: float | None = None) -> None:
        super().__init__()
        hidden = list(hidden_dims)
        self.n_latent = n_latent
        self.likelihood = likelihood
        self.n_cond = n_cond
        self.encoder = _mlp([n_features + n_cond, *hidden])
        width = hidden[-1] if hidden else n_features + n_cond
        self.enc_loc = nn.Linear(width, n_latent)
        self.enc_scale = nn.Linear(width, n_latent)
        self.decoder = _mlp([n_latent + n_cond, *hidden[::-1]])
        self.dec_out = nn.Linear(hidden[0] if hidden else n_latent + n_cond, n_features)
        if likelihood == "gaussian":
            init = 0.0 if scale is None else math.log(scale)
            log_scale = torch.full((n_features,), init)
            if scale is None:
                self.log_scale = nn.Parameter(log_scale)
            else:
                self.register_buffer("log_scale", log_scale)
        # The layers stay plain torch modules: converting them to PyroModules would route every call
        # through Pyro's parameter machinery (~0.3 ms per minibatch, 8-10% of an epoch here).

    # -- networks ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters ``(loc, scale)`` of the codes."""
        h = self.encoder(x if y is None else torch.cat([x, y], dim=-1))
        return self.enc_loc(h), F.softplus(self.enc_scale(h)) + 1e-5

    def decode_raw(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Return the decoder output: logits (Bernoulli kinds) or the Gaussian mean."""
        if y is not None:
            y = y.expand(z.shape[:-1] + y.shape[-1:])
        return self.dec_out(self.decoder(z if y is None else torch.cat([z, y], dim=-1)))

    def observation(self, z: torch.Tensor, y: torch.Tensor | None = None) -> dist.Distribution:
        """``p(x | z[, y])`` with the features as one event."""
        out = self.decode_raw(z, y)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        if self.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=out, validate_args=False).to_event(1)
        return dist.Normal(out, self.log_scale.exp()).to_event(1)

    def mean_of(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Data-space mean ``E[x | z[, y]]``."""
        out = self.decode_raw(z, y)
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        if self.likelihood == "continuous_bernoulli":
            return dist.ContinuousBernoulli(logits=out, validate_args=False).mean
        return out

    # -- Pyro model and guide -----------------------------------------------------------
    def model(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Run the generative model: ``z ~ N(0, I)``, ``x ~ p(x | z[, y])``."""
        with pyro.plate("data", x.shape[0]):
            prior = dist.Normal(x.new_zeros((x.shape[0], self.n_latent)), 1.0).to_event(1)
            z = pyro.sample("z", prior)
            pyro.sample("x", self.observation(z, y), obs=x)

    def guide(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Amortised guide: ``z ~ N(loc(x[, y]), scale(x[, y]))``."""
        with pyro.plate("data", x.shape[0]):
            loc, scale = self.encode(x, y)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # -- objectives (the same estimators, in one torch graph) ---------------------------
    def elbo(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Per-example ELBO: one reparameterised sample of ``log p(x | z)`` minus the analytic KL.

        The same estimator as Pyro's ``TraceMeanField_ELBO`` for this model and guide.
        """
        loc, scale = self.encode(x, y)
        z = loc + scale * torch.randn_like(loc)
        log_lik = self.observation(z, y).log_prob(x)
        kl = 0.5 * (loc**2 + scale**2 - 1.0).sum(-1) - torch.log(scale).sum(-1)
        return log_lik - kl

    def reconstruction(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Per-example ``log p(x | z = loc(x[, y]))``: the deterministic autoencoder's objective (no noise, no KL)."""
        loc, _ = self.encode(x, y)
        return self.observation(loc, y).log_prob(x)

    def iwae(self, x: torch.Tensor, y: torch.Tensor | None, k: int) -> torch.Tensor:
        """Per-example importance-weighted bound with ``k`` samples (a lower bound on log p(x))."""
        loc, scale = self.encode(x, y)
        q = dist.Normal(loc, scale).to_event(1)
        z = q.rsample((k,))
        prior = dist.Normal(torch.zeros_like(loc), 1.0).to_event(1)
        log_w = self.observation(z, None if y is None else y.unsqueeze(0)).log_prob(x) + prior.log_prob(z) \
            - q.log_prob(z)
        return torch.logsumexp(log_w, dim=0) - math.log(k)
