"""Hand-written gradients of the unrolled auto-encoder against finite differences.

Every gradient mode x prior x likelihood x encoder (ISTA, FISTA), in both the
general kernel and the Gaussian Gram-form kernel, is compared entry by entry
with central differences of the loss in float64 (the encoder step held fixed,
as in training). Then the three gradients are checked against what their
definitions say: ``dec`` is the closed form with the codes held fixed,
``ae-lasso`` and ``ae-ls`` differ exactly by the penalty's back-propagated
gradient, and ``ae-lasso`` tends to the gradient of the lasso value function
(the envelope theorem) faster than ``dec`` as the depth grows.
"""

import numpy as np
import pytest
from conftest import finite_differences
from sklearn.linear_model import Lasso

from skunroll._dense.network import Network, forward_backward
from skunroll._parts.priors import PRIORS, resolve_groups

PRIOR_NAMES = sorted(PRIORS)
N, M, K = 4, 5, 7


def _problem(likelihood, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((K, M))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    if likelihood == "gaussian":
        X = 2.0 * rng.standard_normal((N, M))
    else:
        X = np.minimum(rng.poisson(2.0, size=(N, M)), 5).astype(float)
    step = 0.9 / np.linalg.norm(D, 2) ** 2
    if likelihood == "poisson":
        step /= 3.0
    if likelihood == "binomial":
        step /= 5.0 / 4.0
    return X, D, step


def _net(prior, accelerated, likelihood, n_unroll=6):
    groups = resolve_groups(prior, 3, K)
    return Network(
        n_unroll,
        "fista" if accelerated else "ista",
        prior,
        0.3,
        1.5,
        groups,
        likelihood,
        5.0,
    )


def _nll(X, eta, likelihood):
    if likelihood == "gaussian":
        return 0.5 * np.sum((X - eta) ** 2)
    if likelihood == "poisson":
        return np.sum(np.exp(eta) - X * eta)
    return np.sum(5.0 * np.logaddexp(0.0, eta) - X * eta)


def _loss(X, D, net, step, mode, form, codes=None):
    """The loss whose D-gradient ``mode`` computes (codes fixed for dec)."""
    if mode == "dec":
        return _nll(X, codes @ D, net.likelihood)
    res = forward_backward(X, D, net, step, "forward", form=form)
    return res.data_loss + (res.penalty if mode == "ae-lasso" else 0.0)


CASES = [
    (likelihood, form)
    for likelihood in ("gaussian", "poisson", "binomial")
    for form in (("explicit", "gram") if likelihood == "gaussian" else ("explicit",))
]


@pytest.mark.parametrize("likelihood,form", CASES)
@pytest.mark.parametrize("prior", PRIOR_NAMES)
@pytest.mark.parametrize("accelerated", [False, True], ids=["ista", "fista"])
@pytest.mark.parametrize("mode", ["dec", "ae-ls", "ae-lasso"])
def test_gradient_matchesfinite_differences(likelihood, form, prior, accelerated, mode):
    X, D, step = _problem(likelihood)
    net = _net(prior, accelerated, likelihood)
    res = forward_backward(X, D, net, step, mode, form=form)
    numeric = finite_differences(
        lambda Dp: _loss(X, Dp, net, step, mode, form, res.codes), D
    )
    assert np.linalg.norm(numeric) > 1e-3
    err = np.linalg.norm(res.grad - numeric) / np.linalg.norm(numeric)
    assert err < 1e-5, err


@pytest.mark.parametrize("prior", PRIOR_NAMES)
@pytest.mark.parametrize("accelerated", [False, True])
def test_gram_form_equals_general_kernel(prior, accelerated):
    X, D, step = _problem("gaussian", seed=3)
    net = _net(prior, accelerated, "gaussian", n_unroll=20)
    for mode in ("forward", "dec", "ae-ls", "ae-lasso"):
        a = forward_backward(X, D, net, step, mode, form="gram")
        b = forward_backward(X, D, net, step, mode, form="explicit")
        np.testing.assert_allclose(a.codes, b.codes, rtol=1e-10, atol=1e-12)
        assert a.data_loss == pytest.approx(b.data_loss, rel=1e-10)
        if mode != "forward":
            np.testing.assert_allclose(a.grad, b.grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson", "binomial"])
def test_dec_is_the_closed_form_with_codes_fixed(likelihood):
    X, D, step = _problem(likelihood)
    net = _net("l1", True, likelihood)
    res = forward_backward(X, D, net, step, "dec")
    eta = res.codes @ D
    mean = {"gaussian": eta, "poisson": np.exp(eta), "binomial": 5 / (1 + np.exp(-eta))}
    np.testing.assert_allclose(res.grad, res.codes.T @ (mean[likelihood] - X))


def test_ae_ls_and_ae_lasso_differ_by_the_penalty_only():
    X, D, step = _problem("gaussian")
    # the simplex has no penalty: the two gradients coincide
    net = _net("simplex", True, "gaussian")
    ls = forward_backward(X, D, net, step, "ae-ls").grad
    lasso = forward_backward(X, D, net, step, "ae-lasso").grad
    np.testing.assert_array_equal(ls, lasso)
    # the l1 prior: they differ by the gradient of alpha ||z_T||_1
    net = _net("l1", True, "gaussian")
    ls = forward_backward(X, D, net, step, "ae-ls").grad
    lasso = forward_backward(X, D, net, step, "ae-lasso").grad
    dec = forward_backward(X, D, net, step, "dec").grad
    assert np.linalg.norm(ls - lasso) > 1e-3 * np.linalg.norm(ls)
    assert np.linalg.norm(ls - dec) > 1e-3 * np.linalg.norm(ls)


def test_ae_lasso_tends_to_the_value_function_gradient_faster_than_dec():
    """Tolooshams & Ba (2022): ||g_dec - g*|| = O(rho^t), ||g_ae-lasso - g*||
    = O(t rho^2t), with g* the gradient of min_z lasso(z, D) (envelope theorem:
    g* = z*^T (z* D - x) at the exact lasso solution z*)."""
    rng = np.random.default_rng(0)
    n, m, k, alpha = 20, 30, 10, 0.1
    D = rng.standard_normal((k, m))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = rng.standard_normal((n, k)) * (rng.random((n, k)) < 0.3)
    X = Z @ D + 0.01 * rng.standard_normal((n, m))
    lasso = Lasso(alpha=alpha / m, fit_intercept=False, tol=1e-14, max_iter=100000)
    z_star = np.array([lasso.fit(D.T, x).coef_ for x in X])
    g_star = z_star.T @ (z_star @ D - X)
    step = 1.0 / np.linalg.norm(D, 2) ** 2
    errors = {}
    for n_unroll in (10, 40, 400):
        net = Network(
            n_unroll, "ista", "l1", alpha, alpha, resolve_groups("l1", None, k)
        )
        for mode in ("dec", "ae-lasso"):
            g = forward_backward(X, D, net, step, mode).grad
            errors[mode, n_unroll] = np.linalg.norm(g - g_star) / np.linalg.norm(g_star)
    for n_unroll in (10, 40):
        assert errors["ae-lasso", n_unroll] < errors["dec", n_unroll]
    assert errors["ae-lasso", 400] < 1e-6
    assert errors["dec", 400] < 1e-4


@pytest.mark.parametrize("accelerated", [False, True])
def test_deep_encoder_reaches_the_lasso_solution(accelerated):
    rng = np.random.default_rng(1)
    n, m, k, alpha = 15, 20, 12, 0.2
    D = rng.standard_normal((k, m))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((n, m))
    lasso = Lasso(alpha=alpha / m, fit_intercept=False, tol=1e-14, max_iter=100000)
    expected = np.array([lasso.fit(D.T, x).coef_ for x in X])
    net = Network(
        3000,
        "fista" if accelerated else "ista",
        "l1",
        alpha,
        alpha,
        resolve_groups("l1", None, k),
    )
    codes = forward_backward(X, D, net, 1 / np.linalg.norm(D, 2) ** 2, "forward").codes
    np.testing.assert_allclose(codes, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_keep_the_dtype_and_threads_do_not_change_results(dtype):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 6)).astype(dtype)
    D = rng.standard_normal((9, 6)).astype(dtype)
    net = _net("l1", True, "gaussian", n_unroll=10)
    one = forward_backward(X, D, net, 0.05, "ae-ls", n_jobs=1)
    two = forward_backward(X, D, net, 0.05, "ae-ls", n_jobs=2)
    assert one.codes.dtype == dtype
    np.testing.assert_array_equal(one.codes, two.codes)
    np.testing.assert_array_equal(one.grad, two.grad)
