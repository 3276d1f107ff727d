"""
Topics in docstrings: short documents get wide posteriors
=========================================================

Latent Dirichlet allocation (LDA) describes every document as a mixture of
*topics*, each topic a distribution over words. scikit-learn fits it by
variational Bayes, and its ``transform`` hands back one vector of topic
proportions per document, normalised to sum to one. That vector looks the
same whether it was inferred from ten words or from a thousand.

:class:`probspace.LDA` fits the same model with the same backend, and its
``posterior(X)`` returns what variational Bayes actually computed: a
:class:`~probspace.posteriors.Dirichlet` distribution over each document's
topic proportions. Its spread is set by how much evidence the document holds.
This example fits topics to the docstrings of NumPy, SciPy and scikit-learn,
then puts a short and a long docstring side by side, plots posterior
uncertainty against document length for the whole corpus, draws the topic of
every word of a short docstring, scores held-out documents, hands a few
posteriors to ArviZ, and ends with the same model sampled exactly by
collapsed Gibbs (``algorithm="gibbs"``).
"""

# %%
# A corpus of docstrings
# ----------------------
# :func:`~probspace.datasets.load_docstring_corpus` builds the corpus at run
# time from the installed packages: one document per public class or function
# (its docstring), sorted by qualified name, so that the same installed
# versions always give the same corpus. Nothing is downloaded; ``DESCR``
# records the versions and licences.
#
# We hold out a random tenth of the documents for scoring at the end, and count
# words in the rest with scikit-learn's
# :class:`~sklearn.feature_extraction.text.CountVectorizer`: words of three
# or more letters, without English stop words and without the words that every
# docstring uses (numpydoc section titles, reStructuredText roles, type names,
# ``import numpy``), and only words that occur in at least two documents and
# in at most half of them. ``PROBSPACE_EXAMPLES_FAST=1`` fits fewer topics to
# a random subset of the documents, with fewer iterations and draws.
import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

import probspace
from probspace.datasets import load_docstring_corpus
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_DOCS = 600 if FAST else None  # None: every document
N_TOPICS = 8 if FAST else 20
N_DRAWS = 1000 if FAST else 10000
N_TOKEN_DRAWS = 200 if FAST else 2000
N_ARVIZ_DRAWS = 200 if FAST else 2000
GIBBS = dict(n_chains=2, n_warmup=40, n_draws=25, thin=1) if FAST else dict(n_chains=2, n_warmup=200, n_draws=50,
                                                                            thin=2)
LEVEL = 0.9  # probability inside every credible interval below

corpus = load_docstring_corpus()
print(corpus.DESCR)

rng = np.random.default_rng(0)
order = rng.permutation(len(corpus.data))
if N_DOCS is not None:
    order = order[:N_DOCS]
n_test = len(order) // 10
test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
docs = np.array(corpus.data, dtype=object)
names = np.array(corpus.names)

docstring_words = {
    "parameters", "returns", "yields", "raises", "examples", "notes", "references", "see", "also", "attributes",
    "methods", "versionadded", "versionchanged", "deprecated", "math", "ref", "func", "meth", "class", "attr",
    "doi", "https", "http", "www", "org", "html", "plt", "import", "numpy", "scipy", "sklearn", "int", "float",
    "str", "bool", "true", "false", "none", "dtype", "ndarray", "array", "arrays", "optional", "default", "like",
    "api", "res", "print",
}
vectorizer = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | docstring_words),
                             token_pattern=r"(?u)\b[a-zA-Z]{3,}\b", min_df=2, max_df=0.5)
X = vectorizer.fit_transform(docs[train])
X_test = vectorizer.transform(docs[test])
n_tokens = np.asarray(X.sum(axis=1)).ravel()
print(f"{len(docs)} documents; {X.shape[0]} for training ({n_tokens.sum():,} tokens), "
      f"{X_test.shape[0]} held out ({int(X_test.sum()):,} tokens); vocabulary of {X.shape[1]:,} words")
print(f"tokens per training document: median {np.median(n_tokens):.0f}, "
      f"5% quantile {np.quantile(n_tokens, 0.05):.0f}, 95% quantile {np.quantile(n_tokens, 0.95):.0f}")

# %%
# Fit the topics
# --------------
# Batch variational Bayes, as in scikit-learn, with the default priors
# :math:`\alpha = \eta = 1/K`, run until the training perplexity (checked
# every 5 passes) changes by less than ``perp_tol``. ``lda.top_words`` lists the most probable words
# of each topic with a credible interval for each probability, from the
# Dirichlet posterior over the topic-word matrix (``lda.topic_posterior()``).
# Passing the vectoriser gives the words instead of column indices.
lda = probspace.LDA(n_components=N_TOPICS, random_state=0).fit(X)
top = lda.top_words(8, feature_names=vectorizer, level=LEVEL)
for k, words in enumerate(top):
    word, mean, lower, upper = words[0]
    print(f"topic {k:2d}: {' '.join(w for w, *_ in words):70s} "
          f"P({word}) = {mean:.3f} [{lower:.3f}, {upper:.3f}]")

# %%
# Each topic pools the evidence of every document that uses it, so the
# intervals of its top words are narrow: the median width below is a fraction
# of the probability itself. The topic shares of a single document rest on
# that document alone, as the next sections show.
rel_width = np.array([(upper - lower) / mean for words in top for _, mean, lower, upper in words])
print(f"{LEVEL:.0%} interval width relative to the probability, over all top words: "
      f"median {np.median(rel_width):.3f}, largest {rel_width.max():.3f}")

shown = np.argsort([-sum(m for _, m, _, _ in words) for words in top])[:4]  # the most concentrated topics
fig, axes = plt.subplots(1, len(shown), figsize=(12, 3.6), sharex=True)
for ax, k in zip(axes, shown, strict=True):
    words, mean, lower, upper = (np.array(v) for v in zip(*top[k], strict=True))
    y = np.arange(len(words))[::-1]
    ax.barh(y, mean, color="tab:blue", alpha=0.6)
    ax.errorbar(mean, y, xerr=[mean - lower, upper - mean], fmt="none", ecolor="k", capsize=2)
    ax.set_yticks(y, words)
    ax.set_title(f"topic {k}")
    ax.set_xlabel("P(word | topic)")
fig.suptitle(f"Top words of four topics, with {LEVEL:.0%} credible intervals")
fig.tight_layout()

# %%
# A short and a long docstring on the same topic
# ----------------------------------------------
# ``lda.posterior(X)`` is a :class:`~probspace.posteriors.Dirichlet` with one
# row of concentrations per document. Variational Bayes sets them to the
# prior plus the expected number of the document's tokens in each topic, so
# their total, ``post.total_concentration``, is the document's token count
# plus :math:`K \alpha`: the evidence behind the mean.
#
# We pick a short docstring (8 to 15 tokens) whose dominant topic, by
# posterior mean, holds between 45% and 75% of it, so that it mixes topics,
# and a long one (among the longest tenth) with the same dominant topic and
# almost the same point estimate of that topic's share.
#
# These are *variational* posteriors. Mean-field variational Bayes tends to
# understate posterior spread, so read the widths below as optimistic; what
# matters here is how they compare between documents.
post = lda.posterior(X)
theta_hat = lda.transform(X)  # what scikit-learn's normalised transform gives
assert np.allclose(theta_hat, post.mean)
gap = np.abs(post.total_concentration - (n_tokens + N_TOPICS * lda.doc_topic_prior_)).max()
print(f"largest gap between total concentration and tokens + K * alpha: {gap:.1e}")

dominant = post.mean.argmax(axis=1)
share = post.mean[np.arange(X.shape[0]), dominant]
long_cut = np.quantile(n_tokens, 0.9)
short_pool = np.flatnonzero((n_tokens >= 8) & (n_tokens <= 15) & (share >= 0.45) & (share <= 0.75))
pairs = []
for i in short_pool:
    partners = np.flatnonzero((dominant == dominant[i]) & (n_tokens >= long_cut))
    if partners.size:
        j = partners[np.argmin(np.abs(share[partners] - share[i]))]
        pairs.append((abs(share[j] - share[i]), n_tokens[i], i, j))
_, _, short, long = min(pairs)
topic = dominant[short]
lower, upper = post.credible_interval(LEVEL)
for label, d in (("short", short), ("long", long)):
    print(f"{label}: {names[train[d]]} ({n_tokens[d]} tokens)")
    print(f"    transform: topic {topic} share {theta_hat[d, topic]:.3f}; posterior {LEVEL:.0%} interval "
          f"[{lower[d, topic]:.3f}, {upper[d, topic]:.3f}]")
print("the short docstring:\n    " + "\n    ".join(docs[train[short]].splitlines()[:6]))

# %%
# The left panel shows the posterior mean and :math:`90\%` interval of every
# topic's share, for both documents; the right panel the draws of the
# dominant topic's share. ``transform`` gives both documents the same number
# (dashed lines). The posterior of the short docstring spreads over a wide
# range of shares, for its runner-up topic as much as for the dominant one;
# the long one pins the share down to a few percentage points.
pair = lda.posterior(X[[short, long]])  # the same Dirichlets, for just these two documents
draws = pair.sample(N_DRAWS, random_state=1)  # shape (N_DRAWS, 2, K): joint draws of whole topic mixes
fig, (ax_ci, ax_hist) = plt.subplots(1, 2, figsize=(12, 4))
topics = np.arange(N_TOPICS)
for row, (d, offset, colour, label) in enumerate(((short, -0.15, "tab:orange", "short"),
                                                  (long, 0.15, "tab:blue", "long"))):
    ax_ci.errorbar(topics + offset, post.mean[d], yerr=[post.mean[d] - lower[d], upper[d] - post.mean[d]],
                   fmt="o", color=colour, capsize=2, label=f"{label}: {n_tokens[d]} tokens")
    ax_hist.hist(draws[:, row, topic], bins=60, range=(0, 1), density=True, alpha=0.6, color=colour,
                 label=f"{label}: {n_tokens[d]} tokens")
    ax_hist.axvline(theta_hat[d, topic], color=colour, linestyle="--")
ax_ci.set_xticks(topics)
ax_ci.set_xlabel("topic")
ax_ci.set_ylabel("share of the document")
ax_ci.set_title(f"Posterior mean and {LEVEL:.0%} interval per topic")
ax_ci.legend()
ax_hist.set_xlabel(f"share of topic {topic}")
ax_hist.set_ylabel("density")
ax_hist.set_title(f"{N_DRAWS} posterior draws (dashed: transform)")
ax_hist.legend()
fig.tight_layout()

# %%
# What the point estimate hides, across the corpus
# ------------------------------------------------
# The same picture for every training document. On the left, the largest
# share from ``lda.transform``: a document of ten tokens can look as decided
# as one of a thousand, and nothing in the point estimate tells them apart.
# On the right, the width of the :math:`90\%` interval of that share. It
# falls with the number of tokens, roughly like :math:`1/\sqrt{n}`: the dashed
# curve is the width for a Beta marginal with mean one half and total
# concentration :math:`n + K\alpha`, the widest a document of :math:`n`
# tokens can have.
from scipy import stats

width = upper[np.arange(X.shape[0]), dominant] - lower[np.arange(X.shape[0]), dominant]
grid = np.geomspace(n_tokens.min(), n_tokens.max(), 200)
a0 = grid + N_TOPICS * lda.doc_topic_prior_
tail = (1 - LEVEL) / 2
reference = stats.beta.ppf(1 - tail, a0 / 2, a0 / 2) - stats.beta.ppf(tail, a0 / 2, a0 / 2)
rho_width = stats.spearmanr(n_tokens, width).statistic
rho_share = stats.spearmanr(n_tokens, theta_hat.max(axis=1)).statistic
print(f"Spearman correlation with the number of tokens: interval width {rho_width:.2f}, "
      f"transform's largest share {rho_share:.2f}")
for lo_n, hi_n in ((0, 20), (20, 100), (100, 500), (500, np.inf)):
    sel = (n_tokens >= lo_n) & (n_tokens < hi_n)
    print(f"documents with {lo_n}-{hi_n} tokens ({sel.sum():4d}): median largest share "
          f"{np.median(theta_hat[sel].max(axis=1)):.2f}, median {LEVEL:.0%} interval width {np.median(width[sel]):.3f}")

fig, (ax_share, ax_width) = plt.subplots(1, 2, figsize=(12, 4), sharex=True)
ax_share.scatter(n_tokens, theta_hat.max(axis=1), s=5, alpha=0.4)
ax_share.set_ylabel("largest topic share (transform)")
ax_share.set_title("Point estimate: no trace of the evidence")
ax_width.scatter(n_tokens, width, s=5, alpha=0.4, label="documents")
ax_width.plot(grid, reference, "k--", label="Beta, mean 1/2")
for d, colour in ((short, "tab:orange"), (long, "tab:blue")):
    ax_width.scatter(n_tokens[d], width[d], s=80, facecolors="none", edgecolors=colour, linewidths=2)
ax_width.set_ylabel(f"{LEVEL:.0%} interval width of that share")
ax_width.set_title("Posterior: uncertainty shrinks with length")
ax_width.legend()
for ax in (ax_share, ax_width):
    ax.set_xscale("log")
    ax.set_xlabel("tokens in the document")
fig.tight_layout()

# %%
# Which word goes to which topic
# ------------------------------
# LDA also has a latent topic for every word token. ``sample_token_topics``
# draws those assignments from the variational posterior: for each word of
# the document, its tokens are split among the topics. The draws come in the
# sparse layout of ``X`` (one row per non-zero count, shape
# ``(n_samples, nnz, K)``) and sum back to the counts over the last axis.
# Under the mean-field variational posterior the words are assigned
# independently of each other, each with its own probabilities over topics.
# For the short docstring, each word's row below shows how often its tokens
# went to each topic: words that only one of the document's topics
# uses stay with it, words both topics use are shared out. Summing over the
# words gives the number of tokens in each topic, a whole distribution rather
# than one expected count.
X_short = X[[short]]
tokens = lda.sample_token_topics(X_short, n_samples=N_TOKEN_DRAWS, random_state=2)
assert np.all(tokens.draws.sum(axis=-1) == tokens.counts)  # every draw splits the same counts
vocab = vectorizer.get_feature_names_out()
order = np.argsort(-tokens.counts, kind="stable")
freq = tokens.draws[:, order, :].sum(axis=0) / (N_TOKEN_DRAWS * tokens.counts[order, None])
for w, c, row in zip(tokens.cols[order], tokens.counts[order], freq, strict=True):
    best = [k for k in np.argsort(row)[::-1][:3] if row[k] >= 0.01]
    print(f"{vocab[w]:>16s} x{c}: " + ", ".join(f"topic {k} {row[k]:.2f}" for k in best))
in_topic = tokens.draws[:, :, topic].sum(axis=1)
in_lo, in_hi = np.quantile(in_topic, [tail, 1 - tail])
print(f"tokens of the short docstring in topic {topic}: {np.mean(in_topic):.1f} of {n_tokens[short]} on "
      f"average, {LEVEL:.0%} of draws between {in_lo:.0f} and {in_hi:.0f}")

fig, ax = plt.subplots(figsize=(9, 0.3 * len(order) + 1.5))
im = ax.imshow(freq, cmap="Blues", vmin=0, vmax=1, aspect="auto")
ax.set_yticks(np.arange(len(order)), [f"{vocab[w]} (x{c})" for w, c in zip(tokens.cols[order], tokens.counts[order],
                                                                            strict=True)])
ax.set_xticks(topics)
ax.set_xlabel("topic")
ax.set_title(f"Topic draws for the tokens of {names[train[short]]}")
fig.colorbar(im, ax=ax, label="fraction of the word's tokens")
fig.tight_layout()

# %%
# Scoring documents: the bound and the completion perplexity
# ----------------------------------------------------------
# ``lda.log_likelihood(X)`` gives one number per document, but not
# :math:`\log p(x_d)`, which has no closed form for LDA: it is the document's
# share of the variational lower bound (the expected log-probability of its
# words minus the Kullback-Leibler divergence of its Dirichlet posterior from
# the prior). It lies below the true log-likelihood by a gap that depends on
# the approximation, so a higher bound can come from a tighter approximation
# rather than a better model, and a Gibbs sampler has no bound at all. The
# bound, and the perplexity :math:`\exp(-\text{bound}/\text{tokens})`
# computed from it (as scikit-learn's ``perplexity`` does), are for
# monitoring one fit, not for comparing tools.
#
# ``lda.completion_perplexity`` follows a protocol any topic model can
# follow, however it was fitted: split every held-out document's tokens at
# random into two halves, infer the topic proportions from the first half,
# and score the second half under them. It measures predictions of words the
# model has not seen, and needs nothing from the model but
# :math:`p(w \mid \text{first half})`, so the number is comparable across
# tools and inference methods. Lower is better; a one-topic model (a single
# word distribution for the whole corpus) is the baseline that topics must
# beat.
for label, data in (("training", X), ("held-out", X_test)):
    bound = lda.log_likelihood(data)
    print(f"{label:>8s}: bound per token {bound.sum() / data.sum():.3f} nats "
          f"(perplexity from the bound {np.exp(-bound.sum() / data.sum()):.0f})")
unigram = probspace.LDA(n_components=1, random_state=0).fit(X)
perplexity = lda.completion_perplexity(X_test, random_state=3)
baseline = unigram.completion_perplexity(X_test, random_state=3)
print(f"held-out completion perplexity: {perplexity:.0f} with {N_TOPICS} topics, {baseline:.0f} with one topic")

# %%
# ArviZ
# -----
# ``lda.to_arviz(X, n_samples=...)`` puts joint draws of the topic
# proportions in the ``posterior`` group (variable ``theta``, dims ``chain,
# draw, doc, topic``), the per-document bound in ``log_likelihood`` and the
# counts in ``observed_data``: an ``InferenceData`` on ArviZ 0.x, a
# ``DataTree`` on ArviZ 1.x. We take a handful of documents with the same
# dominant topic, from the short docstring to the long one, and summarise the
# dominant topic's share. The draws are independent, from a single "chain", so
# R-hat and ESS would say nothing about the fit; ``kind="stats"`` leaves them
# out. The summary's mean and sd match the exact Dirichlet marginal, up to
# Monte Carlo error.
import arviz as az

same = np.flatnonzero(dominant == topic)
picks = [short] + [same[np.argmin(np.abs(n_tokens[same] - q))] for q in (20, 60, 200)] + [long]
X_small = X[picks]
idata = lda.to_arviz(X_small, n_samples=N_ARVIZ_DRAWS, random_state=4)
groups = idata.groups() if arviz_major_version() < 1 else list(idata.children)
print(f"ArviZ {az.__version__}: {type(idata).__name__} with groups {groups}")

summary = az.summary(idata, group="latent_posterior", var_names=["theta"], coords={"topic": [topic]},
                     kind="stats")
small = lda.posterior(X_small)
summary.insert(0, "tokens", n_tokens[picks])
summary.insert(1, "name", [names[train[d]].rsplit(".", 1)[-1] for d in picks])
summary["exact mean"] = small.mean[:, topic].round(3)
summary["exact sd"] = np.sqrt(small.variance[:, topic]).round(3)
print(summary.to_string())

# %%
# Sampling the exact posterior: collapsed Gibbs
# ---------------------------------------------
# ``LDA(algorithm="gibbs")`` fits the same model by a compiled collapsed Gibbs
# sampler: the topic proportions and the topics are integrated out, and each
# sweep redraws the topic of every training token from its exact conditional.
# After burn-in its draws *are* posterior draws of all token topics jointly,
# where variational Bayes splits every word's tokens independently. New
# documents are handled by fold-in Gibbs sampling with the topics fixed, so
# ``posterior(X)`` is a mixture of Dirichlets over the draws (``method
# "mcmc"``) and ``sample_token_topics`` gives joint draws.
#
# The histogram below counts the short docstring's tokens in its dominant
# topic, draw by draw, under each posterior (each fit labels its topics its
# own way, so each uses its own dominant topic). The exact posterior couples
# the tokens of a document through its topic mix: they tend to move together,
# and the count spreads wider than the mean-field posterior says.
#
# The chains are kept apart for diagnostics: ``to_arviz`` writes the log joint
# :math:`\log p(w, z)` of every draw to ``sample_stats`` (``lp``), so R-hat and
# ESS apply. An R-hat well above 1 here is the usual picture for LDA: each
# chain settles in its own mode of a multimodal posterior (topics that split
# or merge differently), and ``fit`` warns about it. A Gibbs fit's document
# posteriors are mixtures over the draws of both chains.
gibbs = probspace.LDA(n_components=N_TOPICS, algorithm="gibbs", random_state=0, **GIBBS).fit(X)
gibbs_tokens = gibbs.sample_token_topics(X_short, n_samples=N_TOKEN_DRAWS, random_state=5)
g_topic = gibbs.posterior(X_short).mean[0].argmax()
g_in_topic = gibbs_tokens.draws[:, :, g_topic].sum(axis=1)
print(f"tokens of {names[train[short]]} in its dominant topic: variational sd {in_topic.std():.2f}, "
      f"Gibbs sd {g_in_topic.std():.2f} (of {n_tokens[short]} tokens)")
print(f"held-out completion perplexity: Gibbs {gibbs.completion_perplexity(X_test, random_state=3):.0f}, "
      f"variational Bayes {perplexity:.0f}")
g_data = gibbs.to_arviz(X_short, n_samples=GIBBS["n_draws"], random_state=6)
print("log joint over the two chains:\n" + az.summary(g_data, group="sample_stats", var_names=["lp"]).to_string())

fig, ax = plt.subplots(figsize=(7, 3.5))
bins = np.arange(n_tokens[short] + 2) - 0.5
ax.hist(in_topic, bins=bins, density=True, alpha=0.6, label="variational (mean field)")
ax.hist(g_in_topic, bins=bins, density=True, alpha=0.6, label="collapsed Gibbs (exact)")
ax.set_xlabel(f"tokens of the short docstring in its dominant topic (of {n_tokens[short]})")
ax.set_ylabel("share of draws")
ax.legend()
fig.tight_layout()
plt.show()

# sphinx_gallery_thumbnail_number = 2
