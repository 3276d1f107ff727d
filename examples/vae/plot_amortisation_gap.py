"""
The amortisation gap: a VAE's encoder against MCMC on its own decoder
=====================================================================

A :class:`~probspace.VAE` answers "which codes could have made this digit?"
with its encoder: one forward pass gives a diagonal Gaussian
:math:`q(z \\mid x)`. That answer is *amortised* (one network for every
image) and *restricted* (a diagonal Gaussian). The decoder alone defines the
true posterior :math:`p(z \\mid x) \\propto p(x \\mid z)\\,\\mathcal{N}(z; 0, I)`,
and :class:`~probspace.GeneratorPosterior` samples it by NUTS for any torch
generator, here the VAE's own decoder:

.. code-block:: python

    gp = probspace.GeneratorPosterior(vae.module_.decode_raw, n_components=2, likelihood="bernoulli")
    mcmc = gp.fit(X).posterior(X)          # draws from p(z | x) under the VAE's decoder

For a few held-out digits this example compares the two posteriors (the
encoder's mean shift, in posterior standard deviations, and its variance
ratio), and compares the VAE's importance-weighted bound (IWAE) and ELBO with
the log-likelihood itself, which a 2-D code lets us compute by quadrature on
a fine grid around the posterior (the same grid gives the exact posterior
moments, a check on the MCMC).
"""

# %%
# Fit a VAE with a 2-D code on digits
# -----------------------------------
import os

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Ellipse
from scipy.special import logsumexp
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
digits = load_digits()
X = digits.data / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2, random_state=0,
                                                    stratify=digits.target)
vae = probspace.VAE(2, hidden_dims=(128,) if FAST else (128, 128), likelihood="bernoulli",
                    max_epochs=20 if FAST else 200, batch_size=256 if FAST else 128,
                    learning_rate=1.5e-2 if FAST else 2e-3, n_importance=64, random_state=0).fit(X_train)

# %%
# MCMC on the decoder for a handful of digits
# -------------------------------------------
# One NUTS run samples the codes of all chosen digits at once (they are
# independent a posteriori).
pick = np.array([np.flatnonzero(y_test == k)[0] for k in range(8)])
Xs, ys = X_test[pick], y_test[pick]
gp = probspace.GeneratorPosterior(vae.module_.decode_raw, n_components=2, likelihood="bernoulli", n_chains=2,
                                  n_warmup=200 if FAST else 500, n_draws=300 if FAST else 2000,
                                  random_state=0).fit(Xs)
mcmc = gp.posterior(Xs)
enc = vae.posterior(Xs)
rhat = max(float(az.rhat(mcmc.draws[:, :, i, j])) for i in range(len(Xs)) for j in range(2))
print(f"NUTS: {int(gp.sample_stats_['diverging'].sum())} divergences, largest R-hat {rhat:.3f}")

# %%
# The log-likelihood by quadrature (a 2-D code makes it exact up to the grid)
# ---------------------------------------------------------------------------
# For each digit, a 161 x 161 grid spanning 8 MCMC standard deviations either
# side of the MCMC mean: ``log p(x) = log sum_z p(x | z) N(z; 0, I) dz``, and
# the grid's normalised weights give the exact posterior mean and variance.


def log_joint(z, x):
    with torch.no_grad():
        logits = vae.module_.decode_raw(torch.as_tensor(z, dtype=torch.float32)).double().numpy()
    log_lik = x @ -np.logaddexp(0, -logits).T + (1 - x) @ -np.logaddexp(0, logits).T
    return log_lik.ravel() - 0.5 * (z**2).sum(1) - np.log(2 * np.pi)


n_grid = 161
log_px, exact_mean, exact_var = np.zeros(len(Xs)), np.zeros((len(Xs), 2)), np.zeros((len(Xs), 2))
for i, x in enumerate(Xs):
    m, s = mcmc.mean[i], np.sqrt(mcmc.variance[i])
    axes = [np.linspace(m[j] - 8 * s[j], m[j] + 8 * s[j], n_grid) for j in range(2)]
    Z = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    lj = log_joint(Z, x[None])
    log_px[i] = logsumexp(lj) + np.log((axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0]))
    w = np.exp(lj - logsumexp(lj))
    exact_mean[i] = w @ Z
    exact_var[i] = w @ (Z - exact_mean[i]) ** 2

# %%
# ELBO and IWAE of the encoder, by many samples
# ---------------------------------------------
# The ELBO is averaged over 2000 encoder samples per digit (its estimator
# noise removed), the IWAE bound is the VAE's ``log_likelihood`` (64
# importance samples). ``log p(x) - ELBO`` is ``KL(q(z|x) || p(z|x))``: the
# price of the amortised Gaussian. IWAE is a lower bound in expectation only:
# one 64-sample estimate can land a little above ``log p(x)``.
with torch.no_grad(), torch.random.fork_rng():
    torch.manual_seed(0)
    elbo = np.mean([vae.module_.elbo(torch.as_tensor(Xs, dtype=torch.float32)).double().numpy()
                    for _ in range(2000)], axis=0)
iwae = vae.log_likelihood(Xs)

sd = np.sqrt(mcmc.variance)
shift = (enc.mean - mcmc.mean) / sd
ratio = enc.variance / mcmc.variance
check = (mcmc.mean - exact_mean) / sd  # MCMC against the grid: Monte Carlo error only
print("digit | mean shift (post. sds) | var ratio q/p  | MCMC vs grid mean (sds) | ELBO    IWAE    log p(x)  KL(q||p)")
for i in range(len(Xs)):
    print(f"  {ys[i]}   | {shift[i, 0]:+6.2f} {shift[i, 1]:+6.2f}         | {ratio[i, 0]:5.2f} {ratio[i, 1]:5.2f}    | "
          f"{check[i, 0]:+5.2f} {check[i, 1]:+5.2f}"
          f"             | {elbo[i]:7.2f} {iwae[i]:7.2f} {log_px[i]:7.2f}  {log_px[i] - elbo[i]:6.2f}")
print(f"mean |shift| {np.abs(shift).mean():.2f} sds; median variance ratio {np.median(ratio):.2f}; "
      f"mean log p(x) - IWAE {np.mean(log_px - iwae):.3f} nats, log p(x) - ELBO {np.mean(log_px - elbo):.3f} nats")

# %%
# The two posteriors of each digit
# --------------------------------
# MCMC draws (grey), the exact posterior's two-sd ellipse from the grid
# (black, dashed; marginal sds) and the encoder's (red).
fig, axs = plt.subplots(2, 4, figsize=(12, 6.2))
for i, ax in enumerate(axs.ravel()):
    draws = mcmc.draws[:, :, i].reshape(-1, 2)
    ax.scatter(draws[:, 0], draws[:, 1], s=2, color="0.6", alpha=0.4, label="NUTS draws")
    for mean, var, style in ((exact_mean[i], exact_var[i], dict(ec="k", ls="--", label="exact (grid), 2 sd")),
                             (enc.mean[i], enc.variance[i], dict(ec="tab:red", label="encoder q(z|x), 2 sd"))):
        ax.add_patch(Ellipse(mean, 4 * np.sqrt(var[0]), 4 * np.sqrt(var[1]), fc="none", lw=1.5, **style))
    ax.set_title(f"digit {ys[i]}: shift {np.abs(shift[i]).max():.1f} sd, KL {log_px[i] - elbo[i]:.2f}", fontsize=9)
    ax.tick_params(labelsize=7)
    inset = ax.inset_axes([0.78, 0.78, 0.2, 0.2])
    inset.imshow(Xs[i].reshape(8, 8), cmap="gray_r")
    inset.set_axis_off()
    ax.autoscale_view()
axs[0, 0].legend(fontsize=7, loc="lower left")
fig.suptitle("Encoder posterior vs the decoder's true posterior (NUTS)")
fig.tight_layout()
plt.show()
