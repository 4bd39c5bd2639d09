"""UnrolledSparseCoder as a scikit-learn transformer."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skunroll import UnrolledSparseCoder, sparse_encode


def test_transform_without_fit_equals_sparse_encode(problem):
    X, D, _ = problem
    coder = UnrolledSparseCoder(D, transform_alpha=0.1, n_unroll=20)
    assert_allclose(
        coder.transform(X),
        sparse_encode(X, D, algorithm="unrolled", alpha=0.1, n_unroll=20),
    )
    assert_allclose(coder.fit_transform(X), coder.transform(X))


def test_positive_code_is_sparse_encodes_positive(problem):
    X, D, _ = problem
    for algorithm in ("unrolled", "lasso"):
        coder = UnrolledSparseCoder(
            D, transform_algorithm=algorithm, transform_alpha=0.1, positive_code=True
        )
        Z = coder.transform(X)
        assert Z.min() >= 0
        assert_allclose(
            Z, sparse_encode(X, D, algorithm=algorithm, alpha=0.1, positive=True)
        )
    coder = UnrolledSparseCoder(D, transform_algorithm="omp", positive_code=True)
    with pytest.raises(ValueError, match="positive_code=True .*'omp'"):
        coder.transform(X)


def test_split_sign_and_inverse_transform(problem):
    X, D, _ = problem
    coder = UnrolledSparseCoder(D, transform_algorithm="lasso", transform_alpha=0.05)
    Z = coder.transform(X)
    split = clone(coder).set_params(split_sign=True)
    Zs = split.transform(X)
    assert Zs.shape == (X.shape[0], 2 * D.shape[0])
    assert np.all(Zs >= 0)
    assert_allclose(Zs[:, : D.shape[0]] - Zs[:, D.shape[0] :], Z)
    assert_allclose(split.inverse_transform(Zs), coder.inverse_transform(Z))
    assert_allclose(coder.inverse_transform(Z), Z @ D)


def test_feature_names_and_pandas_output(problem):
    import pandas as pd

    X, D, _ = problem
    coder = UnrolledSparseCoder(D).set_output(transform="pandas")
    out = coder.fit_transform(pd.DataFrame(X))
    assert list(out.columns) == [f"unrolledsparsecoder{i}" for i in range(D.shape[0])]


def test_pipeline_grid_search_over_transform_alpha():
    rng = np.random.default_rng(0)
    D = rng.standard_normal((30, 10))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    # two classes that use disjoint halves of the dictionary
    Z = np.zeros((200, 30))
    y = rng.integers(0, 2, 200)
    for i in range(200):
        Z[i, rng.choice(15, 2, replace=False) + 15 * y[i]] = rng.uniform(1, 2, 2)
    X = Z @ D + 0.05 * rng.standard_normal((200, 10))
    pipe = Pipeline(
        [
            ("code", UnrolledSparseCoder(D, transform_algorithm="lasso")),
            ("clf", LogisticRegression(max_iter=1000)),
        ]
    )
    search = GridSearchCV(pipe, {"code__transform_alpha": [0.01, 0.1, 1.0]}, cv=3)
    search.fit(X, y)
    assert search.best_score_ > 0.9
    assert search.best_params_["code__transform_alpha"] in (0.01, 0.1, 1.0)


def test_clone_and_pickle(problem):
    X, D, _ = problem
    coder = UnrolledSparseCoder(D, transform_algorithm="omp").fit(X)
    again = pickle.loads(pickle.dumps(coder))
    assert_allclose(again.transform(X), coder.transform(X))
    np.testing.assert_array_equal(clone(coder).dictionary, D)
