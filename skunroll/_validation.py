"""Input checks shared by the estimators (clear messages that name the argument)."""

import numpy as np
from sklearn.utils.validation import check_array

from ._parallel import N_JOBS  # noqa: F401 (re-export)

FLOAT_DTYPES = (np.float64, np.float32)


def check_dictionary(dictionary, *, dtype=FLOAT_DTYPES, n_features=None):
    """Validate a dictionary with atoms as rows; return a C-contiguous array.

    Raises a ValueError for NaN/inf, a wrong number of dimensions, an all-zero
    atom, or a number of features that differs from ``n_features``.
    """
    D = check_array(
        dictionary, dtype=dtype, order="C", input_name="dictionary", copy=False
    )
    if n_features is not None and D.shape[1] != n_features:
        raise ValueError(
            f"dictionary has {D.shape[1]} features (shape {D.shape}) but X has "
            f"{n_features} features; both must have the same number of columns."
        )
    zero = np.flatnonzero(~np.any(D != 0, axis=1))
    if zero.size:
        raise ValueError(
            f"dictionary has all-zero atoms at rows {zero.tolist()[:10]}; "
            "every atom (row) must have a non-zero norm."
        )
    return D


def check_n_nonzero_coefs(n_nonzero_coefs, n_components, *, name="n_nonzero_coefs"):
    """Resolve the OMP sparsity level; more atoms than exist is an error."""
    if n_nonzero_coefs > n_components:
        raise ValueError(
            f"{name}={n_nonzero_coefs} is larger than the number of atoms "
            f"n_components={n_components}; it must be at most n_components."
        )
    return int(n_nonzero_coefs)
