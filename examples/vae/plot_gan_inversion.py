"""
Inverting a GAN with uncertainty: which codes could have drawn an occluded digit?
=================================================================================

A GAN's generator :math:`g` maps a code :math:`z \\sim \\mathcal{N}(0, I)` to an
image, but nothing maps an image back. *GAN inversion*, as usually done,
optimises one code so that :math:`g(z)` matches the image, and reports that
one point. When part of the image is hidden, the visible part pins the code
down less, and one optimised point says nothing about how much less, nor
whether other codes, with other completions, fit about as well.

:class:`~probspace.GeneratorPosterior` treats the generator as a likelihood
(here :math:`x \\mid z \\sim \\mathcal{N}(g(z), \\sigma^2 I)`) and samples the
posterior over codes by NUTS; hidden pixels are NaN and drop out of the
likelihood:

.. code-block:: python

    gp = probspace.GeneratorPosterior(generator, n_components=8, noise_scale=sigma)
    posterior = gp.fit(X_seen).posterior(X_seen)   # draws of z given the visible pixels

This example trains a small GAN (two-layer perceptrons, torch, on the CPU) on
scikit-learn's 8x8 handwritten digits, hides the bottom half of held-out
digits, and compares the optimised code with the posterior: the completions
each gives, which digit a classifier reads in them, and whether the intervals
for the hidden pixels contain the truth as often as they claim.
"""

# %%
# Train a small GAN on digits
# ---------------------------
# A standard GAN with the non-saturating generator loss; the generator ends
# in a sigmoid, so its output is an image of intensities in [0, 1].
import os

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
digits = load_digits()
X = digits.data / 16.0
X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.2, random_state=0,
                                                    stratify=digits.target)
D_CODE = 8
torch.manual_seed(0)


def mlp(sizes, last=None):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.LeakyReLU(0.2)]
    return torch.nn.Sequential(*layers[:-1], *([last] if last is not None else []))


generator = mlp([D_CODE, 128, 128, 64], torch.nn.Sigmoid())
critic = mlp([64, 128, 128, 1])
opt_g = torch.optim.Adam(generator.parameters(), lr=1e-3, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.999))
data = torch.as_tensor(X_train, dtype=torch.float32)
bce = torch.nn.functional.binary_cross_entropy_with_logits
ones, zeros = torch.ones(64, 1), torch.zeros(64, 1)
for _ in range(1000 if FAST else 8000):
    fake = generator(torch.randn(64, D_CODE))
    loss_d = bce(critic(data[torch.randint(0, len(data), (64,))]), ones) + bce(critic(fake.detach()), zeros)
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = bce(critic(fake), ones)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
generator.requires_grad_(False)

# %%
# Point inversion, and the noise scale
# ------------------------------------
# The usual inversion: gradient descent on the code, here on the negative log
# posterior (squared error on the visible pixels over :math:`2\sigma^2`, plus
# :math:`\|z\|^2/2`), from :math:`z = 0`. Inverting 100 *complete* held-out
# digits this way and measuring the residuals gives the noise scale
# :math:`\sigma` the likelihood uses: how far real digits lie from the
# generator's images.


def invert(X_seen, sigma, steps=300):
    seen = torch.as_tensor(~np.isnan(X_seen))
    x = torch.as_tensor(np.nan_to_num(X_seen), dtype=torch.float32)
    z = torch.zeros(len(X_seen), D_CODE, requires_grad=True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        loss = (((generator(z) - x) ** 2) * seen).sum() / (2 * sigma**2) + 0.5 * (z**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return z.detach().numpy()


def images(z):
    with torch.no_grad():
        return generator(torch.as_tensor(z, dtype=torch.float32).reshape(-1, D_CODE)).numpy().reshape(
            np.shape(z)[:-1] + (64,))


calibration = X_test[:100]
sigma = 0.15
for _ in range(2):  # the MAP depends (weakly) on sigma: refine once
    sigma = float(np.sqrt(np.mean((images(invert(calibration, sigma)) - calibration) ** 2)))
print(f"noise scale from 100 complete held-out digits: sigma = {sigma:.3f}")

# %%
# Hide the bottom half of held-out digits
# ---------------------------------------
# Digits whose top half alone is ambiguous (a 3, a 7 and a 9 can share it).
classes = [3, 7, 9] if FAST else [3, 7, 9, 5]
pick = np.array([100 + np.flatnonzero(y_test[100:] == k)[0] for k in classes])
truth, labels = X_test[pick], y_test[pick]
X_seen = truth.copy()
X_seen[:, 32:] = np.nan  # rows 4-7 of the 8x8 image
hidden = np.isnan(X_seen)
z_point = invert(X_seen, sigma)

# %%
# The posterior over codes, by NUTS
# ---------------------------------
# Rows are independent a posteriori. One call per digit gives each its own
# step size and mass matrix (one call for all would run them jointly, at the
# step size of the hardest).
gp = probspace.GeneratorPosterior(generator, n_components=D_CODE, likelihood="gaussian", noise_scale=sigma,
                                  n_chains=2 if FAST else 4, n_warmup=100 if FAST else 250,
                                  n_draws=100 if FAST else 300, random_state=0).fit(X_seen)
posteriors, divergences = [], 0
for row in X_seen:
    posteriors.append(gp.posterior(row[None]))
    divergences += int(gp.sample_stats_["diverging"].sum())
draws = np.concatenate([p.draws for p in posteriors], axis=2)  # (chain, draw, digit, code)
completions = images(draws)  # (chain, draw, digit, 64)

# %%
# Convergence, from ArviZ
# -----------------------
# R-hat near 1 and a few hundred effective draws per code coordinate say the
# chains agree; a multimodal posterior (two readings of the same half digit)
# shows as a large R-hat when chains settle in different modes.
rhat = np.array([[float(az.rhat(draws[:, :, i, j])) for j in range(D_CODE)] for i in range(len(pick))])
ess = np.array([[float(az.ess(draws[:, :, i, j])) for j in range(D_CODE)] for i in range(len(pick))])

# %%
# Which digit is it? A classifier reads the completions
# -----------------------------------------------------
# A logistic regression trained on the (complete) training digits labels the
# point inversion's image once, and every posterior completion: their shares
# are the posterior probability of each reading.
classifier = LogisticRegression(max_iter=3000).fit(X_train, y_train)
read_point = classifier.predict(images(z_point))
read_draws = classifier.predict(completions.reshape(-1, 64)).reshape(completions.shape[:3])
shares = np.stack([np.bincount(read_draws[:, :, i].ravel(), minlength=10) / read_draws[:, :, i].size
                   for i in range(len(pick))])
print("digit | point reads | posterior reads (share)        | max R-hat | min ESS")
for i, k in enumerate(labels):
    top = np.argsort(shares[i])[::-1][:3]
    text = ", ".join(f"{c}: {shares[i, c]:.2f}" for c in top if shares[i, c] > 0)
    print(f"  {k}   |      {read_point[i]}      | {text:30s} | {rhat[i].max():9.3f} | {ess[i].min():7.0f}")
print(f"divergent transitions: {divergences}")

# %%
# Do the intervals for the hidden pixels hold the truth?
# ------------------------------------------------------
# The posterior predictive of a hidden pixel is :math:`g(z) + \sigma\epsilon`
# over posterior draws :math:`z`; the point inversion's is
# :math:`g(z^\star) + \sigma\epsilon`, one code. Each central interval at a
# nominal level should contain the true pixel that often.
noise = np.random.default_rng(0).standard_normal(completions.shape) * sigma
predictive = (completions + noise).reshape((-1,) + truth.shape)
levels = np.array([0.2, 0.4, 0.6, 0.8, 0.9, 0.95])
point_image = images(z_point)
cover_post, cover_point = [], []
for level in levels:
    lo, hi = np.quantile(predictive, [(1 - level) / 2, (1 + level) / 2], axis=0)
    cover_post.append(((truth >= lo) & (truth <= hi))[hidden].mean())
    cover_point.append((np.abs(truth - point_image) <= norm.ppf((1 + level) / 2) * sigma)[hidden].mean())
print("nominal   " + " ".join(f"{v:5.2f}" for v in levels))
print("posterior " + " ".join(f"{v:5.2f}" for v in cover_post))
print("point     " + " ".join(f"{v:5.2f}" for v in cover_point))

# %%
# One optimised code against the posterior
# ----------------------------------------
# Each row: the held-out digit, what the inversion sees (hidden half hatched),
# the point inversion's image, four posterior completions, the posterior
# standard deviation of each pixel, and which digit the classifier reads in
# the posterior completions (bars) and in the point inversion (black dot).
n_show = 4
fig = plt.figure(figsize=(13, 1.75 * len(pick) + 0.6))
grid = fig.add_gridspec(len(pick), 4 + n_show + 2, width_ratios=[1] * (4 + n_show) + [0.25, 2.6])
rng = np.random.default_rng(1)
titles = ["held-out", "seen", "point inversion"] + [f"posterior draw {j + 1}" for j in range(n_show)] + ["pixel sd"]
for i in range(len(pick)):
    flat = completions[:, :, i].reshape(-1, 64)
    chosen = flat[rng.choice(len(flat), n_show, replace=False)]
    seen_img = np.ma.masked_invalid(X_seen[i].reshape(8, 8))
    panels = [truth[i], seen_img, point_image[i], *chosen, flat.std(axis=0)]
    for j, img in enumerate(panels):
        ax = fig.add_subplot(grid[i, j])
        cmap = plt.get_cmap("magma" if j == len(panels) - 1 else "gray_r").copy()
        cmap.set_bad("0.85")
        ax.imshow(np.reshape(img, (8, 8)), cmap=cmap, vmin=0, vmax=0.5 if j == len(panels) - 1 else 1)
        if j == 1:
            ax.fill_between([-0.5, 7.5], 3.5, 7.5, hatch="///", facecolor="none", edgecolor="0.5", lw=0)
        if j >= 2:
            ax.axhline(3.5, color="tab:red", lw=0.8)
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title(titles[j], fontsize=8)
    ax = fig.add_subplot(grid[i, -1])
    ax.bar(np.arange(10), shares[i], color="tab:blue")
    ax.plot(read_point[i], 1.02, "ko", ms=5)
    ax.set_ylim(0, 1.1)
    ax.set_xticks(range(10))
    ax.tick_params(labelsize=7)
    ax.set_ylabel(f"R-hat {rhat[i].max():.2f}", fontsize=7)
    if i == 0:
        ax.set_title("digit read: posterior (bars), point (dot)", fontsize=7)
fig.suptitle(f"Inverting a GAN on half-hidden digits (noise sd {sigma:.2f}): one code vs the posterior")
fig.tight_layout()
plt.show()

# %%
# Calibration of the hidden pixels
# --------------------------------
# The diagonal is perfect calibration. The point inversion's intervals only
# carry the pixel noise, not the doubt about the code, so at the usual levels
# (80-95 %) they cover the hidden pixels less often than they claim; the
# posterior's come closer. (At low levels both cover too often: most hidden
# pixels are blank background, exactly 0, which both predict.)
fig, ax = plt.subplots(figsize=(4.6, 4.2))
ax.plot([0, 1], [0, 1], color="0.6", ls="--", label="nominal")
ax.plot(levels, cover_post, "o-", label="posterior (NUTS)")
ax.plot(levels, cover_point, "s-", label="point inversion")
ax.set_xlabel("nominal level of the central interval")
ax.set_ylabel(f"share of {int(hidden.sum())} hidden pixels covered")
ax.legend()
ax.set_title("Intervals for the hidden half")
fig.tight_layout()
plt.show()
