"""Clustered multi-task sparse Bayesian learning: exact EM and CoFEM.

Tasks ``t`` with ``y_t = Phi_t x_t + e_t``, ``e_t ~ N(0, I / beta)`` (one
noise precision), each task in one of ``K`` clusters whose tasks share the
precisions ``lambda_k`` of ``x_t ~ N(0, diag(lambda_k)^-1)``. The E-step needs,
for every task and cluster, the posterior mean, the diagonal of the posterior
covariance and the marginal log-likelihood (its log-determinant); ``solver=
"em"`` computes them exactly, ``"cofem"`` by conjugate gradients on the mean
and Rademacher probes (:mod:`._krylov`): the diagonal by the probe estimator,
the log-determinant by stochastic Lanczos quadrature from the same CG runs.

Layers: the estimator :class:`ClusteredMultiTaskSBL`; the EM loop
:func:`_fit_multitask`; the E-steps :func:`_estep_exact_pairs` and
:func:`_estep_cofem_pairs`; the products of :class:`_Tasks`.
"""

import time
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator
from scipy.special import logsumexp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._parallel import single_threaded_blas
from .._training import atomic
from .._validation import FLOAT_DTYPES
from ._krylov import block_cg, lanczos_log_quadrature
from .sbl import (
    AUTO_EM_MAX_SIZE,
    BLOCK,
    EXACT_DIAG_BUDGET,
    MAX_SNR,
    STALL_WINDOW,
    _Design,
    _estep_exact,
    _stalled,
)

MODES = ("clustered", "joint", "separate")
BLOCK_ENTRIES = 2**17
"""CoFEM solves at most ``BLOCK_ENTRIES / n_features`` right-hand sides (whole
pairs of a task and a cluster, at least one) in one block CG: its work arrays
(about 15 of that size, with the products' temporaries) are then about 1 MB
each, or one pair's where that is more (with 10 probes: 2 pairs a block at p =
4,096, one from p = 5,958 on: 5.8 MB per array at p = 65,536), which bounds
the E-step's memory. Smaller blocks were faster too
(the arrays stay in cache): one E-step of the benchmark's 20 pairs took
0.13 s at 2^17 against 0.18 s at 2^19 (CPU time, float32 DCT operator;
traced peak 11 MB against 45 MB) and 0.15 s at 2^16."""
LOG_2PI = float(np.log(2 * np.pi))
DECIDED_MARGIN = 50.0
"""A task whose most likely cluster beats every other by this many nats of
weighted marginal log-likelihood (responsibility 1 to within ``e^-50``,
``2e-22``) is *decided*: until the next check, the E-steps compute only its
pair with that cluster (the other pairs would have no weight in the M-step
or in ``coef_``), and its responsibilities are kept at 0 and 1."""
RECHECK_EVERY = 5
"""Every this many EM iterations (and at the final E-step) every pair (task,
cluster) is computed, the log-likelihoods of all of them, and which tasks
are decided is decided anew."""
DRIFT_LEVEL = 4.0
"""The drift rule (:func:`_drifting`) looks at changes of ``coef_`` of at
most this many ``tol`` (0.02 by default): the plateau of the drift was at
0.012-0.016 at p = 1,024, 4,096 and 65,536 (0 dB per measurement, issue 17),
that of the fast phase of the planted test problem at 0.09-0.12."""


# ------------------------------------------------------------- the designs


class _Tasks:
    """The designs ``Phi_t`` and targets ``y_t`` of the tasks.

    Either one design (array, sparse matrix or ``LinearOperator``) shared by
    every task, with a 0/1 mask per task selecting the rows it observes
    (``Phi_t = diag(m_t) Phi``, ``y_t`` zero where unobserved), or a list of
    designs. Products take blocks of rows, each row belonging to a task.
    """

    def __init__(self, Phi, Ys, masks, dtype):
        self.dtype = dtype
        if isinstance(Phi, list):
            self.designs = [_Design(P, False, dtype) for P in Phi]
            self.shared = None
            self.masks = None
        else:
            self.shared = _Design(Phi, False, dtype)
            self.designs = None
            self.masks = masks  # (T, n) in dtype, or None
        self.Ys = [np.asarray(y, dtype=np.float64) for y in Ys]
        self.n_tasks = len(Ys)
        first = self.shared if self.shared is not None else self.designs[0]
        self.n_features = first.shape[1]
        if self.masks is not None:
            self.n_obs = self.masks.sum(axis=1).astype(np.float64)
        else:
            self.n_obs = np.array([len(y) for y in Ys], dtype=np.float64)
        self.y2 = np.array([float(y @ y) for y in self.Ys])
        self._dense = {}

    def _task_groups(self, task):
        for t in np.unique(task):
            yield t, np.flatnonzero(task == t)

    def gram(self, P, task):
        """Rows ``Phi_t^T Phi_t p`` for the rows ``p`` of ``P``, ``t = task``."""
        P = P.astype(self.dtype, copy=False)
        if self.shared is not None:
            U = self.shared.matmat(P)
            if self.masks is not None:
                U *= self.masks[task]
            return self.shared.rmatmat(U).astype(np.float64, copy=False)
        out = np.empty(P.shape, dtype=np.float64)
        for t, sel in self._task_groups(task):
            d = self.designs[t]
            out[sel] = d.rmatmat(d.matmat(np.ascontiguousarray(P[sel])))
        return out

    def rmat_y(self):
        """``Phi_t^T y_t`` for every task, (T, p)."""
        if self.shared is not None:
            Y = np.vstack(self.Ys).astype(self.dtype)
            return self.shared.rmatmat(Y).astype(np.float64)
        return np.vstack(
            [
                d.rmatmat(y[None].astype(self.dtype))[0]
                for d, y in zip(self.designs, self.Ys, strict=True)
            ]
        ).astype(np.float64)

    def residual2(self, M, task):
        """``||y_t - Phi_t mu||^2`` for the rows ``mu`` of ``M``."""
        M = M.astype(self.dtype, copy=False)
        if self.shared is not None:
            U = self.shared.matmat(M).astype(np.float64, copy=False)
            R = np.vstack([self.Ys[t] for t in task]) - U
            if self.masks is not None:
                R *= self.masks[task]
            return np.einsum("ij,ij->i", R, R)
        out = np.empty(len(task))
        for t, sel in self._task_groups(task):
            R = self.Ys[t] - self.designs[t].matmat(M[sel]).astype(np.float64)
            out[sel] = np.einsum("ij,ij->i", R, R)
        return out

    def col2(self):
        """Squared column norms ``diag(Phi_t^T Phi_t)``, (T, p): exact for
        arrays, sparse matrices and operators with ``n p <= EXACT_DIAG_BUDGET``
        (rows of the operator by blocks), else the probe estimate of
        :meth:`skunroll._sbl.sbl._Design.column_norms2` per task."""
        if self.designs is not None:
            return np.vstack([d.column_norms2() for d in self.designs])
        d = self.shared
        n, p = d.shape
        masks = self.masks
        if masks is None:
            return np.tile(d.column_norms2(), (self.n_tasks, 1))
        masks = masks.astype(np.float64)
        if d.kind == "dense":
            return masks @ (d.X.astype(np.float64) ** 2)
        if d.kind == "sparse":
            sq = d.X.multiply(d.X).tocsr().astype(np.float64)
            return np.asarray((sp.csr_matrix(masks) @ sq).todense())
        if n * p <= EXACT_DIAG_BUDGET:
            # rows of Phi by blocks of at most 2^18 entries: this was the
            # largest allocation of a CoFEM fit (three 8 MB arrays at p = 4,096
            # with blocks of 256 rows)
            col2 = np.zeros((self.n_tasks, p))
            block = max(1, min(BLOCK, 2**18 // p))
            for start in range(0, n, block):
                stop = min(start + block, n)
                eye = np.zeros((stop - start, n), dtype=self.dtype)
                eye[np.arange(stop - start), np.arange(start, stop)] = 1
                rows = d.rmatmat(eye).astype(np.float64)  # rows of Phi
                col2 += masks[:, start:stop] @ np.square(rows, out=rows)
            return col2
        out = []
        for t in range(self.n_tasks):
            m = self.masks[t]
            op = LinearOperator(
                d.shape,
                matmat=lambda P, m=m: m[:, None] * d.X.matmat(P),
                rmatmat=lambda U, m=m: d.X.rmatmat(m[:, None] * U),
                matvec=lambda v, m=m: m * d.X.matvec(v),
                rmatvec=lambda u, m=m: d.X.rmatvec(m * u),
                dtype=self.dtype,
            )
            out.append(_Design(op, False, self.dtype).column_norms2())
        return np.vstack(out)

    def dense(self, t):
        """``Phi_t`` as a dense float64 array of its observed rows (exact EM).

        The shared design is densified once; a task's rows are sliced from
        it on each call (a copy of ``n_t x p``, cheap next to the E-step's
        ``n_t^2 p``), not kept per task."""
        if self.shared is not None:
            if "shared" not in self._dense:
                p = self.n_features
                full = self.shared.columns(np.ones(p, dtype=bool))
                self._dense["shared"] = full.astype(np.float64, copy=False)
            full = self._dense["shared"]
            return full if self.masks is None else full[self.masks[t] > 0]
        if t not in self._dense:
            cols = self.designs[t].columns(np.ones(self.n_features, dtype=bool))
            self._dense[t] = cols.astype(np.float64, copy=False)
        return self._dense[t]

    def observed_y(self, t):
        y = self.Ys[t]
        return y if self.masks is None else y[self.masks[t] > 0]


# ----------------------------------------------------------------- E-steps


@dataclass
class _PairMoments:
    """Posterior moments of the pairs (task, cluster) of one E-step."""

    mu: np.ndarray  # (n_pairs, p), zero where pruned
    sd: np.ndarray  # (n_pairs, p), unclamped estimates for CoFEM
    rss: np.ndarray  # (n_pairs,)
    loglik: np.ndarray  # (n_pairs,) marginal log-likelihoods, or None
    cg_iter: int = 0
    cg_worst: float = 0.0


def _estep_exact_pairs(tasks, pairs, lam, active, beta, need_loglik, explicit=False):
    """Exact moments (Cholesky or Woodbury, :func:`sbl._estep_exact`).

    ``explicit=True`` always forms the ``a x a`` posterior precision ``beta
    Phi_t^T Phi_t + diag(lambda_k)`` of the ``a`` active coefficients, its
    Cholesky factor and inverse (the posterior covariance), as the EM of the
    clustered multi-task paper does: the benchmark's baseline, ``O(a^3)`` per
    task and cluster, never faster than the default (Woodbury when ``a`` is
    larger than the task's number of measurements)."""
    n_pairs, p = len(pairs), tasks.n_features
    mu, sd = np.zeros((n_pairs, p)), np.zeros((n_pairs, p))
    rss, loglik = np.zeros(n_pairs), np.zeros(n_pairs)
    with single_threaded_blas():
        for j, (t, k) in enumerate(pairs):
            Phi = tasks.dense(t)
            a = active[k]
            Phi_a = np.ascontiguousarray(Phi[:, a])
            y = tasks.observed_y(t)
            gram = Phi_a.T @ Phi_a if explicit else None
            mu_a, sd_a, _, logdet = _estep_exact(
                Phi_a, gram, y[None], lam[k, a], beta, logdet=True
            )
            del gram
            mu[j, a], sd[j, a] = mu_a[0], sd_a
            r = y - Phi_a @ mu_a[0]
            rss[j] = r @ r
            quad = beta * rss[j] + np.sum(lam[k, a] * mu_a[0] ** 2)
            loglik[j] = -0.5 * (len(y) * LOG_2PI + logdet + quad)
    return _PairMoments(mu, sd, rss, loglik if need_loglik else None)


def _estep_cofem_pairs(
    tasks, pairs, lam, active, beta, col2, PhiTY, probes, opts, need_loglik=True
):
    """CoFEM moments of the pairs (task, cluster), by blocks of whole pairs.

    Each pair's system ``A = beta Phi_t^T Phi_t + diag(lambda_k)`` (active
    coefficients) is solved in Jacobi-scaled form ``S A S``, ``S =
    diag(d)^-1/2``, ``d = beta ||phi_i||^2 + lambda_i``: right-hand sides ``S
    beta Phi_t^T y_t`` (mean ``mu = S u``) and the task's Rademacher probes
    ``z`` (``Sigma_ii ~ mean_z z_i x_i / d_i``); CG starts at zero, so the
    Lanczos matrix rebuilt from its coefficients gives ``z^T log(S A S) z``
    (stochastic Lanczos quadrature) and ``log det A = sum log d + mean_z
    ||z||^2 e_1^T log(T_z) e_1``. The probes of a task are the same for every
    cluster (common random numbers: the responsibilities depend on the
    differences of the log-likelihoods). Without ``need_loglik`` the CG
    coefficients are not recorded and ``loglik`` is None.
    """
    n_pairs, p = len(pairs), tasks.n_features
    n_probes = probes.shape[1]
    per = 1 + n_probes
    per_block = max(1, BLOCK_ENTRIES // (per * p))
    mu, sd = np.zeros((n_pairs, p)), np.zeros((n_pairs, p))
    loglik = np.zeros(n_pairs)
    cg_iter, worst = 0, 0.0
    for start in range(0, n_pairs, per_block):
        block = pairs[start : start + per_block]
        m = len(block)
        t_of = np.array([t for t, _ in block])
        k_of = np.array([k for _, k in block])
        act = active[k_of].astype(np.float64)  # (m, p)
        d = np.where(act > 0, beta * col2[t_of] + lam[k_of], 1.0)
        s = 1.0 / np.sqrt(d)
        lam_eff = np.where(act > 0, lam[k_of], 1.0)
        B = np.empty((m * per, p))
        B[::per] = s * beta * PhiTY[t_of] * act
        for i in range(n_probes):
            B[1 + i :: per] = probes[t_of, i] * act
        pair_of_row = np.repeat(np.arange(m), per)
        task_of_row = t_of[pair_of_row]

        apply = _scaled_operator(tasks, beta, s, act, lam_eff, pair_of_row, task_of_row)
        X = np.zeros_like(B)
        out = block_cg(
            apply, B, X, np.ones(p), opts.cg_tol, opts.cg_max_iter, record=need_loglik
        )
        cg_iter, worst = max(cg_iter, out[0]), max(worst, out[1])
        sl = slice(start, start + m)
        mu[sl] = s * X[::per] * act
        Z = B.reshape(m, per, p)[:, 1:]
        Xp = X.reshape(m, per, p)[:, 1:]
        sd[sl] = np.mean(Z * Xp, axis=1) * s**2 * act
        if not need_loglik:
            continue
        quad = lanczos_log_quadrature(*out[2]).reshape(m, per)[:, 1:]
        n_act = act.sum(axis=1)
        logdet_A = np.sum(np.log(d) * act, axis=1) + n_act * quad.mean(axis=1)
        log_lam = np.sum(np.log(lam_eff) * act, axis=1)
        loglik[sl] = -0.5 * (
            tasks.n_obs[t_of] * (LOG_2PI - np.log(beta)) - log_lam + logdet_A
        )
    rss = tasks.residual2(mu, np.array([t for t, _ in pairs]))
    if not need_loglik:
        return _PairMoments(mu, sd, rss, None, cg_iter, worst)
    quad_form = beta * rss + np.sum(lam[[k for _, k in pairs]] * mu**2, axis=1)
    loglik -= 0.5 * quad_form
    return _PairMoments(mu, sd, rss, loglik, cg_iter, worst)


def _scaled_operator(tasks, beta, s, act, lam_eff, pair_of_row, task_of_row):
    """``apply(P, rows)`` of :func:`._krylov.block_cg` for the scaled systems
    ``S (beta Phi_t^T Phi_t + diag lambda_k) S`` of a block of pairs: ``beta
    S G S p + (lambda / d) p`` on the active coefficients, the identity on
    the pruned ones (two per-pair arrays, ``S`` zeroed where pruned and the
    diagonal ``lambda / d`` or 1)."""
    sa = s * act
    c = np.where(act > 0, lam_eff * s**2, 1.0)

    def apply(P, rows):
        j = pair_of_row[rows]
        sa_j = sa[j]
        Q = tasks.gram(P * sa_j, task_of_row[rows])
        Q *= beta * sa_j
        Q += c[j] * P
        return Q

    return apply


# ------------------------------------------------------------------ fitting


@dataclass
class _MTOptions:
    mode: str
    n_clusters: int
    solver: str
    n_probes: int
    max_iter: int
    tol: float
    stall: float
    cg_tol: float
    cg_max_iter: int
    fit_noise: bool
    noise_precision_init: float
    threshold_lambda: float
    n_init_iter: int
    verbose: int


@dataclass
class _MTResult:
    coef: np.ndarray
    sigma_diag: np.ndarray
    lam: np.ndarray
    active: np.ndarray
    beta: float
    resp: np.ndarray
    weights: np.ndarray
    loglik: np.ndarray
    n_iter: int
    history: dict
    cg_worst: float


class _EM:
    """The state of the EM iterations and one iteration of them."""

    def __init__(self, tasks, opts, rng):
        self.tasks, self.opts, self.rng = tasks, opts, rng
        self.col2 = tasks.col2()
        self.PhiTY = tasks.rmat_y()
        for what, v in (("its squared column norms", self.col2),
                        ("Phi^T y", self.PhiTY)):  # fmt: skip
            if not np.all(np.isfinite(v)):
                raise ValueError(
                    f"Phi gave non-finite values (NaN or inf) in {what}; check "
                    "Phi (for a LinearOperator, its matvec/rmatvec) and the "
                    "scale of Phi and Y."
                )
        y2, frob2 = float(tasks.y2.sum()), float(self.col2.sum())
        self.s2 = y2 / frob2 if frob2 > 0 and y2 > 0 else 1.0
        yvar = y2 / tasks.n_obs.sum() if y2 > 0 else 1.0
        init = opts.noise_precision_init
        self.beta = 1.0 / yvar if init is None else init
        self.beta_max = max(MAX_SNR / yvar, self.beta)
        self.worst = 0.0

    def moments(self, pairs, lam, active, need_loglik):
        if self.opts.solver != "cofem":
            return _estep_exact_pairs(
                self.tasks, pairs, lam, active, self.beta, need_loglik,
                explicit=self.opts.solver == "explicit",
            )  # fmt: skip
        T, p = self.tasks.n_tasks, self.tasks.n_features
        # int8 signs (a float64 copy per block of pairs): 8x less memory
        probes = np.empty((T, self.opts.n_probes, p), dtype=np.int8)
        signs = np.array([-1, 1], dtype=np.int8)
        for t in range(T):
            probes[t] = self.rng.choice(signs, size=(self.opts.n_probes, p))
        # BLAS threads were pathological on small products (14 ms for a 60 x
        # 120 matrix times 176 vectors under load, against well under 1 ms)
        with single_threaded_blas():
            out = _estep_cofem_pairs(
                self.tasks, pairs, lam, active, self.beta, self.col2, self.PhiTY,
                probes, self.opts, need_loglik,
            )  # fmt: skip
        self.worst = max(self.worst, out.cg_worst)
        return out

    def mstep(self, pairs, est, resp, lam, active):
        """New precisions per cluster and noise precision; ``resp`` (T, K)
        weighs each pair (task, cluster)."""
        K = lam.shape[0]
        w = np.array([resp[t, k] for t, k in pairs])
        k_of = np.array([k for _, k in pairs])
        if self.opts.fit_noise:
            # tr(Phi_t^T Phi_t Sigma) = (n_active - sum_i lambda_i Sigma_ii) /
            # beta, from the unclamped estimates (unbiased for CoFEM)
            gamma = np.sum(active[k_of] * (1.0 - lam[k_of] * est.sd), axis=1)
            denom = float(np.sum(w * (est.rss + gamma / self.beta)))
            n_total = float(self.tasks.n_obs.sum())
            beta = n_total / denom if denom > 0 else self.beta_max
            self.beta = min(beta, self.beta_max)
        second = est.mu**2 + np.maximum(est.sd, 0.0)
        num = np.zeros(K)
        den = np.zeros((K, lam.shape[1]))
        np.add.at(num, k_of, w)
        np.add.at(den, k_of, w[:, None] * second)
        tiny = np.finfo(np.float64).tiny
        filled = num[:, None] > 1e-12
        new = np.where(filled, num[:, None] / np.maximum(den, tiny), lam)
        lam = np.where(active, new, lam)
        active = active & (lam * self.s2 <= self.opts.threshold_lambda)
        return lam, active


def _pairs(mode, T, K):
    """The pairs (task, cluster) whose moments an E-step needs."""
    if mode == "separate":
        return [(t, t) for t in range(T)]
    if mode == "joint":
        return [(t, 0) for t in range(T)]
    return [(t, k) for t in range(T) for k in range(K)]


def _fit_multitask(tasks, opts, rng):
    T, p = tasks.n_tasks, tasks.n_features
    em = _EM(tasks, opts, rng)
    mode = opts.mode
    K = {"separate": T, "joint": 1}.get(mode, min(opts.n_clusters, T))
    history = {k: [] for k in ("coef_change", "n_active", "alpha", "loglik",
                               "cg_iter", "n_pairs", "time")}  # fmt: skip
    start = time.perf_counter()
    coef = np.zeros((T, p))
    active = np.broadcast_to(em.col2.sum(axis=0) > 0, (K, p)).copy()
    lam = np.full((K, p), 1.0 / em.s2)
    weights = np.full(K, 1.0 / K)
    if mode == "clustered" and K > 1:
        # start: a few iterations of one model per task, then k-means on the
        # tasks' normalised second moments (their support patterns)
        lam_t = np.full((T, p), 1.0 / em.s2)
        act_t = np.broadcast_to(active[0], (T, p)).copy()
        pairs_t = _pairs("separate", T, T)
        for _ in range(opts.n_init_iter):
            est = em.moments(pairs_t, lam_t, act_t, False)
            lam_t, act_t = em.mstep(pairs_t, est, np.eye(T), lam_t, act_t)
        feats = est.mu**2 + np.maximum(est.sd, 0.0)
        feats /= np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-300)
        seed = rng.randint(np.iinfo(np.int32).max)
        labels = KMeans(K, n_init=10, random_state=seed).fit_predict(feats)
        resp = np.eye(K)[labels]
        pairs_k = [(t, labels[t]) for t in range(T)]
        est_k = _PairMoments(est.mu, est.sd, est.rss, None)
        lam, active = em.mstep(pairs_k, est_k, resp, lam, active)
        weights = np.maximum(resp.mean(axis=0), 1e-12)
        weights /= weights.sum()
        coef = est.mu
    else:
        resp = np.eye(T) if mode == "separate" else np.ones((T, 1))
    pairs_all = _pairs(mode, T, K)
    need_loglik = mode == "clustered"
    converged, n_iter = False, 0
    loglik = None
    decided = np.zeros(T, dtype=bool)  # responsibility settled (clustered)
    for n_iter in range(1, opts.max_iter + 1):
        recheck = (n_iter - 1) % RECHECK_EVERY == 0
        if need_loglik and recheck:
            decided[:] = False
        top = np.argmax(resp, axis=1)
        pairs = [(t, k) for t, k in pairs_all if not decided[t] or k == top[t]]
        # the log-likelihoods of decided tasks are not used
        open_pairs = any(not decided[t] for t, _ in pairs)
        est = em.moments(pairs, lam, active, need_loglik and open_pairs)
        if need_loglik:
            resp, weights, margin, total = _responsibilities(
                pairs, est.loglik, resp, weights, decided
            )
            decided |= margin >= DECIDED_MARGIN
            resp[decided] = np.eye(K)[np.argmax(resp[decided], axis=1)]
            history["loglik"].append(total)
        else:
            history["loglik"].append(np.nan)
        new_coef, _ = _combine(pairs, est, resp, T)
        change = np.linalg.norm(new_coef - coef) / max(np.linalg.norm(new_coef), 1e-300)
        coef = new_coef
        lam, active = em.mstep(pairs, est, resp, lam, active)
        values = (change, int(active.sum()), em.beta, history["loglik"][-1],
                  est.cg_iter, len(pairs), time.perf_counter() - start)  # fmt: skip
        for key, value in zip(history, values, strict=True):
            if key != "loglik":
                history[key].append(value)
        if opts.verbose:
            print(
                f"[ClusteredMultiTaskSBL] iter {n_iter:4d}  change {change:.3e}  "
                f"active {int(active.sum())}  alpha {em.beta:.4g}  "
                f"pairs {len(pairs)}  CG iters {est.cg_iter}  {values[-1]:.2f} s",
                flush=True,
            )
        if (
            change <= opts.tol
            or not active.any()
            or _stalled(history, opts)
            or _drifting(history, opts)
        ):
            converged = True
            break
    final = em.moments(pairs_all, lam, active, need_loglik)
    if need_loglik:
        L = final.loglik.reshape(T, K) + np.log(weights)
        resp = np.exp(L - logsumexp(L, axis=1, keepdims=True))
        loglik = final.loglik.reshape(T, K)
    coef, sigma_diag = _combine(pairs_all, final, resp, T)
    return _MTResult(
        coef=coef,
        sigma_diag=sigma_diag,
        lam=lam,
        active=active,
        beta=float(em.beta),
        resp=resp,
        weights=weights,
        loglik=loglik,
        n_iter=n_iter,
        history={k: np.asarray(v) for k, v in history.items()}
        | {"converged": converged},
        cg_worst=em.worst,
    )


def _drifting(history, opts):
    """The drift rule (with ``fit_noise``): the relative change of ``coef_``
    is at most ``DRIFT_LEVEL tol`` and fell by less than a fraction ``stall``
    over the last ``STALL_WINDOW`` iterations, while the noise precision rose
    at every one of them.

    EM has then left its fast phase for the slow drift in which, with fewer
    observations per task than features and a low signal-to-noise ratio per
    observation, the noise precision keeps rising (past the true one), no
    coefficient is pruned, the coefficients absorb more and more of the noise
    and their error grows. The marginal likelihood rises along that drift
    (exact EM does the same; it is not an artefact of CoFEM's probes), so
    nothing in the EM iterations themselves stops it, and the change of
    ``coef_`` settles at a level (0.013-0.016 at p = 65,536) that depends on
    the problem, so the absolute ``2 tol`` of :func:`._sbl.sbl._stalled`
    missed it. Where the change still falls (the p = 4,096 benchmark) this
    rule does not fire before the stall rule. The level keeps it from
    firing on the plateaus of the fast phase (0.09-0.12 for 10 iterations
    on the planted problem of the tests, the noise precision rising from
    far below its value there).
    """
    changes, alpha = history["coef_change"], history["alpha"]
    if not (opts.fit_noise and opts.stall > 0) or len(changes) <= STALL_WINDOW:
        return False
    now, before = changes[-1], changes[-1 - STALL_WINDOW]
    rising = np.all(np.diff(alpha[-1 - STALL_WINDOW :]) > 0)
    slow = now <= DRIFT_LEVEL * opts.tol and now > (1.0 - opts.stall) * before
    return bool(rising and slow)


def _responsibilities(pairs, loglik, resp, weights, decided):
    """New responsibilities and mixing weights from the log-likelihoods of
    ``pairs``: every pair of the tasks not ``decided``; a decided task keeps
    its responsibilities (0 and 1). Returns ``(resp, weights, margin,
    total)``: ``margin`` the log-odds of each undecided task's most likely
    cluster against the next (``-inf`` for the decided ones), ``total`` the
    log-likelihood of the mixture (NaN when some task is decided)."""
    T, K = resp.shape
    resp = resp.copy()
    margin = np.full(T, -np.inf)
    total = np.nan
    open_tasks = np.flatnonzero(~decided)
    if open_tasks.size:
        L = np.full((T, K), -np.inf)
        for (t, k), value in zip(pairs, loglik, strict=True):
            if not decided[t]:
                L[t, k] = value
        L = L[open_tasks] + np.log(weights)
        per_task = logsumexp(L, axis=1)
        resp[open_tasks] = np.exp(L - per_task[:, None])
        top2 = np.sort(L, axis=1)[:, -2:]
        margin[open_tasks] = top2[:, 1] - top2[:, 0] if K > 1 else np.inf
        if open_tasks.size == T:
            total = float(per_task.sum())
    weights = np.maximum(resp.mean(axis=0), 1e-12)
    weights /= weights.sum()
    return resp, weights, margin, total


def _combine(pairs, est, resp, T):
    """Per task, the posterior mean ``sum_k q_tk mu_tk`` and variance (of
    the mixture) from the pairs' moments."""
    p = est.mu.shape[1]
    mean, second = np.zeros((T, p)), np.zeros((T, p))
    for j, (t, k) in enumerate(pairs):
        q = resp[t, k]
        mean[t] += q * est.mu[j]
        second[t] += q * (est.mu[j] ** 2 + np.maximum(est.sd[j], 0.0))
    return mean, np.maximum(second - mean**2, 0.0)


# ---------------------------------------------------------------- estimator


def _is_design_list(Phi):
    """A list (or tuple) of designs, one per task: its items are 2-D (arrays,
    sparse matrices, ``LinearOperator`` s), unlike the rows of a list-of-lists
    array-like."""
    if not isinstance(Phi, (list, tuple)) or not Phi:
        return False
    return all(
        isinstance(P, LinearOperator) or sp.issparse(P) or np.ndim(P) == 2 for P in Phi
    )


class ClusteredMultiTaskSBL(RegressorMixin, BaseEstimator):
    """Clustered multi-task sparse Bayesian learning (compressive sensing).

    Tasks ``t = 1..T`` with ``y_t = Phi_t x_t + e_t``, noise ``e_t ~ N(0, I /
    alpha)`` (one precision for every task), and ``K`` clusters of tasks: the
    tasks of cluster ``k`` share the precisions ``lambda_k`` of the prior
    ``x_t ~ N(0, diag(lambda_k)^-1)`` (so a support, and coefficient scales),
    with mixing weights ``pi_k``. EM alternates, for every task and cluster,
    the posterior mean ``mu_tk``, the posterior variances ``Sigma_tk,ii`` and
    the marginal log-likelihood ``log N(y_t; 0, I / alpha + Phi_t
    diag(lambda_k)^-1 Phi_t^T)`` (E-step; responsibilities ``q_tk``
    proportional to ``pi_k`` times that likelihood) with ``lambda_k,i =
    sum_t q_tk / sum_t q_tk (mu_tk,i^2 + Sigma_tk,ii)``, ``pi_k = mean_t
    q_tk`` and, if ``fit_noise``, the noise precision (M-step).

    - ``solver="em"``: exact moments and log-determinants (Cholesky, or the
      Woodbury identity when a cluster has more active coefficients than the
      task has measurements), ``O(T K min(n_t, a)^2 a)`` per iteration.
    - ``solver="cofem"``: nothing ``p x p`` or ``n x n`` is formed. For
      every task and cluster, conjugate gradients on the Jacobi-scaled
      system solve for the mean and for ``n_probes`` Rademacher probes (the
      task's probes, the same for every cluster) from zero; ``Sigma_ii`` is
      the probe estimate and ``log det(alpha Phi_t^T Phi_t +
      diag(lambda_k))`` is estimated by stochastic Lanczos quadrature from
      the CG coefficients of the same runs. Only products with ``Phi`` and
      ``Phi^T`` are needed (a ``LinearOperator`` such as a subsampled DCT).
    - ``solver="auto"``: ``"em"`` for a dense array with ``min(n_samples,
      n_features) <= 1000``, else ``"cofem"``.

    Modes: ``"clustered"`` (``n_clusters`` clusters learned, started by a few
    iterations of one model per task and k-means on the tasks' normalised
    posterior second moments), ``"joint"`` (one cluster: every task shares
    ``lambda``, M-SBL with per-task designs) and ``"separate"`` (one
    cluster per task: independent SBL fits that share the noise).

    Decided tasks (both solvers): once a task's most likely cluster beats
    every other by 50 nats of weighted marginal log-likelihood (its
    responsibilities are 0 and 1 to within ``2e-22``), the E-steps compute
    only its pair with that cluster, which halves their work with two
    clusters; every 5 iterations, and at the last E-step, every pair is
    computed again and the decisions are re-made.

    Parameters
    ----------
    n_clusters : int, default=2
        Number ``K`` of clusters (``mode="clustered"``; at most the number of
        tasks is used).
    mode : {"clustered", "joint", "separate"}, default="clustered"
        See above.
    solver : {"auto", "em", "cofem"}, default="auto"
        E-step, see above.
    n_probes : int, default=10
        Rademacher probes per task and iteration (CoFEM).
    max_iter : int, default=200
        Maximum number of EM iterations.
    tol : float, default=5e-3
        Stop when the relative change of ``coef_`` between iterations is at
        most this.
    stall_tol : float, default=0.1
        With ``fit_noise``, also stop when the change is at most ``2 tol``
        and fell by less than this fraction over 3 iterations (the stall rule
        of :class:`SparseBayesianLearning`), or when it is at most ``4 tol``,
        fell by less than this fraction over 3 iterations and the noise
        precision rose at each of them (the drift rule: with few, noisy
        observations per task the learned noise precision then keeps rising
        past its true value and the error with it, although the marginal
        likelihood rises too); 0 disables both.
    cg_tol : float, default=1e-4
        Relative residual at which CG stops, per right-hand side.
    cg_max_iter : int, default=1000
        Maximum CG iterations per E-step.
    fit_noise : bool, default=True
        Learn the noise precision ``alpha_`` (capped at ``1e6 / var(y)``).
    noise_precision_init : float, default=None
        Initial (or, with ``fit_noise=False``, fixed) noise precision;
        ``None`` means ``1 / var(y)``.
    threshold_lambda : float, default=1e6
        Prune coefficient ``i`` of cluster ``k`` once ``lambda_k,i s^2`` exceeds
        this, ``s^2 = sum_t ||y_t||^2 / sum_t ||Phi_t||_F^2``.
    n_init_iter : int, default=5
        Iterations of one model per task before the k-means start of
        ``mode="clustered"``.
    random_state : int, RandomState instance or None, default=None
        Seed of the probes and of k-means.
    verbose : int, default=0
        Print a line per EM iteration.

    Attributes
    ----------
    coef_ : ndarray of shape (n_tasks, n_features), or (n_features,) for 1-D ``Y``
        Posterior means ``sum_k q_tk mu_tk``.
    sigma_diag_ : ndarray, same shape as ``coef_``
        Posterior variances of the mixture (CoFEM: probe estimates).
    lambda_ : ndarray of shape (n_clusters_, n_features)
        Precisions of each cluster (of each task for ``"separate"``); named
        as in :class:`SparseBayesianLearning` and ``ARDRegression``.
    active_ : ndarray of bool, same shape as ``lambda_``
        Coefficients not pruned, per cluster.
    alpha_ : float
        Noise precision.
    labels_ : ndarray of shape (n_tasks,)
        Cluster of each task (``argmax_k q_tk``).
    responsibilities_ : ndarray of shape (n_tasks, n_clusters_)
        ``q_tk``.
    weights_ : ndarray of shape (n_clusters_,)
        Mixing weights ``pi_k``.
    log_likelihood_ : ndarray of shape (n_tasks, n_clusters_) or None
        Marginal log-likelihood of each task under each cluster at the last
        E-step (``mode="clustered"``; CoFEM: stochastic estimates).
    n_clusters_ : int
        Number of clusters used.
    n_tasks_ : int
        Number of tasks.
    n_iter_ : int
        EM iterations run.
    history_ : dict
        Per iteration ``coef_change``, ``n_active``, ``alpha``, ``loglik``
        (total marginal log-likelihood of the mixture; NaN for other modes
        and for the iterations that skipped the pairs of decided tasks),
        ``cg_iter``, ``n_pairs`` (pairs of a task and a cluster whose
        moments the E-step computed), ``time``; and ``converged``.
    solver_ : str
        ``"em"`` or ``"cofem"``.
    n_features_in_ : int
        Number of features (columns of ``Phi``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, for a shared ``Phi`` with
        string column names.

    See Also
    --------
    SparseBayesianLearning : One task, or tasks sharing one design.

    Notes
    -----
    A separate estimator rather than an option of
    :class:`SparseBayesianLearning`: its data are a set of tasks, possibly
    with one design each (``fit(Phi, Y)`` with lists, or one design and a
    mask of the measurements each task observes), and its fitted model has
    clusters, responsibilities and mixing weights that the single-model
    estimator does not. With one shared design and no mask it is a
    multi-output regressor (``predict(Phi)`` returns one column per task),
    and passes scikit-learn's estimator checks as such. There is no
    intercept (compressive sensing: centre ``Y`` and ``Phi`` beforehand if
    needed).

    References
    ----------
    .. [1] Lin, Song, Bilgic & Ba, "Covariance-free sparse Bayesian
       learning", IEEE Transactions on Signal Processing 70, 2022.
    .. [2] Lin & Ba, "Accelerating clustered multi-task compressive sensing
       with Monte Carlo and iterative solvers" (the model of Qi, Liu, Carin &
       Dunson, "Multi-task compressive sensing with Dirichlet process
       priors", ICML 2008, with a finite mixture).
    .. [3] Ubaru, Chen & Saad, "Fast estimation of tr(f(A)) via stochastic
       Lanczos quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll import ClusteredMultiTaskSBL
    >>> rng = np.random.default_rng(0)
    >>> Phi = rng.standard_normal((40, 60))
    >>> X = np.zeros((6, 60))
    >>> X[:3, :4] = rng.standard_normal((3, 4))
    >>> X[3:, 10:14] = rng.standard_normal((3, 4))
    >>> Y = Phi @ X.T + 0.01 * rng.standard_normal((40, 6))
    >>> est = ClusteredMultiTaskSBL(n_clusters=2, random_state=0).fit(Phi, Y)
    >>> est.labels_[:3].tolist() == [est.labels_[0]] * 3
    True
    >>> bool(est.labels_[0] != est.labels_[3])
    True
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "mode": [StrOptions(set(MODES))],
        "solver": [StrOptions({"auto", "em", "cofem"})],
        "n_probes": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "stall_tol": [Interval(Real, 0, 1, closed="both")],
        "cg_tol": [Interval(Real, 0, None, closed="neither")],
        "cg_max_iter": [Interval(Integral, 1, None, closed="left")],
        "fit_noise": ["boolean"],
        "noise_precision_init": [Interval(Real, 0, None, closed="neither"), None],
        "threshold_lambda": [Interval(Real, 0, None, closed="neither")],
        "n_init_iter": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_clusters=2,
        *,
        mode="clustered",
        solver="auto",
        n_probes=10,
        max_iter=200,
        tol=5e-3,
        stall_tol=0.1,
        cg_tol=1e-4,
        cg_max_iter=1000,
        fit_noise=True,
        noise_precision_init=None,
        threshold_lambda=1e6,
        n_init_iter=5,
        random_state=None,
        verbose=0,
    ):
        self.n_clusters = n_clusters
        self.mode = mode
        self.solver = solver
        self.n_probes = n_probes
        self.max_iter = max_iter
        self.tol = tol
        self.stall_tol = stall_tol
        self.cg_tol = cg_tol
        self.cg_max_iter = cg_max_iter
        self.fit_noise = fit_noise
        self.noise_precision_init = noise_precision_init
        self.threshold_lambda = threshold_lambda
        self.n_init_iter = n_init_iter
        self.random_state = random_state
        self.verbose = verbose

    @atomic
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, Phi, Y, mask=None):
        """Fit the model by EM (a fit that raises leaves the estimator as it was).

        Parameters
        ----------
        Phi : {array-like, sparse matrix, LinearOperator} of shape \
                (n_samples, n_features), or a list of ``n_tasks`` of them
            One design shared by every task, or one design per task (each
            with its own number of rows, all with ``n_features`` columns).
        Y : array-like of shape (n_samples,) or (n_samples, n_tasks), or a \
                list of ``n_tasks`` 1-D arrays
            Measurements: a column per task for a shared ``Phi`` (1-D: one
            task); for a list of designs, a list of ``y_t`` of length
            ``Phi_t.shape[0]``.
        mask : array-like of bool of shape (n_samples, n_tasks), default=None
            Shared ``Phi`` only: ``mask[i, t]`` is False when task ``t`` did
            not observe measurement ``i`` (its row of ``Phi`` is dropped for
            that task; ``Y[i, t]`` is ignored and may be NaN).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        tasks, single = self._validate_fit_data(Phi, Y, mask)
        opts = self._options(tasks)
        rng = check_random_state(self.random_state)
        res = _fit_multitask(tasks, opts, rng)
        if res.cg_worst > opts.cg_tol:
            warnings.warn(
                f"ClusteredMultiTaskSBL: conjugate gradients did not reach "
                f"cg_tol={opts.cg_tol:.1e} within cg_max_iter={opts.cg_max_iter} "
                f"iterations (largest relative residual {res.cg_worst:.2e}).",
                ConvergenceWarning,
                stacklevel=2,
            )
        if not res.history["converged"]:
            warnings.warn(
                f"ClusteredMultiTaskSBL did not converge within max_iter="
                f"{self.max_iter} EM iterations (tol={self.tol}).",
                ConvergenceWarning,
                stacklevel=2,
            )
        dtype = tasks.dtype
        self.coef_ = res.coef[0].astype(dtype) if single else res.coef.astype(dtype)
        sd = res.sigma_diag.astype(dtype)
        self.sigma_diag_ = sd[0] if single else sd
        self.lambda_ = res.lam
        self.active_ = res.active
        self.alpha_ = res.beta
        self.responsibilities_ = res.resp
        self.labels_ = np.argmax(res.resp, axis=1)
        self.weights_ = (
            res.weights
            if opts.mode == "clustered"
            else (np.full(res.resp.shape[1], 1.0 / res.resp.shape[1]))
        )
        self.log_likelihood_ = res.loglik
        self.n_clusters_ = res.lam.shape[0]
        self.n_tasks_ = tasks.n_tasks
        self.n_iter_ = res.n_iter
        self.history_ = res.history
        self.solver_ = opts.solver
        return self

    def _validate_fit_data(self, Phi, Y, mask):
        if Y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None (Y: the measurements of the tasks)."
            )
        if _is_design_list(Phi):
            return self._validate_lists(list(Phi), Y, mask), False
        Phi = self._check_design(Phi, "Phi")
        n, p = Phi.shape
        dtype = Phi.dtype if Phi.dtype in FLOAT_DTYPES else np.float64
        if isinstance(Phi, LinearOperator):
            self.n_features_in_ = p
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            validate_data(self, Phi, reset=True, skip_check_array=True)
        finite = mask is None
        Y = check_array(
            Y, ensure_2d=False, dtype=dtype, input_name="Y", ensure_all_finite=finite
        )
        single = Y.ndim == 1
        if Y.ndim > 2 or Y.shape[0] != n:
            raise ValueError(
                f"Y has shape {Y.shape}, but Phi has shape {(n, p)}; Y must have "
                f"Phi.shape[0]={n} rows (one column per task)."
            )
        Y = Y.reshape(n, -1)
        T = Y.shape[1]
        masks = None
        if mask is not None:
            mask = check_array(mask, ensure_2d=False, dtype=None, input_name="mask")
            if mask.shape != (n, T) or mask.dtype != bool:
                if mask.ndim == 1 and mask.shape == (n,) and T == 1:
                    mask = mask.reshape(n, 1)
                if mask.shape != (n, T) or mask.dtype != bool:
                    raise ValueError(
                        f"mask must be a boolean array of shape {(n, T)} (as Y); "
                        f"got shape {mask.shape} and dtype {mask.dtype}."
                    )
            bad = ~np.isfinite(Y) & mask
            if bad.any():
                raise ValueError(
                    f"Y contains NaN or inf at {int(bad.sum())} observed entries "
                    "(mask True); only unobserved entries may be non-finite."
                )
            empty = np.flatnonzero(~mask.any(axis=0))
            if empty.size:
                raise ValueError(
                    f"mask leaves tasks {empty.tolist()[:10]} without any observed "
                    "measurement; every task needs at least one."
                )
            masks = np.ascontiguousarray(mask.T, dtype=dtype)
            Y = np.where(mask, Y, 0.0).astype(dtype)
        Ys = [Y[:, t] for t in range(T)]
        return _Tasks(Phi, Ys, masks, dtype), single

    def _validate_lists(self, Phis, Y, mask):
        if mask is not None:
            raise ValueError(
                "mask is only for a shared Phi; with a list of designs give each "
                "task its observed rows only."
            )
        if not Phis:
            raise ValueError("Phi is an empty list; expected one design per task.")
        if not isinstance(Y, (list, tuple)) or len(Y) != len(Phis):
            raise ValueError(
                f"Phi is a list of {len(Phis)} designs, so Y must be a list of "
                f"{len(Phis)} 1-D arrays (one per task); got "
                f"{type(Y).__name__}."
            )
        Phis = [self._check_design(P, f"Phi[{t}]") for t, P in enumerate(Phis)]
        p = Phis[0].shape[1]
        dtypes = {P.dtype for P in Phis}
        dtype = np.float32 if dtypes == {np.dtype(np.float32)} else np.float64
        Ys = []
        for t, (P, y) in enumerate(zip(Phis, Y, strict=True)):
            if P.shape[1] != p:
                raise ValueError(
                    f"Phi[{t}] has {P.shape[1]} columns but Phi[0] has {p}; every "
                    "task's design must have the same number of features."
                )
            y = check_array(y, ensure_2d=False, dtype=dtype, input_name=f"Y[{t}]")
            if y.ndim != 1 or y.shape[0] != P.shape[0]:
                raise ValueError(
                    f"Y[{t}] has shape {y.shape}, but Phi[{t}] has shape {P.shape}; "
                    f"Y[{t}] must be 1-D of length {P.shape[0]}."
                )
            Ys.append(y)
        self.n_features_in_ = p
        if hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return _Tasks(Phis, Ys, None, dtype)

    @staticmethod
    def _check_design(Phi, name):
        if isinstance(Phi, LinearOperator):
            if len(Phi.shape) != 2 or min(Phi.shape) < 1:
                raise ValueError(
                    f"{name} is a LinearOperator of shape {Phi.shape}; expected a "
                    "2-D operator of shape (n_samples, n_features)."
                )
            return Phi
        return check_array(
            Phi, accept_sparse=["csr", "csc"], dtype=FLOAT_DTYPES, input_name=name
        )

    def _options(self, tasks):
        solver = self.solver
        if solver == "auto":
            d = tasks.shared
            small = d is not None and d.kind == "dense"
            solver = "em" if small and min(d.shape) <= AUTO_EM_MAX_SIZE else "cofem"
        return _MTOptions(
            mode=self.mode,
            n_clusters=self.n_clusters,
            solver=solver,
            n_probes=self.n_probes,
            max_iter=self.max_iter,
            tol=self.tol,
            stall=self.stall_tol,
            cg_tol=self.cg_tol,
            cg_max_iter=self.cg_max_iter,
            fit_noise=self.fit_noise,
            noise_precision_init=self.noise_precision_init,
            threshold_lambda=self.threshold_lambda,
            n_init_iter=self.n_init_iter,
            verbose=self.verbose,
        )

    def predict(self, Phi):
        """Predict every task's measurements with its posterior mean.

        Parameters
        ----------
        Phi : {array-like, sparse matrix, LinearOperator} of shape \
                (n_samples, n_features), or a list of ``n_tasks_`` of them
            One design for every task, or one per task.

        Returns
        -------
        Y : ndarray of shape (n_samples, n_tasks_) (``(n_samples,)`` after a
            fit on 1-D ``Y``), or a list of ``n_tasks_`` 1-D arrays
            ``Phi_t coef_[t]``.
        """
        check_is_fitted(self)
        coef = np.atleast_2d(self.coef_)
        if _is_design_list(Phi):
            if len(Phi) != coef.shape[0]:
                raise ValueError(
                    f"Phi is a list of {len(Phi)} designs; expected one per task "
                    f"(n_tasks_={coef.shape[0]})."
                )
            out = []
            for t, P in enumerate(Phi):
                P = self._check_design(P, f"Phi[{t}]")
                if P.shape[1] != self.n_features_in_:
                    raise ValueError(
                        f"Phi[{t}] has {P.shape[1]} columns; expected "
                        f"{self.n_features_in_} (n_features_in_)."
                    )
                out.append(np.asarray(P @ coef[t].astype(np.float64)))
            return out
        if isinstance(Phi, LinearOperator):
            if Phi.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"Phi is a LinearOperator of shape {Phi.shape}; expected "
                    f"{self.n_features_in_} columns (n_features_in_)."
                )
            pred = np.asarray(Phi.matmat(np.ascontiguousarray(coef.T)))
            dtype = Phi.dtype if Phi.dtype in FLOAT_DTYPES else np.float64
        else:
            Phi = validate_data(
                self, Phi, accept_sparse=["csr", "csc"], dtype=FLOAT_DTYPES,
                reset=False,
            )  # fmt: skip
            pred = np.asarray(Phi @ coef.T)
            dtype = Phi.dtype
        pred = pred.astype(dtype, copy=False)
        return pred[:, 0] if np.ndim(self.coef_) == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags
