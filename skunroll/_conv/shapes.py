"""Shapes of the convolutional model: signals, kernels and code maps.

Every signal is handled as ``(n, C, h, w)`` (1-D signals have ``h = 1``) and
every kernel bank as ``(K, C, kh, kw)``; the code maps of the "valid"
convolution ``x = sum_k h_k * z_k`` of CRsAE/DUNL then have ``(h - kh + 1,
w - kw + 1)`` positions. This module converts the user's shapes to these
and back, and validates signals, code masks and per-kernel parameters.
"""

from numbers import Integral

import numpy as np
from sklearn.utils.validation import check_array, validate_data

from .._parts.likelihoods import check_counts
from .._validation import FLOAT_DTYPES


def kernel_shape(kernel_size):
    """``kernel_size`` as a tuple: ``(kw,)`` for 1-D kernels, ``(kh, kw)`` for
    images."""
    ks = (kernel_size,) if isinstance(kernel_size, Integral) else tuple(kernel_size)
    if len(ks) not in (1, 2) or not all(isinstance(k, Integral) and k >= 1 for k in ks):
        raise ValueError(
            f"kernel_size must be a positive int or a pair of positive ints; "
            f"got {kernel_size!r}."
        )
    return ks


def kernel_shape_2d(kernel_size):
    """``(kh, kw)``, with ``kh = 1`` for 1-D kernels."""
    return (1, *kernel_shape(kernel_size))[-2:]


def per_kernel(value, name, k):
    """A scalar or ``(k,)`` parameter as a float array of shape ``(k,)``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(k, float(arr))
    if arr.shape != (k,):
        raise ValueError(
            f"{name} must be a scalar or have shape (n_components,) = ({k},); "
            f"got shape {arr.shape}."
        )
    return arr.copy()


def to_4d(X, kernel_size, name="X"):
    """Signals as a C-contiguous ``(n, C, h, w)`` array."""
    ks = kernel_shape(kernel_size)
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
                f"{kernel_size!r}); got shape {X.shape}."
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
                f"(kernel_size={kernel_size!r}); got shape {X.shape}."
            )
    kshape = (1, *ks)[-2:]
    if X4.shape[2] < kshape[0] or X4.shape[3] < kshape[1]:
        extent = X.shape[-1] if len(ks) == 1 else X.shape[-2:]
        raise ValueError(
            f"kernel_size={kernel_size!r} does not fit in signals of "
            f"{extent} {'sample(s)' if len(ks) == 1 else 'pixels'}: {name} has "
            f"{X.shape[-1]} feature(s) along its last axis."
        )
    return np.ascontiguousarray(X4)


def check_signals(estimator, X, reset, same_shape, name="X"):
    """Validated signals for ``estimator`` (its ``likelihood`` and
    ``n_trials``); 2-D input of the training width goes through
    ``validate_data`` (feature names, ``n_features_in_``), and ``reset``
    records ``signal_shape_`` and ``n_features_in_`` on the estimator."""
    ndim = len(X.shape) if hasattr(X, "shape") else np.asarray(X).ndim
    if ndim == 2 and (reset or same_shape):
        X = validate_data(estimator, X, dtype=FLOAT_DTYPES, order="C", reset=reset)
    X = check_array(X, dtype=FLOAT_DTYPES, order="C", allow_nd=True, input_name=name)
    if X.ndim < 2:
        raise ValueError(f"{name} must hold several signals; got shape {X.shape}.")
    if reset:
        estimator.signal_shape_ = X.shape[1:]
        estimator.n_features_in_ = int(np.prod(X.shape[1:]))
    elif same_shape and X.shape[1:] != estimator.signal_shape_:
        raise ValueError(
            f"{name} has signals of shape {X.shape[1:]} "
            f"({int(np.prod(X.shape[1:]))} "
            "features), but ConvolutionalDictionaryLearning is expecting "
            f"{estimator.n_features_in_} "
            f"features as input (signals of shape {estimator.signal_shape_}); "
            "code_maps and detect_events take signals of any length."
        )
    if not reset and X.ndim != len(estimator.signal_shape_) + 1:
        raise ValueError(
            f"{name} must have the dimensions of the training data "
            f"(signals of shape {estimator.signal_shape_}); got shape {X.shape}."
        )
    check_counts(X, estimator.likelihood, estimator.n_trials)
    return X


def check_mask(code_mask, X4, k, kernel_size):
    """The code mask as booleans ``(n, k, p1, p2)``, or None."""
    if code_mask is None:
        return None
    mask = np.asarray(code_mask)
    kh, kw = kernel_shape_2d(kernel_size)
    shape = (X4.shape[0], k, X4.shape[2] - kh + 1, X4.shape[3] - kw + 1)
    squeezed = shape if len(kernel_shape(kernel_size)) == 2 else shape[:2] + shape[3:]
    if mask.shape not in (shape, squeezed) or mask.dtype.kind not in "biu":
        raise ValueError(
            f"code_mask must be a boolean array of shape (n_samples, "
            f"n_components, *n_positions) = {squeezed}; got "
            f"{mask.dtype} of shape {mask.shape}."
        )
    return np.ascontiguousarray(mask.reshape(shape).astype(bool))


def kernels_4d(kernels, kernel_size, dtype=None):
    """Kernels (``kernels_``) as a C-contiguous ``(K, C, kh, kw)`` array."""
    H = np.asarray(kernels)
    H = H.reshape(H.shape[:2] + kernel_shape_2d(kernel_size))
    return np.ascontiguousarray(H, dtype=dtype)


def squeeze_maps(codes, kernel_size):
    """Code maps ``(n, K, p1, p2)`` in the user's shape: ``(n, K, p)`` for
    1-D kernels."""
    return codes if len(kernel_shape(kernel_size)) == 2 else codes[:, :, 0]


def code_map_shape(signal_shape, n_components, kernel_size):
    """Shape ``(n_components, p1, p2)`` of the code maps of one signal of
    shape ``signal_shape``."""
    X4_shape = to_4d(np.empty((1, *signal_shape)), kernel_size).shape
    kh, kw = kernel_shape_2d(kernel_size)
    return (n_components, X4_shape[2] - kh + 1, X4_shape[3] - kw + 1)


def unflatten(Z, shape):
    """Codes, flat (from ``transform``) or as maps, as ``(n, *shape)`` with
    ``shape`` from :func:`code_map_shape`."""
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
