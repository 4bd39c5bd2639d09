"""Threshold detection, waveforms and Gaussian-mixture clustering with the
number of clusters chosen by the Bayesian information criterion (BIC).

The sorter clusters twice: the waveforms of threshold crossings, whose
cluster means are the kernels that deconvolution starts from, and, after
deconvolution, every kernel's events on their code amplitude and waveform
features, so that units that share one shape at different amplitudes become
separate units. Units whose mean waveforms are closer than a distance in
units of noise are then merged (:func:`merge_units`), which undoes the
over-splitting of one unit into several kernels.
"""

import numpy as np
from scipy import ndimage
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


def template_distance(a, b, max_lag):
    """The smallest Euclidean distance between templates ``(C, L)`` over
    relative shifts of at most ``max_lag`` samples (zero-padded), and its lag."""
    best, best_lag = np.inf, 0
    L = a.shape[1]
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            d = np.sum((a[:, lag:] - b[:, : L - lag]) ** 2)
            d += np.sum(a[:, :lag] ** 2) + np.sum(b[:, L - lag :] ** 2)
        else:
            d = np.sum((a[:, : L + lag] - b[:, -lag:]) ** 2)
            d += np.sum(a[:, L + lag :] ** 2) + np.sum(b[:, :-lag] ** 2)
        if d < best:
            best, best_lag = d, lag
    return float(np.sqrt(best)), best_lag


def merge_units(templates, counts, distance, max_lag):
    """Agglomerative merging: while two units' templates (in units of noise)
    are closer than ``distance``, merge the closest pair (their template
    becomes the count-weighted mean). Returns, for every input unit, the index
    of its merged unit (0..n_merged-1)."""
    n = len(templates)
    groups = [[i] for i in range(n)]
    temps = [np.asarray(t, dtype=np.float64) for t in templates]
    weights = [float(c) for c in counts]
    alive = list(range(n))
    D = np.full((n, n), np.inf)
    for i in range(n):
        for j in range(i + 1, n):
            D[i, j] = template_distance(temps[i], temps[j], max_lag)[0]
    while len(alive) > 1:
        sub = D[np.ix_(alive, alive)]
        a, b = np.unravel_index(np.argmin(sub), sub.shape)
        if sub[a, b] >= distance:
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
                d = template_distance(temps[i], temps[m], max_lag)[0]
                D[min(i, m), max(i, m)] = d
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


def split_amplitudes(amplitudes, max_clusters, min_separation, min_size, min_ratio=0.0):
    """Cut points that split one kernel's code amplitudes into clusters.

    A split test, applied recursively: a group of amplitudes is cut in two by a
    two-component Gaussian mixture when the two components are separated by
    at least ``min_separation`` pooled standard deviations,
    ``|mu_1 - mu_2| / sqrt((s_1^2 + s_2^2) / 2)``, their means differ by at
    least ``min_ratio`` times the larger one, and each holds at least
    ``min_size`` amplitudes; at most ``max_clusters`` clusters. The cut is
    where the two weighted Gaussian densities meet (between the means). One
    unit's amplitudes vary by the noise only, so a unimodal group is not cut;
    two units with one shape and different amplitudes are.

    ``min_ratio`` guards against a large unit whose amplitudes are flat or
    bimodal within a few percent (the sub-sample phase of its spikes): a
    two-component mixture fitted to a uniform distribution finds components
    3 pooled standard deviations apart, which the first test alone would
    cut.
    """
    a = np.sort(np.asarray(amplitudes, dtype=np.float64))
    cuts = []
    groups = [a]
    while groups and len(cuts) + 1 < max_clusters:
        g = groups.pop(0)
        cut = _best_cut(g, min_separation, min_size, min_ratio)
        if cut is None:
            continue
        cuts.append(cut)
        groups += [g[g < cut], g[g >= cut]]
        groups.sort(key=len, reverse=True)
    return np.sort(np.asarray(cuts, dtype=np.float64))


def _best_cut(a, min_separation, min_size, min_ratio):
    if a.size < 2 * min_size:
        return None
    gmm = GaussianMixture(2, random_state=0, reg_covar=1e-6)
    # the amplitudes are sorted: an even subsample keeps their distribution
    fit = a[:: max(1, a.size // 4000)]
    gmm.fit(fit[:, None])
    mu = gmm.means_[:, 0]
    sd = np.sqrt(gmm.covariances_.reshape(2))
    if np.sqrt((sd[0] ** 2 + sd[1] ** 2) / 2) * min_separation > abs(mu[0] - mu[1]):
        return None
    if abs(mu[0] - mu[1]) < min_ratio * np.max(np.abs(mu)):
        return None
    lo, hi = np.argsort(mu)
    grid = np.linspace(mu[lo], mu[hi], 512)
    dens = gmm.predict_proba(grid[:, None])
    cut = float(grid[np.argmax(dens[:, hi] >= dens[:, lo])])
    n_lo = np.searchsorted(a, cut)
    if min(n_lo, a.size - n_lo) < min_size:
        return None
    return cut
