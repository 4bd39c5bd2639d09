"""The optimisers of the one trainer."""

import numpy as np

from skunroll._training.optim import LineSearch

# ------------------------------------------------------------ LineSearch


def test_line_search_descends_a_quadratic_to_its_minimum():
    """Gradient descent with backtracking on f(p) = 0.5 p^T A p - b^T p:
    every accepted step decreases f, and it reaches A^-1 b."""
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    A = M @ M.T + 0.5 * np.eye(6)
    b = rng.standard_normal(6)

    def f(params):
        p = params["p"]
        return 0.5 * p @ A @ p - b @ p

    params = {"p": np.zeros(6)}
    opt = LineSearch()
    values = [f(params)]
    for _ in range(2000):
        grad = {"p": A @ params["p"] - b}
        if not opt.step(params, grad, f(params), f):
            break
        values.append(f(params))
    assert np.all(np.diff(values) <= 0)
    np.testing.assert_allclose(params["p"], np.linalg.solve(A, b), rtol=1e-5)


def test_line_search_leaves_the_parameters_when_nothing_decreases():
    params = {"p": np.array([1.0, -2.0])}
    opt = LineSearch()
    opt.lr = 0.5
    moved = opt.step(params, {"p": np.array([1.0, 1.0])}, 0.0, lambda c: 1.0)
    assert not moved
    assert opt.lr == 0.5  # a failed search leaves the next one's start alone
    np.testing.assert_array_equal(params["p"], [1.0, -2.0])
    # a zero gradient is not a step either
    assert not opt.step(params, {"p": np.zeros(2)}, 0.0, lambda c: -1.0)


def test_line_search_projects_candidates():
    params = {"p": np.array([0.5])}
    opt = LineSearch()
    seen = []

    def f(c):
        seen.append(c["p"].copy())
        return float((c["p"][0] + 3.0) ** 2)

    def project(c):
        np.maximum(c["p"], 0.0, out=c["p"])

    for _ in range(50):
        opt.step(params, {"p": 2 * (params["p"] + 3.0)}, f(params), f, project)
    assert min(v[0] for v in seen) >= 0.0
    assert params["p"][0] == 0.0  # the constrained minimum
