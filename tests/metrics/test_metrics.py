import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy.signal import correlate
from sklearn.metrics import f1_score
from sklearn.utils._param_validation import InvalidParameterError

from skunroll.metrics import (
    atom_recovery_errors,
    mutual_coherence,
    recovery_rate,
    restricted_isometry_constant,
    support_f1,
)


def _scrambled(D, rng):
    """Permute, flip the signs of and rescale the atoms of ``D``."""
    perm = rng.permutation(D.shape[0])
    scale = rng.choice([-1.0, 1.0], D.shape[0]) * rng.uniform(0.1, 10, D.shape[0])
    return D[perm] * scale.reshape(-1, *([1] * (D.ndim - 1)))


def _brute_force_errors(D_true, D_est, shift_invariant):
    """Error matrix by explicit loops, then the best assignment by enumeration."""
    cost = np.ones((len(D_true), len(D_est)))
    for i, h in enumerate(D_true):
        for j, e in enumerate(D_est):
            if shift_invariant:
                # scipy.signal.correlate in "full" mode over every axis; the
                # channel axis must only line up channels, so keep lag 0 there.
                xcorr = correlate(e, h, mode="full", method="direct")
                if D_true.ndim > 2:
                    xcorr = xcorr[h.shape[0] - 1]
                inner = np.abs(xcorr).max()
            else:
                inner = abs(np.vdot(h, e))
            cos = inner / (np.linalg.norm(h) * np.linalg.norm(e))
            cost[i, j] = np.sqrt(max(0.0, 1.0 - cos**2))
    best = None
    for cols in itertools.permutations(range(len(D_est)), len(D_true)):
        errors = cost[np.arange(len(D_true)), list(cols)]
        if best is None or errors.sum() < best.sum():
            best = errors
    return best


@settings(max_examples=25, deadline=None)
@given(
    n_atoms=st.integers(1, 8),
    n_features=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
)
def test_scrambled_copy_has_zero_error(n_atoms, n_features, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_atoms, n_features))
    errors = atom_recovery_errors(D, _scrambled(D, rng))
    assert errors.shape == (n_atoms,)
    assert errors.dtype == np.float64
    assert_allclose(errors, 0.0, atol=1e-7)
    assert recovery_rate(D, _scrambled(D, rng), threshold=1e-6) == 1.0


@pytest.mark.parametrize("kernel_shape", [(12,), (3, 12), (2, 9, 9)])
def test_scrambled_kernels_have_zero_error(kernel_shape):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((4, *kernel_shape))
    for shift_invariant in (False, True):
        errors = atom_recovery_errors(
            D, _scrambled(D, rng), shift_invariant=shift_invariant
        )
        assert_allclose(errors, 0.0, atol=1e-7)


def _kernels_with_margin(rng, n_atoms, kernel_shape, margin):
    """Random kernels that are zero on ``margin`` samples at each end."""
    D = np.zeros((n_atoms, *kernel_shape))
    n_spatial = 2 if len(kernel_shape) == 3 else 1
    inner = (slice(None),) * (D.ndim - n_spatial) + (slice(margin, -margin),) * (
        n_spatial
    )
    D[inner] = rng.standard_normal(D[inner].shape)
    return D


@pytest.mark.parametrize(
    "kernel_shape, shift",
    [((20,), 3), ((3, 20), -4), ((2, 11, 11), (2, -3))],
)
def test_shifted_kernels(kernel_shape, shift):
    rng = np.random.default_rng(1)
    D = _kernels_with_margin(rng, 5, kernel_shape, margin=4)
    axes = (-2, -1) if len(kernel_shape) == 3 else -1
    D_shifted = _scrambled(np.roll(D, shift, axis=axes), rng)
    errors = atom_recovery_errors(D, D_shifted, shift_invariant=True)
    assert_allclose(errors, 0.0, atol=1e-7)
    assert np.all(atom_recovery_errors(D, D_shifted) > 0.1)
    assert recovery_rate(D, D_shifted, shift_invariant=True) == 1.0


@pytest.mark.parametrize(
    "shape_true, shape_est, shift_invariant",
    [
        ((4, 7), (4, 7), False),
        ((3, 6), (5, 6), False),
        ((4, 2, 3), (4, 2, 3), False),
        ((4, 7), (4, 7), True),
        ((3, 6), (4, 6), True),
        ((3, 2, 5), (3, 2, 5), True),
        ((3, 2, 4, 3), (4, 2, 4, 3), True),
    ],
)
def test_errors_match_brute_force(shape_true, shape_est, shift_invariant):
    rng = np.random.default_rng(2)
    D_true = rng.standard_normal(shape_true)
    D_est = rng.standard_normal(shape_est)
    errors = atom_recovery_errors(D_true, D_est, shift_invariant=shift_invariant)
    expected = _brute_force_errors(D_true, D_est, shift_invariant)
    assert_allclose(errors.sum(), expected.sum(), rtol=1e-10)
    assert_allclose(np.sort(errors), np.sort(expected), rtol=1e-10)


def test_hand_computed_errors():
    D_true = np.array([[1.0, 0.0], [0.0, 1.0]])
    D_est = np.array([[0.0, 5.0], [1.0, 1.0]])
    # The matching keeps true atom 1 with estimated atom 0 (error 0) and
    # leaves true atom 0 with the diagonal atom (cosine 1 / sqrt(2)).
    assert_allclose(atom_recovery_errors(D_true, D_est), [np.sqrt(0.5), 0.0])
    # cos = 24 / 25, so the error is sqrt(1 - 24**2 / 25**2) = 7 / 25.
    assert_allclose(atom_recovery_errors([[3.0, 4.0]], [[-8.0, -6.0]]), [0.28])


def test_orthogonal_and_missing_atoms():
    D = np.eye(4)
    assert_allclose(atom_recovery_errors(D[:2], D[2:]), [1.0, 1.0])
    errors = atom_recovery_errors(D, 3.0 * D[[2, 0]])
    assert_allclose(errors, [0.0, 1.0, 0.0, 1.0])
    assert recovery_rate(D, 3.0 * D[[2, 0]]) == 0.5


def test_zero_estimated_atom_has_error_one():
    D = np.eye(3)
    D_est = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    errors = atom_recovery_errors(D, D_est)
    assert not np.any(np.isnan(errors))
    assert_allclose(errors, [1.0, 0.0, 1.0])
    errors = atom_recovery_errors(
        np.ones((2, 4)), np.zeros((2, 4)), shift_invariant=True
    )
    assert_allclose(errors, [1.0, 1.0])


def test_recovery_rate_thresholds():
    D_true = np.eye(3)
    # Errors 0, 0.28 (cosine 0.96) and 1 (orthogonal to everything left).
    D_est = np.array([[1.0, 0.0, 0.0], [0.0, 0.96, 0.28], [0.0, 0.0, 0.0]])
    assert_allclose(atom_recovery_errors(D_true, D_est), [0.0, 0.28, 1.0])
    assert recovery_rate(D_true, D_est) == pytest.approx(1 / 3)
    assert recovery_rate(D_true, D_est, threshold=0.3) == pytest.approx(2 / 3)
    assert recovery_rate(D_true, D_est, threshold=1.5) == 1.0


def test_recovery_errors_do_not_modify_inputs():
    rng = np.random.default_rng(3)
    D_true = rng.standard_normal((3, 2, 8))
    D_est = rng.standard_normal((3, 2, 8))
    copies = D_true.copy(), D_est.copy()
    D_true.flags.writeable = False
    D_est.flags.writeable = False
    for shift_invariant in (False, True):
        atom_recovery_errors(D_true, D_est, shift_invariant=shift_invariant)
    assert_allclose(D_true, copies[0])
    assert_allclose(D_est, copies[1])


@pytest.mark.parametrize(
    "D_true, D_est, match",
    [
        (np.ones((2, 3)), np.ones((2, 4)), r"D_true of shape \(2, 3\).*\(2, 4\)"),
        (np.ones((2, 3, 4)), np.ones((2, 3, 5)), r"\(2, 3, 4\).*\(2, 3, 5\)"),
        (np.ones(3), np.ones((2, 3)), "D_true must be a 2-D or 3-D or 4-D"),
        (np.ones((2, 3)), np.ones((1, 1, 1, 1, 3)), "D_est must be"),
        ([[1.0, np.nan]], [[1.0, 0.0]], "D_true"),
        ([[1.0, 0.0]], [[np.inf, 0.0]], "D_est"),
        ([[0.0, 0.0], [1.0, 0.0]], [[1.0, 0.0]], "D_true has all-zero atoms"),
    ],
)
def test_recovery_errors_invalid_arrays(D_true, D_est, match):
    with pytest.raises(ValueError, match=match):
        atom_recovery_errors(D_true, D_est)


def test_recovery_invalid_parameters():
    with pytest.raises(InvalidParameterError, match="threshold"):
        recovery_rate(np.eye(2), np.eye(2), threshold=0.0)
    with pytest.raises(InvalidParameterError, match="shift_invariant"):
        atom_recovery_errors(np.eye(2), np.eye(2), shift_invariant="yes")


def _brute_force_coherence(D):
    best = 0.0
    for i, j in itertools.permutations(range(len(D)), 2):
        cos = abs(D[i] @ D[j]) / (np.linalg.norm(D[i]) * np.linalg.norm(D[j]))
        best = max(best, cos)
    return best


@settings(max_examples=25, deadline=None)
@given(
    n_atoms=st.integers(2, 10),
    n_features=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_mutual_coherence_brute_force(n_atoms, n_features, seed):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_atoms, n_features))
    expected = _brute_force_coherence(D)
    assert_allclose(mutual_coherence(D), expected, rtol=1e-12)
    assert_allclose(mutual_coherence(_scrambled(D, rng)), expected, rtol=1e-12)


def test_mutual_coherence_hand_cases():
    assert mutual_coherence(np.eye(5)) == 0.0
    assert mutual_coherence([[1.0, 2.0]]) == 0.0
    assert mutual_coherence([[1.0, 1.0], [-2.0, -2.0]]) == pytest.approx(1.0)
    assert mutual_coherence([[3.0, 4.0], [4.0, 3.0]]) == pytest.approx(0.96)


@pytest.mark.parametrize(
    "D, match",
    [
        ([[1.0, 0.0], [0.0, 0.0]], "D has all-zero atoms at indices \\[1\\]"),
        (np.ones(3), "D must be a 2-D array"),
        ([[1.0, np.nan], [0.0, 1.0]], "D"),
    ],
)
def test_mutual_coherence_invalid(D, match):
    with pytest.raises(ValueError, match=match):
        mutual_coherence(D)


def _exact_rip(D, s):
    atoms = D / np.linalg.norm(D, axis=1, keepdims=True)
    delta = 0.0
    for support in itertools.combinations(range(len(D)), s):
        eigvals = np.linalg.eigvalsh(atoms[list(support)] @ atoms[list(support)].T)
        delta = max(delta, eigvals[-1] - 1.0, 1.0 - eigvals[0])
    return delta


def test_rip_orthonormal_basis_is_zero():
    q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((6, 6)))
    for s in range(1, 7):
        delta = restricted_isometry_constant(3.0 * q, s, n_trials=50, random_state=0)
        assert delta == pytest.approx(0.0, abs=1e-12)


def test_rip_identical_atoms():
    D = np.array([[1.0, 2.0, 0.0], [-2.0, -4.0, 0.0]])
    assert restricted_isometry_constant(D, 2, n_trials=3) >= 1.0 - 1e-12
    assert restricted_isometry_constant(D, 1, n_trials=3) == pytest.approx(0.0)


def test_rip_against_exhaustive_search():
    rng = np.random.default_rng(5)
    D = rng.standard_normal((7, 4))
    mu = mutual_coherence(D)
    for s in (2, 3):
        exact = _exact_rip(D, s)
        few = restricted_isometry_constant(D, s, n_trials=3, random_state=0)
        many = restricted_isometry_constant(D, s, n_trials=3000, random_state=0)
        assert few <= exact + 1e-12
        assert many == pytest.approx(exact, rel=1e-10)
        assert exact <= (s - 1) * mu + 1e-12
    assert _exact_rip(D, 2) == pytest.approx(mu)


def test_rip_reproducible_and_invalid():
    D = np.random.default_rng(6).standard_normal((30, 10))
    a = restricted_isometry_constant(D, 4, n_trials=20, random_state=1)
    b = restricted_isometry_constant(D, 4, n_trials=20, random_state=1)
    assert a == b
    with pytest.raises(ValueError, match="n_nonzero_coefs=31.*n_components=30"):
        restricted_isometry_constant(D, 31)
    with pytest.raises(ValueError, match="D has all-zero atoms"):
        restricted_isometry_constant(np.zeros((2, 2)), 1)
    with pytest.raises(InvalidParameterError, match="n_trials"):
        restricted_isometry_constant(D, 2, n_trials=0)
    with pytest.raises(InvalidParameterError, match="n_nonzero_coefs"):
        restricted_isometry_constant(D, 0)


def test_support_f1_hand_cases():
    true = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    est = np.array([[0.5, 0.1, 0.0], [0.0, 0.0, -1.0]])
    # TP = 2, FP = 1, FN = 1.
    assert support_f1(true, est) == pytest.approx(2 / 3)
    # With atol=0.2 the 0.1 entry drops out: TP = 2, FP = 0, FN = 1.
    assert support_f1(true, est, atol=0.2) == pytest.approx(0.8)
    assert support_f1(true, true) == 1.0
    assert support_f1(np.zeros((2, 3)), np.zeros((2, 3))) == 1.0
    assert support_f1(np.zeros((2, 3)), true) == 0.0
    assert support_f1(true, np.zeros((2, 3))) == 0.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), atol=st.sampled_from([0.0, 0.5]))
def test_support_f1_matches_sklearn(seed, atol):
    rng = np.random.default_rng(seed)
    true = rng.standard_normal((5, 4, 3)) * (rng.random((5, 4, 3)) < 0.3)
    est = rng.standard_normal((5, 4, 3)) * (rng.random((5, 4, 3)) < 0.3)
    expected = f1_score(
        (np.abs(true) > atol).ravel(), (np.abs(est) > atol).ravel(), zero_division=1.0
    )
    assert support_f1(true, est, atol=atol) == pytest.approx(expected)


def test_support_f1_invalid():
    with pytest.raises(ValueError, match=r"codes_true of shape \(2, 3\).*\(3, 2\)"):
        support_f1(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="codes_est"):
        support_f1(np.ones((2, 3)), np.full((2, 3), np.nan))
    with pytest.raises(InvalidParameterError, match="atol"):
        support_f1(np.ones((2, 3)), np.ones((2, 3)), atol=-1.0)
