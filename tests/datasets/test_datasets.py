import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from scipy.fft import dct
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.metrics import mutual_coherence


def _welch(p, m):
    return np.sqrt((p - m) / (m * (p - 1)))


@pytest.mark.parametrize("kind", ["gaussian", "dct", "incoherent"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (8, 8), (3, 8), (40, 10)])
def test_make_dictionary_shape_and_norms(kind, shape):
    D = make_dictionary(*shape, kind=kind, random_state=0)
    assert D.shape == shape
    assert D.dtype == np.float64
    assert D.flags.c_contiguous
    assert np.all(np.isfinite(D))
    assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("kind", ["gaussian", "incoherent"])
def test_make_dictionary_reproducible(kind):
    a = make_dictionary(30, 10, kind=kind, random_state=0)
    b = make_dictionary(30, 10, kind=kind, random_state=np.random.RandomState(0))
    c = make_dictionary(30, 10, kind=kind, random_state=1)
    assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("n", [1, 2, 7, 16])
def test_dct_square_is_orthonormal_dct_ii(n):
    D = make_dictionary(n, n, kind="dct")
    # Row k of the orthonormal DCT-II matrix is the transform of the unit
    # impulses, i.e. dct(eye) along the first axis.
    assert_allclose(D, dct(np.eye(n), norm="ortho", axis=0), atol=1e-12)
    assert_allclose(D @ D.T, np.eye(n), atol=1e-12)


def test_dct_overcomplete_and_undercomplete():
    m = 6
    D = make_dictionary(2 * m, m, kind="dct")
    # Frequencies pi k / (2 m): the even ones are those of the DCT-II basis.
    assert_allclose(D[::2], dct(np.eye(m), norm="ortho", axis=0), atol=1e-12)
    D = make_dictionary(3, 5, kind="dct")
    expected = np.cos(np.pi * np.arange(3)[:, None] * (np.arange(5) + 0.5) / 3)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert_allclose(D, expected, atol=1e-12)
    assert_array_equal(D, make_dictionary(3, 5, kind="dct", random_state=4))


@pytest.mark.parametrize(
    "n_components, n_features, coherence",
    [
        (256, 64, 0.3),
        (256, 64, 0.2),
        (128, 32, 1.3 * _welch(128, 32)),
        (60, 20, 0.35),
        (10, 9, 0.2),
    ],
)
def test_incoherent_meets_target(n_components, n_features, coherence):
    gaussian = make_dictionary(n_components, n_features, random_state=0)
    assert mutual_coherence(gaussian) > coherence
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        D = make_dictionary(
            n_components,
            n_features,
            kind="incoherent",
            coherence=coherence,
            random_state=0,
        )
    assert mutual_coherence(D) <= coherence
    # The iteration stops once the target is met: the coherence is controlled.
    assert mutual_coherence(D) >= 0.9 * coherence
    assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-12)


def test_incoherent_default_target():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        D = make_dictionary(256, 64, kind="incoherent", random_state=0)
        assert mutual_coherence(D) <= 1.5 * _welch(256, 64)
        D = make_dictionary(320, 32, kind="incoherent", random_state=0)
        assert mutual_coherence(D) <= 2.0 * _welch(320, 32)


def test_incoherent_undercomplete_is_orthonormal():
    D = make_dictionary(5, 9, kind="incoherent", coherence=0.0, random_state=0)
    assert_allclose(D @ D.T, np.eye(5), atol=1e-12)


def test_incoherent_below_welch_bound_raises():
    welch = _welch(256, 64)
    with pytest.raises(ValueError, match=r"coherence=0\.1 .*Welch bound 0\.1084"):
        make_dictionary(256, 64, kind="incoherent", coherence=0.1)
    with pytest.raises(ValueError, match=r"\(256, 64\)"):
        make_dictionary(256, 64, kind="incoherent", coherence=0.99 * welch)
    # 20 > 4 * 5 / 2 lines in R^4: the orthoplex bound 1 / 2 beats Welch's.
    assert _welch(20, 4) < 0.48
    with pytest.raises(ValueError, match="orthoplex bound 0.5"):
        make_dictionary(20, 4, kind="incoherent", coherence=0.48)


def test_incoherent_unreachable_target_warns():
    start = mutual_coherence(make_dictionary(64, 16, random_state=0))
    target = 1.01 * _welch(64, 16)
    with pytest.warns(ConvergenceWarning, match="did not reach coherence"):
        D = make_dictionary(
            64, 16, kind="incoherent", coherence=target, max_iter=30, random_state=0
        )
    assert target < mutual_coherence(D) < start
    assert_allclose(np.linalg.norm(D, axis=1), 1.0, rtol=1e-12)


def test_make_dictionary_invalid_parameters():
    with pytest.raises(ValueError, match="coherence=0.5 is only used with"):
        make_dictionary(10, 5, kind="gaussian", coherence=0.5)
    with pytest.raises(InvalidParameterError, match="kind"):
        make_dictionary(10, 5, kind="random")
    with pytest.raises(InvalidParameterError, match="n_components"):
        make_dictionary(0, 5)
    with pytest.raises(InvalidParameterError, match="n_features"):
        make_dictionary(5, 2.5)
    with pytest.raises(InvalidParameterError, match="coherence"):
        make_dictionary(10, 5, kind="incoherent", coherence=1.5)
    with pytest.raises(InvalidParameterError, match="max_iter"):
        make_dictionary(10, 5, kind="incoherent", max_iter=-1)


def _dictionary(n_components=20, n_features=8, seed=0):
    return make_dictionary(n_components, n_features, random_state=seed)


@pytest.mark.parametrize("code_distribution", ["gaussian", "uniform"])
@pytest.mark.parametrize("positive", [False, True])
def test_exact_number_of_nonzeros(code_distribution, positive):
    X, D, codes = make_sparse_coded_data(
        200,
        _dictionary(),
        n_nonzero_coefs=4,
        code_distribution=code_distribution,
        positive=positive,
        random_state=0,
    )
    assert X.shape == (200, 8) and codes.shape == (200, 20) and D.shape == (20, 8)
    assert X.dtype == D.dtype == codes.dtype == np.float64
    assert_array_equal(np.count_nonzero(codes, axis=1), 4)
    assert_allclose(X, codes @ D)
    # Every atom is used: the positions are drawn over all of them.
    assert np.all(np.count_nonzero(codes, axis=0) > 0)
    assert np.all(codes >= 0) if positive else np.any(codes < 0)


def test_uniform_codes_in_range():
    _, _, codes = make_sparse_coded_data(
        500,
        _dictionary(),
        n_nonzero_coefs=3,
        code_distribution="uniform",
        code_range=(0.5, 1.5),
        random_state=0,
    )
    values = codes[codes != 0]
    assert np.all((np.abs(values) >= 0.5) & (np.abs(values) <= 1.5))
    assert 0.4 < np.mean(values > 0) < 0.6
    assert abs(np.mean(np.abs(values)) - 1.0) < 0.05


def test_bernoulli_gaussian_codes():
    _, _, codes = make_sparse_coded_data(
        4000,
        _dictionary(),
        n_nonzero_coefs=5,
        code_distribution="bernoulli_gaussian",
        random_state=0,
    )
    counts = np.count_nonzero(codes, axis=1)
    # Binomial(20, 1/4): mean 5, standard deviation of the mean ~0.03.
    assert abs(counts.mean() - 5.0) < 0.15
    assert counts.min() < 5 < counts.max()
    _, _, codes = make_sparse_coded_data(
        50,
        _dictionary(),
        code_distribution="bernoulli_gaussian",
        positive=True,
        random_state=0,
    )
    assert np.all(codes >= 0)


def test_noise_standard_deviation():
    X, D, codes = make_sparse_coded_data(5000, _dictionary(), noise=0.3, random_state=0)
    assert abs(np.std(X - codes @ D) - 0.3) < 0.01


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_snr_db(snr_db):
    X, D, codes = make_sparse_coded_data(
        5000, _dictionary(), n_nonzero_coefs=3, snr_db=snr_db, random_state=0
    )
    signal = codes @ D
    measured = 10 * np.log10(np.mean(signal**2) / np.mean((X - signal) ** 2))
    assert abs(measured - snr_db) < 0.1


def test_dictionary_not_modified_and_copied():
    D = _dictionary().astype(np.float32)
    original = D.copy()
    D.flags.writeable = False
    _, D_out, _ = make_sparse_coded_data(10, D, noise=0.1, random_state=0)
    assert_array_equal(D, original)
    assert D_out.dtype == np.float64
    assert not np.shares_memory(D_out, D)
    D64 = _dictionary()
    D64.flags.writeable = False
    _, D_out, _ = make_sparse_coded_data(10, D64, random_state=0)
    assert not np.shares_memory(D_out, D64)
    D_out[0, 0] = 12.0
    assert D64[0, 0] != 12.0
    _, D_out, _ = make_sparse_coded_data(3, [[1, 0], [0, 1]], n_nonzero_coefs=1)
    assert D_out.dtype == np.float64


def test_make_sparse_coded_data_reproducible():
    D = _dictionary()
    kwargs = dict(noise=0.1, code_distribution="uniform")
    a = make_sparse_coded_data(20, D, random_state=0, **kwargs)
    b = make_sparse_coded_data(20, D, random_state=np.random.RandomState(0), **kwargs)
    c = make_sparse_coded_data(20, D, random_state=1, **kwargs)
    for x, y in zip(a, b, strict=True):
        assert_array_equal(x, y)
    assert not np.allclose(a[0], c[0])


@settings(max_examples=25, deadline=None)
@given(
    n_samples=st.integers(1, 20),
    n_components=st.integers(1, 12),
    n_features=st.integers(1, 6),
    data=st.data(),
)
def test_codes_property(n_samples, n_components, n_features, data):
    k = data.draw(st.integers(1, n_components))
    distribution = data.draw(st.sampled_from(["gaussian", "uniform"]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    D = np.random.default_rng(seed).standard_normal((n_components, n_features))
    X, D_out, codes = make_sparse_coded_data(
        n_samples,
        D,
        n_nonzero_coefs=k,
        code_distribution=distribution,
        random_state=seed,
    )
    assert_array_equal(D_out, D)
    assert_array_equal(np.count_nonzero(codes, axis=1), k)
    assert_allclose(X, codes @ D)


@pytest.mark.parametrize(
    "dictionary, kwargs, match",
    [
        (np.ones((4, 3)), dict(n_nonzero_coefs=5), "n_nonzero_coefs=5.*n_components=4"),
        (
            np.ones((4, 3)),
            dict(noise=0.1, snr_db=10.0, n_nonzero_coefs=2),
            "noise=0.1 and snr_db=10.0",
        ),
        (np.ones((4, 3)), dict(code_range=(2.0, 1.0), n_nonzero_coefs=2), "code_range"),
        (np.ones((4, 3)), dict(code_range=(0.0, 1.0), n_nonzero_coefs=2), "code_range"),
        (np.ones((4, 3)), dict(code_range=(1.0,), n_nonzero_coefs=2), "code_range"),
        (np.ones(3), dict(n_nonzero_coefs=1), "dictionary must be a 2-D array"),
        (np.full((4, 3), np.nan), dict(n_nonzero_coefs=1), "dictionary"),
        (np.zeros((4, 3)), dict(n_nonzero_coefs=1, snr_db=3.0), "snr_db=3.0"),
    ],
)
def test_make_sparse_coded_data_invalid(dictionary, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sparse_coded_data(5, dictionary, **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_samples=0), "n_samples"),
        (dict(n_nonzero_coefs=0), "n_nonzero_coefs"),
        (dict(code_distribution="laplace"), "code_distribution"),
        (dict(noise=-1.0), "noise"),
        (dict(snr_db=np.nan), "snr_db"),
        (dict(positive="yes"), "positive"),
        (dict(random_state="seed"), "random_state"),
    ],
)
def test_make_sparse_coded_data_invalid_parameters(kwargs, name):
    params = dict(n_samples=5, dictionary=np.ones((4, 3)), n_nonzero_coefs=2)
    params.update(kwargs)
    with pytest.raises(InvalidParameterError, match=name):
        make_sparse_coded_data(**params)
