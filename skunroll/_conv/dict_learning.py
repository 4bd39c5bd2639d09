"""Convolutional dictionary learning by an unrolled auto-encoder (CRsAE/DUNL)."""

import copy
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._kernels import _conv as _k
from .._parallel import single_threaded_blas
from .._parts.dictionaries import (
    kernel_parameter_shape,
    project_kernels,
    rank1_kernels,
    rank1_parameters,
)
from .._parts.likelihoods import (
    LIKELIHOODS,
    check_counts,
    curvature,
    link,
    mean,
    mean_derivative,
)
from .._training import (
    CallbackSupportMixin,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    with_callbacks,
)
from .._training.optim import OPTIMIZERS
from .._validation import FLOAT_DTYPES, N_JOBS
from .events import events_from_codes
from .network import (
    ConvNetwork,
    _map,
    encode,
    forward_backward,
    operator_norm2,
    reconstruct,
)

#: the kernels are re-centred in their window during the first epochs
ALIGN_EPOCHS = 5
#: "auto" segment_size: signals longer than twice this are cut into segments
AUTO_SEGMENT = 16384
#: largest move of a unit-norm kernel in one "sgd" step (a trust region)
MAX_MOVE = 0.5
#: detect_events encodes this many code positions at a time (bounded memory)
DETECT_BLOCK = 1 << 20


@dataclass
class _State(TrainingState):
    """The trainer's state plus what the convolutional model updates;
    ``params`` holds the kernels ``(K, C, kh, kw)`` and the intercept
    ``(C,)`` (both restored after a non-finite step)."""

    net: ConvNetwork = None
    curvature: float = 1.0
    codes: list = None  # warm starts of the training segments
    align: bool = False  # re-centre the kernels during the first epochs

    @property
    def H(self):
        return self.params["kernels"]

    @H.setter
    def H(self, value):
        self.params["kernels"] = value

    @property
    def intercept(self):
        return self.params["intercept"]

    @intercept.setter
    def intercept(self, value):
        self.params["intercept"] = value


class _Model:
    """The model of the trainer (see :mod:`skunroll._training.trainer`) for
    ``ConvolutionalDictionaryLearning``; ``data`` is ``(segments, masks)``."""

    def __init__(self, estimator):
        self.est = estimator

    def n_units(self, data):
        return len(data[0])

    def gradients(self, state, data, idx):
        """Summed objective and kernel gradient of the segments ``idx``."""
        est = self.est
        segs, masks = data
        step = est._encoder_step(state.H, state.curvature)
        Xb = [segs[i] for i in idx]
        Mb = None if masks is None else [masks[i] for i in idx]
        warm = state.codes is not None and state.codes[idx[0]] is not None
        init = [state.codes[i] for i in idx] if warm else None
        res = forward_backward(Xb, state.H, state.net, step, est.gradient,
                               est.n_jobs, Mb, init, state.intercept)  # fmt: skip
        penalty = 0.0 if est.gradient == "ae-ls" else res.penalty
        return Sums(
            objective=res.data_loss + penalty,
            n=idx.size,
            grads={"kernels": res.grad},
            finite=bool(np.isfinite(res.penalty)),
            extra=(Xb, res.codes),
        )

    def mean_gradients(self, state, sums):
        """The minibatch means plus the (parameter-only) smoothness term."""
        objective = sums.objective / sums.n
        grad = sums.grads["kernels"] / sums.n
        mu = self.est.kernel_smoothness
        if mu > 0:
            smooth, sgrad = _smoothness(state.H, mu)
            objective += smooth
            grad += sgrad
        return objective, {"kernels": grad}

    def apply(self, state, data, idx, grads, sums):
        """The intercept's Newton step, the kernels' step and projection, and
        the warm starts of the next epoch."""
        est = self.est
        Xb, codes = sums.extra
        energy = est._decoder_step(state, Xb, codes)
        est._apply(state, grads["kernels"], energy / sums.n)
        if state.codes is not None:
            for i, z in zip(idx, codes, strict=True):
                state.codes[i] = z

    def reset_optimizers(self, state):
        shape = kernel_parameter_shape(state.H, self.est.rank1)
        state.optimizers = {"kernels": OPTIMIZERS[self.est.optimizer](shape)}

    def end_epoch(self, state, data, objective, stats, n_seen):
        if state.align and state.n_epochs <= ALIGN_EPOCHS:
            self.est._align(state)

    def convergence_start(self, state):
        """Not converged during the alignment epochs."""
        if self.est.align_kernels and state.n_epochs <= ALIGN_EPOCHS:
            return None
        return 0

    def callback_info(self, state):
        return {"kernels": state.H}

    def period(self, state):
        return None  # partial_fit has no periods

    def fitted_attributes(self, state):
        est = self.est
        H = state.H
        attrs = {
            "_state": state,
            "_net": state.net,
            "kernels_": H.reshape(H.shape[:2] + tuple(est._kernel_shape())).copy(),
            "n_components_": H.shape[0],
            "intercept_": state.intercept.copy(),
            "step_size_": est._encoder_step(H, state.curvature),
            "objective_history_": np.asarray(state.objective_history),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
            "learning_rate_": state.learning_rate,
        }
        for name in ("n_features_in_", "signal_shape_", "feature_names_in_"):
            if hasattr(est, name):
                attrs[name] = getattr(est, name)
        return attrs


class ConvolutionalDictionaryLearning(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    r"""Convolutional dictionary learning with an unrolled sparse auto-encoder.

    Recordings and images are modelled as sums of a few kernels placed at
    sparse times or positions,

    .. math:: x = f\Big(\sum_k h_k * z_k\Big) + \text{noise},

    and the kernels ``h_k`` are learned by back-propagation through ``n_unroll``
    steps of (F)ISTA on the code maps ``z_k`` (the constrained recurrent sparse
    auto-encoder, CRsAE [1]_), whose weights are the kernels themselves. The
    options of deconvolutional unrolled neural learning (DUNL [2]_) are
    available: a sign and a sparsity weight per kernel, known event windows
    (``code_mask``), and Poisson or binomial likelihoods for spike counts.
    ``skunroll.ConvolutionalDL`` is the same class under its former, shorter
    name.

    Input shapes:

    - ``(n_samples, n_times)``: one-channel 1-D signals (``kernel_size`` an int);
    - ``(n_samples, n_channels, n_times)``: multichannel 1-D signals;
    - ``(n_samples, n_channels, height, width)`` (or ``(n_samples, height,
      width)`` for one channel) with ``kernel_size=(kh, kw)``: images.

    Codes are "valid": a kernel is placed entirely inside the signal, so a
    code map has ``n_times - kernel_size + 1`` positions per axis.

    Parameters
    ----------
    n_components : int, default=8
        Number of kernels.
    kernel_size : int or tuple of 2 ints, default=32
        Length of 1-D kernels, or ``(kh, kw)`` for images.
    alpha : float or array-like of shape (n_components,), default=0.1
        Sparsity weight :math:`\lambda_k` of the codes, one per kernel if an
        array. The encoder solves :math:`\min_z \ell(x, Hz) + \sum_k \lambda_k
        \|z_k\|_1` approximately.
    n_unroll : int or "auto", default="auto"
        Depth ``T`` of the unrolled encoder. "auto" is 100 for the Poisson
        likelihood, whose step is set by the largest count (from zero, 30
        steps left the amplitudes of simulated events at 55 % of their
        converged values, 100 steps at 99 %), and 30 otherwise (30 binomial
        steps reached 94 %).
    encoder : {"fista", "ista"}, default="fista"
        Unrolled algorithm.
    method : {"auto", "direct", "fft"}, default="auto"
        How the convolutions are computed: directly in numba (with the
        Gaussian encoder in Gram form, whose cost follows the number of
        non-zero codes), or with ``scipy.fft`` (cost ``O(N log N)`` per
        product whatever the kernel size). "auto" takes the FFT for kernels of
        128 taps (``kh * kw``) or more, where it was faster on this project's
        measurements.
    gradient : {"dec", "ae-ls", "ae-lasso"}, default="dec"
        Gradient of the kernels (as in :class:`UnrolledDictionaryLearning`):
        the gradient at the encoder's codes ("dec"), or back-propagation of
        the reconstruction loss ("ae-ls") or of the loss plus penalty
        ("ae-lasso") through the unrolled encoder. "dec" is the default: on
        the spike-sorting benchmark, "ae-ls" from data-drawn kernels did not
        recover the planted kernels (see the user guide).
    prior : {"l1", "nonneg_l1"}, default="l1"
        Code prior: two-sided or non-negative :math:`\ell_1`.
    likelihood : {"gaussian", "poisson", "binomial"}, default="gaussian"
        Observation model; the count likelihoods take non-negative integer
        data (spike counts in bins), with a learned baseline (see
        ``fit_intercept``). With known event onsets (``fit(X, code_mask=...)``,
        DUNL's setting) they recover planted kernels from simulated counts
        (:func:`~skunroll.datasets.make_spike_counts`) where the Gaussian
        likelihood does not. Without onsets, the :math:`\ell_1`-penalised
        fit of counts has not recovered planted kernels in our trials: codes
        spread over many small entries that fit the Poisson noise (see the
        user guide).
    n_trials : int, default=1
        Number of trials of the binomial likelihood.
    fit_intercept : bool or "auto", default="auto"
        Whether the model has a learned baseline per channel,
        :math:`x = f(\nu_c + \sum_k h_k * z_k)`: the baseline firing rate of
        spike counts (DUNL's baseline activity). It starts at the link of the
        channel's mean and takes, before every kernel step, one Newton step
        on the data loss at the encoder's codes (exact for the Gaussian
        likelihood; at most 1 on the link scale for the count likelihoods).
        "auto" fits it for the count likelihoods and not for the Gaussian one
        (centre Gaussian data instead, as is usual in CSC).
    code_sign : None, int or array-like of shape (n_components,), default=None
        Sign of the codes of each kernel: +1 (non-negative), -1 (non-positive)
        or 0 (two-sided); overrides ``prior``. None follows ``prior``.
    rank1 : bool, default=False
        Multichannel kernels as a spatial pattern times a waveform,
        :math:`h_k = u_k v_k^\top` (multivariate CSC of Dupré la Tour et al.,
        2018). The rank-1 factors are learned (the gradient is projected by
        the chain rule).
    positive_kernels : bool, default=False
        Whether kernels are non-negative.
    kernel_smoothness : float, default=0.0
        Weight :math:`\mu` of a penalty :math:`\frac{\mu}{2}\sum_k\|\nabla
        h_k\|^2` on the first differences of the kernels along their spatial
        axes, per training sample.
    kernel_init : {"peaks", "random"} or array-like, default="peaks"
        Initial kernels: windows of the data centred on its largest peaks
        (non-overlapping), random windows of the data, or an array of shape
        ``(n_components, n_channels, *kernel_size)``. When ``fit`` gets a
        ``code_mask`` (known onsets: one or a few allowed positions per event),
        "peaks" takes instead every kernel's event-triggered
        average: the mean window (minus each channel's mean) starting at the
        kernel's allowed onsets, split at random between the kernels when
        they all share the same onsets (a window centred on a peak puts the
        response at the wrong lag for onsets that are fixed, and a kernel
        anti-correlated with its events at its onsets keeps zero codes).
    align_kernels : bool, default=True
        During the first epochs, shift every kernel so that its energy is
        centred in its window: a kernel learned off-centre loses its tail.
        Not done when ``fit`` gets a ``code_mask``: known onsets fix where a
        kernel sits in its window.
    segment_size : "auto" or int, default="auto"
        Training signals longer than this many code positions along their last
        axis are cut into segments of this size (a fixed partition). "auto"
        keeps signals of up to 32768 positions whole and cuts longer ones into
        segments of 16384.
    code_warm_start : bool, default=True
        Whether every epoch's encoder starts from the codes of the previous
        epoch (kept for every training segment, ``n_components`` values per
        position) rather than from zero, so that the codes keep converging
        across epochs: alternating minimisation with an inexact code step.
        The fitted encoder (``transform``) always starts from zero.
    batch_size : int, default=16
        Segments (signals) per training step.
    max_iter : int, default=50
        Maximum number of epochs (passes over the training segments).
    learning_rate : float or "auto", default="auto"
        Step of the optimiser. For "sgd" it is relative to the curvature of
        each kernel: kernel ``k`` moves by ``learning_rate / sum(z_k ** 2)``
        times its gradient (1 is the least-squares step of MOD when events do
        not overlap). For the count likelihoods every tap ``tau`` has its own
        Gauss-Newton curvature, ``sum_p z_kp ** 2 f'(eta_{p + tau})`` (floored
        at a tenth of the kernel's mean): the rate under a response's peak is
        far higher than under its tail. "auto" is 0.8 for
        "sgd" with the Gaussian likelihood, 0.2 for "sgd" with a count
        likelihood (a minibatch of counts holds fewer events' worth of
        information, and 0.8 left the kernels noisy) and 0.003 for "adam".
    optimizer : {"sgd", "adam"}, default="sgd"
        Optimiser of the kernels. Adam's per-entry scaling turns gradient
        noise into a random walk of the kernels, so it suits only large
        batches with a decreasing step.
    tol : float or "auto", default="auto"
        Training stops when an epoch's objective changes by at most ``tol``
        relatively; 0 runs ``max_iter`` epochs. "auto" is 1e-3 for the
        Gaussian likelihood and 0 for the count likelihoods, whose epoch
        objectives fluctuate (Poisson noise of the minibatches) enough to stop
        a relative test long before the kernels settle.
    chunk_size : int, default=32768
        Code positions per chunk when encoding long signals: chunks extended
        by the encoder's reach ``n_unroll * (kw - 1)`` on both sides run in
        parallel and give exactly the whole-signal codes.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of the crops.
    n_jobs : int, default=None
        Threads over signals and chunks (``None`` means 1, -1 all cores; 0 is
        rejected).
    verbose : int, default=0
        1 prints one line per epoch, 2 also every 10 steps.
    callback : callable, default=None
        Called as ``callback(estimator, info)`` after every step (of ``fit``
        and of ``partial_fit``) with a dict
        (``n_iter``, ``n_steps``, ``objective``, ``learning_rate``,
        ``elapsed``, ``kernels``); returning True stops training.

    Attributes
    ----------
    kernels_ : ndarray of shape (n_components, n_channels, kh, kw)
        (``(n_components, n_channels, kernel_size)`` for 1-D kernels).
        Learned kernels, unit norm.
    n_components_ : int
        Number of kernels.
    intercept_ : ndarray of shape (n_channels,)
        Learned baseline :math:`\nu_c` of every channel's linear predictor
        (zeros when ``fit_intercept`` is off).
    step_size_ : float
        Step of the unrolled encoder, ``1 / (c L)`` with ``L`` the squared norm
        of the convolution operator (computed in the Fourier domain, so it
        holds for signals of any length) and ``c`` the likelihood's curvature.
    objective_history_ : ndarray of shape (n_epochs,)
        Mean objective per training crop at every epoch (the data loss, plus
        the penalty except for "ae-ls").
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimiser steps taken.
    learning_rate_ : float
        Final learning rate (halved after a non-finite step).
    n_features_in_ : int
        Number of values per training signal.
    signal_shape_ : tuple
        Shape of one training signal, as given.

    See Also
    --------
    UnrolledDictionaryLearning : the same auto-encoder for patches and vectors.

    Notes
    -----
    Training cuts the signals into fixed segments (``segment_size``); every
    step encodes ``batch_size`` of them with the unrolled encoder (from their
    codes of the previous epoch, see ``code_warm_start``), updates the
    intercept, then the kernels by the optimiser on the summed gradient, and
    renormalises the kernels. ``transform``, :meth:`code_maps` and
    :meth:`detect_events` encode whole signals in overlapping chunks (see
    ``chunk_size``) in ``n_jobs`` threads, so arbitrarily long recordings
    encode in bounded memory. ``transform``, ``score`` and
    ``inverse_transform`` need signals of the training shape (a ``Pipeline``
    sees a fixed number of features); :meth:`code_maps` and
    :meth:`detect_events` take signals of any length.

    References
    ----------
    .. [1] Tolooshams, Dey & Ba, "Deep residual autoencoders for expectation
       maximization-inspired dictionary learning", IEEE TNNLS 32(6), 2021
       (CRsAE); Tolooshams, Song, Temereanca & Ba, "Convolutional dictionary
       learning based auto-encoders for natural exponential-family
       distributions", ICML 2020.
    .. [2] Tolooshams, Matias, Wu, Temereanca, Uchida & Ba, "Interpretable deep
       learning for deconvolutional analysis of neural signals", bioRxiv 2024
       (DUNL).
    .. [3] Dupré la Tour, Moreau, Jas & Gramfort, "Multivariate convolutional
       sparse coding for electromagnetic brain signals", NeurIPS 2018.

    Examples
    --------
    >>> from skunroll import ConvolutionalDictionaryLearning
    >>> from skunroll.datasets import make_spike_recording
    >>> X, kernels, events = make_spike_recording(4, 4000, random_state=0)
    >>> cdl = ConvolutionalDictionaryLearning(3, 45, alpha=0.3, random_state=0)
    >>> cdl = cdl.fit(X)
    >>> cdl.kernels_.shape
    (3, 1, 45)
    >>> cdl.transform(X).shape
    (4, 11868)
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "alpha": [Interval(Real, 0, None, closed="left"), "array-like"],
        "n_unroll": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "encoder": [StrOptions({"fista", "ista"})],
        "method": [StrOptions({"auto", "direct", "fft"})],
        "gradient": [StrOptions({"ae-ls", "ae-lasso", "dec"})],
        "prior": [StrOptions({"l1", "nonneg_l1"})],
        "likelihood": [StrOptions(set(LIKELIHOODS))],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean", StrOptions({"auto"})],
        "code_sign": [None, Integral, "array-like"],
        "rank1": ["boolean"],
        "positive_kernels": ["boolean"],
        "kernel_smoothness": [Interval(Real, 0, None, closed="left")],
        "kernel_init": [StrOptions({"peaks", "random"}), "array-like"],
        "align_kernels": ["boolean"],
        "segment_size": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
        ],
        "code_warm_start": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [
            Interval(Real, 0, None, closed="neither"),
            StrOptions({"auto"}),
        ],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_components=8,
        kernel_size=32,
        *,
        alpha=0.1,
        n_unroll="auto",
        encoder="fista",
        method="auto",
        gradient="dec",
        prior="l1",
        likelihood="gaussian",
        n_trials=1,
        fit_intercept="auto",
        code_sign=None,
        rank1=False,
        positive_kernels=False,
        kernel_smoothness=0.0,
        kernel_init="peaks",
        align_kernels=True,
        segment_size="auto",
        code_warm_start=True,
        batch_size=16,
        max_iter=50,
        learning_rate="auto",
        optimizer="sgd",
        tol="auto",
        chunk_size=32768,
        random_state=None,
        n_jobs=None,
        verbose=0,
        callback=None,
    ):
        self.n_components = n_components
        self.kernel_size = kernel_size
        self.alpha = alpha
        self.n_unroll = n_unroll
        self.encoder = encoder
        self.method = method
        self.gradient = gradient
        self.prior = prior
        self.likelihood = likelihood
        self.n_trials = n_trials
        self.fit_intercept = fit_intercept
        self.code_sign = code_sign
        self.rank1 = rank1
        self.positive_kernels = positive_kernels
        self.kernel_smoothness = kernel_smoothness
        self.kernel_init = kernel_init
        self.align_kernels = align_kernels
        self.segment_size = segment_size
        self.code_warm_start = code_warm_start
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.tol = tol
        self.chunk_size = chunk_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------ validation

    def _kernel_shape(self):
        ks = self.kernel_size
        ks = (ks,) if isinstance(ks, Integral) else tuple(ks)
        if len(ks) not in (1, 2) or not all(
            isinstance(k, Integral) and k >= 1 for k in ks
        ):
            raise ValueError(
                f"kernel_size must be a positive int or a pair of positive ints; "
                f"got {self.kernel_size!r}."
            )
        return ks

    def _per_kernel(self, value, name, k):
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            return np.full(k, float(arr))
        if arr.shape != (k,):
            raise ValueError(
                f"{name} must be a scalar or have shape (n_components,) = ({k},); "
                f"got shape {arr.shape}."
            )
        return arr.copy()

    def _network(self, k):
        alphas = self._per_kernel(self.alpha, "alpha", k)
        if np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError(
                f"alpha must be finite and non-negative; got {self.alpha!r}."
            )
        if self.code_sign is None:
            signs = np.full(k, 1 if self.prior == "nonneg_l1" else 0)
        else:
            signs = self._per_kernel(self.code_sign, "code_sign", k)
            if not np.all(np.isin(signs, (-1, 0, 1))):
                raise ValueError(
                    f"code_sign entries must be +1, -1 or 0; got {self.code_sign!r}."
                )
        return ConvNetwork(
            self._n_unroll(), self.encoder == "fista", alphas, signs.astype(np.int64),
            self.likelihood, float(self.n_trials), self.method,
        )  # fmt: skip

    def _to_4d(self, X, name="X"):
        """Signals as ``(n, C, h, w)``; returns the array and the input's ndim."""
        ks = self._kernel_shape()
        ndim = X.ndim
        if len(ks) == 1:
            if ndim == 2:
                X4 = X[:, None, None, :]
            elif ndim == 3:
                X4 = X[:, :, None, :]
            else:
                raise ValueError(
                    f"{name} must be 2-D (n_samples, n_times) or 3-D (n_samples, "
                    f"n_channels, n_times) for 1-D kernels (kernel_size="
                    f"{self.kernel_size!r}); got shape {X.shape}."
                )
        else:
            if ndim == 3:
                X4 = X[:, None]
            elif ndim == 4:
                X4 = X
            else:
                raise ValueError(
                    f"{name} must be 3-D (n_samples, height, width) or 4-D "
                    f"(n_samples, n_channels, height, width) for 2-D kernels "
                    f"(kernel_size={self.kernel_size!r}); got shape {X.shape}."
                )
        kshape = (1, *ks)[-2:]
        if X4.shape[2] < kshape[0] or X4.shape[3] < kshape[1]:
            extent = X.shape[-1] if len(ks) == 1 else X.shape[-2:]
            raise ValueError(
                f"kernel_size={self.kernel_size!r} does not fit in signals of "
                f"{extent} {'sample(s)' if len(ks) == 1 else 'pixels'}: {name} has "
                f"{X.shape[-1]} feature(s) along its last axis."
            )
        return np.ascontiguousarray(X4)

    def _check_signals(self, X, reset, same_shape, name="X"):
        """Validated signals; 2-D input of the training width goes through
        ``validate_data`` (feature names, ``n_features_in_``)."""
        ndim = len(X.shape) if hasattr(X, "shape") else np.asarray(X).ndim
        if ndim == 2 and (reset or same_shape):
            X = validate_data(self, X, dtype=FLOAT_DTYPES, order="C", reset=reset)
        X = check_array(
            X, dtype=FLOAT_DTYPES, order="C", allow_nd=True, input_name=name
        )
        if X.ndim < 2:
            raise ValueError(f"{name} must hold several signals; got shape {X.shape}.")
        if reset:
            self.signal_shape_ = X.shape[1:]
            self.n_features_in_ = int(np.prod(X.shape[1:]))
        elif same_shape and X.shape[1:] != self.signal_shape_:
            raise ValueError(
                f"{name} has signals of shape {X.shape[1:]} "
                f"({int(np.prod(X.shape[1:]))} "
                "features), but ConvolutionalDictionaryLearning is expecting "
                f"{self.n_features_in_} "
                f"features as input (signals of shape {self.signal_shape_}); "
                "code_maps and detect_events take signals of any length."
            )
        if not reset and X.ndim != len(self.signal_shape_) + 1:
            raise ValueError(
                f"{name} must have the dimensions of the training data "
                f"(signals of shape {self.signal_shape_}); got shape {X.shape}."
            )
        check_counts(X, self.likelihood, self.n_trials)
        return X

    def _check_mask(self, code_mask, X4, k):
        if code_mask is None:
            return None
        mask = np.asarray(code_mask)
        shape = (X4.shape[0], k, X4.shape[2] - self._kshape[0] + 1,
                 X4.shape[3] - self._kshape[1] + 1)  # fmt: skip
        squeezed = shape if len(self._kernel_shape()) == 2 else shape[:2] + shape[3:]
        if mask.shape not in (shape, squeezed) or mask.dtype.kind not in "biu":
            raise ValueError(
                f"code_mask must be a boolean array of shape (n_samples, "
                f"n_components, *n_positions) = {squeezed}; got "
                f"{mask.dtype} of shape {mask.shape}."
            )
        return np.ascontiguousarray(mask.reshape(shape).astype(bool))

    @property
    def _kshape(self):
        return (1, *self._kernel_shape())[-2:]

    # ------------------------------------------------------------ fitting

    @atomic
    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, code_mask=None):
        """Learn the kernels from signals ``X``.

        Parameters
        ----------
        X : array-like
            Training signals of shape (n_samples, n_times), (n_samples,
            n_channels, n_times), or (n_samples, [n_channels,] height, width)
            for 2-D kernels.
        y : Ignored
            Not used, present for API consistency by convention.
        code_mask : array-like of bool, default=None
            Shape ``(n_samples, n_components, *n_positions)``. Allowed code
            positions (known event windows): codes are zero
            elsewhere, so only the amplitudes at the given onsets are inferred.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = self._check_signals(X, reset=True, same_shape=True)
        X4 = self._to_4d(X)
        net = self._network(self.n_components)
        mask = self._check_mask(code_mask, X4, self.n_components)
        trainer = self._trainer()
        with single_threaded_blas():
            state = self._initial_state(X4, net, mask)
            segs, masks = self._segments(X4, mask)
            state.align = self.align_kernels and mask is None
            if self.code_warm_start:
                state.codes = [None] * len(segs)
            trainer.fit(state, (segs, masks), X)
            state.codes = None
        self._set_fitted(state)
        trainer.warn_if_not_converged(state)
        return self

    @atomic
    def partial_fit(self, X, y=None, code_mask=None):
        """One training step on the signals ``X`` (whole, not cropped).

        The first call initialises the kernels from ``X`` (or
        ``kernel_init``); later calls continue the same optimiser.

        Parameters
        ----------
        X : array-like
            One minibatch of signals, shaped as for :meth:`fit`.
        y : Ignored
            Not used, present for API consistency by convention.
        code_mask : array-like of bool, default=None
            Allowed code positions, as for :meth:`fit`.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "kernels_")
        if first:
            self._validate_params()
        X = self._check_signals(X, reset=first, same_shape=not first)
        X4 = self._to_4d(X)
        mask = self._check_mask(code_mask, X4, self.n_components)
        with single_threaded_blas():
            if first:
                state = self._initial_state(X4, self._network(self.n_components),
                                            mask)  # fmt: skip
            else:
                state = copy.deepcopy(self._state)
            X4 = X4.astype(state.H.dtype, copy=False)
            masks = None if mask is None else list(mask)
            self._trainer().partial_fit(state, (list(X4), masks))
        self._set_fitted(state)
        return self

    def _trainer(self):
        return Trainer.for_estimator(
            self, _Model(self), tol=self._tol(), what="kernels"
        )

    def _initial_state(self, X4, net, mask=None):
        rng = check_random_state(self.random_state)
        intercept = np.zeros(X4.shape[1])
        windows = X4  # the data kernels are cut from
        if self._fits_intercept():
            mu = X4.mean(axis=(0, 2, 3), dtype=np.float64)
            intercept = link(mu, self.likelihood, self.n_trials)
            if isinstance(self.kernel_init, str):
                windows = X4 - mu[None, :, None, None].astype(X4.dtype)
        H = self._initial_kernels(windows, rng, mask)
        H = H.astype(X4.dtype)
        self._project(H)
        c = curvature(self.likelihood, self.n_trials, X4)
        opt = OPTIMIZERS[self.optimizer](kernel_parameter_shape(H, self.rank1))
        return _State(
            params={"kernels": H, "intercept": intercept},
            optimizers={"kernels": opt},
            rng=rng,
            learning_rate=self._learning_rate(),
            net=net,
            curvature=c,
        )

    def _n_unroll(self):
        if self.n_unroll != "auto":
            return int(self.n_unroll)
        return 100 if self.likelihood == "poisson" else 30

    def _learning_rate(self):
        if self.learning_rate != "auto":
            return float(self.learning_rate)
        if self.optimizer == "adam":
            return 0.003
        return 0.8 if self.likelihood == "gaussian" else 0.2

    def _tol(self):
        if self.tol != "auto":
            return float(self.tol)
        return 1e-3 if self.likelihood == "gaussian" else 0.0

    def _fits_intercept(self):
        if self.fit_intercept == "auto":
            return self.likelihood != "gaussian"
        return bool(self.fit_intercept)

    def _initial_kernels(self, X4, rng, mask=None):
        k = self.n_components
        kh, kw = self._kshape
        C = X4.shape[1]
        if not isinstance(self.kernel_init, str):
            H = np.asarray(self.kernel_init, dtype=np.float64)
            shape = (k, C, *self._kernel_shape())
            if H.shape != shape or not np.all(np.isfinite(H)):
                raise ValueError(
                    f"kernel_init must be finite with shape (n_components, "
                    f"n_channels, *kernel_size) = {shape}; got shape {H.shape}."
                )
            return H.reshape(k, C, kh, kw).copy()
        if self.kernel_init == "peaks" and mask is not None:
            return _onset_averages(X4, mask, (kh, kw), rng)
        if self.kernel_init == "peaks":
            return _windows_at_peaks(X4, k, (kh, kw), rng)
        return _random_windows(X4, k, (kh, kw), rng)

    def _project(self, H):
        return project_kernels(H, self.positive_kernels, self.rank1)

    def _segments(self, X4, mask):
        """Fixed partition of the training signals along their last axis."""
        kw = self._kshape[1]
        width = X4.shape[3] - kw + 1
        if self.segment_size == "auto":
            size = width if width <= 2 * AUTO_SEGMENT else AUTO_SEGMENT
        else:
            size = self.segment_size
        segs, masks = [], None if mask is None else []
        for i in range(X4.shape[0]):
            for lo in range(0, width, size):
                hi = min(lo + size, width)
                segs.append(X4[i, :, :, lo : hi + kw - 1])
                if mask is not None:
                    masks.append(np.ascontiguousarray(mask[i, :, :, lo:hi]))
        return segs, masks

    def _encoder_step(self, H, c):
        return 1.0 / (c * operator_norm2(H))

    def _decoder_step(self, state, Xb, codes):
        """The intercept's Newton step and the kernels' curvature scale.

        Returns the code energy of every kernel, ``sum_p z_kp^2`` (Gaussian),
        or for the count likelihoods the Gauss-Newton diagonal of the data
        loss in every kernel tap, ``sum_p z_kp^2 f'(eta_{p + tau})``: the rate
        under a response's peak is far higher than under its tail, and one
        curvature per kernel (their mean) overshot at the peak taps, so that
        the kernels drifted away from planted ones. With
        ``fit_intercept``, every channel's intercept then takes one Newton
        step on the data loss at these codes, ``nu += sum(x - f(eta)) /
        sum(f'(eta))`` (exact for the Gaussian; at most 1 in magnitude for the
        count likelihoods, on their link scale).
        """
        gaussian = self.likelihood == "gaussian"
        if gaussian:
            energy = sum(np.einsum("kij,kij->k", z, z, dtype=np.float64) for z in codes)
            if not self._fits_intercept():
                return energy
        else:
            energy = np.zeros(state.H.shape)  # the per-tap curvature
        H = state.H
        num = np.zeros_like(state.intercept)
        den = np.zeros_like(state.intercept)
        for x, z in zip(Xb, codes, strict=True):
            e = np.empty(x.shape, dtype=x.dtype)
            _k.synthesis(z, H.astype(x.dtype, copy=False), e)
            eta = e + state.intercept[:, None, None]
            d = mean_derivative(eta, self.likelihood, self.n_trials)
            num += (x - mean(eta, self.likelihood, self.n_trials)).sum(axis=(1, 2))
            den += d.sum(axis=(1, 2))
            if not gaussian:
                _k.add_kernel_correlation(d.astype(z.dtype), z * z, 1.0, energy)
        if self._fits_intercept():
            step = num / np.maximum(den, 1e-12)
            if not gaussian:  # a Newton step on a link scale, at most 1
                step = np.clip(step, -1.0, 1.0)
            state.intercept += step
        return energy

    def _apply(self, state, grad, energy):
        """Optimiser step on the sphere, then the projection.

        The gradient's component along each (unit-norm) kernel is removed
        first: the projection undoes it, and Adam's per-entry scaling would
        turn it into a drift. For "sgd", the gradient is divided by
        ``energy`` (per signal): the code energy ``sum(z_k ** 2)`` of every
        kernel, or for the count likelihoods a curvature per kernel tap (see
        ``_decoder_step``), and the step is shortened to move the kernel by at
        most ``MAX_MOVE`` (codes near zero would otherwise give huge steps).
        """
        H = state.H
        if self.optimizer == "sgd":
            if energy.ndim == 1:  # one curvature per kernel
                energy = energy[:, None, None, None]
            else:  # per entry: floored at a tenth of the kernel's mean
                energy = np.maximum(
                    energy, 0.1 * energy.mean(axis=(1, 2, 3), keepdims=True)
                )
            grad = grad / np.maximum(energy, 1e-12 * energy.max() + 1e-300)
        if not self.rank1:
            radial = np.einsum("kcij,kcij->k", grad, H)
            grad = grad - radial[:, None, None, None] * H
            if self.optimizer == "sgd":  # a unit kernel moves by at most MAX_MOVE
                size = state.learning_rate * np.sqrt(
                    np.einsum("kcij,kcij->k", grad, grad)
                )
                grad *= np.minimum(1.0, MAX_MOVE / np.maximum(size, 1e-300))[
                    :, None, None, None
                ]
            state.optimizers["kernels"].step(H, grad, state.learning_rate)
        else:
            params, G = rank1_parameters(H, grad)
            state.optimizers["kernels"].step(params, G, state.learning_rate)
            rank1_kernels(params, H)
        return self._project(H)

    def _align(self, state):
        """Shift every kernel so that its energy is centred in its window."""
        H = state.H
        moved = []
        for k in range(H.shape[0]):
            shifts = _centring_shifts(H[k])
            if any(shifts):
                H[k] = _shift(H[k], shifts)
                moved.append(k)
                for z in state.codes or ():
                    if z is not None:  # an event's onset moves the other way
                        z[k] = _shift(z[k][None], (-shifts[0], -shifts[1]))[0]
        if moved:
            self._project(H)
            if hasattr(state.optimizers["kernels"], "reset_rows"):
                state.optimizers["kernels"].reset_rows(moved)

    def _set_fitted(self, state):
        self.__dict__.update(_Model(self).fitted_attributes(state))

    # ------------------------------------------------------------ inference

    def _kernels4(self, dtype=None):
        """The fitted kernels ``kernels_`` as ``(K, C, kh, kw)``."""
        H = np.asarray(self.kernels_)
        H = H.reshape(H.shape[:2] + self._kshape)
        return np.ascontiguousarray(H, dtype=dtype)

    def _maps(self, X4, mask=None):
        return encode(X4, self._kernels4(X4.dtype), self._net, self.step_size_,
                      self.n_jobs, mask, self.chunk_size,
                      np.asarray(self.intercept_, dtype=np.float64))  # fmt: skip

    def _squeeze_maps(self, codes):
        return codes if len(self._kernel_shape()) == 2 else codes[:, :, 0]

    def code_maps(self, X, code_mask=None):
        """Structured code maps of signals of any length.

        Parameters
        ----------
        X : array-like
            Signals with the dimensions of the training data (any length).
        code_mask : array-like of bool, default=None
            Allowed code positions, shape ``(n_samples, n_components,
            *n_positions)``.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components, n_positions)
            (``(n_samples, n_components, rows, columns)`` for images).
            ``n_positions = n_times - kernel_size + 1`` per axis.
        """
        check_is_fitted(self)
        X = self._check_signals(X, reset=False, same_shape=False)
        X4 = self._to_4d(X)
        mask = self._check_mask(code_mask, X4, self.n_components_)
        with single_threaded_blas():
            return self._squeeze_maps(self._maps(X4, mask))

    def transform(self, X):
        """Code maps flattened to ``(n_samples, n_components * n_positions)``.

        Parameters
        ----------
        X : array-like
            Signals of the training shape.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components * n_positions)
            Row-major flattening of :meth:`code_maps`.
        """
        check_is_fitted(self)
        X = self._check_signals(X, reset=False, same_shape=True)
        with single_threaded_blas():
            codes = self._maps(self._to_4d(X))
        return codes.reshape(codes.shape[0], -1)

    def _unflatten(self, Z):
        shape = self._unflatten_shape()
        Z = check_array(Z, dtype=FLOAT_DTYPES, allow_nd=True, input_name="X")
        if Z.ndim == 2 and Z.shape[1] == np.prod(shape):
            return np.ascontiguousarray(Z.reshape(Z.shape[0], *shape))
        if Z.shape[1:] in (shape, shape[:1] + shape[2:]):
            return np.ascontiguousarray(Z.reshape(Z.shape[0], *shape))
        raise ValueError(
            f"X must be codes of shape (n_samples, {int(np.prod(shape))}) (from "
            f"transform) or code maps of shape (n_samples, *{shape}); got "
            f"{Z.shape}."
        )

    def inverse_transform(self, X):
        """Signals ``f(nu + sum_k h_k * z_k)`` (the decoder's mean) from codes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components * n_positions)
            Codes from :meth:`transform` (or the maps of :meth:`code_maps`).

        Returns
        -------
        X_rec : ndarray
            Of shape ``(n_samples,) + signal_shape_``.
            Reconstructed signals.
        """
        check_is_fitted(self)
        codes = self._unflatten(X)
        eta = reconstruct(codes, self._kernels4())
        eta += np.asarray(self.intercept_, dtype=np.float64)[None, :, None, None]
        rec = mean(eta, self.likelihood, self.n_trials)
        return rec.reshape(rec.shape[0], *self.signal_shape_)

    def score(self, X, y=None):
        """Minus the mean per-signal objective (data loss + penalty).

        Parameters
        ----------
        X : array-like
            Signals of the training shape.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Higher is better; compares kernels at one ``alpha``.
        """
        check_is_fitted(self)
        X = self._check_signals(X, reset=False, same_shape=True)
        X4 = self._to_4d(X)
        intercept = np.asarray(self.intercept_, dtype=np.float64)
        with single_threaded_blas():
            res = forward_backward(X4, self._kernels4(X4.dtype), self._net,
                                   self.step_size_, "forward", self.n_jobs,
                                   offset=intercept)  # fmt: skip
        return -(res.data_loss + res.penalty) / X4.shape[0]

    def detect_events(self, X, threshold=0.0, min_distance="auto", code_mask=None):
        """Detect events (spikes): where, which kernel, and how strong.

        Encodes ``X`` (any length, in parallel chunks), keeps the code
        entries whose magnitude exceeds ``threshold`` and, of those closer than
        ``min_distance`` positions to a larger one of the same kernel, only the
        largest (a slightly misaligned event spreads over neighbouring
        positions). Long signals are processed in blocks of about a million
        positions, each extended by the encoder's reach, so memory does not
        grow with the length of the recording (only the list of events does).

        Parameters
        ----------
        X : array-like
            Signals with the dimensions of the training data, of any length.
        threshold : float, default=0.0
            Smallest code magnitude reported.
        min_distance : "auto" or int, default="auto"
            Non-maximum suppression radius along every axis; "auto" is a quarter
            of the kernel width; 0 keeps every non-zero entry.
        code_mask : array-like of bool, default=None
            Allowed code positions.

        Returns
        -------
        events : structured ndarray
            Fields ``sample``, ``kernel``, ``position`` (the onset: index of
            the code entry, an int for 1-D signals and a (row, column) pair for
            images) and ``amplitude`` (the code value), sorted by sample,
            kernel and position: the format of
            :func:`skunroll.datasets.make_spike_recording`.
        """
        check_is_fitted(self)
        if min_distance == "auto":
            min_distance = max(1, self._kshape[1] // 4)
        if not isinstance(min_distance, Integral) or min_distance < 0:
            raise ValueError(
                "min_distance must be 'auto' or a non-negative int; got "
                f"{min_distance!r}."
            )
        X = self._check_signals(X, reset=False, same_shape=False)
        X4 = self._to_4d(X)
        mask = self._check_mask(code_mask, X4, self.n_components_)
        radius = int(min_distance)
        kw = self._kshape[1]
        reach = self._net.n_unroll * (kw - 1)  # the encoder's reach
        width = X4.shape[3] - kw + 1
        found = []
        with single_threaded_blas():
            for i in range(X4.shape[0]):
                for s in range(0, width, DETECT_BLOCK):
                    e = min(s + DETECT_BLOCK, width)
                    lo, hi = max(0, s - radius), min(width, e + radius)
                    a, b = max(0, lo - reach), min(width, hi + reach)
                    m = None if mask is None else mask[i : i + 1, :, :, a:b]
                    codes = self._maps(X4[i : i + 1, :, :, a : b + kw - 1], m)
                    codes = codes[:, :, :, lo - a : hi - a]
                    kept = self._suppress(codes, float(threshold), radius)
                    kept = kept[:, :, :, s - lo : e - lo]
                    events = events_from_codes(self._squeeze_maps(kept))
                    events["sample"] = i
                    if len(self._kernel_shape()) == 1:
                        events["position"] += s
                    else:
                        events["position"][:, 1] += s
                    found.append(events)
        if not found:
            return events_from_codes(
                self._squeeze_maps(np.zeros((0, self.n_components_, 1, 1)))
            )
        events = np.concatenate(found)
        if len(events) == 0:  # no event: the empty records, of the same dtype
            return events
        pos = events["position"].reshape(len(events), -1)
        order = np.lexsort((*pos.T[::-1], events["kernel"], events["sample"]))
        return events[order]

    def _suppress(self, codes, threshold, radius):
        """Per-signal non-maximum suppression in the thread pool."""
        maps = codes.reshape(codes.shape[0], codes.shape[1], -1, codes.shape[-1])
        kept = np.empty_like(maps)

        def run(i):
            _k.non_maximum_suppression(maps[i], threshold, radius, kept[i])

        _map(run, maps.shape[0], self.n_jobs)
        return kept.reshape(codes.shape)

    def _unflatten_shape(self):
        """Shape ``(n_components, p1, p2)`` of the code maps of a training-shape
        signal."""
        X4_shape = self._to_4d(np.empty((1, *self.signal_shape_))).shape
        kh, kw = self._kshape
        return (self.n_components_, X4_shape[2] - kh + 1, X4_shape[3] - kw + 1)

    @property
    def _n_features_out(self):
        return int(np.prod(self._unflatten_shape()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.likelihood != "gaussian"
        return tags


# ---------------------------------------------------------------- helpers


def _windows_at_peaks(X4, k, kshape, rng):
    """Windows centred on the ``k`` largest non-overlapping peaks of ``|X|``."""
    n, C, h, w = X4.shape
    kh, kw = kshape
    energy = np.abs(X4).sum(axis=1)  # (n, h, w)
    flat = energy.ravel()
    order = np.argsort(flat)[::-1]
    taken = []
    out = np.zeros((k, C, kh, kw))
    for idx in order[: max(50 * k, 1000)]:
        i, r, c = np.unravel_index(idx, energy.shape)
        r0 = int(np.clip(r - kh // 2, 0, h - kh))
        c0 = int(np.clip(c - kw // 2, 0, w - kw))
        if any(i == j and abs(r0 - a) < kh and abs(c0 - b) < kw for j, a, b in taken):
            continue
        taken.append((i, r0, c0))
        out[len(taken) - 1] = X4[i, :, r0 : r0 + kh, c0 : c0 + kw]
        if len(taken) == k:
            return out
    rest = _random_windows(X4, k - len(taken), kshape, rng)
    out[len(taken) :] = rest
    return out


def _onset_averages(X4, mask, kshape, rng, max_onsets=5000):
    """Event-triggered averages: kernel ``k`` is the mean of the windows of
    ``X4`` (minus each channel's mean) that start at the allowed onsets of
    ``mask[:, k]`` (at most ``max_onsets`` of them, drawn at random)."""
    K = mask.shape[1]
    kh, kw = kshape
    means = X4.mean(axis=(0, 2, 3), dtype=np.float64)[:, None, None]
    onsets = [np.argwhere(mask[:, k]) for k in range(K)]  # rows: sample, i, j
    if K > 1 and all(np.array_equal(onsets[0], o) for o in onsets[1:]):
        groups = np.array_split(rng.permutation(len(onsets[0])), K)
        onsets = [onsets[0][np.sort(g)] for g in groups]
    out = np.zeros((K, X4.shape[1], kh, kw))
    for k, on in enumerate(onsets):
        if len(on) == 0:
            out[k] = _random_windows(X4, 1, kshape, rng)[0]
            continue
        if len(on) > max_onsets:
            on = on[np.sort(rng.choice(len(on), max_onsets, replace=False))]
        for i, r, c in on:
            out[k] += X4[i, :, r : r + kh, c : c + kw]
        out[k] = out[k] / len(on) - means
    return out


def _random_windows(X4, k, kshape, rng):
    n, C, h, w = X4.shape
    kh, kw = kshape
    out = np.empty((k, C, kh, kw))
    for j in range(k):
        i = rng.randint(n)
        r0, c0 = rng.randint(h - kh + 1), rng.randint(w - kw + 1)
        out[j] = X4[i, :, r0 : r0 + kh, c0 : c0 + kw]
    out += 1e-3 * rng.standard_normal(out.shape) * (np.abs(out).max() + 1e-12)
    return out


def _smoothness(H, mu):
    """``mu/2 sum ||diff h||^2`` along the spatial axes, and its gradient."""
    value = 0.0
    grad = np.zeros(H.shape)
    for axis in (2, 3):
        if H.shape[axis] < 2:
            continue
        d = np.diff(H.astype(np.float64), axis=axis)
        value += 0.5 * mu * float(np.sum(d * d))
        pad = [(0, 0)] * 4
        pad[axis] = (1, 1)
        dp = np.pad(d, pad)
        grad += mu * -np.diff(dp, axis=axis)
    return value, grad


def _centring_shifts(h, fraction=0.98):
    """Integer shifts along (rows, columns) that centre, in the window, the
    shortest interval holding ``fraction`` of the kernel's energy (no shift
    for a kernel that fills its window)."""
    e = np.square(h.astype(np.float64)).sum(axis=0)  # (kh, kw)
    total = e.sum()
    shifts = []
    for axis in (0, 1):
        prof = e.sum(axis=1 - axis)
        n = prof.size
        if total <= 0 or n == 1:
            shifts.append(0)
            continue
        cum = np.concatenate([[0.0], np.cumsum(prof)])
        best = (n, 0, n - 1)
        for lo in range(n):  # shortest [lo, hi] with enough energy
            hi = int(np.searchsorted(cum, cum[lo] + fraction * total)) - 1
            if hi < n and hi - lo < best[0]:
                best = (hi - lo, lo, hi)
        _, lo, hi = best
        shifts.append(int(np.fix((lo + hi - (n - 1)) / 2)))
    return tuple(shifts)


def _shift(h, shifts):
    """Move the kernel content by ``-shifts`` (zero fill)."""
    out = np.zeros_like(h)
    sr, sc = shifts
    kh, kw = h.shape[1:]
    src_r = slice(max(sr, 0), kh + min(sr, 0))
    dst_r = slice(max(-sr, 0), kh + min(-sr, 0))
    src_c = slice(max(sc, 0), kw + min(sc, 0))
    dst_c = slice(max(-sc, 0), kw + min(-sc, 0))
    out[:, dst_r, dst_c] = h[:, src_r, src_c]
    return out


ConvolutionalDL = ConvolutionalDictionaryLearning
"""Short alias of :class:`ConvolutionalDictionaryLearning` (the name of
skunroll <= 0.1); the same class."""
