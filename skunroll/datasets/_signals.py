"""Simulated convolutional problems: spike recordings and generic 1-D/2-D data.

Public through :mod:`skunroll.datasets`. Signals are sums of a few kernels
placed at sparse positions, ``x = sum_k h_k * z_k + noise``, with every kernel
entirely inside the signal ("valid" codes): a code map has
``n_times - kernel_size + 1`` positions.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from .._conv.events import events_from_codes
from .._kernels import _conv as _k


def _waveform(length, rng):
    """A biphasic extracellular spike: a sharp trough and a slower rebound,
    tapered so that it vanishes at both ends of its window."""
    t = np.arange(length, dtype=np.float64)
    scale = length / 45.0
    t0 = length * rng.uniform(0.3, 0.42)
    w1 = scale * rng.uniform(1.0, 3.0)
    w2 = scale * rng.uniform(2.0, 5.0)
    t1 = t0 + w1 + w2 * rng.uniform(0.5, 1.2)
    ratio = rng.uniform(0.25, 0.8)
    pre = rng.uniform(0.0, 0.3)
    w = (
        -np.exp(-0.5 * ((t - t0) / w1) ** 2)
        + ratio * np.exp(-0.5 * ((t - t1) / w2) ** 2)
        + pre * np.exp(-0.5 * ((t - t0 + 2.5 * w1) / w1) ** 2)
    )
    w *= np.sin(np.pi * (t + 0.5) / length) ** 0.5  # taper to zero at the ends
    return w / np.linalg.norm(w)


def _max_shifted_cosine(a, b):
    return np.abs(np.correlate(a.ravel(), b.ravel(), mode="full")).max()


def _distinct_kernels(n_kernels, length, draw, rng, max_cosine=0.85, max_tries=1000):
    """``n_kernels`` unit-norm kernels ``draw(length, rng)`` whose normalised
    correlation at every shift stays below ``max_cosine``."""
    kernels = []
    for _ in range(max_tries):
        h = draw(length, rng)
        if all(_max_shifted_cosine(h, v) < max_cosine for v in kernels):
            kernels.append(h)
            if len(kernels) == n_kernels:
                return np.array(kernels)
    raise ValueError(
        f"could not draw {n_kernels} kernels of {length} samples that are "
        f"distinct up to shifts; ask for fewer of them or longer ones."
    )


def _spike_onsets(n_positions, rate, refractory, rng):
    """Poisson spike train with a dead time, as onset indices."""
    mean_isi = 1.0 / rate
    n_draw = int(n_positions / mean_isi * 1.3) + 20
    onsets = np.empty(0, dtype=np.int64)
    start = rng.uniform(0, mean_isi)
    while True:
        isi = refractory + rng.exponential(max(mean_isi - refractory, 1e-9), n_draw)
        times = start + np.cumsum(isi)
        onsets = np.concatenate([onsets, times.astype(np.int64)])
        if times[-1] >= n_positions:
            return onsets[onsets < n_positions]
        start = times[-1]


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_times": [Interval(Integral, 1, None, closed="left")],
        "n_neurons": [Interval(Integral, 1, None, closed="left")],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "sampling_rate": [Interval(Real, 0, None, closed="neither")],
        "waveform_duration": [Interval(Real, 0, None, closed="neither")],
        "firing_rate": [Interval(Real, 0, None, closed="neither")],
        "refractory_period": [Interval(Real, 0, None, closed="left")],
        "amplitude": [tuple],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_spike_recording(
    n_samples=1,
    n_times=10_000,
    *,
    n_neurons=3,
    n_channels=1,
    sampling_rate=10_000.0,
    waveform_duration=4.5e-3,
    firing_rate=30.0,
    refractory_period=2e-3,
    amplitude=(1.0, 2.0),
    noise=0.1,
    random_state=None,
):
    """Simulate extracellular recordings of a few neurons (spike sorting).

    Each neuron fires as a Poisson process with a dead time and leaves its own
    spike waveform (a sharp trough and a slower rebound, unit norm, distinct
    from the others up to shifts), scaled by a random amplitude, at every
    spike; white Gaussian noise is added. With several channels, a neuron's
    kernel is a spatial gain (a bump centred at the neuron's position on a
    linear probe) times its waveform (a rank-1 kernel), as recorded by a
    multi-electrode probe. The defaults mimic the simulated recordings of
    Tolooshams et al. (2020): 10 kHz sampling, three neurons, 4.5 ms
    waveforms, about 30 Hz firing.

    Parameters
    ----------
    n_samples : int, default=1
        Number of independent recordings.
    n_times : int, default=10_000
        Samples per recording.
    n_neurons : int, default=3
        Number of neurons (kernels).
    n_channels : int, default=1
        Number of electrodes.
    sampling_rate : float, default=10_000.0
        In Hz.
    waveform_duration : float, default=4.5e-3
        Length of a spike waveform in seconds (45 samples at 10 kHz).
    firing_rate : float, default=30.0
        Mean firing rate of every neuron, in Hz.
    refractory_period : float, default=2e-3
        Dead time after each spike, in seconds.
    amplitude : tuple of float (low, high), default=(1.0, 2.0)
        Spike amplitudes are uniform in this range.
    noise : float, default=0.1
        Standard deviation of the white Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the waveforms, spike trains, amplitudes and noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_times) or (n_samples, n_channels, n_times)
        The recordings (2-D with one channel), float64.
    kernels : ndarray of shape (n_neurons, n_channels, n_waveform)
        The unit-norm spike kernels, ``n_waveform = round(waveform_duration *
        sampling_rate)``.
    events : structured ndarray
        One record per spike, sorted by sample then position, with fields
        ``sample`` (recording), ``kernel`` (neuron), ``position`` (onset: the
        index at which the kernel's first sample lands) and ``amplitude``; the
        format returned by :meth:`skunroll.ConvolutionalDL.detect_events`.

    References
    ----------
    .. [1] Tolooshams, Song, Temereanca & Ba, "Convolutional dictionary
       learning based auto-encoders for natural exponential-family
       distributions", ICML 2020 (CRsAE; simulated spike sorting).

    Examples
    --------
    >>> from skunroll.datasets import make_spike_recording
    >>> X, kernels, events = make_spike_recording(2, 5000, random_state=0)
    >>> X.shape, kernels.shape
    ((2, 5000), (3, 1, 45))
    >>> sorted(set(events["kernel"].tolist()))
    [0, 1, 2]
    """
    rng = check_random_state(random_state)
    low, high = _check_range(amplitude, "amplitude")
    length = int(round(waveform_duration * sampling_rate))
    if not 1 <= length <= n_times:
        raise ValueError(
            f"waveform_duration * sampling_rate = {length} samples must be "
            f"between 1 and n_times={n_times}."
        )
    waves = _distinct_kernels(n_neurons, length, _waveform, rng)
    positions = (np.arange(n_neurons) + 0.5) * n_channels / n_neurons
    gains = np.exp(
        -0.5 * ((np.arange(n_channels)[None] - positions[:, None]) / 1.5) ** 2
    )
    kernels = gains[:, :, None] * waves[:, None, :]
    kernels /= np.linalg.norm(kernels.reshape(n_neurons, -1), axis=1)[:, None, None]
    n_pos = n_times - length + 1
    codes = np.zeros((n_samples, n_neurons, 1, n_pos))
    for i in range(n_samples):
        for k in range(n_neurons):
            onsets = _spike_onsets(
                n_pos, firing_rate / sampling_rate, refractory_period * sampling_rate,
                rng,
            )  # fmt: skip
            codes[i, k, 0, onsets] = rng.uniform(low, high, len(onsets))
    X = _synthesise(codes, kernels[:, :, None, :], noise, rng)[:, :, 0]
    events = events_from_codes(codes[:, :, 0])
    return (X[:, 0] if n_channels == 1 else X), kernels, events


def _check_range(pair, name):
    if len(pair) != 2 or not 0 < pair[0] <= pair[1]:
        raise ValueError(
            f"{name} must be a pair (low, high) with 0 < low <= high; got {pair}."
        )
    return float(pair[0]), float(pair[1])


def _synthesise(codes, kernels, noise, rng):
    """``H z + noise`` for code maps ``(n, K, p1, p2)`` and 4-D kernels."""
    n, _, p1, p2 = codes.shape
    _, n_channels, kh, kw = kernels.shape
    X = np.empty((n, n_channels, p1 + kh - 1, p2 + kw - 1))
    for i in range(n):
        _k.synthesis(codes[i], kernels, X[i])
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return X


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_times": [Interval(Integral, 1, None, closed="left"), tuple],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), tuple],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "density": [Interval(Real, 0, 1, closed="right")],
        "amplitude": [tuple],
        "positive": ["boolean"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_convolutional_data(
    n_samples=10,
    n_times=1000,
    *,
    n_components=3,
    kernel_size=32,
    n_channels=1,
    density=0.005,
    amplitude=(1.0, 2.0),
    positive=True,
    noise=0.05,
    random_state=None,
):
    """Generate signals or images that are sums of sparse shifted kernels.

    Kernels are Gaussian random (unit norm); each code entry is non-zero with
    probability ``density``, with a magnitude uniform in ``amplitude`` (and a
    random sign unless ``positive``); white Gaussian noise is added.

    Parameters
    ----------
    n_samples : int, default=10
        Number of signals.
    n_times : int or tuple of 2 ints, default=1000
        Length of a 1-D signal, or ``(height, width)`` of an image.
    n_components : int, default=3
        Number of kernels.
    kernel_size : int or tuple of 2 ints, default=32
        Kernel length, or ``(kh, kw)``; as many dimensions as ``n_times``.
    n_channels : int, default=1
        Channels of every signal (and kernel).
    density : float, default=0.005
        Probability that a code entry is non-zero.
    amplitude : tuple of float (low, high), default=(1.0, 2.0)
        Range of the code magnitudes.
    positive : bool, default=True
        Whether codes are non-negative.
    noise : float, default=0.05
        Standard deviation of the noise.
    random_state : int, RandomState instance or None, default=None
        Seed.

    Returns
    -------
    X : ndarray
        ``(n_samples, n_times)`` for one-channel 1-D signals, ``(n_samples,
        n_channels, n_times)`` for several channels, ``(n_samples, n_channels,
        height, width)`` for images.
    kernels : ndarray of shape (n_components, n_channels, kh, kw)
        (``(n_components, n_channels, kernel_size)`` for 1-D signals).
        Unit-norm kernels.
    codes : ndarray of shape (n_samples, n_components, p1, p2)
        (``(n_samples, n_components, n_positions)`` for 1-D signals).
        The code maps, ``n_positions = n_times - kernel_size + 1`` per axis.

    Examples
    --------
    >>> from skunroll.datasets import make_convolutional_data
    >>> X, kernels, codes = make_convolutional_data(4, (20, 24), kernel_size=(5, 5),
    ...                                             random_state=0)
    >>> X.shape, kernels.shape, codes.shape
    ((4, 1, 20, 24), (3, 1, 5, 5), (4, 3, 16, 20))
    """
    rng = check_random_state(random_state)
    low, high = _check_range(amplitude, "amplitude")
    shape = (n_times,) if isinstance(n_times, Integral) else tuple(n_times)
    ksize = (kernel_size,) if isinstance(kernel_size, Integral) else tuple(kernel_size)
    if len(shape) not in (1, 2) or len(ksize) != len(shape):
        raise ValueError(
            f"n_times={n_times} and kernel_size={kernel_size} must both be ints "
            "(1-D signals) or both pairs (images)."
        )
    if any(k > s or k < 1 for k, s in zip(ksize, shape, strict=True)):
        raise ValueError(f"kernel_size={kernel_size} must fit in n_times={n_times}.")
    shape2, ksize2 = (1, *shape)[-2:], (1, *ksize)[-2:]
    kernels = rng.standard_normal((n_components, n_channels, *ksize2))
    kernels /= np.linalg.norm(kernels.reshape(n_components, -1), axis=1)[
        :, None, None, None
    ]
    pos = (shape2[0] - ksize2[0] + 1, shape2[1] - ksize2[1] + 1)
    active = rng.random((n_samples, n_components, *pos)) < density
    codes = np.where(active, rng.uniform(low, high, active.shape), 0.0)
    if not positive:
        codes *= rng.choice([-1.0, 1.0], size=codes.shape)
    X = _synthesise(codes, kernels, noise, rng)
    if len(shape) == 1:
        X, kernels, codes = X[:, :, 0], kernels[:, :, 0], codes[:, :, 0]
        if n_channels == 1:
            X = X[:, 0]
    return X, kernels, codes


def _response_kernel(length, rng):
    """A smooth rate response: an excitatory bump, followed half the time by
    an inhibitory rebound, tapered to zero at the end of its window."""
    t = np.arange(length, dtype=np.float64)
    t0 = length * rng.uniform(0.12, 0.3)
    w = length * rng.uniform(0.05, 0.12)
    h = np.exp(-0.5 * ((t - t0) / w) ** 2) * (1.0 + np.tanh((t - t0) / (2 * w)))
    if rng.uniform() < 0.5:
        t1 = t0 + w * rng.uniform(3.0, 5.0)
        h -= rng.uniform(0.3, 0.6) * np.exp(-0.5 * ((t - t1) / (2.0 * w)) ** 2)
    h *= np.cos(0.5 * np.pi * t / length) ** 0.5
    return h / np.linalg.norm(h)


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_times": [Interval(Integral, 1, None, closed="left")],
        "n_kernels": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 4, None, closed="left")],
        "baseline": [Interval(Real, None, None, closed="neither")],
        "amplitude": [tuple],
        "mean_gap": [Interval(Real, 0, None, closed="left")],
        "likelihood": [StrOptions({"poisson", "binomial"})],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_spike_counts(
    n_samples=50,
    n_times=1000,
    *,
    n_kernels=2,
    kernel_size=25,
    baseline=-1.5,
    amplitude=(6.0, 10.0),
    mean_gap=20.0,
    likelihood="poisson",
    n_trials=1,
    random_state=None,
):
    """Simulate binned spike counts driven by sparse events (DUNL's model).

    The log-rate (Poisson) or logit (binomial) of every bin is a baseline
    plus a few smooth response kernels placed at event onsets,
    ``eta = baseline + sum_k h_k * z_k``, and the counts are drawn from the
    likelihood: ``Poisson(exp(eta))`` or ``Binomial(n_trials, sigmoid(eta))``
    (Tolooshams et al., 2023, simulated dopamine and thalamus data). Events do
    not overlap (consecutive onsets are at least ``kernel_size`` apart), each
    belongs to a random kernel, and its amplitude is uniform in
    ``amplitude``. Pass ``code_mask=codes > 0`` to
    :meth:`skunroll.ConvolutionalDL.fit` for the known-onset setting.

    Parameters
    ----------
    n_samples : int, default=50
        Number of trials (signals).
    n_times : int, default=1000
        Bins per trial.
    n_kernels : int, default=2
        Number of response kernels.
    kernel_size : int, default=25
        Bins per kernel.
    baseline : float, default=-1.5
        Linear predictor without events (a rate of ``exp(-1.5) = 0.22``
        spikes per bin for the Poisson likelihood).
    amplitude : tuple of float (low, high), default=(6.0, 10.0)
        Event amplitudes are uniform in this range (non-negative codes).
    mean_gap : float, default=20.0
        Mean of the exponential extra gap between the end of an event's
        window and the next onset, in bins.
    likelihood : {"poisson", "binomial"}, default="poisson"
        Count distribution.
    n_trials : int, default=1
        Trials of the binomial likelihood.
    random_state : int, RandomState instance or None, default=None
        Seed of the kernels, events and counts.

    Returns
    -------
    X : ndarray of shape (n_samples, n_times)
        Counts, float64.
    kernels : ndarray of shape (n_kernels, 1, kernel_size)
        Unit-norm response kernels.
    codes : ndarray of shape (n_samples, n_kernels, n_times - kernel_size + 1)
        The code maps (event amplitudes at their onsets).

    Examples
    --------
    >>> from skunroll.datasets import make_spike_counts
    >>> X, kernels, codes = make_spike_counts(3, 200, random_state=0)
    >>> X.shape, kernels.shape, codes.shape
    ((3, 200), (2, 1, 25), (3, 2, 176))
    """
    rng = check_random_state(random_state)
    low, high = _check_range(amplitude, "amplitude")
    if kernel_size > n_times:
        raise ValueError(f"kernel_size={kernel_size} must fit in n_times={n_times}.")
    kernels = _distinct_kernels(n_kernels, kernel_size, _response_kernel, rng)
    n_pos = n_times - kernel_size + 1
    codes = np.zeros((n_samples, n_kernels, n_pos))
    for i in range(n_samples):
        p = int(rng.randint(kernel_size))
        while p < n_pos:
            codes[i, rng.randint(n_kernels), p] = rng.uniform(low, high)
            p += kernel_size + (int(rng.exponential(mean_gap)) if mean_gap > 0 else 0)
    eta = _synthesise(codes[:, :, None, :], kernels[:, None, None, :], 0.0, rng)
    eta = eta[:, 0, 0] + baseline
    if likelihood == "poisson":
        X = rng.poisson(np.exp(np.minimum(eta, 30.0)))
    else:
        X = rng.binomial(n_trials, 1.0 / (1.0 + np.exp(-eta)))
    return X.astype(np.float64), kernels[:, None, :], codes
