"""Robustness of sparse coding: thread-safe BLAS limits, n_jobs=0, solvers that
always stop, and inputs of any finite scale (exact power-of-two rescaling)."""

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from conftest import reproducer_data
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

from skunroll import UnrolledSparseCoder, sparse_encode
from skunroll._parallel import N_JOBS, n_threads, single_threaded_blas

ALGORITHMS = ["lasso", "fista", "ista", "unrolled", "omp"]
SETUP = """
import warnings
import numpy as np
from skunroll import UnrolledSparseCoder, sparse_encode
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.standard_normal((12, 6))
D = rng.standard_normal((8, 6))
D /= np.linalg.norm(D, axis=1, keepdims=True)
"""


def _blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def _in_threads(fn, n_threads=4):
    errors = []

    def target():
        try:
            fn()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=target) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# --- the parallel layer -----------------------------------------------------


def test_concurrent_transform_restores_blas_threads():
    X, D = reproducer_data()
    before = _blas_threads()

    def work():
        for _ in range(40):
            UnrolledSparseCoder(D).transform(X)

    _in_threads(work)
    assert _blas_threads() == before


def test_single_threaded_blas_is_reentrant_and_thread_safe():
    before = _blas_threads()
    seen = []

    def work():
        for _ in range(50):
            with single_threaded_blas():
                with single_threaded_blas():
                    seen.append(_blas_threads())

    _in_threads(work)
    assert all(v == [1] * len(before) for v in seen)
    assert _blas_threads() == before


def test_old_import_paths_still_work():
    from skunroll._coding.sparse_coding import _thread_pool
    from skunroll._validation import N_JOBS as N_JOBS_OLD
    from skunroll.utils import single_threaded_blas as old

    assert old is single_threaded_blas
    assert N_JOBS_OLD is N_JOBS
    assert _thread_pool(2) is _thread_pool(2)


def test_n_threads():
    assert n_threads(None, 10) == 1
    assert n_threads(4, 2) == 2
    assert n_threads(-1, 1) == 1
    with pytest.raises(ValueError, match="n_jobs"):
        n_threads(0, 3)


def test_n_jobs_zero_is_an_error():
    X, D = reproducer_data()
    with pytest.raises(ValueError, match="n_jobs"):
        sparse_encode(X, D, n_jobs=0)
    with pytest.raises(ValueError, match="n_jobs"):
        UnrolledSparseCoder(D, n_jobs=0).transform(X)
    with pytest.raises(ValueError, match="n_jobs"):
        UnrolledSparseCoder(D, n_jobs=0).fit(X)


# --- solvers always stop -----------------------------------------------------


HANGS = [
    "sparse_encode(X[8:9], D, alpha=0.0)",
    "sparse_encode(X[:1] * 1e150, D, alpha=0.1)",
    "UnrolledSparseCoder(D, transform_algorithm='lasso').transform(X * 1e150)",
    "sparse_encode(X, D * 1e160)",
    "sparse_encode(X, D, alpha=1e-12)",
]


def test_exact_lasso_never_hangs():
    """These took 30 s, 33 s and more than 120 s each; now milliseconds. One
    subprocess for all (one import), killed if it runs past the limit."""
    code = SETUP + "".join(
        f"Z = {call}\nassert np.all(np.isfinite(Z)) and np.any(Z != 0)\n"
        for call in HANGS
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)


def test_alpha_zero_is_minimum_norm_least_squares():
    X, D = reproducer_data()
    Z = sparse_encode(X, D, alpha=0.0)
    expected = np.linalg.lstsq(D.T, X.T, rcond=None)[0].T
    np.testing.assert_allclose(Z, expected, rtol=1e-10, atol=1e-12)
    Zp = sparse_encode(X, D, alpha=0.0, positive=True)
    assert np.all(Zp >= 0)


def test_tiny_alpha_warns_and_names_the_parameters():
    X, D = reproducer_data()
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        sparse_encode(X[:1] * 1e150, D, alpha=0.1)


# --- inputs of any finite scale ------------------------------------------------


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("scale", [1e200, 1e160, 1e-160])
def test_huge_dictionary_is_the_rescaled_problem(algorithm, scale):
    X, D = reproducer_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = sparse_encode(X, D, algorithm=algorithm, alpha=0.1)
        Z = sparse_encode(X, D * scale, algorithm=algorithm, alpha=0.1 * scale)
    assert np.all(np.isfinite(Z))
    assert np.any(Z != 0)
    np.testing.assert_allclose(Z * scale, ref, rtol=1e-6, atol=1e-9)


RTOL = {"lasso": 1e-6, "omp": 1e-6, "unrolled": 1e-6, "fista": 1e-5, "ista": 1e-5}


def _encode(X, D, algorithm, alpha):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sparse_encode(X, D, algorithm=algorithm, alpha=alpha)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=15, deadline=None)
@given(e=st.integers(-490, 490), alpha=st.floats(0.01, 1.0))
def test_scale_equivariance_in_X(algorithm, e, alpha):
    """z(c X, D, c alpha) = c z(X, D, alpha)."""
    X, D = reproducer_data()
    c = 2.0**e
    ref = _encode(X, D, algorithm, alpha)
    Z = _encode(c * X, D, algorithm, c * alpha)
    np.testing.assert_allclose(Z / c, ref, rtol=RTOL[algorithm], atol=1e-9)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@settings(max_examples=15, deadline=None)
@given(e=st.integers(-490, 490), alpha=st.floats(0.01, 1.0))
def test_scale_equivariance_in_dictionary(algorithm, e, alpha):
    """z(X, c D, alpha) = z(X, D, alpha / c) / c (the residual X - z D is the
    same for z and c z; the penalty alpha |z| reads alpha / c |c z|), written
    with alpha -> c alpha so that the reference problem is well scaled."""
    X, D = reproducer_data()
    c = 2.0**e
    ref = _encode(X, D, algorithm, alpha)
    Z = _encode(X, c * D, algorithm, c * alpha)
    np.testing.assert_allclose(Z * c, ref, rtol=RTOL[algorithm], atol=1e-9)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_float32_beyond_its_square_range(algorithm):
    """``(2**100)**2`` overflows float32; the rescaled problem does not."""
    X, D = (A.astype(np.float32) for A in reproducer_data())
    c = np.float32(2.0**100)
    ref = _encode(X, D, algorithm, 0.1)
    Z = _encode(X * c, D, algorithm, 0.1 * float(c))
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z / c, ref, rtol=1e-5, atol=1e-6)
