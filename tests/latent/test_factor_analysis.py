"""UnrolledFactorAnalysis: the exact likelihood against scipy, the unrolled
solver against the exact posterior, the hand-written gradients against
finite differences, planted recovery, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import subspace_angles
from scipy.stats import multivariate_normal

from skunroll import UnrolledFactorAnalysis
from skunroll._kernels._unrolled_cg import pcg_forward
from skunroll._latent._network import (
    draw_probes,
    exact_posterior,
    exact_sums,
    preconditioner,
    rademacher,
    unrolled_chunk,
    unrolled_sums,
)


def _small(seed=0, n=7, p=9, q=3, missing=0.3):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, q))
    m = 0.1 * rng.standard_normal(p)
    log_psi = 0.3 * rng.standard_normal(p)
    X = 2 * rng.standard_normal((n, p))
    M = (rng.random((n, p)) > missing).astype(float)
    M[0] = 1.0
    M[1, : p // 2] = 0.0
    return rng, W, m, log_psi, X, M


def _planted(n, p, q, missing, seed, n_test=500):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((p, q))
    psi = rng.uniform(0.2, 1.0, p)
    mu = 3 + rng.standard_normal(p)

    def draw(m):
        return (
            rng.standard_normal((m, q)) @ W.T
            + mu
            + rng.standard_normal((m, p)) * np.sqrt(psi)
        )

    X, X_test = draw(n), draw(n_test)
    Xm = X.copy()
    Xm[rng.random(X.shape) < missing] = np.nan
    truth = multivariate_normal(mu, W @ W.T + np.diag(psi))
    return X, Xm, X_test, W, truth


def _fd(f, arrays, name, eps=1e-6):
    """Central differences of ``f(**arrays)`` with respect to ``arrays[name]``."""
    arr = arrays[name]
    out = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        hi, lo = arr.copy(), arr.copy()
        hi[idx] += eps
        lo[idx] -= eps
        out[idx] = (f(**{**arrays, name: hi}) - f(**{**arrays, name: lo})) / (2 * eps)
    return out


# ---------------------------------------------------------------- exact


def test_score_samples_match_scipy_on_observed_rows():
    X, Xm, _, _, _ = _planted(300, 8, 2, 0.3, seed=1)
    fa = UnrolledFactorAnalysis(2, max_iter=3, tol=0, random_state=0).fit(Xm)
    Xq = Xm[:40]
    got = fa.score_samples(Xq)
    cov = fa.get_covariance()
    ref = []
    for x in Xq:
        o = ~np.isnan(x)
        ref.append(multivariate_normal(fa.mean_[o], cov[np.ix_(o, o)]).logpdf(x[o]))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
    assert fa.score(Xq) == pytest.approx(np.mean(ref))
    # fully observed rows: the complement of the missing rows forms the precision
    full = fa.score_samples(X[:5])
    ref_full = multivariate_normal(fa.mean_, cov).logpdf(X[:5])
    np.testing.assert_allclose(full, ref_full, rtol=1e-10)


def test_transform_is_the_exact_posterior_mean():
    _, Xm, _, _, _ = _planted(200, 6, 2, 0.3, seed=2)
    fa = UnrolledFactorAnalysis(2, max_iter=2, tol=0, random_state=0).fit(Xm)
    Z = fa.transform(Xm[:10])
    W, psi = fa.components_.T, fa.noise_variance_
    for x, z in zip(Xm[:10], Z, strict=True):
        o = ~np.isnan(x)
        A = np.eye(2) + W[o].T @ (W[o] / psi[o, None])
        b = W[o].T @ ((x[o] - fa.mean_[o]) / psi[o])
        np.testing.assert_allclose(z, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)


def test_exact_gradient_matches_finite_differences():
    _, W, m, log_psi, X, M = _small()

    def f(W, m, log_psi):
        Xt = (X - m) * M
        return exact_posterior(Xt, M, W, log_psi)[1].sum()

    value, grads = exact_sums((X - m) * M, M, W, log_psi)
    arrays = {"W": W, "m": m, "log_psi": log_psi}
    assert value == pytest.approx(f(**arrays), rel=1e-12)
    for name in arrays:
        np.testing.assert_allclose(
            grads[name], _fd(f, arrays, name), rtol=1e-6, atol=1e-6
        )


# ---------------------------------------------------------------- unrolled


def _converged_chunk(precondition=None):
    """The unrolled (or preconditioned) solver run to convergence on a small
    problem with 4,000 probes; its means must be the exact posterior means and
    the probes' solutions must have the exact posterior covariance within 5
    Monte-Carlo standard errors. Returns the solver's output and its
    arguments."""
    rng, W, m, log_psi, X, M = _small(seed=3, n=4)
    q, K = W.shape[1], 4000
    Xt = (X - m) * M
    mu, _, sigma, _ = exact_posterior(Xt, M, W, log_psi, want_sigma=True)
    n, p = X.shape
    S = draw_probes(
        W, log_psi, M, rng.standard_normal((n, K, p)), rng.standard_normal((n, K, q))
    )
    args = (Xt, M, W, log_psi, S, q + 3, False)
    out = unrolled_chunk(*args, precondition)
    np.testing.assert_allclose(out["mu"].T, mu, rtol=1e-10, atol=1e-12)
    for i in range(n):
        s = out["sigma"][:, i, :]
        est = s @ s.T / K
        # Monte Carlo standard error of a Wishart entry: sqrt((S_kk S_ll + S_kl^2) / K)
        d = np.diag(sigma[i])
        se = np.sqrt((np.outer(d, d) + sigma[i] ** 2) / K)
        assert np.all(np.abs(est - sigma[i]) < 5 * se)
    return out, args


def test_unrolled_solver_reaches_the_exact_posterior_moments():
    _converged_chunk()


@pytest.mark.parametrize("n_steps", [1, 2, 3, 6])
def test_network_gradient_matches_finite_differences_of_the_surrogate(n_steps):
    rng, W, m, log_psi, X, M = _small(seed=4)
    n, p = X.shape
    q, K = W.shape[1], 2
    S = draw_probes(
        W, log_psi, M, rng.standard_normal((n, K, p)), rng.standard_normal((n, K, q))
    )

    def f(W, m, log_psi):  # the probes held fixed
        return unrolled_chunk((X - m) * M, M, W, log_psi, S, n_steps, False)["value"]

    out = unrolled_chunk((X - m) * M, M, W, log_psi, S, n_steps, True)
    arrays = {"W": W, "m": m, "log_psi": log_psi}
    assert out["value"] == pytest.approx(f(**arrays), rel=1e-12)
    for name in arrays:
        np.testing.assert_allclose(
            out[name], _fd(f, arrays, name), rtol=1e-6, atol=1e-6
        )


@pytest.mark.parametrize("precondition", [None, "mean"])
def test_float32_chunk_agrees_with_float64(precondition):
    """The output gradient's float32 path (its fused element-wise pass and
    its one product for the loadings' gradient) against float64 on the same
    data and probes."""
    rng, W, m, log_psi, X, M = _small(seed=8, n=40, p=30, q=4)
    n, p = X.shape
    q, K = W.shape[1], 2
    a = rademacher(rng, (n, K, p), np.float64)
    e = rademacher(rng, (n, K, q), np.float64)
    S = draw_probes(W, log_psi, M, a, e)
    Xt = (X - m) * M
    out64 = unrolled_chunk(Xt, M, W, log_psi, S, 3, False, precondition)
    f32 = (Xt.astype(np.float32), M.astype(np.float32))
    out32 = unrolled_chunk(
        *f32, W, log_psi, S.astype(np.float32), 3, False, precondition
    )
    assert out32["value"] == pytest.approx(out64["value"], rel=1e-5)
    for name in ("W", "m", "log_psi"):
        assert out32[name].dtype == np.float64
        scale = np.max(np.abs(out64[name]))
        np.testing.assert_allclose(out32[name], out64[name], atol=1e-4 * scale)


def test_gradients_agree_once_the_solver_has_converged():
    """With as many steps as factors, CG is exact: network = output, and with
    many probes both are the exact gradient within Monte Carlo error."""
    rng, W, m, log_psi, X, M = _small(seed=5, n=20)
    n, p = X.shape
    q, K = W.shape[1], 3000
    Xt = (X - m) * M
    S = draw_probes(
        W, log_psi, M, rng.standard_normal((n, K, p)), rng.standard_normal((n, K, q))
    )
    _, out = unrolled_sums(Xt, M, W, log_psi, S, q + 2, False)
    _, net = unrolled_sums(Xt, M, W, log_psi, S, q + 2, True)
    _, exact = exact_sums(Xt, M, W, log_psi)
    for name in out:
        np.testing.assert_allclose(net[name], out[name], rtol=1e-8, atol=1e-8)
        scale = np.max(np.abs(exact[name]))
        assert np.max(np.abs(out[name] - exact[name])) < 0.05 * scale


def test_network_gradient_is_closer_to_the_exact_one_after_few_steps():
    """The network gradient's error is a product of two solver errors: far
    smaller for the mean's part (the gradient of the mean ``m``), smaller
    for the loadings (whose error also has the probes' part)."""
    rng = np.random.default_rng(6)
    n, p, q, K = 30, 40, 8, 400
    W = rng.standard_normal((p, q)) * np.linspace(1, 0.2, q)
    log_psi = np.zeros(p)
    X = rng.standard_normal((n, q)) @ W.T + rng.standard_normal((n, p))
    M = (rng.random((n, p)) > 0.2).astype(float)
    Xt = X * M
    S = draw_probes(
        W, log_psi, M, rng.standard_normal((n, K, p)), rng.standard_normal((n, K, q))
    )
    _, exact = exact_sums(Xt, M, W, log_psi)
    _, out = unrolled_sums(Xt, M, W, log_psi, S, 5, False)
    _, net = unrolled_sums(Xt, M, W, log_psi, S, 5, True)

    def err(g, name):
        return np.linalg.norm(g[name] - exact[name])

    assert err(net, "m") < 0.2 * err(out, "m")
    assert err(net, "W") < 0.7 * err(out, "W")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sign_probes_have_the_posterior_precision_as_covariance(dtype):
    """The estimator's probes: random signs in ``draw_probes`` give ``E[s
    s^T] = A_i`` (all the gradients use), within Monte Carlo error."""
    rng, W, _, log_psi, _, M = _small(seed=14, n=3)
    n, p = M.shape
    q, K = W.shape[1], 20000
    signs = rademacher(np.random.RandomState(0), (n, K, p), dtype)
    assert signs.dtype == dtype and set(np.unique(signs)) == {-1.0, 1.0}
    e = rademacher(np.random.RandomState(1), (n, K, q), dtype)
    S = draw_probes(W, log_psi, M.astype(dtype), signs, e).astype(np.float64)
    for i in range(n):
        A = np.eye(q) + W.T @ (W * (M[i] * np.exp(-log_psi))[:, None])
        est = S[:, i, :] @ S[:, i, :].T / K
        # the Gaussian's standard error, loose for signs (smaller fourth moments)
        d = np.diag(A)
        se = np.sqrt((np.outer(d, d) + A**2) / K)
        assert np.all(np.abs(est - A) < 5 * se)
        assert np.all(np.abs(S[:, i, :].mean(axis=1)) < 5 * np.sqrt(d / K))


# ---------------------------------------------------------------- preconditioned


@pytest.mark.parametrize("kind", ["mean", "full"])
def test_preconditioner_is_the_inverse_of_the_mean_or_full_precision(kind):
    _, W, _, log_psi, _, M = _small(seed=11)
    d = (M * np.exp(-log_psi)).T  # (p, n)
    d_bar = d.mean(axis=1) if kind == "mean" else np.exp(-log_psi)
    A = np.eye(W.shape[1]) + W.T @ np.diag(d_bar) @ W
    got = preconditioner(W, d if kind == "mean" else d_bar, kind)
    np.testing.assert_allclose(got, np.linalg.inv(A), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["mean", "full"])
def test_preconditioned_solver_reaches_the_exact_posterior_moments(kind):
    """Converged, PCG gives the exact means, and the probes' solutions keep
    the covariance ``E[sigma sigma^T] = A_i^{-1}`` (same right-hand sides)."""
    out, args = _converged_chunk(kind)
    plain = unrolled_chunk(*args)
    np.testing.assert_allclose(out["sigma"], plain["sigma"], rtol=1e-8, atol=1e-10)
    # the output gradient is the same function of the (converged) outputs
    for name in ("value", "W", "m", "log_psi"):
        np.testing.assert_allclose(out[name], plain[name], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pcg_kernel_returns_W_times_its_solutions(dtype):
    rng, W, m, log_psi, X, M = _small(seed=12, n=5)
    p, q = W.shape
    r = 2
    d = np.ascontiguousarray((M * np.exp(-log_psi)).T, dtype=dtype)
    B = rng.standard_normal((q, M.shape[0] * r)).astype(dtype)
    Pinv = preconditioner(W, d, "mean").astype(dtype)
    W_ = W.astype(dtype)
    tol = float(np.finfo(dtype).eps) ** 2
    for n_steps in (1, 2, q):
        D = np.repeat(d, r, axis=1)
        X_, U = pcg_forward(W_, np.ascontiguousarray(W_.T), D, B, Pinv, n_steps, tol)
        assert X_.dtype == dtype and U.dtype == dtype
        rtol = 1e-4 if dtype == np.float32 else 1e-10
        np.testing.assert_allclose(U, W_ @ X_, rtol=rtol, atol=rtol)
    # q steps solve every system
    for c in range(B.shape[1]):
        i = c // r
        A = np.eye(q) + W.T @ (W * d[:, i, None].astype(float))
        np.testing.assert_allclose(
            X_[:, c], np.linalg.solve(A, B[:, c].astype(float)), rtol=rtol, atol=rtol
        )


def test_preconditioning_makes_few_steps_far_more_accurate():
    """At 20 % missing, the chunk's mean precision is close to every
    sample's: two preconditioned steps beat five plain ones."""
    rng = np.random.default_rng(13)
    n, p, q = 64, 120, 20
    W = rng.standard_normal((p, q)) * np.linspace(1, 0.3, q)
    log_psi = np.log(rng.uniform(0.5, 2.0, p))
    M = (rng.random((n, p)) > 0.2).astype(float)
    X = (rng.standard_normal((n, q)) @ W.T + rng.standard_normal((n, p))) * M
    mu = exact_posterior(X, M, W, log_psi)[0]
    S = draw_probes(
        W, log_psi, M, rng.standard_normal((n, 1, p)), rng.standard_normal((n, 1, q))
    )

    def err(n_steps, kind):
        out = unrolled_chunk(X, M, W, log_psi, S, n_steps, False, kind)
        return np.linalg.norm(out["mu"].T - mu) / np.linalg.norm(mu)

    assert err(2, "mean") < 0.7 * err(5, None)
    assert err(3, "mean") < 0.2 * err(3, None)


# ---------------------------------------------------------------- estimator


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "exact"},
        {"gradient": "output", "n_solver_steps": 3},
        {"gradient": "output", "n_solver_steps": 2, "preconditioner": "full"},
        {"gradient": "output", "n_solver_steps": 3, "preconditioner": None},
        {"gradient": "network", "n_solver_steps": 3},
    ],
)
def test_planted_recovery(params):
    _, Xm, X_test, W, truth = _planted(2000, 20, 3, 0.2, seed=7)
    fa = UnrolledFactorAnalysis(3, max_iter=20, tol=0, random_state=0, **params).fit(Xm)
    angle = np.rad2deg(subspace_angles(fa.components_.T, W).max())
    assert angle < 5
    # within 1 % of the planted model's own held-out log-likelihood
    reference = truth.logpdf(X_test).mean()
    assert fa.score(X_test) > reference - 0.01 * abs(reference)
    np.testing.assert_allclose(fa.mean_, np.nanmean(Xm, axis=0), atol=0.2)


def test_float32_stays_float32_and_agrees_with_float64():
    _, Xm, X_test, _, _ = _planted(400, 10, 2, 0.2, seed=8)
    kw = {"max_iter": 5, "tol": 0, "random_state": 0}
    fa64 = UnrolledFactorAnalysis(2, **kw).fit(Xm)
    fa32 = UnrolledFactorAnalysis(2, **kw).fit(Xm.astype(np.float32))
    Z = fa32.transform(X_test.astype(np.float32))
    assert Z.dtype == np.float32
    assert fa32.score(X_test) == pytest.approx(fa64.score(X_test), rel=1e-3)


def test_results_do_not_depend_on_n_jobs_and_input_is_untouched():
    _, Xm, _, _, _ = _planted(300, 8, 2, 0.2, seed=9)
    before = Xm.copy()
    kw = {"max_iter": 2, "tol": 0, "random_state": 0}
    a = UnrolledFactorAnalysis(2, n_jobs=1, **kw).fit(Xm)
    b = UnrolledFactorAnalysis(2, n_jobs=2, **kw).fit(Xm)
    np.testing.assert_array_equal(a.components_, b.components_)
    np.testing.assert_array_equal(Xm, before)


def test_noise_variances_stay_above_the_floor():
    rng = np.random.default_rng(10)
    X = rng.standard_normal((200, 2)) @ rng.standard_normal((2, 6))
    X[:, 0] = X[:, 1] * 10  # a column explained without noise
    fa = UnrolledFactorAnalysis(
        2, max_iter=20, tol=0, learning_rate=0.1, noise_floor=1e-2, random_state=0
    ).fit(X)
    assert np.all(fa.noise_variance_ >= 1e-2 * X.var(axis=0) * (1 - 1e-9))
    assert np.all(np.isfinite(fa.components_))


def test_bad_input():
    X = np.random.default_rng(0).standard_normal((20, 5))
    fa = UnrolledFactorAnalysis(2, max_iter=1)
    bad = X.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="X has rows with every entry missing"):
        fa.fit(bad)
    bad = X.copy()
    bad[:, 2] = np.nan
    with pytest.raises(ValueError, match="X has columns with every entry missing"):
        fa.fit(bad)
    bad = X.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="X contains infinity"):
        fa.fit(bad)
    with pytest.raises(ValueError, match="n_components=5 must be less"):
        UnrolledFactorAnalysis(5).fit(X)
    with pytest.raises(ValueError, match="preconditioner='mean' needs gradient"):
        UnrolledFactorAnalysis(2, preconditioner="mean").fit(X)
    assert not hasattr(fa, "components_")
    fitted = UnrolledFactorAnalysis(2, max_iter=1, tol=0).fit(X)
    bad = X.copy()
    bad[0, 0] = -np.inf
    with pytest.raises(ValueError, match="X contains infinity"):
        fitted.score(bad)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 30),
    p=st.integers(2, 7),
    missing=st.floats(0.0, 0.6),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 1000),
)
def test_any_shape_with_missing_entries_fits_finitely(n, p, missing, dtype, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(dtype)
    X[rng.random(X.shape) < missing] = np.nan
    X[:, 0] = rng.standard_normal(n)  # no all-missing row or column
    X[0] = rng.standard_normal(p)
    fa = UnrolledFactorAnalysis(1, max_iter=2, tol=0, random_state=0).fit(X)
    Z = fa.transform(X)
    assert Z.shape == (n, 1) and Z.dtype == dtype
    assert np.all(np.isfinite(fa.score_samples(X)))
    assert np.all(fa.noise_variance_ > 0)
