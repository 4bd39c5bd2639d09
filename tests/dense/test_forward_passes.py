"""The unrolled ISTA/FISTA forward pass exists in two kernels: ``fista_gram``
(``sparse_encode``'s "unrolled", "fista" and "ista") and ``unrolled_gram_chunk``
(the trained networks' encoder). These tests tie them: the same step and the
same prox give the same codes, and their only difference is the momentum
schedule. ``fista_gram`` follows Beck & Teboulle (no momentum before the
third step: ``y_2 = z_1``); the networks use the same sequence one step
earlier (``y_1 = z_1 + b_1 (z_1 - z_0)``), which their trained dictionaries
and the benchmark figures were measured with."""

import numpy as np
import pytest

from skunroll import UnrolledDictionaryLearning, UnrolledSparseCoder, sparse_encode
from skunroll._dense.network import Network, forward_backward
from skunroll._kernels import _unrolled
from skunroll._parts.priors import resolve_groups
from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.utils import _lipschitz_from_gram, _smaller_gram

ALPHA = 0.1
_NETWORK_MOMENTUM = _unrolled.fista_momentum


@pytest.fixture(scope="module")
def problem():
    D = make_dictionary(40, 20, random_state=0)
    X, D, _ = make_sparse_coded_data(300, D, n_nonzero_coefs=3, random_state=0)
    return X, D


def _network_codes(X, D, n_unroll, accelerated, positive):
    step = 1.0 / _lipschitz_from_gram(_smaller_gram(D))
    net = Network(
        n_unroll=n_unroll,
        accelerated=accelerated,
        prior="nonneg_l1" if positive else "l1",
        alpha=ALPHA,
        negative_alpha=ALPHA,
        groups=resolve_groups("l1", None, D.shape[0]),
    )
    return forward_backward(X, D, net, step, "forward").codes


def _beck_teboulle(n_unroll, accelerated):
    """The network's momentum sequence delayed by one step."""
    betas = np.zeros(n_unroll)
    betas[1:] = _NETWORK_MOMENTUM(n_unroll, accelerated)[: n_unroll - 1]
    return betas


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("n_unroll", [1, 2, 7, 30])
def test_ista_is_the_same_in_both_kernels(problem, positive, n_unroll):
    X, D = problem
    codes = sparse_encode(
        X, D, algorithm="ista", alpha=ALPHA, max_iter=n_unroll, tol=0,
        positive=positive,
    )  # fmt: skip
    net = _network_codes(X, D, n_unroll, False, positive)
    np.testing.assert_allclose(codes, net, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("positive", [False, True])
@pytest.mark.parametrize("n_unroll", [1, 2, 7, 30])
def test_fista_kernels_differ_only_by_the_momentum_schedule(
    problem, positive, n_unroll, monkeypatch
):
    X, D = problem
    codes = sparse_encode(
        X, D, algorithm="unrolled", alpha=ALPHA, n_unroll=n_unroll,
        positive=positive,
    )  # fmt: skip
    monkeypatch.setattr(_unrolled, "fista_momentum", _beck_teboulle)
    net = _network_codes(X, D, n_unroll, True, positive)
    np.testing.assert_allclose(codes, net, rtol=1e-9, atol=1e-12)


def test_coder_and_trained_network_transform_agree_without_momentum(problem):
    """UnrolledSparseCoder's ISTA and the trained network's ISTA encoder."""
    X, D = problem
    dl = UnrolledDictionaryLearning(
        40, alpha=ALPHA, n_unroll=20, encoder="ista", max_iter=1, tol=0,
        random_state=0,
    ).fit(X)  # fmt: skip
    coder = UnrolledSparseCoder(
        dl.components_, transform_algorithm="ista", transform_alpha=ALPHA,
        transform_max_iter=20, transform_tol=0,
    )  # fmt: skip
    # the steps agree to the power iteration's tolerance (1e-6, relative)
    np.testing.assert_allclose(coder.transform(X), dl.transform(X), atol=1e-5)
