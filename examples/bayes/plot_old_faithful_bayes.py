"""
Old Faithful by MCMC: label probabilities with parameter uncertainty
====================================================================

An EM fit of a Gaussian mixture returns one set of parameters and, given
them, the exact probability that each observation came from each component.
Those probabilities treat the fitted weights, means and variances as if they
were known. With ``sampler="gibbs"`` probspace fits the mixture by Markov
chain Monte Carlo instead: several chains of draws from the posterior over
the parameters, and label probabilities averaged over those draws.

This example fits the durations of 272 eruptions of the Old Faithful geyser
with two components and shows what the chains give: convergence checks in
ArviZ, the probability that each eruption is a short one *with a credible
band* from parameter uncertainty, a posterior predictive density, a choice
of the number of components by PSIS-LOO (``az.compare``), and, in the full
run, a check that the NUTS sampler agrees with Gibbs.
"""

# %%
# The data, an EM fit and a Gibbs fit
# -----------------------------------
# We use the eruption durations alone (minutes), so every plot can show the
# whole model. ``sampler="gibbs"`` runs ``n_chains`` chains of blocked Gibbs
# sampling (labels given parameters, then parameters given labels, with
# conjugate priors), each started from its own EM fit, and keeps
# ``n_draws`` draws per chain after ``n_warmup``. The components of every
# draw are sorted by their means, so component 0 is always the short
# eruptions and the chains cannot swap labels. ``weights_``, ``means_`` and
# ``covariances_`` become posterior means.
# ``PROBSPACE_EXAMPLES_FAST=1`` shortens the chains and skips NUTS.
import os
import warnings

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm, skew

import probspace
from probspace.datasets import load_old_faithful
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_DRAWS = 200 if FAST else 4000  # per chain, after as many warm-up sweeps
N_ARVIZ = 100 if FAST else 1000  # draws per chain handed to ArviZ (evenly thinned)
N_BAND = 100 if FAST else 1000  # parameter draws behind the credible bands

faithful = load_old_faithful()
X = faithful.data[:, :1]
duration = X[:, 0]

em = probspace.GaussianMixture(2, random_state=0).fit(X)
short_em = int(np.argmin(em.means_[:, 0]))
gm = probspace.GaussianMixture(2, sampler="gibbs", n_draws=N_DRAWS, n_warmup=N_DRAWS, random_state=0).fit(X)
print(gm.posterior(X))
print(f"draws_: {', '.join(f'{k} {v.shape}' for k, v in gm.draws_.items())}")
print(f"prior_: {gm.prior_}")

w, mu = gm.draws_["weights"], gm.draws_["means"][..., 0]
sd = np.sqrt(gm.draws_["covariances"][..., 0, 0])
order = [short_em, 1 - short_em]
print(f"{'':14} {'EM':>8} {'posterior mean ± sd':>22}")
for name, em_value, value in (("weight", em.weights_[order], w), ("mean", em.means_[order, 0], mu),
                              ("sd", np.sqrt(em.covariances_[order, 0, 0]), sd)):
    for k, label in enumerate(("short", "long")):
        print(f"{name + ' ' + label:14} {em_value[k]:8.3f} {value[..., k].mean():13.3f} ± {value[..., k].std():.3f}")

# %%
# Did the chains converge?
# ------------------------
# ``to_arviz`` hands the chains to ArviZ: the parameters and a label draw per
# parameter draw in ``posterior``, the log-likelihood of every eruption
# under every draw in ``log_likelihood``, and replicated data in
# ``posterior_predictive``. With several chains started from different EM
# fits, R-hat (close to 1 when the chains agree) and the effective sample
# sizes are meaningful. The trace plot shows well-mixed, overlapping chains.
idata = gm.to_arviz(X, n_samples=N_ARVIZ, random_state=1)
summary = az.summary(idata, var_names=["weights", "means", "covariances"])
print(summary.to_string())
print(f"largest R-hat {summary['r_hat'].max():.3f}; smallest bulk ESS {summary['ess_bulk'].min():.0f} "
      f"of {idata.posterior.sizes['chain'] * idata.posterior.sizes['draw']} draws")


def plot_trace(data, var_names):
    """Trace plot with whichever ArviZ is installed (1.x has no ``figsize``)."""
    if arviz_major_version() >= 1:
        return az.plot_trace(data, var_names=var_names)
    axes = az.plot_trace(data, var_names=var_names, figsize=(10, 4.5))
    axes[0, 0].figure.tight_layout()
    return axes


plot_trace(idata, ["weights", "means"])

# %%
# Label probabilities with a credible band
# ----------------------------------------
# ``gm.posterior(x)`` is a :class:`~probspace.posteriors.FiniteMixture`:
# one exact label posterior per parameter draw. Its ``mean`` averages them,
# which is the probability of "short" with the parameter uncertainty
# integrated out; ``component(s)`` is the label posterior under draw ``s``.
# Evaluating the components of a thinned set of draws on a grid of durations
# gives a 90% credible band for :math:`P(\text{short} \mid x, \theta)`:
# how much that probability moves as the parameters move within their
# posterior. We compare with the EM plug-in probability.
grid = np.linspace(1.4, 5.3, 400)[:, None]
post_grid = gm.posterior(grid)
thin = np.unique(np.linspace(0, post_grid.n_draws - 1, N_BAND).round().astype(int))
per_draw = np.stack([post_grid.component(s).probs[:, 0] for s in thin])
band = np.quantile(per_draw, [0.05, 0.95], axis=0)
p_bayes = post_grid.mean[:, 0]
p_em = em.posterior(grid).probs[:, short_em]

# Where is each fit undecided (P(short) = 0.5)?
cut_em = np.interp(0.5, p_em[::-1], grid[::-1, 0])
cut_bayes = np.interp(0.5, p_bayes[::-1], grid[::-1, 0])
cut_draws = np.array([np.interp(0.5, p[::-1], grid[::-1, 0]) for p in per_draw])
print(f"P(short) = 0.5 at {cut_em:.3f} min (EM), {cut_bayes:.3f} min (posterior mean); "
      f"90% interval over draws {np.quantile(cut_draws, 0.05):.3f}-{np.quantile(cut_draws, 0.95):.3f} min")

# The eruptions between the two clusters, one row per distinct duration.
mid = np.unique(duration[(duration > 2.45) & (duration < 3.35)])
post_mid = gm.posterior(mid[:, None])
per_mid = np.stack([post_mid.component(s).probs[:, 0] for s in thin])
lo_mid, hi_mid = np.quantile(per_mid, [0.05, 0.95], axis=0)
p_em_mid = em.posterior(mid[:, None]).probs[:, short_em]
print(f"{'duration':>8} {'n':>2} {'EM P(short)':>12} {'Bayes P(short)':>15} {'90% band':>14}")
for i, x in enumerate(mid):
    print(f"{x:8.3f} {np.sum(duration == x):2d} {p_em_mid[i]:12.3f} {post_mid.mean[i, 0]:15.3f} "
          f"{lo_mid[i]:7.3f}-{hi_mid[i]:.3f}")
widest = np.argmax(hi_mid - lo_mid)
print(f"widest band: eruptions of {mid[widest]:.3f} min, P(short) between {lo_mid[widest]:.3f} and "
      f"{hi_mid[widest]:.3f} across parameter draws (EM says {p_em_mid[widest]:.3f})")
less_extreme = np.abs(post_mid.mean[:, 0] - 0.5) < np.abs(p_em_mid - 0.5)
print(f"posterior mean closer to 0.5 than EM for {less_extreme.sum()} of {len(mid)} durations between the clusters")

# %%
# Deep inside either cluster both fits are certain. Between the clusters the
# posterior mean is pulled towards 0.5 compared with EM, and the band is
# wide: the boundary itself (where the probability crosses 0.5) is
# uncertain by a fraction of a minute, so an eruption near it may be
# anything from almost surely short to almost surely long, depending on the
# parameters. The EM probability hides that second layer of uncertainty.

fig, ax = plt.subplots(figsize=(9, 4))
ax.fill_between(grid[:, 0], band[0], band[1], color="tab:blue", alpha=0.25, label="90% band over parameter draws")
ax.plot(grid[:, 0], p_bayes, color="tab:blue", label="posterior mean (Gibbs)")
ax.plot(grid[:, 0], p_em, color="k", linestyle="--", label="EM plug-in")
ax.plot(duration, gm.posterior(X).mean[:, 0], "|", color="tab:red", markersize=12, label="eruptions")
ax.set_xlabel("eruption duration (minutes)")
ax.set_ylabel("P(short eruption)")
ax.legend(loc="upper right")
inset = ax.inset_axes([0.08, 0.12, 0.3, 0.45])
zoom = (grid[:, 0] > 2.6) & (grid[:, 0] < 3.5)
inset.fill_between(grid[zoom, 0], band[0, zoom], band[1, zoom], color="tab:blue", alpha=0.25)
inset.plot(grid[zoom, 0], p_bayes[zoom], color="tab:blue")
inset.plot(grid[zoom, 0], p_em[zoom], color="k", linestyle="--")
inset.set_title("between the clusters", fontsize=8)
inset.tick_params(labelsize=7)
fig.tight_layout()

# %%
# The posterior predictive density
# --------------------------------
# ``gm.log_likelihood(x)`` of an MCMC fit is the log *posterior predictive*
# density, :math:`\log \frac1S \sum_s p(x \mid \theta_s)`: the density of a
# new eruption averaged over the parameter draws. The band shows the spread
# of the mixture density across draws. The largest gap between the posterior
# predictive and the EM density is printed; the two nearly coincide, because
# 272 eruptions pin the parameters down well.
def mixture_density(x, weights, means, sds):
    """Density of a 1-D Gaussian mixture at ``x`` for each row of parameters: (n_draws, len(x))."""
    return np.einsum("sk,sxk->sx", weights, norm.pdf(x[None, :, None], means[:, None, :], sds[:, None, :]))


flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in gm.draws_.items()}
dens_draws = mixture_density(grid[:, 0], flat["weights"][thin], flat["means"][thin, :, 0],
                             np.sqrt(flat["covariances"][thin, :, 0, 0]))
dens_pred = np.exp(gm.log_likelihood(grid))
dens_em = np.exp(em.log_likelihood(grid))
print(f"largest |posterior predictive - EM density| on the grid: {np.max(np.abs(dens_pred - dens_em)):.4f} "
      f"(peak density {dens_pred.max():.3f})")

fig, ax = plt.subplots(figsize=(9, 4))
ax.hist(duration, bins=40, density=True, color="0.8", label="observed durations")
lo_d, hi_d = np.quantile(dens_draws, [0.05, 0.95], axis=0)
ax.fill_between(grid[:, 0], lo_d, hi_d, color="tab:blue", alpha=0.3, label="90% band of p(x | θ) over draws")
ax.plot(grid[:, 0], dens_pred, color="tab:blue", label="posterior predictive")
ax.plot(grid[:, 0], dens_em, color="k", linestyle="--", linewidth=1, label="EM")
ax.set_xlabel("eruption duration (minutes)")
ax.set_ylabel("density")
ax.legend(loc="upper left")
fig.tight_layout()

# %%
# How many components? PSIS-LOO with ``az.compare``
# --------------------------------------------------
# The ``log_likelihood`` group of ``to_arviz`` holds
# :math:`\log p(x_i \mid \theta_s)` for every eruption and draw, which is
# what PSIS-LOO needs: ``az.compare`` estimates each model's expected log
# predictive density for a new eruption (``elpd_loo``, higher is better)
# and the standard error of the differences (``dse``). We fit one, two and
# three components with the same settings and also report the largest R-hat
# of the means, because a comparison is only as good as the chains behind it.
fits = {}
datasets, rhat = {}, {}
for K in (1, 2, 3):
    model = gm if K == 2 else probspace.GaussianMixture(K, sampler="gibbs", n_draws=N_DRAWS, n_warmup=N_DRAWS,
                                                        random_state=0).fit(X)
    fits[K] = model
    datasets[f"K={K}"] = idata if K == 2 else model.to_arviz(X, n_samples=N_ARVIZ, random_state=1)
    rhat[K] = float(az.rhat(datasets[f"K={K}"], var_names=["means"])["means"].max())
    print(f"K={K}: means {np.round(model.means_[:, 0], 2)}, weights {np.round(model.weights_, 2)}, "
          f"largest R-hat of the means {rhat[K]:.3f}")
middle = fits[3].draws_["means"][:, :, 1, 0]
print(f"K=3, middle component: posterior mean of its mean in each chain {np.round(middle.mean(axis=1), 2)}, "
      f"range over all draws {middle.min():.2f}-{middle.max():.2f} min")

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    table = az.compare(datasets)
print(table.to_string())
best, second = table.index[:2]
gap, dse = table.loc[second, "elpd_diff"], table.loc[second, "dse"]
print(f"{best} leads {second} by {gap:.2f} elpd ({gap / dse:.1f} standard errors of the difference); "
      f"K=1 trails by {table.loc['K=1', 'elpd_diff']:.1f}")
print(f"skewness of the durations below / above the EM boundary ({cut_em:.2f} min): "
      f"{skew(duration[duration < cut_em]):.2f} / {skew(duration[duration > cut_em]):.2f}")

# %%
# One component is ruled out by a wide margin: the durations are clearly
# bimodal. Between two and three components the printed table is the
# evidence, and it is weak: the gap is a few nats, about one to two
# standard errors of the difference. It is also not trustworthy as it
# stands, because the three-component chains do not agree (R-hat well above
# 1.01 above): the middle component wanders across the gap between the
# two clusters and into both of them, and the chains spend their time in
# different places (see the per-chain means of the middle
# component). The trace of the K=3 means shows it.
# Neither cluster is Gaussian: the short one is skewed to the right and the
# long one to the left (printed above), both towards the gap. A third
# component mostly soaks up those tails rather than revealing a third kind
# of eruption, so we keep K=2 and would need much longer chains (or a more
# informative prior) before reading anything into K=3.
plot_trace(datasets["K=3"], ["means"])

# %%
# Gibbs and NUTS agree
# --------------------
# ``sampler="nuts"`` runs probspace's compiled No-U-Turn sampler on the
# marginal likelihood (labels summed out, exact gradients, chains on parallel
# threads), with the same conjugate prior. The fast run skips it (the first
# use in a new environment compiles the sampler). Both should target the
# same posterior: the posterior means and standard deviations should agree
# up to Monte Carlo error.
if FAST:
    print("fast mode: NUTS skipped")
else:
    nuts = probspace.GaussianMixture(2, sampler="nuts", random_state=0).fit(X)
    stats = nuts.sample_stats_
    print(f"NUTS: {int(stats['diverging'].sum())} divergent transitions, mean acceptance "
          f"{stats['acceptance_rate'].mean():.2f}")
    print(f"{'':14} {'Gibbs mean':>11} {'sd':>7} {'NUTS mean':>10} {'sd':>7}")
    nuts_values = {"weight": nuts.draws_["weights"], "mean": nuts.draws_["means"][..., 0],
                   "sd": np.sqrt(nuts.draws_["covariances"][..., 0, 0])}
    for name, value in (("weight", w), ("mean", mu), ("sd", sd)):
        for k, label in enumerate(("short", "long")):
            a, b = value[..., k], nuts_values[name][..., k]
            print(f"{name + ' ' + label:14} {a.mean():11.3f} {a.std():7.3f} {b.mean():10.3f} {b.std():7.3f}")
    nuts_summary = az.summary(nuts.to_arviz(X, n_samples=300, random_state=1), var_names=["means"])
    print(nuts_summary[["mean", "sd", "ess_bulk", "r_hat"]].to_string())

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, (ax, label) in enumerate(zip(axes, ("short", "long"), strict=True)):
        ax.hist(mu[..., k].ravel(), bins=40, density=True, alpha=0.5, label="Gibbs")
        ax.hist(nuts_values["mean"][..., k].ravel(), bins=40, density=True, alpha=0.5, label="NUTS")
        ax.set_xlabel(f"mean duration of {label} eruptions (minutes)")
    axes[0].legend()
    fig.tight_layout()
plt.show()

# sphinx_gallery_thumbnail_number = 2
