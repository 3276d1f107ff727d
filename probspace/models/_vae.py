"""Variational autoencoders (VAE, CVAE): a LatentModel over a Pyro module."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from typing import Any

import numpy as np

from .._base import LatentModel
from .._docstrings import fill
from .._random import torch_fork_rng
from .._tags import ModelTags
from .._validation import Interval, Options, check_lengths, check_n_samples, validate_params, validate_X
from ..posteriors._normal import DiagonalNormal

__all__ = ["CVAE", "VAE"]

# The VAE's own file formats of earlier versions, still read (VAEs now save in probspace's common format).
_FORMAT = "probspace-vae/2"  # 2 adds the random stream ("rng"); 1 is still read (its stream restarts)
_READABLE = ("probspace-vae/1", _FORMAT)


class _TorchThreads:
    """Set torch's intra-op thread count for a block and restore it afterwards (None: leave it)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import torch

        self.before = torch.get_num_threads()
        if self.n is not None:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.before)


def _local_params():
    """Keep PyroModule parameters in the module, never in Pyro's global parameter store."""
    import pyro

    return pyro.settings.context(module_local_params=True)


class VAE(LatentModel):
    r"""Variational autoencoder: an amortised Gaussian posterior over a continuous code per observation.

    The model: :math:`z_i \sim \mathcal{N}(0, I_d)` and :math:`x_i \mid z_i \sim
    p_\psi(x \mid z_i)` (Bernoulli, continuous Bernoulli or Gaussian, with an
    MLP decoder). The posterior :math:`q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x),
    \mathrm{diag}\,\sigma_\phi(x)^2)` comes from an MLP encoder trained with
    the decoder by maximising the ELBO on minibatches with Adam. An
    autoencoder gives each input one code (what :meth:`embed` returns, the
    posterior mean); :meth:`posterior` gives the belief over codes, which
    widens where the input says little.

    Parameters
    ----------
    n_components : int, default=2
        Code dimension ``d``.
    hidden_dims : tuple of int, default=(256, 256)
        Hidden layer widths of the encoder (the decoder mirrors them).
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}, default="bernoulli"
        Observation model; the Bernoulli kinds need data in [0, 1].
    scale : float, optional
        Fixed Gaussian observation scale; ``None`` learns one per feature.
    max_epochs : int, default=100
        Passes over the training data.
    batch_size : int, default=128
        Minibatch size.
    learning_rate : float, default=1e-3
        Adam step size.
    validation_fraction : float, default=0.0
        Share of the data held out to report a validation ELBO per epoch.
    patience : int, optional
        Stop when the validation ELBO has not improved for this many epochs
        (needs ``validation_fraction > 0``), keeping the best weights.
    elbo : {"fused", "pyro"}, default="fused"
        ``"fused"`` computes the single-sample, analytic-KL ELBO in one torch
        graph; ``"pyro"`` lets Pyro's ``TraceMeanField_ELBO`` trace the
        module's ``model`` and ``guide`` for every minibatch (module-local
        parameters: Pyro's global parameter store is never used). Both give
        the same loss for the same noise (tested); the fused one is faster.
    n_importance : int, default=64
        Importance samples behind :meth:`log_likelihood`.
    device : str, default="cpu"
        Torch device, e.g. ``"cuda"``.
    n_threads : int, optional, default=1
        Torch CPU threads while training and encoding, restored afterwards;
        ``None`` keeps torch's setting. One thread is as fast as two for MLPs
        of this size, and avoids OpenMP threads spin-waiting (30-50x slower
        training) when another process keeps a core busy.
    progress : bool, default=False
        Show a progress bar with the running ELBO.
    {random_state}

    Attributes
    ----------
    module_ : VAEModule
        The trained Pyro module (encoder, decoder, ``model``, ``guide``).
    validation_history_ : ndarray of shape (n_epochs,)
        Validation ELBO per observation after each epoch (empty without a validation split).
    {common_attributes}

    See Also
    --------
    probspace.posteriors.DiagonalNormal : The posterior over codes.

    Notes
    -----
    ``log_likelihood`` is an importance-weighted estimate (IWAE bound) with
    ``n_importance`` samples: a stochastic lower bound on ``log p(x)`` that
    tightens as ``n_importance`` grows; :meth:`elbo` is the plain ELBO.
    ``history_`` holds the training ELBO per observation, per epoch. Training
    runs inside a forked torch random state: the user's global torch and
    numpy states are left as they were. Computation is float32.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import VAE
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(float)
    >>> vae = VAE(2, hidden_dims=(16,), max_epochs=2, random_state=0).fit(X)
    >>> vae.posterior(X).sample(3).shape
    (3, 64, 2)
    """

    _latent_name = "z"
    _tags = ModelTags(exact_posterior=False, exact_log_likelihood=False)
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "hidden_dims": [tuple, list],
        "likelihood": [Options("bernoulli", "continuous_bernoulli", "gaussian")],
        "scale": [None, Interval("real", 0, None, "neither")],
        "max_epochs": [Interval("int", 1, None)],
        "batch_size": [Interval("int", 1, None)],
        "learning_rate": [Interval("real", 0, None, "neither")],
        "validation_fraction": [Interval("real", 0, 1, "left")],
        "patience": [None, Interval("int", 1, None)],
        "elbo": [Options("fused", "pyro")],
        "n_importance": [Interval("int", 1, None)],
        "device": [str],
        "n_threads": [None, Interval("int", 1, None)],
        "progress": ["boolean"],
        "random_state": ["random_state"],
    }
    _conformance_params = {"n_components": 2, "hidden_dims": (16,), "max_epochs": 3, "batch_size": 32}
    _conformance_alt_params = {"likelihood": "continuous_bernoulli", "validation_fraction": 0.25, "patience": 2,
                               "n_importance": 8}

    def __init__(self, n_components: int = 2, *, hidden_dims: tuple[int, ...] = (256, 256),
                 likelihood: str = "bernoulli", scale: float | None = None, max_epochs: int = 100,
                 batch_size: int = 128, learning_rate: float = 1e-3, validation_fraction: float = 0.0,
                 patience: int | None = None, elbo: str = "fused", n_importance: int = 64, device: str = "cpu",
                 n_threads: int | None = 1, progress: bool = False, random_state: Any = None) -> None:
        self.n_components = n_components
        self.hidden_dims = hidden_dims
        self.likelihood = likelihood
        self.scale = scale
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.elbo = elbo
        self.n_importance = n_importance
        self.device = device
        self.n_threads = n_threads
        self.progress = progress
        self.random_state = random_state

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        codes = rng.normal(size=(80, 2))
        W = rng.normal(size=(2, 10)) * 2
        return (rng.random((80, 10)) < 1 / (1 + np.exp(-codes @ W))).astype(float), None

    # -- conditions (CVAE overrides) -------------------------------------------------------
    def _model_tags(self) -> ModelTags:
        # The Bernoulli kinds need data in [0, 1]: declared, so scikit-learn's checks feed non-negative data.
        return dataclasses.replace(self._tags, non_negative=self.likelihood != "gaussian")

    def _check_X(self, X, lengths, *, reset):
        # The base's non-negative check speaks of counts; the Bernoulli kinds need [0, 1], checked here.
        X = validate_X(self, X, reset=reset)
        lengths = check_lengths(lengths, X.shape[0], sequential=False, owner=type(self).__name__)
        if self.likelihood != "gaussian" and X.size and (X.min() < 0 or X.max() > 1):
            negative = f"Negative values in data passed to {type(self).__name__}: " if X.min() < 0 else ""
            raise ValueError(f"{negative}likelihood={self.likelihood!r} needs data in [0, 1]; X ranges from "
                             f"{X.min():g} to {X.max():g}. Rescale X or use likelihood='gaussian'.")
        return X, lengths

    # -- torch helpers ---------------------------------------------------------------------
    def _tensor(self, a: np.ndarray | None):
        import torch

        return None if a is None else torch.as_tensor(np.asarray(a), dtype=torch.float32, device=self.device)

    def _run(self, fn, rng: np.random.Generator | None = None):
        """Run ``fn`` without gradients in a forked torch random state seeded from ``rng``."""
        import torch

        with torch_fork_rng(rng if rng is not None else self.rng_), torch.no_grad(), _local_params(), \
                _TorchThreads(getattr(self, "n_threads", 1)):
            return fn()

    # -- fitting ---------------------------------------------------------------------------
    def _fit(self, X, lengths, rng, cond=None) -> None:

        from ._vae_module import VAEModule

        if self.patience is not None and self.validation_fraction == 0:
            raise ValueError("patience needs a validation split: set validation_fraction > 0.")
        n = X.shape[0]
        order = rng.permutation(n)
        n_val = int(round(self.validation_fraction * n))
        val, train = order[:n_val], order[n_val:]
        if train.size == 0:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training data.")
        self._score_seed = int(rng.integers(0, 2**63 - 1))
        with torch_fork_rng(rng), _local_params(), _TorchThreads(self.n_threads):
            module = VAEModule(X.shape[1], self.n_components, tuple(self.hidden_dims), self.likelihood,
                               0 if cond is None else cond.shape[1], self.scale).to(self.device)
            Xt, Ct = self._tensor(X), self._tensor(cond)
            history, val_history = self._train(module, Xt, Ct, train, val)
        self.module_ = module.eval()
        self.backend_ = self.module_
        self.history_ = np.asarray(history)
        self.validation_history_ = np.asarray(val_history)
        self.n_iter_ = len(history)
        self.converged_ = bool(self.patience is not None and len(history) < self.max_epochs)

    def _get_parameters(self) -> dict[str, Any]:
        return {f"module_.{name}": value.detach().cpu().numpy()
                for name, value in self.module_.state_dict().items()}

    def _train(self, module, Xt, Ct, train, val):
        import torch

        pyro_run = getattr(self, "elbo", "fused") == "pyro"
        try:  # torch's fused Adam kernel: same update rule, one kernel per step
            opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate, fused=True)
        except (RuntimeError, TypeError, ValueError):
            opt = torch.optim.Adam(module.parameters(), lr=self.learning_rate)
        if pyro_run:
            from pyro.infer import TraceMeanField_ELBO

            pyro_elbo = TraceMeanField_ELBO()
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.max_epochs, desc=type(self).__name__, unit="epoch", leave=False)
        train_t = torch.as_tensor(train, device=self.device)
        val_t = torch.as_tensor(val, device=self.device)
        history, val_history = [], []
        best, best_state, stale = -np.inf, None, 0
        try:
            for _ in range(self.max_epochs):
                perm = train_t[torch.randperm(train_t.numel(), device=self.device)]
                total = 0.0
                for start in range(0, perm.numel(), self.batch_size):
                    idx = perm[start:start + self.batch_size]
                    xb = Xt[idx]
                    cb = None if Ct is None else Ct[idx]
                    if pyro_run:
                        loss = pyro_elbo.differentiable_loss(module.model, module.guide, xb, cb)
                    else:
                        loss = -self._objective(module, xb, cb).sum()
                    opt.zero_grad(set_to_none=True)
                    (loss / idx.numel()).backward()
                    opt.step()
                    total -= float(loss.detach())
                history.append(total / max(train.size, 1))
                if val.size:
                    with torch.no_grad():
                        v = float(self._objective(module, Xt[val_t], None if Ct is None else Ct[val_t]).mean())
                    val_history.append(v)
                    if v > best:
                        best, stale = v, 0
                        best_state = {k: t.detach().clone() for k, t in module.state_dict().items()}
                    else:
                        stale += 1
                if bar is not None:
                    bar.set_postfix(elbo=f"{history[-1]:.3f}", **({"val": f"{val_history[-1]:.3f}"} if val.size
                                                                   else {}))
                    bar.update(1)
                if self.patience is not None and stale >= self.patience:
                    break
        finally:
            if bar is not None:
                bar.close()
        if self.patience is not None and best_state is not None:
            module.load_state_dict(best_state)
        return history, val_history

    @staticmethod
    def _objective(module, x, cond):
        """Per-example training objective to maximise (the ELBO; the Autoencoder's reconstruction log-likelihood)."""
        return module.elbo(x, cond)

    # -- posterior and scores ------------------------------------------------------------------
    def _encode(self, X, cond):
        loc, scale = self._run(lambda: self.module_.encode(self._tensor(X), self._tensor(cond)))
        return loc.cpu().numpy().astype(np.float64), scale.cpu().numpy().astype(np.float64)

    def _posterior(self, X, lengths, cond=None) -> DiagonalNormal:
        loc, scale = self._encode(X, cond)
        return DiagonalNormal(loc, scale)

    def _log_likelihood(self, X, lengths, cond=None) -> np.ndarray:
        def run():
            out = []
            Xt, Ct = self._tensor(X), self._tensor(cond)
            for start in range(0, Xt.shape[0], 1024):
                cb = None if Ct is None else Ct[start:start + 1024]
                out.append(self.module_.iwae(Xt[start:start + 1024], cb, self.n_importance))
            return np.concatenate([o.cpu().numpy() for o in out]).astype(np.float64)

        return self._run(run, np.random.default_rng(self._score_seed))

    def elbo_per_observation(self, X: Any) -> np.ndarray:
        """Single-sample ELBO estimate of each observation (a noisy lower bound on log p(x)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The ELBO per observation.
        """
        X, _ = self._check_input(X, None)
        return self._run(lambda: self.module_.elbo(self._tensor(X)).cpu().numpy().astype(np.float64),
                         np.random.default_rng(self._score_seed))

    def _sample(self, n_samples, rng, cond=None):
        def run():
            z = rng.standard_normal((n_samples, self.n_components))
            obs = self.module_.observation(self._tensor(z), self._tensor(cond))
            return obs.sample().cpu().numpy().astype(np.float64), z

        return self._run(run, rng)

    def decode(self, z: Any, y: Any = None) -> np.ndarray:
        """Map codes to data space: the mean of ``p(x | z)``.

        Parameters
        ----------
        z : array-like of shape (..., n_components)
            Codes.
        y : array-like, optional
            Conditions (:class:`CVAE` only).

        Returns
        -------
        ndarray of shape (..., n_features)
            Decoded means.
        """
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        if z.shape[-1] != self.n_components:
            raise ValueError(f"codes passed to decode must end in n_components={self.n_components}; got shape "
                             f"{z.shape}.")
        cond = self._condition_kwargs(y, z.shape[0] if z.ndim > 1 else 1, fitting=False).get("cond")
        return self._run(lambda: self.module_.mean_of(self._tensor(z), self._tensor(cond)).cpu().numpy()
                         .astype(np.float64))

    def reconstruct(self, X: Any, n_samples: int = 1, *, random_state: Any = None) -> np.ndarray:
        """Decode posterior draws of the codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_obs, n_features)
            Data.
        n_samples : int, default=1
            Draws per observation.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only.

        Returns
        -------
        ndarray of shape (n_samples, n_obs, n_features)
            Reconstructions (decoded means).
        """
        z = self.posterior(X).sample(check_n_samples(n_samples), random_state=random_state)
        return self.decode(z)

    def interpolate(self, x_a: Any, x_b: Any, steps: int = 10) -> np.ndarray:
        """Decode a straight line between the posterior means of two inputs.

        Parameters
        ----------
        x_a, x_b : array-like of shape (n_features,)
            End points.
        steps : int, default=10
            Points on the line, ends included.

        Returns
        -------
        ndarray of shape (steps, n_features)
            Decoded means along the line.
        """
        steps = check_n_samples(steps, name="steps")
        ends = self.embed(np.vstack([np.ravel(x_a), np.ravel(x_b)]))
        t = np.linspace(0.0, 1.0, steps)[:, None]
        return self.decode((1 - t) * ends[0] + t * ends[1])

    # -- persistence --------------------------------------------------------------------------
    # -- state hooks (probspace.save / probspace.load) ----------------------------------------
    def _get_state(self) -> dict[str, Any]:
        fitted = {k: getattr(self, k) for k in ("n_features_in_", "history_", "validation_history_", "n_iter_",
                                                "converged_")}
        return {"fitted": fitted, "score_seed": self._score_seed, "n_cond": self._n_cond(),
                "extra": self._extra_arrays(),
                "module": {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}}

    def _set_state(self, state: dict[str, Any]) -> None:
        import torch

        from ._vae_module import VAEModule

        validate_params(self)  # InvalidParameterError is a ValueError: an altered parameter is damage
        for name, value in state["fitted"].items():
            setattr(self, name, value)
        for name in ("history_", "validation_history_"):
            if np.ndim(getattr(self, name)) != 1:
                raise ValueError(f"{name} has shape {np.shape(getattr(self, name))}, not one value per epoch")
        self._restore_extra(state["extra"])
        if self._n_cond() != state["n_cond"]:
            raise ValueError(f"the condition has width {self._n_cond()}, the file says {state['n_cond']}")
        with _local_params():
            module = VAEModule(int(self.n_features_in_), self.n_components, tuple(self.hidden_dims),
                               self.likelihood, self._n_cond(), self.scale)
        module.load_state_dict({k: torch.as_tensor(v) for k, v in state["module"].items()})  # strict
        self.module_ = module.to(self.device).eval()
        self.backend_ = self.module_
        self._score_seed = int(state["score_seed"])

    @classmethod
    def load(cls, path: Any) -> VAE:
        """Read a model written by ``save`` (the same as :func:`probspace.load`, checking the family).

        Parameters
        ----------
        path : str or path-like
            File written by ``save`` (or by the VAE's own format of earlier versions).

        Returns
        -------
        VAE or CVAE
            The fitted model, with the random stream it had when saved.

        Raises
        ------
        ValueError
            For a file that is not a probspace model file, holds another
            family, or is damaged (missing, extra or reshaped arrays).
        """
        from .._persistence import load

        model = load(path)
        if not isinstance(model, cls):
            raise ValueError(f"{path!s} holds a {type(model).__name__}, not a {cls.__name__}.")
        return model

    @classmethod
    def _load_legacy(cls, path: Any) -> VAE:
        """Read a file in the VAE's own format of earlier versions (``probspace-vae/1`` and ``/2``)."""
        try:
            with np.load(path, allow_pickle=False) as f:
                header = json.loads(str(f["header"]))
                arrays = {k: f[k] for k in f.files if k != "header"}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path!s} is not a readable probspace VAE file ({type(err).__name__}: {err}).") from err
        if not isinstance(header, dict) or header.get("format") not in _READABLE:
            form = header.get("format") if isinstance(header, dict) else None
            raise ValueError(f"{path!s} has format {form!r}; this probspace reads {_READABLE}.")
        family = _families().get(header.get("family"))
        if family is None or not issubclass(family, cls):
            raise ValueError(f"{path!s} holds a {header.get('family')!r}, not a {cls.__name__}.")
        try:
            return family._from_file(header, arrays)
        except (TypeError, KeyError, AttributeError, ValueError, IndexError, RuntimeError) as err:
            # RuntimeError: torch's load_state_dict on missing, extra or reshaped weights.
            raise ValueError(f"{path!s} is damaged or inconsistent: {type(err).__name__}: {err}") from err

    @classmethod
    def _from_file(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> VAE:
        import torch

        from .._persistence import _decode, _generator_from_state
        from .._random import as_generator
        from ._vae_module import VAEModule

        params = dict(header["params"])
        params["hidden_dims"] = tuple(params["hidden_dims"])
        model = cls(**params)
        validate_params(model)  # InvalidParameterError is a ValueError: an altered parameter is damage
        model._restore_extra(arrays)
        if model._n_cond() != header["n_cond"]:
            raise ValueError(f"the condition has width {model._n_cond()}, the header says {header['n_cond']}")
        with _local_params():
            module = VAEModule(header["n_features_in_"], model.n_components, model.hidden_dims, model.likelihood,
                               header["n_cond"], model.scale)
        state = {k[len("state/"):]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("state/")}
        module.load_state_dict(state)  # strict: missing, unexpected or reshaped weights raise
        for name in ("history_", "validation_history_"):
            if arrays[name].ndim != 1:
                raise ValueError(f"{name} has shape {arrays[name].shape}, not one value per epoch")
        model.module_ = module.to(model.device).eval()
        model.backend_ = model.module_
        model.n_features_in_ = header["n_features_in_"]
        model.history_ = arrays["history_"]
        model.validation_history_ = arrays["validation_history_"]
        model.n_iter_ = header["n_iter_"]
        model.converged_ = header["converged_"]
        model._score_seed = header["score_seed"]
        if header["format"] == _FORMAT:
            model.rng_ = _generator_from_state(_decode(header["rng"], arrays))
        else:  # format 1 did not record the stream: it restarts from random_state
            model.rng_ = as_generator(model.random_state)
        return model

    def _n_cond(self) -> int:
        return 0

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        pass

    def __getstate__(self):
        state = self.__dict__.copy()
        if "module_" in state:  # plain arrays instead of pickled torch/Pyro internals
            state["module_"] = {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}
            state.pop("backend_", None)
        return state

    def __setstate__(self, state):
        module_state = state.pop("module_", None)
        self.__dict__.update(state)
        if module_state is not None:
            import torch

            from ._vae_module import VAEModule

            with _local_params():
                module = VAEModule(self.n_features_in_, self.n_components, tuple(self.hidden_dims),
                                   self.likelihood, self._n_cond(), self.scale)
            module.load_state_dict({k: torch.as_tensor(v) for k, v in module_state.items()})
            self.module_ = module.to(self.device).eval()
            self.backend_ = self.module_

    # -- ArviZ hooks -------------------------------------------------------------------------
    def _arviz_dims(self):
        return {"z": ("obs", "latent_dim"), "x": ("obs", "feature")}

    def _posterior_predictive(self, X, latents, params, rng):
        n_draws, n_obs, d = latents.shape
        return self.decode(latents.reshape(-1, d)).reshape(n_draws, n_obs, -1)


VAE.__doc__ = fill(VAE.__doc__)


class CVAE(VAE):
    r"""Conditional VAE: encoder and decoder see a condition ``y`` (class labels or covariates).

    The model: :math:`z_i \sim \mathcal{N}(0, I)`, :math:`x_i \mid z_i, y_i \sim
    p_\psi(x \mid z_i, y_i)`, with :math:`q_\phi(z \mid x, y)`. Integer ``y``
    of one column is one-hot encoded over the classes seen in ``fit``;
    anything else is used as continuous covariates. ``posterior(X, y)``,
    ``sample(n, y=...)`` and ``decode(z, y)`` take the condition; generation
    for a chosen class is ``sample(n, y=[c] * n)``.

    Parameters
    ----------
    n_components : int, default=2
        Code dimension.
    hidden_dims : tuple of int, default=(256, 256)
        Hidden layer widths.
    likelihood : {"bernoulli", "continuous_bernoulli", "gaussian"}, default="bernoulli"
        Observation model.
    scale : float, optional
        Fixed Gaussian observation scale; ``None`` learns one per feature.
    max_epochs : int, default=100
        Passes over the training data.
    batch_size : int, default=128
        Minibatch size.
    learning_rate : float, default=1e-3
        Adam step size.
    validation_fraction : float, default=0.0
        Share of the data held out for a validation ELBO.
    patience : int, optional
        Early-stopping patience in epochs.
    elbo : {"fused", "pyro"}, default="fused"
        ELBO computation (see :class:`VAE`).
    n_importance : int, default=64
        Importance samples behind :meth:`log_likelihood`.
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
        The trained Pyro module.
    classes_ : ndarray or None
        Class labels of a categorical condition (``None`` for covariates).
    validation_history_ : ndarray of shape (n_epochs,)
        Validation ELBO per observation after each epoch.
    {common_attributes}

    See Also
    --------
    VAE : The unconditional model.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import CVAE
    >>> X = (np.random.default_rng(0).random((64, 8)) > 0.5).astype(float)
    >>> y = np.arange(64) % 2
    >>> cvae = CVAE(2, hidden_dims=(16,), max_epochs=2, random_state=0).fit(X, y)
    >>> cvae.sample(3, y=[1, 1, 1])[0].shape
    (3, 8)
    """

    _conformance_alt_params = {"likelihood": "continuous_bernoulli", "n_importance": 8}

    @staticmethod
    def _conformance_data(rng):
        return VAE._conformance_data(rng)

    def _conformance_condition(self, n, rng):
        """Two classes, alternating: the suite runs every call through the condition path."""
        return np.arange(n) % 2

    def _model_tags(self) -> ModelTags:
        return dataclasses.replace(super()._model_tags(), conditional=True)

    def _check_condition(self, y, n, *, fitting, generating=False):
        if y is None:
            if fitting:
                y = np.zeros(n, dtype=np.int64)  # scikit-learn tools call fit(X) without y: one class
            elif generating:  # sample(n) without y: the first class (or zero covariates)
                y = np.repeat(self.classes_[:1], n) if self.classes_ is not None else np.zeros((n, self._n_covariates))
            elif self.classes_ is not None and self.classes_.size == 1:
                y = np.repeat(self.classes_, n)  # fitted without y: the only condition there is
            else:
                raise ValueError("CVAE needs the condition y (it was fitted with several conditions).")
        y = np.asarray(y)
        if fitting:
            if y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or y.dtype.kind in "USOb"):
                self.classes_ = np.unique(y)
            else:
                self.classes_ = None
                self._n_covariates = 1 if y.ndim == 1 else y.shape[1]
        if y.shape[0] != n:
            raise ValueError(f"y has {y.shape[0]} rows but X (or the request) has {n}.")
        if self.classes_ is not None:
            index = np.searchsorted(self.classes_, y)
            known = (index < self.classes_.size) & (self.classes_[np.minimum(index, self.classes_.size - 1)] == y)
            if not np.all(known):
                raise ValueError(f"y holds classes the CVAE was not fitted on: {np.unique(y[~known])[:5]}.")
            return np.eye(self.classes_.size)[index]
        y = y.reshape(n, -1).astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("y must be finite.")
        return y

    def _n_cond(self) -> int:
        return self.classes_.size if self.classes_ is not None else self._n_covariates

    def _extra_arrays(self):
        return {"classes_": self.classes_} if self.classes_ is not None else {
            "n_covariates": np.array(self._n_covariates)}

    def _restore_extra(self, arrays):
        self.classes_ = arrays.get("classes_")
        if self.classes_ is None:
            self._n_covariates = int(arrays["n_covariates"])

    def _posterior_predictive(self, X, latents, params, rng, cond=None):
        n_draws, n_obs, d = latents.shape
        means = self._run(lambda: self.module_.mean_of(self._tensor(latents.reshape(-1, d)),
                                                       self._tensor(np.tile(cond, (n_draws, 1)))))
        return means.cpu().numpy().astype(np.float64).reshape(n_draws, n_obs, -1)

    def decode(self, z: Any, y: Any = None) -> np.ndarray:
        """Map codes to data space given conditions: the mean of ``p(x | z, y)``.

        Parameters
        ----------
        z : array-like of shape (n, n_components)
            Codes.
        y : array-like, optional
            One condition per code (may be omitted for a model fitted without ``y``).

        Returns
        -------
        ndarray of shape (n, n_features)
            Decoded means.
        """
        self._check_fitted()
        z = np.atleast_2d(np.asarray(z, dtype=np.float64))
        cond = self._check_condition(y, z.shape[0], fitting=False)
        return self._run(lambda: self.module_.mean_of(self._tensor(z), self._tensor(cond)).cpu().numpy()
                         .astype(np.float64))


CVAE.__doc__ = fill(CVAE.__doc__)


def _families() -> dict[str, type]:
    """Return the families VAE.save writes and VAE.load reads (subclasses elsewhere are not among them)."""
    return {"VAE": VAE, "CVAE": CVAE}
