"""ConvolutionalDL: convolution kernels, gradients, chunking, DUNL options."""

import pickle
from dataclasses import replace

import numpy as np
import pytest
from scipy import signal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import skunroll._conv.events as conv_events
import skunroll._conv.training as conv_training
from skunroll import ConvolutionalDL
from skunroll._conv.network import (
    ConvNetwork,
    encode,
    forward_backward,
    operator_norm2,
    reconstruct,
    uses_fft,
)
from skunroll._kernels import _conv
from skunroll.datasets import (
    make_convolutional_data,
    make_spike_counts,
    make_spike_recording,
)
from skunroll.metrics import atom_recovery_errors, event_detection_f1

RNG = np.random.default_rng(0)


def _sparse(shape, density, rng):
    return rng.standard_normal(shape) * (rng.random(shape) < density)


# --------------------------------------------------------- convolution kernels


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_synthesis_and_analysis_match_numpy_and_scipy(dtype):
    rng = np.random.default_rng(1)
    H = rng.standard_normal((3, 2, 1, 7)).astype(dtype)
    z = _sparse((3, 1, 50), 0.3, rng).astype(dtype)
    out = np.empty((2, 1, 56), dtype=dtype)
    _conv.synthesis(z, H, out)
    for c in range(2):
        ref = sum(np.convolve(z[k, 0], H[k, c, 0]) for k in range(3))
        np.testing.assert_allclose(out[c, 0], ref, rtol=1e-5, atol=1e-5)
    r = rng.standard_normal((2, 1, 56)).astype(dtype)
    a = np.empty((3, 1, 50), dtype=dtype)
    _conv.analysis(r, H, a)
    for k in range(3):
        ref = sum(np.correlate(r[c, 0], H[k, c, 0], mode="valid") for c in range(2))
        np.testing.assert_allclose(a[k, 0], ref, rtol=1e-5, atol=1e-5)


def test_2d_operators_match_scipy_signal_and_are_adjoint():
    rng = np.random.default_rng(2)
    H = rng.standard_normal((2, 3, 4, 5))
    z = _sparse((2, 9, 11), 0.4, rng)
    out = np.empty((3, 12, 15))
    _conv.synthesis(z, H, out)
    for c in range(3):
        ref = sum(signal.convolve2d(z[k], H[k, c]) for k in range(2))
        np.testing.assert_allclose(out[c], ref, atol=1e-12)
    r = rng.standard_normal(out.shape)
    a = np.empty(z.shape)
    _conv.analysis(r, H, a)
    ref = sum(signal.correlate2d(r[c], H[1, c], mode="valid") for c in range(3))
    np.testing.assert_allclose(a[1], ref, atol=1e-12)
    assert np.vdot(out, r) == pytest.approx(np.vdot(z, a))


def test_gram_operator_equals_analysis_of_synthesis():
    rng = np.random.default_rng(3)
    H = rng.standard_normal((3, 2, 3, 4))
    z = _sparse((3, 8, 12), 0.3, rng)
    e = np.empty((2, 10, 15))
    _conv.synthesis(z, H, e)
    ref = np.empty_like(z)
    _conv.analysis(e, H, ref)
    got = np.zeros_like(z)
    F = np.ascontiguousarray(_conv.kernel_gram(H)[:, :, ::-1, ::-1])
    _conv._gram_apply_sparse(F, z, got)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_operator_norm_bounds_the_power_iteration():
    rng = np.random.default_rng(4)
    H = rng.standard_normal((3, 2, 1, 9))
    z = rng.standard_normal((3, 1, 2000))
    e = np.empty((2, 1, 2008))
    for _ in range(200):
        _conv.synthesis(z, H, e)
        _conv.analysis(e, H, z)
        z /= np.linalg.norm(z)
    _conv.synthesis(z, H, e)
    power = np.linalg.norm(e) ** 2
    bound = operator_norm2(H)
    assert power <= bound <= 1.05 * power


# --------------------------------------------------------- gradients


def _net(mode_sign=(0, 1), likelihood="gaussian", accelerated=True, n_unroll=6):
    encoder = "fista" if accelerated else "ista"
    return ConvNetwork(n_unroll, encoder, np.array([0.1, 0.2]),
                       np.array(mode_sign), likelihood)  # fmt: skip


def _loss(X, H, net, step, mode, masks=None, init=None, offset=None):
    if mode == "dec":  # the loss at the codes of H0, which stay fixed
        return None
    res = forward_backward(X, H, net, step, mode, masks=masks, init=init,
                           offset=offset)  # fmt: skip
    return res.data_loss + (res.penalty if mode == "ae-lasso" else 0.0)


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson", "binomial"])
@pytest.mark.parametrize("mode", ["dec", "ae-ls", "ae-lasso"])
@pytest.mark.parametrize("accelerated", [False, True])
@pytest.mark.parametrize("two_d", [False, True])
def test_gradients_match_finite_differences(likelihood, mode, accelerated, two_d):
    rng = np.random.default_rng(5)
    kshape = (2, 3) if two_d else (1, 4)
    H = rng.standard_normal((2, 2, *kshape))
    H /= np.sqrt((H**2).sum(axis=(1, 2, 3), keepdims=True))
    shape = (2, 2, 6, 9) if two_d else (2, 2, 1, 25)
    X = rng.standard_normal(shape)
    if likelihood != "gaussian":
        X = rng.binomial(1, 0.3, shape).astype(float)
    net = _net(likelihood=likelihood, accelerated=accelerated)
    masks = [rng.random((2, shape[2] - kshape[0] + 1, shape[3] - kshape[1] + 1)) < 0.7
             for _ in range(2)]  # fmt: skip
    init = None if mode == "dec" else [0.3 * _sparse(m.shape, 0.5, rng) for m in masks]
    step = 0.5 / operator_norm2(H)
    offset = np.array([-0.4, 0.3])  # the intercept, one per channel
    res = forward_backward(X, H, net, step, mode, masks=masks, init=init,
                           offset=offset)  # fmt: skip
    if mode == "dec":
        Z = np.array(res.codes)
        lik = {"gaussian": 0, "poisson": 1, "binomial": 2}[likelihood]

        def loss(H2):
            eta = reconstruct(Z, H2) + offset[None, :, None, None]
            return sum(
                _conv.nll(x, e, lik, 1.0)
                for x, e in zip(X.ravel(), eta.ravel(), strict=True)
            )

    else:

        def loss(H2):
            return _loss(X, H2, net, step, mode, masks, init, offset)

    fd = np.zeros_like(H)
    eps = 1e-6
    for idx in np.ndindex(H.shape):
        Hp, Hm = H.copy(), H.copy()
        Hp[idx] += eps
        Hm[idx] -= eps
        fd[idx] = (loss(Hp) - loss(Hm)) / (2 * eps)
    assert np.linalg.norm(res.grad - fd) <= 1e-6 * np.linalg.norm(fd)


@pytest.mark.parametrize("accelerated", [False, True])
def test_gram_form_encoder_equals_the_explicit_encoder(accelerated):
    rng = np.random.default_rng(6)
    H = rng.standard_normal((3, 2, 2, 5))
    X = rng.standard_normal((2, 2, 9, 60))
    net = ConvNetwork(
        15,
        "fista" if accelerated else "ista",
        np.array([0.1, 0.2, 0.3]),
        np.array([0, 1, -1]),
    )
    step = 1 / operator_norm2(H)
    for init in (None, [0.5 * _sparse((3, 8, 56), 0.2, rng) for _ in range(2)]):
        gram = forward_backward(X, H, net, step, "forward", init=init)
        explicit = forward_backward(X, H, net, step, "ae-ls", init=init)
        np.testing.assert_allclose(np.array(gram.codes), np.array(explicit.codes),
                                   atol=1e-12)  # fmt: skip
        assert gram.data_loss == pytest.approx(explicit.data_loss, rel=1e-12)
        assert gram.penalty == pytest.approx(explicit.penalty, rel=1e-12)


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson", "binomial"])
@pytest.mark.parametrize("mode", ["forward", "dec", "ae-ls", "ae-lasso"])
def test_fft_form_equals_the_direct_form(likelihood, mode):
    rng = np.random.default_rng(8)
    H = rng.standard_normal((3, 2, 2, 5))
    X = rng.standard_normal((2, 2, 9, 40))
    if likelihood != "gaussian":
        X = rng.binomial(1, 0.4, X.shape).astype(float)
    net = ConvNetwork(8, "fista", np.array([0.1, 0.2, 0.3]), np.array([0, 1, -1]),
                      likelihood)  # fmt: skip
    step = 0.5 / operator_norm2(H)
    init = [0.1 * rng.standard_normal((3, 8, 36)) for _ in range(2)]
    masks = [rng.random((3, 8, 36)) < 0.8 for _ in range(2)]
    offset = np.array([0.2, -0.3])
    direct = forward_backward(X, H, net, step, mode, masks=masks, init=init,
                              offset=offset)  # fmt: skip
    fft = forward_backward(X, H, replace(net, method="fft"), step, mode,
                           masks=masks, init=init, offset=offset)  # fmt: skip
    np.testing.assert_allclose(np.array(fft.codes), np.array(direct.codes),
                               atol=1e-12)  # fmt: skip
    assert fft.data_loss == pytest.approx(direct.data_loss, rel=1e-12)
    if mode != "forward":
        np.testing.assert_allclose(fft.grad, direct.grad, rtol=1e-10, atol=1e-12)


def test_method_auto_takes_the_fft_for_long_kernels():
    short = ConvNetwork(5, "fista", np.ones(2), np.zeros(2, int), method="auto")
    assert not uses_fft(short, np.ones((2, 1, 1, 127)))
    assert uses_fft(short, np.ones((2, 1, 1, 128)))
    assert uses_fft(short, np.ones((2, 1, 12, 12)))
    X, H, _ = make_convolutional_data(3, 2000, kernel_size=160, density=0.002,
                                      random_state=0)  # fmt: skip
    est = ConvolutionalDL(3, 160, alpha=0.2, max_iter=2, tol=0, random_state=0)
    fft = est.fit(X).kernels_
    direct = clone(est).set_params(method="direct").fit(X).kernels_
    np.testing.assert_allclose(fft, direct, atol=1e-9)


# --------------------------------------------------------- chunked encoding


@pytest.mark.parametrize("likelihood", ["gaussian", "poisson"])
@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_chunked_encoding_equals_whole_signal_encoding(likelihood, n_jobs, method):
    rng = np.random.default_rng(7)
    H = rng.standard_normal((2, 2, 1, 8))
    X = rng.standard_normal((2, 2, 1, 3000))
    if likelihood == "poisson":
        X = rng.poisson(0.5, X.shape).astype(float)
    net = ConvNetwork(10, "fista", np.array([0.2, 0.3]), np.array([0, 1]), likelihood,
                      method=method)  # fmt: skip
    step = 0.5 / operator_norm2(H)
    offset = np.array([-0.3, 0.2])  # the intercept
    whole = encode(X, H, net, step, chunk_positions=10**6, offset=offset)
    chunked = encode(X, H, net, step, n_jobs=n_jobs, chunk_positions=97, offset=offset)
    # equal up to rounding (the Gram-form encoder picks its update per chunk)
    np.testing.assert_allclose(chunked, whole, rtol=1e-10, atol=1e-12)
    again = encode(X, H, net, step, n_jobs=3 - n_jobs, chunk_positions=97,
                   offset=offset)  # fmt: skip
    np.testing.assert_array_equal(again, chunked)  # n_jobs never matters
    assert np.count_nonzero(whole) > 100


# --------------------------------------------------------- data sets


def test_make_spike_recording_is_the_sum_of_its_events():
    X, kernels, events = make_spike_recording(2, 3000, n_channels=3, noise=0.0,
                                              random_state=0)  # fmt: skip
    assert X.shape == (2, 3, 3000) and kernels.shape == (3, 3, 45)
    np.testing.assert_allclose(np.linalg.norm(kernels.reshape(3, -1), axis=1), 1.0)
    rebuilt = np.zeros_like(X)
    for ev in events:
        p = ev["position"]
        rebuilt[ev["sample"], :, p : p + 45] += ev["amplitude"] * kernels[ev["kernel"]]
    np.testing.assert_allclose(rebuilt, X, atol=1e-12)
    rate = len(events) / (2 * 3 * 0.3)  # spikes per neuron per second
    assert 15 < rate < 45
    assert np.all((events["amplitude"] >= 1.0) & (events["amplitude"] <= 2.0))


@pytest.mark.parametrize("likelihood", ["poisson", "binomial"])
def test_make_spike_counts_draws_counts_from_the_model(likelihood):
    X, H, Z = make_spike_counts(30, 600, likelihood=likelihood, n_trials=3,
                                random_state=0)  # fmt: skip
    assert X.shape == (30, 600) and H.shape == (2, 1, 25) and Z.shape == (30, 2, 576)
    np.testing.assert_allclose(np.linalg.norm(H[:, 0], axis=1), 1.0)
    assert np.all(X >= 0) and np.all(X == np.round(X))
    if likelihood == "binomial":
        assert X.max() <= 3
    onsets = [np.flatnonzero(Z[i].sum(axis=0)) for i in range(30)]
    assert all(np.all(np.diff(o) >= 25) for o in onsets)  # events never overlap
    assert np.all((Z == 0) | ((Z >= 6.0) & (Z <= 10.0)))
    # far from events the counts follow the baseline alone
    rest = np.ones(X.shape, dtype=bool)
    for i, o in enumerate(onsets):
        for p in o:
            rest[i, p : p + 25] = False
    mean = 1 / (1 + np.exp(1.5)) * 3 if likelihood == "binomial" else np.exp(-1.5)
    assert X[rest].mean() == pytest.approx(mean, rel=0.1)
    again = make_spike_counts(30, 600, likelihood=likelihood, n_trials=3,
                              random_state=0)  # fmt: skip
    np.testing.assert_array_equal(again[0], X)
    with pytest.raises(ValueError, match="kernel_size"):
        make_spike_counts(2, 20, kernel_size=30)


def test_make_convolutional_data_shapes_and_model():
    X, H, Z = make_convolutional_data(3, (20, 24), kernel_size=(5, 4), n_channels=2,
                                      noise=0.0, random_state=0)  # fmt: skip
    assert X.shape == (3, 2, 20, 24) and H.shape == (3, 2, 5, 4)
    assert Z.shape == (3, 3, 16, 21) and np.all(Z >= 0)
    np.testing.assert_allclose(reconstruct(Z, H), X, atol=1e-12)
    X1, H1, Z1 = make_convolutional_data(2, 100, kernel_size=7, positive=False,
                                         random_state=0)  # fmt: skip
    assert X1.shape == (2, 100) and H1.shape == (3, 1, 7) and Z1.shape == (2, 3, 94)
    with pytest.raises(ValueError, match="must fit"):
        make_convolutional_data(2, 5, kernel_size=7)


# --------------------------------------------------------- estimator


@pytest.fixture(scope="module")
def spikes():
    return make_spike_recording(10, 10000, random_state=0)


@pytest.fixture(scope="module")
def fitted(spikes):
    X, _, _ = spikes
    return ConvolutionalDL(3, 45, alpha=0.6, random_state=0, n_jobs=2).fit(X)


def test_recovers_planted_spike_waveforms(spikes, fitted):
    _, kernels, _ = spikes
    errors = atom_recovery_errors(
        kernels.reshape(3, -1), fitted.kernels_.reshape(3, -1), shift_invariant=True
    )
    assert errors.max() < 0.1
    assert fitted.kernels_.shape == (3, 1, 45)
    np.testing.assert_allclose(
        np.linalg.norm(fitted.kernels_.reshape(3, -1), axis=1), 1
    )
    assert fitted.objective_history_[-1] < fitted.objective_history_[0]


def test_detect_events_sorts_spikes(spikes, fitted):
    X, kernels, events = spikes
    detected = fitted.detect_events(X, threshold=0.2)
    assert detected.dtype.names == events.dtype.names
    assert event_detection_f1(events, detected, kernels, fitted.kernels_) > 0.9
    assert np.all(np.abs(detected["amplitude"]) > 0.2)


def test_code_maps_take_signals_of_any_length(spikes, fitted):
    X, _, _ = spikes
    maps = fitted.code_maps(X[:2, :5000])
    assert maps.shape == (2, 3, 5000 - 44)
    # a code depends on the signal within n_unroll * (kw - 1) positions only
    whole = fitted.code_maps(X[:2])
    np.testing.assert_allclose(maps[:, :, :3000], whole[:, :, :3000], atol=1e-12)
    flat = fitted.transform(X[:2])
    assert flat.shape == (2, 3 * (10000 - 44))
    np.testing.assert_array_equal(flat.reshape(2, 3, -1), fitted.code_maps(X[:2]))
    with pytest.raises(ValueError, match="features"):
        fitted.transform(X[:2, :5000])


def test_inverse_transform_and_score(spikes, fitted):
    X, _, _ = spikes
    codes = fitted.transform(X[:3])
    rec = fitted.inverse_transform(codes)
    assert rec.shape == (3, 10000)
    residual = np.mean((rec - X[:3]) ** 2)
    assert residual < 0.02  # the noise variance is 0.01
    assert fitted.score(X[:3]) < 0
    early = ConvolutionalDL(3, 45, alpha=0.6, max_iter=1, tol=0, random_state=0)
    assert fitted.score(X[:3]) > early.fit(X).score(X[:3])


def test_code_mask_and_code_sign_are_respected_exactly():
    X, H, Z = make_convolutional_data(4, 400, kernel_size=16, positive=False,
                                      density=0.02, random_state=1)  # fmt: skip
    mask = np.random.default_rng(0).random(Z.shape) < 0.3
    est = ConvolutionalDL(3, 16, alpha=0.05, code_sign=[1, -1, 0], max_iter=3, tol=0,
                          random_state=0)  # fmt: skip
    est.fit(X, code_mask=mask)
    maps = est.code_maps(X, code_mask=mask)
    assert np.all(maps[~mask] == 0)
    assert np.all(maps[:, 0] >= 0) and np.all(maps[:, 1] <= 0)
    assert (maps[:, 2] < 0).any() and (maps[:, 2] > 0).any()
    assert np.count_nonzero(maps) > 50
    events = est.detect_events(X, code_mask=mask, min_distance=0)
    assert np.all(mask[events["sample"], events["kernel"], events["position"]])
    with pytest.raises(ValueError, match="code_mask"):
        est.fit(X, code_mask=mask[:, :2])
    with pytest.raises(ValueError, match="code_sign"):
        ConvolutionalDL(3, 16, code_sign=[1, 2, 0]).fit(X)


def test_images_and_multichannel_rank1_kernels():
    X, H, _ = make_convolutional_data(6, (24, 24), kernel_size=(5, 5), n_channels=2,
                                      random_state=0)  # fmt: skip
    est = ConvolutionalDL(3, (5, 5), alpha=0.1, max_iter=3, tol=0, random_state=0)
    est.fit(X)
    assert est.kernels_.shape == (3, 2, 5, 5)
    assert est.code_maps(X).shape == (6, 3, 20, 20)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    X, kernels, _ = make_spike_recording(4, 4000, n_channels=4, random_state=0)
    est = ConvolutionalDL(3, 45, alpha=0.6, rank1=True, max_iter=3, tol=0,
                          random_state=0).fit(X)  # fmt: skip
    for h in est.kernels_:
        s = np.linalg.svd(h, compute_uv=False)
        assert s[1] < 1e-8 * s[0]


def test_positive_and_smooth_kernels():
    X, _, _ = make_convolutional_data(4, 300, kernel_size=12, random_state=0)
    pos = ConvolutionalDL(2, 12, positive_dict=True, max_iter=3, tol=0,
                          random_state=0).fit(X)  # fmt: skip
    assert np.all(pos.kernels_ >= 0)
    rough = ConvolutionalDL(2, 12, max_iter=5, tol=0, random_state=0).fit(X)
    smooth = ConvolutionalDL(2, 12, kernel_smoothness=50.0, max_iter=5, tol=0,
                             random_state=0).fit(X)  # fmt: skip

    def roughness(H):
        return np.sum(np.diff(H, axis=-1) ** 2)

    assert roughness(smooth.kernels_) < roughness(rough.kernels_)


def test_count_likelihoods_fit_spike_counts():
    rng = np.random.default_rng(0)
    X, H, Z = make_convolutional_data(6, 500, kernel_size=10, density=0.01,
                                      noise=0.0, random_state=0)  # fmt: skip
    counts = rng.poisson(np.exp(np.clip(X, None, 3) - 1.0)).astype(float)
    for likelihood, extra in [("poisson", {}), ("binomial", {"n_trials": 30})]:
        data = np.minimum(counts, extra.get("n_trials", np.inf))
        est = ConvolutionalDL(3, 10, alpha=0.1, likelihood=likelihood, max_iter=3,
                              tol=0, random_state=0, **extra).fit(data)  # fmt: skip
        assert np.all(np.isfinite(est.kernels_))
        assert np.all(est.inverse_transform(est.transform(data)) >= 0)
    with pytest.raises(ValueError, match="counts"):
        ConvolutionalDL(3, 10, likelihood="poisson").fit(X)


@pytest.mark.parametrize("likelihood", ["poisson", "binomial"])
def test_count_likelihoods_recover_kernels_at_known_onsets(likelihood):
    """DUNL's setting: event onsets known (``code_mask``), amplitudes, kernels
    and the baseline learned from spike counts. The matching likelihood
    recovers the kernels and the baseline; the Gaussian one, fitted to the
    same counts with an intercept, does not."""
    X, H, Z = make_spike_counts(40, 1000, likelihood=likelihood, random_state=0)
    errors = {}
    for lik in (likelihood, "gaussian"):
        est = ConvolutionalDL(2, 25, alpha=0.05, code_sign=1, likelihood=lik,
                              fit_intercept=True, random_state=0)  # fmt: skip
        est.fit(X, code_mask=Z > 0)
        errors[lik] = atom_recovery_errors(H, est.kernels_, shift_invariant=True)
        if lik != "gaussian":
            assert est.intercept_[0] == pytest.approx(-1.5, abs=0.1)
            assert est.n_iter_ == est.max_iter  # tol="auto" is 0 for counts
            assert est.learning_rate_ == 0.2
    bound = 0.1 if likelihood == "poisson" else 0.2
    assert errors[likelihood].max() < bound
    assert errors[likelihood].mean() < 0.75 * errors["gaussian"].mean()


def test_intercept_is_the_baseline_of_every_channel():
    """With ``fit_intercept``, shifting every channel by a constant shifts the
    intercept by that constant and changes nothing else."""
    X, _, _ = make_convolutional_data(
        8, 600, n_components=2, kernel_size=12, n_channels=2, random_state=0
    )
    shift = np.array([3000.0, -1000.0])  # far from the data's scale
    params = dict(alpha=0.05, random_state=0, max_iter=10, tol=0)
    plain = ConvolutionalDL(2, 12, **params).fit(X)
    np.testing.assert_array_equal(plain.intercept_, 0.0)  # "auto": Gaussian
    centred = ConvolutionalDL(2, 12, fit_intercept=True, **params).fit(X)
    est = ConvolutionalDL(2, 12, fit_intercept=True, **params)
    est.fit(X + shift[None, :, None])
    np.testing.assert_allclose(est.intercept_, centred.intercept_ + shift, atol=1e-6)
    np.testing.assert_allclose(est.kernels_, centred.kernels_, atol=1e-6)
    np.testing.assert_allclose(est.transform(X + shift[None, :, None]),
                               centred.transform(X), atol=1e-6)  # fmt: skip
    rec = est.inverse_transform(est.transform(X + shift[None, :, None]))
    np.testing.assert_allclose(rec - shift[None, :, None],
                               centred.inverse_transform(centred.transform(X)),
                               atol=1e-6)  # fmt: skip
    counts = np.random.default_rng(0).poisson(2.0, (4, 300)).astype(float)
    est = ConvolutionalDL(2, 12, likelihood="poisson", max_iter=1).fit(counts)
    assert est.intercept_.shape == (1,) and est.learning_rate_ == 0.2
    adam = ConvolutionalDL(2, 12, optimizer="adam", max_iter=1).fit(X)
    assert adam.learning_rate_ == 0.003


def test_reproducible_picklable_clonable_float32(spikes):
    X = spikes[0][:3, :3000]
    params = dict(alpha=0.6, max_iter=3, tol=0, random_state=0)
    a = ConvolutionalDL(3, 45, **params).fit(X)
    b = ConvolutionalDL(3, 45, n_jobs=2, **params).fit(X)
    np.testing.assert_array_equal(a.kernels_, b.kernels_)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.transform(X), a.transform(X))
    assert not hasattr(clone(a), "kernels_")
    X32 = X.astype(np.float32)
    f = ConvolutionalDL(3, 45, **params).fit(X32)
    assert f.kernels_.dtype == np.float32 and f.transform(X32).dtype == np.float32
    X_copy = X.copy()
    ConvolutionalDL(3, 45, **params).fit(X)
    np.testing.assert_array_equal(X, X_copy)


def test_errors_name_the_argument():
    X = np.random.default_rng(0).standard_normal((3, 50))
    with pytest.raises(ValueError, match="kernel_size"):
        ConvolutionalDL(2, 60).fit(X)
    with pytest.raises(ValueError, match="kernel_size"):
        ConvolutionalDL(2, (3, 3)).fit(X)
    with pytest.raises(ValueError, match="alpha"):
        ConvolutionalDL(2, 5, alpha=[0.1, 0.2, 0.3]).fit(X)
    with pytest.raises(ValueError, match="kernel_init"):
        ConvolutionalDL(2, 5, kernel_init=np.ones((2, 1, 4))).fit(X)
    with pytest.raises(ValueError, match="n_jobs"):
        ConvolutionalDL(2, 5, n_jobs=0).fit(X)
    with pytest.raises(ValueError, match="min_distance"):
        ConvolutionalDL(2, 5, max_iter=1, tol=0).fit(X).detect_events(
            X, min_distance=-1
        )


def test_non_finite_steps_are_not_applied():
    X = np.random.default_rng(0).standard_normal((3, 80)) * 1e200
    est = ConvolutionalDL(2, 5, max_iter=2, tol=0)
    with pytest.raises(FloatingPointError, match="Nothing was fitted"):
        with pytest.warns(RuntimeWarning, match="non-finite"):
            est.fit(X)
    assert not hasattr(est, "kernels_")


def test_count_partial_fit_and_a_non_finite_step_keep_the_intercept(monkeypatch):
    X, _, Z = make_spike_counts(8, 400, random_state=0)
    params = dict(likelihood="poisson", code_sign=1, alpha=0.05, random_state=0)
    est = ConvolutionalDL(2, 25, **params).partial_fit(X, code_mask=Z > 0)
    first, steps = est.intercept_.copy(), est.n_steps_
    est.partial_fit(X, code_mask=Z > 0)
    assert est.n_steps_ > steps and np.all(np.isfinite(est.intercept_))
    assert est.intercept_[0] != first[0]  # carried over and updated

    calls = {"n": 0}
    real = conv_training.forward_backward

    def flaky(*args, **kwargs):  # the second step's gradient is NaN
        res = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            res.grad[...] = np.nan
        return res

    monkeypatch.setattr(conv_training, "forward_backward", flaky)
    est = ConvolutionalDL(2, 25, batch_size=4, max_iter=1, **params)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        est.fit(X, code_mask=Z > 0)  # two steps: the second is not applied
    # the state from before the last applied update is restored, intercept
    # included: here the initial one, the log of the mean count
    assert est.n_steps_ == 1
    np.testing.assert_allclose(est.intercept_, [np.log(X.mean())], rtol=1e-12)


def test_verbose_callback_and_convergence_warning(capsys):
    X, _, _ = make_convolutional_data(3, 200, kernel_size=8, random_state=0)
    seen = []

    def callback(est, info):
        seen.append(info["n_steps"])
        return info["n_steps"] >= 2

    ConvolutionalDL(2, 8, verbose=1, callback=callback, random_state=0).fit(X)
    assert seen == [1, 2]
    assert "[ConvolutionalDictionaryLearning] epoch" in capsys.readouterr().out
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        ConvolutionalDL(2, 8, max_iter=1, tol=1e-12, align_kernels=False,
                        random_state=0).fit(X)  # fmt: skip


def test_partial_fit_continues_training(spikes):
    X = spikes[0][:4, :3000]
    est = ConvolutionalDL(3, 45, alpha=0.6, random_state=0)
    est.partial_fit(X[:2])
    first = est.kernels_.copy()
    est.partial_fit(X[2:])
    assert est.n_steps_ == 2 and not np.array_equal(first, est.kernels_)


def test_event_detection_f1_matches_kernels_up_to_their_shift():
    X, kernels, events = make_spike_recording(2, 3000, random_state=0)
    assert event_detection_f1(events, events, kernels, kernels) == 1.0
    # kernels learned shifted by 3 samples and listed in another order
    shifted = np.roll(kernels, -3, axis=-1)[[2, 0, 1]]
    moved = events.copy()
    moved["kernel"] = np.array([1, 2, 0])[events["kernel"]]
    moved["position"] += 3
    assert event_detection_f1(events, moved, kernels, shifted) == 1.0
    late = moved.copy()
    late["position"] += 6  # beyond the tolerance of 5
    assert event_detection_f1(events, late, kernels, shifted) == 0.0
    half = moved[::2]
    expected = 2 * len(half) / (len(events) + len(half))
    assert event_detection_f1(events, half, kernels, shifted) == pytest.approx(expected)
    with pytest.raises(ValueError, match="events_est"):
        event_detection_f1(events, np.zeros(3), kernels, kernels)


def test_pipeline_and_grid_search():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    # two classes of signals, each made of its own kernel
    X0, _, _ = make_convolutional_data(20, 120, n_components=1, kernel_size=10,
                                       density=0.03, random_state=0)  # fmt: skip
    X1, _, _ = make_convolutional_data(20, 120, n_components=1, kernel_size=10,
                                       density=0.03, random_state=1)  # fmt: skip
    X, y = np.vstack([X0, X1]), np.repeat([0, 1], 20)
    pooled = FunctionTransformer(lambda Z: np.abs(Z.reshape(len(Z), 2, -1)).sum(-1))
    pipe = make_pipeline(
        ConvolutionalDL(2, 10, alpha=0.2, max_iter=10, tol=0, random_state=0),
        pooled,
        LogisticRegression(),
    )
    search = GridSearchCV(
        pipe, {"convolutionaldictionarylearning__alpha": [0.1, 0.3]}, cv=2
    )
    search.fit(X, y)
    assert search.best_params_["convolutionaldictionarylearning__alpha"] in (0.1, 0.3)
    assert search.score(X, y) > 0.9
    unsupervised = GridSearchCV(
        ConvolutionalDL(2, 10, max_iter=3, tol=0, random_state=0),
        {"alpha": [0.1, 0.3], "n_components": [1, 2]},
        cv=2,
    ).fit(X)
    assert np.all(np.isfinite(unsupervised.cv_results_["mean_test_score"]))


def test_detect_events_in_blocks_equals_one_block(spikes, fitted, monkeypatch):
    X = spikes[0][:2, :6000]
    whole = fitted.detect_events(X, threshold=0.1)
    monkeypatch.setattr(conv_events, "DETECT_BLOCK", 701)
    blocks = fitted.detect_events(X, threshold=0.1)
    assert len(whole) > 50
    np.testing.assert_array_equal(blocks[["sample", "kernel", "position"]],
                                  whole[["sample", "kernel", "position"]])  # fmt: skip
    np.testing.assert_allclose(blocks["amplitude"], whole["amplitude"], rtol=1e-10)


# ------------------------------------------------- the shared trainer's API


def _small_fit(**extra):
    X, _, _ = make_convolutional_data(4, 300, kernel_size=12, random_state=0)
    params = dict(max_iter=3, tol=0, random_state=0) | extra
    return X, ConvolutionalDL(2, 12, **params).fit(X)


def test_inference_uses_the_public_fitted_attributes():
    X, est = _small_fit()
    codes = est.transform(X)
    maps = est.code_maps(X)
    events = est.detect_events(X, threshold=0.05)
    rec = est.inverse_transform(codes)
    score = est.score(X)
    assert len(events) > 0
    # the private training state is not used by inference
    del est._state
    np.testing.assert_array_equal(est.transform(X), codes)
    np.testing.assert_array_equal(est.code_maps(X), maps)
    np.testing.assert_array_equal(est.detect_events(X, threshold=0.05), events)
    np.testing.assert_array_equal(est.inverse_transform(codes), rec)
    assert est.score(X) == score
    # pickled, it transforms the same
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.transform(X), codes)
    # editing kernels_ (or intercept_) changes what inference does
    est.kernels_ = est.kernels_[::-1].copy()
    np.testing.assert_allclose(
        est.transform(X).reshape(maps.shape), maps[:, ::-1], rtol=1e-9, atol=1e-12
    )
    swapped = est.detect_events(X, threshold=0.05)
    assert not np.array_equal(swapped["kernel"], events["kernel"])
    assert not np.allclose(est.inverse_transform(codes), rec)
    est.intercept_ = est.intercept_ + 1.0
    np.testing.assert_allclose(
        est.inverse_transform(np.zeros_like(codes)), np.ones_like(X)
    )


@pytest.mark.parametrize("image", [False, True])
def test_detect_events_without_events_returns_empty_records(image):
    if image:
        X, _, _ = make_convolutional_data(3, (20, 24), kernel_size=(5, 5),
                                          random_state=0)  # fmt: skip
        est = ConvolutionalDL(2, (5, 5), alpha=0.1, max_iter=2, tol=0,
                              random_state=0).fit(X)  # fmt: skip
    else:
        X, est = _small_fit()
    some = est.detect_events(X, threshold=0.0)
    assert len(some) > 0
    for events in (
        est.detect_events(X, threshold=1e3),
        est.detect_events(np.zeros_like(X)),
    ):
        assert len(events) == 0
        assert events.dtype == some.dtype
        assert events["position"].shape == (0,) + some["position"].shape[1:]


def test_a_fit_that_raises_leaves_the_estimator_as_it_was():
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    X, est = _small_fit()
    codes = est.transform(X)
    before = {k: v for k, v in vars(est).items() if k.endswith("_")}
    state = est._state

    def boom(estimator, info):
        raise RuntimeError("stop")

    wide, _, _ = make_convolutional_data(4, 400, kernel_size=12, random_state=1)
    est.set_params(callback=boom)
    with pytest.raises(RuntimeError, match="stop"):
        est.fit(wide)
    with pytest.raises(RuntimeError, match="stop"):
        est.partial_fit(X)
    after = {k: v for k, v in vars(est).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert after[k] is v
    assert est._state is state
    assert est.n_features_in_ == 300 and est.signal_shape_ == (300,)
    np.testing.assert_array_equal(est.set_params(callback=None).transform(X), codes)

    fresh = ConvolutionalDL(2, 12, max_iter=2, tol=0, callback=boom)
    with pytest.raises(RuntimeError, match="stop"):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    assert not hasattr(fresh, "n_features_in_")
    with pytest.raises(RuntimeError, match="stop"):
        fresh.partial_fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)


def test_partial_fit_calls_the_callback():
    X, _, _ = make_convolutional_data(4, 300, kernel_size=12, random_state=0)
    seen = []

    def callback(est, info):
        seen.append((info["n_steps"], info["kernels"].shape))
        assert not info["kernels"].flags.writeable

    est = ConvolutionalDL(2, 12, random_state=0, callback=callback)
    est.partial_fit(X[:2]).partial_fit(X[2:])
    assert seen == [(1, (2, 1, 1, 12)), (2, (2, 1, 1, 12))]


class _EpochCounter:
    """A scikit-learn FitCallback counting the ends of the epochs' tasks."""

    def __init__(self):
        self.setups = self.teardowns = self.begun = self.epochs = 0
        self.fitted = []

    def setup(self, estimator, context):
        self.setups += 1

    def on_fit_task_begin(self, estimator, context, **kwargs):
        self.begun += 1

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None, **kw):
        if context.task_name == "epoch":
            self.epochs += 1
            if fitted_estimator is not None:
                self.fitted.append(fitted_estimator)
        return False

    def teardown(self, estimator, context):
        self.teardowns += 1


def test_sklearn_callbacks_see_one_task_per_epoch():
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
    X, plain = _small_fit(max_iter=4)
    counter = _EpochCounter()
    est = ConvolutionalDL(2, 12, max_iter=4, tol=0, random_state=0)
    est.set_callbacks(counter).fit(X)
    assert counter.epochs == est.n_iter_ == 4
    assert counter.begun == 4 + 1  # the fit and its epochs
    assert counter.setups == counter.teardowns == 1
    np.testing.assert_array_equal(est.kernels_, plain.kernels_)  # no effect
    assert len(counter.fitted) == 4  # the epoch's estimator, ready to transform
    np.testing.assert_array_equal(counter.fitted[-1].transform(X), plain.transform(X))


def test_sklearn_progress_bar():
    callback = pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
    pytest.importorskip("rich")
    X, _, _ = make_convolutional_data(4, 300, kernel_size=12, random_state=0)
    est = ConvolutionalDL(2, 12, max_iter=2, tol=0, random_state=0)
    est.set_callbacks(callback.ProgressBar()).fit(X)
    assert est.n_iter_ == 2


def test_convolutional_dl_is_an_alias_of_the_full_name():
    from skunroll import ConvolutionalDictionaryLearning

    assert ConvolutionalDL is ConvolutionalDictionaryLearning
    assert repr(ConvolutionalDL(2, 5)).startswith("ConvolutionalDictionaryLearning(")


def test_deprecated_spellings_warn_and_give_the_same_fit():
    """prior="nonneg_l1" is positive_code=True, positive_kernels is
    positive_dict: each warns (FutureWarning) and gives identical results."""
    X, _, _ = make_convolutional_data(4, 300, kernel_size=12, random_state=0)
    kw = dict(max_iter=2, tol=0, random_state=0)
    new = ConvolutionalDL(2, 12, positive_code=True, positive_dict=True, **kw).fit(X)
    with pytest.warns(FutureWarning, match="positive_code=True"):
        old_prior = ConvolutionalDL(
            2, 12, prior="nonneg_l1", positive_dict=True, **kw
        ).fit(X)
    with pytest.warns(FutureWarning, match="positive_dict"):
        old_pos = ConvolutionalDL(
            2, 12, positive_code=True, positive_kernels=True, **kw
        ).fit(X)
    for old in (old_prior, old_pos):
        np.testing.assert_array_equal(old.kernels_, new.kernels_)
        np.testing.assert_array_equal(old.transform(X), new.transform(X))
    assert np.all(new.kernels_ >= 0) and np.all(new.code_maps(X) >= 0)
    with pytest.warns(FutureWarning, match="positive_dict"):
        ConvolutionalDL(2, 12, positive_kernels=False, **kw).partial_fit(X)
