"""One forward pass: ``sparse_encode(algorithm="unrolled")``,
``UnrolledSparseCoder`` and the trained networks' ``transform`` all run the
dense network's kernel (``unrolled_gram_weighted_chunk``). These tests tie them to each
other and to an independent NumPy FISTA, and tie the network to the convergent
ISTA/FISTA solver of ``sparse_encode`` (``fista_gram``): ISTA is the same in
both, and FISTA differs only by the momentum schedule. The solver follows Beck
& Teboulle (no momentum before the third step: ``y_2 = z_1``); the networks
use the same sequence one step earlier (``y_1 = z_1 + b_1 (z_1 - z_0)``), which
their trained dictionaries and the benchmark figures were measured with."""

import numpy as np
import pytest

import skunroll._parts.encoders as encoders
from skunroll import UnrolledDictionaryLearning, UnrolledSparseCoder, sparse_encode
from skunroll._dense.network import Network, forward_backward
from skunroll._parts.priors import resolve_groups
from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.utils import _lipschitz_from_gram, _smaller_gram

ALPHA = 0.1
_NETWORK_MOMENTUM = encoders.fista_momentum


@pytest.fixture(scope="module")
def problem():
    D = make_dictionary(40, 20, random_state=0)
    X, D, _ = make_sparse_coded_data(300, D, n_nonzero_coefs=3, random_state=0)
    return X, D


def _step(D):
    return 1.0 / _lipschitz_from_gram(_smaller_gram(D))


def _network_codes(X, D, n_unroll, accelerated, positive, step=None):
    net = Network(
        n_unroll=n_unroll,
        encoder="fista" if accelerated else "ista",
        prior="nonneg_l1" if positive else "l1",
        alpha=ALPHA,
        negative_alpha=ALPHA,
        groups=resolve_groups("l1", None, D.shape[0]),
    )
    step = _step(D) if step is None else step
    return forward_backward(X, D, net, step, "forward").codes


def _numpy_fista(X, D, n_unroll, step, positive, init):
    """The networks' recursion written with NumPy, from ``z_0 = z_{-1} = init``."""
    betas = _NETWORK_MOMENTUM(n_unroll, True)
    z = z_prev = init.astype(np.float64)
    for t in range(n_unroll):
        y = z + betas[t] * (z - z_prev)
        u = y - step * (y @ D @ D.T - X @ D.T)
        thresh = step * ALPHA
        nxt = (
            np.maximum(u - thresh, 0)
            if positive
            else np.sign(u) * np.maximum(np.abs(u) - thresh, 0)
        )
        z_prev, z = z, nxt
    return z


def _beck_teboulle(n_unroll, accelerated):
    """The network's momentum sequence delayed by one step."""
    betas = np.zeros(n_unroll)
    betas[1:] = _NETWORK_MOMENTUM(n_unroll, accelerated)[: n_unroll - 1]
    return betas


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("n_unroll", [1, 2, 7, 30])
def test_ista_is_the_same_in_the_solver_and_the_network(problem, positive, n_unroll):
    X, D = problem
    codes = sparse_encode(
        X, D, algorithm="ista", alpha=ALPHA, max_iter=n_unroll, tol=0,
        positive=positive,
    )  # fmt: skip
    net = _network_codes(X, D, n_unroll, False, positive)
    np.testing.assert_allclose(codes, net, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("n_unroll", [1, 2, 7, 30])
def test_fista_solver_and_network_differ_only_by_the_momentum_schedule(
    problem, positive, n_unroll, monkeypatch
):
    X, D = problem
    codes = sparse_encode(
        X, D, algorithm="fista", alpha=ALPHA, max_iter=n_unroll, tol=0,
        positive=positive,
    )  # fmt: skip
    monkeypatch.setattr(encoders, "fista_momentum", _beck_teboulle)
    net = _network_codes(X, D, n_unroll, True, positive)
    np.testing.assert_allclose(codes, net, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_encode_and_coder_run_the_network(problem, positive, dtype):
    """Bit for bit: the same kernel, the same step, the same chunks."""
    X, D = problem
    X, D = X.astype(dtype), D.astype(dtype)
    codes = sparse_encode(
        X, D, algorithm="unrolled", alpha=ALPHA, n_unroll=25, positive=positive
    )
    coder = UnrolledSparseCoder(
        D, n_unroll=25, transform_alpha=ALPHA, positive_code=positive
    ).transform(X)
    net = _network_codes(X, D, 25, True, positive)
    assert codes.dtype == coder.dtype == net.dtype == dtype
    np.testing.assert_array_equal(codes, coder)
    np.testing.assert_array_equal(codes, net)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("n_components", [40, 100])  # Gram form, explicit form
def test_unrolled_forward_pass_matches_numpy_fista(positive, n_components):
    """Against an independent NumPy FISTA, from zero and from a warm start,
    in the Gram form and in the explicit form (more than 2x atoms)."""
    D = make_dictionary(n_components, 20, random_state=1)
    X, D, _ = make_sparse_coded_data(200, D, n_nonzero_coefs=3, random_state=1)
    step = _step(D)
    for init in (np.zeros((200, n_components)), 0.1 * np.abs(X @ D.T)):
        codes = sparse_encode(
            X, D, algorithm="unrolled", alpha=ALPHA, n_unroll=12,
            positive=positive, init=init,
        )  # fmt: skip
        expected = _numpy_fista(X, D, 12, step, positive, init)
        np.testing.assert_allclose(codes, expected, rtol=1e-7, atol=1e-9)


def test_coder_and_trained_network_transform_agree(problem):
    """The trained estimator's ``transform`` and ``UnrolledSparseCoder`` on its
    dictionary (FISTA and ISTA encoders)."""
    X, D = problem
    for encoder in ("fista", "ista"):
        dl = UnrolledDictionaryLearning(
            40, alpha=ALPHA, n_unroll=20, encoder=encoder, max_iter=1, tol=0,
            random_state=0,
        ).fit(X)  # fmt: skip
        coder = UnrolledSparseCoder(
            dl.components_,
            transform_algorithm="unrolled" if encoder == "fista" else "ista",
            n_unroll=20, transform_alpha=ALPHA, transform_max_iter=20,
            transform_tol=0,
        )  # fmt: skip
        # the steps agree to the power iteration's tolerance (1e-6, relative)
        np.testing.assert_allclose(coder.transform(X), dl.transform(X), atol=1e-5)
