"""SpikeSorter: accuracy on SpikeInterface's ground truth (scored by its own
comparison), scale-free thresholds, the amplitude split, bad input and the
estimator contracts."""

import numpy as np
import pytest
import spikeinterface.core as sc
from scipy import signal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from spikeinterface.comparison import compare_sorter_to_ground_truth

from skunroll.spikes import SpikeSorter
from skunroll.spikes._cluster import GaussianClasses, split_features
from skunroll.spikes.spikeinterface import sort_recording

FS = 30000.0


@pytest.fixture(scope="module")
def ground_truth():
    """6 s, 4 channels, 3 units at 30 kHz from SpikeInterface's simulator."""
    rec, gt = sc.generate_ground_truth_recording(
        durations=[6.0], sampling_frequency=FS, num_channels=4, num_units=3, seed=1
    )
    return rec, gt, rec.get_traces()


@pytest.fixture(scope="module")
def fitted(ground_truth):
    _, _, X = ground_truth
    return SpikeSorter(FS, random_state=0).fit(X)


def accuracies(gt, times, labels):
    sorting = sc.NumpySorting.from_samples_and_labels([times], [labels], FS)
    cmp = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True)
    return cmp.get_performance()["accuracy"].to_numpy(dtype=float)


def same_spikes(a, b):
    """Fraction of the spikes (time, unit) of either sorting found in both."""
    sa = set(zip(a[0].tolist(), a[1].tolist(), strict=True))
    sb = set(zip(b[0].tolist(), b[1].tolist(), strict=True))
    return len(sa & sb) / max(len(sa), len(sb))


def peak_to_peak_snr(X, gt):
    noise = np.median(np.abs(X - np.median(X, axis=0)), axis=0) / 0.6745
    sv = gt.to_spike_vector()
    out = []
    for u in range(len(gt.unit_ids)):
        t = sv["sample_index"][sv["unit_index"] == u]
        t = t[(t >= 30) & (t < len(X) - 60)]
        w = X[t[:, None] + np.arange(-30, 60)].mean(axis=0)
        out.append(np.max((w.max(axis=0) - w.min(axis=0)) / noise))
    return np.array(out)


def test_spikeinterface_ground_truth_accuracy(ground_truth, fitted):
    rec, gt, X = ground_truth
    snr = peak_to_peak_snr(X, gt)
    assert (snr >= 5).all()  # every unit of this recording is sortable
    acc = accuracies(gt, fitted.spike_times_, fitted.labels_)
    assert acc.min() >= 0.9, acc
    assert acc.mean() >= 0.95, acc
    # spike times at the templates' reference: the trough of the largest channel
    t = fitted.templates_
    main = np.abs(t).max(axis=1).argmax(axis=1)
    troughs = t[np.arange(len(t)), :, main].argmin(axis=1)
    assert np.all(np.abs(troughs - fitted.n_before_) <= 2)
    assert fitted.templates_.shape == (fitted.n_units_, fitted.kernels_.shape[2], 4)


def test_predict_matches_fit_and_adapter(ground_truth, fitted):
    rec, gt, X = ground_truth
    times, labels = fitted.predict(X)
    np.testing.assert_array_equal(times, fitted.spike_times_)
    np.testing.assert_array_equal(labels, fitted.labels_)
    sorting = sort_recording(rec, random_state=0)
    assert isinstance(sorting, sc.NumpySorting)
    cmp = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True)
    assert cmp.get_performance()["accuracy"].to_numpy(dtype=float).min() >= 0.9


def test_same_spikes_in_any_unit(ground_truth, fitted):
    """µV x 1e3, x 1e-3 and int16 samples with their gain give the same spikes."""
    _, gt, X = ground_truth
    ref = (fitted.spike_times_, fitted.labels_)
    X64 = X.astype(np.float64)
    ref64 = SpikeSorter(FS, random_state=0).fit_predict(X64)
    assert same_spikes(ref64, ref) >= 0.98
    for scale in (1e3, 1e-3):
        # in float64 the scaled recording normalises to the same float32 data
        got = SpikeSorter(FS, random_state=0).fit_predict(X64 * scale)
        np.testing.assert_array_equal(got[0], ref64[0])
        np.testing.assert_array_equal(got[1], ref64[1])
    # float32 x 1e3 is rounded (1 ulp): spikes at the threshold may flip
    got = SpikeSorter(FS, random_state=0).fit_predict(X * np.float32(1e3))
    assert same_spikes(got, ref) >= 0.98
    gain = 0.195  # µV per bit of an Intan board
    X16 = np.round(X / gain).astype(np.int16)
    sorter = SpikeSorter(FS, gain=gain, random_state=0)
    times, labels = sorter.fit_predict(X16)
    assert same_spikes((times, labels), ref) >= 0.98
    assert accuracies(gt, times, labels).min() >= 0.9
    # the gain puts templates and noise levels back in µV
    np.testing.assert_allclose(sorter.noise_level_, fitted.noise_level_, rtol=0.05)


def test_event_features_are_read_from_the_residual(ground_truth, fitted):
    """An event's footprint features are the projections of the residual (the
    recording less the reconstruction from all codes, here by scipy) on the
    kernel's per-channel waveforms, so that a spike overlapping another
    unit's does not carry that unit's waveform into them."""
    _, _, X = ground_truth
    XnT = fitted._prepare(X, fitting=False)
    pos, ker, amp, feats = fitted._deconvolve(XnT)  # 6 s: one block
    codes = fitted.dictionary_learning_.code_maps(XnT[None])[0].astype(np.float64)
    H = fitted.kernels_
    K, C, L = H.shape
    recon = np.zeros(XnT.shape)
    for k in range(K):
        for c in range(C):
            recon[c] += signal.convolve(codes[k], H[k, c])
    residual = XnT - recon
    assert np.std(residual) < np.std(XnT)
    for i in np.linspace(0, len(pos) - 1, 25).astype(int):
        h = H[ker[i]]
        energy = np.sum(h**2, axis=1)
        w = h / np.sqrt(energy)[:, None]
        w[energy < 0.05 * energy.max()] = w[np.argmax(energy)]
        window = residual[:, pos[i] : pos[i] + L]
        assert feats[i, 0] == amp[i]
        np.testing.assert_allclose(
            feats[i, 1:], np.sum(window * w, axis=1), rtol=1e-4, atol=1e-3
        )


def test_spikes_far_below_their_unit_amplitude_are_dropped(ground_truth, fitted):
    """An event whose code amplitude is under AMP_FLOOR times the median of
    the sub-unit its features fall in (a large spike's small code on another
    kernel) gives no spike; one just above it does."""
    from skunroll.spikes import sorter

    _, _, X = ground_truth
    XnT = fitted._prepare(X, fitting=False)
    pos, ker, amp, feats = fitted._deconvolve(XnT)
    sub = np.empty(len(pos), dtype=np.int64)
    for k, classes in enumerate(fitted._classes):
        sel = ker == k
        sub[sel] = fitted._first_sub[k] + classes.predict(feats[sel])
    # isolated events (no other within 2 ms): every 20th just under its
    # floor, and every 20th from the 10th just over it
    gap = np.diff(pos)
    alone = np.flatnonzero(
        (np.r_[np.inf, gap] > 2e-3 * fitted._fs())
        & (np.r_[gap, np.inf] > 2e-3 * fitted._fs())
    )
    low, high = alone[::20], alone[10::20]
    floor = sorter.AMP_FLOOR * fitted._sub_amp[sub]
    amp = amp.copy()
    amp[low] = 0.9 * floor[low]
    amp[high] = 1.1 * floor[high]
    times, _ = fitted._label(XnT, (pos, ker, amp, feats))
    at = pos + fitted.kernel_reference_[ker]
    assert low.size > 5 and high.size > 5
    assert not np.isin(at[low], times).any()
    assert np.isin(at[high], times).all()


def test_amplitude_split_separates_units_of_one_shape():
    """Two units with one waveform at 8 and 16 noise levels: one kernel, two
    units (the post-deconvolution split)."""
    rng = np.random.default_rng(0)
    fs, n = 20000.0, 200_000
    t = np.arange(60)
    wave = -np.exp(-0.5 * ((t - 20) / 3.0) ** 2) + 0.4 * np.exp(
        -0.5 * ((t - 30) / 5.0) ** 2
    )
    wave /= -wave.min()
    X = rng.standard_normal((n, 1))
    truth = []
    grid = rng.permutation(np.arange(100, n - 100, 150))[:600]
    for u, amp in enumerate((8.0, 16.0)):
        starts = np.sort(grid[u * 300 : (u + 1) * 300])
        for s in starts:
            X[s : s + 60, 0] += amp * wave
        truth.append(starts + 20)
    sorter = SpikeSorter(fs, freq_band=None, random_state=0)
    times, labels = sorter.fit_predict(X)
    assert sorter.n_units_ == 2
    for true_times in truth:
        best = 0.0
        for u in range(sorter.n_units_):
            found = times[labels == u]
            hit = np.abs(found[:, None] - true_times[None, :]).min(axis=0) <= 4
            best = max(best, hit.sum() / (len(true_times) + len(found) - hit.sum()))
        assert best >= 0.95


def test_split_features_split_test():
    rng = np.random.default_rng(0)
    one = rng.normal(10, 1, 500)[:, None]
    assert split_features(one, 3, 3.0, 20, 0.1, 0).max() == 0
    two = np.concatenate([one, rng.normal(20, 1, (300, 1))])
    labels = split_features(two, 3, 3.0, 20, 0.1, 0)
    assert labels.max() == 1
    # the two clusters are the two amplitudes
    assert len(np.unique(labels[:500])) == 1 and len(np.unique(labels[500:])) == 1
    assert labels[0] != labels[-1]


def test_split_features_keeps_a_flat_large_unit():
    # a large unit whose amplitudes spread flat over +-5 % (sub-sample phase):
    # a mixture finds halves 3 deviations apart, but only 10 % of the mean
    rng = np.random.default_rng(0)
    flat = rng.uniform(150, 165, 900)[:, None]
    assert split_features(flat, 3, 3.0, 20, 0.0, 0).max() >= 1
    assert split_features(flat, 3, 3.0, 20, 0.1, 0).max() == 0


def test_split_features_separates_footprints():
    # two units with one amplitude on the kernel and different footprints
    # (the residual footprint on 4 channels): one feature cannot cut them,
    # the footprint's axes can; the classes then label new events alike
    rng = np.random.default_rng(1)
    n = 600
    amp = rng.normal(12, 1, 2 * n)
    foot = rng.standard_normal((2 * n, 4))
    foot[:n, 0] += 3.0
    foot[n:, 0] -= 3.0
    foot[:n, 1] -= 2.0
    F = np.column_stack([amp, foot])
    assert split_features(F[:, :1], 4, 3.0, 20, 0.1, 0).max() == 0
    labels = split_features(F, 4, 3.0, 20, 0.1, 0, n_axes=(2, 4))
    assert labels.max() == 1
    truth = np.repeat([0, 1], n)
    agree = max(np.mean(labels == truth), np.mean(labels != truth))
    assert agree >= 0.97
    classes = GaussianClasses(F, labels)
    assert np.mean(classes.predict(F) == labels) >= 0.97
    # a kernel without events: one class, and any event goes to it
    empty = GaussianClasses(np.empty((0, 5)), np.empty(0, dtype=np.int64))
    assert len(empty.means) == 1
    assert np.all(empty.predict(F[:10]) == 0)


def test_constant_channel_is_ignored(ground_truth, fitted):
    _, gt, X = ground_truth
    X2 = np.column_stack([X, np.full(len(X), 3.0, dtype=X.dtype)])
    sorter = SpikeSorter(FS, random_state=0).fit(X2)
    assert sorter.noise_level_[-1] == 0.0
    assert np.all(sorter.templates_[:, :, -1] == 0)
    assert accuracies(gt, sorter.spike_times_, sorter.labels_).min() >= 0.9


@pytest.mark.parametrize(
    "X, params, match",
    [
        (np.zeros((50, 2)), {}, "shorter than one kernel"),
        (np.ones((6000, 2)), {}, "every channel of X is constant"),
        (np.full((6000, 2), np.nan), {}, "entirely NaN"),
        (np.random.default_rng(0).standard_normal((6000, 2)), {}, "no spikes"),
        # nine crossings of 4 noise levels, in no cluster of five
        (np.random.default_rng(0).standard_normal((600_000, 1)), {}, "no cluster"),
        (np.zeros(6000), {}, "X has shape"),
        (np.zeros((6000, 2), dtype=complex), {}, "complex"),
        (np.zeros((6000, 2)), {"sampling_frequency": 0.0}, "sampling_frequency"),
        (np.zeros((6000, 2)), {"freq_band": (300.0, 100.0)}, "increasing"),
        ([], {}, "empty list"),
    ],
)
def test_bad_input(X, params, match):
    sorter = SpikeSorter(**{"sampling_frequency": FS, **params})
    with pytest.raises(ValueError, match=match):
        sorter.fit(X)
    assert not hasattr(sorter, "templates_")  # no half-fitted estimator


def test_noise_gives_no_unit_and_says_so():
    """Twenty seconds of Gaussian noise on four channels: crossings of 4
    noise levels cluster, but no unit keeps min_spikes spikes; the sorter
    warns rather than returning an empty sorting silently."""
    X = np.random.default_rng(0).standard_normal((600_000, 4))
    with pytest.warns(UserWarning, match="found no neurons"):
        sorter = SpikeSorter(30000.0, random_state=0).fit(X)
    assert sorter.n_units_ == 0 and sorter.spike_times_.size == 0
    assert sorter.templates_.shape == (0, sorter.templates_.shape[1], 4)


def test_partly_nan_channel_names_it(ground_truth):
    X = ground_truth[2].copy()
    X[100:200, 2] = np.nan
    with pytest.raises(ValueError, match=r"channels \[2\]"):
        SpikeSorter(FS).fit(X)


def test_contracts(ground_truth, fitted, capsys):
    _, _, X = ground_truth
    name = "SpikeSorter"
    check_parameters_default_constructible(name, SpikeSorter())
    check_no_attributes_set_in_init(name, SpikeSorter())
    check_get_params_invariance(name, SpikeSorter())
    check_set_params(name, SpikeSorter())
    assert clone(fitted).get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        SpikeSorter(FS).predict(X)
    with pytest.raises(ValueError, match="channels"):
        fitted.predict(X[:, :3])
    # the caller's array is not modified, chunks are one recording
    X0 = X.copy()
    half = len(X) // 2
    times, labels = fitted.predict([X[:half], X[half:]])
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(times, fitted.spike_times_)
    # verbose reports every stage and every deconvolved block
    SpikeSorter(FS, random_state=0, verbose=1, block_seconds=2.0).fit(X)
    out = capsys.readouterr().out
    assert "starting kernels" in out and "deconvolved block 3/3" in out


@pytest.mark.parametrize(
    "params, floor",
    # whitening measured 0.897 on this recording (whose noise is independent
    # across channels, so whitening only adds its estimation error)
    [({"whiten": True}, 0.85), ({"rank1": True}, 0.9), ({"encoder": "fista"}, 0.9)],
)
def test_options_sort_as_well(ground_truth, params, floor):
    _, gt, X = ground_truth
    sorter = SpikeSorter(FS, random_state=0, **params).fit(X)
    assert accuracies(gt, sorter.spike_times_, sorter.labels_).min() >= floor
    if params.get("whiten"):
        W = sorter.whitening_
        np.testing.assert_allclose(W, W.T, atol=1e-12)  # ZCA: symmetric
