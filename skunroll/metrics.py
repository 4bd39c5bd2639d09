"""Metrics for dictionary recovery and for the geometry of a dictionary.

Dictionaries hold their atoms as rows, with shape ``(n_components, n_features)``;
convolutional kernels have shape ``(n_components, n_times)``,
``(n_components, n_channels, n_times)`` or
``(n_components, n_channels, height, width)``.

* :func:`atom_recovery_errors` and :func:`recovery_rate` compare an estimated
  dictionary with the ground truth, up to permutation, sign and scale of the
  atoms (and, optionally, up to shifts of convolutional kernels).
* :func:`mutual_coherence` and :func:`restricted_isometry_constant` measure the
  properties under which sparse codes and dictionaries can be recovered.
* :func:`support_f1` compares the supports of sparse codes.
* :func:`clustering_accuracy` compares a clustering with class labels, up to a
  relabelling of the clusters.
* :func:`explained_variance`, :func:`mean_l0`, :func:`dead_fraction`,
  :func:`babel`, :func:`matched_cosine` and :func:`dictionary_stability` are
  the scores of sparse autoencoders: reconstruction, sparsity, unused atoms,
  cumulative coherence, and the agreement of two dictionaries.
"""

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from scipy import fft as sp_fft
from scipy.optimize import linear_sum_assignment
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params
from sklearn.utils.validation import check_array, check_is_fitted

__all__ = [
    "atom_recovery_errors",
    "babel",
    "clustering_accuracy",
    "dead_fraction",
    "dictionary_stability",
    "event_detection_f1",
    "explained_variance",
    "matched_cosine",
    "mean_l0",
    "mutual_coherence",
    "recovery_rate",
    "restricted_isometry_constant",
    "support_f1",
]

# Upper bound on the number of complex entries of one block of pairwise
# cross-spectra in the shift-invariant errors (about 64 MiB).
_XCORR_BLOCK = 2**22
# Upper bound on the number of floats of one block of Gram submatrices in the
# Monte-Carlo estimate of the restricted isometry constant.
_RIP_BLOCK = 2**21


def _check_array_nd(X, name, *, ndims=None):
    """Return ``X`` as a finite float64 array whose ndim is in ``ndims``.

    ``ndims=None`` accepts any array of at least one dimension. The array is not
    copied when it already is float64; callers must not write into it.
    """
    ndim = np.ndim(X)
    if ndims is None:
        ok, expected = ndim >= 1, "non-scalar"
    else:
        ok, expected = ndim in ndims, " or ".join(f"{d}-D" for d in ndims)
    if not ok:
        raise ValueError(
            f"{name} must be a {expected} array, got an array of shape {np.shape(X)}."
        )
    return check_array(
        X,
        dtype=np.float64,
        ensure_2d=False,
        allow_nd=True,
        ensure_min_samples=1,
        input_name=name,
    )


def _row_norms(X):
    """Euclidean norm of each row of a 2-D array.

    Squares the entries: call it on rows scaled by :func:`_unit_atoms`, not on
    raw data, where it overflows above about 1e154 and underflows below 1e-162.
    """
    return np.sqrt(np.einsum("ij,ij->i", X, X))


def _check_nonzero_atoms(norms, name):
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{name} has all-zero atoms at indices {zero[:10].tolist()}; every "
            "atom must have a non-zero norm."
        )


def _unit_atoms(D, name=None):
    """Atoms of ``D`` scaled to unit norm, in the shape of ``D`` (a copy).

    Every atom is first divided by its largest absolute entry, so that squaring
    it neither overflows nor underflows whatever its scale. With ``name``, an
    all-zero atom raises an error naming the array; without it, zero atoms
    stay zero.
    """
    flat = D.reshape(D.shape[0], -1)
    peak = np.abs(flat).max(axis=1, initial=0.0)
    if name is not None:
        _check_nonzero_atoms(peak, name)
    nonzero = (peak > 0)[:, None]
    flat = np.divide(flat, peak[:, None], out=np.zeros_like(flat), where=nonzero)
    norms = _row_norms(flat)  # in [1, sqrt(n_features)] for non-zero atoms
    flat = np.divide(flat, norms[:, None], out=flat, where=nonzero)
    return flat.reshape(D.shape)


def _normalized_atoms(D, name):
    """Flatten atoms to rows and scale them to unit norm (zero atoms: error)."""
    return _unit_atoms(D, name).reshape(D.shape[0], -1)


def _as_kernels(D):
    """View kernels as ``(n_atoms, n_channels, *spatial)`` with 1 or 2 axes."""
    if D.ndim == 2:
        return D[:, None, :]
    return D


def _max_abs_xcorr(H, E):
    """Max over lags of |full cross-correlation|, channels summed, all pairs.

    ``H`` and ``E`` have shape ``(n_atoms, n_channels, *spatial)`` with the same
    trailing shape; the result has shape ``(len(H), len(E))``.
    """
    spatial = H.shape[2:]
    axes = tuple(range(-len(spatial), 0))
    shape = [sp_fft.next_fast_len(2 * n - 1, real=True) for n in spatial]
    H_hat = sp_fft.rfftn(H, s=shape, axes=axes)
    E_hat = np.conj(sp_fft.rfftn(E, s=shape, axes=axes))
    n_freq = int(np.prod(H_hat.shape[1:]))
    block = max(1, _XCORR_BLOCK // max(1, n_freq * len(E)))
    out = np.empty((len(H), len(E)))
    subscripts = "ic...,jc...->ij..."
    for start in range(0, len(H), block):
        cross = np.einsum(subscripts, H_hat[start : start + block], E_hat)
        xcorr = sp_fft.irfftn(cross, s=shape, axes=axes)
        out[start : start + block] = np.abs(xcorr).reshape(*xcorr.shape[:2], -1).max(-1)
    return out


def _cosine_matrix(D_true, D_est, shift_invariant):
    """|cos| of the (best-lag) angle between every true and estimated atom.

    Estimated atoms of zero norm get 0 against everything. Atoms are scaled to
    unit norm first, so any finite scale works.
    """
    n_true, n_est = D_true.shape[0], D_est.shape[0]
    H = _unit_atoms(D_true, "D_true")
    E = _unit_atoms(D_est)
    if shift_invariant:
        cos = _max_abs_xcorr(_as_kernels(H), _as_kernels(E))
    else:
        cos = np.abs(H.reshape(n_true, -1) @ E.reshape(n_est, -1).T)
    return np.clip(cos, 0.0, 1.0)


@validate_params(
    {
        "D_true": ["array-like"],
        "D_est": ["array-like"],
        "shift_invariant": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def atom_recovery_errors(D_true, D_est, *, shift_invariant=False):
    r"""Error of each true atom against its matched estimated atom.

    For a true atom :math:`h` and an estimated atom :math:`\hat h` the error is
    the sine of the angle between them,

    .. math::

        e(h, \hat h) = \sqrt{1 - \frac{\langle h, \hat h \rangle^2}
        {\|h\|^2 \, \|\hat h\|^2}},

    which is invariant to the sign and the scale of either atom, is 0 for
    collinear atoms and 1 for orthogonal ones. True and estimated atoms are
    matched one-to-one by the assignment that minimises the sum of the errors
    (Hungarian algorithm, :func:`scipy.optimize.linear_sum_assignment`), so the
    result does not depend on the order of the atoms.

    With ``shift_invariant=True`` the atoms are convolutional kernels and the
    inner product is the best one over all relative shifts,

    .. math::

        \langle h, \hat h \rangle = \max_{\tau} \Big|\sum_{c} \sum_{t}
        h_c[t] \, \hat h_c[t + \tau]\Big|,

    the largest absolute value of the full (zero-padded) cross-correlation,
    channels summed. The lag :math:`\tau` runs over the last axis (kernels of
    shape ``(n_components, n_times)`` or ``(n_components, n_channels,
    n_times)``) or over the last two axes (images, shape ``(n_components,
    n_channels, height, width)``). All cross-correlations are computed at once
    with FFTs.

    Parameters
    ----------
    D_true : array-like of shape (n_true_atoms, n_features) or (n_true_atoms, ...)
        Ground-truth atoms, first axis indexing the atoms. Atoms may have any
        non-zero norm.
    D_est : array-like of shape (n_est_atoms, n_features) or (n_est_atoms, ...)
        Estimated atoms, each of the same shape as the true ones. Zero atoms
        are allowed and have error 1 against every true atom.
    shift_invariant : bool, default=False
        Whether to compare atoms up to a shift (convolutional kernels). Without
        it, atoms of any shape are compared as flattened vectors.

    Returns
    -------
    errors : ndarray of shape (n_true_atoms,)
        Error in ``[0, 1]`` of each true atom, in the order of ``D_true``. If
        ``D_est`` has fewer atoms than ``D_true``, the true atoms left unmatched
        get error 1.

    Raises
    ------
    ValueError
        If an array has NaN or infinite values or fewer than 2 or more than 4
        dimensions, if the atoms of ``D_true`` and ``D_est`` differ in shape,
        or if ``D_true`` has a zero atom.

    See Also
    --------
    recovery_rate : Fraction of true atoms recovered below an error threshold.

    Notes
    -----
    The error is computed from :math:`1 - \cos^2`, so values below about
    ``1e-8`` are at the level of floating-point rounding.

    Arrays of 2 to 4 dimensions are accepted in both modes; without
    ``shift_invariant`` every atom is flattened.

    References
    ----------
    .. [1] Aharon, Elad & Bruckstein, "K-SVD: An algorithm for designing
       overcomplete dictionaries for sparse representation", IEEE Trans. Signal
       Process. 54(11), 2006 (recovery of atoms up to sign and permutation).
    .. [2] Dupré la Tour, Moreau, Jas & Gramfort, "Multivariate convolutional
       sparse coding for electromagnetic brain signals", NeurIPS 2018
       (shift-invariant comparison of kernels).

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import atom_recovery_errors
    >>> D = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> D_est = np.array([[0.0, -2.0, 0.0], [1.0, 0.0, 1.0]])
    >>> atom_recovery_errors(D, D_est).round(4)
    array([0.7071, 0.    ])
    """
    D_true = _check_array_nd(D_true, "D_true", ndims=(2, 3, 4))
    D_est = _check_array_nd(D_est, "D_est", ndims=(2, 3, 4))
    if D_true.shape[1:] != D_est.shape[1:]:
        raise ValueError(
            f"D_true and D_est must hold atoms of the same shape, got D_true of "
            f"shape {D_true.shape} and D_est of shape {D_est.shape}."
        )
    cos = _cosine_matrix(D_true, D_est, shift_invariant)
    cost = np.sqrt(np.maximum(1.0 - cos**2, 0.0))
    errors = np.ones(D_true.shape[0])
    rows, cols = linear_sum_assignment(cost)
    errors[rows] = cost[rows, cols]
    return errors


@validate_params(
    {
        "D_true": ["array-like"],
        "D_est": ["array-like"],
        "threshold": [Interval(Real, 0, None, closed="neither")],
        "shift_invariant": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def recovery_rate(D_true, D_est, *, threshold=0.1, shift_invariant=False):
    """Fraction of the true atoms recovered with an error below a threshold.

    Parameters
    ----------
    D_true : array-like of shape (n_true_atoms, n_features) or (n_true_atoms, ...)
        Ground-truth atoms; see :func:`atom_recovery_errors`.
    D_est : array-like of shape (n_est_atoms, n_features) or (n_est_atoms, ...)
        Estimated atoms.
    threshold : float, default=0.1
        A true atom counts as recovered when its error (sine of the angle to
        its matched estimated atom) is strictly below ``threshold``. An error
        of 0.1 is an angle of about 5.7 degrees.
    shift_invariant : bool, default=False
        Whether to compare atoms up to a shift (convolutional kernels).

    Returns
    -------
    rate : float
        Fraction in ``[0, 1]`` of the atoms of ``D_true`` that are recovered.

    See Also
    --------
    atom_recovery_errors : The error of each true atom.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import recovery_rate
    >>> D = np.eye(4)
    >>> D_est = np.eye(4)[[1, 0, 3]] * -2.0
    >>> recovery_rate(D, D_est)
    0.75
    """
    errors = atom_recovery_errors(D_true, D_est, shift_invariant=shift_invariant)
    return float(np.mean(errors < threshold))


@validate_params({"D": ["array-like"]}, prefer_skip_nested_validation=True)
def mutual_coherence(D):
    r"""Mutual coherence of a dictionary: the largest absolute cosine between atoms.

    .. math::

        \mu(D) = \max_{i \neq j}
        \frac{|\langle d_i, d_j \rangle|}{\|d_i\| \, \|d_j\|}

    where :math:`d_i` are the rows of ``D``. It lies in ``[0, 1]``; it is at
    least the Welch bound :math:`\sqrt{(p - m) / (m (p - 1))}` for ``p`` atoms
    in dimension ``m < p``.

    Parameters
    ----------
    D : array-like of shape (n_components, n_features)
        Dictionary, atoms as rows. Atoms may have any non-zero norm.

    Returns
    -------
    coherence : float
        The mutual coherence; 0.0 for a dictionary with a single atom.

    Raises
    ------
    ValueError
        If ``D`` is not 2-D, has NaN or infinite values, or has a zero atom.

    References
    ----------
    .. [1] Donoho & Huo, "Uncertainty principles and ideal atomic
       decomposition", IEEE Trans. Inf. Theory 47(7), 2001.
    .. [2] Welch, "Lower bounds on the maximum cross correlation of signals",
       IEEE Trans. Inf. Theory 20(3), 1974.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import mutual_coherence
    >>> D = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    >>> round(mutual_coherence(D), 4)
    0.7071
    """
    D = _check_array_nd(D, "D", ndims=(2,))
    atoms = _normalized_atoms(D, "D")
    gram = np.abs(atoms @ atoms.T)
    np.fill_diagonal(gram, 0.0)
    return float(min(gram.max(), 1.0))


def _random_supports(rng, n_trials, n_components, size):
    """``n_trials`` uniformly random subsets of ``size`` atoms, as indices."""
    keys = rng.random((n_trials, n_components))
    return np.argpartition(keys, size - 1, axis=1)[:, :size]


def _support_deltas(atoms, supports):
    """max(lambda_max - 1, 1 - lambda_min) of the Gram matrix of each support."""
    sub = atoms[supports]
    gram = sub @ np.swapaxes(sub, 1, 2)
    eigvals = np.linalg.eigvalsh(gram)
    return np.maximum(eigvals[:, -1] - 1.0, 1.0 - eigvals[:, 0])


@validate_params(
    {
        "D": ["array-like"],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def restricted_isometry_constant(
    D, n_nonzero_coefs, *, n_trials=1000, random_state=None
):
    r"""Monte-Carlo lower estimate of the restricted isometry constant.

    The restricted isometry constant :math:`\delta_s` of the dictionary with
    unit-norm atoms :math:`\bar D` is the smallest :math:`\delta` such that

    .. math::

        (1 - \delta) \|z\|^2 \le \|z \bar D\|^2 \le (1 + \delta) \|z\|^2

    for every code :math:`z` with at most :math:`s` non-zeros. Equivalently it
    is the maximum over supports :math:`S` of size :math:`s` of
    :math:`\max(\lambda_{\max}(G_{SS}) - 1, 1 - \lambda_{\min}(G_{SS}))`, with
    :math:`G_{SS}` the Gram matrix of the atoms in :math:`S`. Computing it is
    NP-hard; this function takes the maximum over ``n_trials`` supports drawn
    uniformly at random.

    Parameters
    ----------
    D : array-like of shape (n_components, n_features)
        Dictionary, atoms as rows. Atoms are scaled to unit norm first.
    n_nonzero_coefs : int
        Sparsity level :math:`s`, at most ``n_components``.
    n_trials : int, default=1000
        Number of random supports.
    random_state : int, RandomState instance or None, default=None
        Seed of the random supports.

    Returns
    -------
    delta : float
        Largest deviation from isometry found. As it is a maximum over a sample
        of supports, it is a lower bound of the true :math:`\delta_s`, and it
        can be far below it when the bad supports are rare.

    Raises
    ------
    ValueError
        If ``D`` is not 2-D, has NaN or infinite values or a zero atom, or if
        ``n_nonzero_coefs`` exceeds the number of atoms.

    See Also
    --------
    mutual_coherence : gives the upper bound
        :math:`\delta_s \le (s - 1) \mu` (Gershgorin).

    References
    ----------
    .. [1] Candès & Tao, "Decoding by linear programming", IEEE Trans. Inf.
       Theory 51(12), 2005.
    .. [2] Tillmann & Pfetsch, "The computational complexity of the restricted
       isometry property, the nullspace property, and related concepts in
       compressed sensing", IEEE Trans. Inf. Theory 60(2), 2014.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import restricted_isometry_constant
    >>> D = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> round(restricted_isometry_constant(D, 2, n_trials=10, random_state=0), 4)
    0.6
    """
    D = _check_array_nd(D, "D", ndims=(2,))
    n_components = D.shape[0]
    if n_nonzero_coefs > n_components:
        raise ValueError(
            f"n_nonzero_coefs={n_nonzero_coefs} is larger than the number of "
            f"atoms n_components={n_components} of D (shape {D.shape})."
        )
    atoms = _normalized_atoms(D, "D")
    rng = check_random_state(random_state)
    size = int(n_nonzero_coefs)
    block = max(1, _RIP_BLOCK // (size * max(size, D.shape[1], n_components)))
    delta = 0.0
    for start in range(0, n_trials, block):
        n_block = min(block, n_trials - start)
        supports = _random_supports(rng, n_block, n_components, size)
        delta = max(delta, float(_support_deltas(atoms, supports).max()))
    return delta


def _support(codes, atol):
    return np.abs(codes) > atol


@validate_params(
    {
        "codes_true": ["array-like"],
        "codes_est": ["array-like"],
        "atol": [Interval(Real, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def support_f1(codes_true, codes_est, *, atol=0.0):
    r"""F1 score of the estimated support against the true one.

    The support of a code array is the set of its entries with absolute value
    above ``atol``. Pooling all samples and atoms, with :math:`TP` the entries
    in both supports, :math:`FP` those only in the estimated one and :math:`FN`
    those only in the true one,

    .. math::

        F_1 = \frac{2\,TP}{2\,TP + FP + FN}.

    When both supports are empty the estimate is perfect and the score is 1.

    Parameters
    ----------
    codes_true : array-like of shape (n_samples, n_components)
        True codes. Any shape is accepted (for instance convolutional
        activations), as long as both arrays have the same.
    codes_est : array-like of shape (n_samples, n_components)
        Estimated codes.
    atol : float, default=0.0
        Entries with absolute value at most ``atol`` are outside the support.

    Returns
    -------
    f1 : float
        Score in ``[0, 1]``.

    Raises
    ------
    ValueError
        If the shapes differ or an array has NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import support_f1
    >>> true = np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    >>> est = np.array([[0.5, 0.1, 0.0], [0.0, 0.0, 1.0]])
    >>> round(support_f1(true, est), 4)
    0.6667
    >>> support_f1(true, est, atol=0.2)
    0.8
    """
    codes_true = _check_array_nd(codes_true, "codes_true")
    codes_est = _check_array_nd(codes_est, "codes_est")
    if codes_true.shape != codes_est.shape:
        raise ValueError(
            f"codes_true and codes_est must have the same shape, got codes_true "
            f"of shape {codes_true.shape} and codes_est of shape "
            f"{codes_est.shape}."
        )
    true = _support(codes_true, atol)
    est = _support(codes_est, atol)
    tp = np.count_nonzero(true & est)
    errors = np.count_nonzero(true ^ est)
    if tp + errors == 0:
        return 1.0
    return float(2 * tp / (2 * tp + errors))


def _kernel_lag(h, e):
    """Shift ``l`` of kernel ``e`` against ``h`` (``e[t + l] ~ h[t]``), channels
    summed, and the sign of the best match."""
    corr = sum(
        np.correlate(e_c, h_c, mode="full") for h_c, e_c in zip(h, e, strict=True)
    )
    best = int(np.argmax(np.abs(corr)))
    return best - (h.shape[-1] - 1)


def _greedy_matches(true_pos, est_pos, tolerance):
    """Number of one-to-one matches of sorted positions within ``tolerance``."""
    i = j = hits = 0
    while i < len(true_pos) and j < len(est_pos):
        d = est_pos[j] - true_pos[i]
        if abs(d) <= tolerance:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return hits


@validate_params(
    {
        "events_true": [np.ndarray],
        "events_est": [np.ndarray],
        "kernels_true": ["array-like"],
        "kernels_est": ["array-like"],
        "tolerance": [Interval(Integral, 0, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def event_detection_f1(
    events_true, events_est, kernels_true, kernels_est, *, tolerance=5
):
    """F1 score of detected events (spike sorting), kernels matched up to a shift.

    The learned kernels are matched one-to-one to the true ones (Hungarian
    matching on the shift-invariant errors of :func:`atom_recovery_errors`);
    each detected onset is moved by its kernel's lag against the matched true
    kernel, so that a kernel learned shifted in its window does not count as
    a timing error. Within every signal and true kernel, detected and true
    onsets are then paired one-to-one, in time order, when they are at most
    ``tolerance`` positions apart. ``F1 = 2 matches / (n_true + n_detected)``.

    Parameters
    ----------
    events_true, events_est : structured ndarray
        Events with fields ``sample``, ``kernel`` and ``position`` (1-D
        signals), as returned by :func:`skunroll.datasets.make_spike_recording`
        and :meth:`skunroll.ConvolutionalDL.detect_events`.
    kernels_true, kernels_est : array-like of shape (n_kernels, n_channels, n_times)
        The true and the learned kernels (``(n_kernels, n_times)`` for one
        channel).
    tolerance : int, default=5
        Largest distance, in positions, between paired onsets (5 samples is
        0.5 ms at 10 kHz).

    Returns
    -------
    f1 : float
        Between 0 and 1; 1 when both event lists are empty.

    Raises
    ------
    ValueError
        If the kernels are not 1-D kernels with the same number of channels,
        if an event array lacks a field, or if ``kernels_true`` has an all-zero
        kernel. An all-zero learned kernel is allowed and matches nothing.
    """
    H = _as_kernels(np.asarray(kernels_true, dtype=np.float64))
    E = _as_kernels(np.asarray(kernels_est, dtype=np.float64))
    if H.ndim != 3 or E.ndim != 3 or H.shape[1] != E.shape[1]:
        raise ValueError(
            "kernels_true and kernels_est must be 1-D kernels with the same number "
            f"of channels; got shapes {H.shape} and {E.shape}."
        )
    for name, ev in (("events_true", events_true), ("events_est", events_est)):
        if ev.dtype.names is None or not {"sample", "kernel", "position"} <= set(
            ev.dtype.names
        ):
            raise ValueError(
                f"{name} must be a structured array with fields sample, kernel and "
                f"position; got dtype {ev.dtype}."
            )
    n_total = len(events_true) + len(events_est)
    if n_total == 0:
        return 1.0
    # Unit kernels (scaled by their max-abs first: no overflow whatever their
    # scale); lags are scale-invariant, so they are computed on these too.
    H = _unit_atoms(H, "kernels_true")
    E = _unit_atoms(E)
    cost = 1.0 - _max_abs_xcorr(H, E)
    rows, cols = linear_sum_assignment(cost)
    hits = 0
    for t, k in zip(rows, cols, strict=True):
        lag = _kernel_lag(H[t], E[k])
        true_k = events_true[events_true["kernel"] == t]
        est_k = events_est[events_est["kernel"] == k]
        for s in np.union1d(true_k["sample"], est_k["sample"]):
            true_pos = np.sort(true_k["position"][true_k["sample"] == s])
            est_pos = np.sort(est_k["position"][est_k["sample"] == s] + lag)
            hits += _greedy_matches(true_pos, est_pos, tolerance)
    return 2.0 * hits / n_total


def _check_labels(labels, name):
    """``labels`` as a non-empty 1-D array, or a ValueError naming it."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels, got an array of shape "
            f"{labels.shape}."
        )
    if labels.size == 0:
        raise ValueError(f"{name} is empty; it must hold at least one label.")
    return labels


@validate_params(
    {
        "y_true": ["array-like"],
        "y_pred": ["array-like"],
        "return_order": ["boolean"],
    },
    prefer_skip_nested_validation=True,
)
def clustering_accuracy(y_true, y_pred, *, return_order=False):
    r"""Accuracy of a clustering under the best matching of clusters to classes.

    Cluster labels are arbitrary, so the clustering is scored under the
    one-to-one matching of clusters to classes that maximises the number of
    samples whose cluster is matched to their class,

    .. math::

        \mathrm{acc} = \max_{\sigma} \frac{1}{n} \sum_{i=1}^{n}
        \mathbb{1}[\sigma(\hat y_i) = y_i],

    the maximum running over the one-to-one maps :math:`\sigma` from clusters
    to classes. It is found by the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`) on the contingency matrix
    of classes against clusters. The numbers of classes and clusters may
    differ: then only ``min(n_classes, n_clusters)`` pairs are matched and the
    samples of the unmatched classes or clusters count as errors.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Class labels (ground truth), of any type :func:`numpy.unique` sorts.
    y_pred : array-like of shape (n_samples,)
        Cluster labels, for instance the ``labels_`` of a fitted clusterer.
    return_order : bool, default=False
        Whether to also return the cluster matched to each class.

    Returns
    -------
    accuracy : float
        Fraction in ``(0, 1]`` of the samples whose cluster is matched to
        their class; 1 when the clustering equals the classes up to a
        relabelling.
    order : ndarray of shape (n_classes,)
        Only with ``return_order=True``. ``order[i]`` is the cluster matched to
        the class ``np.unique(y_true)[i]``, as an index into the sorted union
        of the values of ``y_true`` and ``y_pred``, which is the column order
        of :func:`sklearn.metrics.confusion_matrix`: ``confusion_matrix(y_true,
        y_pred)[:, order]`` has the matched pairs on its diagonal. For labels
        ``0, ..., k - 1`` the index is the cluster label itself. Every class
        gets an index; with fewer clusters than classes, some are matched to a
        value that labels no cluster (an empty column).

    Raises
    ------
    ValueError
        If ``y_true`` or ``y_pred`` is not 1-D or is empty, if they differ in
        length, or, with ``return_order``, if one holds numbers and the other
        does not.

    See Also
    --------
    sklearn.metrics.adjusted_rand_score : A chance-adjusted pair-counting score.
    sklearn.metrics.normalized_mutual_info_score : An information-based score.

    References
    ----------
    .. [1] Kuhn, "The Hungarian method for the assignment problem", Naval
       Research Logistics Quarterly 2(1-2), 1955.
    .. [2] Crouse, "On implementing 2D rectangular assignment algorithms",
       IEEE Trans. Aerosp. Electron. Syst. 52(4), 2016 (the algorithm of
       :func:`scipy.optimize.linear_sum_assignment`).

    Examples
    --------
    >>> from skunroll.metrics import clustering_accuracy
    >>> y_true = [0, 0, 1, 1, 2, 2]
    >>> clustering_accuracy(y_true, [2, 2, 0, 0, 1, 1])
    1.0
    >>> round(clustering_accuracy(y_true, [1, 1, 1, 0, 2, 2]), 4)
    0.8333
    >>> accuracy, order = clustering_accuracy(
    ...     y_true, [2, 2, 0, 0, 1, 1], return_order=True
    ... )
    >>> order
    array([2, 0, 1])
    >>> clustering_accuracy(["a", "a", "b", "b"], [0, 0, 0, 0])
    0.5
    """
    y_true = _check_labels(y_true, "y_true")
    y_pred = _check_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} "
            f"and {len(y_pred)} labels."
        )
    classes, class_idx = np.unique(y_true, return_inverse=True)
    clusters, cluster_idx = np.unique(y_pred, return_inverse=True)
    n_classes, n_clusters = len(classes), len(clusters)
    counts = np.bincount(
        class_idx.ravel() * n_clusters + cluster_idx.ravel(),
        minlength=n_classes * n_clusters,
    ).reshape(n_classes, n_clusters)
    if return_order:
        # Columns indexed by the union of the labels, as in confusion_matrix.
        numeric = [a.dtype.kind in "biuf" for a in (classes, clusters)]
        if numeric[0] != numeric[1]:
            raise ValueError(
                "return_order=True needs y_true and y_pred labels of comparable "
                f"types, got dtypes {classes.dtype} and {clusters.dtype}."
            )
        union = np.unique(np.concatenate([classes, clusters]))
        wide = np.zeros((n_classes, len(union)), dtype=counts.dtype)
        wide[:, np.searchsorted(union, clusters)] = counts
        counts = wide
    rows, cols = linear_sum_assignment(counts, maximize=True)
    accuracy = float(counts[rows, cols].sum() / len(y_true))
    if return_order:
        return accuracy, cols[np.argsort(rows)]
    return accuracy


# ------------------------------------------------- sparse autoencoders (SAEs)


def _check_codes(codes):
    """Codes as a finite 2-D float array or CSR matrix (not copied if CSR)."""
    if sp.issparse(codes):
        codes = sp.csr_matrix(codes)
        if codes.ndim != 2:  # pragma: no cover - scipy sparse is 2-D
            raise ValueError("codes must be 2-D.")
        if not np.all(np.isfinite(codes.data)):
            raise ValueError("codes has NaN or infinite values.")
        if codes.shape[0] == 0 or codes.shape[1] == 0:
            raise ValueError(f"codes is empty (shape {codes.shape}).")
        return codes
    return check_array(codes, dtype=[np.float64, np.float32], input_name="codes")


def _nonzeros(codes):
    """Boolean support of dense codes, or CSR codes without stored zeros."""
    if sp.issparse(codes):
        codes = codes.copy()
        codes.data = (codes.data != 0).astype(np.int8)
        codes.eliminate_zeros()
        return codes
    return codes != 0


@validate_params(
    {"X": ["array-like"], "X_hat": ["array-like"]},
    prefer_skip_nested_validation=True,
)
def explained_variance(X, X_hat):
    r"""Fraction of the variance of ``X`` explained by a reconstruction.

    .. math::

        R^2 = 1 - \frac{\|X - \hat X\|_F^2}{\|X - \bar X\|_F^2},

    with :math:`\bar X` the mean of every feature (column) over the samples:
    the variance of all features pooled, the ``multioutput="variance_weighted"``
    :func:`sklearn.metrics.r2_score`. 1 is a perfect reconstruction, 0 that of
    the per-feature mean; it is negative for a worse one.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The data.
    X_hat : array-like of shape (n_samples, n_features)
        Its reconstruction, for instance ``est.inverse_transform(codes)``.

    Returns
    -------
    r2 : float
        The explained variance, at most 1.

    Raises
    ------
    ValueError
        If the shapes differ, an array has NaN or infinite values, or every
        feature of ``X`` is constant (fewer than two distinct samples), where
        :math:`R^2` is undefined.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import explained_variance
    >>> X = np.array([[0.0, 1.0], [2.0, 3.0]])
    >>> explained_variance(X, X)
    1.0
    >>> explained_variance(X, np.array([[1.0, 2.0], [1.0, 2.0]]))
    0.0
    """
    X = check_array(X, dtype=np.float64, input_name="X")
    X_hat = check_array(X_hat, dtype=np.float64, input_name="X_hat")
    if X.shape != X_hat.shape:
        raise ValueError(
            f"X and X_hat must have the same shape, got X of shape {X.shape} and "
            f"X_hat of shape {X_hat.shape}."
        )
    # scaled by the largest entry, so that squares neither overflow nor underflow
    scale = max(float(np.abs(X).max()), float(np.abs(X_hat).max()))
    total = np.sum(np.square((X - X.mean(axis=0)) / scale)) if scale > 0 else 0.0
    if not total > 0:
        raise ValueError(
            f"every feature of X (shape {X.shape}) is constant over the samples; "
            "the explained variance is undefined."
        )
    return float(1.0 - np.sum(np.square((X - X_hat) / scale)) / total)


@validate_params({"codes": ["array-like", "sparse matrix"]},
                 prefer_skip_nested_validation=True)  # fmt: skip
def mean_l0(codes):
    """Mean number of non-zero codes per sample.

    Parameters
    ----------
    codes : {array-like, sparse matrix} of shape (n_samples, n_components)
        Codes, dense or sparse (stored zeros of a sparse matrix do not count).

    Returns
    -------
    l0 : float
        The mean over the samples of the number of non-zero entries.

    Raises
    ------
    ValueError
        If ``codes`` is not 2-D, is empty or has NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import mean_l0
    >>> mean_l0(np.array([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]))
    1.5
    """
    codes = _nonzeros(_check_codes(codes))
    n_nonzero = codes.sum() if sp.issparse(codes) else np.count_nonzero(codes)
    return float(n_nonzero / codes.shape[0])


@validate_params({"codes": ["array-like", "sparse matrix"]},
                 prefer_skip_nested_validation=True)  # fmt: skip
def dead_fraction(codes):
    """Fraction of the atoms that no sample uses.

    Parameters
    ----------
    codes : {array-like, sparse matrix} of shape (n_samples, n_components)
        Codes of some samples (for instance an epoch of training data), dense
        or sparse (stored zeros do not count as use).

    Returns
    -------
    fraction : float
        The fraction in ``[0, 1]`` of the columns of ``codes`` that are zero
        for every sample.

    Raises
    ------
    ValueError
        If ``codes`` is not 2-D, is empty or has NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import dead_fraction
    >>> dead_fraction(np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]))
    0.5
    """
    codes = _nonzeros(_check_codes(codes))
    used = np.asarray(codes.sum(axis=0)).ravel() > 0
    return float(1.0 - used.mean())


@validate_params(
    {"D": ["array-like"], "s": [Interval(Integral, 1, None, closed="left")]},
    prefer_skip_nested_validation=True,
)
def babel(D, s):
    r"""Cumulative coherence (Babel function) of a dictionary.

    .. math::

        \mu_1(s) = \max_{i} \max_{|S| = s,\ i \notin S}
        \sum_{j \in S} \frac{|\langle d_i, d_j \rangle|}{\|d_i\| \, \|d_j\|},

    the largest total coherence of one atom with ``s`` others [1]_: the sum of
    the ``s`` largest off-diagonal entries of each row of the absolute Gram
    matrix of the unit atoms, maximised over the rows. :math:`\mu_1(1)` is the
    mutual coherence; orthogonal matching pursuit recovers every ``k``-sparse
    code when :math:`\mu_1(k - 1) + \mu_1(k) < 1`.

    Parameters
    ----------
    D : array-like of shape (n_components, n_features)
        Dictionary, atoms as rows, of any non-zero norms.
    s : int
        Number of other atoms, at most ``n_components - 1``.

    Returns
    -------
    mu : float
        :math:`\mu_1(s)`, in ``[0, s]``.

    Raises
    ------
    ValueError
        If ``D`` is not 2-D, has NaN or infinite values or a zero atom, or if
        ``s`` is not below the number of atoms.

    See Also
    --------
    mutual_coherence : :math:`\mu_1(1)`.

    References
    ----------
    .. [1] Tropp, "Greed is good: algorithmic results for sparse
       approximation", IEEE Trans. Inf. Theory 50(10), 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import babel
    >>> D = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> round(babel(D, 1), 4), round(babel(D, 2), 4)
    (0.7071, 1.4142)
    """
    D = _check_array_nd(D, "D", ndims=(2,))
    if s >= D.shape[0]:
        raise ValueError(
            f"s={s} must be smaller than the number of atoms n_components="
            f"{D.shape[0]} of D (shape {D.shape}): mu_1(s) sums the coherence of "
            "an atom with s others."
        )
    atoms = _normalized_atoms(D, "D")
    gram = np.minimum(np.abs(atoms @ atoms.T), 1.0)
    np.fill_diagonal(gram, -1.0)  # never among the s largest
    largest = -np.partition(-gram, s - 1, axis=1)[:, :s]
    return float(largest.sum(axis=1).max())


def _matched_cosines(D_ref, D, names=("D_ref", "D")):
    """|cos| of every atom of ``D_ref`` with the atom of ``D`` matched to it by
    the assignment of largest total |cos| (0 for atoms left unmatched)."""
    D_ref = _check_array_nd(D_ref, names[0], ndims=(2,))
    D = _check_array_nd(D, names[1], ndims=(2,))
    if D_ref.shape[1] != D.shape[1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of features, "
            f"got shapes {D_ref.shape} and {D.shape}."
        )
    _check_nonzero_atoms(np.abs(D_ref).max(axis=1), names[0])
    cos = _cosine_matrix(D_ref, D, shift_invariant=False)
    rows, cols = linear_sum_assignment(cos, maximize=True)
    matched = np.zeros(D_ref.shape[0])
    matched[rows] = cos[rows, cols]
    return matched


@validate_params(
    {"D_ref": ["array-like"], "D": ["array-like"], "per_atom": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def matched_cosine(D_ref, D, *, per_atom=False):
    r"""Mean absolute cosine of matched atoms of two dictionaries.

    The atoms of ``D`` are matched one-to-one to those of ``D_ref`` by the
    assignment that maximises the sum of the absolute cosines (Hungarian
    algorithm, :func:`scipy.optimize.linear_sum_assignment`), so the order of
    the atoms does not matter; the score is the mean of the matched absolute
    cosines over the atoms of ``D_ref``, an atom of ``D_ref`` left unmatched
    (when ``D`` has fewer atoms) counting 0.

    Signs are ignored (absolute cosine): an atom and its negative are the same
    atom up to the sign of its code, the convention of
    :func:`atom_recovery_errors`. With non-negative codes the sign matters;
    compare ``D_ref @ D.T`` then. Scales are ignored too.

    Parameters
    ----------
    D_ref : array-like of shape (n_ref_atoms, n_features)
        Reference atoms as rows (the ground truth, or another fit), non-zero.
    D : array-like of shape (n_atoms, n_features)
        Atoms to score; zero atoms are allowed and match nothing.
    per_atom : bool, default=False
        Return the matched cosine of every atom of ``D_ref`` instead of the
        mean.

    Returns
    -------
    cosine : float or ndarray of shape (n_ref_atoms,)
        The mean matched absolute cosine in ``[0, 1]`` (1: every reference
        atom is in ``D`` up to sign and scale), or the cosine of each
        reference atom with ``per_atom=True``.

    Raises
    ------
    ValueError
        If an array is not 2-D or has NaN or infinite values, if the numbers
        of features differ or if ``D_ref`` has a zero atom.

    See Also
    --------
    atom_recovery_errors : Matched sines (matching that minimises their sum).
    dictionary_stability : The matched cosine of two fitted estimators.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.metrics import matched_cosine
    >>> D_ref = np.eye(3)
    >>> matched_cosine(D_ref, -2.0 * D_ref[[2, 0, 1]])
    1.0
    >>> matched_cosine(D_ref, D_ref[:2], per_atom=True)
    array([1., 1., 0.])
    """
    matched = _matched_cosines(D_ref, D)
    return matched if per_atom else float(matched.mean())


def _components(est):
    """The atoms of a fitted estimator, or ``est`` itself if not an estimator."""
    if not hasattr(est, "fit"):
        return est
    check_is_fitted(est, "components_")
    return est.components_


@validate_params(
    {"est_a": "no_validation", "est_b": "no_validation"},
    prefer_skip_nested_validation=True,
)
def dictionary_stability(est_a, est_b):
    """Agreement of the dictionaries of two fits: matched absolute cosine.

    The stability of dictionary learning across seeds or subsets of the data
    [1]_: the atoms of the two dictionaries are matched one-to-one by the
    Hungarian algorithm on their absolute cosines, and the score is the sum
    of the matched cosines divided by the larger number of atoms. It is
    symmetric, 1 for dictionaries equal up to the order, sign and scale of the
    atoms, near 0 for unrelated ones of many atoms.

    Parameters
    ----------
    est_a, est_b : fitted estimator or array-like of shape (n_atoms, n_features)
        Estimators with ``components_`` (atoms as rows), or the dictionaries
        themselves.

    Returns
    -------
    stability : float
        In ``[0, 1]``.

    Raises
    ------
    NotFittedError
        If an estimator is not fitted.
    ValueError
        If a dictionary is not 2-D, has NaN or infinite values or a zero atom,
        or if the numbers of features differ.

    See Also
    --------
    matched_cosine : The same score against a reference dictionary.

    References
    ----------
    .. [1] Fel et al., "Archetypal SAE: adaptive and stable dictionary
       learning for concept extraction in large vision models", ICML 2025.

    Examples
    --------
    >>> from skunroll import UnrolledDictionaryLearning
    >>> from skunroll.datasets import make_archetypal_data
    >>> from skunroll.metrics import dictionary_stability
    >>> X, _, _ = make_archetypal_data(300, random_state=0)
    >>> a = UnrolledDictionaryLearning(8, max_iter=2, tol=0, random_state=0).fit(X)
    >>> b = UnrolledDictionaryLearning(8, max_iter=2, tol=0, random_state=1).fit(X)
    >>> 0.0 <= dictionary_stability(a, b) <= 1.0
    True
    """
    D_a, D_b = _components(est_a), _components(est_b)
    names = ("est_a", "est_b")
    if np.ndim(D_a) == 2 and np.ndim(D_b) == 2 and len(D_a) < len(D_b):
        D_a, D_b, names = D_b, D_a, names[::-1]  # the larger is the reference
    return float(_matched_cosines(D_a, D_b, names).mean())
