"""The archetypal parametrisation: exact projections, the pull-back of the
D-gradient against finite differences, candidates and initial weights."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import minimize

from skunroll._kernels._archetypal import project_simplex_rows
from skunroll._parts import archetypal


def _sort_projection(v):
    """Held, Wolfe & Crowder's sort-based projection onto the simplex."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1), 0.0)


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 6), k=st.integers(1, 12), scale=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_simplex_rows_is_the_exact_projection(n, k, scale, seed):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((n, k))
    out = project_simplex_rows(W.copy())
    for row, p in zip(W, out, strict=True):
        assert_allclose(p, _sort_projection(row), atol=1e-12 * max(1.0, scale))
    assert out.min() >= 0
    assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)
    # idempotent, up to the rounding of the first projection's row sums (at
    # scale 89.5 they are 1 - 3.6e-15 and the second moves entries 1.8e-15)
    assert_allclose(project_simplex_rows(out.copy()), out, atol=1e-12)
    out32 = project_simplex_rows(W.astype(np.float32))
    assert out32.dtype == np.float32
    assert_allclose(out32, out, atol=1e-5 * max(1.0, scale))


def test_simplex_projection_against_scipy_minimize():
    rng = np.random.default_rng(0)
    for _ in range(5):
        v = rng.standard_normal(5)
        res = minimize(
            lambda w, v=v: 0.5 * np.sum((w - v) ** 2),
            np.full(5, 0.2),
            jac=lambda w, v=v: w - v,
            bounds=[(0, None)] * 5,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
            method="SLSQP",
            options={"ftol": 1e-14, "maxiter": 500},
        )
        assert_allclose(project_simplex_rows(v[None].copy())[0], res.x, atol=1e-6)


def test_project_balls_and_zero_delta():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 6))
    L = rng.standard_normal((4, 5)) * np.array([[0.01], [1.0], [3.0], [0.2]])
    before = L.copy()
    archetypal.project(W, L, 0.5)
    norms = np.linalg.norm(before, axis=1)
    expected = before * np.minimum(1.0, 0.5 / norms)[:, None]
    assert_allclose(L, expected)
    archetypal.project(W, L, 0.0)
    assert np.all(L == 0)
    assert_allclose(W.sum(axis=1), 1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pull_back_against_finite_differences(dtype):
    """d/dW and d/dLambda of 0.5 ||X - Z normalise(W C + Lambda)||^2 from its
    D-gradient -Z^T (X - Z D)."""
    rng = np.random.default_rng(0)
    k, p, m, n = 3, 5, 4, 7
    C = rng.standard_normal((p, m))
    W = rng.random((k, p))
    L = 0.3 * rng.standard_normal((k, m))
    Z = rng.standard_normal((n, k))
    X = rng.standard_normal((n, m))

    def loss(W, L):
        U = W @ C + L
        D = U / np.linalg.norm(U, axis=1, keepdims=True)
        return 0.5 * np.sum((X - Z @ D) ** 2)

    D = np.empty((k, m), dtype=dtype)
    norms = archetypal.fuse(W.astype(dtype), C.astype(dtype), L.astype(dtype), D)
    grad_D = -Z.T @ (X - Z @ D.astype(np.float64))
    grad_W, grad_L = archetypal.pull_back(grad_D, D, norms, C.astype(dtype))
    eps = 1e-6
    fd_W = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        E = np.zeros_like(W)
        E[idx] = eps
        fd_W[idx] = (loss(W + E, L) - loss(W - E, L)) / (2 * eps)
    fd_L = np.zeros_like(L)
    for idx in np.ndindex(L.shape):
        E = np.zeros_like(L)
        E[idx] = eps
        fd_L[idx] = (loss(W, L + E) - loss(W, L - E)) / (2 * eps)
    rtol = 1e-6 if dtype == np.float64 else 2e-3
    scale = max(np.abs(fd_W).max(), np.abs(fd_L).max())
    assert_allclose(grad_W, fd_W, atol=rtol * scale)
    assert_allclose(grad_L, fd_L, atol=rtol * scale)


def test_candidates_initial_weights_and_redraw():
    rng = np.random.RandomState(0)
    X = np.abs(np.random.default_rng(0).standard_normal((300, 6))) + 1.0
    params, C = archetypal.initial_parameters(X, 5, 20, "kmeans", rng)
    assert C.shape == (20, 6)
    assert_allclose(np.linalg.norm(C, axis=1), 1.0)
    W = params["W"]
    assert np.all(np.count_nonzero(W, axis=1) == 1)  # distinct candidates
    assert len(set(np.argmax(W, axis=1))) == 5
    assert_allclose(params["D"], C[np.argmax(W, axis=1)])
    # fewer candidates than atoms: distinct atoms still
    params, C = archetypal.initial_parameters(X, 5, 2, "kmeans", rng)
    assert_allclose(params["W"].sum(axis=1), 1.0)
    assert len({tuple(np.round(d, 8)) for d in params["D"]}) == 5
    # the subsample itself when it is no larger than n_candidates
    params, C = archetypal.initial_parameters(X[:4], 2, 4, "kmeans", rng)
    norms = np.linalg.norm(X[:4], axis=1, keepdims=True)
    assert {tuple(np.round(c, 8)) for c in C} == {
        tuple(np.round(x, 8)) for x in X[:4] / norms
    }
    # re-drawn atoms sit on the candidate closest to their target
    archetypal.redraw(params, C, np.array([1]), -C[2:3] + 2 * C[3:4])
    assert params["W"][1, 3] == 1.0
    assert_allclose(params["D"][1], C[3])
    with pytest.raises(ValueError, match="n_candidates=301"):
        archetypal.initial_parameters(X, 5, 301, "kmeans", rng)


def test_cancelling_candidates_restart_on_a_candidate():
    C = np.array([[1.0, 0.0], [-1.0, 0.0]])
    params = {
        "W": np.array([[0.5, 0.5]]),
        "Lambda": np.zeros((1, 2)),
        "D": np.empty((1, 2)),
    }
    archetypal.refuse(params, C)
    assert_allclose(np.abs(params["D"]), [[1.0, 0.0]])
    assert params["norms"][0] == 1.0


def test_copies_are_the_later_of_coherent_pairs():
    D = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.995, 0.0999], [0.6, 0.8]])
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    assert archetypal.copies(D).tolist() == [2, 3]
