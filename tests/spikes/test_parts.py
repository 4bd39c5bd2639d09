"""The sorter's parts: recordings as input, noise levels, template distance
and merging (against direct computations)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import signal

from skunroll.spikes._cluster import merge_units, template_distance
from skunroll.spikes._preprocess import (
    MAD_TO_STD,
    as_recording,
    bandpass,
    robust_noise,
)

DTYPES = [np.int16, np.int32, np.uint8, np.float32, np.float64]


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.tuples(st.integers(1, 30), st.integers(1, 4)),
    gain=st.sampled_from([1.0, 0.195, 2.0]),
    data=st.data(),
)
def test_as_recording_dtypes_and_gain(dtype, shape, gain, data):
    X = data.draw(hnp.arrays(dtype, shape, elements=st.integers(0, 100)))
    X0 = X.copy()
    R = as_recording(X, gain)
    np.testing.assert_array_equal(X, X0)  # the caller's array is untouched
    assert R.shape == X.shape
    expected = np.float64 if dtype == np.float64 else np.float32
    assert R.dtype == expected  # float32 stays float32, integers become float32
    np.testing.assert_allclose(R, X.astype(np.float64) * gain, rtol=1e-6)
    chunks = as_recording([X[: shape[0] // 2], X[shape[0] // 2 :]], gain)
    np.testing.assert_array_equal(chunks, R)


def test_as_recording_errors():
    with pytest.raises(ValueError, match="different numbers of channels"):
        as_recording([np.zeros((5, 2)), np.zeros((5, 3))], 1.0)
    with pytest.raises(ValueError, match="could not be converted"):
        as_recording(np.array([["a", "b"]]), 1.0)
    with pytest.raises(ValueError, match="0 channels"):
        as_recording(np.zeros((5, 0)), 1.0)


def test_robust_noise_is_the_gaussian_sd_despite_spikes():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, [1.0, 5.0], size=(200_000, 2))
    X[::100] -= 40.0  # 1 % of large spikes
    median, noise = robust_noise(X)
    # 1 % of outliers move the median by about 0.0125 standard deviations
    assert np.all(np.abs(median - 3.0) < 0.03 * np.array([1.0, 5.0]))
    np.testing.assert_allclose(noise, [1.0, 5.0], rtol=0.03)
    assert abs(MAD_TO_STD - np.sqrt(2) * 0.476936) < 1e-6  # erfinv(1/2) sqrt(2)


@pytest.mark.parametrize("band", [(300.0, 6000.0), (300.0, None), (None, 3000.0)])
@pytest.mark.parametrize("q", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bandpass_is_scipys_sosfiltfilt_decimated_channel_major(band, q, dtype):
    rng = np.random.default_rng(2)
    X = (rng.standard_normal((5003, 3)) * [1.0, 50.0, 0.01] + 7.0).astype(dtype)
    X0 = X.copy()
    out = bandpass(X, band, 20000.0, q, n_jobs=2)
    low, high = band
    if low and high:
        sos = signal.butter(2, [low, high], "bandpass", fs=20000.0, output="sos")
    elif low:
        sos = signal.butter(2, low, "highpass", fs=20000.0, output="sos")
    else:
        sos = signal.butter(2, high, "lowpass", fs=20000.0, output="sos")
    ref = signal.sosfiltfilt(sos, X.astype(np.float64), axis=0)[::q].T
    assert out.dtype == np.float32 and out.flags["C_CONTIGUOUS"]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_array_equal(X, X0)
    # no band: the decimated recording, channel-major float32
    np.testing.assert_array_equal(
        bandpass(X, (None, None), 2e4, q), X[::q].T.astype(np.float32)
    )
    # a recording shorter than scipy's padding is padded by what it has
    short = bandpass(X[:7], band, 20000.0, 1)
    assert short.shape == (3, 7) and np.all(np.isfinite(short))


def test_robust_noise_of_a_channel_major_view_equals_the_time_major_one():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 4)) * [1, 2, 0, 3]
    X[:, 2] = np.where(np.arange(3000) % 10 == 0, 1.0, 0.0)  # MAD 0, varies
    median, noise = robust_noise(X)
    m2, n2 = robust_noise(np.ascontiguousarray(X.T).T)
    np.testing.assert_array_equal(median, m2)
    np.testing.assert_array_equal(noise, n2)
    np.testing.assert_allclose(median, np.median(X, axis=0))
    assert noise[2] == pytest.approx(X[:, 2].std())


def test_template_distance_brute_force():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 20))
    for lag in (-3, 0, 4):
        b = np.zeros_like(a)
        if lag >= 0:
            b[:, : 20 - lag] = a[:, lag:]
        else:
            b[:, -lag:] = a[:, : 20 + lag]
        # brute force: zero-pad both to 40 samples and shift b by every lag
        best = min(
            np.linalg.norm(
                np.roll(np.pad(a, ((0, 0), (10, 10))), -s, axis=1)
                - np.pad(b, ((0, 0), (10, 10)))
            )  # fmt: skip
            for s in range(-5, 6)
        )
        d, found = template_distance(a, b, 5)
        assert found == lag
        np.testing.assert_allclose(d, best, atol=1e-12)


def test_merge_units_merges_close_templates_only():
    rng = np.random.default_rng(2)
    t = rng.standard_normal((4, 30)) * 5
    near = t + 0.1 * rng.standard_normal(t.shape)  # 0.1 noise: distance ~1
    far = rng.standard_normal((4, 30)) * 5
    labels = merge_units([t, far, near], [100, 50, 10], distance=4.0, max_lag=2)
    assert labels[0] == labels[2] != labels[1]
    assert sorted(set(labels.tolist())) == [0, 1]
