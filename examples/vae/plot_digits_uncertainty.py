"""
Handwritten digits: a belief over codes, and what happens when half the digit is gone
=====================================================================================

An autoencoder maps each image to one code. A variational autoencoder (VAE)
learns the same two maps, an encoder and a decoder, but its encoder returns a
*distribution* over codes: ``vae.posterior(X)`` is a
:class:`~probspace.posteriors.DiagonalNormal` with a mean (``loc``, what
``vae.embed`` returns) and a standard deviation (``scale``) per observation
and latent dimension.

This example fits a VAE with a two-dimensional code to scikit-learn's 8x8
handwritten digits, so that the codes can be drawn on a page, and then:

* draws the posterior of a few digits as ellipses on the code map;
* generates new digits and interpolates between two digits;
* hides the bottom half of some digits and asks how the belief over their
  codes changes. The encoder cannot be told that pixels are *missing*, so we
  compare what it does with a zero-filled image against the exact posterior
  given the visible pixels only, which a 2-D code lets us compute on a grid;
* fits a conditional VAE (:class:`~probspace.CVAE`) that writes a chosen digit;
* summarises posterior draws with ArviZ and scores held-out digits with the
  importance-weighted log-likelihood.
"""

# %%
# Load the digits and fit a VAE
# -----------------------------
# 1797 images of 8x8 pixels with grey levels 0-16, which we scale to [0, 1].
# A Bernoulli likelihood treats each pixel as the probability of "ink": it is
# the usual choice for images like these (grey levels make its
# log-likelihood a cross-entropy score rather than a normalised density, so
# we only compare such numbers between models with the same likelihood).
# We hold out 20% of the digits to score the model and to play with.
# ``PROBSPACE_EXAMPLES_FAST=1`` trains smaller networks for a few epochs (with
# larger minibatches and steps) and uses fewer digits and draws; the figures
# are then rougher, the story the same.
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import probspace
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
HIDDEN = (128,) if FAST else (128, 128)
EPOCHS = 20 if FAST else 200
BATCH_SIZE = 256 if FAST else 128
LEARNING_RATE = 1.5e-2 if FAST else 2e-3
N_GRID = 121 if FAST else 301  # grid points per axis for the exact posterior
N_STUDY = 100 if FAST else None  # held-out digits in the occlusion study (None: all)
N_ARVIZ_DRAWS = 200 if FAST else 2000

digits = load_digits()
X = digits.data / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2, random_state=0,
                                                    stratify=digits.target)

TRAINING = dict(hidden_dims=HIDDEN, likelihood="bernoulli", max_epochs=EPOCHS, batch_size=BATCH_SIZE,
                learning_rate=LEARNING_RATE, random_state=0)
vae = probspace.VAE(n_components=2, **TRAINING).fit(X_train)
print(f"{len(X_train)} training and {len(X_test)} held-out digits, {X.shape[1]} pixels each")
print(f"training ELBO per digit: epoch 1 {vae.history_[0]:.2f}, epoch {vae.n_iter_} {vae.history_[-1]:.2f}")

post = vae.posterior(X_test)
print(post)
print(f"posterior sd of the held-out codes: median {np.median(post.scale):.3f}, "
      f"range {post.scale.min():.3f}-{post.scale.max():.3f}")


def show_digits(ax, images, n_cols, col_labels=None, row_labels=None):
    """Draw 8x8 images (flattened) as one tiled picture, ``n_cols`` per row, on one axes."""
    images = np.reshape(images, (-1, 8, 8))
    n_rows = -(-len(images) // n_cols)
    tiles = np.full((9 * n_rows - 1, 9 * n_cols - 1), np.nan)  # one-pixel gaps (NaN) between tiles
    for k, image in enumerate(images):
        r, c = divmod(k, n_cols)
        tiles[9 * r:9 * r + 8, 9 * c:9 * c + 8] = image
    ax.imshow(tiles, cmap=plt.get_cmap("gray_r").with_extremes(bad="0.85"), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(9 * np.arange(n_cols) + 3.5, col_labels if col_labels is not None else [])
    ax.set_yticks(9 * np.arange(n_rows) + 3.5, row_labels if row_labels is not None else [])
    ax.tick_params(length=0, labelsize=8)
    ax.spines[:].set_visible(False)


def sd_ellipse(loc, scale, colour, **kwargs):
    """The 2-sd ellipse of a diagonal Gaussian (axes along the latent dimensions)."""
    return Ellipse(loc, 4 * scale[0], 4 * scale[1], facecolor="none", edgecolor=colour, **kwargs)


# %%
# Codes are beliefs: the code map with posterior ellipses
# -------------------------------------------------------
# Each grey dot is the posterior *mean* of a training digit, what an ordinary
# autoencoder would call its code, coloured by the digit it shows. The VAE
# also says how far from that mean the code may be: the ellipses are two
# posterior standard deviations wide, for the first held-out example of each
# digit. Where the classes overlap on the map, an ellipse often covers codes
# of several digits.
codes_train = vae.embed(X_train)
assert np.allclose(codes_train, vae.posterior(X_train).mean)
colours = plt.get_cmap("tab10")
examples = np.array([np.flatnonzero(y_test == k)[0] for k in range(10)])

fig, ax = plt.subplots(figsize=(7.5, 6.5))
ax.scatter(*codes_train.T, c=colours(y_train), s=6, alpha=0.35, linewidths=0)
for k, i in enumerate(examples):
    ax.add_patch(sd_ellipse(post.loc[i], post.scale[i], colours(k), linewidth=2))
    ax.annotate(str(k), post.loc[i], ha="center", va="center", fontsize=11, weight="bold", color=colours(k))
ax.legend(handles=[Line2D([], [], marker="o", linestyle="", color=colours(k), label=str(k)) for k in range(10)],
          title="digit", loc="upper left", bbox_to_anchor=(1.01, 1))
ax.set_xlabel("latent dimension 0")
ax.set_ylabel("latent dimension 1")
ax.set_title("Posterior means of training digits; 2-sd posterior ellipses of held-out digits")
ax.set_aspect("equal")
fig.tight_layout()

# %%
# Generating digits, and walking between two of them
# --------------------------------------------------
# ``vae.sample(n)`` draws codes from the prior :math:`\mathcal{N}(0, I)` and
# then pixels from the decoder; with a Bernoulli likelihood those pixels are
# 0 or 1, so to *see* what the decoder says we plot the decoded means
# ``vae.decode(Z)``, the ink probability of each pixel. ``vae.interpolate``
# decodes the straight line between the posterior means of two images.
X_new, Z_new = vae.sample(30, random_state=1)
print(f"vae.sample gives pixels in {np.unique(X_new)} and codes of shape {Z_new.shape}")
fig, ax = plt.subplots(figsize=(8, 2.8))
show_digits(ax, vae.decode(Z_new), n_cols=10)
ax.set_title("vae.decode(Z) for 30 codes drawn from the prior")
fig.tight_layout()

a, b = examples[0], examples[4]
path = vae.interpolate(X_test[a], X_test[b], steps=8)
fig, ax = plt.subplots(figsize=(9, 1.8))
show_digits(ax, np.vstack([X_test[a], path, X_test[b]]), n_cols=10,
            col_labels=["input"] + [f"t={t:.2f}" for t in np.linspace(0, 1, 8)] + ["input"])
ax.xaxis.tick_top()
ax.set_title("vae.interpolate between a held-out 0 and a held-out 4", pad=18)
fig.tight_layout()

# %%
# Hiding the bottom half
# ----------------------
# Now cover the bottom four rows of every held-out digit. A VAE's encoder
# takes complete images and has no way to be told "these pixels are
# unknown", so the usual trick is to fill them with a value, here 0 (no
# ink). That is not a digit with missing pixels: it is a *different* image,
# one whose bottom half is blank, and the encoder will give its belief about
# the code of that image. Is it less sure than for the clean digit?
#
# We can check the encoder against the exact answer. With a 2-D code the
# posterior of the fitted model,
# :math:`p(z \mid x) \propto p(z) \prod_j p(x_j \mid z)`, can be computed on a
# fine grid of codes: ``vae.decode`` gives the ink probability :math:`m_j(z)`
# of every pixel at every grid point, and each pixel adds
# :math:`x_j \log m_j(z) + (1 - x_j) \log(1 - m_j(z))`. The product runs over
# any set of pixels we like, so besides the clean and the zero-filled image
# we can also condition on the **top half only**, which is the honest
# posterior for a digit whose bottom half is *unknown*. We compare
# spreads by the differential entropy of each posterior, in nats (for a 2-D
# Gaussian, one more nat means an ellipse :math:`e \approx 2.7` times larger
# in area).
visible = np.zeros((8, 8), dtype=bool)
visible[:4] = True
visible = visible.ravel()
X_zero = np.where(visible, X_test, 0.0)

axis = np.linspace(-4.5, 4.5, N_GRID)
cell_area = (axis[1] - axis[0]) ** 2
grid = np.column_stack([g.ravel() for g in np.meshgrid(axis, axis)])
ink = np.clip(vae.decode(grid), 1e-6, 1 - 1e-6)  # (n_grid_points, 64) ink probabilities
log_ink, log_blank = np.log(ink), np.log1p(-ink)
log_prior = -0.5 * np.sum(grid**2, axis=1)


def grid_posterior(images, pixels):
    """Exact posterior of the codes on the grid, given only the pixels where ``pixels`` is True."""
    w = pixels.astype(float)
    log_post = log_prior + (w * images) @ log_ink.T + (w * (1 - images)) @ log_blank.T
    log_post -= log_post.max(axis=1, keepdims=True)
    p = np.exp(log_post)
    return p / p.sum(axis=1, keepdims=True)


def grid_entropy(p):
    """Differential entropy (nats) of grid posteriors, one per row."""
    return -np.sum(p * np.log(np.clip(p, 1e-300, None)), axis=1) + np.log(cell_area)


def in_chunks(fn, images, size=50):
    """Apply ``fn`` to blocks of rows (the grid posteriors of many images are large)."""
    return np.concatenate([fn(images[start:start + size]) for start in range(0, len(images), size)])


study = slice(None) if N_STUDY is None else slice(N_STUDY)
X_s, X_s_zero = X_test[study], X_zero[study]
all_pixels = np.ones(X.shape[1], dtype=bool)
entropy = {
    ("encoder", "clean"): vae.posterior(X_s).entropy(),
    ("encoder", "zero-filled"): vae.posterior(X_s_zero).entropy(),
    ("exact", "clean"): in_chunks(lambda x: grid_entropy(grid_posterior(x, all_pixels)), X_s),
    ("exact", "zero-filled"): in_chunks(lambda x: grid_entropy(grid_posterior(x, all_pixels)), X_s_zero),
    ("exact", "top half only"): in_chunks(lambda x: grid_entropy(grid_posterior(x, visible)), X_s),
}
print(f"mean posterior entropy over {len(X_s)} held-out digits (nats):")
for (source, data), h in entropy.items():
    print(f"  {source:7s} {data:14s} {h.mean():6.3f}")
gain_enc = entropy[("encoder", "zero-filled")] - entropy[("encoder", "clean")]
gain_top = entropy[("exact", "top half only")] - entropy[("exact", "clean")]
print(f"zero-filling widens the encoder's posterior for {np.mean(gain_enc > 0):.0%} of the digits, "
      f"by {gain_enc.mean():.2f} nats on average")
print(f"keeping only the top half widens the exact posterior for {np.mean(gain_top > 0):.0%} of the digits, "
      f"by {gain_top.mean():.2f} nats on average")
shift = np.linalg.norm(vae.embed(X_s_zero) - vae.embed(X_s), axis=1) / np.mean(vae.posterior(X_s).scale, axis=1)
print(f"zero-filling moves the encoder's posterior mean by {np.median(shift):.1f} clean posterior sds "
      "(median)")

# %%
# On clean digits the encoder and the exact grid posterior have about the
# same spread: the amortised Gaussian is a fair summary there. The
# zero-filled image is a legitimate input too, and for it encoder and grid
# roughly agree again, with a somewhat wider posterior than for the clean
# digit. But it answers the wrong question. Conditioning on the top half
# alone widens the posterior more than twice as much: the encoder is
# describing, fairly confidently, a digit whose bottom half is *blank*, and
# its mean moves away from the clean code by more than the clean
# posterior's own spread (the median shift is printed above).
#
# The map below shows this for three held-out digits. The filled contours
# hold 50% and 95% of the exact posterior given the top half only; the solid
# ellipse is the encoder's 2-sd posterior for the clean digit and the dashed
# one for the zero-filled digit. To name the digits that the posterior
# allows, we label every grid point with the digit of its nearest training
# codes (15 nearest neighbours) and add up posterior mass per digit; for the
# encoder we do the same with its Gaussian evaluated on the grid.
knn = KNeighborsClassifier(n_neighbors=15).fit(codes_train, y_train)
grid_digit = np.eye(10)[knn.predict(grid)]  # (n_grid_points, 10) one-hot labels


def encoder_on_grid(images):
    """The encoder's Gaussian posterior of each image, normalised on the grid."""
    post_images = vae.posterior(images)
    u = (grid[None] - post_images.loc[:, None]) / post_images.scale[:, None]
    q = np.exp(-0.5 * np.sum(u**2, axis=-1))
    return q / q.sum(axis=1, keepdims=True)


def mass_levels(p, levels=(0.95, 0.5)):
    """Density thresholds of the regions holding the given posterior mass."""
    sorted_p = np.sort(p)[::-1]
    return [sorted_p[np.searchsorted(np.cumsum(sorted_p), level)] for level in levels]


def digit_probs(p):
    """Posterior probability of each digit's region of the code map (rows: images)."""
    return p @ grid_digit


shown = np.array([np.flatnonzero(y_test == k)[0] for k in (3, 4, 7)])
p_top = grid_posterior(X_test[shown], visible)
enc_clean, enc_zero = vae.posterior(X_test[shown]), vae.posterior(X_zero[shown])
enc_digit = digit_probs(encoder_on_grid(X_zero[shown]))
fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), sharex=True, sharey=True)
for ax, i, p, q, loc_c, sd_c, loc_z, sd_z in zip(axes, shown, p_top, enc_digit, enc_clean.loc, enc_clean.scale,
                                                  enc_zero.loc, enc_zero.scale, strict=True):
    ax.scatter(*codes_train.T, c=colours(y_train), s=4, alpha=0.25, linewidths=0)
    ax.contourf(axis, axis, p.reshape(N_GRID, N_GRID), levels=[*mass_levels(p), p.max()],
                colors=["0.55", "0.25"], alpha=0.55)
    ax.add_patch(sd_ellipse(loc_c, sd_c, "k", linewidth=2))
    ax.add_patch(sd_ellipse(loc_z, sd_z, "k", linewidth=2, linestyle="--"))
    probs = digit_probs(p)
    top3 = np.argsort(probs)[::-1][:3]
    ax.set_title(f"a held-out {y_test[i]}, top half only:\n"
                 + ", ".join(f"P({k}) = {probs[k]:.2f}" for k in top3), fontsize=9)
    ax.set_xlabel("latent dimension 0")
    print(f"held-out {y_test[i]} (index {i}): exact posterior given the top half puts "
          + ", ".join(f"{probs[k]:.2f} on {k}" for k in top3)
          + f"; the encoder, zero-filled, puts {np.max(q):.2f} on {np.argmax(q)}")
axes[0].set_ylabel("latent dimension 1")
axes[0].legend(handles=[Line2D([], [], color="k", linewidth=2, label="encoder, clean (2 sd)"),
                        Line2D([], [], color="k", linewidth=2, linestyle="--", label="encoder, zero-filled (2 sd)"),
                        plt.Rectangle((0, 0), 1, 1, color="0.4", alpha=0.55, label="exact, top half (50%, 95%)")],
               loc="lower left", fontsize=7)
fig.tight_layout()

# %%
# Over all the held-out digits of the study, which digit does each posterior
# find most probable, and how often is that the digit actually written?
truth = y_test[study]
for name, images, posterior_fn in (
        ("encoder, clean digit", X_s, encoder_on_grid),
        ("encoder, zero-filled digit", X_s_zero, encoder_on_grid),
        ("exact, top half only", X_s, lambda x: grid_posterior(x, visible))):
    probs = in_chunks(lambda x, fn=posterior_fn: digit_probs(fn(x)), images)
    print(f"{name:27s}: most probable digit is the true one for {np.mean(probs.argmax(axis=1) == truth):.0%}, "
          f"mean probability of the true digit {np.mean(probs[np.arange(len(truth)), truth]):.2f}")

# %%
# The first line is the ceiling: a 2-D code map labelled by nearest
# neighbours cannot name every clean digit. The exact posterior given the
# top half comes close to it, and is more modest about it (a lower
# probability on the true digit, the rest spread over the digits that share
# that top half). The encoder's posterior for the zero-filled image names
# the true digit far less often, although its spread grew only modestly
# (the entropy gain printed earlier): zero-filling made the encoder a
# little less sure and much more often wrong.

# %%
# What do those posteriors mean in pixels? Each row below shows the clean
# digit, the zero-filled input, the encoder's reconstruction of that input
# (``vae.decode`` of its posterior mean), and then six codes drawn from the
# exact top-half posterior, decoded. The encoder reconstructs a digit with a
# faint bottom half; the draws complete the bottom half in the different
# ways the top half allows.
rng = np.random.default_rng(2)
cell = axis[1] - axis[0]
rows = []
for i, p in zip(shown, p_top, strict=True):
    draws = grid[rng.choice(len(grid), size=6, p=p)] + rng.uniform(-cell / 2, cell / 2, size=(6, 2))
    rows.append(np.vstack([X_test[i], X_zero[i], vae.decode(vae.embed(X_zero[[i]])), vae.decode(draws)]))
fig, ax = plt.subplots(figsize=(8, 0.95 * len(shown) + 0.9))
show_digits(ax, np.vstack(rows), n_cols=9, col_labels=["clean", "zero-\nfilled", "encoder"] + ["draw"] * 6,
            row_labels=[str(k) for k in y_test[shown]])
ax.xaxis.tick_top()
for r in range(len(shown)):  # the boundary between the visible and the hidden half
    ax.plot([9 * 3 - 1, 9 * 9 - 1], [9 * r + 3.5] * 2, color="tab:red", linewidth=1)
ax.set_title("Decoded draws from the exact posterior given the top half (above the red lines)", pad=28,
             fontsize=10)
fig.tight_layout()

# %%
# A check that needs no grid: the log-likelihood
# ----------------------------------------------
# The grid is only feasible because the code has two dimensions. A check
# that works in any dimension is ``vae.log_likelihood(X)``, an
# importance-weighted estimate (a lower bound) of :math:`\log p(x)`. It tells
# us that the zero-filled images are *unusual* for the model, even where the
# encoder returns a tidy posterior for them.
ll_clean, ll_zero = vae.log_likelihood(X_s), vae.log_likelihood(X_s_zero)
print(f"held-out log-likelihood (IWAE, {vae.n_importance} samples): clean {ll_clean.mean():.2f}, "
      f"zero-filled {ll_zero.mean():.2f} per digit; lower for {np.mean(ll_zero < ll_clean):.0%} of the digits")

# %%
# A conditional VAE writes the digit you ask for
# ----------------------------------------------
# :class:`~probspace.CVAE` gives encoder and decoder the label as well, so
# the code only has to hold what the label does not say: the *style* (slant,
# thickness, size). ``cvae.sample(10, y=[3] * 10)`` draws ten codes from the
# prior and ten images of a 3; ``cvae.decode(Z, y=...)`` gives their ink
# probabilities. Decoding the same ten codes with every other label (the
# other rows) writes each digit in the ten styles.
cvae = probspace.CVAE(n_components=2, **TRAINING).fit(X_train, y_train)
_, Z_three = cvae.sample(10, y=[3] * 10, random_state=3)
threes = cvae.decode(Z_three, y=[3] * 10)
fig, ax = plt.subplots(figsize=(6, 6.4))
show_digits(ax, np.vstack([threes if k == 3 else cvae.decode(Z_three, y=[k] * 10) for k in range(10)]),
            n_cols=10, row_labels=[f"y={k}" for k in range(10)])
ax.get_yticklabels()[3].set_color("tab:red")
ax.set_xlabel("ten codes drawn with cvae.sample(10, y=[3] * 10)")
ax.set_title("cvae.decode(Z, y=[k] * 10): the same ten codes, every label")
fig.tight_layout()
print(f"CVAE held-out log p(x | y) with the true label: {cvae.score(X_test, y_test):.2f} per digit")

# %%
# The CVAE's ``score`` is :math:`\log p(x \mid y)`, which is not comparable
# with the VAE's :math:`\log p(x)` as it stands: knowing the label is worth
# up to :math:`\log 10 \approx 2.3` nats here.

# %%
# ArviZ summary of the codes
# --------------------------
# ``vae.to_arviz(X, n_samples=...)`` draws codes from the posterior of each
# observation and returns them as the variable ``z`` (group
# ``latent_posterior``) with dims ``obs`` and ``latent_dim`` (an ``InferenceData`` on ArviZ 0.x, a ``DataTree`` on 1.x),
# together with the decoded means as ``posterior_predictive`` and the
# images as ``observed_data``. The draws are independent, from a single
# "chain", so ``kind="stats"`` leaves out R-hat and ESS, which would say
# nothing about the fit; the means and sds match ``loc`` and ``scale`` up to
# Monte Carlo error.
import arviz as az

idata = vae.to_arviz(X_test[shown], n_samples=N_ARVIZ_DRAWS, random_state=4)
groups = idata.groups() if arviz_major_version() < 1 else list(idata.children)
print(f"ArviZ {az.__version__}: {type(idata).__name__} with groups {groups}")
summary = az.summary(idata, group="latent_posterior", var_names=["z"], kind="stats")
summary.insert(0, "digit", np.repeat(y_test[shown], 2))
summary.insert(2, "loc", post.loc[shown].ravel().round(3))
summary.insert(4, "scale", post.scale[shown].ravel().round(3))
print(summary.to_string())

# %%
# Held-out log-likelihood, and a bigger code
# ------------------------------------------
# ``vae.score(X)`` is the mean of ``log_likelihood``; its gap to the mean
# ELBO (``vae.elbo_per_observation``) shows how much the importance samples
# tighten the bound. Is a two-dimensional code too small? We fit the same
# network with an 8-dimensional code and let the posterior tell us how much
# of it is used. A latent dimension the model ignores has a posterior equal
# to its prior for every digit: mean near 0 and sd near 1. The
# Kullback-Leibler divergence from the prior to the posterior, per
# dimension and averaged over digits, measures how far each dimension's
# posterior moved; we call a dimension *active* when it moved by more than
# 0.1 nats.
vae8 = probspace.VAE(n_components=8, **TRAINING).fit(X_train)
post8 = vae8.posterior(X_test)
kl = np.mean(0.5 * (post8.loc**2 + post8.scale**2 - 1) - np.log(post8.scale), axis=0)
print(f"d = 8: {np.sum(kl > 0.1)} active dimensions")
print("  KL(posterior || prior) per dimension (nats):", " ".join(f"{v:.2f}" for v in kl))
print("  posterior sd per dimension, mean over digits: ", " ".join(f"{v:.2f}" for v in post8.scale.mean(axis=0)))
print(f"{'model':>12} {'ELBO':>8} {'IWAE':>8}")
scores = {}
for name, model in (("VAE, d = 2", vae), ("VAE, d = 8", vae8)):
    scores[name] = model.score(X_test)
    print(f"{name:>12} {model.elbo_per_observation(X_test).mean():8.2f} {scores[name]:8.2f}")
print(f"held-out IWAE, d = 8 minus d = 2: {scores['VAE, d = 8'] - scores['VAE, d = 2']:+.2f} nats per digit")

# %%
# The unused dimensions are the ones whose posterior sd stays near 1. Their
# posterior is the prior, whatever the digit: the data carry no information
# about them, and an embedding that reports only the posterior means would
# present those coordinates as meaningful numbers all the same. Here the
# bigger code changes the held-out log-likelihood by a fraction of a nat
# per digit: the extra dimensions that are used add little that this
# decoder can turn into better predictions of the pixels.
plt.show()

# sphinx_gallery_thumbnail_number = 4
