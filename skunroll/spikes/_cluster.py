"""Threshold detection, waveforms and Gaussian-mixture clustering with the
number of clusters chosen by the Bayesian information criterion (BIC).

The sorter clusters twice: the waveforms of threshold crossings, whose
cluster means are the kernels that deconvolution starts from, and, after
deconvolution, every kernel's events on their code amplitude and footprint
(:func:`split_features`, labelled by :class:`GaussianClasses`), so that units
that share one shape at different amplitudes or on different channels become
separate units. Units whose mean waveforms are closer than a distance in
units of noise are then merged (:func:`merge_units`), which undoes the
over-splitting of one unit into several kernels.
"""

import numpy as np
from scipy import ndimage
from scipy.fft import next_fast_len
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture


def peak_signal(XnT, peak_sign):
    """The per-sample detection signal of channel-major data ``(C, T)``: the
    largest deflection over channels in the direction of ``peak_sign``."""
    if peak_sign == "neg":
        return -XnT.min(axis=0)
    if peak_sign == "pos":
        return XnT.max(axis=0)
    return np.abs(XnT).max(axis=0)


def detect_peaks(XnT, threshold, radius, peak_sign, lo, hi):
    """Samples in ``[lo, hi)`` where the detection signal exceeds ``threshold``
    and is the largest within ``radius`` samples."""
    v = peak_signal(XnT, peak_sign)
    local = ndimage.maximum_filter1d(v, 2 * radius + 1, mode="nearest")
    peaks = np.flatnonzero((v > threshold) & (v >= local))
    peaks = peaks[(peaks >= lo) & (peaks < hi)]
    if peaks.size > 1:  # plateaus: keep the first sample
        keep = np.ones(peaks.size, dtype=bool)
        keep[1:] = np.diff(peaks) > radius
        peaks = peaks[keep]
    return peaks


def windows(XnT, starts, length):
    """Windows ``(n, C, length)`` of channel-major data starting at ``starts``."""
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)[None, :]
    return XnT[:, idx].transpose(1, 0, 2)


def gmm_bic(features, max_clusters, random_state, n_clusters=None):
    """Labels of the Gaussian mixture with the lowest BIC among 1 to
    ``max_clusters`` components (a search that stops after two numbers without
    improvement), or with ``n_clusters`` components if given."""
    n = features.shape[0]
    if n_clusters is not None:
        choices = [min(int(n_clusters), n)]
    else:
        choices = range(1, max(1, min(max_clusters, n // 10)) + 1)
    best, best_bic, worse = None, np.inf, 0
    for k in choices:
        gmm = GaussianMixture(
            k,
            covariance_type="full",
            reg_covar=1e-3,
            random_state=random_state,
            n_init=1,
            max_iter=200,
        )
        gmm.fit(features)
        bic = gmm.bic(features)
        if bic < best_bic:
            best, best_bic, worse = gmm, bic, 0
        else:
            worse += 1
            if worse >= 2:
                break
    return best


def pca_features(waves, n_components, random_state):
    """A PCA fitted on flattened waveforms ``(n, ...)``, and their features."""
    flat = waves.reshape(waves.shape[0], -1)
    n_components = max(1, min(n_components, flat.shape[0], flat.shape[1]))
    pca = PCA(n_components, random_state=random_state, svd_solver="auto")
    return pca, pca.fit_transform(flat)


def template_distance(a, b, max_lag, steps=1):
    """The smallest Euclidean distance between templates ``(C, L)`` over
    relative shifts of at most ``max_lag`` samples in steps of ``1 / steps``
    of a sample (zero-padded; a fractional shift is a phase ramp of the
    Fourier transform), and its lag: ``b`` shifted later by the lag is
    closest to ``a``.

    Sub-sample steps matter for large units: one unit's spikes split in two
    by their sub-sample phase give mean waveforms half a sample apart, which
    differ by many noise levels at any whole-sample shift."""
    C, L = a.shape
    pad = max_lag + 1
    n = next_fast_len(L + 2 * pad)
    pa = np.zeros((C, n))
    pb = np.zeros((C, n))
    pa[:, pad : pad + L] = a
    pb[:, pad : pad + L] = b
    lags = np.arange(-max_lag * steps, max_lag * steps + 1) / steps
    ramp = np.exp(-2j * np.pi * np.outer(lags, np.fft.rfftfreq(n)))  # (n_lags, f)
    shifted = np.fft.irfft(np.fft.rfft(pb)[None] * ramp[:, None, :], n)
    d = np.sum((shifted - pa[None]) ** 2, axis=(1, 2))
    best = int(np.argmin(d))
    lag = lags[best]
    return float(np.sqrt(d[best])), int(lag) if steps == 1 else float(lag)


def merge_units(templates, counts, distance, max_lag, steps=1, ratio=0.0):
    """Agglomerative merging: while two units' templates (in units of noise)
    are closer than ``max(distance, ratio * min(norms))``, merge the closest
    pair (relative to that bound; their template becomes the count-weighted
    mean). Returns, for every input unit, the index of its merged unit
    (0..n_merged-1).

    ``distance`` is the noise floor (below it single spikes of the two could
    not be told apart); ``ratio`` lets large units merge at a distance that is
    a small fraction of their norm (one unit's sub-clusters differ by a few
    percent of it: amplitude, sub-sample phase)."""
    n = len(templates)
    groups = [[i] for i in range(n)]
    temps = [np.asarray(t, dtype=np.float64) for t in templates]
    weights = [float(c) for c in counts]
    alive = list(range(n))

    def excess(i, j):
        bound = max(
            distance, ratio * min(np.linalg.norm(temps[i]), np.linalg.norm(temps[j]))
        )
        return template_distance(temps[i], temps[j], max_lag, steps)[0] / bound

    D = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(i + 1, n):
            D[i, j] = excess(i, j)
    while len(alive) > 1:
        sub = D[np.ix_(alive, alive)]
        a, b = np.unravel_index(np.argmin(sub), sub.shape)
        if sub[a, b] >= 1.0:
            break
        i, j = sorted((alive[a], alive[b]))
        w = weights[i] + weights[j]
        temps[i] = (weights[i] * temps[i] + weights[j] * temps[j]) / w
        weights[i] = w
        groups[i] += groups[j]
        alive.remove(j)
        D[j, :] = D[:, j] = np.inf
        for m in alive:
            if m != i:
                D[min(i, m), max(i, m)] = excess(i, m)
    label = np.empty(n, dtype=np.int64)
    for new, g in enumerate(alive):
        label[groups[g]] = new
    return label


def distinct_kernels(H, refs, centre, similar):
    """Unit-norm kernels ``(K, C, L)`` less those whose normalised
    cross-correlation with a kept kernel exceeds ``similar`` at some lag; the
    kernels whose reference sample is closest to ``centre`` are kept first."""
    order = np.argsort(np.abs(np.asarray(refs) - centre), kind="stable")
    kept = []
    for k in order:
        dup = False
        for j in kept:
            xc = sum(np.correlate(H[k, c], H[j, c], "full") for c in range(H.shape[1]))
            if np.max(xc) > similar:
                dup = True
                break
        if not dup:
            kept.append(k)
    return H[np.sort(kept)]


def split_features(
    features,
    max_clusters,
    min_separation,
    min_size,
    min_ratio,
    seed,
    n_axes=2,
    n_starts=3,
):
    """Clusters of one kernel's events ``(n, d)`` by a recursive split test.

    A group is cut in two by a two-component Gaussian mixture when, projected
    on the mixture's discriminant direction ``(S_1 + S_2)^{-1} (mu_1 - mu_2)``,
    the two components are at least ``min_separation`` pooled standard
    deviations apart, ``|m_1 - m_2| / sqrt((s_1^2 + s_2^2) / 2)``, their means
    differ by at least ``min_ratio`` times the larger mean's norm, each
    side holds at least ``min_size`` events and the two components have a
    lower BIC than one; at most ``max_clusters`` clusters, the largest group
    tried first. One unit's features vary by the noise only, so a unimodal
    group is not cut; two units that differ in amplitude or footprint are.

    The first feature is the amplitude, the others the footprint: every
    group is cut on the amplitude alone, or on it and the group's own
    ``n_axes`` principal axes of the footprint (recomputed in every group: a
    large unit's variation dominates the axes of the whole kernel, and two
    small units' difference shows only once it is cut off; in all 16 or 32
    dimensions a mixture finds splits in one unit's noise), whichever is more
    separated.

    Every mixture with footprint axes is fitted from ``n_starts`` random
    starts, each a candidate: two small units whose amplitudes overlap and
    whose footprints differ are found from some starts only (the
    likelihood's best two-way split of such a group can be another one that
    fails the tests).

    ``min_ratio`` guards against a large unit whose amplitudes are flat or
    bimodal within a few percent (the sub-sample phase of its spikes): a
    two-component mixture fitted to a uniform distribution finds components
    3 pooled standard deviations apart, which the first test alone would
    cut.

    Returns the label (0 to n_clusters - 1) of every row.
    """
    F = np.asarray(features, dtype=np.float64)
    labels = np.zeros(len(F), dtype=np.int64)
    groups = [np.arange(len(F))]
    n_clusters = 1
    while groups and n_clusters < max_clusters:
        groups.sort(key=len)
        idx = groups.pop()
        side = _two_way_cut(
            F[idx], min_separation, min_size, min_ratio, seed, n_axes, n_starts
        )
        if side is None:
            continue
        labels[idx[side]] = n_clusters
        n_clusters += 1
        groups += [idx[~side], idx[side]]
    return labels


def _two_way_cut(F, min_separation, min_size, min_ratio, seed, n_axes, n_starts):
    """The rows on the second side of a significant two-way cut, or None.

    Mixtures are fitted on the amplitude alone and with the footprint's main
    axes (in several dimensions a mixture can settle on a split of the noise
    while the amplitude's modes are plain), the latter from ``n_starts``
    random starts; the most separated cut that passes the tests is taken."""
    if len(F) < 2 * min_size:
        return None
    candidates = [F[:, :1]]
    if F.shape[1] > 1:
        foot = F[:, 1:] - F[:, 1:].mean(axis=0)
        axes = np.linalg.svd(foot, full_matrices=False)[2]
        for n in sorted({min(int(n), foot.shape[1]) for n in np.atleast_1d(n_axes)}):
            candidates.append(np.column_stack([F[:, 0], foot @ axes[:n].T]))
    best, best_sep = None, -np.inf
    for G in candidates:
        one_bic = None
        # one dimension: EM finds the same two modes from any start
        for start in range(n_starts if G.shape[1] > 1 else 1):
            gmm = GaussianMixture(
                2, random_state=seed + start, reg_covar=1e-6, covariance_type="full"
            )
            gmm.fit(G)
            mu, cov = gmm.means_, gmm.covariances_
            diff = mu[1] - mu[0]
            if np.linalg.norm(diff) < min_ratio * np.linalg.norm(mu, axis=1).max():
                continue
            w = np.linalg.solve(cov[0] + cov[1], diff)
            m = mu @ w
            s2 = np.array([w @ cov[0] @ w, w @ cov[1] @ w])
            sep = abs(m[1] - m[0]) / np.sqrt(s2.mean())
            if sep < min_separation or sep <= best_sep:
                continue
            side = gmm.predict(G) == 1
            if min(side.sum(), (~side).sum()) < min_size:
                continue
            # and two components must explain the group better than one by
            # the BIC: on a few dozen events in several dimensions, a
            # mixture's separation alone is inflated by its fitted covariances
            if one_bic is None:
                one = GaussianMixture(1, reg_covar=1e-6, covariance_type="full")
                one_bic = one.fit(G).bic(G)
            if gmm.bic(G) >= one_bic:
                continue
            best, best_sep = side, sep
    return best


class GaussianClasses:
    """Labelled clusters as Gaussians (mean, covariance, weight): new rows go
    to the class of largest posterior (quadratic discriminant analysis)."""

    def __init__(self, features, labels, reg=1e-3):
        F = np.asarray(features, dtype=np.float64)
        n, d = F.shape
        k = int(labels.max()) + 1 if n else 1
        self.means = np.zeros((k, d))
        self.chol = np.broadcast_to(np.eye(d), (k, d, d)).copy()
        self.offset = np.zeros(k)
        for c in range(k if n else 0):  # no events (a silent kernel): one class
            G = F[labels == c]
            self.means[c] = G.mean(axis=0)
            cov = np.cov(G, rowvar=False).reshape(d, d) if len(G) > 1 else np.eye(d)
            cov = cov + reg * (np.trace(cov) / d + 1.0) * np.eye(d)
            L = np.linalg.cholesky(cov)
            self.chol[c] = L
            self.offset[c] = np.log(len(G) / n) - np.sum(np.log(np.diag(L)))

    def predict(self, features):
        F = np.asarray(features, dtype=np.float64)
        k = len(self.means)
        if k == 1 or len(F) == 0:
            return np.zeros(len(F), dtype=np.int64)
        score = np.empty((len(F), k))
        for c in range(k):
            z = np.linalg.solve(self.chol[c], (F - self.means[c]).T)
            score[:, c] = self.offset[c] - 0.5 * np.sum(z * z, axis=0)
        return np.argmax(score, axis=1)
