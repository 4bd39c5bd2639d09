import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.utils._param_validation import InvalidParameterError

from skunroll.datasets import make_archetypal_data, make_sae_hierarchy

NESTED = dict(
    n_singletons=0, n_active_parents=2, child_probability=0.75,
    code_range=(1.0, 2.0), geometry="nested",
)  # fmt: skip
"""The toy of the first version (its arguments before the paper's defaults)."""


@pytest.mark.parametrize("coherence", [0.0, 0.1, 0.3, 0.5, 0.8])
def test_paper_hierarchy_cosines_match_the_knob(coherence):
    """The paper's geometry: top-level concepts (parents and singletons) and
    siblings pairwise at the knob, every other pair orthogonal."""
    n_parents, n_children, n_singletons = 3, 3, 8
    _, F, _ = make_sae_hierarchy(10, coherence=coherence, random_state=0)
    n_concepts = n_parents * (1 + n_children) + n_singletons
    assert F.shape == (n_concepts, n_concepts) == (20, 20)  # the paper's d = 20
    assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-12)
    # the expected Gram matrix, built from the group of every feature
    group = np.r_[np.zeros(n_parents), np.repeat(1 + np.arange(n_parents), n_children),
                  np.zeros(n_singletons)]  # fmt: skip
    same = group[:, None] == group[None, :]
    expected = np.where(same, coherence, 0.0)
    np.fill_diagonal(expected, 1.0)
    assert_allclose(F @ F.T, expected, atol=1e-12)


def test_paper_hierarchy_codes_structure():
    """The paper's tree: one top-level concept per sample (each parent 0.2,
    each singleton 0.05), a child for 60 % of the parents, 1.36 active
    concepts on average, magnitudes 1.5 +- 0.25."""
    X, F, codes = make_sae_hierarchy(20000, coherence=0.5, random_state=1)
    assert_allclose(X, codes @ F)  # noiseless
    assert codes.min() >= 0
    parents, singletons = codes[:, :3], codes[:, 12:]
    children = codes[:, 3:12].reshape(-1, 3, 3)
    top = np.count_nonzero(parents, axis=1) + np.count_nonzero(singletons, axis=1)
    assert np.all(top == 1)
    n_kids = np.count_nonzero(children, axis=2)
    assert n_kids.max() <= 1  # siblings are mutually exclusive
    assert np.all((n_kids > 0) <= (parents > 0))  # no child without its parent
    assert_allclose((parents > 0).mean(axis=0), 0.2, atol=0.015)
    assert_allclose((singletons > 0).mean(axis=0), 0.05, atol=0.008)
    assert abs(n_kids.sum() / np.count_nonzero(parents) - 0.6) < 0.02
    assert abs(np.count_nonzero(codes, axis=1).mean() - 1.36) < 0.02
    active = codes[codes > 0]
    assert abs(active.mean() - 1.5) < 0.01 and abs(active.std() - 0.25) < 0.01


@pytest.mark.parametrize("coherence", [0.1, 0.3, 0.5, 0.8])
def test_nested_hierarchy_cosines_match_the_knob(coherence):
    n_parents, n_children = 5, 3
    _, F, _ = make_sae_hierarchy(
        10, 40, n_parents, n_children, coherence=coherence, random_state=0, **NESTED
    )
    assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-12)
    G = F @ F.T
    P = G[:n_parents, :n_parents]
    assert_allclose(P[~np.eye(n_parents, dtype=bool)], coherence, atol=1e-12)
    c = coherence
    for p in range(n_parents):
        kids = n_parents + p * n_children + np.arange(n_children)
        sib = G[np.ix_(kids, kids)]
        assert_allclose(sib[~np.eye(n_children, dtype=bool)], c, atol=1e-12)
        assert_allclose(G[p, kids], np.sqrt(c), atol=1e-12)
        others = np.setdiff1d(np.arange(n_parents), [p])
        assert_allclose(G[np.ix_(others, kids)], c**1.5, atol=1e-12)
        other_kids = np.setdiff1d(np.arange(n_parents, F.shape[0]), kids)
        assert_allclose(G[np.ix_(kids, other_kids)], c**2, atol=1e-12)


def test_nested_hierarchy_codes_structure():
    n_parents, n_children = 6, 4
    X, F, codes = make_sae_hierarchy(
        2000, 64, n_parents, n_children, coherence=0.5, random_state=1, **NESTED
    )
    assert_allclose(X, codes @ F)  # noiseless
    assert codes.min() >= 0
    parents = codes[:, :n_parents]
    children = codes[:, n_parents:].reshape(-1, n_parents, n_children)
    assert np.all(np.count_nonzero(parents, axis=1) == 2)
    n_kids = np.count_nonzero(children, axis=2)
    assert n_kids.max() <= 1  # siblings are mutually exclusive
    assert np.all((n_kids > 0) <= (parents > 0))  # no child without its parent
    rate = n_kids.sum() / np.count_nonzero(parents)
    assert abs(rate - 0.75) < 0.03
    active = codes[codes > 0]
    assert active.min() >= 1.0 and active.max() <= 2.0


def test_singletons_have_no_children_and_weights_set_their_share():
    _, F, codes = make_sae_hierarchy(
        20000, n_parents=2, n_children=2, n_singletons=4, singleton_weight=1.0,
        random_state=3, child_probability=1.0,
    )  # fmt: skip
    assert F.shape == (10, 10)
    top = np.c_[codes[:, :2], codes[:, 6:]]
    assert_allclose((top > 0).mean(axis=0), 1 / 6, atol=0.015)  # equal weights
    kids = np.count_nonzero(codes[:, 2:6], axis=1)
    assert_array_equal(kids > 0, np.count_nonzero(codes[:, :2], axis=1) > 0)


def test_hierarchy_seeded_and_noise():
    a = make_sae_hierarchy(50, random_state=0)
    b = make_sae_hierarchy(50, random_state=np.random.RandomState(0))
    for u, v in zip(a, b, strict=True):
        assert_array_equal(u, v)
    X, F, codes = make_sae_hierarchy(4000, 30, noise=0.1, random_state=0)
    assert X.shape == (4000, 30)
    assert abs(np.std(X - codes @ F) - 0.1) < 0.005


def test_hierarchy_bad_input():
    with pytest.raises(ValueError, match="n_features=19 is too small"):
        make_sae_hierarchy(10, 19)
    with pytest.raises(ValueError, match="n_features=20 is too small"):
        make_sae_hierarchy(10, 20, geometry="nested")
    with pytest.raises(ValueError, match="n_active_parents=12"):
        make_sae_hierarchy(10, n_active_parents=12)
    with pytest.raises(InvalidParameterError, match="coherence"):
        make_sae_hierarchy(10, coherence=1.0)
    with pytest.raises(InvalidParameterError, match="geometry"):
        make_sae_hierarchy(10, geometry="flat")
    with pytest.raises(InvalidParameterError, match="singleton_weight"):
        make_sae_hierarchy(10, singleton_weight=0.0)
    with pytest.raises(ValueError, match="code_range"):
        make_sae_hierarchy(10, code_range=(2.0, 1.0))


@settings(max_examples=20, deadline=None)
@given(
    n_samples=st.integers(1, 30),
    n_parents=st.integers(1, 4),
    n_children=st.integers(1, 3),
    n_singletons=st.integers(0, 3),
    extra=st.integers(0, 5),
    coherence=st.floats(0.0, 0.95),
    geometry=st.sampled_from(["equiangular", "nested"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_hierarchy_shapes(
    n_samples, n_parents, n_children, n_singletons, extra, coherence, geometry, seed
):
    n_concepts = n_parents * (1 + n_children) + n_singletons
    n_features = n_concepts + (geometry == "nested") + extra
    X, F, codes = make_sae_hierarchy(
        n_samples, n_features, n_parents, n_children, coherence, random_state=seed,
        n_singletons=n_singletons, n_active_parents=min(2, n_parents),
        geometry=geometry,
    )  # fmt: skip
    assert X.shape == (n_samples, n_features)
    assert F.shape == (n_concepts, n_features)
    assert codes.shape == (n_samples, n_concepts)
    assert np.all(np.isfinite(X))
    assert_allclose(np.linalg.norm(F, axis=1), 1.0, rtol=1e-10)
    G = F @ F.T
    top = np.r_[
        np.arange(n_parents), n_concepts - n_singletons + np.arange(n_singletons)
    ]
    off = ~np.eye(top.size, dtype=bool)
    assert_allclose(G[np.ix_(top, top)][off], coherence, atol=1e-10)
    assert np.all(np.count_nonzero(codes[:, top], axis=1) == min(2, n_parents))


def test_archetypal_data_is_convex_sparse_mixture():
    X, A, W = make_archetypal_data(
        3000, 16, 6, n_nonzero_coefs=3, concentration=1.0, random_state=0
    )
    assert_allclose(X, W @ A)
    assert_allclose(np.linalg.norm(A, axis=1), 1.0, rtol=1e-12)
    assert W.min() >= 0
    assert_allclose(W.sum(axis=1), 1.0, rtol=1e-12)
    k = np.count_nonzero(W, axis=1)
    assert k.min() == 1 and k.max() == 3
    assert_allclose(np.bincount(k)[1:] / len(k), 1 / 3, atol=0.03)
    # every archetype is used, pure samples of each exist
    pure = W[k == 1]
    assert np.all(np.count_nonzero(pure, axis=0) > 0)


def test_archetypal_data_seeded_noise_and_bad_input():
    a = make_archetypal_data(40, random_state=3)
    b = make_archetypal_data(40, random_state=3)
    for u, v in zip(a, b, strict=True):
        assert_array_equal(u, v)
    X, A, W = make_archetypal_data(3000, noise=0.2, random_state=0)
    assert abs(np.std(X - W @ A) - 0.2) < 0.01
    with pytest.raises(ValueError, match="n_nonzero_coefs=9"):
        make_archetypal_data(10, n_archetypes=8, n_nonzero_coefs=9)
    with pytest.raises(InvalidParameterError, match="concentration"):
        make_archetypal_data(10, concentration=0.0)
    # tiny concentrations: all gamma draws may underflow; rows still sum to 1
    _, _, W = make_archetypal_data(200, concentration=1e-300, random_state=0)
    assert_allclose(W.sum(axis=1), 1.0)
