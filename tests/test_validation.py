"""Bad input gets a clear error naming the argument; property tests (hypothesis)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.utils._param_validation import InvalidParameterError

from skunroll import UnrolledSparseCoder, sparse_encode

ALGORITHMS = ["lasso", "fista", "ista", "unrolled", "omp"]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((6, 4)), rng.standard_normal((5, 4))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X(data, bad):
    X, D = data
    X[2, 1] = bad
    with pytest.raises(ValueError, match="X"):
        sparse_encode(X, D)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_dictionary(data, bad):
    X, D = data
    D[0, 0] = bad
    with pytest.raises(ValueError, match="dictionary"):
        sparse_encode(X, D)


def test_zero_atom(data):
    X, D = data
    D[3] = 0
    with pytest.raises(ValueError, match=r"all-zero atoms at rows \[3\]"):
        sparse_encode(X, D)


def test_mismatched_features_names_both_shapes(data):
    X, D = data
    with pytest.raises(ValueError, match=r"\(5, 3\).*X has 4 features"):
        sparse_encode(X, D[:, :3])


def test_empty_X(data):
    _, D = data
    with pytest.raises(ValueError, match="0 sample"):
        sparse_encode(np.empty((0, 4)), D)


def test_wrong_ndim(data):
    X, D = data
    with pytest.raises(ValueError, match="2D array"):
        sparse_encode(X[0], D)
    with pytest.raises(ValueError, match="2D array"):
        sparse_encode(X, D[0])


@pytest.mark.parametrize(
    "params",
    [
        {"alpha": -0.1},
        {"algorithm": "lars"},
        {"n_unroll": 0},
        {"max_iter": 0},
        {"tol": -1.0},
        {"n_nonzero_coefs": 0},
    ],
)
def test_invalid_parameters(data, params):
    X, D = data
    name = next(iter(params))
    with pytest.raises(InvalidParameterError, match=name):
        sparse_encode(X, D, **params)


def test_too_many_nonzero_coefs(data):
    # scikit-learn's sparse_encode crashes on this one
    X, D = data
    with pytest.raises(ValueError, match="n_nonzero_coefs=6 .* n_components=5"):
        sparse_encode(X, D, algorithm="omp", n_nonzero_coefs=6)


def test_positive_omp_is_rejected(data):
    X, D = data
    with pytest.raises(ValueError, match="positive=True"):
        sparse_encode(X, D, algorithm="omp", positive=True)


def test_init_of_the_wrong_shape(data):
    X, D = data
    with pytest.raises(ValueError, match=r"init has shape \(6, 4\).*\(6, 5\)"):
        sparse_encode(X, D, init=np.zeros((6, 4)))


def test_complex_input(data):
    X, D = data
    with pytest.raises(ValueError, match="[Cc]omplex"):
        sparse_encode(X + 1j, D)


def test_coder_bad_input(data):
    X, D = data
    coder = UnrolledSparseCoder(D)
    with pytest.raises(ValueError, match=r"\(5, 4\).*X has 3 features"):
        coder.transform(X[:, :3])
    with pytest.raises(InvalidParameterError, match="transform_alpha"):
        UnrolledSparseCoder(D, transform_alpha=-1).fit(X)
    with pytest.raises(ValueError, match="expected 5 codes"):
        coder.inverse_transform(np.zeros((2, 4)))


@settings(max_examples=25, deadline=None)
@given(
    n_samples=st.integers(1, 7),
    n_features=st.integers(1, 6),
    n_components=st.integers(1, 8),
    dtype=st.sampled_from([np.float64, np.float32]),
    algorithm=st.sampled_from(ALGORITHMS),
    positive=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_shapes_dtypes_and_finiteness(
    n_samples, n_features, n_components, dtype, algorithm, positive, seed
):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)).astype(dtype)
    D = rng.standard_normal((n_components, n_features)).astype(dtype)
    if algorithm == "omp":
        positive = False
    Z = sparse_encode(
        X,
        D,
        algorithm=algorithm,
        alpha=0.1,
        positive=positive,
        n_nonzero_coefs=1,
        max_iter=5000,
    )
    assert Z.shape == (n_samples, n_components)
    assert Z.dtype == dtype
    assert np.isfinite(Z).all()
    if positive:
        assert np.all(Z >= 0)


@settings(max_examples=25, deadline=None)
@given(
    X=arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.just(3)),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
    ),
    algorithm=st.sampled_from(ALGORITHMS),
)
def test_arbitrary_floats_give_codes_or_a_clear_error(X, algorithm):
    D = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    X_copy = X.copy()
    if not np.isfinite(X).all():
        with pytest.raises(ValueError, match="X"):
            sparse_encode(X, D, algorithm=algorithm, n_nonzero_coefs=1)
    elif np.abs(X).max() < 1e150:  # squares must stay finite in float64
        Z = sparse_encode(X, D, algorithm=algorithm, n_nonzero_coefs=1)
        assert np.isfinite(Z).all()
    np.testing.assert_array_equal(X, X_copy)
