"""Scale robustness of the dictionary metrics and tests of clustering_accuracy."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.metrics import confusion_matrix

from skunroll.metrics import (
    atom_recovery_errors,
    clustering_accuracy,
    event_detection_f1,
    mutual_coherence,
    recovery_rate,
    restricted_isometry_constant,
)

# sqrt(1 - cos^2) turns rounding of cos (~1e-16) into errors of ~1e-8.
ERR_ATOL = 1e-7


@pytest.fixture
def A():
    return np.random.default_rng(0).standard_normal((6, 10))


# -- scale robustness: regression tests ---------------------------------------


def test_atom_recovery_errors_huge_scale(A):
    # The squared norms used to overflow to inf: every error was 1.
    errors = atom_recovery_errors(A * 1e155, A)
    assert_allclose(errors, 0.0, atol=ERR_ATOL)
    assert_allclose(atom_recovery_errors(A, A * 1e155), 0.0, atol=ERR_ATOL)
    assert recovery_rate(A * 1e155, A) == 1.0


def test_atom_recovery_errors_tiny_scale(A):
    # The squared norms used to underflow to 0: "all-zero atoms" was raised.
    assert_allclose(atom_recovery_errors(A * 1e-170, A), 0.0, atol=ERR_ATOL)
    assert_allclose(atom_recovery_errors(A, A * 1e-170), 0.0, atol=ERR_ATOL)


def test_atom_recovery_errors_extreme_scales_keep_values(A):
    B = np.random.default_rng(1).standard_normal(A.shape)
    expected = atom_recovery_errors(A, B)
    assert expected.min() > 0.1  # unrelated atoms: errors far from 0
    for c_true, c_est in [(1e155, 1e-170), (1e-170, 1e155), (1e300, 1e300)]:
        got = atom_recovery_errors(A * c_true, B * c_est)
        assert_allclose(got, expected, rtol=1e-10)


def test_atom_recovery_errors_shift_invariant_huge_scale():
    rng = np.random.default_rng(2)
    K = rng.standard_normal((3, 2, 12))
    shifted = np.roll(np.pad(K, ((0, 0), (0, 0), (0, 4))), 3, axis=-1)[..., :12]
    expected = atom_recovery_errors(K, shifted, shift_invariant=True)
    for c in (1e155, 1e-170):
        got = atom_recovery_errors(K * c, shifted, shift_invariant=True)
        assert_allclose(got, expected, rtol=1e-8, atol=ERR_ATOL)


def test_mutual_coherence_huge_and_tiny_scale(A):
    expected = mutual_coherence(A)
    assert 0.1 < expected < 1.0
    # Used to be 0.0 at 1e155 (inf / inf) and to raise at 1e-170.
    assert mutual_coherence(A * 1e155) == pytest.approx(expected, rel=1e-12)
    assert mutual_coherence(A * 1e-170) == pytest.approx(expected, rel=1e-12)


def test_mutual_coherence_mixed_atom_scales(A):
    scales = np.array([1e-170, 1e155, 1.0, 1e-100, 1e200, 3.0])[:, None]
    assert mutual_coherence(A * scales) == pytest.approx(mutual_coherence(A))


def test_restricted_isometry_constant_scale_invariant(A):
    expected = restricted_isometry_constant(A, 3, n_trials=50, random_state=0)
    assert expected > 0
    for c in (1e155, 1e-170):
        got = restricted_isometry_constant(A * c, 3, n_trials=50, random_state=0)
        assert got == pytest.approx(expected, rel=1e-10)


def test_event_detection_f1_scale_invariant():
    rng = np.random.default_rng(3)
    kernels = rng.standard_normal((2, 1, 8))
    dtype = [("sample", int), ("kernel", int), ("position", int)]
    events = np.array([(0, 0, 5), (0, 1, 20), (1, 0, 7)], dtype=dtype)
    missed = events[:2]
    expected = event_detection_f1(events, missed, kernels, kernels)
    assert expected == pytest.approx(0.8)
    for c in (1e155, 1e-170):
        assert event_detection_f1(events, missed, kernels * c, kernels) == expected
        assert event_detection_f1(events, missed, kernels, kernels * c) == expected


def test_all_zero_atoms_still_raise(A):
    Z = A.copy()
    Z[2] = 0.0
    with pytest.raises(ValueError, match=r"D_true has all-zero atoms at indices \[2\]"):
        atom_recovery_errors(Z, A)
    with pytest.raises(ValueError, match=r"D has all-zero atoms at indices \[2\]"):
        mutual_coherence(Z)
    with pytest.raises(ValueError, match=r"D has all-zero atoms at indices \[2\]"):
        restricted_isometry_constant(Z, 2, n_trials=5, random_state=0)
    # A zero estimated atom is allowed and matches nothing.
    errors = atom_recovery_errors(A, Z)
    assert errors[2] == pytest.approx(1.0)
    assert_allclose(np.delete(errors, 2), 0.0, atol=ERR_ATOL)


# -- scale robustness: property tests -----------------------------------------

# Squares of scales within 1e+-150 are still finite (1e+-300): the range
# reaches 1e+-300 so that the property catches the old overflow and
# underflow of the squared norms.
_exponent = st.floats(min_value=-300.0, max_value=300.0)


@settings(max_examples=60, deadline=None)
@given(exponent=_exponent, seed=st.integers(0, 2**16))
def test_atom_recovery_errors_scale_property(exponent, seed):
    A = np.random.default_rng(seed).standard_normal((4, 7))
    c = 10.0**exponent
    assert_allclose(atom_recovery_errors(c * A, A), 0.0, atol=ERR_ATOL)
    assert_allclose(atom_recovery_errors(A, c * A), 0.0, atol=ERR_ATOL)


@settings(max_examples=60, deadline=None)
@given(exponent=_exponent, seed=st.integers(0, 2**16))
def test_mutual_coherence_scale_property(exponent, seed):
    A = np.random.default_rng(seed).standard_normal((5, 4))
    c = 10.0**exponent
    assert mutual_coherence(c * A) == pytest.approx(mutual_coherence(A), rel=1e-10)


# -- clustering_accuracy ------------------------------------------------------


def _brute_force_accuracy(y_true, y_pred):
    """Best accuracy over every injective map between clusters and classes."""
    classes, clusters = np.unique(y_true), np.unique(y_pred)
    best = 0
    if len(clusters) <= len(classes):
        maps = (
            dict(zip(clusters, p, strict=True))
            for p in itertools.permutations(classes, len(clusters))
        )
    else:
        maps = (
            dict(zip(p, classes, strict=True))
            for p in itertools.permutations(clusters, len(classes))
        )
    for mapping in maps:
        pairs = zip(y_true, y_pred, strict=True)
        hits = sum(mapping.get(p, object()) == t for t, p in pairs)
        best = max(best, hits)
    return best / len(y_true)


def test_clustering_accuracy_examples():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, [2, 2, 0, 0, 1, 1]) == 1.0
    assert clustering_accuracy(y, [1, 1, 1, 0, 2, 2]) == pytest.approx(5 / 6)
    acc, order = clustering_accuracy(y, [2, 2, 0, 0, 1, 1], return_order=True)
    assert acc == 1.0 and order.tolist() == [2, 0, 1]
    assert isinstance(clustering_accuracy(y, y), float)


@settings(max_examples=150, deadline=None)
@given(
    n_classes=st.integers(1, 4),
    n_clusters=st.integers(1, 5),
    n_samples=st.integers(1, 25),
    seed=st.integers(0, 2**16),
)
def test_clustering_accuracy_matches_brute_force(
    n_classes, n_clusters, n_samples, seed
):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n_samples)
    y_pred = rng.integers(0, n_clusters, n_samples) * 3 + 7  # arbitrary labels
    expected = _brute_force_accuracy(y_true, y_pred)
    assert clustering_accuracy(y_true, y_pred) == pytest.approx(expected)
    # The returned order realises the accuracy on the confusion matrix.
    acc, order = clustering_accuracy(y_true, y_pred, return_order=True)
    assert acc == pytest.approx(expected)
    assert len(order) == len(np.unique(y_true)) == len(set(order.tolist()))
    union = np.union1d(y_true, y_pred)
    counts = confusion_matrix(y_true, y_pred, labels=union)
    rows = np.searchsorted(union, np.unique(y_true))
    assert counts[rows, order].sum() / n_samples == pytest.approx(expected)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**16), n_samples=st.integers(1, 40))
def test_clustering_accuracy_label_permutation_invariance(seed, n_samples):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, n_samples)
    y_pred = rng.integers(0, 5, n_samples)
    acc = clustering_accuracy(y_true, y_pred)
    relabel_pred = rng.permutation(5) + 10
    relabel_true = rng.permutation(4)
    assert clustering_accuracy(y_true, relabel_pred[y_pred]) == acc
    assert clustering_accuracy(relabel_true[y_true], y_pred) == acc
    perm = rng.permutation(n_samples)  # sample order does not matter either
    assert clustering_accuracy(y_true[perm], y_pred[perm]) == acc


def test_clustering_accuracy_rectangular_and_string_labels():
    y = ["cat", "cat", "dog", "dog", "eel", "eel"]
    # Fewer clusters than classes: at most 2 classes can be matched.
    assert clustering_accuracy(y, [0, 0, 0, 1, 1, 1]) == pytest.approx(4 / 6)
    # More clusters than classes: the extra clusters count as errors.
    assert clustering_accuracy(y, [0, 1, 2, 2, 3, 3]) == pytest.approx(5 / 6)
    assert clustering_accuracy([1, 1, 1], [4, 5, 6]) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "y_true, y_pred, match",
    [
        ([0, 1, 1], [0, 1], "y_true and y_pred must have the same length"),
        ([], [], "y_true is empty"),
        ([0], [], "y_pred is empty"),
        ([[0, 1], [1, 0]], [0, 1], "y_true must be a 1-D array"),
        ([0, 1], [[0], [1]], "y_pred must be a 1-D array"),
    ],
)
def test_clustering_accuracy_invalid_input(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        clustering_accuracy(y_true, y_pred)


def test_clustering_accuracy_return_order_needs_comparable_labels():
    assert clustering_accuracy(["a", "b"], [0, 1]) == 1.0
    with pytest.raises(ValueError, match="comparable types"):
        clustering_accuracy(["a", "b"], [0, 1], return_order=True)
