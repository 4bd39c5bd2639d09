"""Proximal operators and power iteration against plain NumPy references."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from skunroll._kernels import _priors as _prox
from skunroll.utils import lipschitz_constant

DTYPES = [np.float64, np.float32]


@pytest.fixture
def x():
    return np.random.default_rng(0).standard_normal(50) * 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_threshold(x, dtype):
    x = x.astype(dtype)
    out = _prox.soft_threshold(x, dtype(0.7), np.empty_like(x))
    assert out.dtype == dtype
    assert_allclose(out, np.sign(x) * np.maximum(np.abs(x) - 0.7, 0), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonneg_soft_threshold(x, dtype):
    x = x.astype(dtype)
    out = _prox.nonneg_soft_threshold(x, dtype(0.7), np.empty_like(x))
    assert_allclose(out, np.maximum(x - 0.7, 0), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hard_threshold(x, dtype):
    x = x.astype(dtype)
    out = _prox.hard_threshold(x, dtype(0.7), np.empty_like(x))
    assert_allclose(out, np.where(np.abs(x) > 0.7, x, 0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_soft_threshold(x, dtype):
    x = x.astype(dtype)
    groups = np.repeat(np.arange(10), 5)
    x[:5] *= 1e-3  # a group below the threshold is zeroed
    out = _prox.group_soft_threshold(x, dtype(1.5), groups, np.empty_like(x))
    for g in range(10):
        xg = x[groups == g]
        norm = np.linalg.norm(xg)
        expected = xg * max(1 - 1.5 / norm, 0)
        assert_allclose(out[groups == g], expected, rtol=1e-5, atol=1e-7)
    assert np.all(out[:5] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_project_simplex_is_the_projection(x, dtype):
    x = x.astype(dtype)
    p = _prox.project_simplex(x, np.empty_like(x))
    assert np.all(p >= 0)
    assert_allclose(p.sum(), 1.0, rtol=1e-5)
    # variational inequality <x - p, y - p> <= 0 for points y of the simplex
    rng = np.random.default_rng(1)
    ys = rng.dirichlet(np.ones(x.size), size=200)
    assert np.all((ys - p) @ (x - p) <= 1e-5)


def test_project_simplex_fixed_point():
    y = np.array([0.2, 0.5, 0.3])
    assert_allclose(_prox.project_simplex(y, np.empty(3)), y)


@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_box(x, dtype):
    x = x.astype(dtype)
    out = _prox.clip_box(x, dtype(-0.5), dtype(1.0), np.empty_like(x))
    assert_allclose(out, np.clip(x, -0.5, 1.0))


def test_prox_in_place(x):
    expected = np.sign(x) * np.maximum(np.abs(x) - 0.3, 0)
    y = x.copy()
    _prox.soft_threshold(y, 0.3, y)
    assert_allclose(y, expected)


@pytest.mark.parametrize("shape", [(30, 10), (10, 30), (1, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lipschitz_constant(shape, dtype):
    D = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    exact = np.linalg.norm(D.astype(np.float64), 2) ** 2
    L = lipschitz_constant(D)
    assert exact <= L <= exact * (1 + 1e-4)


def test_lipschitz_constant_is_an_upper_bound_when_not_converged():
    D = np.random.default_rng(0).standard_normal((40, 20))
    exact = np.linalg.norm(D, 2) ** 2
    assert lipschitz_constant(D, max_iter=2, tol=1e-12) >= exact


def _simplex_by_sort(x):
    """Sort-based reference (Held, Wolfe & Crowder 1974; Duchi et al. 2008)."""
    u = np.sort(x.astype(np.float64))[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, u.size + 1)
    rho = np.nonzero(u - css / k > 0)[0][-1]
    return np.maximum(x.astype(np.float64) - css[rho] / (rho + 1), 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_project_simplex_matches_sort_based(dtype):
    rng = np.random.default_rng(2)
    cases = [rng.standard_normal(n) * s for n in (1, 2, 3, 7, 50, 300)
             for s in (0.01, 1.0, 10.0)]  # fmt: skip
    cases += [np.round(rng.standard_normal(40), 1)]  # ties
    cases += [np.full(9, 0.3), np.full(9, -4.0), np.full(9, 5.0)]  # all equal
    cases += [np.zeros(5), np.array([1.0, 0.0, 0.0]), np.array([2.0, 2.0, -1.0])]
    for x in cases:
        x = x.astype(dtype)
        p = _prox.project_simplex(x, np.empty_like(x))
        assert p.dtype == dtype
        tol = 1e-6 if dtype == np.float32 else 1e-12
        assert_allclose(p, _simplex_by_sort(x), rtol=tol, atol=tol)
        # in place (out aliasing x)
        y = x.copy()
        _prox.project_simplex(y, y)
        assert_array_equal(y, p)
