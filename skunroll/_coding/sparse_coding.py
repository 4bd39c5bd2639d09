"""Sparse coding against a fixed dictionary: ``sparse_encode`` and
``UnrolledSparseCoder``.

Three layers, as in scikit-learn's ``_dict_learning.py``: the public, validated
:func:`sparse_encode`; the private :func:`_sparse_encode` that precomputes the
Gram matrix and splits samples into chunks; the numba kernels in
``skunroll._kernels`` that run on one chunk without the GIL.
"""

import threading
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions, validate_params
from sklearn.utils.validation import check_array, validate_data

from .._dense.network import Network, forward_backward
from .._kernels._fista import fista_gram
from .._kernels._lasso import lasso_gram
from .._kernels._omp import omp_gram
from .._parallel import N_JOBS, _thread_pool, n_threads, single_threaded_blas
from .._parts.encoders import encoder_step
from .._parts.priors import resolve_groups
from .._validation import FLOAT_DTYPES, check_dictionary, check_n_nonzero_coefs
from ..utils import _lipschitz_from_gram

ALGORITHMS = ("lasso", "fista", "ista", "unrolled", "omp")
DEFAULT_TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}
"""Default relative duality gap. In float32 the gap cannot be certified much
below 1e-5 (the objective itself is accurate to about 1e-7)."""
CHUNK_SIZE = 1024
"""Samples per kernel call. Fixed, so the codes do not depend on ``n_jobs``."""

_ENCODE_PARAMS = {
    "algorithm": [StrOptions(set(ALGORITHMS))],
    "alpha": [Interval(Real, 0, None, closed="left")],
    "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
    "n_unroll": [Interval(Integral, 1, None, closed="left")],
    "positive": ["boolean"],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left"), None],
    "n_jobs": N_JOBS,
}


@validate_params(
    {"X": ["array-like"], "dictionary": ["array-like"], "init": ["array-like", None]}
    | _ENCODE_PARAMS,
    prefer_skip_nested_validation=True,
)
def sparse_encode(
    X,
    dictionary,
    *,
    algorithm="lasso",
    alpha=1.0,
    n_nonzero_coefs=None,
    n_unroll=50,
    positive=False,
    max_iter=1000,
    tol=None,
    init=None,
    n_jobs=None,
):
    """Sparse coding: find codes ``Z`` such that ``X ~ Z @ dictionary``.

    For the l1 algorithms each sample ``x`` is coded by the lasso

        ``min_z 0.5 * ||x - z D||_2^2 + alpha * ||z||_1``  (``z >= 0`` if positive),

    the objective of scikit-learn's dictionary learning, with the atoms as rows
    of ``D``. ``"omp"`` solves the l0-constrained least squares problem greedily.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Data. Integers are cast to float64; float32 stays float32.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows. They need not have unit norm, but none may be all zero.
    algorithm : {"lasso", "fista", "ista", "unrolled", "omp"}, default="lasso"
        - ``"lasso"``: exact solver on the Gram matrix: the homotopy (LARS
          with the lasso modification) from a cold start, then working-set
          coordinate descent with an active-set polish wherever the duality
          gap is still above ``tol`` (or from ``init``); every code is
          certified by its duality gap. Fast when codes are sparse.
        - ``"fista"`` / ``"ista"``: proximal gradient with step ``1 / L``,
          ``L = ||D||_2^2`` by power iteration, run until the duality gap is
          below ``tol`` or ``max_iter`` iterations.
        - ``"unrolled"``: exactly ``n_unroll`` FISTA iterations from ``init``
          (zero by default): the forward pass of the unrolled networks, the
          same computation as ``UnrolledSparseCoder`` and the ``transform``
          of :class:`UnrolledDictionaryLearning` (their momentum starts one
          step earlier than ``"fista"``'s, see the user guide).
        - ``"omp"``: orthogonal matching pursuit on the Gram matrix with
          Cholesky updates.
    alpha : float, default=1.0
        Regularisation of the l1 algorithms. Ignored by ``"omp"``. With
        ``alpha=0``, ``"lasso"`` returns the minimum-norm least-squares codes
        (non-negative least squares if ``positive``; ``init`` is then unused).
        An ``alpha`` tiny relative to ``max |X D^T|`` cannot be certified by
        the duality gap: the solvers stop at their budget with a
        ConvergenceWarning. Inputs of any finite scale are rescaled internally
        by powers of two (exactly), so huge or tiny ``X`` and ``dictionary``
        neither overflow nor underflow.
    n_nonzero_coefs : int, default=None
        Number of atoms selected by ``"omp"``; ``None`` means
        ``max(n_features // 10, 1)`` (scikit-learn's default), or as many as
        needed to reach ``tol`` when ``tol`` is given. Must be at most
        ``n_components``.
    n_unroll : int, default=50
        Depth of the ``"unrolled"`` encoder (number of FISTA iterations).
    positive : bool, default=False
        Constrain the codes to be non-negative (l1 algorithms only); the
        estimators call it ``positive_code``.
    max_iter : int, default=1000
        Iteration cap of ``"lasso"`` (outer working-set iterations), ``"fista"``
        and ``"ista"``. A ConvergenceWarning is raised when it ends first.
    tol : float, default=None
        For the l1 algorithms, the target relative duality gap
        ``(P(z) - D(theta)) / P(z)`` of every sample (default 1e-6 in float64);
        it bounds the relative suboptimality of the objective. In float32 the default is
        1e-4, since the gap cannot be certified much below 1e-5 in single
        precision (the codes themselves are as accurate as float32 allows).
        For ``"omp"``, the target
        squared residual norm ``||x - z D||^2`` (as in SPAMS and scikit-learn);
        OMP stops at whichever of ``tol`` and ``n_nonzero_coefs`` comes first.
    init : array-like of shape (n_samples, n_components), default=None
        Warm start for the l1 algorithms; ignored by ``"omp"``. Not modified.
    n_jobs : int, default=None
        Number of threads over chunks of 1024 samples (``None`` means 1, -1 all
        cores). The kernels release the GIL, and BLAS inside them runs on one
        thread, so the codes are identical for every ``n_jobs``. The default
        is scikit-learn's (one thread unless a joblib ``parallel_config``
        says otherwise), so that estimators and searches that call this in
        parallel do not oversubscribe the machine; SPAMS uses every core by
        default, and ``n_jobs=-1`` is the like-for-like comparison.

    Returns
    -------
    codes : ndarray of shape (n_samples, n_components)
        Sparse codes, in the dtype of ``X`` (float64 or float32).

    See Also
    --------
    UnrolledSparseCoder : The same as a scikit-learn transformer.
    sklearn.decomposition.sparse_encode : scikit-learn's counterpart.

    References
    ----------
    .. [1] Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm
       for linear inverse problems", SIAM J. Imaging Sci. 2(1), 2009.
    .. [2] Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms",
       NeurIPS 2006.
    .. [3] Rubinstein, Zibulevsky & Elad, "Efficient implementation of the
       K-SVD algorithm using batch orthogonal matching pursuit", 2008.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll import sparse_encode
    >>> D = np.eye(3)
    >>> sparse_encode(np.array([[3.0, 0.5, -2.0]]), D, alpha=1.0)
    array([[ 2.,  0., -1.]])
    """
    X = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
    D = check_dictionary(dictionary, dtype=X.dtype, n_features=X.shape[1])
    if init is not None:
        init = check_array(init, dtype=X.dtype, input_name="init")
        if init.shape != (X.shape[0], D.shape[0]):
            raise ValueError(
                f"init has shape {init.shape}; expected (n_samples, n_components) "
                f"= {(X.shape[0], D.shape[0])} from X {X.shape} and dictionary "
                f"{D.shape}."
            )
    return _sparse_encode(
        X,
        D,
        algorithm=algorithm,
        alpha=alpha,
        n_nonzero_coefs=n_nonzero_coefs,
        n_unroll=n_unroll,
        positive=positive,
        max_iter=max_iter,
        tol=tol,
        init=init,
        n_jobs=n_jobs,
    )


def _sparse_encode(
    X,
    dictionary,
    *,
    algorithm="lasso",
    alpha=1.0,
    n_nonzero_coefs=None,
    n_unroll=50,
    positive=False,
    max_iter=1000,
    tol=None,
    init=None,
    n_jobs=None,
    gram=None,
):
    """Dispatch to the kernels over chunks of samples (inputs already valid).

    The problem is first rescaled by powers of two so that ``X`` and the
    dictionary are of order one (exact in floating point): with ``X = sx X'``
    and ``D = sd D'``, the codes are ``Z = (sx / sd) Z'`` where ``Z'`` solves the
    problem on ``(X', D')`` with ``alpha' = alpha / (sx sd)`` (and the OMP
    residual tolerance ``tol / sx**2``). Huge or tiny finite inputs then neither
    overflow nor underflow inside the kernels.
    """
    if algorithm == "omp" and positive:
        raise ValueError("positive=True is not supported with algorithm='omp'.")
    dtype = X.dtype
    D = np.ascontiguousarray(dictionary, dtype=dtype)
    X = np.ascontiguousarray(X)
    ex, ed = _scale_exponent(X), _scale_exponent(D)
    if ex:
        X = np.ldexp(X, -ex).astype(dtype, copy=False)
    if ed:
        D = np.ldexp(D, -ed).astype(dtype, copy=False)
        gram = None  # a Gram matrix of the unscaled atoms may have overflowed
    if gram is None:
        gram = _gram(D, n_jobs)
    gram = np.ascontiguousarray(gram, dtype=dtype)
    alpha = float(np.ldexp(alpha, -ex - ed))
    if algorithm == "omp" and tol is not None:
        tol = float(np.ldexp(tol, -2 * ex))
    codes = np.zeros((X.shape[0], D.shape[0]), dtype=dtype)
    if init is not None:
        codes[:] = np.ldexp(np.asarray(init, dtype=dtype), ed - ex)
    if algorithm == "lasso" and alpha == 0.0:
        codes = _least_squares(X, D, positive)
    elif algorithm == "unrolled":
        codes = _unrolled_forward(X, D, gram, codes, alpha, n_unroll, positive, n_jobs)
    else:
        _run_chunks(
            X, D, gram, codes, algorithm, alpha, n_nonzero_coefs, positive,
            max_iter, tol, n_jobs,
        )  # fmt: skip
    if ex != ed:
        codes = np.ldexp(codes, ex - ed).astype(dtype, copy=False)
    return codes


def _gram(D, n_jobs):
    """``D D^T`` by blocks of ``CHUNK_SIZE // 4`` rows on the package's threads,
    BLAS on one thread.

    A multi-threaded BLAS call here costs more than the product on a busy
    machine: OpenBLAS's idle workers spin for a while after a call, taking
    a core from the kernels that follow (measured: the CPU time of
    ``sparse_encode`` on 20,000 x 64 samples and 256 atoms fell by a third).
    The blocks are fixed, so the Gram matrix does not depend on ``n_jobs``.
    """
    p = D.shape[0]
    gram = np.empty((p, p), dtype=D.dtype)
    step = CHUNK_SIZE // 4
    slices = [slice(start, min(start + step, p)) for start in range(0, p, step)]

    def run(sl):
        np.dot(D[sl], D.T, out=gram[sl])

    n_workers = n_threads(n_jobs, len(slices))
    with single_threaded_blas():
        if n_workers == 1:
            for sl in slices:
                run(sl)
        else:
            list(_thread_pool(n_workers).map(run, slices))
    return gram


def _scale_exponent(A, limit=16):
    """``e`` such that ``max |A| / 2**e`` is in ``[0.5, 1)``, or 0 when
    ``max |A|`` is already within ``[2**-limit, 2**limit]`` (or ``A`` is zero):
    dividing by a power of two is exact, and leaves ordinary data untouched."""
    m = float(np.max(np.abs(A))) if A.size else 0.0
    if m == 0.0 or not np.isfinite(m):
        return 0
    e = int(np.frexp(m)[1])
    return e if abs(e) > limit else 0


def _unrolled_forward(X, D, gram, init, alpha, n_unroll, positive, n_jobs):
    """``n_unroll`` FISTA steps from ``init``: the forward pass of the dense
    networks (``skunroll/_dense/network.py``), the one implementation that
    ``UnrolledSparseCoder`` and the trained estimators' ``transform`` share."""
    step = _proximal_step(D, gram)
    net = Network(
        n_unroll, "fista", "nonneg_l1" if positive else "l1", alpha, alpha,
        resolve_groups("l1", None, D.shape[0]),
    )  # fmt: skip
    return forward_backward(X, D, net, step, "forward", n_jobs, init=init).codes


def _proximal_step(D, gram):
    """The step ``1 / L`` of ISTA/FISTA on ``D``, ``L = ||D||_2^2`` by power
    iteration on the smaller of ``D^T D`` and the Gram matrix ``D D^T``."""
    small = D.T @ D if D.shape[1] < D.shape[0] else gram
    return encoder_step(_lipschitz_from_gram(small))


def _least_squares(X, D, positive):
    """``alpha = 0``: minimum-norm least squares (non-negative least squares
    if ``positive``), the limit of the lasso as ``alpha -> 0``."""
    if positive:
        from scipy.optimize import nnls

        DT = D.T.astype(np.float64)
        codes = np.array([nnls(DT, x.astype(np.float64))[0] for x in X])
        return codes.reshape(X.shape[0], D.shape[0]).astype(X.dtype)
    codes = np.linalg.lstsq(D.T, X.T, rcond=None)[0].T
    return np.ascontiguousarray(codes, dtype=X.dtype)


def _run_chunks(
    X, D, gram, codes, algorithm, alpha, n_nonzero_coefs, positive, max_iter, tol,
    n_jobs,
):  # fmt: skip
    """Code every chunk of samples in place of ``codes``, on threads."""
    run = _chunk_runner(
        X, D, gram, codes, algorithm, alpha, n_nonzero_coefs, positive, max_iter,
        tol,
    )  # fmt: skip
    slices = [
        slice(start, min(start + CHUNK_SIZE, X.shape[0]))
        for start in range(0, X.shape[0], CHUNK_SIZE)
    ]
    n_workers = n_threads(n_jobs, len(slices))
    # BLAS inside the kernels runs on one thread whatever n_jobs is: no
    # oversubscription, and the codes do not depend on n_jobs bit for bit.
    with single_threaded_blas():
        if n_workers == 1:
            results = [run(sl) for sl in slices]
        else:
            results = list(_thread_pool(n_workers).map(run, slices))
    tol = DEFAULT_TOL[X.dtype] if tol is None else tol
    _warn_if_not_converged(algorithm, results, max_iter, tol)


_local = threading.local()


def _correlations(X_chunk, DT):
    """``X_chunk @ D^T`` into this thread's reusable buffer."""
    B = _correlation_buffer(X_chunk.shape[0], DT.shape[1], DT.dtype)
    return np.dot(X_chunk, DT, out=B)


def _correlation_buffer(n_rows, n_components, dtype):
    """This thread's buffer for ``X[chunk] D^T``, reused across chunks and calls.

    The correlations are formed chunk by chunk inside the worker: the gemm runs
    in parallel and the whole (n_samples, n_components) matrix is never
    allocated (fresh memory is costly to touch).
    """
    buf = getattr(_local, "buffer", None)
    if buf is None or buf.dtype != dtype or buf.shape[1] != n_components:
        buf = np.empty((CHUNK_SIZE, n_components), dtype=dtype)
        _local.buffer = buf
    return buf[:n_rows]


def _chunk_runner(
    X, D, gram, codes, algorithm, alpha, n_nonzero_coefs, positive, max_iter, tol,
):  # fmt: skip
    """Return ``run(slice) -> diagnostics`` that codes one chunk in place."""
    dtype = X.dtype.type
    n_components, n_features = D.shape
    DT = np.ascontiguousarray(D.T)
    if algorithm == "omp":
        # squared norms are only needed to stop on the residual (tol)
        x_norm2 = (
            np.zeros(X.shape[0], dtype=X.dtype)
            if tol is None
            else np.einsum("ij,ij->i", X, X)
        )
        if n_nonzero_coefs is None:
            n_nonzero_coefs = (
                max(n_features // 10, 1)
                if tol is None
                else min(n_features, n_components)
            )
        k = check_n_nonzero_coefs(n_nonzero_coefs, n_components)
        omp_tol = dtype(-1.0 if tol is None else tol)

        def run(sl):
            B = _correlations(X[sl], DT)
            return omp_gram(B, gram, x_norm2[sl], k, omp_tol, codes[sl])

        return run

    tol = DEFAULT_TOL[X.dtype] if tol is None else tol
    if algorithm == "lasso":

        def run(sl):
            B = _correlations(X[sl], DT)
            return lasso_gram(
                X[sl],
                D,
                B,
                gram,
                codes[sl],
                dtype(alpha),
                positive,
                max_iter,
                tol,
            )

        return run

    step = dtype(_proximal_step(D, gram))
    accelerated = algorithm != "ista"

    def run(sl):
        B = _correlations(X[sl], DT)
        return fista_gram(
            X[sl],
            D,
            B,
            gram,
            codes[sl],
            dtype(alpha),
            step,
            max_iter,
            tol,
            positive,
            accelerated,
            10,
        )

    return run


def _warn_if_not_converged(algorithm, results, max_iter, tol):
    if algorithm == "omp":
        return
    worst = max(gap for _, gap in results)
    if worst > tol:
        warnings.warn(
            f"sparse_encode(algorithm={algorithm!r}) did not reach tol={tol:.1e}: "
            f"the largest relative duality gap is {worst:.2e} (max_iter={max_iter})."
            " Increase max_iter, or tol (a gap below about 1e-5 cannot be "
            "certified in float32), or alpha: when alpha is tiny relative to "
            "max |X D^T| the gap stalls at the floor of the precision.",
            ConvergenceWarning,
            stacklevel=4,
        )


class UnrolledSparseCoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator
):
    """Sparse coding against a fixed dictionary, as a stateless transformer.

    The default encoder is the unrolled network: ``n_unroll`` FISTA iterations
    whose weights are the dictionary itself (``W = I - G / L`` and ``D^T / L``,
    with ``G = D D^T``), so the representation is interpretable and its cost is
    fixed. Exact solvers (``"lasso"``, ``"omp"``) are available for
    ``transform_algorithm``. Like scikit-learn's ``SparseCoder``, it needs no
    fitting (``requires_fit=False``), and ``fit`` only validates ``X``; it can be
    placed in a ``Pipeline`` and grid-searched over ``transform_alpha``.

    Parameters
    ----------
    dictionary : ndarray of shape (n_components, n_features)
        Atoms as rows. Not modified; kept as given.
    transform_algorithm : str, default="unrolled"
        Coding algorithm, one of ``"unrolled"``, ``"lasso"``, ``"fista"``,
        ``"ista"``, ``"omp"``; see :func:`skunroll.sparse_encode`.
    transform_alpha : float, default=None
        l1 penalty of the l1 algorithms; ``None`` means 1.0.
    transform_n_nonzero_coefs : int, default=None
        Sparsity of ``"omp"``; ``None`` means ``max(n_features // 10, 1)``.
    n_unroll : int, default=50
        Depth of the ``"unrolled"`` encoder.
    positive_code : bool, default=False
        Constrain the codes to be non-negative (the l1 algorithms; ``"omp"``
        raises a ValueError), as ``positive`` in :func:`skunroll.sparse_encode`.
    transform_max_iter : int, default=1000
        Iteration cap of ``"lasso"``, ``"fista"`` and ``"ista"``.
    transform_tol : float, default=None
        Tolerance, as ``tol`` in :func:`skunroll.sparse_encode`.
    split_sign : bool, default=False
        Return ``[max(z, 0), max(-z, 0)]`` side by side (2 n_components
        columns), which can help downstream linear models.
    n_jobs : int, default=None
        Threads over chunks of samples.

    Attributes
    ----------
    n_components_ : int
        Number of atoms (set by ``fit``; also available as
        ``dictionary.shape[0]`` without fitting).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    sparse_encode : The function behind ``transform``.
    sklearn.decomposition.SparseCoder : scikit-learn's counterpart.

    References
    ----------
    .. [1] Gregor & LeCun, "Learning fast approximations of sparse coding",
       ICML 2010.
    .. [2] Tolooshams & Ba, "Stable and interpretable unrolled dictionary
       learning" (PUDLE), TMLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll import UnrolledSparseCoder
    >>> from skunroll.datasets import make_dictionary, make_sparse_coded_data
    >>> D = make_dictionary(32, 16, random_state=0)
    >>> X, _, Z = make_sparse_coded_data(100, D, n_nonzero_coefs=3, random_state=0)
    >>> coder = UnrolledSparseCoder(D, transform_algorithm="lasso",
    ...                             transform_alpha=0.05)
    >>> coder.transform(X).shape
    (100, 32)
    """

    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        "transform_algorithm": [StrOptions(set(ALGORITHMS))],
        "transform_alpha": [Interval(Real, 0, None, closed="left"), None],
        "transform_n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "n_unroll": [Interval(Integral, 1, None, closed="left")],
        "positive_code": ["boolean"],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_tol": [Interval(Real, 0, None, closed="left"), None],
        "split_sign": ["boolean"],
        "n_jobs": N_JOBS,
    }

    def __init__(
        self,
        dictionary,
        *,
        transform_algorithm="unrolled",
        transform_alpha=None,
        transform_n_nonzero_coefs=None,
        n_unroll=50,
        positive_code=False,
        transform_max_iter=1000,
        transform_tol=None,
        split_sign=False,
        n_jobs=None,
    ):
        self.dictionary = dictionary
        self.transform_algorithm = transform_algorithm
        self.transform_alpha = transform_alpha
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.n_unroll = n_unroll
        self.positive_code = positive_code
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.split_sign = split_sign
        self.n_jobs = n_jobs

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and ``X``; nothing is learned.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only used for input validation.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The estimator itself.
        """
        X = validate_data(self, X, dtype=FLOAT_DTYPES)
        D = check_dictionary(self.dictionary, dtype=None, n_features=X.shape[1])
        self.n_components_ = D.shape[0]
        return self

    def transform(self, X):
        """Encode ``X`` as sparse combinations of the atoms.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            Codes (``2 * n_components`` columns with ``split_sign``), in the
            dtype of ``X``.
        """
        self._validate_params()
        X = validate_data(self, X, dtype=FLOAT_DTYPES, reset=False)
        D = check_dictionary(self.dictionary, dtype=X.dtype, n_features=X.shape[1])
        if self.transform_algorithm == "omp" and self.positive_code:
            raise ValueError(
                "positive_code=True is not supported with transform_algorithm='omp'."
            )
        alpha = 1.0 if self.transform_alpha is None else self.transform_alpha
        codes = _sparse_encode(
            X,
            D,
            algorithm=self.transform_algorithm,
            alpha=alpha,
            n_nonzero_coefs=self.transform_n_nonzero_coefs,
            n_unroll=self.n_unroll,
            positive=self.positive_code,
            max_iter=self.transform_max_iter,
            tol=self.transform_tol,
            n_jobs=self.n_jobs,
        )
        if self.split_sign:
            codes = np.hstack([np.maximum(codes, 0), np.maximum(-codes, 0)])
        return codes

    def inverse_transform(self, X):
        """Reconstruct data from codes: ``codes @ dictionary``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform`` (split codes are recombined).

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstruction.
        """
        D = check_dictionary(self.dictionary)
        codes = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        n_out = self._n_features_out
        if codes.shape[1] != n_out:
            raise ValueError(
                f"X has {codes.shape[1]} columns (shape {codes.shape}); expected "
                f"{n_out} codes for a dictionary of shape {D.shape}."
            )
        if self.split_sign:
            k = D.shape[0]
            codes = codes[:, :k] - codes[:, k:]
        return codes @ D.astype(codes.dtype, copy=False)

    @property
    def _n_features_out(self):
        n_components = np.shape(self.dictionary)[0]
        return 2 * n_components if self.split_sign else n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
