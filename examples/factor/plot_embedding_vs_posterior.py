"""
Same digits, two answers: embedding points and posterior clouds
===============================================================

The 8x8 handwritten digits that ship with scikit-learn
(:func:`~sklearn.datasets.load_digits`: 1,797 images from the UCI optical
recognition data set), mapped to a plane three ways:

* **PCA**, a deterministic embedding: each image gets one point.
  :class:`probspace.Embedding` reads it as a posterior, a
  :class:`~probspace.posteriors.PointMass`: zero variance, entropy
  :math:`-\\infty`, every draw the same point.
* **Probabilistic PCA**, the same subspace as a latent-variable model
  (:class:`probspace.PPCA`): each image has an unobserved position
  :math:`z \\in \\mathbb{R}^2`, and given the pixels the model holds an exact
  Gaussian belief about it, drawn here as a cloud of posterior draws.
* **t-SNE** with several seeds: different pictures of the same data. Their
  differences are not a posterior: nothing in t-SNE says how likely one
  layout is against another, and each run, read as a posterior, is again a
  point mass.
"""

# %%
# PCA points and PPCA clouds
# --------------------------
# Pixel intensities are divided by 16 (to [0, 1]). PCA is whitened (unit
# variance per axis), the scale of PPCA's latent prior. PPCA's posterior mean
# is that projection shrunk along each axis by
# :math:`\sqrt{1 - \sigma^2 / \lambda_j}`; its covariance
# :math:`\sigma^2 M^{-1}` is the same for every complete image: with only two
# latent dimensions the model leaves a lot to noise (:math:`\sigma^2` is
# printed), so every position is uncertain by about a quarter of the spread
# of the digits.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_TSNE = 500 if FAST else 1797  # t-SNE runs take about 1 s per 500 digits here
SEEDS = (0, 1) if FAST else (0, 1, 2)

digits = load_digits()
X, y = digits.data / 16.0, digits.target
pca = probspace.Embedding(PCA(2, whiten=True)).fit(X)
ppca = probspace.PPCA(2, random_state=0).fit(X)
points, post = pca.posterior(X), ppca.posterior(X)
spread = np.array2string(post.mean.std(0), precision=2)
print(f"PPCA noise variance {ppca.noise_variance_:.3f} per pixel; posterior sd "
      f"{np.array2string(post.stddev[0], precision=3)} against a spread of {spread}")
print(f"PCA as a posterior: variance {points.variance.max()}, entropy {points.entropy()[0]}; "
      f"PPCA entropy {post.entropy()[0]:.2f} nats per digit")

# A few digits of each class, to draw as clouds.
rng = np.random.default_rng(0)
chosen = np.concatenate([rng.choice(np.flatnonzero(y == d), 2, replace=False) for d in range(10)])
draws = post.sample(150, random_state=1)

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
cmap = plt.get_cmap("tab10")
axes[0].scatter(*points.mean.T, c=y, cmap="tab10", s=4, alpha=0.5)
axes[0].scatter(*points.mean[chosen].T, c=cmap(y[chosen]), s=40, edgecolor="k")
axes[0].set_title("PCA embedding: one point per digit (a PointMass)")
axes[1].scatter(*post.mean.T, c=y, cmap="tab10", s=4, alpha=0.15)
for i in chosen:
    axes[1].scatter(*draws[:, i].T, color=cmap(y[i]), s=3, alpha=0.35)
    axes[1].annotate(str(y[i]), post.mean[i], fontsize=9, weight="bold", ha="center", va="center")
axes[1].set_title("PPCA posterior: 150 draws for each of 20 digits")
for ax in axes:
    ax.set_xlabel("latent 1")
axes[0].set_ylabel("latent 2")
fig.tight_layout()

# %%
# What the posterior knows that the point does not
# ------------------------------------------------
# Hide the top five rows of pixels of four digits (NaN). PCA cannot embed
# them at all; PPCA conditions on the pixels that are left, and its
# posterior widens and tilts to show which positions those pixels still
# allow: the cloud of a partly seen digit can reach into other classes.
shown = chosen[[0, 5, 13, 17]]
masked = X[shown].copy()
masked[:, :40] = np.nan
try:
    pca.embed(masked)
except ValueError as err:
    print("PCA on partly hidden digits:", str(err).splitlines()[0])
post_masked = ppca.posterior(masked)
print(f"posterior sd, whole digit: {np.array2string(post.stddev[shown[0]], precision=2)}; top 5 rows hidden: "
      f"{np.array2string(post_masked.stddev[0], precision=2)}")

masked_draws = post_masked.sample(300, random_state=2)
fig, axes = plt.subplots(2, len(shown), figsize=(11, 5.2), gridspec_kw={"height_ratios": [3, 1]})
for j, i in enumerate(shown):
    ax = axes[0, j]
    ax.scatter(*post.mean.T, c=y, cmap="tab10", s=2, alpha=0.1)
    ax.scatter(*masked_draws[:, j].T, color=cmap(y[i]), s=3, alpha=0.4, label="rows 1-5 hidden")
    ax.scatter(*draws[:, i].T, color="k", s=3, alpha=0.4, label="whole digit")
    ax.set_title(f"a {y[i]}")
    axes[1, j].imshow(np.where(np.isnan(masked[j]), 0.5, masked[j]).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    axes[1, j].axis("off")
axes[0, 0].legend(loc="lower left", fontsize=7, markerscale=3)
fig.suptitle("PPCA posterior draws: whole digit (black) and with the top rows hidden (grey in the images)")
fig.tight_layout()

# %%
# t-SNE with other seeds is not a posterior
# -----------------------------------------
# Each run gives one layout; another seed gives another. Read as posteriors,
# both are point masses (every draw identical), and their disagreement is
# the optimiser's, not a measure of what the pixels leave uncertain: it has
# no likelihood behind it, is not calibrated, and cannot be scored. PPCA can
# score each image (``log_likelihood``); an embedding cannot.
runs = [probspace.Embedding(TSNE(2, init="random", random_state=s)).fit(X[:N_TSNE]) for s in SEEDS]
fig, axes = plt.subplots(1, len(runs), figsize=(4 * len(runs), 4))
for ax, run, seed in zip(axes, runs, SEEDS, strict=True):
    ax.scatter(*run.embed(X[:N_TSNE]).T, c=y[:N_TSNE], cmap="tab10", s=4)
    ax.set_title(f"t-SNE, seed {seed}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()

tsne_post = runs[0].posterior(X[:N_TSNE])
print(f"t-SNE posterior: every draw equal to the embedding? {np.all(tsne_post.sample(5) == tsne_post.mean)}; "
      f"variance {tsne_post.variance.max()}")
print(f"PPCA log-likelihood of the first digit: {ppca.log_likelihood(X[:1])[0]:.1f}")
try:
    runs[0].log_likelihood(X[:N_TSNE])
except NotImplementedError as err:
    print("t-SNE log-likelihood:", str(err).split(":")[0])
try:
    runs[0].embed(X[N_TSNE - 10:N_TSNE + 10] if N_TSNE < len(X) else X[::-1])
except ValueError as err:
    print("t-SNE on other digits:", str(err).split(":")[0])
plt.show()
