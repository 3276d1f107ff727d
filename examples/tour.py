"""A short tour of probspace: a posterior, not just an embedding, for every family.

Four model families, four real datasets that need no download, one interface.
For each, the tour puts the posterior that ``model.posterior(X)`` returns next
to the deterministic answer it replaces:

1. Gaussian mixture, Old Faithful eruptions: hard labels (``model.predict``)
   beside label probabilities and joint label draws.
2. Gaussian HMM, the flow of the Nile: the Viterbi path (``post.map()``)
   beside smoothed marginals and joint path draws (when did the flow drop?).
3. LDA, the docstrings of NumPy, SciPy and scikit-learn: topic proportions
   (``model.transform``) beside a Dirichlet posterior per document, for a
   short and a long docstring that get the same point proportions.
4. VAE, scikit-learn's 8x8 digits: the code of each digit (``model.embed``)
   beside a cloud of posterior draws of that code.

It ends with the shared interface (the same posterior members and the same
ArviZ bridge for all four), prints its findings and writes one figure,
``demo_output/tour.png``, a row per family. Every fit is seeded, so the
numbers are the same on every run.

Run with ``bash scripts/demo.sh`` (sets everything up first).
"""

import os
import pathlib
import time

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from sklearn.datasets import load_digits
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import probspace
from probspace.datasets import load_docstring_corpus, load_nile, load_old_faithful

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"  # the test suite's smoke run: fewer draws and epochs
N_DRAWS = 500 if FAST else 4000  # joint posterior draws for the mixture, the HMM and LDA
VAE_EPOCHS = 20 if FAST else 100
N_CODE_DRAWS = 100 if FAST else 300  # posterior draws per digit code
LEVEL = 0.9  # probability inside the LDA credible intervals
OUT = pathlib.Path("demo_output")
OUT.mkdir(exist_ok=True)
START = time.perf_counter()


def heading(text):
    print(f"\n{text}\n{'-' * len(text)}")


print(f"probspace {probspace.__version__}: one posterior interface over four latent-variable families")
fig = plt.figure(figsize=(13, 17), layout="constrained")
rows = fig.subfigures(4, 1, hspace=0.04)

# %% 1. Gaussian mixture: which cluster does an eruption belong to? ------------------------------
faithful = load_old_faithful()
X = faithful.data
gmm = probspace.GaussianMixture(n_components=2, random_state=0).fit(X)
long = int(np.argmax(gmm.means_[:, 0]))  # the component of long eruptions
post = gmm.posterior(X)  # Categorical: one distribution over the label of each eruption
hard = gmm.predict(X) == long  # the point estimate: one label per eruption, no doubt attached
p_long = post.probs[:, long]
heading(f"1. GaussianMixture on Old Faithful ({len(X)} eruptions): hard labels vs the label posterior")
print(f"posterior: {post}")
print(f"hard labels: {hard.sum()} long and {(~hard).sum()} short eruptions, every one stated as certain")
in_doubt = np.flatnonzero((p_long > 0.01) & (p_long < 0.99))
print(f"the posterior is sure (P > 0.99) of {len(X) - len(in_doubt)} labels; the {len(in_doubt)} in doubt:")
for i in in_doubt[np.argsort(post.entropy()[in_doubt])[::-1]]:
    print(f"  eruption {X[i, 0]:.2f} min after a {X[i, 1]:.0f} min wait: P(long) = {p_long[i]:.2f}, "
          f"hard label '{'long' if hard[i] else 'short'}'")
draws = post.sample(N_DRAWS, random_state=1)  # (N_DRAWS, 272): joint draws of every label
n_long = (draws == long).sum(axis=1)
lo, hi = np.quantile(n_long, [0.025, 0.975])
print(f"how many long eruptions? hard labels: {hard.sum()}; {N_DRAWS} joint label draws: "
      f"{n_long.mean():.1f} on average, 95% interval {lo:.0f}-{hi:.0f}")
# Where would a new eruption be in doubt? The posterior of a grid of hypothetical eruptions.
g0, g1 = np.meshgrid(np.linspace(1.4, 5.3, 150), np.linspace(40, 98, 150))
p_grid = gmm.posterior(np.column_stack([g0.ravel(), g1.ravel()])).probs[:, long].reshape(g0.shape)

row = rows[0]
row.suptitle("1. GaussianMixture, Old Faithful: which cluster is each eruption in?", fontsize=13, weight="bold")
ax_point, ax_post = row.subplots(1, 2, sharex=True, sharey=True)
ax_point.scatter(X[:, 0], X[:, 1], c=np.where(hard, "tab:red", "tab:blue"), s=14)
ax_point.set_title("point estimate: model.predict(X), one hard label each")
ax_point.plot([], [], "o", color="tab:red", label=f"long ({hard.sum()})")
ax_point.plot([], [], "o", color="tab:blue", label=f"short ({(~hard).sum()})")
ax_point.legend(loc="upper left")
ax_post.contourf(g0, g1, p_grid, levels=[0.01, 0.99], colors=["0.85"])
ax_post.contour(g0, g1, p_grid, levels=[0.5], colors="k", linewidths=1, linestyles="--")
sc = ax_post.scatter(X[:, 0], X[:, 1], c=p_long, cmap="coolwarm", vmin=0, vmax=1, s=14)
ax_post.scatter(X[in_doubt, 0], X[in_doubt, 1], s=150, facecolors="none", edgecolors="k")
ax_post.legend(loc="lower right", handles=[
    Patch(color="0.85", label="where 0.01 < P(long) < 0.99"),
    Line2D([], [], color="k", ls="--", lw=1, label="P(long) = 0.5"),
    Line2D([], [], marker="o", ls="", mfc="none", mec="k", ms=11, label=f"eruptions in doubt ({len(in_doubt)})")])
row.colorbar(sc, ax=ax_post, label="P(long | eruption)")
ax_post.set_title(f"posterior: model.posterior(X).probs; joint draws: {lo:.0f}-{hi:.0f} long (95%)")
for ax in (ax_point, ax_post):
    ax.set_xlabel("eruption (min)")
ax_point.set_ylabel("waiting time before it (min)")

# %% 2. Gaussian HMM: when did the Nile's flow drop? -------------------------------------------
nile = load_nile()
flow, year = nile.data, nile.year
# EM can stop in a poor local optimum: fit from five seeds and keep the best. max_iter is raised
# from hmmlearn's default of 10 so that every fit converges (gain below tol) rather than stopping.
fits = [probspace.GaussianHMM(n_components=2, max_iter=300, tol=1e-4, random_state=seed).fit(flow)
        for seed in range(5)]
hmm = max(fits, key=lambda m: m.score(flow))
assert all(m.converged_ for m in fits)
low = int(np.argmin(hmm.means_[:, 0]))
post = hmm.posterior(flow)  # MarkovChain: the exact posterior over whole state paths
viterbi = post.map()  # the point estimate: the single most probable path
viterbi_change = year[np.argmax(viterbi == low)]
p_low = post.marginals[:, low]  # smoothed P(low flow in year t | all 100 years)
paths = post.sample(N_DRAWS, random_state=2)  # (N_DRAWS, 100): whole paths drawn jointly (FFBS)
is_low = paths == low
change = np.where(is_low.any(axis=1), year[is_low.argmax(axis=1)], year[-1] + 1)  # first low year of each path
years, counts = np.unique(change, return_counts=True)
heading(f"2. GaussianHMM on the Nile ({len(year)} years): the Viterbi path vs the path posterior")
print(f"posterior: {post}")
print(f"regimes: high flow {hmm.means_[1 - low, 0]:.0f}, low flow {hmm.means_[low, 0]:.0f} (10^8 m^3 a year)")
print(f"Viterbi path: high flow until {viterbi_change - 1}, low from {viterbi_change}; "
      f"its posterior probability is only {np.exp(post.log_prob(viterbi)):.2f}")
doubt = np.flatnonzero((p_low > 0.01) & (p_low < 0.99))
print("smoothed marginals, years in doubt: " + ", ".join(f"{year[t]} P(low) = {p_low[t]:.2f}" for t in doubt))
print(f"first year of low flow, from {N_DRAWS} joint path draws: "
      + ", ".join(f"{y}: {c / N_DRAWS:.0%}" for y, c in zip(years, counts, strict=True) if c / N_DRAWS >= 0.01))

row = rows[1]
row.suptitle("2. GaussianHMM, the Nile at Aswan: when did the flow drop?", fontsize=13, weight="bold")
ax_point, ax_post = row.subplots(1, 2)
ax_point.plot(year, flow[:, 0], "o-", color="0.5", ms=3, lw=1, label="annual flow")
ax_point.step(year, hmm.means_[viterbi, 0], where="mid", color="tab:red", lw=2, label="Viterbi regime mean")
zoom = (year >= viterbi_change - 12) & (year <= viterbi_change + 6)
ax_point.axvspan(year[zoom][0] - 0.5, year[zoom][-1] + 0.5, color="0.9", zorder=0, label="shown on the right")
ax_point.set_title("point estimate: post.map(), the Viterbi path")
ax_point.set_xlabel("year")
ax_point.set_ylabel("flow ($10^8$ m³)")
ax_point.legend(loc="upper right")
shown = np.isin(years, year[zoom])
ax_post.bar(years[shown], counts[shown] / N_DRAWS, width=0.8, color="tab:blue", alpha=0.7,
            label="P(first low year), joint path draws")
ax_post.step(year[zoom], p_low[zoom], where="mid", color="k", label="P(low in that year), marginals")
ax_post.axvline(viterbi_change, color="tab:red", ls="--", label=f"Viterbi change: {viterbi_change}")
ax_post.set_xticks(year[zoom][::2])
ax_post.set_ylim(0, 1.05)
ax_post.set_title("posterior: post.marginals and post.sample(n)")
ax_post.set_xlabel("year")
ax_post.set_ylabel("posterior probability")
ax_post.legend(loc="upper left", fontsize=8)

# %% 3. LDA: what is a docstring about, and how sure can we be? --------------------------------
corpus = load_docstring_corpus()  # built from the installed numpy, scipy and sklearn, nothing downloaded
boilerplate = {"parameters", "returns", "examples", "notes", "references", "see", "also", "attributes", "default",
               "optional", "array", "ndarray", "dtype", "int", "float", "bool", "str", "true", "false", "none",
               "numpy", "scipy", "sklearn", "import", "print", "math", "func", "meth", "class", "ref", "https",
               "http", "org", "doi", "versionadded", "versionchanged", "deprecated", "like", "shape"}
vectorizer = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | boilerplate), token_pattern=r"(?u)\b[a-z]{3,}\b",
                             min_df=2, max_df=0.5)
bow = vectorizer.fit_transform(corpus.data)  # bag of words: (documents, vocabulary) counts
n_tokens = np.asarray(bow.sum(axis=1)).ravel()
# Batch variational Bayes, run until the training perplexity settles (checked every 5 passes).
lda = probspace.LDA(n_components=10, random_state=0).fit(bow)
theta = lda.transform(bow)  # the point estimate: one vector of topic proportions per document
post = lda.posterior(bow)  # Dirichlet: a distribution over each document's topic proportions
topic_names = [" ".join(word for word, *_ in words) for words in lda.top_words(3, feature_names=vectorizer)]
# A short and a long docstring with the same dominant topic and almost the same share of it.
dominant = theta.argmax(axis=1)
share = theta[np.arange(len(theta)), dominant]
longest = n_tokens >= np.quantile(n_tokens, 0.9)
pairs = []
for i in np.flatnonzero((n_tokens >= 8) & (n_tokens <= 15) & (share >= 0.5) & (share <= 0.75)):
    partners = np.flatnonzero(longest & (dominant == dominant[i]))
    if partners.size:
        j = partners[np.argmin(np.abs(share[partners] - share[i]))]
        pairs.append((abs(share[j] - share[i]), i, j))
_, short_doc, long_doc = min(pairs)
topic = dominant[short_doc]
lower, upper = post.credible_interval(LEVEL)
heading(f"3. LDA on {len(corpus.data)} docstrings (vocabulary of {bow.shape[1]} words): "
        "point proportions vs the posterior")
print(f"posterior: {post}")
print(f"topic {topic} ('{topic_names[topic]}') in a short and a long docstring:")
for label, d in (("short", short_doc), ("long", long_doc)):
    print(f"  {label:5s} {corpus.names[d]} ({n_tokens[d]} words): transform says {theta[d, topic]:.2f}; "
          f"{LEVEL:.0%} posterior interval {lower[d, topic]:.2f}-{upper[d, topic]:.2f}")
pair_draws = lda.posterior(bow[[short_doc, long_doc]]).sample(N_DRAWS, random_state=3)  # (N_DRAWS, 2, 10)
p_not_dominant = np.mean(pair_draws.argmax(axis=2) != topic, axis=0)
print(f"P(topic {topic} is not the largest share), from joint draws of whole topic mixes: "
      f"short {p_not_dominant[0]:.2f}, long {p_not_dominant[1]:.2f}")

row = rows[2]
row.suptitle("3. LDA, docstrings of NumPy/SciPy/scikit-learn: what is a document about?", fontsize=13,
             weight="bold")
ax_point, ax_post = row.subplots(1, 2, sharey=True)
topics = np.flatnonzero(theta[[short_doc, long_doc]].max(axis=0) > 0.04)
ypos = np.arange(len(topics))[::-1]
docs = ((short_doc, +0.18, "tab:orange", "short"), (long_doc, -0.18, "tab:blue", "long"))
for d, offset, colour, label in docs:
    title = f"{label}: {corpus.names[d].split('.')[-1]} ({n_tokens[d]} words)"
    ax_point.barh(ypos + offset, theta[d, topics], height=0.34, color=colour, label=title)
    ax_post.errorbar(post.mean[d, topics], ypos + offset, fmt="o", color=colour, capsize=3, label=title,
                     xerr=[post.mean[d, topics] - lower[d, topics], upper[d, topics] - post.mean[d, topics]])
ax_point.set_yticks(ypos, [f"{k}: {topic_names[k]}" for k in topics], fontsize=8)
ax_point.set_title("point estimate: model.transform(X), topic proportions")
ax_post.set_title(f"posterior: Dirichlet mean and {LEVEL:.0%} credible interval")
for ax in (ax_point, ax_post):
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the document")
    ax.legend(loc="lower right", fontsize=8)

# %% 4. VAE: where in code space is a handwritten digit? --------------------------------------
digits = load_digits()
X_train, X_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.2,
                                                    random_state=0, stratify=digits.target)
vae = probspace.VAE(n_components=2, hidden_dims=(128, 128), max_epochs=VAE_EPOCHS, batch_size=64,
                    learning_rate=2e-3, random_state=0).fit(X_train)
codes_train = vae.embed(X_train)  # the point estimate: one 2-D code per digit (the posterior mean)
codes_test = vae.embed(X_test)
post = vae.posterior(X_test)  # DiagonalNormal: amortised variational posterior over each code
# Name a region of code space by the digits of its 15 nearest training codes, then ask which digit
# the mean code lands on, and how the posterior's draws of the same code spread over the digits.
knn = KNeighborsClassifier(n_neighbors=15).fit(codes_train, y_train)
code_draws = post.sample(N_CODE_DRAWS, random_state=4)  # (N_CODE_DRAWS, n_test, 2)
draw_digit = knn.predict(code_draws.reshape(-1, 2)).reshape(N_CODE_DRAWS, -1)
mean_digit = knn.predict(codes_test)
agree = np.mean(draw_digit == mean_digit, axis=0)  # per held-out digit: share of draws in the mean code's region
p_true = np.mean(draw_digit == y_test, axis=0)  # share of draws in the true digit's region
right = mean_digit == y_test
heading(f"4. VAE on {len(digits.data)} 8x8 digits (2-D code, {VAE_EPOCHS} epochs): the code vs its posterior")
print(f"posterior: {post}")
print(f"posterior sd of a held-out code: median {np.median(post.scale):.2f}, on a map where the training "
      f"codes span {np.ptp(codes_train, axis=0).mean():.1f} units a dimension")
print(f"the mean code lands in the true digit's region (15 nearest training codes) for {right.mean():.0%} "
      f"of the {len(y_test)} held-out digits; for {np.mean(agree < 0.8):.0%} of them more than 20% of the "
      "posterior draws land in another digit's region")
print(f"of the {np.sum(~right)} digits whose mean code reads wrong, the posterior gives the true digit "
      f"at least 20% for {np.sum(~right & (p_true >= 0.2))}")
# Three held-out digits: a sure one, one torn between two regions, one the mean code gets wrong.
sure = int(np.flatnonzero(right & (agree == agree[right].max()))[0])
torn = int(np.flatnonzero(right)[np.argmin(np.abs(agree[right] - 0.5))])
wrong = int(np.flatnonzero(~right)[np.argmax(p_true[~right])])
picked = [sure, torn, wrong]
for i in picked:
    values, n = np.unique(draw_digit[:, i], return_counts=True)
    top = np.argsort(n)[::-1][:3]
    print(f"  held-out {y_test[i]}: its mean code reads as a {mean_digit[i]}; its posterior draws read as "
          + ", ".join(f"{values[k]} ({n[k] / N_CODE_DRAWS:.0%})" for k in top))

row = rows[3]
row.suptitle("4. VAE, 8x8 handwritten digits: where in code space is a digit?", fontsize=13, weight="bold")
ax_point, ax_post = row.subplots(1, 2, sharex=True, sharey=True)
colours = plt.get_cmap("tab10")
for ax in (ax_point, ax_post):
    ax.scatter(*codes_train.T, c=colours(y_train), s=5, alpha=0.2 if ax is ax_post else 0.6, linewidths=0)
    ax.set_xlabel("latent dimension 0")
ax_point.set_ylabel("latent dimension 1")
ax_point.set_title("point estimate: model.embed(X), one code per digit")
ax_point.legend(handles=[Line2D([], [], marker="o", ls="", color=colours(k), label=str(k)) for k in range(10)],
                title="digit", loc="upper left", ncol=2, fontsize=7, title_fontsize=8)
ax_post.set_title(f"posterior: model.posterior(X).sample({N_CODE_DRAWS}), a cloud of codes")
for i, marker in zip(picked, "os^", strict=True):
    ax_point.scatter(*codes_test[i], s=110, marker=marker, color="w", edgecolors="k", linewidths=1.5)
for slot, (i, marker) in enumerate(zip(picked, "os^", strict=True)):
    ax_post.scatter(*code_draws[:, i].T, s=7, color=colours(y_test[i]), edgecolors="k", linewidths=0.2,
                    alpha=0.6)
    ax_post.scatter(*codes_test[i], s=110, marker=marker, color="w", edgecolors="k", linewidths=1.5,
                    label=f"a {y_test[i]}: mean code reads {mean_digit[i]}; draws read {y_test[i]} "
                          f"{p_true[i]:.0%} of the time")
    image = ax_post.inset_axes([0.01 + 0.085 * slot, 0.01, 0.075, 0.15])
    image.imshow(X_test[i].reshape(8, 8), cmap="gray_r")
    image.set_xticks([])
    image.set_yticks([])
    image.set_title({"o": "●", "s": "■", "^": "▲"}[marker], fontsize=7, pad=1)
ax_post.legend(loc="upper left", fontsize=7, title="mean code (white) and its draws", title_fontsize=7)

# %% The one interface ----------------------------------------------------------------------
heading("One interface: every posterior has sample, mean, log_prob, entropy, and goes to ArviZ")
models = (("GaussianMixture", gmm, X[:5]), ("GaussianHMM", hmm, flow), ("LDA", lda, bow[:2]),
          ("VAE", vae, X_test[:3]))
print(f"{'family':16s} {'posterior (batch + event shape)':38s} {'method':21s} {'sample(2) shape':16s} "
      "ArviZ latent_posterior")
for name, model, data in models:
    posterior = model.posterior(data)
    idata = model.to_arviz(data, n_samples=20, random_state=5)
    latent = idata["latent_posterior"]
    variables = ", ".join(f"{v}{tuple(d for d in latent[v].dims if d not in ('chain', 'draw'))}"
                          for v in latent.data_vars)
    print(f"{name:16s} {type(posterior).__name__ + str(posterior.batch_shape + posterior.event_shape):38s} "
          f"{posterior.method:21s} {str(posterior.sample(2, random_state=0).shape):16s} {variables}")

fig.savefig(OUT / "tour.png", dpi=90)
print(f"\nfigure written to {OUT / 'tour.png'}; the tour took {time.perf_counter() - START:.0f} s")
