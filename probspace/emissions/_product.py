"""Product emissions: a different emission per group of columns, independent given the state.

``parts`` lists ``(emission name, columns)`` or ``(emission name, columns,
settings)``: for example ``[("gaussian", [0, 1], {"covariance_type": "full"}),
("categorical", [2]), ("poisson", [3])]``. The columns of the parts must
cover the columns of ``X`` exactly once. Given the state, the parts are
independent, so the log-density of a frame is the sum of the parts'
log-densities on their columns, and the EM M-step is each part's own M-step
on its columns (the expected complete-data log-likelihood separates). Missing
values are handled by each part as it would be alone.

Parameter arrays are the parts' arrays named ``<emission><index>_<array>``
(``gaussian0_means``, ``categorical1_emissionprob``, ``poisson2_lambdas``).
With ``parts=None`` every column is one diagonal Gaussian part.

Gibbs sampling (``sampler="gibbs"``) is available when every part has a
conjugate Gibbs update (Gaussian with ``"diag"`` or ``"full"`` covariances,
categorical, Poisson, Bernoulli...). The parts have disjoint parameters and
the likelihood factorises over them given the states, so the conditional of
the emission parameters given the states is the product of the parts'
conditionals and drawing each part from its own is an exact Gibbs step. The
compiled log-density and update of a product are generated once per layout
(the parts' kernels and columns): each part's kernel runs on its own
contiguous copy of its columns and its slice of the flat parameter vector.
Held entries (``fixed=`` with NaN entries) reach each part's update as the
part's own entry flags, so a product holds what its parts' updates hold
(the HMMs hold the arrays of a product of more than two arrays per state, as EM does).
Prior entries are the parts' own, prefixed like the arrays
(``prior={"gaussian0_mean": 0.0, "poisson1_rate_shape": 2.0,
"categorical2_emissionprob": 1.0}``). Draws are relabelled by the first
part's ordering key. NUTS is not available for products.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._base import FRAMES, JIT, UPDATE, Emission, PriorReader, registered_emission

__all__ = ["ProductEmission"]


class ProductEmission(Emission):
    """Product of emissions over disjoint column groups (see the module docstring).

    Parameters
    ----------
    parts : list of tuple, optional
        ``(name, columns)`` or ``(name, columns, settings)`` per part: a
        registered emission name, a list of column indices, and the
        emission's settings (its constructor's keyword arguments). None: one
        diagonal Gaussian part over all columns.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import HMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([rng.normal(size=60), rng.integers(0, 3, 60), rng.poisson(2.0, 60)])
    >>> parts = [("gaussian", [0]), ("categorical", [1]), ("poisson", [2])]
    >>> model = HMM(2, emission="product", emission_params={"parts": parts}, random_state=0).fit(X)
    >>> model.poisson2_lambdas_.shape
    (2, 1)
    """

    name = "product"

    def __init__(self, parts: list | None = None) -> None:
        self.parts = parts

    # -- the parts ------------------------------------------------------------------------------
    def _spec(self, D: int | None = None, owner: str = "ProductEmission") -> list[tuple[str, list[int], dict]]:
        """Return the parts as ``(name, columns, settings)``, checked (columns against ``D`` where given)."""
        if self.parts is None:
            if D is None:
                raise ValueError(f"{owner}: parts=None needs the data to size its one Gaussian part.")
            return [("gaussian", list(range(D)), {"covariance_type": "diag"})]
        if not isinstance(self.parts, (list, tuple)) or not self.parts:
            raise ValueError(f"{owner}: emission_params['parts'] must be a non-empty list of (name, columns) or "
                             f"(name, columns, settings); got {self.parts!r}.")
        spec = []
        for i, part in enumerate(self.parts):
            if not isinstance(part, (list, tuple)) or len(part) not in (2, 3):
                raise ValueError(f"{owner}: parts[{i}] must be (name, columns) or (name, columns, settings); "
                                 f"got {part!r}.")
            name, cols = part[0], part[1]
            settings = dict(part[2]) if len(part) == 3 and part[2] is not None else {}
            if name in ("product",):
                raise ValueError(f"{owner}: parts[{i}] cannot itself be a product emission.")
            registered_emission(name)  # a named error for an unknown emission
            cols_arr = np.asarray(cols)
            if (cols_arr.ndim != 1 or cols_arr.size == 0 or not np.issubdtype(cols_arr.dtype, np.integer)):
                raise ValueError(f"{owner}: the columns of parts[{i}] must be a non-empty list of integer column "
                                 f"indices; got {cols!r}.")
            spec.append((name, [int(c) for c in cols_arr], settings))
        used = np.concatenate([np.asarray(c) for _, c, _ in spec])
        if len(np.unique(used)) != len(used):
            dup = sorted({int(c) for c in used if (used == c).sum() > 1})
            raise ValueError(f"{owner}: the parts' columns overlap (column(s) {dup} are listed twice); each column "
                             "belongs to exactly one part.")
        if D is not None and sorted(used.tolist()) != list(range(D)):
            missed = sorted(set(range(D)) - set(used.tolist()))
            beyond = sorted(c for c in set(used.tolist()) if c < 0 or c >= D)
            raise ValueError(f"{owner}: the parts' columns must cover the {D} columns of X exactly once; missing "
                             f"{missed}, out of range {beyond}.")
        return spec

    def _members(self, D: int | None = None, owner: str = "ProductEmission") -> list[tuple[str, list[int], Emission]]:
        """``(prefix, columns, emission)`` per part."""
        out = []
        for i, (name, cols, settings) in enumerate(self._spec(D, owner)):
            cls = registered_emission(name)
            try:
                member = cls(**settings)
            except TypeError as err:
                raise ValueError(f"{owner}: the settings {settings!r} of parts[{i}] do not fit {cls.__name__}: "
                                 f"{err}.") from None
            out.append((f"{name}{i}_", cols, member))
        return out

    @property
    def names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p + n for p, _, m in self._members() for n in m.names)

    @property
    def key(self) -> str:  # type: ignore[override]
        p, _, m = self._members()[0]
        return p + m.key

    def settings(self) -> dict[str, Any]:
        return {"parts": None if self.parts is None else [[n, list(c), dict(s)] for n, c, s in self._spec()]}

    def for_data(self, X):
        spec = self._spec(X.shape[1], "HMM(emission='product')")
        filled = []
        for (name, cols, _), (_, _, member) in zip(spec, self._members(X.shape[1]), strict=True):
            filled.append([name, cols, member.for_data(X[:, cols]).settings()])
        return type(self)(filled)

    def check_data(self, X, owner):
        for prefix, cols, member in self._members(X.shape[1], owner):
            member.check_data(X[:, cols], f"{owner} (part {prefix[:-1]!r}, columns {cols})")

    def check_sampler(self, sampler, X, owner):
        if sampler != "gibbs":
            raise ValueError(f"{owner} with a product emission supports sampler ['gibbs']; got {sampler!r}.")
        for prefix, cols, member in self._members(X.shape[1], owner):
            where = f"{owner} (product part {prefix[:-1]!r}, columns {cols})"
            if "gibbs" not in member.samplers or member.update_kernel is None:
                raise ValueError(f"{where}: sampler='gibbs' needs every part to have a conjugate Gibbs update; "
                                 f"the {member.name!r} emission has none (it supports {list(member.samplers)}). "
                                 "Fit with sampler=None (EM).")
            member.check_sampler("gibbs", np.ascontiguousarray(X[:, cols]), where)

    @staticmethod
    def conformance_data(states, rng):
        """Two Gaussian columns, a Poisson count column and a categorical symbol column."""
        means = np.array([[-2.0, 0.0], [2.0, 1.0]])
        gauss = means[states] + rng.normal(size=(len(states), 2))
        counts = rng.poisson(np.array([1.0, 6.0])[states])
        B = np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]])
        symbols = (rng.random(len(states))[:, None] > np.cumsum(B[states], axis=1)[:, :-1]).sum(axis=1)
        return np.column_stack([gauss, counts, symbols]).astype(float)

    # -- parameters ------------------------------------------------------------------------------
    def _split(self, params: dict[str, np.ndarray], prefix: str, member: Emission) -> dict[str, np.ndarray]:
        return {n: params[prefix + n] for n in member.names}

    def shapes(self, K, D):
        return {p + n: s for p, cols, m in self._members() for n, s in m.shapes(K, len(cols)).items()}

    def dims(self):
        out = {}
        for p, _, m in self._members():
            for n, dims in m.dims().items():
                out[p + n] = tuple(f"{p}{d}" if d != "state" else d for d in dims)
        return out

    def order_key(self, params):
        p, _, m = self._members()[0]
        return m.order_key(self._split(params, p, m))

    # -- density and sampling -----------------------------------------------------------------------
    def log_frames(self, X, params):
        """Sum of the parts' log-densities on their columns."""
        X = np.asarray(X, dtype=np.float64)
        return sum(m.log_frames(np.ascontiguousarray(X[:, cols]), self._split(params, p, m))
                   for p, cols, m in self._members(X.shape[1]))

    def n_states(self, params):
        return np.shape(params[self.names[0]])[0]

    def sample(self, params, states, rng):
        members = self._members()
        D = sum(len(cols) for _, cols, _ in members)
        out = np.empty((len(states), D))
        for p, cols, m in members:
            out[:, cols] = m.sample(self._split(params, p, m), states, rng)
        return out

    # -- EM ---------------------------------------------------------------------------------------
    def init(self, X, K, rng):
        start = {}
        for p, cols, m in self._members(X.shape[1]):
            start.update({p + n: v for n, v in m.init(np.ascontiguousarray(X[:, cols]), K, rng).items()})
        return start

    def missing_supported(self, missing):
        return all(m.missing_supported(missing[:, cols]) for _, cols, m in self._members(missing.shape[1]))

    def m_step(self, X, gamma, params):
        """Each part's own M-step on its columns (the expected log-likelihood is a sum over the parts)."""
        out = {}
        for p, cols, m in self._members(X.shape[1]):
            new = m.m_step(np.ascontiguousarray(X[:, cols]), gamma, self._split(params, p, m))
            out.update({p + n: v for n, v in new.items()})
        return out

    # -- Gibbs ------------------------------------------------------------------------------------
    samplers = ("gibbs",)

    @property
    def simplex(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p + n for p, _, m in self._members() for n in m.simplex)

    @property
    def positive(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p + n for p, _, m in self._members() for n in m.positive)

    @property
    def gibbs_entry_holds(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p + n for p, _, m in self._members() for n in m.gibbs_entry_holds)

    @property
    def gibbs_state_holds(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(p + n for p, _, m in self._members() for n in m.gibbs_state_holds)

    @property
    def hyper_keys(self) -> dict[str, str]:  # type: ignore[override]
        return {p + k: p + a for p, _, m in self._members() for k, a in m.hyper_keys.items()}

    @property
    def frames_kernel(self) -> Any:  # type: ignore[override]
        members = self._members()
        if not all(m.frames_kernel is not None for _, _, m in members):
            return None
        return _kernels(members)[0]

    @property
    def update_kernel(self) -> Any:  # type: ignore[override]
        members = self._members()
        if not all(m.update_kernel is not None for _, _, m in members):
            return None
        return _kernels(members)[1]

    def aux(self, X):
        """Return the parts' per-row constants, part after part (length ``n_parts * N``, split by the kernel)."""
        X = np.asarray(X, dtype=np.float64)
        return np.concatenate([np.asarray(m.aux(np.ascontiguousarray(X[:, cols])), dtype=np.float64)
                               for _, cols, m in self._members(X.shape[1])])

    def number_hint(self, array):
        for p, _, m in self._members():
            if array.startswith(p) and array[len(p):] in m.names:
                return " and ".join(f"'{p}{k}'" for k, a in m.hyper_keys.items() if a == array[len(p):])
        return super().number_hint(array)

    def resolve_hyper(self, reader, X, K):
        """Each part's hyper-parameters from its prefixed ``prior`` entries, under the prefixed names."""
        out = {}
        for p, cols, m in self._members(X.shape[1]):
            sub = PriorReader({k[len(p):]: v for k, v in reader.user.items() if k.startswith(p)},
                              f"{reader.owner} (product part {p[:-1]!r}; its prior keys are prefixed {p!r})")
            out.update({p + k: v for k, v in m.resolve_hyper(sub, np.ascontiguousarray(X[:, cols]), K).items()})
        return out

    def pack_hyper(self, hyper, D):
        """``[n_parts + 1 offsets, part 0's packed hyper-parameters, part 1's, ...]`` (offsets after the header)."""
        members = self._members()
        blocks = [np.asarray(m.pack_hyper({k[len(p):]: v for k, v in hyper.items() if k.startswith(p)}, len(cols)),
                             dtype=np.float64).ravel() for p, cols, m in members]
        offsets = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]) + len(members) + 1
        return np.concatenate([offsets.astype(np.float64), *blocks])

    def log_prior(self, params, hyper, fixed=()):
        """Sum of the parts' conjugate log prior densities."""
        total = 0.0
        for p, _, m in self._members():
            total = total + m.log_prior(self._split(params, p, m),
                                        {k[len(p):]: v for k, v in hyper.items() if k.startswith(p)},
                                        tuple(f[len(p):] for f in fixed if f.startswith(p)))
        return total

    def prepare_start(self, start, fixed, X, floor):
        for p, cols, m in self._members(X.shape[1]):
            sub = self._split(start, p, m)
            m.prepare_start(sub, {k[len(p):]: v for k, v in fixed.items() if k.startswith(p)},
                            np.ascontiguousarray(X[:, cols]), floor)
            start.update({p + n: v for n, v in sub.items()})


@numba.njit(**JIT)
def _gather(X, cols):  # pragma: no cover - compiled
    """Return the columns ``cols`` of ``X`` as a new C-contiguous array."""
    N = X.shape[0]
    out = np.empty((N, cols.shape[0]))
    for i in range(N):
        for j in range(cols.shape[0]):
            out[i, j] = X[i, cols[j]]
    return out


#: Compiled (frames, update) pairs by product layout: the parts' kernels, columns and parameter sizes.
_KERNELS: dict[tuple, tuple[Any, Any]] = {}


def _theta_size(member: Emission, D: int) -> tuple[int, int]:
    """Return ``(a, b)``: ``member`` on ``D`` columns packs ``a * K + b`` parameters (checked at K = 3)."""
    def size(K):
        return sum(int(np.prod(s)) for s in member.shapes(K, D).values())

    a, b = size(2) - size(1), 2 * size(1) - size(2)
    if size(3) != 3 * a + b:
        raise ValueError(f"ProductEmission: the parameter size of part {member.name!r} is not affine in the number "
                         "of states; its compiled kernels cannot be combined.")
    return a, b


def _kernels(members: list[tuple[str, list[int], Emission]]) -> tuple[Any, Any]:
    """Generate and compile the product's log-density and Gibbs update for this layout (cached per layout)."""
    sizes = [_theta_size(m, len(cols)) for _, cols, m in members]
    layout = tuple((m.frames_kernel, m.update_kernel, tuple(cols), ab, len(m.names))
                   for (_, cols, m), ab in zip(members, sizes, strict=True))
    if layout in _KERNELS:
        return _KERNELS[layout]
    scope: dict[str, Any] = {"np": np, "_gather": _gather}
    frames = ["def frames(X, aux, theta, out):", "    N = X.shape[0]", "    K = out.shape[1]",
              "    tmp = np.empty((N, K))", "    out[:, :] = 0.0", "    t = 0"]
    n_all = sum(entry[4] for entry in layout)
    # held entries: fixed carries one flag per entry of theta after the n_all per-array flags; each part gets its
    # own per-array flags followed by the flags of its slice of theta (its own layout)
    update = ["def update(X, z, K, hyper, fixed, theta):", "    t = 0", "    f = 0",
              f"    entrywise = fixed.shape[0] > {n_all}"]
    for j, (frames_j, update_j, cols, (a, b), n_names) in enumerate(layout):
        scope.update({f"frames{j}": frames_j, f"update{j}": update_j, f"cols{j}": np.array(cols, dtype=np.int64)})
        frames += [f"    s = {a} * K + {b}",
                   f"    frames{j}(_gather(X, cols{j}), aux[{j} * N:{j + 1} * N], theta[t:t + s], tmp)",
                   "    for i in range(N):", "        for k in range(K):", "            out[i, k] += tmp[i, k]",
                   "    t += s"]
        if update_j is not None:
            update += [f"    s = {a} * K + {b}",
                       f"    flags = fixed[f:f + {n_names}]",
                       "    if entrywise:",
                       f"        flags = np.concatenate((fixed[f:f + {n_names}], fixed[{n_all} + t:{n_all} + t + s]))",
                       f"    update{j}(_gather(X, cols{j}), z, K, hyper[int(hyper[{j}]):int(hyper[{j + 1}])], "
                       "flags, theta[t:t + s])",
                       "    t += s", f"    f += {n_names}"]
    frames_fn = None
    if all(entry[0] is not None for entry in layout):
        exec("\n".join(frames), scope)  # noqa: S102 - source generated above from this layout only
        frames_fn = numba.njit(FRAMES, nogil=True)(scope["frames"])
    update_fn = None
    if all(entry[1] is not None for entry in layout):
        exec("\n".join(update), scope)  # noqa: S102
        update_fn = numba.njit(UPDATE, nogil=True)(scope["update"])
    _KERNELS[layout] = (frames_fn, update_fn)
    return _KERNELS[layout]
