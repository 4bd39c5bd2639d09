r"""The estimator ``SpikeSorter``: spike sorting by convolutional deconvolution.

The pipeline, on a recording ``(n_times, n_channels)``:

1. *Units of noise.* Every channel's median is removed and it is divided by
   its noise level (MAD / 0.6745, :mod:`._preprocess`); optionally the
   channels are whitened. Every threshold below is then in units of noise.
2. *Starting kernels.* Threshold crossings (``detect_threshold`` noise levels)
   are cut into windows and clustered (PCA, then a Gaussian mixture whose
   number of components minimises the BIC); the cluster means are the
   starting kernels, each with its trough at ``ms_before``.
3. *Kernels.* :class:`~skunroll.ConvolutionalDictionaryLearning` refines
   them (multichannel kernels, full or rank-1) on sampled chunks of the
   recording, with non-negative codes and one sparsity weight per kernel.
4. *Deconvolution.* The model's encoder (coordinate descent on the lasso by
   default, or the unrolled FISTA) encodes the whole recording in blocks
   (each in parallel chunks): a code entry is a spike of one kernel at one
   amplitude, overlapping spikes included. The entries above ``threshold``
   are the events; each is reported at its kernel's reference sample.
5. *Units.* Each kernel's events are split on their code amplitude and the
   footprint left over on every channel, read from the deconvolution's
   residual so that overlapping spikes do not enter it (a recursive two-way
   split test:
   Gaussian mixtures, separation, relative size, BIC), so that units with
   one shape and different amplitudes or footprints separate; units whose
   mean waveforms are closer than ``merge_distance`` noise levels (or 8 % of
   a large unit's norm) are merged, and a unit keeps one spike within 0.75
   ms.
"""

import sys
import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from scipy import ndimage
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._conv.dict_learning import ConvolutionalDictionaryLearning
from .._conv.network import reconstruct
from .._parallel import N_JOBS, single_threaded_blas
from . import _cluster
from . import _preprocess as _pre

#: fewer threshold crossings than this, or no cluster of this many, are no
#: spikes (Gaussian noise of 6,000 samples on 2 channels crosses 4 noise
#: levels about once; of 300,000 samples, 9 times, in no cluster of 5)
MIN_CROSSINGS = 5
#: at most this many candidate waveforms are clustered into starting kernels
MAX_CANDIDATES = 5000
#: length of every training chunk of the kernels, in kernel lengths
CHUNK_KERNELS = 100
#: starting kernels more similar than this (normalised cross-correlation at
#: any lag) to a better-centred one are dropped: a shifted copy of a kernel, or
#: the same shape at another amplitude (the amplitude clustering splits those)
SIMILAR_KERNELS = 0.9
#: a kernel's amplitudes are split where two modes are this many pooled
#: standard deviations apart (then single spikes are assigned with < 3 % error)
SPLIT_SEPARATION = 3.0
#: ... and where their means differ by at least this fraction of the larger: a
#: large unit's amplitudes spread by a few percent with the sub-sample phase
#: of its spikes, flat or bimodal (measured: 148-165 noise levels on one unit
#: of SpikeInterface's 16-channel recordings, which 3 deviations alone cut in
#: two); the issue's units of one shape differ by 50 %
SPLIT_RATIO = 0.1
#: a unit's spikes closer than this (ms) are one spike (within the absolute
#: refractory period of a neuron, about 1 ms; one spike found by two kernels
#: is reported at their two reference samples, up to half a kernel apart)
DEDUPE_MS = 0.75
#: units are compared at shifts of a quarter of a sample (one unit's spikes
#: split by their sub-sample phase differ by half a sample)
MERGE_STEPS = 4
#: ... and merged when closer than this fraction of the smaller one's norm
#: (if that is more than ``merge_distance``): a large unit's sub-clusters
#: differ by a few percent of it; below the split test's 10 %, so that units
#: of one shape cut apart on amplitude stay apart
MERGE_RATIO = 0.08
#: a kernel's events are split on a random sample of at most this many
MAX_SPLIT_EVENTS = 4000
#: ... on their amplitude and this many principal axes of their footprints
#: (recomputed in every group the split test cuts)
FOOTPRINT_AXES = (2, 4)
#: an event is a code that is the largest of its kernel's within this many ms:
#: 0.3 rather than half a millisecond, so that two units of one kernel whose
#: spikes fall 0.3-0.5 ms apart both give events (a spike's own code spreads
#: over a sample or two, and a unit keeps one spike within DEDUPE_MS)
NMS_MS = 0.3
#: a spike is dropped when its code amplitude is below this fraction of the
#: median of its cluster (its kernel's class, in fit): a large spike leaves
#: small codes on other kernels at the same time (amplitudes of 2-5 noise
#: levels beside 56), which the Gaussian classes of those kernels would
#: otherwise give to a large unit of theirs
AMP_FLOOR = 0.3
#: private fitted state (removed with the public one when fit fails)
PRIVATE = (
    "_median",
    "_classes",
    "_first_sub",
    "_sub_unit",
    "_sub_kernel",
    "_sub_counts",
    "_sub_amp",
)


class SpikeSorter(BaseEstimator):
    r"""Spike sorting by convolutional dictionary learning and deconvolution.

    Learns one multichannel kernel per spike shape with
    :class:`~skunroll.ConvolutionalDictionaryLearning` (coordinate descent
    on the lasso, or CRsAE's unrolled FISTA encoder, whose weights are the
    kernels), deconvolves the recording with it (overlapping spikes are
    separated by the sparse code), and clusters every kernel's spikes on their
    amplitudes so that units sharing a shape separate. See the module
    docstring of :mod:`skunroll.spikes.sorter` for the steps.

    All thresholds are in units of the robust noise level of each channel
    (median absolute deviation / 0.6745), so that the same recording in µV,
    in volts, in units of noise or as int16 samples gives the same spikes.

    Parameters
    ----------
    sampling_frequency : float, default=30000.0
        Sampling rate of the recording, in Hz (must be positive).
    ms_before : float, default=1.0
        Length of the kernels before their reference sample (the trough), ms.
    ms_after : float, default=2.5
        Length of the kernels after their reference sample, ms.
    n_kernels : "auto" or int, default="auto"
        Number of kernels; "auto" picks it by BIC over the threshold
        crossings' waveforms (at most ``max_kernels``).
    max_kernels : int, default=24
        Largest number of kernels "auto" considers (also capped at ``3 + 2 *
        n_channels``).
    detect_threshold : float, default=4.0
        Threshold crossings that seed the kernels: deflections beyond this
        many noise levels (in the direction of ``peak_sign``). It only
        chooses the starting kernels (spikes are found by ``threshold``);
        at 4 rather than 5, small units' crossings seed kernels of their own
        shape (on SpikeInterface's recordings, mean accuracy 0.838 against
        0.824 over four random states; 3.5 was worse, 0.78-0.83).
    threshold : float, default=5.5
        A spike is a code entry whose kernel correlation exceeds this many
        times that correlation's robust noise level :math:`\sigma_k` (the MAD
        of the kernel's matched filter on the recording): the code is kept if
        it is at least ``(threshold - alpha) * sigma_k``.
    alpha : "auto" or float, default="auto"
        Sparsity weight of every kernel's codes, in units of
        :math:`\sigma_k`; "auto" is 4.5 (on SpikeInterface's recordings, 3
        was no more accurate). The weight of kernel ``k`` is
        ``alpha * sigma_k``: with unit-norm kernels the encoder's shrinkage
        of an isolated spike's code is exactly that, so it scales with the
        recording and the spikes do not depend on its units.
    peak_sign : {"neg", "pos", "both"}, default="neg"
        Direction of the spikes' reference deflection (extracellular spikes
        are negative).
    freq_band : tuple of 2 (float or None), default=(300.0, 6000.0)
        Zero-phase Butterworth band-pass (order 2) applied first, in Hz; None
        for either edge leaves it open (an upper edge at or above the
        Nyquist frequency is ignored); ``(None, None)`` does not filter.
    whiten : bool, default=False
        Whether the channels are whitened (ZCA of the noise covariance) before
        sorting: noise correlated across channels then does not look like
        spikes.
    rank1 : bool, default=False
        Kernels as a spatial pattern times a waveform (rank-1) rather than
        full ``(n_channels, n_taps)`` kernels.
    encoder : {"cd", "fista"}, default="cd"
        Encoder of the kernels' training and of the deconvolution (the
        ``encoder`` of :class:`~skunroll.ConvolutionalDictionaryLearning`):
        "cd" solves their lasso by coordinate descent, at a cost that follows
        the number of spikes; "fista" runs ``n_unroll`` steps of the unrolled
        FISTA (CRsAE's network). On SpikeInterface's recordings "cd" sorted
        as accurately (mean accuracy 0.846 against 0.846 with "fista" over
        15 recordings, 76 units of 79 at 0.95 or more with either) in a
        quarter to a third of the time on 16 channels (3.7-4.4 s against
        10.8-15.7 s; see the user guide).
    n_unroll : int, default=100
        Depth of the unrolled encoder with ``encoder="fista"`` (not used by
        "cd").
    max_iter : int, default=3
        Training epochs of the kernels.
    train_seconds : float, default=4.0
        Seconds of the recording (in chunks of 100 kernel lengths, drawn at
        random) the kernels are trained on.
    max_units_per_kernel : int, default=8
        Largest number of units one kernel's events are split into.
    merge_distance : float, default=4.0
        Units whose mean waveforms (over ``ms_before + ms_after``, all
        channels, best shift within a quarter kernel in quarter samples) are
        closer than this many noise levels are merged: at that distance,
        single spikes of the two could not be told apart reliably anyway.
        Large units also merge when closer than 8 % of the smaller one's
        norm (one unit's spikes clustered apart by amplitude or sub-sample
        phase differ by a few percent).
    min_spikes : int, default=20
        Units with fewer spikes in ``fit``'s recording are dropped.
    gain : float, default=1.0
        Multiplies integer (e.g. int16) recordings after the cast to float32,
        to express ``templates_`` and ``noise_level_`` in physical units (the
        board's volts or µV per bit); float recordings are multiplied too. It
        does not change the spikes.
    block_seconds : float, default=20.0
        The recording is deconvolved in blocks of this many seconds (each
        extended by the encoder's reach), so memory stays bounded; ``verbose``
        reports every block.
    decimate : "auto" or int, default="auto"
        After the band-pass, keep one sample in ``decimate`` (the sorter then
        works at ``sampling_frequency / decimate``: kernels 4 times cheaper
        to deconvolve at 2). "auto" keeps at least 2.5 samples per period of
        the band's upper edge (2 at 30 kHz with the default band, 1 without
        an upper edge). Spike times are reported in samples of the input.
    random_state : int, RandomState instance or None, default=None
        Seed of the clustering and of the training chunks.
    n_jobs : int, default=None
        Threads over encoding chunks (``None`` means 1, -1 all cores).
    verbose : int, default=0
        1 prints every stage and the progress of the deconvolution.

    Attributes
    ----------
    templates_ : ndarray of shape (n_units, n_taps, n_channels)
        Mean waveform of every unit, in the recording's units (times ``gain``),
        after filtering, at ``sampling_frequency / decimation_``; the spike
        time is at index ``n_before_``.
    n_before_ : int
        Index of the spike time in every template (``ms_before`` in samples
        at ``sampling_frequency / decimation_``).
    decimation_ : int
        One sample in ``decimation_`` is kept after the band-pass (see
        ``decimate``); templates and kernels are sampled at
        ``sampling_frequency / decimation_``, spike times are in samples of
        the input.
    noise_level_ : ndarray of shape (n_channels,)
        Robust noise level (MAD / 0.6745) of every channel after filtering, in
        the recording's units; 0 for a constant channel, which is ignored.
    kernels_ : ndarray of shape (n_kernels, n_channels, n_taps)
        The learned, unit-norm kernels (in units of noise, whitened if
        ``whiten``).
    kernel_reference_ : ndarray of shape (n_kernels,)
        Reference sample of every kernel: the trough (peak for
        ``peak_sign="pos"``, largest magnitude for "both") of its channel of
        largest energy. A spike at code position ``p`` is reported at sample
        ``p + kernel_reference_[k]``.
    kernel_noise_ : ndarray of shape (n_kernels,)
        :math:`\sigma_k`, the robust noise level of every kernel's matched
        filter (MAD / 0.6745).
    unit_kernel_ : ndarray of shape (n_units,)
        The kernel whose events are most of each unit's spikes.
    whitening_ : ndarray of shape (n_channels, n_channels) or None
        The whitening matrix applied to the normalised channels.
    dictionary_learning_ : ConvolutionalDictionaryLearning
        The fitted kernel model.
    spike_times_ : ndarray of shape (n_spikes,)
        Spike times (samples) in ``fit``'s recording, sorted.
    labels_ : ndarray of shape (n_spikes,)
        Unit of every spike of ``spike_times_``.
    n_units_ : int
        Number of units.
    n_channels_ : int
        Number of channels.

    Notes
    -----
    ``predict`` returns two arrays (spike times and unit labels), not one
    label per row: the rows of ``X`` are time samples, not observations. For
    the same reason ``SpikeSorter`` is not run through scikit-learn's
    estimator checks (which fit on a few dozen rows, shorter than a kernel);
    its own tests check the contracts (parameters, cloning, unmodified input,
    dtypes, errors).

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.spikes import SpikeSorter
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60000, 2)).astype(np.float32)
    >>> wave = -8 * np.exp(-0.5 * ((np.arange(60) - 20) / 4.0) ** 2)
    >>> for t in rng.choice(59000, 200, replace=False):
    ...     X[t : t + 60, 0] += wave
    >>> sorter = SpikeSorter(sampling_frequency=20000.0, random_state=0)
    >>> times, labels = sorter.fit(X).predict(X)
    """

    _parameter_constraints: dict = {
        "sampling_frequency": [Interval(Real, 0, None, closed="neither")],
        "ms_before": [Interval(Real, 0, None, closed="left")],
        "ms_after": [Interval(Real, 0, None, closed="neither")],
        "n_kernels": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_kernels": [Interval(Integral, 1, None, closed="left")],
        "detect_threshold": [Interval(Real, 0, None, closed="neither")],
        "threshold": [Interval(Real, 0, None, closed="neither")],
        "alpha": [StrOptions({"auto"}), Interval(Real, 0, None, closed="left")],
        "peak_sign": [StrOptions({"neg", "pos", "both"})],
        "freq_band": [tuple, None],
        "whiten": ["boolean"],
        "rank1": ["boolean"],
        "n_unroll": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions({"cd", "fista"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "train_seconds": [Interval(Real, 0, None, closed="neither")],
        "max_units_per_kernel": [Interval(Integral, 1, None, closed="left")],
        "merge_distance": [Interval(Real, 0, None, closed="left")],
        "min_spikes": [Interval(Integral, 1, None, closed="left")],
        "gain": [Interval(Real, 0, None, closed="neither")],
        "block_seconds": [Interval(Real, 0, None, closed="neither")],
        "decimate": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        sampling_frequency=30000.0,
        *,
        ms_before=1.0,
        ms_after=2.5,
        n_kernels="auto",
        max_kernels=24,
        detect_threshold=4.0,
        threshold=5.5,
        alpha="auto",
        peak_sign="neg",
        freq_band=(300.0, 6000.0),
        whiten=False,
        rank1=False,
        encoder="cd",
        n_unroll=100,
        max_iter=3,
        train_seconds=4.0,
        max_units_per_kernel=8,
        merge_distance=4.0,
        min_spikes=20,
        gain=1.0,
        block_seconds=20.0,
        decimate="auto",
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.sampling_frequency = sampling_frequency
        self.ms_before = ms_before
        self.ms_after = ms_after
        self.n_kernels = n_kernels
        self.max_kernels = max_kernels
        self.detect_threshold = detect_threshold
        self.threshold = threshold
        self.alpha = alpha
        self.peak_sign = peak_sign
        self.freq_band = freq_band
        self.whiten = whiten
        self.rank1 = rank1
        self.encoder = encoder
        self.n_unroll = n_unroll
        self.max_iter = max_iter
        self.train_seconds = train_seconds
        self.max_units_per_kernel = max_units_per_kernel
        self.merge_distance = merge_distance
        self.min_spikes = min_spikes
        self.gain = gain
        self.block_seconds = block_seconds
        self.decimate = decimate
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    # ------------------------------------------------------------ helpers

    def _log(self, msg):
        if self.verbose:
            elapsed = time.perf_counter() - self._t0
            print(f"[SpikeSorter {elapsed:7.1f} s] {msg}", file=sys.stdout, flush=True)

    def _window(self):
        fs = self._fs()
        nb = int(round(self.ms_before * fs / 1000.0))
        na = int(round(self.ms_after * fs / 1000.0))
        if nb + na < 3:
            raise ValueError(
                f"ms_before + ms_after = {self.ms_before + self.ms_after} ms is "
                f"{nb + na} samples at sampling_frequency={fs} Hz; kernels need "
                "at least 3 samples."
            )
        return nb, na

    def _decimation(self):
        """Samples kept 1 in ``q``: "auto" keeps at least 2.5 samples per
        period of the band-pass's upper edge."""
        if self.decimate != "auto":
            return int(self.decimate)
        band = self._check_band()
        fs = float(self.sampling_frequency)
        if band[1] is None or band[1] >= fs / 2:
            return 1
        return max(1, int(fs // (2.5 * band[1])))

    def _fs(self):
        """The sampling rate the sorter works at (after decimation)."""
        return float(self.sampling_frequency) / self._decimation()

    def _chunk_size(self, L):
        """Code positions per parallel chunk: a block split evenly between the
        threads (every chunk is extended by the encoder's reach, so fewer,
        larger chunks waste less)."""
        block = max(L, int(self.block_seconds * self._fs()))
        threads = effective_n_jobs(self.n_jobs or 1)
        return max(4 * L, 8192, int(np.ceil(block / threads)))

    def _alpha(self):
        return 4.5 if self.alpha == "auto" else float(self.alpha)

    def _check_band(self):
        band = self.freq_band
        if band is None:
            return (None, None)
        if len(band) != 2 or any(
            b is not None and (not isinstance(b, Real) or b <= 0) for b in band
        ):
            raise ValueError(
                f"freq_band must be None or a pair of positive floats or None; "
                f"got {band!r}."
            )
        if band[0] is not None and band[1] is not None and band[0] >= band[1]:
            raise ValueError(f"freq_band must be increasing; got {band!r}.")
        if band[0] is not None and band[0] >= self.sampling_frequency / 2:
            raise ValueError(
                f"freq_band's lower edge {band[0]} Hz is at or above the Nyquist "
                f"frequency of sampling_frequency={self.sampling_frequency} Hz."
            )
        return band

    def _prepare(self, X, fitting):
        """The recording in units of noise, channel-major ``(C, T)``, float32."""
        X = _pre.as_recording(X, float(self.gain))
        _pre.check_finite(X)
        if not fitting and X.shape[1] != self.n_channels_:
            raise ValueError(
                f"X has {X.shape[1]} channels; the sorter was fitted on "
                f"{self.n_channels_}."
            )
        q = self._decimation()
        nb, na = self._window()
        length = (nb + na) * q
        if X.shape[0] < length:
            raise ValueError(
                f"X has {X.shape[0]} samples, shorter than one kernel "
                f"({length} samples = ms_before + ms_after = "
                f"{self.ms_before + self.ms_after} ms at {self.sampling_frequency} "
                "Hz); give a longer recording."
            )
        # a constant channel, found before filtering (whose edge effects
        # would leave it a tiny non-zero noise level)
        constant = np.all(X == X[:1], axis=0)
        band = self._check_band()
        XnT = _pre.bandpass(X, band, float(self.sampling_frequency), q, self.n_jobs)
        if fitting:
            median, noise = _pre.robust_noise(XnT.T)
            live = (noise > 0) & ~constant
            if not live.any():
                raise ValueError(
                    "every channel of X is constant (noise level 0); there is "
                    "nothing to sort."
                )
            self._median = median
            self.noise_level_ = np.where(live, noise, 0.0)
        else:
            median = self._median
        live = self.noise_level_ > 0
        scale = np.where(live, 1.0 / np.where(live, self.noise_level_, 1.0), 0.0)
        XnT -= median.astype(np.float32)[:, None]
        XnT *= scale.astype(np.float32)[:, None]
        if fitting:
            self.whitening_ = _pre.whitening_matrix(XnT.T) if self.whiten else None
            if self.whitening_ is not None:
                self.whitening_[~live] = 0.0
                self.whitening_[:, ~live] = 0.0
        if self.whitening_ is not None:
            XnT = np.ascontiguousarray(self.whitening_.astype(np.float32) @ XnT)
        return XnT

    # ------------------------------------------------------------ fitting

    def fit(self, X, y=None):
        """Learn the kernels and units of a recording, and sort it.

        Parameters
        ----------
        X : array-like of shape (n_times, n_channels), or a list of such
            Raw recording (float or integer samples; integers are multiplied
            by ``gain``), or consecutive chunks of one.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted sorter; ``spike_times_`` and ``labels_`` hold the
            sorted spikes of ``X``.
        """
        self._validate_params()
        try:
            # numba threads do the parallel work; BLAS threads on top of
            # them (the mixtures, the PCA) only contend
            with single_threaded_blas():
                self._fit(X)
        except BaseException:
            # a failed fit leaves no half-fitted estimator
            for name in [n for n in vars(self) if n.endswith("_") or n in PRIVATE]:
                delattr(self, name)
            raise
        return self

    def _fit(self, X):
        self._t0 = time.perf_counter()
        rng = check_random_state(self.random_state)
        nb, na = self._window()
        L = nb + na
        XnT = self._prepare(X, fitting=True)
        C, T = XnT.shape
        self.n_channels_ = C
        self.n_before_ = nb
        self.decimation_ = self._decimation()
        self._log(f"{T} samples x {C} channels in units of noise")

        H0 = self._starting_kernels(XnT, nb, L, rng)
        self._log(f"{H0.shape[0]} starting kernels from threshold crossings")
        cdl = self._train_kernels(XnT, H0, rng)
        self.dictionary_learning_ = cdl
        self.kernels_ = cdl.kernels_.copy()
        self.kernel_reference_ = self._references(self.kernels_)
        self.kernel_noise_ = self._kernel_noise(XnT, self.kernels_)
        self._log(f"kernels trained ({cdl.n_iter_} epochs)")

        events = self._deconvolve(XnT)
        self._log(f"{len(events[0])} events from the deconvolution")
        self._fit_units(XnT, events, rng)
        times, labels = self._label(XnT, events)
        self.spike_times_, self.labels_ = times, labels
        self._set_templates(XnT, times, labels)
        self._log(f"{self.n_units_} units, {len(times)} spikes")
        if self.n_units_ == 0:
            warnings.warn(
                f"no unit has min_spikes={self.min_spikes} spikes or more: the "
                "sorter found no neurons in X (its threshold crossings look "
                "like noise); spike_times_ and labels_ are empty.",
                UserWarning,
                stacklevel=3,
            )
        return self

    def _starting_kernels(self, XnT, nb, L, rng):
        C, T = XnT.shape
        # one crossing per spike: the largest within half a kernel (a large spike's
        # later lobes would otherwise seed shifted copies of its kernel)
        radius = max(1, L // 2)
        peaks = _cluster.detect_peaks(
            XnT, self.detect_threshold, radius, self.peak_sign, nb, T - L + nb + 1
        )
        if peaks.size < MIN_CROSSINGS:
            raise ValueError(
                f"{peaks.size} sample(s) of X deviate by more than "
                f"detect_threshold={self.detect_threshold} noise levels "
                f"(peak_sign={self.peak_sign!r}), fewer than the "
                f"{MIN_CROSSINGS} a spike shape is learnt from; there are no "
                "spikes to sort. Lower detect_threshold or check the recording."
            )
        if peaks.size > MAX_CANDIDATES:
            peaks = np.sort(rng.choice(peaks, MAX_CANDIDATES, replace=False))
        waves = _cluster.windows(XnT, peaks - nb, L)  # (n, C, L)
        seed = rng.randint(np.iinfo(np.int32).max)
        _, feats = _cluster.pca_features(waves, min(10, 3 * C), seed)
        max_k = min(self.max_kernels, 3 + 2 * C)
        n_fixed = None if self.n_kernels == "auto" else self.n_kernels
        # "auto" over-clusters (max_k components) and then keeps one kernel per
        # distinct shape: a small unit is not absorbed by a large neighbour
        gmm = _cluster.gmm_bic(feats, max_k, seed, n_fixed or max_k)
        labels = gmm.predict(feats)
        kernels = []
        for k in range(gmm.n_components):
            members = labels == k
            if members.sum() >= (1 if n_fixed else MIN_CROSSINGS):
                kernels.append(waves[members].mean(axis=0))
        if not kernels:
            raise ValueError(
                f"the {len(waves)} threshold crossings of X beyond "
                f"detect_threshold={self.detect_threshold} noise levels form no "
                f"cluster of {MIN_CROSSINGS} or more similar waveforms (as noise "
                "does); there are no spikes to sort. Check the recording, or "
                "set n_kernels to an integer to learn kernels anyway."
            )
        if n_fixed is not None:
            while len(kernels) < n_fixed:  # empty clusters: random crossings
                kernels.append(waves[rng.randint(len(waves))])
        H = np.asarray(kernels, dtype=np.float64)
        norms = np.linalg.norm(H.reshape(len(H), -1), axis=1)
        H = H / np.maximum(norms, 1e-12)[:, None, None]
        if n_fixed is None:
            # a cluster whose mean trough is far from the crossing it was cut
            # at is a later or earlier lobe of a larger spike: not a unit
            centred = np.abs(self._references(H) - nb) <= max(1, nb // 2)
            if centred.any():
                H = H[centred]
            H = _cluster.distinct_kernels(H, self._references(H), nb, SIMILAR_KERNELS)
        return H

    def _kernel_noise(self, XnT, H):
        """Robust noise level of every kernel's matched filter on the data."""
        rows = _pre.subsample_rows(XnT.shape[1], 1 << 17, block=1 << 14)
        sample = XnT[:, rows] if not isinstance(rows, slice) else XnT
        sigma = np.empty(H.shape[0])
        from scipy.signal import fftconvolve

        for k in range(H.shape[0]):
            corr = fftconvolve(sample, H[k, :, ::-1], mode="valid", axes=1)
            corr = corr.sum(axis=0) if corr.ndim == 2 else corr
            med = np.median(corr)
            sigma[k] = np.median(np.abs(corr - med)) / _pre.MAD_TO_STD
        return np.maximum(sigma, 1e-6)

    def _train_kernels(self, XnT, H0, rng):
        C, T = XnT.shape
        L = H0.shape[2]
        chunk = min(T, CHUNK_KERNELS * L)
        n_chunks = int(np.ceil(self.train_seconds * self._fs() / chunk))
        n_avail = T // chunk
        if n_avail <= n_chunks:
            starts = np.arange(n_avail) * chunk
        else:
            starts = np.sort(rng.choice(n_avail, n_chunks, replace=False)) * chunk
        segs = np.stack([XnT[:, s : s + chunk] for s in starts])
        sigma = self._kernel_noise(XnT, H0)
        cdl = ConvolutionalDictionaryLearning(
            H0.shape[0],
            L,
            alpha=self._alpha() * sigma,
            code_sign=1,
            kernel_init=H0,
            align_kernels=False,
            rank1=self.rank1,
            n_unroll=self.n_unroll,
            encoder=self.encoder,
            max_iter=self.max_iter,
            tol=0.0,
            batch_size=max(1, min(8, len(segs))),
            random_state=rng,
            n_jobs=self.n_jobs,
            chunk_size=self._chunk_size(L),
        )
        cdl.fit(segs)
        return cdl

    def _references(self, H):
        main = np.argmax(np.sum(H**2, axis=2), axis=1)
        wave = H[np.arange(len(H)), main]  # (K, L)
        if self.peak_sign == "neg":
            return np.argmin(wave, axis=1)
        if self.peak_sign == "pos":
            return np.argmax(wave, axis=1)
        return np.argmax(np.abs(wave), axis=1)

    def _deconvolve(self, XnT):
        """Events (position, kernel, amplitude, features) of the whole
        recording, deconvolved in blocks (each extended by the encoder's
        reach).

        An event is a local maximum of one kernel's code map (the largest
        within ``NMS_MS``); its amplitude is the code's mass within
        0.1 ms of it (a spike between two samples spreads its code over
        neighbouring positions), kept if at least ``(threshold - alpha) *
        sigma_k``. Its features (:meth:`_event_features`) are read from the
        block's residual, the recording less the reconstruction from all its
        codes, so that overlapping spikes of other units do not enter them.
        """
        cdl = self.dictionary_learning_
        C, T = XnT.shape
        L = self.kernels_.shape[2]
        P = T - L + 1
        fs = self._fs()
        thr = np.maximum(self.threshold - self._alpha(), 0.0) * self.kernel_noise_
        nms = max(1, int(round(NMS_MS * 1e-3 * fs)))
        spread = max(1, int(round(0.1e-3 * fs)))
        block = max(L, int(self.block_seconds * fs))
        reach = cdl._encoder_reach() + nms + spread
        found = []
        n_blocks = int(np.ceil(P / block))
        for b, s in enumerate(range(0, P, block)):
            e = min(P, s + block)
            a, z = max(0, s - reach), min(P, e + reach)
            segment = XnT[:, a : z + L - 1]
            codes = cdl.code_maps(segment[None])[0]  # (K, p)
            peak = ndimage.maximum_filter1d(codes, 2 * nms + 1, axis=1)
            mass = ndimage.uniform_filter1d(codes, 2 * spread + 1, axis=1)
            mass *= 2 * spread + 1
            k, p = np.nonzero((codes > 0) & (codes >= peak))
            amp = mass[k, p]
            keep = (p + a >= s) & (p + a < e) & (amp >= thr[k])
            k, p, amp = k[keep], p[keep], amp[keep]
            if C == 1:  # the amplitude is the only feature: no residual
                feats = amp[:, None].astype(np.float64)
            else:
                # H z of the block (its codes as 1-D maps (1, K, p, 1), the
                # kernels (K, C, L, 1)): zero codes cost nothing
                recon = reconstruct(codes[None, :, :, None], self.kernels_[..., None])
                residual = segment - recon[0, :, :, 0]
                feats = np.empty((len(p), 1 + C))
                for kk in np.unique(k):
                    sel = np.flatnonzero(k == kk)
                    feats[sel] = self._event_features(residual, kk, p[sel], amp[sel])
            found.append((p + a, k, amp, feats))
            if self.verbose:
                self._log(f"deconvolved block {b + 1}/{n_blocks}")
        pos, ker, amp, feats = (np.concatenate(f) for f in zip(*found, strict=True))
        order = np.lexsort((ker, pos))
        pos, ker, amp, feats = pos[order], ker[order], amp[order], feats[order]
        # plateaus (equal neighbouring codes): the first of them
        dup = np.zeros(len(pos), dtype=bool)
        for k in np.unique(ker):
            idx = np.flatnonzero(ker == k)
            dup[idx[1:]] = np.diff(pos[idx]) <= nms
        return pos[~dup], ker[~dup], amp[~dup], feats[~dup]

    def _event_features(self, residual, k, pos, amp):
        """Features of kernel ``k``'s events at code positions ``pos`` of a
        block whose ``residual`` (C, length) is the recording less the
        reconstruction from all its codes, with several channels (with one,
        the code amplitude is the only feature): the code amplitude and the
        footprint left over, ``<r_c, w_c>`` per channel
        ``c`` (``w_c`` the kernel's unit-norm waveform on ``c``, or on its
        main channel where ``c`` holds under 5 % of its energy; ``r`` the
        residual in the event's window). Units that share a kernel's shape at
        different amplitudes differ in the first; units that share its shape
        with different footprints, in the others. In units of noise.

        The footprint is read from the residual, not the recording, because
        a unit's spikes that overlap another unit's carry that unit's
        waveform in their window: several noise levels on the footprint of
        a small unit next to a large one, which hides the small units'
        differences (their features' spread fell from about 4.5 to 1-2 noise
        levels on a 4-channel SpikeInterface recording)."""
        h = self.kernels_[k]  # (C, L), unit norm
        energy = np.sum(h**2, axis=1)
        norms = np.sqrt(energy)
        main = int(np.argmax(energy))
        w = h / np.maximum(norms, 1e-12)[:, None]
        weak = energy < 0.05 * energy[main]
        w[weak] = w[main]
        out = np.empty((len(pos), 1 + residual.shape[0]))
        out[:, 0] = amp
        for s in range(0, len(pos), 4096):
            win = _cluster.windows(residual, pos[s : s + 4096], h.shape[1])
            out[s : s + 4096, 1:] = np.einsum("ncl,cl->nc", win, w)
        return out

    def _fit_units(self, XnT, events, rng):
        """Split every kernel's events by amplitude and footprint, then merge
        the resulting units whose mean waveforms (centred at their spike
        times) are close."""
        pos, ker, amp, features = events
        K, _, L = self.kernels_.shape
        nb = self.n_before_
        T = XnT.shape[1]
        self._classes, self._first_sub = [], []
        sub_templates, sub_counts, sub_kernel, sub_amp = [], [], [], []
        seed = rng.randint(np.iinfo(np.int32).max)
        for k in range(K):
            sel = np.flatnonzero(ker == k)
            feats = features[sel]
            labels = np.zeros(len(sel), dtype=np.int64)
            fit = np.arange(sel.size)
            if fit.size > MAX_SPLIT_EVENTS:
                fit = np.sort(rng.choice(fit, MAX_SPLIT_EVENTS, replace=False))
            if sel.size >= 2 * self.min_spikes:
                labels[fit] = _cluster.split_features(
                    feats[fit],
                    self.max_units_per_kernel,
                    SPLIT_SEPARATION,
                    # min_spikes over the kernel's events, scaled to the sample
                    max(2, -(-self.min_spikes * fit.size // sel.size)),
                    SPLIT_RATIO,
                    seed,
                    FOOTPRINT_AXES,
                )
                classes = _cluster.GaussianClasses(feats[fit], labels[fit])
                labels = classes.predict(feats)
            else:
                classes = _cluster.GaussianClasses(feats, labels)
            self._classes.append(classes)
            self._first_sub.append(len(sub_templates))
            times = pos[sel] + self.kernel_reference_[k]
            for c in range(len(classes.means)):
                t = times[labels == c]
                t = t[(t - nb >= 0) & (t - nb + L <= T)]
                if t.size > 2000:
                    t = rng.choice(t, 2000, replace=False)
                if t.size:
                    w = _cluster.windows(XnT, t - nb, L).mean(axis=0)
                else:
                    w = np.zeros((XnT.shape[0], L))
                sub_templates.append(w)
                sub_counts.append(int((labels == c).sum()))
                a = amp[sel][labels == c]
                sub_amp.append(float(np.median(a)) if a.size else 0.0)
                sub_kernel.append(k)
        max_lag = max(1, L // 8)
        merged = _cluster.merge_units(
            sub_templates,
            sub_counts,
            self.merge_distance,
            max_lag,
            MERGE_STEPS,
            MERGE_RATIO,
        )
        self._sub_unit = merged
        self._sub_kernel = np.asarray(sub_kernel)
        self._sub_counts = np.asarray(sub_counts)
        self._sub_amp = np.asarray(sub_amp)

    def _label(self, XnT, events):
        """Spike times and unit labels of deconvolution events (less those
        whose amplitude is below ``AMP_FLOOR`` times their sub-unit's median
        in ``fit``)."""
        pos, ker, amp, features = events
        sub = np.empty(len(pos), dtype=np.int64)
        for k, classes in enumerate(self._classes):
            sel = np.flatnonzero(ker == k)
            sub[sel] = self._first_sub[k] + classes.predict(features[sel])
        ok = amp >= AMP_FLOOR * self._sub_amp[sub]
        times = pos[ok] + self.kernel_reference_[ker[ok]]
        units = self._sub_unit[sub[ok]]
        amp = amp[ok]
        # one spike per unit within DEDUPE_MS (a run of a unit's spikes, each
        # within that of the last, keeps its largest): a unit merged from two
        # kernels, or from a kernel's sub-clusters, may have a spike on both
        order = np.lexsort((times, units))
        times, units, amp = times[order], units[order], amp[order]
        gap = max(1, int(round(DEDUPE_MS * 1e-3 * self._fs())))
        start = np.ones(len(times), dtype=bool)
        start[1:] = (units[1:] != units[:-1]) | (np.diff(times) > gap)
        run = np.cumsum(start) - 1
        best = np.lexsort((-amp, run))  # by run, the largest amplitude first
        first = np.ones(len(best), dtype=bool)
        first[1:] = run[best][1:] != run[best][:-1]
        keep = np.zeros(len(times), dtype=bool)
        keep[best[first]] = True
        times, units = times[keep], units[keep]
        order = np.argsort(times, kind="stable")
        return times[order], units[order]

    def _set_templates(self, XnT, times, labels):
        """Units with at least ``min_spikes`` spikes, relabelled 0..n-1, and
        their mean waveforms in the recording's units."""
        n_sub_units = int(self._sub_unit.max()) + 1
        counts = np.bincount(labels, minlength=n_sub_units)
        kept = np.flatnonzero(counts >= self.min_spikes)
        relabel = np.full(n_sub_units, -1, dtype=np.int64)
        relabel[kept] = np.arange(kept.size)
        self._sub_unit = relabel[self._sub_unit]
        ok = relabel[labels] >= 0
        self.spike_times_ = times[ok] * self._decimation()
        self.labels_ = relabel[labels[ok]]
        self.n_units_ = int(kept.size)
        L = self.kernels_.shape[2]
        nb = self.n_before_
        T = XnT.shape[1]
        unwhiten = None
        if self.whitening_ is not None:
            unwhiten = np.linalg.pinv(self.whitening_)
        templates = np.zeros((self.n_units_, L, XnT.shape[0]))
        unit_kernel = np.zeros(self.n_units_, dtype=np.int64)
        for u in range(self.n_units_):
            t = times[ok][self.labels_ == u]
            t = t[(t - nb >= 0) & (t - nb + L <= T)][:2000]
            w = _cluster.windows(XnT, t - nb, L).mean(axis=0)  # (C, L)
            if unwhiten is not None:
                w = unwhiten @ w
            templates[u] = (w * self.noise_level_[:, None]).T
            subs = np.flatnonzero(self._sub_unit == u)
            unit_kernel[u] = self._sub_kernel[subs[np.argmax(self._sub_counts[subs])]]
        self.templates_ = templates
        self.unit_kernel_ = unit_kernel

    # ------------------------------------------------------------ inference

    def predict(self, X):
        """Sort a recording with the fitted kernels and units.

        Parameters
        ----------
        X : array-like of shape (n_times, n_channels), or a list of such
            A recording with the channels of the training one (or
            consecutive chunks of one), in the same units.

        Returns
        -------
        spike_times : ndarray of shape (n_spikes,)
            Spike times in samples from the start of ``X``, sorted; each at
            its unit's reference sample (index ``n_before_`` of its
            template).
        labels : ndarray of shape (n_spikes,)
            Unit of every spike (0 to ``n_units_ - 1``).
        """
        check_is_fitted(self)
        self._t0 = time.perf_counter()
        with single_threaded_blas():
            XnT = self._prepare(X, fitting=False)
            events = self._deconvolve(XnT)
            times, subs = self._label(XnT, events)
        ok = subs >= 0
        return times[ok] * self._decimation(), subs[ok]

    def fit_predict(self, X, y=None):
        """Fit on ``X`` and return its sorted spikes (without deconvolving
        it twice).

        Parameters
        ----------
        X : array-like of shape (n_times, n_channels), or a list of such
            Raw recording, as for :meth:`fit`.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        spike_times : ndarray of shape (n_spikes,)
            As :meth:`predict`.
        labels : ndarray of shape (n_spikes,)
            As :meth:`predict`.
        """
        self.fit(X)
        return self.spike_times_.copy(), self.labels_.copy()
