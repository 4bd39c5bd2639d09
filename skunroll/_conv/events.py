"""The event records of convolutional sparse coding.

An event is one non-zero entry of a code map: the signal it belongs to
(``sample``), its kernel, its position (one int for 1-D signals, a pair for
images) and its amplitude. :meth:`ConvolutionalDictionaryLearning.detect_events`
returns them, and the spike generators of :mod:`skunroll.datasets` return
their ground truth in the same format, so the two compare directly
(:func:`skunroll.metrics.event_detection_f1`).

It also holds the detection itself (:func:`detect_events`): the sparse codes
``z_k`` of CRsAE/DUNL's encoder, ``min_z l(x, nu + sum_k h_k * z_k) +
sum_k lambda_k |z_k|_1``, encoded block by block along the last axis, then
thresholded and thinned by non-maximum suppression per kernel.
"""

from numbers import Integral

import numpy as np

from .._kernels import _conv as _k
from .._parallel import map_in_order
from .shapes import squeeze_maps

#: detect_events encodes this many code positions at a time (bounded memory)
DETECT_BLOCK = 1 << 20

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


def suppression_radius(min_distance, kernel_width):
    """The non-maximum suppression radius: ``min_distance``, or for "auto" a
    quarter of the kernel width (at least 1)."""
    if min_distance == "auto":
        min_distance = max(1, kernel_width // 4)
    if not isinstance(min_distance, Integral) or min_distance < 0:
        raise ValueError(
            f"min_distance must be 'auto' or a non-negative int; got {min_distance!r}."
        )
    return int(min_distance)


def detect_events(X4, encode, kernel_size, reach, threshold, radius, mask=None,
                  n_jobs=None):  # fmt: skip
    """Event records of the signals ``X4`` ``(n, C, h, w)``.

    ``encode(X4_block, mask_block)`` returns the code maps ``(1, K, p1, p2)``
    of one signal's block. Every signal is encoded in blocks of
    ``DETECT_BLOCK`` positions along its last axis, each extended by the
    suppression ``radius`` and by the encoder's ``reach`` (``n_unroll * (kw -
    1)`` for the unrolled encoders: so that its codes are those of the whole
    signal; see ``ConvNetwork.reach``); the entries above
    ``threshold`` that survive :func:`suppress` are the events, sorted by
    sample, kernel and position.
    """
    kw = kernel_size[-1]
    width = X4.shape[3] - kw + 1
    found = []
    for i in range(X4.shape[0]):
        for s in range(0, width, DETECT_BLOCK):
            e = min(s + DETECT_BLOCK, width)
            lo, hi = max(0, s - radius), min(width, e + radius)
            a, b = max(0, lo - reach), min(width, hi + reach)
            m = None if mask is None else mask[i : i + 1, :, :, a:b]
            codes = encode(X4[i : i + 1, :, :, a : b + kw - 1], m)
            codes = codes[:, :, :, lo - a : hi - a]
            kept = suppress(codes, threshold, radius, n_jobs)
            kept = kept[:, :, :, s - lo : e - lo]
            events = events_from_codes(squeeze_maps(kept, kernel_size))
            events["sample"] = i
            if len(kernel_size) == 1:
                events["position"] += s
            else:
                events["position"][:, 1] += s
            found.append(events)
    if not found:  # no signal: the empty records
        return np.empty(0, dtype=event_dtype(len(kernel_size)))
    events = np.concatenate(found)
    if len(events) == 0:  # no event: the empty records, of the same dtype
        return events
    pos = events["position"].reshape(len(events), -1)
    order = np.lexsort((*pos.T[::-1], events["kernel"], events["sample"]))
    return events[order]


def suppress(codes, threshold, radius, n_jobs=None):
    """Per-signal non-maximum suppression of code maps ``(n, K, p1, p2)`` in
    the thread pool: the entries above ``threshold`` in magnitude that are
    the largest of their kernel within ``radius`` positions, zeros elsewhere."""
    maps = codes.reshape(codes.shape[0], codes.shape[1], -1, codes.shape[-1])
    kept = np.empty_like(maps)

    def run(i):
        _k.non_maximum_suppression(maps[i], threshold, radius, kept[i])

    map_in_order(run, maps.shape[0], n_jobs)
    return kept.reshape(codes.shape)
