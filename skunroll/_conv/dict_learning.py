"""The estimator ``ConvolutionalDictionaryLearning`` (CRsAE/DUNL).

Convolutional dictionary learning by an unrolled sparse auto-encoder: the
model ``x = f(nu + sum_k h_k * z_k)``, whose codes ``z`` the unrolled (F)ISTA
encoder of CRsAE infers (:mod:`.network`) and whose kernels ``h_k`` and
baseline ``nu`` the shared trainer learns (:mod:`.training`). This file holds
the public class: its parameters, their "auto" values and the network they
build, and short methods over :mod:`.shapes` (signal and kernel shapes),
:mod:`.init` (initial kernels), :mod:`.training` and :mod:`.events`
(block-wise event detection).
"""

import copy
import dataclasses
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._parallel import single_threaded_blas
from .._parts.encoders import CONV_ENCODERS
from .._parts.likelihoods import LIKELIHOODS, mean
from .._parts.priors import kernel_prior, warn_deprecated_prior
from .._training import CallbackSupportMixin, Trainer, atomic, with_callbacks
from .._training.optim import OPTIMIZERS
from .._validation import N_JOBS
from . import events as _events
from . import shapes as _shapes
from .network import ConvNetwork, encode, forward_backward, reconstruct
from .training import Model, segments


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
        Depth ``T`` of the unrolled encoder (not used by "cd"). "auto" is
        100 for the Poisson likelihood, whose step is set by the largest
        count (from zero, 30 steps left the amplitudes of simulated events at
        55 % of their converged values, 100 steps at 99 %), and 30 otherwise
        (30 binomial steps reached 94 %).
    encoder : {"fista", "ista", "cd"}, default="fista"
        Unrolled algorithm, or "cd": the Gaussian lasso solved by locally
        greedy coordinate descent (Moreau, Oudre & Vayatis, 2018) until no
        code would move by more than 1 % of the largest
        :math:`\lambda_k / \|h_k\|^2`. "cd" is no fixed-depth network
        (``n_unroll`` and ``method`` do not apply): it takes
        ``gradient="dec"`` (alternating minimisation, as alphacsc) and the
        Gaussian likelihood. Where events are sparse (spikes) its cost
        follows the number of events, not the signal's length times the
        depth.
    transform_encoder : {"fista", "ista", "cd"} or None, default=None
        Encoder of ``transform``, ``code_maps``, ``detect_events`` and
        ``score``; None takes ``encoder``. Kernels trained by the unrolled
        FISTA can be applied with "cd" (converged codes, often faster on
        long recordings), as scikit-learn's ``DictionaryLearning`` separates
        ``fit_algorithm`` from ``transform_algorithm``.
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
        ("ae-lasso") through the unrolled encoder (see Notes for the
        default).
    prior : {"l1"}, default="l1"
        Code prior: :math:`\ell_1` with one weight per kernel (``alpha``).

        .. deprecated:: 0.1
           ``prior="nonneg_l1"`` is deprecated; use ``prior="l1",
           positive_code=True``, which gives the same results.
    positive_code : bool, default=False
        Whether the codes are non-negative (every kernel's, unless
        ``code_sign`` says otherwise per kernel).
    likelihood : {"gaussian", "poisson", "binomial"}, default="gaussian"
        Observation model; the count likelihoods take non-negative integer
        data (spike counts in bins), with a learned baseline (see
        ``fit_intercept``); see Notes for when they recover kernels.
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
        or 0 (two-sided), per kernel; overrides ``positive_code``. None
        follows ``positive_code``.
    rank1 : bool, default=False
        Multichannel kernels as a spatial pattern times a waveform,
        :math:`h_k = u_k v_k^\top` (multivariate CSC of Dupré la Tour et al.,
        2018). The rank-1 factors are learned (the gradient is projected by
        the chain rule).
    positive_dict : bool, default=False
        Whether the kernels are non-negative (as ``positive_dict`` of
        :class:`UnrolledDictionaryLearning`).
    positive_kernels : bool
        .. deprecated:: 0.1
           Use ``positive_dict``; the same constraint.
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
        parallel and give exactly the whole-signal codes ("cd": extended by
        10 kernel widths, the whole-signal codes to the solver's accuracy).
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

    ``gradient="dec"`` is the default because, on the spike-sorting
    benchmark, "ae-ls" from data-drawn kernels did not recover the planted
    kernels (see the user guide). The count likelihoods recover planted
    kernels from simulated counts (:func:`~skunroll.datasets.make_spike_counts`)
    with known event onsets (``fit(X, code_mask=...)``, DUNL's setting), where
    the Gaussian likelihood does not; without onsets, the
    :math:`\ell_1`-penalised fit of counts has not recovered planted kernels
    in our trials: codes spread over many small entries that fit the Poisson
    noise (see the user guide).

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
        "encoder": [StrOptions(set(CONV_ENCODERS))],
        "transform_encoder": [None, StrOptions(set(CONV_ENCODERS))],
        "method": [StrOptions({"auto", "direct", "fft"})],
        "gradient": [StrOptions({"ae-ls", "ae-lasso", "dec"})],
        "prior": [StrOptions({"l1", "nonneg_l1"}, deprecated={"nonneg_l1"})],
        "positive_code": ["boolean"],
        "likelihood": [StrOptions(set(LIKELIHOODS))],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "fit_intercept": ["boolean", StrOptions({"auto"})],
        "code_sign": [None, Integral, "array-like"],
        "rank1": ["boolean"],
        "positive_dict": ["boolean"],
        "positive_kernels": [Hidden(StrOptions({"deprecated"})), "boolean"],
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
        transform_encoder=None,
        method="auto",
        gradient="dec",
        prior="l1",
        positive_code=False,
        likelihood="gaussian",
        n_trials=1,
        fit_intercept="auto",
        code_sign=None,
        rank1=False,
        positive_dict=False,
        positive_kernels="deprecated",
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
        self.transform_encoder = transform_encoder
        self.method = method
        self.gradient = gradient
        self.prior = prior
        self.positive_code = positive_code
        self.likelihood = likelihood
        self.n_trials = n_trials
        self.fit_intercept = fit_intercept
        self.code_sign = code_sign
        self.rank1 = rank1
        self.positive_dict = positive_dict
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

    # ------------------------------------------------------------ parameters

    def _network(self, k):
        self._check_cd(self.encoder, "encoder")
        if self.encoder == "cd" and self.gradient != "dec":
            raise ValueError(
                "encoder='cd' (coordinate descent) is not unrolled: it has no "
                f"back-propagated gradient; got gradient={self.gradient!r}, "
                "use gradient='dec'."
            )
        alphas = _shapes.per_kernel(self.alpha, "alpha", k)
        if np.any(alphas < 0) or not np.all(np.isfinite(alphas)):
            raise ValueError(
                f"alpha must be finite and non-negative; got {self.alpha!r}."
            )
        if self.code_sign is None:
            positive = kernel_prior(self.prior, self.positive_code) == "nonneg_l1"
            signs = np.full(k, 1 if positive else 0)
        else:
            signs = _shapes.per_kernel(self.code_sign, "code_sign", k)
            if not np.all(np.isin(signs, (-1, 0, 1))):
                raise ValueError(
                    f"code_sign entries must be +1, -1 or 0; got {self.code_sign!r}."
                )
        return ConvNetwork(
            self._n_unroll(), self.encoder, alphas, signs.astype(np.int64),
            self.likelihood, float(self.n_trials), self.method,
        )  # fmt: skip

    def _check_cd(self, encoder, name):
        if encoder == "cd" and self.likelihood != "gaussian":
            raise ValueError(
                f"{name}='cd' (coordinate descent) solves the Gaussian lasso; "
                f"got likelihood={self.likelihood!r}."
            )

    def _transform_net(self):
        """The fitted network with ``transform_encoder`` (if set) as encoder."""
        if (
            self.transform_encoder is None
            or self.transform_encoder == self._net.encoder
        ):
            return self._net
        self._check_cd(self.transform_encoder, "transform_encoder")
        return dataclasses.replace(self._net, encoder=self.transform_encoder)

    def _encoder_reach(self):
        """Positions along the last axis beyond a block that its codes depend
        on (see ``ConvNetwork.reach``), for the transform's encoder."""
        return self._transform_net().reach(_shapes.kernel_shape_2d(self.kernel_size)[1])

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

    # ------------------------------------------------------------ fitting

    @property
    def _positive_dict(self):
        """``positive_dict``, or the deprecated ``positive_kernels`` if set."""
        if self.positive_kernels != "deprecated":
            return bool(self.positive_kernels)
        return self.positive_dict

    def _warn_deprecated(self):
        warn_deprecated_prior(self.prior, stacklevel=3)
        if self.positive_kernels != "deprecated":
            warnings.warn(
                "positive_kernels is deprecated and will be removed in a future "
                "version; use positive_dict, the same constraint.",
                FutureWarning,
                stacklevel=3,
            )

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
        self._warn_deprecated()
        X = _shapes.check_signals(self, X, reset=True, same_shape=True)
        X4 = _shapes.to_4d(X, self.kernel_size)
        net = self._network(self.n_components)
        mask = _shapes.check_mask(code_mask, X4, self.n_components, self.kernel_size)
        model = Model(self)
        trainer = self._trainer(model)
        with single_threaded_blas():
            state = model.initial_state(X4, net, mask)
            segs, masks = segments(X4, mask, self.kernel_size, self.segment_size)
            state.align = self.align_kernels and mask is None
            if self.code_warm_start:
                state.codes = [None] * len(segs)
            trainer.fit(state, (segs, masks), X, y)
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
            self._warn_deprecated()
        X = _shapes.check_signals(self, X, reset=first, same_shape=not first)
        X4 = _shapes.to_4d(X, self.kernel_size)
        mask = _shapes.check_mask(code_mask, X4, self.n_components, self.kernel_size)
        model = Model(self)
        with single_threaded_blas():
            if first:
                net = self._network(self.n_components)
                state = model.initial_state(X4, net, mask)
            else:
                state = copy.deepcopy(self._state)
            X4 = X4.astype(state.H.dtype, copy=False)
            masks = None if mask is None else list(mask)
            self._trainer(model).partial_fit(state, (list(X4), masks))
        self._set_fitted(state)
        return self

    def _trainer(self, model=None):
        return Trainer.for_estimator(self, model, tol=self._tol(), what="kernels")

    def _set_fitted(self, state):
        self.__dict__.update(Model(self).fitted_attributes(state))

    # ------------------------------------------------------------ inference

    def _signals(self, X, same_shape, code_mask=None):
        """Validated signals as ``(n, C, h, w)`` and the code mask, if any."""
        X = _shapes.check_signals(self, X, reset=False, same_shape=same_shape)
        X4 = _shapes.to_4d(X, self.kernel_size)
        mask = _shapes.check_mask(code_mask, X4, self.n_components_, self.kernel_size)
        return X4, mask

    def _maps(self, X4, mask=None):
        """Code maps ``(n, K, p1, p2)`` of ``X4`` by the fitted encoder (from
        the public ``kernels_``, ``intercept_`` and ``step_size_``)."""
        H = _shapes.kernels_4d(self.kernels_, self.kernel_size, X4.dtype)
        return encode(X4, H, self._transform_net(), self.step_size_, self.n_jobs, mask,
                      self.chunk_size,
                      np.asarray(self.intercept_, dtype=np.float64))  # fmt: skip

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
        X4, mask = self._signals(X, same_shape=False, code_mask=code_mask)
        with single_threaded_blas():
            return _shapes.squeeze_maps(self._maps(X4, mask), self.kernel_size)

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
        X4, _ = self._signals(X, same_shape=True)
        with single_threaded_blas():
            codes = self._maps(X4)
        return codes.reshape(codes.shape[0], -1)

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
        codes = _shapes.unflatten(X, self._code_map_shape())
        eta = reconstruct(codes, _shapes.kernels_4d(self.kernels_, self.kernel_size))
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
        X4, _ = self._signals(X, same_shape=True)
        H = _shapes.kernels_4d(self.kernels_, self.kernel_size, X4.dtype)
        intercept = np.asarray(self.intercept_, dtype=np.float64)
        with single_threaded_blas():
            res = forward_backward(X4, H, self._transform_net(), self.step_size_,
                                   "forward",
                                   self.n_jobs, offset=intercept)  # fmt: skip
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
        kw = _shapes.kernel_shape_2d(self.kernel_size)[1]
        radius = _events.suppression_radius(min_distance, kw)
        X4, mask = self._signals(X, same_shape=False, code_mask=code_mask)
        ks = _shapes.kernel_shape(self.kernel_size)
        with single_threaded_blas():
            reach = self._transform_net().reach(ks[-1])
            return _events.detect_events(X4, self._maps, ks, reach,
                                         float(threshold), radius, mask,
                                         self.n_jobs)  # fmt: skip

    def _code_map_shape(self):
        """Shape ``(n_components, p1, p2)`` of the code maps of a training-shape
        signal."""
        return _shapes.code_map_shape(self.signal_shape_, self.n_components_,
                                      self.kernel_size)  # fmt: skip

    @property
    def _n_features_out(self):
        return int(np.prod(self._code_map_shape()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self.likelihood != "gaussian"
        return tags


ConvolutionalDL = ConvolutionalDictionaryLearning
"""Short alias of :class:`ConvolutionalDictionaryLearning` (the name of
skunroll <= 0.1); the same class."""
