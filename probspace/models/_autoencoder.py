"""Deterministic autoencoder: the VAE's network trained on reconstruction, with a point-mass posterior."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._docstrings import fill
from .._tags import ModelTags
from ..posteriors._point import PointMass
from ._vae import VAE

__all__ = ["Autoencoder"]


class Autoencoder(VAE):
    r"""Deterministic autoencoder: one code per observation, from the VAE's own network.

    The same encoder and decoder as :class:`VAE` (same constructor, minus the
    ELBO settings), trained to maximise the reconstruction log-likelihood
    :math:`\sum_i \log p_\psi(x_i \mid z_i = \mu_\phi(x_i))` (binary cross
    entropy for ``likelihood="bernoulli"``, a Gaussian negative
    log-likelihood, squared error for a fixed ``scale``): no sampling of the
    code and no KL term. The posterior is a :class:`~probspace.posteriors.PointMass`
    at the encoder's output, so swapping ``VAE(...)`` for ``Autoencoder(...)``
    is the whole difference between a belief over codes and one point.

    A deterministic autoencoder has no prior over codes and no density over
    ``X``: ``log_likelihood``, ``score`` and ``sample`` raise
    ``NotImplementedError`` (decode chosen codes with :meth:`decode`, or use
    a :class:`VAE` to generate). :meth:`reconstruct` and :meth:`interpolate`
    work as for the VAE.

    Parameters
    ----------
    n_components : int, default=2
        Code dimension ``d``.
    hidden_dims : tuple of int, default=(256, 256)
        Hidden layer widths of the encoder (the decoder mirrors them).
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}, default="bernoulli"
        Reconstruction loss, as the observation model's negative log-likelihood.
    scale : float, optional
        Fixed Gaussian scale; ``None`` learns one per feature.
    max_epochs : int, default=100
        Passes over the training data.
    batch_size : int, default=128
        Minibatch size.
    learning_rate : float, default=1e-3
        Adam step size.
    validation_fraction : float, default=0.0
        Share of the data held out to report a validation objective per epoch.
    patience : int, optional
        Early-stopping patience in epochs (needs ``validation_fraction > 0``).
    device : str, default="cpu"
        Torch device.
    n_threads : int, optional, default=1
        Torch CPU threads while training and encoding (see :class:`VAE`).
    progress : bool, default=False
        Show a progress bar.
    {random_state}

    Attributes
    ----------
    module_ : VAEModule
        The trained network (the VAE's module; its encoder scale head is unused).
    validation_history_ : ndarray of shape (n_epochs,)
        Validation reconstruction log-likelihood per observation after each epoch.
    {common_attributes}

    See Also
    --------
    VAE : The same network with a posterior over codes.
    probspace.Embedding : Any deterministic embedding as a point-mass posterior.

    Notes
    -----
    ``history_`` holds the training reconstruction log-likelihood per
    observation, per epoch. Saved and loaded like the VAE (weights in
    probspace's pickle-free format).

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import Autoencoder
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(float)
    >>> ae = Autoencoder(2, hidden_dims=(16,), max_epochs=2, random_state=0).fit(X)
    >>> ae.posterior(X).variance.max()
    np.float64(0.0)
    """

    _tags = ModelTags(exact_log_likelihood=False, density=False, generative=False, random_posterior=False)
    _parameter_constraints = {k: v for k, v in VAE._parameter_constraints.items() if k not in ("elbo", "n_importance")}
    _conformance_alt_params = {"likelihood": "continuous_bernoulli", "validation_fraction": 0.25, "patience": 2}

    def __init__(self, n_components: int = 2, *, hidden_dims: tuple[int, ...] = (256, 256),
                 likelihood: str = "bernoulli", scale: float | None = None, max_epochs: int = 100,
                 batch_size: int = 128, learning_rate: float = 1e-3, validation_fraction: float = 0.0,
                 patience: int | None = None, device: str = "cpu", n_threads: int | None = 1,
                 progress: bool = False, random_state: Any = None) -> None:
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.likelihood = likelihood
        self.scale = scale
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.n_threads = n_threads
        self.progress = progress
        self.random_state = random_state

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        return VAE._conformance_data(rng)

    @staticmethod
    def _objective(module, x, cond):
        return module.reconstruction(x, cond)

    def _posterior(self, X, lengths, cond=None) -> PointMass:
        return PointMass(self._encode(X, cond)[0])

    def _log_likelihood(self, X, lengths, cond=None) -> np.ndarray:
        raise NotImplementedError(
            "Autoencoder is deterministic: it has no prior over codes, so it defines no density over X and has no "
            "log-likelihood (nor score or LOO). Use VAE(...) with the same settings for an estimate of log p(x).")

    def _sample(self, n_samples, rng, cond=None):
        raise NotImplementedError(
            "Autoencoder is deterministic: it has no prior over codes to draw from, so it cannot generate new data. "
            "Decode codes of your choosing with decode(z), or use VAE(...) with the same settings to sample.")

    def elbo_per_observation(self, X: Any) -> np.ndarray:
        """Not defined: an autoencoder has no ELBO (use :meth:`reconstruction_log_likelihood`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data (not read).

        Returns
        -------
        ndarray
            Never: the call raises.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError("Autoencoder has no ELBO (no posterior noise, no prior); use "
                                  "reconstruction_log_likelihood(X).")

    def reconstruction_log_likelihood(self, X: Any) -> np.ndarray:
        """``log p(x | z = encoder(x))`` per observation: the training objective (not a density of ``x``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X, _ = self._check_input(X, None)
        return self._run(lambda: self.module_.reconstruction(self._tensor(X)).cpu().numpy().astype(np.float64))

    def _pointwise_log_likelihood(self, X, lengths, params, **cond):
        return None  # no density: the ArviZ object has no log_likelihood group


Autoencoder.__doc__ = fill(Autoencoder.__doc__)
