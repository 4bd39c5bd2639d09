"""Sparse Bayesian learning: exact EM and covariance-free EM (CoFEM).

Three layers: the validated estimator :class:`SparseBayesianLearning`; the
private dispatcher :func:`_fit_sbl` (EM iterations, E-steps, design products,
threads over blocks of right-hand sides); the numba conjugate-gradient kernels
of ``skunroll._kernels._cg``.
"""

import time
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator
from scipy.special import erfcx
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._kernels._cg import cg_dense
from .._parallel import _thread_pool, effective_threads, single_threaded_blas
from .._training import atomic
from .._validation import FLOAT_DTYPES, N_JOBS
from ._krylov import block_cg

SOLVERS = ("auto", "em", "cofem")
AUTO_EM_MAX_SIZE = 1000
"""``solver="auto"`` runs exact EM when ``min(n_samples, n_features)`` is at
most this and ``X`` is a dense array (never for a sparse matrix or a
``LinearOperator``, which EM would densify): its E-step costs ``min(n, p)^2 p`` flops,
against about ``100 (n_probes + 1) n p`` for CoFEM's CG iterations."""
MAX_SNR = 1e6
"""The learned noise precision is capped at ``MAX_SNR / var(y)`` (noise
variance at least 1e-6 of the variance of ``y``): with more features than
samples, the EM update of the noise otherwise drifts to zero noise, the
degenerate interpolating solution."""
EXACT_DIAG_BUDGET = 5e7
"""For a ``LinearOperator``, the squared column norms ``diag(Phi^T Phi)`` are
computed exactly, by ``rmatmat`` on blocks of the identity (``n_samples``
``rmatvec`` s), when ``n_samples * n_features`` is at most this; above it they
are estimated (see ``DIAG_PROBES``)."""
DIAG_PROBES = 32
"""Rademacher probes ``p_k`` of the estimate ``mean_k p_k * (Phi^T Phi p_k)``
of ``diag(Phi^T Phi)`` for a ``LinearOperator`` above ``EXACT_DIAG_BUDGET``
(probes of a fixed seed, so that they do not consume ``random_state``)."""
BLOCK = 256
"""Columns per block when a design is densified or its diagonal computed
(bounds the memory to ``BLOCK * max(n_samples, n_features)``)."""
STALL_WINDOW = 3
"""Iterations over which the stall rule compares the change (see ``stall``)."""
GRAM_RATIO = 1.0
"""Dense CoFEM multiplies by the Gram matrix ``Phi^T Phi`` when
``n_samples >= GRAM_RATIO * n_active`` (cheaper than two products)."""


# --------------------------------------------------------------- the design


class _Design:
    """Products with the (centred) design in row layout, for any input kind.

    ``matmat(P)`` returns ``P Phi^T`` (rows ``Phi p``) and ``rmatmat(U)``
    returns ``U Phi`` (rows ``Phi^T u``), with ``Phi = X - 1 offset^T``: for a
    scipy sparse matrix or a ``LinearOperator`` the centring is applied
    implicitly (column means from ``X^T 1 / n``), so ``X`` is never densified.
    Dense arrays are centred explicitly (a copy).
    """

    def __init__(self, X, fit_intercept, dtype):
        self.shape = X.shape
        self.dtype = dtype
        n, p = X.shape
        if isinstance(X, LinearOperator):
            self.kind = "operator"
        elif sp.issparse(X):
            self.kind = "sparse"
        else:
            self.kind = "dense"
        if not fit_intercept:
            self.offset = np.zeros(p, dtype=dtype)
        elif self.kind == "dense":
            self.offset = X.mean(axis=0).astype(dtype)
        else:
            self.offset = self._rmat(X, np.ones((1, n), dtype=dtype))[0] / n
        if self.kind == "dense":
            self.X = np.ascontiguousarray(X - self.offset, dtype=dtype)
        else:
            self.X = X
        self.centred = fit_intercept and self.kind != "dense"
        self._col2 = None

    @staticmethod
    def _mat(X, P):
        # P.T is a Fortran-ordered view: each column (one right-hand side) is
        # contiguous, as transforms along axis 0 like it; no copy is made
        if isinstance(X, LinearOperator):
            return np.asarray(X.matmat(P.T)).T
        return np.asarray(X @ P.T).T

    @staticmethod
    def _rmat(X, U):
        if isinstance(X, LinearOperator):
            return np.asarray(X.rmatmat(U.T)).T
        return np.asarray(X.T @ U.T).T

    def matmat(self, P):
        out = np.ascontiguousarray(self._mat(self.X, P), dtype=self.dtype)
        if self.centred:
            out -= (P @ self.offset)[:, None]
        return out

    def rmatmat(self, U):
        out = np.ascontiguousarray(self._rmat(self.X, U), dtype=self.dtype)
        if self.centred:
            out -= U.sum(axis=1)[:, None] * self.offset
        return out

    def column_norms2(self):
        """Squared column norms ``diag(Phi^T Phi)`` of the centred design.

        Exact for arrays and sparse matrices. For a ``LinearOperator`` exact
        too when ``n * p <= EXACT_DIAG_BUDGET`` (``rmatmat`` on blocks of
        ``BLOCK`` columns of the ``n x n`` identity), else the per-entry probe
        estimate ``mean_k p_k * (Phi^T Phi p_k)`` with ``DIAG_PROBES`` probes
        of a fixed seed, shrunk towards its mean by the fraction of its
        spread that the probe noise explains, and floored at 1e-3 of its mean
        so that no coefficient is dropped because of the estimate's noise.
        Computed once per design (the tasks of ``multitask="independent"``
        share it).
        """
        if self._col2 is None:
            self._col2 = self._column_norms2()
        return self._col2

    def _column_norms2(self):
        n, p = self.shape
        if self.kind == "dense":
            return np.einsum("ij,ij->j", self.X, self.X)
        if self.kind == "sparse":
            sq = np.asarray(self.X.multiply(self.X).sum(axis=0)).ravel()
            return np.maximum(sq - n * self.offset**2 * self.centred, 0.0)
        col2 = np.zeros(p)
        if n * p <= EXACT_DIAG_BUDGET:
            for start in range(0, n, BLOCK):
                stop = min(start + BLOCK, n)
                eye = np.zeros((stop - start, n), dtype=self.dtype)
                eye[np.arange(stop - start), np.arange(start, stop)] = 1
                rows = self.rmatmat(eye).astype(np.float64)  # rows of Phi
                col2 += np.einsum("ij,ij->j", rows, rows)
            return col2
        # probe estimate, shrunk towards its mean by the share of its spread
        # that the probes' own noise explains (James-Stein): the raw estimate
        # is noisy (relative error sqrt(3 / 32) for a subsampled DCT with
        # n = p / 4, whose column norms differ by a few per cent), and as a
        # Jacobi preconditioner it doubled the CG iterations of the
        # benchmark's scale run, against the mean
        rng = np.random.RandomState(0)
        total2 = np.zeros(p)
        for start in range(0, DIAG_PROBES, BLOCK):
            k = min(BLOCK, DIAG_PROBES - start)
            probes = rng.choice([-1.0, 1.0], size=(k, p)).astype(self.dtype)
            samples = probes * self.rmatmat(self.matmat(probes)).astype(np.float64)
            col2 += samples.sum(axis=0)
            total2 += np.sum(samples**2, axis=0)
        col2 /= DIAG_PROBES
        mean = col2.mean()
        if not mean > 0:
            return np.maximum(col2, 0.0)
        noise_var = np.mean(total2 / DIAG_PROBES - col2**2) / (DIAG_PROBES - 1)
        spread = col2.var()
        weight = float(np.clip(1.0 - noise_var / spread, 0.0, 1.0)) if spread else 0.0
        return np.maximum(mean + weight * (col2 - mean), 1e-3 * mean)

    def columns(self, active):
        """Dense centred columns ``Phi[:, active]``, ``n x n_active`` (for
        exact EM), built by blocks of ``BLOCK`` columns: never ``p x p``."""
        idx = np.flatnonzero(active)
        if self.kind == "dense":
            return np.ascontiguousarray(self.X[:, idx])
        n, p = self.shape
        out = np.empty((n, idx.size), dtype=self.dtype)
        if self.kind == "sparse":
            for start in range(0, idx.size, BLOCK):
                cols = idx[start : start + BLOCK]
                out[:, start : start + cols.size] = self.X[:, cols].toarray()
        else:
            for start in range(0, idx.size, BLOCK):
                cols = idx[start : start + BLOCK]
                eye = np.zeros((p, cols.size), dtype=self.dtype)
                eye[cols, np.arange(cols.size)] = 1
                out[:, start : start + cols.size] = np.asarray(self.X.matmat(eye))
        if self.centred:
            out -= self.offset[idx]
        return out


# ------------------------------------------------------------ CG drivers

UNIT_RANGE = 2.0**100
"""CG runs on its system as given when the largest diagonal entry of the
matrix and the largest entry of every right-hand side are within
``[1 / UNIT_RANGE, UNIT_RANGE]`` (every ordinary fit, left bit-identical);
otherwise on the system divided by powers of two (see ``_in_units``)."""


def _in_units(solve, lam, beta, dinv, B, X, active=None):
    """``solve(lam, beta, dinv, B, X)`` (a CG driver: ``X`` warm start on
    entry, solutions on exit) on ``(beta G + diag lam) x = b`` brought to
    order one when it is not: the matrix divided by a power of two ``s`` near
    its largest diagonal entry (of the ``active`` coefficients), every row of
    ``B`` by a power of two ``r`` near its largest entry, so ``x`` by
    ``r / s``. Exact (powers of two) short of underflow, and it keeps the
    squared norms of CG from overflowing or underflowing: with
    ``noise_precision_init=1e200`` ``||b||^2`` was inf, every residual passed
    the test at once and CoFEM returned zero coefficients."""
    diag = 1.0 / np.asarray(dinv, dtype=np.float64)
    if active is not None:
        diag = diag[active]
    top = float(np.max(diag, initial=0.0))
    rows = np.max(np.abs(B), axis=1, initial=0.0).astype(np.float64)
    sizes = np.append(rows[rows > 0], top if top > 0 else 1.0)
    if not np.all(np.isfinite(sizes)) or np.all(
        (sizes >= 1.0 / UNIT_RANGE) & (sizes <= UNIT_RANGE)
    ):
        return solve(lam, beta, dinv, B, X)
    s = 2.0 ** np.round(np.log2(top)) if top > 0 else 1.0
    r = np.where(rows > 0, 2.0 ** np.round(np.log2(np.where(rows > 0, rows, 1))), 1)
    Xs = X.astype(np.float64) * s / r[:, None]
    Xu = np.ascontiguousarray(Xs, dtype=X.dtype)
    out = solve(
        np.asarray(lam, dtype=np.float64) / s,
        beta / s,
        np.asarray(dinv, dtype=np.float64) * s,
        np.ascontiguousarray(B / r[:, None].astype(B.dtype)),
        Xu,
    )
    X[...] = Xu.astype(np.float64) * r[:, None] / s
    return out


def _cg_operator(design, mask, lam, beta, dinv, B, X, tol, max_iter):
    """Block PCG with the products done by ``design`` (sparse or operator),
    on the system brought to order one (``_in_units``)."""

    def solve(lam, beta, dinv, B, X):
        return _cg_operator_in_units(design, mask, lam, beta, dinv, B, X, tol,
                                     max_iter)  # fmt: skip

    return _in_units(solve, lam, beta, dinv, B, X, np.asarray(mask) > 0)


def _cg_operator_in_units(design, mask, lam, beta, dinv, B, X, tol, max_iter):
    """Block PCG with the products done by ``design`` (sparse or operator).

    Same recursion as :func:`skunroll._kernels._cg.cg_dense` (the per-row
    update is its numba kernel, the loop :func:`._krylov.block_cg`); pruned
    coefficients (``mask`` False) have zero right-hand sides and stay zero.
    """

    def apply(P, rows):
        Q = beta * design.rmatmat(design.matmat(P))
        Q *= mask
        Q += lam * P
        return Q

    return block_cg(apply, B, X, dinv, tol, max_iter)


def _cg_dense(Phi, gram, lam, beta, dinv, B, X, tol, max_iter, n_jobs):
    """``cg_dense`` over blocks of right-hand sides, in threads (nogil), on
    the system brought to order one (``_in_units``)."""

    def solve(lam, beta, dinv, B, X):
        return _cg_dense_in_units(Phi, gram, lam, beta, dinv, B, X, tol,
                                  max_iter, n_jobs)  # fmt: skip

    return _in_units(solve, lam, beta, dinv, B, X)


def _cg_dense_in_units(Phi, gram, lam, beta, dinv, B, X, tol, max_iter, n_jobs):
    """``cg_dense`` over blocks of right-hand sides, in threads (nogil)."""
    dtype = B.dtype.type
    PhiT = np.ascontiguousarray(Phi.T)
    use_gram = gram is not None
    gram = gram if use_gram else np.empty((1, 1), dtype=B.dtype)
    lam, dinv = lam.astype(B.dtype), dinv.astype(B.dtype)

    def run(sl):
        Xs = np.ascontiguousarray(X[sl])
        Bs = np.ascontiguousarray(B[sl])
        out = cg_dense(Phi, PhiT, gram, use_gram, lam, dtype(beta), dinv, Bs, Xs,
                       float(tol), max_iter)  # fmt: skip
        X[sl] = Xs
        return out

    m = B.shape[0]
    n_threads = min(effective_threads(n_jobs), m)
    bounds = np.linspace(0, m, n_threads + 1).astype(int)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    slices = [sl for sl in slices if sl.stop > sl.start]
    if len(slices) == 1:
        results = [run(slices[0])]
    else:
        results = list(_thread_pool(len(slices)).map(run, slices))
    return max(r[0] for r in results), max(r[1] for r in results)


# ----------------------------------------------------------------- E-steps


@dataclass
class _EStep:
    mu: np.ndarray  # (n_tasks, n_features), zero where pruned
    sigma_diag: np.ndarray  # (n_features,), zero where pruned
    rss: float  # sum over tasks of ||y - Phi mu||^2
    cg_iter: int = 0
    cg_worst: float = 0.0
    sigma: np.ndarray = None  # (n_active, n_active), exact EM's final step
    trace: float = None  # CoFEM: unclamped estimate of tr(diag(lambda) Sigma)


def _estep_exact(Phi_a, gram_a, Y, lam_a, beta, full_sigma=False, logdet=False):
    """Exact posterior moments on the active columns (dense ``Phi_a``).

    ``(beta G + diag lam)^{-1}`` by Cholesky when there are at most as many
    active columns as samples (or the Gram matrix is given), else by the
    Woodbury identity with the ``n x n`` matrix ``I / beta + Phi L^{-1}
    Phi^T``. Returns ``(mu (T, a), sigma_diag (a,), Sigma or None)``, and
    with ``logdet=True`` also ``log det(I / beta + Phi L^{-1} Phi^T)``, the
    log-determinant of the marginal covariance of ``y`` (from the same
    Cholesky factor).
    """
    n, a = Phi_a.shape
    if a == 0:
        out = np.zeros((Y.shape[0], 0)), np.zeros(0), np.zeros((0, 0))
        return (*out, -n * np.log(beta)) if logdet else out
    if gram_a is not None or a <= n:
        G = gram_a if gram_a is not None else Phi_a.T @ Phi_a
        H = beta * G
        H[np.diag_indices(a)] += lam_a
        L = _cholesky(H)
        Linv = scipy.linalg.solve_triangular(L, np.eye(a), lower=True)
        sigma_diag = np.einsum("ij,ij->j", Linv, Linv)
        mu = beta * ((Y @ Phi_a) @ Linv.T) @ Linv
        out = mu, sigma_diag, (Linv.T @ Linv if full_sigma else None)
        if logdet:
            ld = 2 * np.sum(np.log(np.diag(L))) - n * np.log(beta)
            return (*out, ld - np.sum(np.log(lam_a)))
        return out
    W = Phi_a / lam_a
    C = W @ Phi_a.T
    C[np.diag_indices(n)] += 1.0 / beta
    L = _cholesky(C)
    V = scipy.linalg.solve_triangular(L, W, lower=True)
    sigma_diag = 1.0 / lam_a - np.einsum("ij,ij->j", V, V)
    Cy = scipy.linalg.cho_solve((L, True), Y.T)
    mu = (W.T @ Cy).T
    sigma = None
    if full_sigma:
        sigma = -(V.T @ V)
        sigma[np.diag_indices(a)] += 1.0 / lam_a
    out = mu, np.maximum(sigma_diag, 0.0), sigma
    return (*out, 2 * np.sum(np.log(np.diag(L)))) if logdet else out


def _cholesky(H):
    """Lower Cholesky factor, with a small diagonal jitter if ``H`` is not
    numerically positive definite."""
    try:
        return scipy.linalg.cholesky(H, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        jitter = 1e-10 * np.trace(H) / H.shape[0]
        H = H + jitter * np.eye(H.shape[0])
        return scipy.linalg.cholesky(H, lower=True, check_finite=False)


# ------------------------------------------------------------------ fitting


@dataclass
class _SBLResult:
    """One group of tasks sharing ``lambda`` (all of them for M-SBL)."""

    mu: np.ndarray
    lam: np.ndarray
    beta: float
    sigma_diag: np.ndarray
    active: np.ndarray
    sigma: np.ndarray = None
    n_iter: int = 0
    history: dict = field(default_factory=dict)
    cg_worst: float = 0.0
    design_active: object = None  # CoFEM: what predict(return_std) needs
    col2: np.ndarray = None  # squared column norms (preconditioner)


@dataclass
class _Options:
    solver: str
    n_probes: int
    max_iter: int
    tol: float
    cg_tol: float
    cg_max_iter: int
    fit_noise: bool
    noise_precision_init: float
    threshold_lambda: float
    positive: bool
    n_jobs: int
    verbose: int
    stall: float = 0.0


def _fit_sbl(design, Y, opts, rng, label=""):
    """EM iterations for one group of tasks; ``Y`` is (n_tasks, n_samples),
    centred. Returns an :class:`_SBLResult`."""
    n, p = design.shape
    T = Y.shape[0]
    _check_finite(design, design.offset, "its column means (the centring offset)")
    PhiTY = design.rmatmat(Y).astype(np.float64)  # (T, p)
    _check_finite(design, PhiTY, "X^T y")
    stepper = _EStepper(design, PhiTY, Y, opts, rng)
    col2 = stepper.col2
    _check_finite(design, col2, "its squared column norms")
    yvar = float(np.sum(Y.astype(np.float64) ** 2) / (n * T))
    frob2 = float(col2.sum())
    # s2: the mean square coefficient that would explain y; it sets the scale
    # of the initial precisions and of the pruning threshold
    s2 = float(np.sum(Y.astype(np.float64) ** 2) / T / frob2) if frob2 > 0 else 0.0
    if not s2 > 0:
        s2 = 1.0
    yvar = yvar if yvar > 0 else 1.0
    beta = (
        1.0 / yvar if opts.noise_precision_init is None else opts.noise_precision_init
    )
    with np.errstate(over="ignore"):
        overflow = not np.isfinite(beta * col2.max(initial=0.0))
    if overflow:
        source = "noise_precision_init"
        if opts.noise_precision_init is None:
            source = "1 / var(y)"
        raise ValueError(
            f"the noise precision {beta:.3g} ({source}) times the squared column "
            f"norms of X (up to {col2.max():.3g}) overflows; lower "
            "noise_precision_init or rescale X."
        )
    beta_max = max(MAX_SNR / yvar, beta)
    lam = np.full(p, 1.0 / s2)
    active = col2 > 0
    mu = np.zeros((T, p))
    sigma_diag = np.zeros(p)
    history = {k: [] for k in ("coef_change", "n_active", "alpha", "cg_iter", "time")}
    start = time.perf_counter()
    worst = 0.0
    converged = False
    n_iter = 0
    for n_iter in range(1, opts.max_iter + 1):
        est = stepper(lam, active, beta, mu, sigma_diag)
        worst = max(worst, est.cg_worst)
        change = np.linalg.norm(est.mu - mu) / max(np.linalg.norm(est.mu), 1e-300)
        mu, sigma_diag = est.mu, est.sigma_diag
        lam_new, gamma = _mstep(mu, sigma_diag, lam, active, opts.positive)
        if est.trace is not None:
            gamma = float(np.clip(active.sum() - est.trace, 0.0, active.sum()))
        if opts.fit_noise:
            denom = est.rss + T * gamma / beta
            beta = min(n * T / denom, beta_max) if denom > 0 else beta_max
        lam = np.where(active, lam_new, lam)
        active = active & (lam * s2 <= opts.threshold_lambda)
        elapsed = time.perf_counter() - start
        values = (change, int(active.sum()), beta, est.cg_iter, elapsed)
        for key, value in zip(history, values, strict=True):
            history[key].append(value)
        if opts.verbose:
            print(
                f"[SparseBayesianLearning{label}] iter {n_iter:4d}  change "
                f"{change:.3e}  active {int(active.sum())}  alpha {beta:.4g}  "
                f"CG iters {est.cg_iter}  {time.perf_counter() - start:.2f} s",
                flush=True,
            )
        if change <= opts.tol or not active.any() or _stalled(history, opts):
            converged = True
            break
    final = stepper(lam, active, beta, mu, sigma_diag, final=True)
    worst = max(worst, final.cg_worst)
    coef = final.mu
    if opts.positive:  # the mode of the truncated posterior
        coef = np.maximum(coef, 0.0)
    return _SBLResult(
        mu=coef,
        lam=lam,
        beta=float(beta),
        sigma_diag=final.sigma_diag * active,
        active=active,
        sigma=final.sigma,
        n_iter=n_iter,
        history={k: np.asarray(v) for k, v in history.items()}
        | {"converged": converged},
        cg_worst=worst,
        design_active=stepper.design_for_predict(active),
        col2=col2,
    )


def _stalled(history, opts):
    """The stall rule: with the noise learned, the relative change is at most
    ``2 tol`` and fell by less than a fraction ``stall`` over the last
    ``STALL_WINDOW`` iterations (``stall`` is the estimator's ``stall_tol``).

    EM then has left its fast phase for the slow one in which, with more
    features than samples, the noise precision keeps growing (about 20 % per
    iteration) towards its cap and the coefficients' error rises again (see
    the user guide); the change itself has no floor to fall under, so ``tol``
    alone stopped at a point of that drift that depends on the problem.
    """
    changes = history["coef_change"]
    if not (opts.fit_noise and opts.stall > 0) or len(changes) <= STALL_WINDOW:
        return False
    now, before = changes[-1], changes[-1 - STALL_WINDOW]
    return now <= 2 * opts.tol and now > (1.0 - opts.stall) * before


def _check_finite(design, values, what):
    """A ``ValueError`` naming ``X`` when a product with the design is not
    finite (an operator returning NaN or inf, or an overflow); otherwise the
    E-steps would silently prune every coefficient."""
    if not np.all(np.isfinite(values)):
        kind = {"operator": "a LinearOperator", "sparse": "a sparse matrix"}
        raise ValueError(
            f"X ({kind.get(design.kind, 'an array')} of shape {design.shape}) "
            f"gave non-finite values (NaN or inf) in {what}; check X (for a "
            "LinearOperator, its matvec/rmatvec) and the scale of X and y."
        )


def _mstep(mu, sigma_diag, lam, active, positive):
    """New ``lambda_i = T / sum_t E[z_ti^2]``, and ``gamma = sum_i (1 - lambda_i
    Sigma_ii)`` with the precisions ``lam`` of the E-step."""
    if positive:
        second = _truncated_second_moment(mu, sigma_diag)
    else:
        second = mu**2 + sigma_diag
    second = second.mean(axis=0)
    tiny = np.finfo(np.float64).tiny
    gamma = np.clip(1.0 - lam * sigma_diag, 0.0, 1.0)
    return 1.0 / np.maximum(second, tiny), float(np.sum(gamma * active))


def _mills(mu, sigma_diag):
    """``(sigma, phi(a) / Phi(a))`` with ``a = mu / sigma``, computed stably."""
    sigma = np.sqrt(sigma_diag)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(sigma > 0, mu / np.where(sigma > 0, sigma, 1.0), 0.0)
    return sigma, np.sqrt(2.0 / np.pi) / erfcx(-a / np.sqrt(2.0))


def _truncated_second_moment(mu, sigma_diag):
    """``E[z^2]`` of ``N(mu, sigma^2)`` truncated to ``[0, inf)``:
    ``mu^2 + sigma^2 + mu sigma phi(a) / Phi(a)``."""
    sigma, h = _mills(mu, sigma_diag)
    return np.where(
        sigma > 0, mu**2 + sigma_diag + mu * sigma * h, np.maximum(mu, 0.0) ** 2
    )


class _EStepper:
    """The E-step of one solver, with what it caches across iterations (the
    active columns of a dense design, its Gram matrix)."""

    def __init__(self, design, PhiTY, Y, opts, rng):
        self.design, self.PhiTY, self.Y = design, PhiTY, Y
        self.opts, self.rng = opts, rng
        self.dtype = design.dtype
        n, p = design.shape
        # the dense matrix of the active columns is sliced from this one
        if design.kind == "dense":
            self._Phi = design.X
        elif opts.solver == "em":
            self._Phi = design.columns(np.ones(p, dtype=bool))  # n x p
        else:
            self._Phi = None
        self._cached = None
        self._gram = None
        if self._Phi is not None and n >= GRAM_RATIO * p:
            self._gram = self._Phi.T @ self._Phi
        # exact squared column norms whenever the columns are at hand
        if self._Phi is not None:
            col2 = np.einsum("ij,ij->j", self._Phi, self._Phi)
        else:
            col2 = design.column_norms2()
        self.col2 = col2.astype(np.float64)

    def _active_columns(self, active):
        """``(Phi_a, G_a)``, recomputed only when the active set changed."""
        if self._cached is not None and np.array_equal(self._cached[0], active):
            return self._cached[1], self._cached[2]
        Phi_a = np.ascontiguousarray(self._Phi[:, active])
        G_a = None
        if self._gram is not None:
            G_a = np.ascontiguousarray(self._gram[np.ix_(active, active)])
        self._cached = (active.copy(), Phi_a, G_a)
        return Phi_a, G_a

    def __call__(self, lam, active, beta, mu_prev, sd_prev, final=False):
        # BLAS threads were 10 times slower than one thread for exact EM here
        # (n=256, p=1024: 4.5 s against 0.4 s); CoFEM's threads are its own
        with single_threaded_blas():
            if self.opts.solver == "em":
                return self._exact(lam, active, beta, final)
            return self._cofem(lam, active, beta, mu_prev, sd_prev)

    def _rss(self, mu_a, Phi_a, mu, active):
        if Phi_a is not None:
            res = self.Y - mu_a @ Phi_a.T
        else:
            res = self.Y - self.design.matmat(mu.astype(self.dtype))
        return float(np.sum(res.astype(np.float64) ** 2))

    def _exact(self, lam, active, beta, final):
        Phi_a, G_a = self._active_columns(active)
        T, p = self.PhiTY.shape
        mu_a, sd_a, sigma = _estep_exact(
            Phi_a.astype(np.float64),
            None if G_a is None else G_a.astype(np.float64),
            self.Y.astype(np.float64),
            lam[active],
            beta,
            full_sigma=final,
        )
        mu = np.zeros((T, p))
        mu[:, active] = mu_a
        sd = np.zeros(p)
        sd[active] = sd_a
        return _EStep(mu, sd, self._rss(mu_a, Phi_a, mu, active), sigma=sigma)

    def _cofem(self, lam, active, beta, mu_prev, sd_prev):
        T, p = self.PhiTY.shape
        K = self.opts.n_probes
        dt = self.dtype
        probes = self.rng.choice([-1.0, 1.0], size=(K, p))
        # starting points: the mean from zero (not from the previous mean: CG
        # stops at ||r|| <= cg_tol ||b||, which the previous mean often passes
        # already once alpha is large, and EM then stalled), the probes warm-
        # started from the previous variances (the diagonal approximation of
        # Sigma p)
        dinv = 1.0 / (beta * self.col2 + lam)
        sd0 = np.where(sd_prev > 0, sd_prev, dinv)
        if self.design.kind == "dense":
            Phi_a, G_a = self._active_columns(active)
            B = np.vstack([beta * self.PhiTY[:, active], probes[:, active]]).astype(dt)
            mu0 = np.zeros_like(mu_prev[:, active])
            X0 = np.vstack([mu0, probes[:, active] * sd0[active]])
            X0 = np.ascontiguousarray(X0, dtype=dt)
            n_it, worst = _cg_dense(
                Phi_a, G_a, lam[active], beta, dinv[active], B, X0,
                self.opts.cg_tol, self.opts.cg_max_iter, self.opts.n_jobs,
            )  # fmt: skip
            Xs = np.zeros((T + K, p))
            Xs[:, active] = X0
        else:
            Phi_a = None
            mask = active.astype(dt)
            probes *= active
            B = np.vstack([beta * self.PhiTY * active, probes]).astype(dt)
            Xs = np.vstack([np.zeros_like(mu_prev), probes * sd0]).astype(dt)
            lam_eff = np.where(active, lam, 1.0).astype(dt)
            dinv = np.where(active, dinv, 1.0).astype(dt)
            n_it, worst = _cg_operator(
                self.design, mask, lam_eff, beta, dinv, B, Xs,
                self.opts.cg_tol, self.opts.cg_max_iter,
            )  # fmt: skip
            Xs = Xs.astype(np.float64)
        mu = Xs[:T] * active
        sd_raw = np.mean(probes * Xs[T:], axis=0) * active
        # the noise update needs sum_i lambda_i Sigma_ii: from the unclamped
        # estimates it is Hutchinson's unbiased trace estimate (summing the
        # clamped ones is biased, and made EM diverge with few probes)
        trace = float(np.sum(lam * sd_raw))
        sd = np.maximum(sd_raw, 0.0)
        rss = self._rss(mu[:, active], Phi_a, mu, active)
        return _EStep(mu, sd, rss, cg_iter=n_it, cg_worst=worst, trace=trace)

    def design_for_predict(self, active):
        """What the CoFEM ``predict(return_std=True)`` needs: the active
        columns of a dense design, or the design itself."""
        if self.opts.solver == "em":
            return None
        if self.design.kind == "dense":
            return self._active_columns(active)[0]
        return self.design


def _predictive_variance(result, rows, opts):
    """``x^T Sigma x`` for the centred rows restricted to the active set:
    with the stored ``Sigma`` (exact EM), else by CG on ``A v = x``."""
    active = result.active
    if result.sigma is not None:
        Xa = rows[:, active].astype(np.float64)
        return np.einsum("ij,ij->i", Xa @ result.sigma, Xa)
    if not active.any() or rows.shape[0] == 0:
        return np.zeros(rows.shape[0])
    design = result.design_active
    dinv = 1.0 / (result.beta * result.col2 + result.lam)
    sd0 = np.where(result.sigma_diag > 0, result.sigma_diag, dinv)
    if isinstance(design, np.ndarray):
        dt = design.dtype
        B = np.ascontiguousarray(rows[:, active], dtype=dt)
        V = np.ascontiguousarray(B * sd0[active], dtype=dt)
        _, worst = _cg_dense(
            design, None, result.lam[active], result.beta, dinv[active], B, V,
            opts.cg_tol, opts.cg_max_iter, opts.n_jobs,
        )  # fmt: skip
    else:
        dt = design.dtype
        B = np.ascontiguousarray(rows * active, dtype=dt)
        V = np.ascontiguousarray(B * sd0, dtype=dt)
        lam = np.where(active, result.lam, 1.0).astype(dt)
        _, worst = _cg_operator(
            design, active.astype(dt), lam, result.beta,
            np.where(active, dinv, 1.0).astype(dt), B, V,
            opts.cg_tol, opts.cg_max_iter,
        )  # fmt: skip
    _warn_cg(worst, opts, "predict(return_std=True)")
    return np.maximum(np.einsum("ij,ij->i", B.astype(np.float64), V), 0.0)


def _warn_cg(worst, opts, where):
    if worst > opts.cg_tol:
        warnings.warn(
            f"SparseBayesianLearning {where}: conjugate gradients did not reach "
            f"cg_tol={opts.cg_tol:.1e} within cg_max_iter={opts.cg_max_iter} "
            f"iterations (largest relative residual {worst:.2e}); the iterate "
            "reached is used. Increase cg_max_iter, or cg_tol (float32 cannot "
            "go much below 1e-6).",
            ConvergenceWarning,
            stacklevel=3,
        )


class SparseBayesianLearning(RegressorMixin, BaseEstimator):
    """Sparse Bayesian learning (ARD) by exact EM or covariance-free EM.

    The model is ``y = X z + e`` with noise ``e ~ N(0, 1 / alpha)`` and one
    precision per coefficient, ``z_i ~ N(0, 1 / lambda_i)``. EM alternates
    the posterior moments of ``z`` (E-step) with ``lambda_i = 1 / (mu_i^2 +
    Sigma_ii)`` and, if ``fit_noise``, ``1 / alpha = (||y - X mu||^2 + tr(X^T
    X Sigma)) / n`` (M-step); most precisions grow without bound, and their
    coefficients are pruned (fixed at zero).

    - ``solver="em"``: the exact E-step, ``Sigma = (alpha X^T X + diag
      lambda)^{-1}`` on the active coefficients (by Cholesky, or the Woodbury
      identity when there are more active coefficients than samples), ``mu =
      alpha Sigma X^T y``.
    - ``solver="cofem"``: covariance-free EM [1]_. ``Sigma`` is never formed:
      each E-step solves ``(alpha X^T X + diag lambda) x = b`` for ``b =
      alpha X^T y`` and for ``n_probes`` fresh Rademacher probes (entries
      +-1) by preconditioned conjugate gradients, all right-hand sides in one
      block; ``mu`` is the first solution and ``Sigma_ii`` is estimated by
      ``mean_k p_ki x_ki`` (clamped at zero), an unbiased estimate whose
      relative error per entry is of the order of ``1 / sqrt(n_probes)`` (so
      ``sigma_diag_`` is a rough estimate with the default 10 probes; raise
      ``n_probes`` for error bars). The probes are drawn anew at every
      iteration, so their errors average out across iterations (with fixed
      probes EM converges to a biased fixed point). CG starts the mean from
      zero and each probe from itself scaled by the previous variances, with
      the Jacobi preconditioner ``alpha ||x_i||^2 + lambda_i`` (``||x_i||^2``
      the squared norm of column ``i`` of the centred ``X``). Only products
      with ``X`` and ``X^T`` are needed, so ``X`` may be a ``LinearOperator``
      (a subsampled DCT or FFT, ``O(p log p)`` per product); its column
      norms are computed exactly from ``n_samples`` products with ``X^T``
      when ``n_samples * n_features <= 5e7``, else estimated from 32 probes,
      so that a ``LinearOperator`` gives the same fit as the matrix it wraps
      (to the CG tolerance) below that size.
    - ``solver="auto"``: ``"em"`` when ``X`` is a dense array with
      ``min(n_samples, n_features) <= 1000``, else ``"cofem"`` (always for a
      sparse matrix or a ``LinearOperator``, which exact EM would densify to
      ``n_samples x n_features``).

    Parameters
    ----------
    solver : {"auto", "em", "cofem"}, default="auto"
        E-step, see above.
    n_probes : int, default=10
        Number ``K`` of probe vectors of CoFEM's variance estimate.
    max_iter : int, default=300
        Maximum number of EM iterations.
    tol : float, default=5e-3
        Stop when ``||mu_t - mu_{t-1}|| <= tol ||mu_t||`` (Frobenius norm over
        tasks) between consecutive E-steps; ``tol=0`` runs all ``max_iter``
        iterations (see Notes for the default, and ``stall_tol``).
    stall_tol : float, default=0.1
        With ``fit_noise=True``, also stop once the change is at most ``2
        tol`` and fell by less than this fraction over the last 3 iterations
        (``change_t > (1 - stall_tol) change_{t-3}``): EM has left its fast
        phase, and from then on the learned noise precision drifts up and
        the coefficients' error rises again (see Notes). ``0`` disables the
        rule (stop on ``tol`` only, the rule of earlier versions).
    cg_tol : float, default=1e-4
        CG stops for a right-hand side ``b`` once ``||b - A x|| <= cg_tol
        ||b||``. A CG that does not get there within ``cg_max_iter`` keeps its
        last iterate and raises a ``ConvergenceWarning``.
    cg_max_iter : int, default=1000
        Maximum number of CG iterations per E-step.
    fit_noise : bool, default=True
        Learn the noise precision ``alpha_`` by EM. It is capped at ``1e6 /
        var(y)``: with more features than samples the EM update otherwise
        drifts towards zero noise. When the noise level is known, set
        ``fit_noise=False`` and ``noise_precision_init=1 / sigma^2``.
    noise_precision_init : float, default=None
        Initial (or, with ``fit_noise=False``, fixed) noise precision;
        ``None`` means ``1 / var(y)``.
    threshold_lambda : float, default=1e6
        A coefficient is pruned, for good, once ``lambda_i s^2`` exceeds this,
        with ``s^2 = ||y - mean(y)||^2 / ||X_c||_F^2`` the mean square
        coefficient that would explain ``y`` (``X_c`` the centred design).
        Relative, unlike ``ARDRegression``'s absolute threshold, so that the
        fit does not depend on the units of ``X`` and ``y``; ``1 / s^2`` is
        also the initial precision. Pruning shrinks exact EM's matrices and
        dense CoFEM's products; for a ``LinearOperator`` the pruned
        coefficients are held at zero inside CG (a mask), and the products
        keep their cost.
    positive : bool, default=False
        Non-negative coefficients, by an approximation: the E-step is the
        usual Gaussian one (unconstrained, coupled ``mu`` and ``Sigma``); only
        the M-step truncates, coefficient by coefficient, the Gaussian
        marginal ``N(mu_i, Sigma_ii)`` to ``[0, inf)`` (rectified Gaussian)
        and uses its second moment ``mu^2 + s^2 + mu s phi(a) / Phi(a)``
        (``s^2 = Sigma_ii``, ``a = mu / s``). This is not the exact posterior
        under a non-negative prior. ``coef_`` is the mode of the truncated
        marginal, ``max(mu, 0)`` (its mean, ``mu + s phi(a) / Phi(a)``, is
        positive for every coefficient, about ``0.8 s`` where ``mu`` is zero,
        so it is not sparse); ``sigma_diag_`` stays the Gaussian
        ``Sigma_ii``.
    multitask : {"shared", "independent"}, default="shared"
        For ``y`` of shape (n_samples, n_tasks): one set of precisions and one
        noise precision shared by all tasks (M-SBL, a common support), or a
        separate model per task (fitted one after the other). Ignored for 1-D
        ``y``.
    fit_intercept : bool, default=True
        Centre ``X`` and ``y``; ``intercept_ = mean(y) - mean(X) @ coef_``.
        For a scipy sparse matrix or a ``LinearOperator`` the centring is
        implicit: the column means ``X^T 1 / n`` come from one ``rmatvec``
        and every product subtracts the rank-one term, so ``X`` is never
        densified.
    random_state : int, RandomState instance or None, default=None
        Seed of CoFEM's probes. (The estimate of a large
        ``LinearOperator``'s column norms uses probes of a fixed seed of its
        own, so that the E-steps draw the same probes whatever the kind of
        ``X``.)
    n_jobs : int, default=None
        Threads over blocks of right-hand sides of dense CoFEM's CG
        (``None`` means 1, ``-1`` all cores, ``-2`` all but one; 0 is not
        allowed); the numba kernel releases the
        GIL and BLAS runs on one thread.
    verbose : int, default=0
        Print a line per EM iteration (coefficient change, number of active
        coefficients, noise precision, CG iterations, elapsed time).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_tasks, n_features)
        Posterior means (zero for pruned coefficients).
    intercept_ : float or ndarray of shape (n_tasks,)
        Independent term (0 when ``fit_intercept=False``).
    lambda_ : ndarray of shape (n_features,) or (n_tasks, n_features)
        Estimated precisions of the coefficients (per task only for
        ``multitask="independent"``); a pruned coefficient keeps the value
        that crossed the threshold.
    alpha_ : float or ndarray of shape (n_tasks,)
        Estimated noise precision (per task for ``"independent"``).
    sigma_diag_ : ndarray of shape (n_features,) or (n_tasks, n_features)
        Posterior variances ``Sigma_ii`` (zero for pruned coefficients).
        Exact for EM; for CoFEM a probe estimate, unbiased before the
        clamping at zero, whose standard deviation is ``sqrt(sum_{j != i}
        Sigma_ij^2 / n_probes)``: a relative error per entry of the order of
        ``1 / sqrt(n_probes)``, smaller where ``Sigma`` is nearly diagonal.
    active_ : ndarray of bool, same shape as ``lambda_``
        Coefficients not pruned.
    sigma_ : ndarray of shape (n_active, n_active) or list of them
        Exact EM only: the posterior covariance of the active coefficients,
        as in ``ARDRegression`` (a list, one per task, for
        ``"independent"``).
    n_iter_ : int
        EM iterations run (the largest over tasks for ``"independent"``).
    history_ : dict or list of dict
        Per iteration: ``coef_change`` (relative), ``n_active``, ``alpha``,
        ``cg_iter`` (CG iterations of the E-step, 0 for EM) and ``time`` (s
        since the start); ``converged`` (bool). A list, one per task, for
        ``"independent"``.
    solver_ : str
        The solver used (``"em"`` or ``"cofem"``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.linear_model.ARDRegression : The same prior, fitted with MacKay's
        fixed-point updates and a full covariance.

    Notes
    -----
    ``predict(X, return_std=True)`` returns ``sqrt(1 / alpha_ + x_c^T Sigma
    x_c)`` with ``x_c`` the centred sample restricted to the active
    coefficients (the uncertainty of the intercept is ignored, as in
    ``ARDRegression``). For EM this uses ``sigma_``. For CoFEM it is computed
    without ``Sigma`` either: one CG solve ``A v = x_c`` per test sample (in
    blocks), so it is exact to ``cg_tol``; the fitted estimator therefore keeps
    the active columns of the centred training design (dense input) or a
    reference to the training sparse matrix or ``LinearOperator``. A CoFEM
    model fitted on an operator can thus only be pickled if the operator can
    (an operator built from lambdas or closures cannot).

    With learned noise and more features than samples the stopping rule acts
    as early stopping: EM's change decays slowly while the noise precision
    keeps growing towards its cap (about 20 % per iteration), and the error
    of the coefficients rises again after a minimum. ``tol`` alone stopped
    where the change crossed it, before or after that minimum depending on
    the problem (on an 800-sparse signal with n = 16,384, p = 65,536 and a
    DCT operator, 8 iterations past it, at 5.5 % error against 4.5 % at the
    minimum); the stall rule (``stall_tol``) stops where the change stops
    falling geometrically, which on the problems measured was within a few
    iterations of the minimum (see the user guide and
    ``benchmarks/README.md``).

    References
    ----------
    .. [1] Lin, Song, Bilgic & Ba, "Covariance-free sparse Bayesian learning",
       IEEE Transactions on Signal Processing 70, 2022.
    .. [2] Tipping, "Sparse Bayesian learning and the relevance vector
       machine", Journal of Machine Learning Research 1, 2001.
    .. [3] Wipf & Rao, "An empirical Bayesian strategy for solving the
       simultaneous sparse approximation problem", IEEE Transactions on
       Signal Processing 55(7), 2007.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll import SparseBayesianLearning
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 100))
    >>> z = np.zeros(100)
    >>> z[[3, 30, 60]] = [1.0, -2.0, 1.5]
    >>> y = X @ z + 0.01 * rng.standard_normal(50)
    >>> sbl = SparseBayesianLearning(random_state=0).fit(X, y)
    >>> np.flatnonzero(np.abs(sbl.coef_) > 0.1)
    array([ 3, 30, 60])
    """

    _parameter_constraints: dict = {
        "solver": [StrOptions(set(SOLVERS))],
        "n_probes": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "stall_tol": [Interval(Real, 0, 1, closed="both")],
        "cg_tol": [Interval(Real, 0, None, closed="neither")],
        "cg_max_iter": [Interval(Integral, 1, None, closed="left")],
        "fit_noise": ["boolean"],
        "noise_precision_init": [Interval(Real, 0, None, closed="neither"), None],
        "threshold_lambda": [Interval(Real, 0, None, closed="neither")],
        "positive": ["boolean"],
        "multitask": [StrOptions({"shared", "independent"})],
        "fit_intercept": ["boolean"],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        solver="auto",
        n_probes=10,
        max_iter=300,
        tol=5e-3,
        stall_tol=0.1,
        cg_tol=1e-4,
        cg_max_iter=1000,
        fit_noise=True,
        noise_precision_init=None,
        threshold_lambda=1e6,
        positive=False,
        multitask="shared",
        fit_intercept=True,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
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
        self.positive = positive
        self.multitask = multitask
        self.fit_intercept = fit_intercept
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @atomic
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit the model by EM (a fit that raises leaves the estimator as it was).

        Parameters
        ----------
        X : {array-like, sparse matrix, LinearOperator} of shape \
                (n_samples, n_features)
            Design (dictionary) ``Phi``. A ``LinearOperator`` needs
            ``matvec``/``matmat`` and ``rmatvec``/``rmatmat``.
        y : array-like of shape (n_samples,) or (n_samples, n_tasks)
            Targets.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, y = self._validate_fit_data(X, y)
        dtype = y.dtype
        Y = y.reshape(len(y), -1).T  # (n_tasks, n_samples)
        y_mean = Y.mean(axis=1) if self.fit_intercept else np.zeros(Y.shape[0])
        Y = np.ascontiguousarray(Y - y_mean[:, None], dtype=dtype)
        design = _Design(X, self.fit_intercept, dtype)
        opts = self._options(X)
        rng = check_random_state(self.random_state)
        groups = (
            [np.arange(Y.shape[0])]
            if self.multitask == "shared"
            else [np.array([t]) for t in range(Y.shape[0])]
        )
        results = []
        for g in groups:
            label = "" if len(groups) == 1 else f" task {g[0]}"
            results.append(_fit_sbl(design, Y[g], opts, rng, label))
        _warn_cg(max(r.cg_worst for r in results), opts, "fit")
        if not all(r.history["converged"] for r in results):
            warnings.warn(
                f"SparseBayesianLearning did not converge within max_iter="
                f"{self.max_iter} EM iterations (tol={self.tol}); increase "
                "max_iter or tol.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self._set_fitted(results, design, y_mean, y.ndim, opts)
        return self

    def _validate_fit_data(self, X, y):
        if isinstance(X, LinearOperator):
            if len(X.shape) != 2 or min(X.shape) < 1:
                raise ValueError(
                    f"X is a LinearOperator of shape {X.shape}; expected a 2-D "
                    "operator of shape (n_samples, n_features)."
                )
            dtype = X.dtype if X.dtype in FLOAT_DTYPES else np.float64
            y = check_array(y, ensure_2d=False, dtype=dtype, input_name="y")
            if y.ndim > 2 or y.shape[0] != X.shape[0]:
                raise ValueError(
                    f"y has shape {y.shape}, but X is a LinearOperator of shape "
                    f"{X.shape}; y must have X.shape[0]={X.shape[0]} rows."
                )
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return X, y
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            dtype=FLOAT_DTYPES,
            multi_output=True,
            y_numeric=True,
        )
        return X, np.asarray(y, dtype=X.dtype)

    def _options(self, X):
        solver = self.solver
        if solver == "auto":
            # exact EM only for dense arrays: sparse matrices and operators
            # would have to be densified (n x p)
            dense = not (isinstance(X, LinearOperator) or sp.issparse(X))
            small = min(X.shape) <= AUTO_EM_MAX_SIZE
            solver = "em" if small and dense else "cofem"
        return _Options(
            solver=solver,
            n_probes=self.n_probes,
            max_iter=self.max_iter,
            tol=self.tol,
            cg_tol=self.cg_tol,
            cg_max_iter=self.cg_max_iter,
            fit_noise=self.fit_noise,
            noise_precision_init=self.noise_precision_init,
            threshold_lambda=self.threshold_lambda,
            positive=self.positive,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
            stall=self.stall_tol,
        )

    def _set_fitted(self, results, design, y_mean, y_ndim, opts):
        coef = np.vstack([r.mu for r in results])  # (n_tasks, p)
        intercept = y_mean - coef @ design.offset.astype(np.float64)
        independent = len(results) > 1
        stack = np.vstack if independent else (lambda rs: rs[0])
        self.coef_ = coef[0] if y_ndim == 1 else coef
        self.intercept_ = float(intercept[0]) if y_ndim == 1 else intercept
        self.lambda_ = stack([r.lam for r in results])
        self.active_ = stack([r.active for r in results])
        self.sigma_diag_ = stack([r.sigma_diag for r in results])
        alphas = np.array([r.beta for r in results])
        self.alpha_ = alphas if independent else float(alphas[0])
        if opts.solver == "em":
            sigmas = [r.sigma for r in results]
            self.sigma_ = sigmas if independent else sigmas[0]
        elif hasattr(self, "sigma_"):
            del self.sigma_
        self.n_iter_ = max(r.n_iter for r in results)
        histories = [r.history for r in results]
        self.history_ = histories if independent else histories[0]
        self.solver_ = opts.solver
        self._results = results
        self._offset = design.offset
        self._opts = opts

    def predict(self, X, return_std=False):
        """Predict with the posterior mean, and optionally its standard deviation.

        Parameters
        ----------
        X : {array-like, sparse matrix, LinearOperator} of shape \
                (n_samples, n_features)
            Samples.
        return_std : bool, default=False
            Also return the standard deviation of the predictive distribution
            ``sqrt(1 / alpha_ + x_c^T Sigma x_c)`` (see Notes).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_tasks)
            Predictions.
        y_std : ndarray of the same shape
            Predictive standard deviations (only with ``return_std=True``).

        Both are in the dtype of ``X`` (float32 or float64; float64 for a
        ``LinearOperator`` of another dtype). Predictions that overflow raise
        a ValueError rather than returning inf.
        """
        check_is_fitted(self)
        if isinstance(X, LinearOperator):
            if X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X is a LinearOperator of shape {X.shape}; expected "
                    f"{self.n_features_in_} columns (n_features_in_)."
                )
            coef = np.atleast_2d(self.coef_)
            pred = np.asarray(X.matmat(np.ascontiguousarray(coef.T)))
        else:
            X = validate_data(
                self, X, accept_sparse=["csr", "csc"], dtype=FLOAT_DTYPES, reset=False
            )
            pred = np.asarray(X @ np.atleast_2d(self.coef_).T)
        pred = pred + np.atleast_1d(self.intercept_)
        if not np.all(np.isfinite(pred)):
            raise ValueError(
                "the predictions for X are not finite: the entries of X are too "
                "large for the fitted coefficients (the products overflow); "
                "rescale X (and y) and refit."
            )
        single = np.ndim(self.coef_) == 1
        pred = pred[:, 0] if single else pred
        out = X.dtype if getattr(X, "dtype", None) in FLOAT_DTYPES else np.float64
        pred = pred.astype(out, copy=False)
        if not return_std:
            return pred
        # x^T Sigma x is quadratic in x: computed on rows scaled by a power of
        # two near their largest entry, so that it cannot overflow
        rows = self._centred_rows(X)
        scale = np.max(np.abs(rows), axis=1) if rows.size else np.ones(len(rows))
        scale = np.where(
            scale > 0, 2.0 ** np.round(np.log2(np.where(scale > 0, scale, 1.0))), 1.0
        )
        rows = rows / scale[:, None].astype(rows.dtype)
        std = np.column_stack(
            [
                np.hypot(
                    np.sqrt(1.0 / r.beta),
                    scale * np.sqrt(_predictive_variance(r, rows, self._opts)),
                )
                for r in self._results
            ]
        )
        if len(self._results) == 1 and not single:
            std = np.repeat(std, np.shape(self.coef_)[0], axis=1)
        std = std.astype(out, copy=False)
        return pred, (std[:, 0] if single else std)

    def _centred_rows(self, X):
        if isinstance(X, LinearOperator):
            rows = np.asarray(X.rmatmat(np.eye(X.shape[0], dtype=X.dtype))).T
        elif sp.issparse(X):
            rows = X.toarray()
        else:
            rows = np.asarray(X)
        return rows - self._offset

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags
