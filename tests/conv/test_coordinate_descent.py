"""The convolutional family's coordinate-descent encoder ("cd"): the lasso's
optimality conditions (residual correlations from scipy), converged FISTA,
chunks, warm starts, the "dec" gradient, and the estimator's options."""

from dataclasses import replace

import numpy as np
import pytest
from scipy import signal
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError

import skunroll._conv.network as conv_network
from skunroll import ConvolutionalDL, UnrolledDictionaryLearning
from skunroll._conv.network import (
    CD_TOL,
    ConvNetwork,
    cd_scale,
    encode,
    forward_backward,
    operator_norm2,
)
from skunroll._kernels import _conv_cd
from skunroll.datasets import make_spike_recording
from skunroll.metrics import atom_recovery_errors, event_detection_f1

ALPHAS = np.array([0.3, 0.5, 0.4])
SIGNS = np.array([0, 1, -1])


def _synth(z, H):
    """``H z`` by scipy, independent of the package's kernels."""
    out = np.zeros(
        (H.shape[1], z.shape[1] + H.shape[2] - 1, z.shape[2] + H.shape[3] - 1)
    )
    for k in range(H.shape[0]):
        for c in range(H.shape[1]):
            out[c] += signal.convolve2d(z[k], H[k, c])
    return out


def _problem(seed=0, shape=(2, 6, 120), kernel=(2, 7), dtype=np.float64):
    """Images ``(n, C, h, w)`` made of sparse events of three kernels, and
    the kernels ``(K, C, kh, kw)``."""
    rng = np.random.default_rng(seed)
    H = rng.standard_normal((3, shape[0], *kernel))
    X = 0.1 * rng.standard_normal((2, *shape))
    codes = rng.standard_normal(
        (2, 3, shape[1] - kernel[0] + 1, shape[2] - kernel[1] + 1)
    )
    codes *= rng.random(codes.shape) < 0.03
    for i in range(2):
        X[i] += _synth(codes[i], H)
    return X.astype(dtype), H.astype(dtype)


def _residual_correlation(x, H, z):
    """``H^T (x - H z)`` by scipy, independent of the package's kernels."""
    r = x - _synth(z, H)
    return np.stack([
        sum(signal.correlate2d(r[c], H[k, c], mode="valid") for c in range(H.shape[1]))
        for k in range(H.shape[0])
    ])  # fmt: skip


def _cd(mode="forward", **kw):
    return ConvNetwork(1, "cd", ALPHAS, SIGNS, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_codes_satisfy_the_lasso_optimality_conditions(dtype):
    X, H = _problem(dtype=dtype)
    rng = np.random.default_rng(1)
    masks = [rng.random((3, 5, 114)) < 0.9 for _ in range(2)]
    res = forward_backward(X, H, _cd(), 1.0, "forward", masks=masks)
    energy = np.sum(H.astype(np.float64).reshape(3, -1) ** 2, axis=1)
    for x, z, mask in zip(X, res.codes, masks, strict=True):
        assert z.dtype == dtype
        assert np.count_nonzero(z) > 20
        assert np.all(z[~mask] == 0)
        assert np.all(z[SIGNS == 1] >= 0) and np.all(z[SIGNS == -1] <= 0)
        r = _residual_correlation(x.astype(np.float64), H.astype(np.float64), z)
        # optimality: no entry's exact coordinate update (the prox at step
        # 1 / ||h_k||^2, zero at the lasso's optimum) moves it by more than
        # the tolerance
        d = energy[:, None, None]
        u = z + r / d
        lam = ALPHAS[:, None, None] / d
        sign = SIGNS[:, None, None]
        best = np.where((u > lam) & (sign >= 0), u - lam, 0.0)
        best = np.where((u < -lam) & (sign <= 0), u + lam, best)
        move = np.abs(np.where(mask, best, 0.0) - z)
        tol = CD_TOL * cd_scale(H, ALPHAS, x)
        assert move.max() <= tol * (1.0001 if dtype == np.float64 else 1.01)
        assert move.max() > 0  # the tolerance is what stops it


def test_codes_equal_converged_fista(monkeypatch):
    X, H = _problem(seed=2)
    fista = ConvNetwork(4000, "fista", ALPHAS, SIGNS)
    step = 1.0 / operator_norm2(H)
    ref = forward_backward(X, H, fista, step, "forward")
    ref_obj = ref.data_loss + ref.penalty
    cd = forward_backward(X, H, _cd(), 1.0, "forward")
    # the default tolerance (1 % of lambda / ||h||^2 per entry): close
    assert cd.data_loss + cd.penalty == pytest.approx(ref_obj, rel=1e-4)
    # a tight one: the same solution
    monkeypatch.setattr(conv_network, "CD_TOL", 1e-7)
    tight = forward_backward(X, H, _cd(), 1.0, "forward")
    assert tight.data_loss + tight.penalty == pytest.approx(ref_obj, rel=1e-8)
    np.testing.assert_allclose(np.array(tight.codes), np.array(ref.codes), atol=1e-4)


def test_chunks_agree_with_the_whole_signal(monkeypatch):
    rng = np.random.default_rng(3)
    H = rng.standard_normal((3, 2, 1, 9))
    X = np.zeros((1, 2, 1, 4000))
    for k in range(3):
        z = rng.random(4000 - 8) < 0.01
        for c in range(2):
            X[0, c, 0] += np.convolve(z * rng.uniform(1, 3, z.size), H[k, c, 0])
    X += 0.05 * rng.standard_normal(X.shape)
    net = _cd()
    whole = encode(X, H, net, 1.0, chunk_positions=10**6)
    chunked = encode(X, H, net, 1.0, n_jobs=2, chunk_positions=251)
    assert np.count_nonzero(whole) > 50
    # both stop at the per-entry tolerance, far (correlated shifts of one
    # kernel) from the exact solution: close, not equal
    assert np.max(np.abs(chunked - whole)) <= 0.03 * np.max(np.abs(whole))
    monkeypatch.setattr(conv_network, "CD_TOL", 1e-7)
    monkeypatch.setattr(conv_network, "CD_MAX_PASSES", 10**6)
    whole = encode(X, H, net, 1.0, chunk_positions=10**6)
    chunked = encode(X, H, net, 1.0, n_jobs=2, chunk_positions=251)
    assert np.max(np.abs(chunked - whole)) <= 1e-3


def test_a_warm_start_at_the_solution_stays_there():
    X, H = _problem(seed=4)
    x = X[0]
    z = np.zeros((3, 5, 114))
    grad, losses = np.zeros((1, 1, 1, 1)), np.zeros(2)
    args = (ALPHAS, SIGNS, np.ones((1, 1, 1), bool), False, 1e-4, 10**6, 0)
    cold = _conv_cd.cd_sample(x, H, *args, z, grad, losses, z, False)
    again = z.copy()
    warm = _conv_cd.cd_sample(x, H, *args, again, grad, losses, z.copy(), True)
    assert cold > 1 and warm == 1
    np.testing.assert_array_equal(again, z)


def test_dec_gradient_is_the_correlation_of_the_residual_with_the_codes():
    X, H = _problem(seed=5)
    res = forward_backward(X, H, _cd(), 1.0, "dec")
    expected = np.zeros_like(H)
    for x, z in zip(X, res.codes, strict=True):
        r = x - _synth(z, H)
        for k in range(3):
            for c in range(2):
                expected[k, c] -= signal.correlate2d(r[c], z[k], mode="valid")
    np.testing.assert_allclose(res.grad, expected, rtol=1e-9, atol=1e-9)
    # and the loss is the one the codes give
    data = sum(
        0.5 * np.sum((x - _synth(z, H)) ** 2) for x, z in zip(X, res.codes, strict=True)
    )
    assert res.data_loss == pytest.approx(data, rel=1e-9)


def test_a_run_stopped_by_the_pass_cap_warns(monkeypatch):
    X, H = _problem(seed=6)
    monkeypatch.setattr(conv_network, "CD_MAX_PASSES", 3)
    with pytest.warns(ConvergenceWarning, match="not converged"):
        forward_backward(X, H, _cd(), 1.0, "forward")


def test_unrolled_gradients_are_refused():
    X, H = _problem()
    with pytest.raises(ValueError, match="gradient='dec'"):
        forward_backward(X, H, _cd(), 1.0, "ae-ls")


# --------------------------------------------------------- the estimator


@pytest.fixture(scope="module")
def spikes():
    return make_spike_recording(10, 10000, random_state=0)


def test_cd_learns_planted_spike_waveforms(spikes):
    X, kernels, events = spikes
    est = ConvolutionalDL(3, 45, alpha=0.6, encoder="cd", random_state=0, n_jobs=2)
    est.fit(X)
    errors = atom_recovery_errors(
        kernels.reshape(3, -1), est.kernels_.reshape(3, -1), shift_invariant=True
    )
    assert errors.max() < 0.1
    detected = est.detect_events(X, threshold=0.2)
    assert event_detection_f1(events, detected, kernels, est.kernels_) > 0.9


def test_transform_encoder_applies_fista_kernels_by_cd(spikes):
    X = spikes[0][:3]
    est = ConvolutionalDL(3, 45, alpha=0.6, max_iter=5, tol=0, random_state=0).fit(X)
    fista_score = est.score(X)
    fista_events = est.detect_events(X, threshold=0.2)
    est.set_params(transform_encoder="cd")
    # converged codes: a lower objective than 30 FISTA steps (score = -objective)
    assert est.score(X) > fista_score
    cd_events = est.detect_events(X, threshold=0.2)
    assert abs(len(cd_events) - len(fista_events)) <= 0.1 * len(fista_events)
    codes = est.code_maps(X)
    assert codes.shape == (3, 3, 10000 - 44) and codes.dtype == X.dtype
    # the training network is unchanged
    assert est._net.encoder == "fista"


def test_cd_options_are_checked():
    X = np.random.default_rng(0).standard_normal((2, 200))
    with pytest.raises(ValueError, match="gradient"):
        ConvolutionalDL(2, 5, encoder="cd", gradient="ae-ls").fit(X)
    with pytest.raises(ValueError, match="likelihood"):
        ConvolutionalDL(2, 5, encoder="cd", likelihood="poisson").fit(np.abs(X).round())
    counts = np.random.default_rng(1).poisson(0.5, (2, 200)).astype(float)
    est = ConvolutionalDL(2, 5, likelihood="poisson", max_iter=1).fit(counts)
    est.set_params(transform_encoder="cd")
    with pytest.raises(ValueError, match="transform_encoder='cd'"):
        est.code_maps(counts)
    with pytest.raises(InvalidParameterError, match="encoder"):
        UnrolledDictionaryLearning(3, encoder="cd").fit(X)
    with pytest.raises(InvalidParameterError, match="transform_encoder"):
        ConvolutionalDL(2, 5, transform_encoder="mp").fit(X)


def test_cd_network_reach_is_a_fixed_number_of_kernel_widths():
    net = _cd()
    assert net.reach(9) == 10 * 8
    assert replace(net, encoder="fista", n_unroll=7).reach(9) == 7 * 8
