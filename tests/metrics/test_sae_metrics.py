import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.optimize import linear_sum_assignment
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score

from skunroll import UnrolledDictionaryLearning
from skunroll.metrics import (
    babel,
    dead_fraction,
    dictionary_stability,
    explained_variance,
    matched_cosine,
    mean_l0,
    mutual_coherence,
)


def test_explained_variance_is_variance_weighted_r2():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 7)) * rng.uniform(0.1, 10, 7)
    X_hat = X + 0.3 * rng.standard_normal(X.shape)
    expected = r2_score(X, X_hat, multioutput="variance_weighted")
    assert_allclose(explained_variance(X, X_hat), expected, rtol=1e-12)
    # by hand
    num = np.sum((X - X_hat) ** 2)
    den = np.sum((X - X.mean(axis=0)) ** 2)
    assert_allclose(explained_variance(X, X_hat), 1 - num / den, rtol=1e-12)
    # scale-free, also at extreme scales
    assert_allclose(explained_variance(1e200 * X, 1e200 * X_hat), expected)
    assert_allclose(explained_variance(1e-200 * X, 1e-200 * X_hat), expected)
    assert explained_variance(X, np.zeros_like(X)) < 1


def test_explained_variance_bad_input():
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match="constant"):
        explained_variance(X, X)
    with pytest.raises(ValueError, match="constant"):
        explained_variance(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="same shape"):
        explained_variance(np.eye(3), np.eye(3)[:2])
    with pytest.raises(ValueError, match="NaN|infinity"):
        explained_variance(np.eye(3), np.full((3, 3), np.nan))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12), k=st.integers(1, 12), density=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_l0_and_dead_fraction_dense_and_sparse(n, k, density, seed):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, k)) * (rng.random((n, k)) < density)
    l0 = np.mean([sum(1 for v in row if v != 0) for row in codes])
    dead = np.mean([all(codes[:, j] == 0) for j in range(k)])
    assert_allclose(mean_l0(codes), l0)
    assert_allclose(dead_fraction(codes), dead)
    csr = sp.csr_matrix(codes)
    if csr.nnz:
        csr.data[0] = 0.0  # a stored zero is no use of the atom
        codes[tuple(np.argwhere(codes != 0)[0])] = 0.0
    assert_allclose(mean_l0(csr), mean_l0(codes))
    assert_allclose(dead_fraction(csr), dead_fraction(codes))
    assert_allclose(mean_l0(codes.astype(np.float32)), mean_l0(codes))


def test_codes_bad_input():
    for fn in (mean_l0, dead_fraction):
        with pytest.raises(ValueError, match="codes"):
            fn(np.array([[np.nan, 1.0]]))
        with pytest.raises(ValueError, match="2D|2-D"):
            fn(np.ones(3))
        with pytest.raises(ValueError, match="NaN|infinite"):
            fn(sp.csr_matrix(np.array([[np.inf, 1.0]])))


def _brute_force_babel(D, s):
    D = D / np.linalg.norm(D, axis=1, keepdims=True)
    G = np.abs(D @ D.T)
    k = len(D)
    return max(
        sum(G[i, j] for j in S)
        for i in range(k)
        for S in itertools.combinations([j for j in range(k) if j != i], s)
    )


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 7), m=st.integers(1, 6), seed=st.integers(0, 2**31 - 1))
def test_babel_against_brute_force(k, m, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((k, m)) * rng.uniform(0.1, 10, (k, 1))
    for s in range(1, k):
        assert_allclose(babel(D, s), _brute_force_babel(D, s), rtol=1e-12)
    assert_allclose(babel(D, 1), mutual_coherence(D), rtol=1e-12)


def test_babel_bad_input():
    with pytest.raises(ValueError, match="s=3 must be smaller"):
        babel(np.eye(3), 3)
    with pytest.raises(ValueError, match="zero atom"):
        babel(np.array([[1.0, 0.0], [0.0, 0.0]]), 1)


def _brute_force_matching(cos):
    """Largest total of a one-to-one matching, by enumeration."""
    k_ref, k = cos.shape
    if k_ref <= k:
        perms = itertools.permutations(range(k), k_ref)
        return max(sum(cos[i, p[i]] for i in range(k_ref)) for p in perms)
    perms = itertools.permutations(range(k_ref), k)
    return max(sum(cos[p[j], j] for j in range(k)) for p in perms)


@settings(max_examples=25, deadline=None)
@given(
    k_ref=st.integers(1, 6), k=st.integers(1, 6), m=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_matched_cosine_against_scipy_and_enumeration(k_ref, k, m, seed):
    rng = np.random.default_rng(seed)
    D_ref = rng.standard_normal((k_ref, m))
    D = rng.standard_normal((k, m))
    U = D_ref / np.linalg.norm(D_ref, axis=1, keepdims=True)
    V = D / np.linalg.norm(D, axis=1, keepdims=True)
    cos = np.abs(U @ V.T)
    rows, cols = linear_sum_assignment(-cos)
    expected = cos[rows, cols].sum() / k_ref
    assert_allclose(matched_cosine(D_ref, D), expected, rtol=1e-10)
    best = _brute_force_matching(cos)
    assert_allclose(matched_cosine(D_ref, D) * k_ref, best, rtol=1e-10)
    per_atom = matched_cosine(D_ref, D, per_atom=True)
    assert per_atom.shape == (k_ref,)
    assert np.count_nonzero(per_atom == 0) >= k_ref - min(k_ref, k)


def test_matched_cosine_sign_scale_permutation():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 10))
    scrambled = D[rng.permutation(6)] * rng.choice([-3.0, 0.5], (6, 1))
    assert_allclose(matched_cosine(D, scrambled), 1.0)
    with pytest.raises(ValueError, match="same number of features"):
        matched_cosine(D, D[:, :5])
    with pytest.raises(ValueError, match="D_ref has all-zero atoms"):
        matched_cosine(np.zeros((2, 3)), np.eye(3))
    # zero atoms of D match nothing
    assert matched_cosine(np.eye(3), np.zeros((3, 3))) == 0.0


def test_dictionary_stability():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((5, 8))
    assert_allclose(dictionary_stability(D, -D[::-1]), 1.0)
    E = rng.standard_normal((7, 8))
    assert_allclose(dictionary_stability(D, E), dictionary_stability(E, D))
    # the larger one is the reference: extra atoms count against stability
    assert_allclose(dictionary_stability(D, np.vstack([D, E])), 5 / 12)
    X = rng.standard_normal((60, 8))
    a = UnrolledDictionaryLearning(4, max_iter=1, tol=0, random_state=0).fit(X)
    b = UnrolledDictionaryLearning(4, max_iter=1, tol=0, random_state=1).fit(X)
    assert_allclose(
        dictionary_stability(a, b), matched_cosine(a.components_, b.components_)
    )
    with pytest.raises(NotFittedError):
        dictionary_stability(UnrolledDictionaryLearning(), b)
    with pytest.raises(ValueError, match="est_b"):
        dictionary_stability(a, np.ones(3))


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 10), m=st.integers(1, 6), m_hat=st.integers(1, 6),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_explained_variance_shapes(n, m, m_hat, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m))
    X_hat = rng.standard_normal((n, m_hat))
    if m != m_hat:
        with pytest.raises(ValueError, match="same shape"):
            explained_variance(X, X_hat)
        return
    r2 = explained_variance(X, X_hat)
    assert r2 <= 1.0
    assert_allclose(r2, r2_score(X, X_hat, multioutput="variance_weighted"))
    assert_allclose(explained_variance(X.astype(np.float32), X_hat), r2, rtol=1e-5)
