"""ClusteredMultiTaskSBL: CoFEM's moments and stochastic Lanczos log-determinants
against exact ones, exact EM against SparseBayesianLearning, input kinds,
clustering, bad input."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import aslinearoperator
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from skunroll import ClusteredMultiTaskSBL, SparseBayesianLearning
from skunroll._sbl import multitask
from skunroll._sbl._krylov import block_cg, lanczos_log_quadrature
from skunroll._sbl.multitask import (
    _estep_cofem_pairs,
    _estep_exact_pairs,
    _fit_multitask,
    _MTOptions,
    _pairs,
    _Tasks,
)
from skunroll._sbl.sbl import _estep_exact
from skunroll.datasets import make_multitask_measurements


def planted(n=40, p=60, T=6, k=4, noise=0.01, observed=0.7, seed=0):
    """Two clusters of tasks (first half, second half) with disjoint supports
    of ``k`` coefficients, a shared Gaussian design and a random mask."""
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((n, p)) / np.sqrt(n)
    supports = rng.choice(p, 2 * k, replace=False).reshape(2, k)
    labels = (np.arange(T) >= T // 2).astype(int)
    X = np.zeros((T, p))
    for t in range(T):
        X[t, supports[labels[t]]] = rng.choice([-1, 1], k) * rng.uniform(1, 2, k)
    Y = Phi @ X.T + noise * rng.standard_normal((n, T))
    mask = rng.random((n, T)) < observed
    return Phi, Y, mask, X, labels


def _opts(**kw):
    base = dict(mode="clustered", n_clusters=2, solver="cofem", n_probes=10,
                max_iter=10, tol=0.0, stall=0.0, cg_tol=1e-10, cg_max_iter=500,
                fit_noise=True, noise_precision_init=None, threshold_lambda=1e6,
                n_init_iter=2, verbose=0)  # fmt: skip
    return _MTOptions(**{**base, **kw})


def _random_state(tasks, K, seed):
    rng = np.random.default_rng(seed)
    p = tasks.n_features
    lam = rng.uniform(0.5, 5.0, (K, p))
    active = rng.random((K, p)) < 0.8
    return lam, active


def test_lanczos_quadrature_is_exact_for_a_full_krylov_space():
    """CG run to the end on a 12 x 12 system: the Gauss quadrature from its
    coefficients gives v^T log(A) v exactly (against the eigendecomposition)."""
    rng = np.random.default_rng(0)
    G = rng.standard_normal((12, 12))
    A = G @ G.T + 0.5 * np.eye(12)
    Z = rng.choice([-1.0, 1.0], (3, 12))
    X = np.zeros_like(Z)
    _, _, (a, b, length) = block_cg(
        lambda P, rows: P @ A, Z, X, np.ones(12), 1e-14, 50, record=True
    )
    quad = lanczos_log_quadrature(a, b, length) * 12  # ||z||^2 = 12
    w, V = np.linalg.eigh(A)
    expected = np.einsum("ij,jk,ik->i", Z, V @ np.diag(np.log(w)) @ V.T, Z)
    np.testing.assert_allclose(quad, expected, rtol=1e-8)
    np.testing.assert_allclose(X @ A, Z, atol=1e-10)


def test_exact_estep_logdet_matches_slogdet_in_both_branches():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((1, 15))
    for a in (8, 25):  # Cholesky (a <= n) and Woodbury (a > n)
        Phi = rng.standard_normal((15, a))
        lam = rng.uniform(0.5, 3.0, a)
        beta = 7.0
        *_, logdet = _estep_exact(Phi, None, y, lam, beta, logdet=True)
        C = np.eye(15) / beta + (Phi / lam) @ Phi.T
        np.testing.assert_allclose(logdet, np.linalg.slogdet(C)[1], rtol=1e-10)


@pytest.mark.parametrize("kind", ["dense", "operator"])
def test_cofem_moments_match_exact_within_monte_carlo_error(kind):
    """Mean to the CG tolerance; variances and marginal log-likelihoods
    (log det by stochastic Lanczos quadrature) within 5 standard deviations
    of their probe estimators, computed from the exact matrices."""
    Phi, Y, mask, _, _ = planted(n=30, p=40, T=3)
    design = Phi if kind == "dense" else aslinearoperator(Phi)
    masks = mask.T.astype(np.float64)
    tasks = _Tasks(design, [np.where(mask[:, t], Y[:, t], 0) for t in range(3)],
                   masks, np.float64)  # fmt: skip
    lam, active = _random_state(tasks, 2, 0)
    beta, n_probes = 50.0, 400
    pairs = _pairs("clustered", 3, 2)
    rows = [mask[:, t] for t in range(3)]
    by_rows = _Tasks([Phi[r] for r in rows], [Y[r, t] for t, r in enumerate(rows)],
                     None, np.float64)  # fmt: skip
    exact = _estep_exact_pairs(by_rows, pairs, lam, active, beta, True)
    rng = np.random.default_rng(0)
    probes = rng.choice([-1.0, 1.0], (3, n_probes, 40))
    est = _estep_cofem_pairs(tasks, pairs, lam, active, beta, tasks.col2(),
                             tasks.rmat_y(), probes, _opts())  # fmt: skip
    np.testing.assert_allclose(est.mu, exact.mu, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(est.rss, exact.rss, rtol=1e-6)
    for j, (t, k) in enumerate(pairs):
        a = active[k]
        Phi_t = Phi[mask[:, t]][:, a]
        A = beta * Phi_t.T @ Phi_t + np.diag(lam[k, a])
        d = np.diag(A)
        At = A / np.sqrt(np.outer(d, d))  # the scaled system CG solves
        inv = np.linalg.inv(At)
        off = inv - np.diag(np.diag(inv))
        sd_std = np.sqrt(np.sum(off**2, axis=1) / n_probes) / d
        assert np.all(np.abs(est.sd[j, a] - exact.sd[j, a]) <= 5 * sd_std)
        w, V = np.linalg.eigh(At)
        logm = V @ np.diag(np.log(w)) @ V.T
        off = logm - np.diag(np.diag(logm))
        ld_std = np.sqrt(2 * np.sum(off**2) / n_probes)
        # loglik = -0.5 (... + log det A): its error is half that of log det
        assert abs(est.loglik[j] - exact.loglik[j]) <= 5 * 0.5 * ld_std + 1e-6
        assert ld_std > 0


def test_explicit_covariance_estep_equals_woodbury():
    """The benchmark's baseline (explicit a x a posterior covariances, the
    paper's EM) and the default exact E-step (Woodbury here: more active
    coefficients than measurements) give the same moments and
    log-likelihoods, and a whole fit takes the same iterations."""
    Phi, Y, mask, _, _ = planted(n=30, p=45, T=4)
    tasks = _Tasks(Phi, [np.where(mask[:, t], Y[:, t], 0) for t in range(4)],
                   mask.T.astype(np.float64), np.float64)  # fmt: skip
    lam, active = _random_state(tasks, 2, 3)
    pairs = _pairs("clustered", 4, 2)
    ref = _estep_exact_pairs(tasks, pairs, lam, active, 20.0, True)
    exp = _estep_exact_pairs(tasks, pairs, lam, active, 20.0, True, explicit=True)
    for name in ("mu", "sd", "rss", "loglik"):
        np.testing.assert_allclose(getattr(exp, name), getattr(ref, name),
                                   rtol=1e-8, atol=1e-12)  # fmt: skip
    fits = [
        _fit_multitask(
            tasks, _opts(solver=solver, max_iter=6), np.random.RandomState(0)
        )  # fmt: skip
        for solver in ("em", "explicit")
    ]
    np.testing.assert_allclose(fits[1].coef, fits[0].coef, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(fits[1].loglik, fits[0].loglik, rtol=1e-8)


@pytest.mark.parametrize("solver", ["em", "cofem"])
def test_skipping_decided_pairs_changes_nothing(solver, monkeypatch):
    """With well-separated clusters the tasks are decided within two E-steps
    and only their own cluster's pair is computed until the re-check;
    the fit is the one that computes every pair (margin infinite: nothing
    decided) to within the skipped responsibilities (< e^-50), for CoFEM too
    (its probes are drawn for every task whatever the pairs)."""
    Phi, Y, mask, _, _ = planted(n=80, p=100, T=8, k=5, seed=1, observed=0.7)
    params = dict(solver=solver, max_iter=12, tol=0, stall_tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        skip = ClusteredMultiTaskSBL(2, **params).fit(Phi, Y, mask)
        monkeypatch.setattr(multitask, "DECIDED_MARGIN", np.inf)
        full = ClusteredMultiTaskSBL(2, **params).fit(Phi, Y, mask)
    # iterations 1, 6 and 11 re-check every pair; all tasks are decided by
    # the end of the second
    n_pairs = skip.history_["n_pairs"]
    assert n_pairs[[0, 5, 10]].tolist() == [16] * 3 and n_pairs[1] < 16
    assert n_pairs[[2, 3, 4, 6, 7, 8, 9, 11]].tolist() == [8] * 8
    assert full.history_["n_pairs"].tolist() == [16] * 12
    np.testing.assert_allclose(skip.coef_, full.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(skip.responsibilities_, full.responsibilities_,
                               atol=1e-15)  # fmt: skip
    np.testing.assert_allclose(skip.lambda_, full.lambda_, rtol=1e-9)
    assert np.isnan(skip.history_["loglik"][1])
    assert np.isfinite(skip.history_["loglik"][[0, 5, 10]]).all()


def test_exact_em_one_task_is_sparse_bayesian_learning():
    """One task, modes joint and separate, exact EM: the same iterations as
    SparseBayesianLearning(solver="em", fit_intercept=False)."""
    Phi, Y, _, _, _ = planted(n=30, p=50, T=1)
    y = Y[:, 0]
    ref = SparseBayesianLearning(solver="em", fit_intercept=False, max_iter=15,
                                 tol=0, stall_tol=0).fit(Phi, y)  # fmt: skip
    for mode in ("joint", "separate", "clustered"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = ClusteredMultiTaskSBL(mode=mode, solver="em", max_iter=15,
                                        tol=0, stall_tol=0).fit(Phi, y)  # fmt: skip
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(est.alpha_, ref.alpha_, rtol=1e-7)
        np.testing.assert_allclose(est.lambda_[0], ref.lambda_, rtol=1e-7)
        assert est.coef_.shape == (50,) and est.predict(Phi).shape == (30,)


def test_shared_design_with_mask_equals_list_of_designs_and_input_kinds():
    Phi, Y, mask, _, _ = planted()
    T = Y.shape[1]
    params = dict(solver="em", max_iter=8, tol=0, random_state=0)
    shared = ClusteredMultiTaskSBL(**params).fit(Phi, Y, mask=mask)
    lists = ClusteredMultiTaskSBL(**params).fit(
        [Phi[mask[:, t]] for t in range(T)], [Y[mask[:, t], t] for t in range(T)]
    )
    np.testing.assert_allclose(lists.coef_, shared.coef_, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(lists.labels_, shared.labels_)
    # CoFEM: same probes whatever the kind of Phi, so the same fit to CG accuracy
    params = dict(solver="cofem", max_iter=6, tol=0, cg_tol=1e-10, random_state=0)
    fits = [
        ClusteredMultiTaskSBL(**params).fit(X, Y, mask=mask)
        for X in (Phi, sp.csr_matrix(Phi), aslinearoperator(Phi))
    ]
    for other in fits[1:]:
        np.testing.assert_allclose(other.coef_, fits[0].coef_, rtol=1e-6, atol=1e-9)
    pred = fits[0].predict(Phi)
    assert pred.shape == Y.shape
    np.testing.assert_allclose(fits[2].predict(aslinearoperator(Phi)), pred)
    per_task = fits[0].predict([Phi[:5]] * T)
    np.testing.assert_allclose(np.column_stack(per_task), pred[:5])


@pytest.mark.parametrize("solver", ["em", "cofem"])
def test_planted_clusters_are_recovered(solver):
    # about 21 measurements for 6 non-zeros per task: too few for one model
    # per task (errors 0.55-0.9), enough for the clusters' pooled precisions
    Phi, Y, mask, X, labels = planted(n=60, p=120, T=8, k=6, seed=1, observed=0.35)
    est = ClusteredMultiTaskSBL(2, solver=solver, random_state=0).fit(Phi, Y, mask)
    assert adjusted_rand_score(labels, est.labels_) == 1.0
    err = np.linalg.norm(est.coef_ - X) / np.linalg.norm(X)
    sep = ClusteredMultiTaskSBL(mode="separate", solver=solver, random_state=0)
    err_sep = np.linalg.norm(sep.fit(Phi, Y, mask).coef_ - X) / np.linalg.norm(X)
    assert err < 0.06 and err_sep > 0.3
    assert est.responsibilities_.shape == (8, 2) and est.lambda_.shape == (2, 120)
    np.testing.assert_allclose(est.responsibilities_.sum(axis=1), 1.0)
    assert est.log_likelihood_.shape == (8, 2) and np.isclose(est.weights_.sum(), 1)


def test_float32_stays_float32_and_inputs_are_not_modified():
    Phi, Y, mask, _, _ = planted()
    Phi32, Y32 = Phi.astype(np.float32), Y.astype(np.float32)
    Y32[~mask] = np.nan  # unobserved entries may be NaN
    copies = Phi32.copy(), Y32.copy(), mask.copy()
    est = ClusteredMultiTaskSBL(solver="cofem", max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Phi32, Y32, mask=mask)
    assert est.coef_.dtype == np.float32 and est.predict(Phi32).dtype == np.float32
    assert np.all(np.isfinite(est.coef_))
    np.testing.assert_array_equal(Phi32, copies[0])
    np.testing.assert_array_equal(Y32, copies[1])
    np.testing.assert_array_equal(mask, copies[2])


def test_bad_input_raises_naming_the_argument():
    Phi, Y, mask, _, _ = planted()
    est = ClusteredMultiTaskSBL(max_iter=2)
    bad = Phi.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Phi contains NaN"):
        est.fit(bad, Y)
    with pytest.raises(ValueError, match=r"Phi\[1\] contains NaN"):
        est.fit([Phi, bad], [Y[:, 0], Y[:, 1]])
    with pytest.raises(ValueError, match="Y has shape"):
        est.fit(Phi, Y[:-1])
    with pytest.raises(ValueError, match=r"Y\[1\] has shape"):
        est.fit([Phi, Phi], [Y[:, 0], Y[:-1, 1]])
    with pytest.raises(ValueError, match="list of 2 1-D arrays"):
        est.fit([Phi, Phi], Y)
    with pytest.raises(ValueError, match=r"Phi\[1\] has 59 columns"):
        est.fit([Phi, Phi[:, 1:]], [Y[:, 0], Y[:, 1]])
    with pytest.raises(ValueError, match="Y contains NaN"):
        est.fit(Phi, np.where(mask, np.nan, Y))
    Ynan = Y.copy()
    Ynan[0, 0] = np.nan
    with pytest.raises(ValueError, match="Y contains NaN"):
        est.fit(Phi, Ynan)
    empty = mask.copy()
    empty[:, 2] = False
    with pytest.raises(ValueError, match=r"mask leaves tasks \[2\]"):
        est.fit(Phi, Y, mask=empty)
    with pytest.raises(ValueError, match="mask must be a boolean array"):
        est.fit(Phi, Y, mask=mask[:, :2])
    with pytest.raises(ValueError, match="mask is only for a shared Phi"):
        est.fit([Phi, Phi], [Y[:, 0], Y[:, 1]], mask=mask[:, :2])
    assert not hasattr(est, "coef_")  # failed fits leave nothing behind


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(3, 12),
    p=st.integers(2, 15),
    T=st.integers(1, 4),
    mode=st.sampled_from(["clustered", "joint", "separate"]),
    solver=st.sampled_from(["em", "cofem"]),
    dtype=st.sampled_from([np.float32, np.float64]),
    masked=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_shapes_dtypes_and_finiteness(n, p, T, mode, solver, dtype, masked, seed):
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((n, p)).astype(dtype)
    Y = rng.standard_normal((n, T)).astype(dtype)
    mask = None
    if masked:
        mask = rng.random((n, T)) < 0.7
        mask[0] = True  # every task observes something
    est = ClusteredMultiTaskSBL(2, mode=mode, solver=solver, max_iter=10,
                                random_state=0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Phi, Y, mask=mask)
    K = {"separate": T, "joint": 1}.get(mode, min(2, T))
    assert est.coef_.shape == est.sigma_diag_.shape == (T, p)
    assert est.coef_.dtype == dtype and est.predict(Phi).shape == (n, T)
    assert est.lambda_.shape == (K, p) and est.responsibilities_.shape == (T, K)
    assert est.labels_.shape == (T,) and np.isfinite(est.alpha_)
    for value in (est.coef_, est.sigma_diag_, est.responsibilities_):
        assert np.all(np.isfinite(value))


def _drift_history(changes, alpha):
    return {"coef_change": list(changes), "alpha": list(alpha)}


def test_drift_rule_fires_only_on_a_plateau_with_rising_noise_precision():
    opts = SimpleNamespace(fit_noise=True, stall=0.1, tol=5e-3)
    rising = [500, 600, 700, 800, 900]
    plateau = [0.2, 0.0137, 0.0126, 0.0123, 0.0124]  # p = 4,096 analogue, it 3-7
    assert multitask._drifting(_drift_history(plateau, rising), opts)
    # the change still falls (more than 10 % over 3 iterations): keep going
    falling = [0.2, 0.02, 0.015, 0.012, 0.0089]
    assert not multitask._drifting(_drift_history(falling, rising), opts)
    # a plateau above DRIFT_LEVEL tol = 0.02 (the fast phase of planted())
    high = [0.36, 0.12, 0.118, 0.112, 0.105]
    assert not multitask._drifting(_drift_history(high, rising), opts)
    # the noise precision did not rise at every step: not the drift
    flat = [500, 600, 590, 800, 900]
    assert not multitask._drifting(_drift_history(plateau, flat), opts)
    # too short a history, the noise fixed, or the rule disabled
    assert not multitask._drifting(_drift_history(plateau[:3], rising[:3]), opts)
    for off in (SimpleNamespace(fit_noise=False, stall=0.1, tol=5e-3),
                SimpleNamespace(fit_noise=True, stall=0.0, tol=5e-3)):  # fmt: skip
        assert not multitask._drifting(_drift_history(plateau, rising), off)


def test_cofem_stops_at_the_start_of_the_noise_drift():
    """Issue 17 regression, a small analogue of the p = 65,536 scale run (same
    column norms² 1/8, 0 dB per measurement): n_t = 128 of p = 1,024 DCT rows
    per task, 3 non-zeros per cluster, noise 0.05. With the noise learned, the
    noise precision rises past the true 400 at every iteration, nothing is
    pruned and the error grows (0.26 after the first iteration, 0.51 after 40,
    exact EM alike); the change settles at 0.012-0.016, so neither ``tol`` nor
    the stall rule's ``2 tol`` stopped it before the drift rule."""
    op, Y, mask, X, labels, _ = make_multitask_measurements(
        1024, 512, 20, 3, observed=0.25, noise=0.05, random_state=0
    )
    est = ClusteredMultiTaskSBL(2, solver="cofem", random_state=0)
    est.fit(op, Y, mask=mask)
    h = est.history_
    assert h["converged"] and est.n_iter_ <= 10
    assert adjusted_rand_score(labels, est.labels_) == 1.0
    # stopped by the drift rule: the change on a plateau above 2 tol
    assert h["coef_change"][-1] > 2 * est.tol
    assert np.all(np.diff(h["alpha"]) > 0)
    err = np.linalg.norm(est.coef_ - X) / np.linalg.norm(X)
    assert err < 0.35, err
    assert est.alpha_ < 4 * 400  # 6,069 after 40 iterations without the rule
