"""The event records of convolutional sparse coding.

An event is one non-zero entry of a code map: the signal it belongs to
(``sample``), its kernel, its position (one int for 1-D signals, a pair for
images) and its amplitude. :meth:`ConvolutionalDictionaryLearning.detect_events`
returns them, and the spike generators of :mod:`skunroll.datasets` return
their ground truth in the same format, so the two compare directly
(:func:`skunroll.metrics.event_detection_f1`).
"""

import numpy as np

EVENT_FIELDS = ("sample", "kernel", "position", "amplitude")


def event_dtype(n_dims):
    """dtype of event records: sample, kernel, position (1 or 2 ints), amplitude."""
    pos = np.int64 if n_dims == 1 else (np.int64, (n_dims,))
    return np.dtype(
        [("sample", np.int64), ("kernel", np.int64), ("position", pos),
         ("amplitude", np.float64)]
    )  # fmt: skip


def events_from_codes(codes):
    """Event records of the non-zero entries of code maps ``(n, K, *positions)``."""
    idx = np.nonzero(codes)
    n_dims = codes.ndim - 2
    events = np.empty(len(idx[0]), dtype=event_dtype(n_dims))
    events["sample"], events["kernel"] = idx[0], idx[1]
    events["position"] = idx[2] if n_dims == 1 else np.stack(idx[2:], axis=1)
    events["amplitude"] = codes[idx]
    return events
