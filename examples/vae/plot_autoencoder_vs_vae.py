"""
Autoencoder vs VAE on digits: one point per image, or a belief over codes
=========================================================================

:class:`~probspace.Autoencoder` is the VAE's own network (same encoder, same
decoder, same constructor settings) trained to reconstruct its input, with no
noise on the code and no prior. Its posterior is a
:class:`~probspace.posteriors.PointMass`: one code per image, variance zero.
Swapping it for :class:`~probspace.VAE` is one line of code:

.. code-block:: python

    model = probspace.Autoencoder(2, **TRAINING)   # or probspace.VAE(2, **TRAINING)

This example fits both to scikit-learn's 8x8 handwritten digits with a 2-D
code and compares the code maps (points vs clouds), interpolations, and what
each does when the bottom half of a digit is hidden (zero-filled).
"""

# %%
# Fit both models with the same architecture
# -------------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
TRAINING = dict(hidden_dims=(128,) if FAST else (128, 128), likelihood="bernoulli",
                max_epochs=20 if FAST else 200, batch_size=256 if FAST else 128,
                learning_rate=1.5e-2 if FAST else 2e-3, random_state=0)

digits = load_digits()
X = digits.data / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2, random_state=0,
                                                    stratify=digits.target)
models = {"Autoencoder": probspace.Autoencoder(2, **TRAINING).fit(X_train),
          "VAE": probspace.VAE(2, **TRAINING).fit(X_train)}
for name, model in models.items():
    post = model.posterior(X_test)
    print(f"{name:11s} posterior {type(post).__name__:14s} mean sd of the codes {np.sqrt(post.variance).mean():.3f}")

# %%
# Code maps: points vs clouds
# ---------------------------
# The autoencoder places each held-out digit at one point; the VAE gives each
# a Gaussian cloud (two-sd ellipses drawn for a few digits). The autoencoder's
# codes are on no particular scale (nothing ties them to a prior), the VAE's
# sit where the standard-normal prior puts its mass.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
show = np.arange(0, len(X_test), 12)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    post = model.posterior(X_test)
    codes = post.mean
    ax.scatter(codes[:, 0], codes[:, 1], c=y_test, cmap="tab10", s=8, alpha=0.7)
    sd = np.sqrt(post.variance)
    for i in show:
        ax.add_patch(Ellipse(codes[i], 4 * sd[i, 0], 4 * sd[i, 1], fill=False,
                             color=plt.cm.tab10(y_test[i] / 9), lw=0.8))
    ax.set_title(f"{name}: {type(post).__name__}")
    ax.set_xlabel("z[0]")
axes[0].set_ylabel("z[1]")
fig.tight_layout()

# %%
# Interpolation between two digits
# --------------------------------
# Both decode a straight line between the two codes; only the VAE's prior says
# that the space between codes is meant to decode to plausible digits.
a, b = np.flatnonzero(y_test == 0)[0], np.flatnonzero(y_test == 7)[0]
fig, axes = plt.subplots(2, 8, figsize=(9, 2.6))
for row, (name, model) in enumerate(models.items()):
    for col, image in enumerate(model.interpolate(X_test[a], X_test[b], steps=8)):
        axes[row, col].imshow(image.reshape(8, 8), cmap="gray_r")
        axes[row, col].set_axis_off()
    axes[row, 0].set_title(name, loc="left", fontsize=9)
fig.tight_layout()

# %%
# Occlusion: hide the bottom half
# -------------------------------
# With the bottom four rows set to zero the image says less. The autoencoder
# still answers with one point (it moves, and nothing says it is less sure);
# the VAE's encoder widens its cloud for most digits. We report how far each
# model's code moves (in units of that model's spread of codes, so that the
# two scales compare) and the VAE's posterior sd ratio.
occluded = X_test.copy()
occluded[:, 32:] = 0.0
for name, model in models.items():
    full, hidden = model.posterior(X_test), model.posterior(occluded)
    spread = full.mean.std(axis=0).mean()
    shift = np.linalg.norm(hidden.mean - full.mean, axis=1) / spread
    line = f"{name:11s} code shift {np.median(shift):.2f} (median, in code spreads)"
    if name == "VAE":
        ratio = np.sqrt(hidden.variance / full.variance).mean(axis=1)
        line += f"; posterior sd grows x{np.median(ratio):.2f} (median), for {np.mean(ratio > 1):.0%} of digits"
    else:
        line += f"; posterior sd {np.sqrt(hidden.variance).max():.1f} before and after"
    print(line)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
pick = np.flatnonzero(y_test == 3)[:6]
for ax, (name, model) in zip(axes, models.items(), strict=True):
    full, hidden = model.posterior(X_test[pick]), model.posterior(occluded[pick])
    for post, style in ((full, "-"), (hidden, "--")):
        sd = np.sqrt(post.variance)
        ax.scatter(post.mean[:, 0], post.mean[:, 1], marker="o" if style == "-" else "x", color="k", s=20)
        for m, s in zip(post.mean, sd, strict=True):
            ax.add_patch(Ellipse(m, 4 * s[0], 4 * s[1], fill=False, ls=style, color="C3"))
    for m0, m1 in zip(full.mean, hidden.mean, strict=True):
        ax.annotate("", m1, m0, arrowprops=dict(arrowstyle="->", color="0.5"))
    ax.autoscale_view()
    ax.set_title(f"{name}: full (o) vs bottom half hidden (x)")
fig.tight_layout()
plt.show()
