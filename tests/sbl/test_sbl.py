"""SparseBayesianLearning: exact EM against a dense reference, CoFEM against
exact EM, input kinds, recovery, scikit-learn compatibility, bad input."""

import dataclasses
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.fft
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import LinearOperator, aslinearoperator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import skunroll._sbl.sbl
from skunroll._kernels._cg import cg_dense
from skunroll._sbl.sbl import (
    MAX_SNR,
    SparseBayesianLearning,
    _Design,
    _EStepper,
    _Options,
    _predictive_variance,
)
from skunroll.metrics import support_f1


def sparse_problem(n, p, k, noise=0.01, seed=0, offset=0.0, positive=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    z = np.zeros(p)
    support = rng.choice(p, k, replace=False)
    signs = 1.0 if positive else rng.choice([-1.0, 1.0], k)
    z[support] = signs * rng.uniform(1, 2, k)
    y = X @ z + noise * rng.standard_normal(n) + offset
    return X, y, z


def reference_em(X, y, n_iter):
    """Independent dense EM for SBL: explicit inverse, explicit centring."""
    Xc = X - X.mean(axis=0)
    yc = y - y.mean()
    n, p = X.shape
    lam = np.full(p, np.sum(Xc**2) / np.sum(yc**2))
    beta = 1.0 / np.var(yc)

    def estep(lam, beta):
        Sigma = np.linalg.inv(beta * Xc.T @ Xc + np.diag(lam))
        return beta * Sigma @ Xc.T @ yc, Sigma

    for _ in range(n_iter):
        mu, Sigma = estep(lam, beta)
        d = np.diag(Sigma)
        gamma = np.sum(1.0 - lam * d)
        beta = n / (np.sum((yc - Xc @ mu) ** 2) + gamma / beta)
        lam = 1.0 / (mu**2 + d)
    mu, Sigma = estep(lam, beta)
    return mu, Sigma, lam, beta, y.mean() - X.mean(axis=0) @ mu


# ------------------------------------------------------------ exact EM


@pytest.mark.parametrize("shape", [(40, 15), (15, 40)])  # Cholesky, Woodbury
def test_exact_em_matches_dense_reference(shape):
    X, y, _ = sparse_problem(*shape, k=3, noise=0.3, offset=2.0)
    sbl = SparseBayesianLearning(solver="em", max_iter=6, tol=0, threshold_lambda=1e300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sbl.fit(X, y)
    mu, Sigma, lam, beta, intercept = reference_em(X, y, 6)
    np.testing.assert_allclose(sbl.coef_, mu, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(sbl.lambda_, lam, rtol=1e-7)
    np.testing.assert_allclose(sbl.alpha_, beta, rtol=1e-7)
    np.testing.assert_allclose(sbl.sigma_diag_, np.diag(Sigma), rtol=1e-7)
    np.testing.assert_allclose(sbl.sigma_, Sigma, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(sbl.intercept_, intercept, rtol=1e-7)
    assert sbl.n_iter_ == 6 and sbl.solver_ == "em"


def test_predict_std_matches_reference():
    X, y, _ = sparse_problem(30, 12, k=3, noise=0.3)
    sbl = SparseBayesianLearning(solver="em", threshold_lambda=1e300).fit(X, y)
    Xt = np.random.default_rng(1).standard_normal((5, 12))
    mean, std = sbl.predict(Xt, return_std=True)
    xc = Xt - X.mean(axis=0)
    expected = np.sqrt(1 / sbl.alpha_ + np.einsum("ij,jk,ik->i", xc, sbl.sigma_, xc))
    np.testing.assert_allclose(std, expected, rtol=1e-10)
    np.testing.assert_allclose(mean, Xt @ sbl.coef_ + sbl.intercept_)


# --------------------------------------------------------- CG and CoFEM


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_gram", [False, True])
def test_cg_kernel_solves_the_system(dtype, use_gram):
    rng = np.random.default_rng(0)
    Phi = rng.standard_normal((30, 20)).astype(dtype)
    lam = rng.uniform(0.5, 2, 20).astype(dtype)
    beta = dtype(3.0)
    A = beta * Phi.T @ Phi + np.diag(lam)
    B = rng.standard_normal((4, 20)).astype(dtype)
    dinv = (1 / np.diag(A)).astype(dtype)
    X = np.zeros_like(B)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    n_iter, worst = cg_dense(Phi, np.ascontiguousarray(Phi.T), Phi.T @ Phi,
                             use_gram, lam, beta, dinv, B, X, tol, 500)  # fmt: skip
    assert worst <= tol and X.dtype == dtype
    expected = np.linalg.solve(A.astype(np.float64), B.T.astype(np.float64)).T
    np.testing.assert_allclose(X, expected, rtol=10 * tol**0.5, atol=10 * tol)


def _estep(X, solver, n_probes, cg_tol, lam, beta, seed):
    design = _Design(X, False, np.float64)
    y = np.random.default_rng(1).standard_normal((1, X.shape[0]))
    opts = _Options(solver, n_probes, 1, 0.0, cg_tol, 5000, True, None, 1e300,
                    False, None, 0)  # fmt: skip
    stepper = _EStepper(design, design.rmatmat(y), y, opts,
                        np.random.RandomState(seed))  # fmt: skip
    p = X.shape[1]
    return stepper(lam, np.ones(p, bool), beta, np.zeros((1, p)), np.zeros(p))


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_cofem_estep_same_for_every_input_kind(fit_intercept):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 50))
    X[X < -1.0] = 0.0
    y = rng.standard_normal((1, 30))
    lam = rng.uniform(0.5, 3.0, 50)
    steps = []
    for Xk in (X, sp.csr_matrix(X), aslinearoperator(X)):
        design = _Design(Xk, fit_intercept, np.float64)
        opts = _Options("cofem", 20, 1, 0.0, 1e-12, 5000, True, None, 1e300,
                        False, None, 0)  # fmt: skip
        stepper = _EStepper(design, design.rmatmat(y), y, opts,
                            np.random.RandomState(0))  # fmt: skip
        steps.append(stepper(lam, np.ones(50, bool), 2.0, np.zeros((1, 50)),
                             np.zeros(50)))  # fmt: skip
    for other in steps[1:]:
        np.testing.assert_allclose(other.mu, steps[0].mu, rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(other.sigma_diag, steps[0].sigma_diag,
                                   rtol=1e-6, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("shape", [(60, 25), (25, 60)])
def test_cofem_estep_converges_to_exact_estep(shape):
    """Mean to 1e-6; the Sigma-diagonal error falls like 1/sqrt(K)."""
    X = np.random.default_rng(0).standard_normal(shape)
    lam = np.random.default_rng(2).uniform(0.5, 3.0, shape[1])
    exact = _estep(X, "em", 1, 1e-10, lam, 2.0, 0)
    errors = {}
    for K in (8, 32, 128, 512):
        err = []
        for seed in range(4):
            est = _estep(X, "cofem", K, 1e-11, lam, 2.0, seed)
            np.testing.assert_allclose(est.mu, exact.mu, rtol=1e-6, atol=1e-9)
            assert abs(est.rss - exact.rss) <= 1e-6 * exact.rss
            err.append(np.linalg.norm(est.sigma_diag - exact.sigma_diag))
        errors[K] = np.mean(err) / np.linalg.norm(exact.sigma_diag)
    ks = sorted(errors)
    assert all(errors[a] > errors[b] for a, b in zip(ks[:-1], ks[1:], strict=True))
    # 64 times more probes: ideally 8 times smaller; ask for at least 4
    assert errors[512] < errors[8] / 4
    slope = np.polyfit(np.log(ks), np.log([errors[k] for k in ks]), 1)[0]
    assert -0.75 < slope < -0.3


def test_cofem_fit_close_to_em_with_many_probes():
    X, y, _ = sparse_problem(80, 30, k=4, noise=0.05, seed=3)
    em = SparseBayesianLearning(solver="em").fit(X, y)
    cofem = SparseBayesianLearning(
        solver="cofem", n_probes=400, cg_tol=1e-10, random_state=0
    ).fit(X, y)
    rel = np.linalg.norm(cofem.coef_ - em.coef_) / np.linalg.norm(em.coef_)
    assert rel < 1e-3
    assert cofem.solver_ == "cofem" and np.all(np.isfinite(cofem.sigma_diag_))


def test_cofem_predict_std_by_cg_matches_exact_sigma():
    X, y, _ = sparse_problem(40, 60, k=4, noise=0.1)
    em = SparseBayesianLearning(solver="em").fit(X, y)
    r = em._results[0]
    Xc = X - X.mean(axis=0)
    opts = dataclasses.replace(em._opts, cg_tol=1e-12)
    rows = np.random.default_rng(4).standard_normal((7, 60))
    exact = _predictive_variance(r, rows, opts)
    for design in (np.ascontiguousarray(Xc[:, r.active]),
                   _Design(X, True, np.float64)):  # fmt: skip
        by_cg = _predictive_variance(
            dataclasses.replace(r, sigma=None, design_active=design), rows, opts
        )
        np.testing.assert_allclose(by_cg, exact, rtol=1e-7)


# ------------------------------------------------------------ input kinds


@pytest.mark.parametrize("solver", ["em", "cofem"])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_dense_sparse_and_linear_operator_agree(solver, fit_intercept):
    """Identical EM trajectories for every input kind: the exact column norms
    of the operator (from rmatmat on the identity) give the preconditioner,
    initial precisions and pruning scale of the dense fit, and the same
    random_state draws the same probes, so the fits agree to the CG
    tolerance (cg_tol=1e-11; asked: 1e-7 relative)."""
    X, y, _ = sparse_problem(50, 80, k=4, noise=0.05, offset=1.5)
    X[X < -1.0] = 0.0  # some zeros for the sparse matrix
    params = dict(solver=solver, max_iter=8, tol=0, cg_tol=1e-11,
                  fit_intercept=fit_intercept, random_state=0)  # fmt: skip
    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for Xk in (X, sp.csr_matrix(X), aslinearoperator(X)):
            fits.append(SparseBayesianLearning(**params).fit(Xk, y))
    assert all(f.solver_ == solver for f in fits)
    for other in fits[1:]:
        np.testing.assert_allclose(other.coef_, fits[0].coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(other.sigma_diag_, fits[0].sigma_diag_,
                                   rtol=1e-7, atol=1e-12)  # fmt: skip
        np.testing.assert_allclose(other.intercept_, fits[0].intercept_, rtol=1e-7)
        np.testing.assert_allclose(other.alpha_, fits[0].alpha_, rtol=1e-7)
        np.testing.assert_array_equal(other.active_, fits[0].active_)
    pred = fits[0].predict(X)
    np.testing.assert_allclose(fits[2].predict(aslinearoperator(X)), pred, rtol=1e-5)
    np.testing.assert_allclose(fits[1].predict(sp.csr_matrix(X)), pred, rtol=1e-5)
    _, std_dense = fits[0].predict(X[:5], return_std=True)
    _, std_op = fits[2].predict(aslinearoperator(X[:5]), return_std=True)
    np.testing.assert_allclose(std_op, std_dense, rtol=1e-4)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_column_norms_and_columns_of_every_kind(fit_intercept, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 300)) * np.geomspace(0.1, 10, 300)
    X[X < -1.0] = 0.0
    dense = _Design(X, fit_intercept, np.float64)
    exact = dense.column_norms2()
    active = rng.random(300) < 0.5
    for Xk in (sp.csr_matrix(X), aslinearoperator(X)):
        design = _Design(Xk, fit_intercept, np.float64)
        np.testing.assert_allclose(design.column_norms2(), exact, rtol=1e-10)
        np.testing.assert_allclose(design.columns(active), dense.columns(active),
                                   rtol=1e-10, atol=1e-12)  # fmt: skip
    # above the budget: a per-entry probe estimate; it follows norms that vary
    # 10^4-fold (though small columns get large relative errors, from their
    # correlations with large ones) ...
    monkeypatch.setattr(skunroll._sbl.sbl, "EXACT_DIAG_BUDGET", 0)
    est = _Design(aslinearoperator(X), fit_intercept, np.float64).column_norms2()
    assert np.all(est > 0)
    assert abs(est.sum() / exact.sum() - 1) < 0.1
    assert np.corrcoef(est, exact)[0, 1] > 0.8
    # ... and is shrunk to its mean for columns of equal norms, where the
    # spread of the raw estimate is all probe noise
    Xn = X / np.linalg.norm(X, axis=0)
    est = _Design(aslinearoperator(Xn), False, np.float64).column_norms2()
    assert np.std(est) < 0.1 * est.mean()  # the raw estimate's: about 0.5
    assert abs(est.mean() - 1) < 0.1


def test_em_on_sparse_and_operator_never_forms_p_by_p():
    """50 x 4000: EM densifies a sparse matrix or an operator to the n x p
    array (1.6 MB), never through a p x p identity (128 MB); its peak is that
    of EM on the dense array (which holds the a x a ``sigma_`` at the end)."""
    rng = np.random.default_rng(0)
    X = sp.random(50, 4000, density=0.05, random_state=0, format="csr")
    y = X @ np.where(rng.random(4000) < 0.002, 1.0, 0.0) + 0.01 * rng.random(50)
    for Xk in (X, aslinearoperator(X)):  # solver="auto" does not pick EM
        assert SparseBayesianLearning(max_iter=3).fit(Xk, y).solver_ == "cofem"
    peaks = []
    for Xk in (X.toarray(), X, aslinearoperator(X)):
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                SparseBayesianLearning(solver="em", max_iter=3).fit(Xk, y)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert max(peaks[1:]) < peaks[0] + 2 * X.size * 8
    design = _Design(aslinearoperator(X), True, np.float64)
    tracemalloc.start()
    try:
        cols = design.columns(np.ones(4000, bool))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(cols, X.toarray() - X.toarray().mean(axis=0))
    # blocks of 256 columns of the identity (8 MB each, copies included), a
    # quarter of the p x p identity
    assert peak < 4 * 256 * 4000 * 8


def test_inputs_not_modified_and_read_only():
    X, y, _ = sparse_problem(30, 40, k=3)
    X.flags.writeable = False
    y.flags.writeable = False
    X0, y0 = X.copy(), y.copy()
    for solver in ("em", "cofem"):
        SparseBayesianLearning(solver=solver, random_state=0).fit(X, y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# -------------------------------------------------------------- recovery


def test_recovery_gaussian_n300_p3000():
    X, y, z = sparse_problem(300, 3000, k=20, noise=0.01, seed=0)
    sbl = SparseBayesianLearning(random_state=0).fit(X, y)
    assert sbl.solver_ == "em"
    f1 = support_f1(z[None], sbl.coef_[None], atol=0.1)
    rel = np.linalg.norm(sbl.coef_ - z) / np.linalg.norm(z)
    assert f1 >= 0.95
    assert rel <= 0.05


def test_recovery_cofem_linear_operator():
    X, y, z = sparse_problem(150, 600, k=10, noise=0.01, seed=1)
    sbl = SparseBayesianLearning(solver="cofem", random_state=0)
    sbl.fit(aslinearoperator(X), y)
    f1 = support_f1(z[None], sbl.coef_[None], atol=0.1)
    assert f1 >= 0.95
    assert np.linalg.norm(sbl.coef_ - z) / np.linalg.norm(z) <= 0.05


def test_positive():
    X, y, z = sparse_problem(60, 120, k=5, noise=0.01, positive=True, seed=2)
    for solver in ("em", "cofem"):
        sbl = SparseBayesianLearning(solver=solver, positive=True, random_state=0)
        sbl.fit(X, y)
        assert np.all(sbl.coef_ >= 0)
        assert support_f1(z[None], sbl.coef_[None], atol=0.1) >= 0.9
        assert np.linalg.norm(sbl.coef_ - z) / np.linalg.norm(z) < 0.1


def test_multitask_shared_and_independent():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 150))
    Z = np.zeros((150, 3))
    support = rng.choice(150, 6, replace=False)
    Z[support] = rng.choice([-1, 1], (6, 3)) * rng.uniform(1, 2, (6, 3))
    Y = X @ Z + 0.01 * rng.standard_normal((60, 3))
    shared = SparseBayesianLearning(solver="em").fit(X, Y)
    assert shared.coef_.shape == (3, 150) and shared.lambda_.shape == (150,)
    assert np.linalg.norm(shared.coef_ - Z.T) / np.linalg.norm(Z) < 0.05
    top = np.argsort(shared.lambda_)[:6]  # the shared support: smallest precisions
    assert set(top) == set(support)
    indep = SparseBayesianLearning(solver="em", multitask="independent").fit(X, Y)
    assert indep.lambda_.shape == (3, 150) and indep.alpha_.shape == (3,)
    for t in range(3):
        single = SparseBayesianLearning(solver="em").fit(X, Y[:, t])
        np.testing.assert_allclose(indep.coef_[t], single.coef_, rtol=1e-10)
        np.testing.assert_allclose(indep.alpha_[t], single.alpha_, rtol=1e-10)
    mean, std = indep.predict(X[:4], return_std=True)
    assert mean.shape == std.shape == (4, 3)
    mean, std = shared.predict(X[:4], return_std=True)
    assert mean.shape == std.shape == (4, 3)


# --------------------------------------------------- warnings, dtypes, API


def test_cg_not_converging_warns_and_stays_finite():
    X, y, _ = sparse_problem(40, 80, k=3)
    sbl = SparseBayesianLearning(solver="cofem", cg_max_iter=1, max_iter=3,
                                 random_state=0)  # fmt: skip
    with pytest.warns(ConvergenceWarning, match="conjugate gradients"):
        sbl.fit(X, y)
    assert np.all(np.isfinite(sbl.coef_)) and np.all(np.isfinite(sbl.sigma_diag_))
    assert np.isfinite(sbl.alpha_)


def test_noise_precision_is_capped():
    X, y, _ = sparse_problem(20, 200, k=3, noise=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sbl = SparseBayesianLearning(solver="em", max_iter=100).fit(X, y)
    assert sbl.alpha_ <= MAX_SNR / np.var(y) * (1 + 1e-12)
    assert np.all(np.isfinite(sbl.coef_))


@pytest.mark.parametrize("solver", ["em", "cofem"])
def test_float32(solver):
    X, y, z = sparse_problem(60, 100, k=4, noise=0.01)
    f64 = SparseBayesianLearning(solver=solver, random_state=0).fit(X, y)
    f32 = SparseBayesianLearning(solver=solver, random_state=0)
    f32.fit(X.astype(np.float32), y.astype(np.float32))
    assert np.all(np.isfinite(f32.coef_))
    rel = np.linalg.norm(f32.coef_ - f64.coef_) / np.linalg.norm(f64.coef_)
    assert rel < 1e-2
    assert np.linalg.norm(f32.coef_ - z) / np.linalg.norm(z) < 0.05


def test_fixed_noise_and_verbose(capsys):
    X, y, _ = sparse_problem(40, 60, k=3)
    sbl = SparseBayesianLearning(fit_noise=False, noise_precision_init=1e4,
                                 verbose=1).fit(X, y)  # fmt: skip
    assert sbl.alpha_ == 1e4
    out = capsys.readouterr().out
    assert out.count("[SparseBayesianLearning] iter") == sbl.n_iter_
    assert len(sbl.history_["coef_change"]) == sbl.n_iter_


def test_grid_search():
    X, y, _ = sparse_problem(60, 40, k=4, noise=0.1)
    grid = GridSearchCV(
        SparseBayesianLearning(random_state=0),
        {"solver": ["em", "cofem"], "threshold_lambda": [1e3, 1e6]},
        cv=3,
    ).fit(X, y)
    assert grid.best_score_ > 0.9


def _bad_operator(shape):
    return LinearOperator(
        shape,
        matvec=lambda v: np.zeros(shape[0]),
        rmatvec=lambda v: np.zeros(shape[1]),
        dtype=float,
    )


def test_bad_input():
    X, y, _ = sparse_problem(20, 30, k=3)
    sbl = SparseBayesianLearning()
    Xnan = X.copy()
    Xnan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sbl.fit(Xnan, y)
    ynan = y.copy()
    ynan[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sbl.fit(X, ynan)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        sbl.fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"y must have X.shape\[0\]=21 rows"):
        sbl.fit(_bad_operator((21, 30)), y)
    with pytest.raises(ValueError, match="n_probes"):
        SparseBayesianLearning(n_probes=0).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        SparseBayesianLearning(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="n_jobs"):
        SparseBayesianLearning(n_jobs=0).fit(X, y)
    sbl.fit(X, y)
    with pytest.raises(ValueError, match="expected 30 columns"):
        sbl.predict(_bad_operator((5, 31)))
    with pytest.raises(ValueError, match="features"):
        sbl.predict(X[:, :-1])


def _nan_operator(shape, where):
    def product(v, size, name):
        out = np.ones(size)
        if name == where:
            out[0] = np.nan if name == "rmatvec" else np.inf
        return out

    return LinearOperator(
        shape,
        matvec=lambda v: product(v, shape[0], "matvec"),
        rmatvec=lambda v: product(v, shape[1], "rmatvec"),
        dtype=float,
    )


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", ["em", "cofem"])
def test_non_finite_operator_raises(fit_intercept, solver):
    """An operator giving NaN or inf raises, instead of pruning everything."""
    y = np.random.default_rng(0).standard_normal(20)
    sbl = SparseBayesianLearning(solver=solver, fit_intercept=fit_intercept)
    with pytest.raises(ValueError, match=r"X \(a LinearOperator.*non-finite"):
        sbl.fit(_nan_operator((20, 30), "rmatvec"), y)
    if solver == "em":  # the columns come from matvec
        with pytest.raises(ValueError, match=r"X \(a LinearOperator.*non-finite"):
            sbl.fit(_nan_operator((20, 30), "matvec"), y)
    X = np.full((20, 30), 1e200)  # finite, but its squared norms overflow
    with pytest.raises(ValueError, match=r"X \(an array.*non-finite"):
        SparseBayesianLearning(solver=solver, fit_intercept=False).fit(X, y)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 25),
    p=st.integers(1, 25),
    n_tasks=st.sampled_from([None, 1, 3]),
    dtype=st.sampled_from([np.float32, np.float64]),
    solver=st.sampled_from(["em", "cofem"]),
    seed=st.integers(0, 1000),
)
def test_shapes_and_finiteness(n, p, n_tasks, dtype, solver, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(dtype)
    y = rng.standard_normal(n if n_tasks is None else (n, n_tasks)).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sbl = SparseBayesianLearning(solver=solver, max_iter=20, random_state=0)
        sbl.fit(X, y)
        mean, std = sbl.predict(X, return_std=True)
    coef_shape = (p,) if n_tasks is None else (n_tasks, p)
    assert sbl.coef_.shape == coef_shape
    assert mean.shape == std.shape == y.shape
    for value in (sbl.coef_, sbl.intercept_, sbl.alpha_, sbl.sigma_diag_, mean, std):
        assert np.all(np.isfinite(value))
    assert np.all(std > 0) and np.all(sbl.sigma_diag_ >= 0)


def test_subsampled_dct_is_the_rows_of_the_orthonormal_dct():
    from skunroll.utils import subsampled_dct

    rows = np.array([0, 2, 5, 7])
    dense = scipy.fft.dct(np.eye(8), norm="ortho", axis=0)[rows]
    op = subsampled_dct(rows, 8)
    rng = np.random.default_rng(0)
    z, u = rng.standard_normal(8), rng.standard_normal(4)
    np.testing.assert_allclose(op.matvec(z), dense @ z, atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(u), dense.T @ u, atol=1e-12)
    np.testing.assert_allclose(op.matmat(np.eye(8)), dense, atol=1e-12)
    with pytest.raises(ValueError, match="rows"):
        subsampled_dct([0, 8], 8)


def _history(changes):
    return {"coef_change": list(changes)}


def test_stall_rule_fires_only_when_the_change_stops_falling():
    from skunroll._sbl.sbl import _stalled

    opts = _Options("cofem", 10, 100, 5e-3, 1e-4, 100, True, None, 1e6, False,
                    None, 0, stall=0.1)  # fmt: skip
    # falling geometrically (by 20 % an iteration): no stall
    assert not _stalled(_history(0.009 * 0.8 ** np.arange(6)), opts)
    # flat, but above 2 tol: no stall (EM's early phase)
    assert not _stalled(_history([0.02] * 6), opts)
    # flat below 2 tol: stall; by less than 10 % over 3 iterations
    assert _stalled(_history([0.0059, 0.0056, 0.0054, 0.0054]), opts)
    assert not _stalled(_history([0.0066, 0.0056, 0.0054, 0.0059]), opts)
    # too short a history, stall_tol=0, known noise: never
    assert not _stalled(_history([0.006] * 3), opts)
    assert not _stalled(_history([0.006] * 6), dataclasses.replace(opts, stall=0.0))
    assert not _stalled(
        _history([0.006] * 6), dataclasses.replace(opts, fit_noise=False)
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stall_rule_stops_nearer_the_error_minimum(seed):
    """Issue 17: with the noise learned and p > n, ``tol`` alone stopped
    well past the error's minimum (the noise precision drifting up); the stall
    rule stops earlier with a lower error, on planted DCT problems."""
    from skunroll.utils import subsampled_dct

    n, p, k = 512, 2048, 25
    rng = np.random.default_rng(seed)
    z = np.zeros(p)
    z[rng.choice(p, k, replace=False)] = rng.standard_normal(k)
    op = subsampled_dct(np.sort(rng.choice(p, n, replace=False)), p)
    y = op.matvec(z) + 0.01 * rng.standard_normal(n)
    fits = {}
    for stall_tol in (0.1, 0.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sbl = SparseBayesianLearning(stall_tol=stall_tol, random_state=seed)
            fits[stall_tol] = sbl.fit(op, y)
    err = {s: np.linalg.norm(f.coef_ - z) / np.linalg.norm(z) for s, f in fits.items()}
    assert fits[0.1].n_iter_ < fits[0.0].n_iter_
    assert err[0.1] < 0.8 * err[0.0] and err[0.1] < 0.07
    assert fits[0.1].history_["converged"]
