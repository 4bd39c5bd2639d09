"""The prior axis: proximal maps of the code priors, their vector-Jacobian
products, penalties and gradients, dispatched on an integer code.

Every encoder of the package (``sparse_encode``'s ISTA/FISTA, the dense and
the convolutional unrolled networks) applies its prior through this module, so
adding a prior is one code and one branch in each function here (and its name
in ``skunroll/_parts/priors.py``). Dispatch is on integers, which keeps
numba's ``cache=True`` working. Array operators write into ``out`` (which may
alias the input) so callers never allocate inside their innermost loop; all
work for float32 and float64.

================== ======================================= =====================
prior              penalty h(z)                            activation P(u)
================== ======================================= =====================
l1                 alpha ||z||_1                           soft-threshold a alpha
nonneg_l1          alpha sum z, z >= 0                     ReLU(u - a alpha)
ridge              alpha / 2 ||z||^2                       u / (1 + a alpha)
two_sided_gaussian alpha / 2 z+^2 + negative_alpha / 2 z-^2 leaky ReLU, slopes
                                                           1 / (1 + a alpha+-)
group_l1           alpha sum_g ||z_g||_2                   group shrink a alpha
simplex            0 on {z >= 0, sum z = 1}                simplex projection
================== ======================================= =====================
"""

import numpy as np
from numba import njit

# prior codes
L1, NONNEG_L1, RIDGE, TWO_SIDED_GAUSSIAN, GROUP_L1, SIMPLEX = 0, 1, 2, 3, 4, 5


@njit(nogil=True, cache=True)
def shrink(u, threshold, sign):
    """Soft threshold of one entry under a sign constraint: ``sign`` +1 keeps
    only ``u - threshold > 0`` (non-negative codes), -1 only ``u + threshold
    < 0``, 0 both (the prox of ``threshold * |z|``, restricted to the sign)."""
    if u > threshold and sign >= 0:
        return u - threshold
    if u < -threshold and sign <= 0:
        return u + threshold
    return 0.0


@njit(nogil=True, cache=True)
def soft_threshold(x, thresh, out):
    """Two-sided soft-threshold: ``sign(x) * max(|x| - thresh, 0)`` (prox of l1)."""
    for i in range(x.shape[0]):
        out[i] = shrink(x[i], thresh, 0)
    return out


@njit(nogil=True, cache=True)
def nonneg_soft_threshold(x, thresh, out):
    """Non-negative soft-threshold ``ReLU(x - thresh)`` (prox of l1 + x >= 0)."""
    for i in range(x.shape[0]):
        out[i] = shrink(x[i], thresh, 1)
    return out


@njit(nogil=True, cache=True)
def hard_threshold(x, thresh, out):
    """Hard threshold: keep ``x`` where ``|x| > thresh``, zero elsewhere."""
    for i in range(x.shape[0]):
        out[i] = x[i] if abs(x[i]) > thresh else 0.0
    return out


@njit(nogil=True, cache=True)
def group_squared_norms(x, groups):
    """``||x_g||^2`` of every group (``groups[i]``: group index of coordinate i)."""
    n_groups = 0
    for i in range(groups.shape[0]):
        n_groups = max(n_groups, groups[i] + 1)
    sq = np.zeros(n_groups)
    for i in range(x.shape[0]):
        sq[groups[i]] += x[i] * x[i]
    return sq


@njit(nogil=True, cache=True)
def group_soft_threshold(x, thresh, groups, out):
    """Group soft-threshold (prox of the group lasso, non-overlapping groups).

    ``groups[i]`` is the group index of coordinate ``i`` (0 .. n_groups - 1).
    Each group ``g`` is shrunk by ``max(1 - thresh / ||x_g||, 0)``.
    """
    sq = group_squared_norms(x, groups)
    for g in range(sq.shape[0]):
        norm = np.sqrt(sq[g])
        sq[g] = 1.0 - thresh / norm if norm > thresh else 0.0
    for i in range(x.shape[0]):
        out[i] = x[i] * sq[groups[i]]
    return out


@njit(nogil=True, cache=True)
def project_simplex(x, out):
    """Euclidean projection onto the probability simplex {z >= 0, sum z = 1}.

    Michelot's finite algorithm ("A finite algorithm for finding the
    projection of a point onto the canonical simplex of R^n", JOTA 50(1),
    1986): ``theta = (sum_S x - 1) / |S|`` over the active set ``S``, which
    starts as every entry and is restricted to ``{x > theta}`` until it stops
    changing (theta only grows, so at most ``n`` passes). Exact, like the
    sort-based formula of Held, Wolfe & Crowder (1974), but sort-free: keeping
    ``np.sort`` out of the prior chain saves its compile in every kernel that
    applies a prior. ``out`` may alias ``x``.
    """
    n = x.shape[0]
    total = 0.0
    for i in range(n):
        total += x[i]
    count = n
    theta = (total - 1.0) / n
    for _ in range(n):
        total = 0.0
        c = 0
        for i in range(n):
            if x[i] > theta:
                total += x[i]
                c += 1
        if c == count or c == 0:
            break
        count = c
        theta = (total - 1.0) / c
    for i in range(n):
        xi = x[i] - theta
        out[i] = xi if xi > 0.0 else 0.0
    return out


@njit(nogil=True, cache=True)
def clip_box(x, lower, upper, out):
    """Projection onto the box ``[lower, upper]`` (elementwise clipping)."""
    for i in range(x.shape[0]):
        out[i] = min(max(x[i], lower), upper)
    return out


@njit(nogil=True, cache=True)
def prox_row(u, prior, p1, p2, groups, out):
    """Prior's proximal map of one code vector, into ``out``.

    ``p1``/``p2`` are the prior's step-scaled parameters: the threshold for
    l1 / nonneg_l1 / group_l1, the shrink factors ``1 / (1 + a alpha)`` for
    ridge (p1) and two_sided_gaussian (p1 positive side, p2 negative side).
    """
    if prior == L1 or prior == NONNEG_L1:
        sign = 1 if prior == NONNEG_L1 else 0
        for j in range(u.shape[0]):
            out[j] = shrink(u[j], p1, sign)
    elif prior == RIDGE:
        for j in range(u.shape[0]):
            out[j] = p1 * u[j]
    elif prior == TWO_SIDED_GAUSSIAN:
        for j in range(u.shape[0]):
            out[j] = p1 * u[j] if u[j] >= 0.0 else p2 * u[j]
    elif prior == GROUP_L1:
        group_soft_threshold(u, p1, groups, out)
    else:
        project_simplex(u, out)


@njit(nogil=True, cache=True)
def prox_vjp_row(u, z, g, prior, p1, p2, groups, out):
    """``J_P(u)^T g`` into ``out``, with ``z = P(u)`` (all Jacobians symmetric)."""
    n = u.shape[0]
    if prior == L1 or prior == NONNEG_L1:
        for j in range(n):
            out[j] = g[j] if z[j] != 0.0 else 0.0
    elif prior == RIDGE:
        for j in range(n):
            out[j] = p1 * g[j]
    elif prior == TWO_SIDED_GAUSSIAN:
        for j in range(n):
            out[j] = p1 * g[j] if u[j] >= 0.0 else p2 * g[j]
    elif prior == GROUP_L1:
        # J = (1 - t/r) I + t u u^T / r^3 on groups with r = ||u_g|| > t
        sq = group_squared_norms(u, groups)
        dot = np.zeros(sq.shape[0])
        for j in range(n):
            dot[groups[j]] += u[j] * g[j]
        for j in range(n):
            r = np.sqrt(sq[groups[j]])
            if r > p1:
                c = p1 * dot[groups[j]] / (r * r * r)
                out[j] = (1.0 - p1 / r) * g[j] + c * u[j]
            else:
                out[j] = 0.0
    else:
        # projection onto the simplex: centring on the support
        total = 0.0
        count = 0
        for j in range(n):
            if z[j] > 0.0:
                total += g[j]
                count += 1
        mean = total / max(count, 1)
        for j in range(n):
            out[j] = g[j] - mean if z[j] > 0.0 else 0.0


@njit(nogil=True, cache=True)
def penalty_row(z, prior, alpha, negative_alpha, groups):
    """Prior penalty ``h(z)`` of one code vector (0 for the simplex)."""
    n = z.shape[0]
    h = 0.0
    if prior == L1 or prior == NONNEG_L1:
        for j in range(n):
            h += abs(z[j])
        return alpha * h
    if prior == RIDGE:
        for j in range(n):
            h += z[j] * z[j]
        return 0.5 * alpha * h
    if prior == TWO_SIDED_GAUSSIAN:
        for j in range(n):
            h += (alpha if z[j] >= 0.0 else negative_alpha) * z[j] * z[j]
        return 0.5 * h
    if prior == GROUP_L1:
        return alpha * np.sqrt(group_squared_norms(z, groups)).sum()
    return 0.0


@njit(nogil=True, cache=True)
def add_penalty_gradient(z, prior, alpha, negative_alpha, groups, out):
    """``out += grad h(z)`` (the subgradient that is 0 at 0 for l1 priors)."""
    n = z.shape[0]
    if prior == L1 or prior == NONNEG_L1:
        for j in range(n):
            if z[j] > 0.0:
                out[j] += alpha
            elif z[j] < 0.0:
                out[j] -= alpha
    elif prior == RIDGE:
        for j in range(n):
            out[j] += alpha * z[j]
    elif prior == TWO_SIDED_GAUSSIAN:
        for j in range(n):
            out[j] += (alpha if z[j] >= 0.0 else negative_alpha) * z[j]
    elif prior == GROUP_L1:
        sq = group_squared_norms(z, groups)
        for j in range(n):
            r = np.sqrt(sq[groups[j]])
            if r > 0.0:
                out[j] += alpha * z[j] / r
