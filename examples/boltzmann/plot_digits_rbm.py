"""
An RBM on binarised digits: exact posterior, exact likelihood, Gibbs samples
============================================================================

The 8x8 handwritten digits that ship with scikit-learn
(:func:`~sklearn.datasets.load_digits`: 1,797 images from the UCI optical
recognition data set), binarised at half intensity, modelled by a restricted
Boltzmann machine with :math:`H = 20` binary hidden units
(:class:`probspace.RBM`, trained by scikit-learn's ``BernoulliRBM``).

* Given an image the hidden units are independent: the **exact** posterior
  is a :class:`~probspace.posteriors.Bernoulli`. scikit-learn's ``transform``
  gives its mean only; the posterior also says how sure the model is about
  each unit, and its draws are whole binary codes.
* With 20 hidden units the partition function is a sum over
  :math:`2^{20}` hidden configurations, done exactly in log space, so
  ``log_likelihood`` is exact (not a pseudo-likelihood).
* ``sample`` runs block Gibbs chains; ``gibbs`` keeps several chains for
  R-hat and ESS through ArviZ.
"""

# %%
# Fit and exact log-likelihood
# ----------------------------
import os
import time

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
X = (load_digits().data >= 8).astype(float)
X_train, X_test = X[:1500], X[1500:]
rbm = probspace.RBM(20, learning_rate=0.05, n_iter=10 if FAST else 40, burn_in=300 if FAST else 1000,
                    random_state=0)
start = time.perf_counter()
rbm.fit(X_train)
print(f"fit with exact log Z = {rbm.log_partition_:.2f} (2^20 hidden configurations) in "
      f"{time.perf_counter() - start:.1f} s")
print(f"exact mean log-likelihood: train {rbm.score(X_train):.2f}, test {rbm.score(X_test):.2f} nats per image "
      f"(uniform pixels: {np.log(2) * -64:.2f})")

# %%
# The posterior over hidden units against the deterministic transform
# -------------------------------------------------------------------
# ``embed`` (scikit-learn's ``transform``) is the posterior mean: one number
# per unit. The posterior adds how uncertain each unit is (entropy, in nats,
# out of at most :math:`20 \log 2 \approx 13.9`) and joint draws of codes.
post = rbm.posterior(X_test)
np.testing.assert_array_equal(post.mean, rbm.backend_.transform(X_test))
entropy = post.entropy()
order = np.argsort(entropy)
fig, axes = plt.subplots(2, 4, figsize=(9, 4.5))
for col, i in enumerate([order[0], order[len(order) // 3], order[2 * len(order) // 3], order[-1]]):
    axes[0, col].imshow(X_test[i].reshape(8, 8), cmap="gray_r")
    axes[0, col].set_title(f"entropy {entropy[i]:.1f} nats")
    axes[0, col].axis("off")
    draws = post.sample(30, random_state=col)[:, i]
    axes[1, col].imshow(np.vstack([post.mean[i][None], np.full((1, 20), np.nan), draws]), cmap="viridis",
                        aspect="auto", vmin=0, vmax=1)
    axes[1, col].set_xlabel("hidden unit")
    axes[1, col].set_yticks([0])
    axes[1, col].set_yticklabels(["mean"])
fig.suptitle("Top: test digits. Bottom: posterior mean (= transform) and 30 posterior draws of the 20 units")
fig.tight_layout()

# %%
# Generated digits from Gibbs chains, with R-hat and ESS
# ------------------------------------------------------
Xs, _ = rbm.sample(16, random_state=0)
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for ax, img in zip(axes.ravel(), Xs, strict=True):
    ax.imshow(img.reshape(8, 8), cmap="gray_r")
    ax.axis("off")
fig.suptitle(f"16 independent Gibbs chains after {rbm.burn_in} sweeps")

chains = rbm.gibbs(200 if FAST else 1000, n_chains=4, random_state=1)
trace = az.convert_to_dataset({k: chains[k] for k in ("free_energy", "active_visible")})
print(az.summary(trace, kind="diagnostics"))
print(f"Gibbs chains' mean log-likelihood: {np.mean(rbm.log_likelihood(chains['v'].reshape(-1, 64))):.2f}")
plt.show()
