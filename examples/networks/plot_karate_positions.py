"""
Network latent positions: a posterior beside the spectral embedding
===================================================================

A random dot product graph (RDPG) gives every node of a network a latent
position :math:`x_i \\in \\mathbb{R}^2`, and links two nodes with probability
:math:`x_i \\cdot x_j`. The *adjacency spectral embedding* (ASE) estimates
those positions from the top eigenvectors of the adjacency matrix: one point
per node, no uncertainty. :class:`probspace.RDPG` keeps a posterior over the
positions instead (MCMC, every draw rotated onto the ASE by orthogonal
Procrustes, since positions are only defined up to a rotation), so each node
gets a credible region.

We check the two against each other on a simulated graph whose true
positions we know, then look at two real networks that ship with networkx:
Zachary's karate club, which split into two factions, and the
co-appearances of characters in *Les Misérables*.
"""

# %%
# A simulated graph: truth, spectral embedding, posterior
# --------------------------------------------------------
# 150 nodes with positions spread over the positive quadrant. We draw a graph,
# fit the model and ask how often the 90% credible regions hold the true
# positions (rotated into the posterior's frame) and the ASE points.
# ``PROBSPACE_EXAMPLES_FAST=1`` only lowers the numbers of MCMC sweeps.
import os

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np

import probspace
from probspace.inference._rdpg import edge_probabilities, procrustes_align, sample_graphs

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
SWEEPS = {"n_draws": 400, "n_warmup": 400} if FAST else {"n_draws": 2000, "n_warmup": 1000}

rng = np.random.default_rng(0)
angle = rng.uniform(0, np.pi / 2, 150)
radius = rng.uniform(0.5, 0.9, 150)
truth = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
A_sim = sample_graphs(edge_probabilities(truth), rng).astype(float)

sim = probspace.RDPG(2, random_state=0, **SWEEPS).fit(A_sim)
post = sim.posterior(A_sim)
regions = post.credible_region(0.9)
truth_aligned = procrustes_align(truth, post.mean)
print(f"true positions inside their 90% region: {regions.contains(truth_aligned).mean():.0%}")
print(f"ASE points inside the 90% region:       {regions.contains(sim.ase_).mean():.0%}")

fig, ax = plt.subplots(figsize=(6, 5))
for edge in regions.boundary(60):
    ax.plot(edge[:, 0], edge[:, 1], color="tab:blue", lw=0.6, alpha=0.5)
ax.scatter(*truth_aligned.T, s=10, color="black", label="true position", zorder=3)
ax.scatter(*sim.ase_.T, s=12, marker="x", color="tab:red", label="spectral embedding", zorder=3)
ax.plot([], [], color="tab:blue", label="90% credible region")
ax.set(xlabel="latent dimension 1", ylabel="latent dimension 2", title="Simulated RDPG, 150 nodes")
ax.legend(loc="lower left", fontsize=8)
fig.tight_layout()

# %%
# Zachary's karate club
# ---------------------
# 34 members of a karate club, linked when they met outside the club; the club
# later split between the instructor (Mr. Hi, node 0) and the administrator
# (the Officer, node 33). networkx records which side each member joined.
G = nx.karate_club_graph()
A = nx.to_numpy_array(G, weight=None)  # binary: the model takes an unweighted graph
faction = np.array([G.nodes[i]["club"] == "Officer" for i in G.nodes])

karate = probspace.RDPG(2, random_state=1, **SWEEPS).fit(A)
post = karate.posterior(A)
regions = post.credible_region(0.9)
draws = post.draws.reshape(-1, 34, 2)

# %%
# Which side does each member's *position* put them on? In every draw, a
# member sides with whichever leader their position points towards (the
# smaller angle between positions). The share of draws on the Officer's side
# is a posterior probability; members between the factions get values far
# from 0 and 1.
def angle_to(d, leader):
    u = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return np.arccos(np.clip(np.sum(u * u[:, leader : leader + 1], axis=-1), -1, 1))


p_officer = np.mean(angle_to(draws, 33) < angle_to(draws, 0), axis=0)
ambiguous = np.flatnonzero((p_officer > 0.2) & (p_officer < 0.8))
area = np.pi * regions.radius2 * np.sqrt(np.linalg.det(regions.covariance))
print(f"{'member':>6} {'degree':>6} {'P(Officer side)':>15} {'joined':>8} {'region area':>11}")
for i in ambiguous:
    print(f"{i:6d} {int(A[i].sum()):6d} {p_officer[i]:15.2f} {'Officer' if faction[i] else 'Mr. Hi':>8} "
          f"{area[i]:11.3f}")
print(f"median region area: ambiguous members {np.median(area[ambiguous]):.3f}, "
      f"the others {np.median(np.delete(area, ambiguous)):.3f}")

fig, ax = plt.subplots(figsize=(6.5, 5.5))
colors = np.where(faction, "tab:orange", "tab:purple")
for i, edge in enumerate(regions.boundary(60)):
    ax.plot(edge[:, 0], edge[:, 1], color=colors[i], lw=2.0 if i in ambiguous else 0.6,
            alpha=0.9 if i in ambiguous else 0.4)
ax.scatter(*post.mean.T, c=colors, s=25, zorder=3)
ax.scatter(*karate.ase_.T, c=colors, marker="x", s=25, zorder=3)
for i in ambiguous:
    ax.annotate(str(i), post.mean[i], fontsize=9, xytext=(3, 3), textcoords="offset points")
ax.plot([], [], color="tab:purple", label="Mr. Hi's faction")
ax.plot([], [], color="tab:orange", label="Officer's faction")
ax.scatter([], [], marker="x", color="gray", label="spectral embedding")
ax.scatter([], [], color="gray", label="posterior mean")
ax.set(xlabel="latent dimension 1", ylabel="latent dimension 2",
       title="Karate club: 90% regions (bold: members between the factions)")
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()

# %%
# Les Misérables co-appearances
# -----------------------------
# 77 characters, linked when they appear in the same chapter (the weights
# count chapters; we keep only whether two characters ever meet). In an RDPG
# a node's distance from the origin sets its degree and its *direction* says
# which group it belongs to. Characters with many ties have a well-defined
# direction; those who meet one or two others do not: the spread of the angle
# of their position across draws is wide, which the spectral embedding's
# single point does not show.
L = nx.les_miserables_graph()
names = np.array(list(L.nodes))
A_les = nx.to_numpy_array(L, weight=None)
les = probspace.RDPG(2, random_state=2, **SWEEPS).fit(A_les)
les_draws = les.posterior(A_les).draws.reshape(-1, 77, 2)
theta = np.arctan2(les_draws[..., 1], les_draws[..., 0])
angular_sd = np.degrees(np.sqrt(-2 * np.log(np.abs(np.mean(np.exp(1j * theta), axis=0)))))
degree = A_les.sum(axis=1)
order = np.argsort(angular_sd)
print(f"{'character':>16} {'degree':>6} {'angle sd (deg)':>14}")
for i in list(order[:4]) + list(order[-4:]):
    print(f"{names[i]:>16} {int(degree[i]):6d} {angular_sd[i]:14.1f}")

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.scatter(degree, angular_sd, s=12)
ax.set(xscale="log", xlabel="degree", ylabel="posterior sd of the direction (degrees)",
       title="Les Misérables: direction uncertainty by degree")
fig.tight_layout()

# %%
# Held-out edges and ArviZ
# ------------------------
# ``log_likelihood`` scores a graph on the same nodes with the posterior
# predictive edge probabilities ``edge_probabilities_``; on the simulated
# graph we can draw a second graph from the same positions and compare with
# the spectral embedding used as a plug-in. ``to_arviz`` keeps the chains, so
# ArviZ's R-hat and effective sample sizes apply.
A_again = sample_graphs(edge_probabilities(truth), rng).astype(float)
iu = np.triu_indices(150, 1)
P_ase = np.clip(sim.ase_ @ sim.ase_.T, 1e-6, 1 - 1e-6)[iu]
plug_in = np.sum(np.where(A_again[iu] == 1, np.log(P_ase), np.log1p(-P_ase)))
print(f"held-out graph: posterior predictive {sim.log_likelihood(A_again).sum() / 2:.1f} nats, "
      f"ASE plug-in {plug_in:.1f} nats")

import arviz as az  # noqa: E402

idata = karate.to_arviz(A, n_samples=200, random_state=0)
summary = az.summary(idata, group="latent_posterior", var_names=["position"],
                     coords={"node": [0, 33, *ambiguous[:3]]})
print(summary[["mean", "sd", "hdi_3%", "hdi_97%", "ess_bulk", "r_hat"]])
