"""Benchmark probspace's VAE against a hand-written PyTorch training loop, same run.

Data: scikit-learn's ``load_digits().data / 16`` (1797 x 64, in [0, 1]), split with a fixed
seed into 1500 training and 297 held-out digits. Architecture 64-256-256-8 with a Bernoulli
likelihood, batch 128, Adam 1e-3, E = 200 epochs (see the VAE section of
``/work/shared/design/performance-anchors.md``: hand-written loop 0.0388 s/epoch, Pyro SVI with
JitTrace_ELBO 1.17x, with Trace_ELBO 1.40x).

Three trainers, timed in the same process with their order interleaved (ABC, CBA, ...):

- probspace ``VAE(8, hidden_dims=(256, 256), likelihood="bernoulli", elbo="fused", ...).fit``:
  the single-sample, analytic-KL ELBO in one torch graph;
- the same with ``elbo="pyro"`` (Pyro's ``TraceMeanField_ELBO.differentiable_loss`` per
  minibatch), for information;
- the reference: a hand-written PyTorch loop with the *same* architecture (encoder
  Linear(64,256)-ReLU-Linear(256,256)-ReLU, heads Linear(256,8) for the mean and
  softplus(Linear(256,8)) + 1e-5 for the scale; decoder Linear(8,256)-ReLU-Linear(256,256)-ReLU-
  Linear(256,64) logits), loss = -(Bernoulli log-likelihood - analytic KL) summed over the batch
  / batch size, Adam 1e-3, ``torch.randperm`` shuffling every epoch, and the epoch's training
  loss accumulated with ``loss.item()`` (probspace records it too, in ``history_``).
  Checked: with probspace's weights copied in and the same noise, it computes probspace's loss.

Same computation on both sides: probspace seeds torch from its generator (see ``VAE._fit``:
``rng.permutation(n)`` for the train/validation split, one integer for its scoring seed, one for
torch). The reference is given that derived torch seed and the data in that order, so it starts
from the same initial weights and sees the same minibatches and noise: its per-epoch training
ELBOs equal probspace's ``history_`` to float rounding (checked and printed). The speed of an
epoch cannot then depend on where training went. A second hand-written model trained from an
independent seed (untimed) shows the natural seed-to-seed spread of the held-out ELBO.

What is timed: the whole ``fit`` (or the whole reference call: building the network and the
optimiser, converting the data, training), once with E epochs and once with a few epochs
(``--small-epochs``). Two per-epoch figures are printed: ``total / E`` (one-off costs included)
and the marginal cost per epoch ``(T(E) - T(E_small)) / (E - E_small)``, which removes the
one-off costs (validation, building the module, seeding, first-call costs); the intercept
``T(E) - E * marginal`` estimates those. The goal is judged on the marginal cost per epoch.
Process CPU time is recorded next to the wall time: on a busy machine it is less disturbed.

Held-out ELBO: every trained model is scored on the 297 held-out digits with the same
estimator: analytic KL plus 100 reparameterised samples of log p(x | z), averaged over digits
(nats per digit, higher is better), with a fixed noise seed.

Single-threaded: the thread variables below are set to 1 before torch is imported (the
environment wins) and ``torch.set_num_threads(1)`` is called (``--threads``): on these 2-core
machines two torch threads were no faster on this model, and much slower when the other core
is busy. CPU only: no GPU timings.

Usage::

    python benchmarks/bench_vae.py            # full run, E = 200 (about 4 minutes)
    python benchmarks/bench_vae.py --quick    # smoke run, E = 20
    python benchmarks/bench_vae.py --epochs 100 --repeats 6

Exits with status 1 when a goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pyro  # noqa: E402
import sklearn  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import probspace  # noqa: E402
from probspace import VAE  # noqa: E402

GOAL_EPOCH_RATIO = 1.10  # probspace fused / hand-written, marginal seconds per epoch
GOAL_ELBO_NATS = 0.5  # |held-out ELBO probspace fused - hand-written|
ANCHORS = {"Pyro SVI, JitTrace_ELBO": 1.17, "Pyro SVI, Trace_ELBO": 1.40}
N_TEST = 297
N_LATENT, HIDDEN, BATCH, LR = 8, (256, 256), 128, 1e-3
# fused and the reference side by side in both orders (ABC, CBA): the pair whose ratio is the goal runs back to back.
VARIANTS = ("probspace fused", "hand-written", "probspace pyro")


# -- the reference ----------------------------------------------------------------------
class HandVAE(nn.Module):
    """64-256-256-8 VAE, parameter names as in probspace's module (decoder.4 is its dec_out)."""

    def __init__(self, n_features: int, n_latent: int = N_LATENT, hidden: int = 256) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.enc_loc = nn.Linear(hidden, n_latent)
        self.enc_scale = nn.Linear(hidden, n_latent)
        self.decoder = nn.Sequential(nn.Linear(n_latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_features))

    def encode(self, x):
        h = self.encoder(x)
        return self.enc_loc(h), F.softplus(self.enc_scale(h)) + 1e-5

    def decode(self, z):
        return self.decoder(z)

    def loss(self, x):
        """-ELBO summed over the batch, divided by the batch size (one sample, analytic KL)."""
        loc, scale = self.encode(x)
        z = loc + scale * torch.randn_like(loc)
        log_lik = -F.binary_cross_entropy_with_logits(self.decode(z), x, reduction="none").sum(-1)
        kl = 0.5 * (loc**2 + scale**2 - 1.0).sum(-1) - torch.log(scale).sum(-1)
        return -(log_lik - kl).sum() / x.shape[0]


def train_hand(X: np.ndarray, epochs: int, seed: int) -> HandVAE:
    torch.manual_seed(seed)
    model = HandVAE(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    n = Xt.shape[0]
    model.history = []
    for _ in range(epochs):
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, BATCH):
            xb = Xt[perm[start:start + BATCH]]
            loss = model.loss(xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * xb.shape[0]
        model.history.append(-total / n)
    return model


def probspace_seeding(seed: int, n: int) -> tuple[int, np.ndarray]:
    """The torch seed and the row order of probspace's ``VAE(random_state=seed).fit`` on ``n`` rows.

    Mirrors ``VAE._fit`` (no validation split): ``rng.permutation(n)``, then one integer for the
    scoring seed, then one for ``torch.manual_seed``; checked against ``history_`` in ``main``.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    rng.integers(0, 2**63 - 1)
    return int(rng.integers(0, 2**63 - 1)), order


def train_probspace(X: np.ndarray, epochs: int, seed: int, elbo: str) -> VAE:
    return VAE(n_components=N_LATENT, hidden_dims=HIDDEN, likelihood="bernoulli", batch_size=BATCH,
               learning_rate=LR, max_epochs=epochs, elbo=elbo, random_state=seed, progress=False).fit(X)


def train(variant: str, X: np.ndarray, epochs: int, seed: int, X_hand: np.ndarray, hand_seed: int):
    """``X_hand`` and ``hand_seed``: ``X`` in probspace's order and probspace's torch seed (same computation)."""
    if variant == "hand-written":
        return train_hand(X_hand, epochs, hand_seed)
    return train_probspace(X, epochs, seed, variant.split()[-1])


def networks(model):
    """``(encode, decode_logits)`` of a trained model of either kind."""
    if isinstance(model, HandVAE):
        return model.encode, model.decode
    return model.module_.encode, model.module_.decode_raw


# -- checks ---------------------------------------------------------------------------
def heldout_elbo(model, X: np.ndarray, n_samples: int, seed: int) -> float:
    """Mean over digits of: analytic KL and ``n_samples`` reparameterised draws of log p(x | z)."""
    encode, decode = networks(model)
    x = torch.as_tensor(X, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    # Module-local parameters, as probspace itself runs its module (no global Pyro param store).
    with torch.no_grad(), pyro.settings.context(module_local_params=True):
        loc, scale = encode(x)
        eps = torch.randn((n_samples, *loc.shape), generator=gen)
        logits = decode(loc + scale * eps)
        log_lik = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        kl = 0.5 * (loc**2 + scale**2 - 1.0).sum(-1) - torch.log(scale).sum(-1)
        return float((log_lik.double().mean(0) - kl.double()).mean())


def same_loss_check(X: np.ndarray, seed: int) -> tuple[float, int, int]:
    """Probspace's weights in the reference: max |loss difference| over the training batches, same noise."""
    model = train_probspace(X, 1, seed, "fused")
    hand = HandVAE(X.shape[1])
    state = {k.replace("dec_out", "decoder.4"): v for k, v in model.module_.state_dict().items()}
    hand.load_state_dict(state)
    x = torch.as_tensor(X, dtype=torch.float32)
    diff = 0.0
    with torch.no_grad(), pyro.settings.context(module_local_params=True):
        for start in range(0, x.shape[0], BATCH):
            xb = x[start:start + BATCH]
            torch.manual_seed(seed + start)
            ours = float(-model.module_.elbo(xb).sum() / xb.shape[0])
            torch.manual_seed(seed + start)
            diff = max(diff, abs(ours - float(hand.loss(xb))))
    n_ours = sum(p.numel() for p in model.module_.parameters())
    return diff, n_ours, sum(p.numel() for p in hand.parameters())


# -- timing helpers -----------------------------------------------------------------------
def median(values) -> float:
    return statistics.median(values)


def fmt_runs(values, scale=1.0, digits=2) -> str:
    return " ".join(f"{v * scale:.{digits}f}" for v in values)


def timed_train(variant, X, epochs, seed, X_hand, hand_seed):
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    model = train(variant, X, epochs, seed, X_hand, hand_seed)
    return time.perf_counter() - w0, time.process_time() - c0, model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: E=20, 2 small epochs")
    parser.add_argument("--epochs", type=int, default=None, help="E, training epochs (default 200; --quick: 20)")
    parser.add_argument("--small-epochs", type=int, default=None,
                        help="epochs of the short fits that estimate the one-off costs (default 10; --quick: 2)")
    parser.add_argument("--repeats", type=int, default=6, help="interleaved repetitions of each timing")
    parser.add_argument("--elbo-samples", type=int, default=100, help="draws of log p(x|z) per held-out digit")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (20 if args.quick else 200)
    small = args.small_epochs if args.small_epochs is not None else (2 if args.quick else 10)
    if not 1 <= small < epochs:
        parser.error("need 1 <= --small-epochs < --epochs")
    torch.set_num_threads(args.threads)

    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"probspace VAE benchmark: load_digits / 16, 64-{HIDDEN[0]}-{HIDDEN[1]}-{N_LATENT}, Bernoulli, "
          f"batch {BATCH}, Adam {LR:g}, E={epochs} epochs (short fits: {small})")
    print(f"python {platform.python_version()}, torch {torch.__version__}, pyro {pyro.__version__}, "
          f"scikit-learn {sklearn.__version__}, probspace {probspace.__version__}; {os.cpu_count()} cpus; "
          f"torch threads {torch.get_num_threads()}; " + ", ".join(f"{k}={v}" for k, v in threads.items()))
    print("device: CPU only (no GPU on this machine: GPU timings skipped)")
    print("load average at start (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + "  (other processes on this machine distort the timings)")
    X = load_digits().data / 16.0
    order = np.random.default_rng(args.seed).permutation(X.shape[0])
    X_test, X_train = X[order[:N_TEST]], X[order[N_TEST:]]
    print(f"data: train {X_train.shape}, held-out {X_test.shape}; {-(-X_train.shape[0] // BATCH)} batches per epoch")

    diff, n_ours, n_hand = same_loss_check(X_train, args.seed)
    same_arch = n_ours == n_hand and diff < 1e-3
    print(f"same architecture: {n_ours:,} vs {n_hand:,} parameters; probspace's weights in the reference, "
          f"same noise: max |loss diff| over {-(-X_train.shape[0] // BATCH)} batches = {diff:.2e} "
          f"... {'yes' if same_arch else 'NO'}")
    print()

    hand_seed, hand_order = probspace_seeding(args.seed, X_train.shape[0])
    X_hand = X_train[hand_order]

    # Warm-up, not timed: imports and first-call costs.
    for variant in VARIANTS:
        train(variant, X_train, small, args.seed, X_hand, hand_seed)

    wall = {(v, e): [] for v in VARIANTS for e in (epochs, small)}
    cpu = {(v, e): [] for v in VARIANTS for e in (epochs, small)}
    models = {}
    for rep in range(args.repeats):
        for variant in VARIANTS if rep % 2 == 0 else VARIANTS[::-1]:
            for e in (epochs, small) if rep % 2 == 0 else (small, epochs):
                w, c, model = timed_train(variant, X_train, e, args.seed, X_hand, hand_seed)
                wall[variant, e].append(w)
                cpu[variant, e].append(c)
                if e == epochs:
                    models[variant] = model  # the same seed every repeat: the same model
    load_mid = os.getloadavg()

    def figures(table, v):
        big, little = median(table[v, epochs]), median(table[v, small])
        slope = (big - little) / (epochs - small)
        return big, big / epochs, slope, big - epochs * slope

    print(f"[1] training time, {args.repeats} interleaved runs per variant and length (ABC, CBA order), medians")
    print(f"    {'trainer':<18}{'fit(E) s':>10}{'fit(E)/E':>10}{'marginal':>10}{'one-off':>9}"
          f"{'cpu marg.':>11}   per-run fit(E) s | fit({small}) s")
    fig = {v: figures(wall, v) for v in VARIANTS}
    cfig = {v: figures(cpu, v) for v in VARIANTS}
    for v in VARIANTS:
        big, per, slope, fixed = fig[v]
        print(f"    {v:<18}{big:>10.2f}{per * 1e3:>8.2f}ms{slope * 1e3:>8.2f}ms{fixed:>8.2f}s{cfig[v][2] * 1e3:>9.2f}ms"
              f"   {fmt_runs(wall[v, epochs])} | {fmt_runs(wall[v, small], digits=3)}")
    print("    (marginal = (fit(E) - fit(E_small)) / (E - E_small): seconds per epoch without one-off costs;"
          " one-off = fit(E) - E * marginal)")
    ref, ref_c = fig["hand-written"], cfig["hand-written"]
    ratios = {}
    for v in ("probspace fused", "probspace pyro"):
        ratios[v] = fig[v][2] / ref[2]
        pairs = [a / b for a, b in zip(wall[v, epochs], wall["hand-written", epochs], strict=True)]
        print(f"    {v} / hand-written: marginal {ratios[v]:.3f}, fit(E)/E {fig[v][1] / ref[1]:.3f}, "
              f"cpu marginal {cfig[v][2] / ref_c[2]:.3f}; fit(E) per repeat {' '.join(f'{r:.3f}' for r in pairs)} "
              f"(median {median(pairs):.3f})")
    print("    anchors (hand-written loop 0.0388 s/epoch): " + ", ".join(f"{k} {r:.2f}x" for k, r in ANCHORS.items()))

    hand_hist = np.asarray(models["hand-written"].history)
    gaps = {v: float(np.max(np.abs(hand_hist - models[v].history_))) for v in ("probspace fused", "probspace pyro")}
    same_run = gaps["probspace fused"] < 1e-3
    print(f"    same computation: the reference got probspace's torch seed and row order; max over {epochs} epochs "
          f"of |training ELBO, reference - probspace|: fused {gaps['probspace fused']:.1e} "
          f"... {'yes' if same_run else 'NO (probspace seeds differently now; timings still comparable)'}; "
          f"pyro {gaps['probspace pyro']:.1e} (its float rounding differs, so it drifts apart slowly)")
    print()

    print(f"[2] held-out ELBO (nats per digit, {N_TEST} digits; analytic KL + {args.elbo_samples} draws of "
          f"log p(x|z), noise seed {args.seed}); last training-epoch ELBO for reference")
    elbos = {v: heldout_elbo(models[v], X_test, args.elbo_samples, args.seed) for v in VARIANTS}
    for v in VARIANTS:
        last = models[v].history[-1] if v == "hand-written" else models[v].history_[-1]
        print(f"    {v:<18}{elbos[v]:>10.3f}   (train, last epoch: {last:.3f})")
    spread = heldout_elbo(train_hand(X_train, epochs, args.seed + 1), X_test, args.elbo_samples, args.seed)
    print(f"    hand-written, independent seed (torch seed {args.seed + 1}, untimed): {spread:.3f} "
          f"({spread - elbos['hand-written']:+.3f}: the seed-to-seed spread)")
    gap = elbos["probspace fused"] - elbos["hand-written"]
    print(f"    probspace fused - hand-written: {gap:+.4f}; probspace pyro - hand-written: "
          f"{elbos['probspace pyro'] - elbos['hand-written']:+.4f}")
    print()

    print("load average mid-run (after timing) (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in load_mid))
    print("load average at end (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    ok_time = ratios["probspace fused"] <= GOAL_EPOCH_RATIO
    ok_elbo = abs(gap) <= GOAL_ELBO_NATS and same_arch
    pyro_ratio = ratios["probspace pyro"]
    print(f"INFO  elbo='pyro' / hand-written seconds per epoch (marginal): {pyro_ratio:.3f} "
          f"(anchors: Pyro JitTrace_ELBO 1.17, Trace_ELBO 1.40)")
    print(f"GOAL seconds per epoch fused / hand-written <= {GOAL_EPOCH_RATIO}: {ratios['probspace fused']:.3f} "
          f"({100 * (ratios['probspace fused'] - 1):+.1f}%) ... {'PASS' if ok_time else 'FAIL'}")
    print(f"GOAL |held-out ELBO fused - hand-written| <= {GOAL_ELBO_NATS} nats: {abs(gap):.4f} "
          f"... {'PASS' if ok_elbo else 'FAIL'}")
    return 0 if (ok_time and ok_elbo) else 1


if __name__ == "__main__":
    sys.exit(main())
