"""UnrolledDictionaryLearning(dictionary="archetypal"): A-SAE and RA-SAE."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_archetypal_data
from skunroll.metrics import explained_variance, matched_cosine


def _fused(est):
    U = est.archetype_weights_ @ est.candidates_ + est.relaxation_
    return U / np.linalg.norm(U, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    return make_archetypal_data(1500, 16, 6, noise=0.01, random_state=0)


@pytest.mark.parametrize("delta", [0.0, 0.2])
@pytest.mark.parametrize("encoder", ["ista", "fista"])
def test_components_are_the_fused_relaxed_hull(data, delta, encoder):
    X, A, _ = data
    est = UnrolledDictionaryLearning(
        6, alpha=0.02, positive_code=True, encoder=encoder, n_unroll=20,
        dictionary="archetypal", delta=delta, max_iter=8, tol=0, random_state=0,
    ).fit(X)  # fmt: skip
    W, L = est.archetype_weights_, est.relaxation_
    assert est.candidates_.shape == (24, 16)  # 4 per atom by default
    assert W.shape == (6, 24) and L.shape == (6, 16)
    assert W.min() >= 0
    assert_allclose(W.sum(axis=1), 1.0, rtol=1e-10)
    assert np.all(np.linalg.norm(L, axis=1) <= delta * (1 + 1e-10))
    if delta == 0:
        assert np.all(L == 0)
    assert_allclose(est.components_, _fused(est), atol=1e-10)
    assert_allclose(np.linalg.norm(est.components_, axis=1), 1.0)
    # a relaxed fit has moved off the hull, within delta
    if delta > 0:
        assert np.linalg.norm(L, axis=1).max() > 0
    # candidates are centroids of the data, scaled to unit norm
    R2 = explained_variance(X, est.inverse_transform(est.transform(X)))
    assert R2 > 0.95


def test_recovers_planted_archetypes(data):
    X, A, _ = data
    for delta in (0.0, 0.1):
        est = UnrolledDictionaryLearning(
            6, alpha=0.02, positive_code=True, dictionary="archetypal",
            delta=delta, max_iter=30, tol=0, random_state=0,
        ).fit(X)  # fmt: skip
        assert matched_cosine(A, est.components_) > 0.99


def test_user_candidates_and_float32(data):
    X, A, _ = data
    C = 3.0 * A  # any scale: the candidates are used as unit directions
    est = UnrolledDictionaryLearning(
        6, alpha=0.02, positive_code=True, dictionary="archetypal", candidates=C,
        max_iter=3, tol=0, random_state=0,
    ).fit(X.astype(np.float32))  # fmt: skip
    assert est.components_.dtype == np.float32
    assert est.candidates_.dtype == np.float32
    assert est.transform(X.astype(np.float32)).dtype == np.float32
    assert_allclose(est.candidates_, A, atol=1e-6)
    assert est.candidates_.shape == (6, 16)
    assert np.all(C == 3.0 * A)  # the caller's array is not modified


def test_partial_fit_and_redraw_stay_in_the_hull(data):
    X, _, _ = data
    est = UnrolledDictionaryLearning(
        12, alpha=0.05, positive_code=True, dictionary="archetypal",
        n_candidates=40, delta=0.05, random_state=0,
    )  # fmt: skip
    for start in range(0, 3000, 100):  # two passes
        est.partial_fit(X[start % 1500 : start % 1500 + 100])
    assert est.n_redrawn_ > 0  # 12 atoms for 6 archetypes: duplicates re-drawn
    assert est.archetype_weights_.min() >= 0
    assert_allclose(est.archetype_weights_.sum(axis=1), 1.0, rtol=1e-10)
    assert np.linalg.norm(est.relaxation_, axis=1).max() <= 0.05 * (1 + 1e-10)
    assert_allclose(est.components_, _fused(est), atol=1e-10)


def test_bad_input(data):
    X, A, _ = data
    with pytest.raises(ValueError, match="n_candidates=2000 is larger than the"):
        UnrolledDictionaryLearning(4, dictionary="archetypal", n_candidates=2000).fit(X)
    est = UnrolledDictionaryLearning(4, dictionary="archetypal", n_candidates=50)
    with pytest.raises(ValueError, match="n_candidates=50"):
        est.partial_fit(X[:20])
    assert not hasattr(est, "components_")
    with pytest.raises(ValueError, match="candidates has 3 features"):
        UnrolledDictionaryLearning(
            4, dictionary="archetypal", candidates=np.ones((5, 3))
        ).fit(X)
    with pytest.raises(ValueError, match="candidates"):
        UnrolledDictionaryLearning(
            4, dictionary="archetypal", candidates=np.full((5, 16), np.nan)
        ).fit(X)
    for bad in ({"positive_dict": True}, {"dict_init": A[:4]}):
        with pytest.raises(ValueError, match="archetypal"):
            UnrolledDictionaryLearning(4, dictionary="archetypal", **bad).fit(X)


def test_refit_free_drops_archetypal_attributes(data):
    X, _, _ = data
    est = UnrolledDictionaryLearning(
        4, dictionary="archetypal", max_iter=1, tol=0, random_state=0
    ).fit(X)
    assert hasattr(est, "candidates_")
    est.set_params(dictionary="free").fit(X)
    assert not hasattr(est, "candidates_")
    assert not hasattr(est, "archetype_weights_")


def test_atoms_snapped_onto_one_candidate_are_redrawn(data):
    """Copies share their samples equally, so the usage rule of free
    dictionaries never re-draws them; the archetypal one does."""
    X, A, _ = data
    est = UnrolledDictionaryLearning(
        6, alpha=0.02, positive_code=True, dictionary="archetypal",
        candidates=np.repeat(A, 3, axis=0), max_iter=10, tol=0, random_state=0,
    )  # fmt: skip
    start = est._initial_state(X).D
    cos = np.abs(start @ start.T)[np.triu_indices(6, 1)]
    assert np.any(cos > 0.999)  # the initial atoms hold copies
    est.fit(X)
    assert est.n_redrawn_ > 0
    assert matched_cosine(A, est.components_) > 0.999


def test_candidates_drawn_from_samples(data):
    X, _, _ = data
    est = UnrolledDictionaryLearning(
        4, dictionary="archetypal", candidates="samples", n_candidates=10,
        max_iter=1, tol=0, random_state=0,
    ).fit(X)  # fmt: skip
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    # every candidate is a (unit-scaled) sample
    assert np.all(np.max(est.candidates_ @ unit.T, axis=1) > 1 - 1e-12)
    assert len(np.unique(est.candidates_.round(10), axis=0)) == 10


@pytest.mark.parametrize("scale", [1e-150, 2.0**-300, 2.0**300, 1e150])
def test_any_scale_of_the_data(data, scale):
    """``c X`` with ``alpha = c alpha``: the same candidates and atoms (bit
    for bit under powers of two), as for the free dictionary."""
    X, A, _ = data
    kw = {"dictionary": "archetypal", "delta": 0.1, "max_iter": 2, "tol": 0}
    ref = UnrolledDictionaryLearning(6, alpha=0.02, random_state=0, **kw).fit(X)
    est = UnrolledDictionaryLearning(6, alpha=0.02 * scale, random_state=0, **kw).fit(
        scale * X
    )
    if np.frexp(scale)[0] == 0.5:
        assert np.array_equal(est.candidates_, ref.candidates_)
        assert np.array_equal(est.components_, ref.components_)
    assert_allclose(est.candidates_, ref.candidates_, atol=1e-6)
    assert_allclose(est.components_, ref.components_, atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(1, 12), m=st.integers(1, 5), k=st.integers(1, 6),
    n_candidates=st.integers(1, 15), dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31 - 1),
)  # fmt: skip
def test_shapes_dtypes_and_too_many_candidates(n, m, k, n_candidates, dtype, seed):
    X = np.random.default_rng(seed).standard_normal((n, m)).astype(dtype)
    est = UnrolledDictionaryLearning(
        k, dictionary="archetypal", n_candidates=n_candidates, delta=0.1,
        max_iter=1, tol=0, n_unroll=3, random_state=0,
    )  # fmt: skip
    if n_candidates > n:
        with pytest.raises(ValueError, match=f"n_candidates={n_candidates}"):
            est.fit(X)
        assert not hasattr(est, "components_")
        return
    est.fit(X)
    assert est.components_.shape == (k, m)
    assert est.components_.dtype == dtype
    assert est.archetype_weights_.shape == (k, n_candidates)
    assert est.candidates_.shape == (n_candidates, m)
    assert np.all(np.isfinite(est.components_))
    assert_allclose(np.linalg.norm(est.components_, axis=1), 1.0, rtol=1e-5)
