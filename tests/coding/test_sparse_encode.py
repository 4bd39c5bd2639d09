"""sparse_encode against independent references.

scikit-learn's ``Lasso`` and ``orthogonal_mp_gram``, a NumPy duality gap, a
plain NumPy FISTA, and invariants where solutions are not unique.
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, orthogonal_mp_gram

from skunroll import sparse_encode

L1_ALGORITHMS = ["lasso", "fista", "ista"]


def objective(X, D, Z, alpha):
    return 0.5 * ((X - Z @ D) ** 2).sum(1) + alpha * np.abs(Z).sum(1)


def relative_gaps(X, D, Z, alpha, positive=False):
    """Lasso duality gap per sample, written independently of the kernels."""
    res = X - Z @ D
    corr = res @ D.T
    cmax = corr.max(1) if positive else np.abs(corr).max(1)
    scale = np.minimum(1.0, alpha / np.maximum(cmax, 1e-300))
    primal = 0.5 * (res**2).sum(1) + alpha * np.abs(Z).sum(1)
    dual = scale * (X * res).sum(1) - 0.5 * scale**2 * (res**2).sum(1)
    return (primal - dual) / primal


def numpy_fista(X, D, alpha, n_iter):
    L = np.linalg.eigvalsh(D @ D.T).max()
    Z = np.zeros((X.shape[0], D.shape[0]))
    Y, t = Z.copy(), 1.0
    for _ in range(n_iter):
        V = Y - (Y @ D - X) @ D.T / L
        Z_new = np.sign(V) * np.maximum(np.abs(V) - alpha / L, 0)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        Y = Z_new + (t - 1) / t_new * (Z_new - Z)
        Z, t = Z_new, t_new
    return Z


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("alpha", [0.5, 0.05, 0.005])
def test_lasso_matches_sklearn_lasso(problem, alpha, positive):
    X, D, _ = problem
    Z = sparse_encode(X, D, alpha=alpha, positive=positive)
    n_features = X.shape[1]
    ref = Lasso(
        alpha=alpha / n_features,
        fit_intercept=False,
        tol=1e-14,
        max_iter=100_000,
        positive=positive,
    )
    for i in range(0, X.shape[0], 12):
        z_ref = ref.fit(D.T, X[i]).coef_
        assert_allclose(Z[i], z_ref, atol=1e-6)
    assert np.all(relative_gaps(X, D, Z, alpha, positive) <= 1e-6)
    if positive:
        assert np.all(Z >= 0)


@pytest.mark.parametrize("alpha", [0.2, 0.02])
def test_lasso_overcomplete_gap_and_objective(overcomplete, alpha):
    X, D, _ = overcomplete
    Z = sparse_encode(X, D, alpha=alpha)
    assert np.all(relative_gaps(X, D, Z, alpha) <= 1e-6)
    from sklearn.decomposition import sparse_encode as sk_sparse_encode

    Z_sk = sk_sparse_encode(X, D, algorithm="lasso_cd", alpha=alpha, max_iter=50_000)
    # solutions may differ in the degenerate case; objectives may not
    assert np.all(objective(X, D, Z, alpha) <= objective(X, D, Z_sk, alpha) + 1e-9)


@pytest.mark.parametrize("algorithm", ["fista", "ista"])
@pytest.mark.parametrize("positive", [False, True])
def test_proximal_gradient_reaches_the_exact_objective(problem, algorithm, positive):
    X, D, _ = problem
    alpha = 0.1
    Z_exact = sparse_encode(X, D, alpha=alpha, positive=positive)
    Z = sparse_encode(
        X,
        D,
        algorithm=algorithm,
        alpha=alpha,
        positive=positive,
        max_iter=20_000,
        tol=1e-8,
    )
    f_exact = objective(X, D, Z_exact, alpha)
    assert np.all(objective(X, D, Z, alpha) - f_exact <= 1e-7 * f_exact)
    assert np.all(relative_gaps(X, D, Z, alpha, positive) <= 1e-8 * 1.01)


def test_fista_at_fixed_depth_is_beck_teboulle_fista(problem):
    """``algorithm="fista"`` with ``tol=0`` runs exactly ``max_iter`` steps of
    Beck & Teboulle's FISTA. (``"unrolled"`` is the networks' forward pass,
    whose momentum starts one step earlier: tests/dense/test_forward_passes.py
    ties it to an independent NumPy version.)"""
    X, D, _ = problem
    for n_unroll in (1, 5, 30):
        Z = sparse_encode(X, D, algorithm="fista", alpha=0.1, max_iter=n_unroll, tol=0)
        assert_allclose(Z, numpy_fista(X, D, 0.1, n_unroll), atol=1e-5)


def test_unrolled_approaches_lasso_with_depth(problem):
    X, D, _ = problem
    f_star = objective(X, D, sparse_encode(X, D, alpha=0.1), 0.1).sum()
    excess = [
        objective(
            X, D, sparse_encode(X, D, algorithm="unrolled", alpha=0.1, n_unroll=T), 0.1
        ).sum()
        - f_star
        for T in (5, 20, 100)
    ]
    assert excess[0] > excess[1] > excess[2] >= -1e-9


@pytest.mark.parametrize("n_nonzero", [1, 3, 7])
def test_omp_matches_sklearn(problem, n_nonzero):
    X, D, _ = problem
    Z = sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=n_nonzero)
    ref = orthogonal_mp_gram(D @ D.T, D @ X.T, n_nonzero_coefs=n_nonzero).T
    assert_allclose(Z, ref, atol=1e-10)
    assert np.all((Z != 0).sum(1) == n_nonzero)


def test_omp_tolerance_is_the_squared_residual(problem):
    X, D, _ = problem
    tol = 0.05
    Z = sparse_encode(X, D, algorithm="omp", tol=tol)
    res2 = ((X - Z @ D) ** 2).sum(1)
    assert np.all(res2 <= tol + 1e-12)
    ref = orthogonal_mp_gram(D @ D.T, D @ X.T, tol=tol, norms_squared=(X**2).sum(1)).T
    assert_allclose(Z, ref, atol=1e-10)


def test_omp_recovers_noiseless_planted_support():
    rng = np.random.default_rng(3)
    D = np.linalg.qr(rng.standard_normal((30, 30)))[0][:20]  # orthonormal atoms
    Z = np.zeros((10, 20))
    for i in range(10):
        Z[i, rng.choice(20, 3, replace=False)] = rng.uniform(1, 2, 3)
    codes = sparse_encode(Z @ D, D, algorithm="omp", n_nonzero_coefs=3)
    assert_allclose(codes, Z, atol=1e-12)


@pytest.mark.parametrize("algorithm", ["lasso", "fista", "ista", "unrolled", "omp"])
def test_n_jobs_gives_identical_codes(algorithm):
    from conftest import planted_problem

    X, D, _ = planted_problem(2500, 12, 24, 3, seed=5)
    kw = {"algorithm": algorithm, "alpha": 0.1, "n_nonzero_coefs": 3, "max_iter": 200}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        Z1 = sparse_encode(X, D, n_jobs=1, **kw)
        Z2 = sparse_encode(X, D, n_jobs=2, **kw)
    assert_array_equal(Z1, Z2)


@pytest.mark.parametrize("algorithm", ["lasso", "fista", "ista", "unrolled", "omp"])
def test_float32_is_preserved_and_close(problem, algorithm):
    X, D, _ = problem
    kw = {"algorithm": algorithm, "alpha": 0.1, "n_nonzero_coefs": 3}
    kw["max_iter"] = 20_000  # ISTA needs more than the default here
    Z64 = sparse_encode(X, D, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        Z32 = sparse_encode(X.astype(np.float32), D.astype(np.float32), **kw)
    assert Z32.dtype == np.float32
    # codes are not unique in general: compare the reconstruction and the l1 norm
    assert_allclose(Z32 @ D, Z64 @ D, atol=1e-3)
    assert_allclose(np.abs(Z32).sum(1), np.abs(Z64).sum(1), rtol=1e-3, atol=1e-3)


def test_integer_input_is_cast_to_float64():
    X = np.array([[3, 1], [0, -2]])
    Z = sparse_encode(X, np.eye(2, dtype=int), alpha=1.0)
    assert Z.dtype == np.float64
    assert_allclose(Z, [[2.0, 0.0], [0.0, -1.0]])


def test_warm_start_gives_the_same_solution_and_init_is_untouched(problem):
    X, D, _ = problem
    Z = sparse_encode(X, D, alpha=0.1)
    init = Z + 0.3
    init_copy = init.copy()
    for algorithm in L1_ALGORITHMS:
        Z_warm = sparse_encode(
            X, D, algorithm=algorithm, alpha=0.1, init=init, max_iter=20_000, tol=1e-9
        )
        assert_allclose(Z_warm, Z, atol=1e-5)
    assert_array_equal(init, init_copy)


def test_inputs_are_not_modified_and_readonly_works(problem, tmp_path):
    X, D, _ = problem
    Xm = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", shape=X.shape)
    Xm[:] = X
    Xm.flush()
    Xr = np.load(tmp_path / "X.npy", mmap_mode="r")
    Dr = D.copy()
    Dr.setflags(write=False)
    for algorithm in ["lasso", "fista", "unrolled", "omp"]:
        Z = sparse_encode(Xr, Dr, algorithm=algorithm, alpha=0.1, n_nonzero_coefs=3)
        assert np.isfinite(Z).all()
    assert_array_equal(Xr, X)
    assert_array_equal(Dr, D)


def test_unnormalised_atoms(problem):
    X, D, _ = problem
    scales = np.linspace(0.5, 3, D.shape[0])[:, None]
    Z = sparse_encode(X, D * scales, alpha=0.1)
    assert np.all(relative_gaps(X, D * scales, Z, 0.1) <= 1e-6)


def test_zero_samples_and_large_alpha(problem):
    X, D, _ = problem
    X = X.copy()
    X[0] = 0
    Z = sparse_encode(X, D, alpha=0.1)
    assert np.all(Z[0] == 0)
    Z = sparse_encode(X, D, alpha=1e6)
    assert np.all(Z == 0)


def test_convergence_warning_when_max_iter_is_too_small(problem):
    X, D, _ = problem
    with pytest.warns(ConvergenceWarning, match="did not reach tol"):
        sparse_encode(X, D, algorithm="ista", alpha=0.01, max_iter=2)


@pytest.mark.parametrize("t", [0, 3, 6])
def test_cholesky_delete_is_the_factor_of_the_reduced_matrix(t):
    # the homotopy removes a dropped atom from the factor of G_AA by rotations
    from skunroll._kernels._blas import cholesky_delete

    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 10))
    G = A @ A.T
    L = np.zeros((8, 8))
    L[:7, :7] = np.linalg.cholesky(G)
    cholesky_delete(L, 7, t)
    keep = np.delete(np.arange(7), t)
    assert_allclose(L[:6, :6], np.linalg.cholesky(G[np.ix_(keep, keep)]), atol=1e-12)


def test_lasso_with_dense_codes_drops_atoms_and_stays_exact():
    # 12-sparse codes on 64 atoms of 24 features: the homotopy path drops
    # atoms (the Cholesky downdate) on many samples
    from conftest import planted_problem

    X, D, _ = planted_problem(60, 24, 64, 12, seed=3)
    for positive in (False, True):
        Z = sparse_encode(X, D, alpha=0.02, positive=positive)
        assert np.all(relative_gaps(X, D, Z, 0.02, positive) <= 1e-9)
        ref = Lasso(
            alpha=0.02 / X.shape[1],
            fit_intercept=False,
            tol=1e-14,
            max_iter=100_000,
            positive=positive,
        )
        for i in range(0, X.shape[0], 10):
            assert_allclose(Z[i], ref.fit(D.T, X[i]).coef_, atol=1e-6)
