"""Forward and hand-written backward passes of the sparse-autoencoder encoders.

Atoms are the rows of ``D`` (n_components, n_features), ``b`` is the pre-bias
(zeros without an intercept), and the decoder is ``x_hat = z D + b``.

Matching pursuit (``mp_chunk``), unrolled as in Costa et al. (NeurIPS 2025):
from ``r_0 = x - b``, ``z = 0`` and the correlations ``c = r_0 D^T`` (computed
by the caller, one BLAS product per chunk), step ``t`` takes the atom ``j_t``
of largest ``|c_j|`` (of largest ``c_j`` with ``positive``), sets
``a_t = c_{j_t}``, ``z_{j_t} = a_t``, ``r_{t+1} = r_t - a_t d_{j_t}`` and
updates the correlations with a row of the Gram matrix, ``c <- c - a_t G_{j_t}``
(never ``r D^T`` again). A sample stops after ``n_steps`` steps, when its
residual norm falls to ``tol ||x||`` (``||r||^2`` is updated in closed form,
``||r - a d||^2 = ||r||^2 - a^2 (2 - G_jj)``), when the chosen atom is already
active, or when no correlation is left (none above ``64 eps ||x - b||``,
which is rounding; no positive one with ``positive``).

Its loss is ``L = 0.5 ||r_s||^2`` (``s`` steps taken). The backward pass holds
the selections fixed and runs back through the steps with the adjoint
``p_t = dL/dr_t`` (``p_s = r_s``) and ``r_t = r_{t+1} + a_t d_t`` recovered on
the way back (no ``T``-deep buffer of residuals):

    alpha_t = dL/da_t = -<p_{t+1}, d_t>  (+ alpha sign(a_t) with the penalty)
    dL/dd_t += -a_t p_{t+1} + alpha_t r_t
    p_t = p_{t+1} + alpha_t d_t,         dL/db = -p_0.

Every term touches the ``s`` selected rows of ``D`` only: ``O(s n_features)``
per sample, never an ``(n_samples, n_components)`` gradient.

Shallow encoders (``shallow_chunk``): ``a = (x - b) D^T + b_enc`` (computed by
the caller), ``z = TopK(a)`` (the ``k`` largest ``|a_j|``, or the ``k`` largest
positive ``a_j`` with ``positive``) or ``z = ReLU(a)``. With
``g_j = dL/da_j = <x_hat - x, d_j> (+ alpha sign z_j)`` on the active set, the
gradients are ``dL/dd_j = z_j (x_hat - x) + g_j (x - b)``, ``dL/db_enc = g``,
``dL/db = (x_hat - x) - sum_j g_j d_j``.

Both kernels write the codes as rows of sorted (index, value) pairs, the
per-row loss (for re-drawing atoms from the worst-reconstructed samples), and
add the summed loss, penalty ``alpha ||z||_1`` and gradients.
"""

import numpy as np
from numba import njit

# what a kernel computes (as in _unrolled.py)
FORWARD, DEC, AE = 0, 1, 2


@njit(nogil=True, cache=True)
def _sort_pairs(idx, val, count):
    """Insertion sort of the first ``count`` pairs by index (``count`` small)."""
    for a in range(1, count):
        j = idx[a]
        v = val[a]
        b = a - 1
        while b >= 0 and idx[b] > j:
            idx[b + 1] = idx[b]
            val[b + 1] = val[b]
            b -= 1
        idx[b + 1] = j
        val[b + 1] = v


@njit(nogil=True, cache=True)
def _residual(x, b, D, sel, amp, count, r):
    """``r = x - b - sum_t amp[t] D[sel[t]]``; returns ``0.5 ||r||^2``."""
    for f in range(x.shape[0]):
        r[f] = x[f] - b[f]
    for t in range(count):
        d = D[sel[t]]
        a = amp[t]
        for f in range(r.shape[0]):
            r[f] -= a * d[f]
    loss = 0.0
    for f in range(r.shape[0]):
        loss += 0.5 * r[f] * r[f]
    return loss


BLOCK = 64
"""The correlations are scanned in blocks of this many atoms: the update
``c -= a G_j`` keeps each block's largest key, and the argmax looks at the
blocks' maxima, then inside the best block. The keys are compared as
integers: the bits of a float ``v`` read as a signed integer (the same width)
order the non-negative floats as the floats do, so ``bits & mask`` is the key
of ``|v|`` (mask: all bits but the sign) or of ``v`` kept when positive (mask:
all bits; a negative float reads as a negative integer). Integer maxima
vectorise; floating-point ones do not here."""


@njit(nogil=True, cache=True, fastmath=True)
def _axpy(c, a, g):
    for j in range(c.shape[0]):
        c[j] -= a * g[j]


@njit(nogil=True, cache=True)
def _block_keys(ci, mask, bmax):
    """The largest key of every block (full blocks with a fixed trip count,
    which vectorises, then the tail)."""
    k = ci.shape[0]
    full = k // BLOCK
    zero = mask ^ mask
    for q in range(full):
        lo = q * BLOCK
        top = zero
        for j in range(lo, lo + BLOCK):
            v = ci[j] & mask
            top = v if v > top else top
        bmax[q] = top
    if full < bmax.shape[0]:
        top = zero
        for j in range(full * BLOCK, k):
            v = ci[j] & mask
            top = v if v > top else top
        bmax[full] = top


@njit(nogil=True, cache=True)
def _update(c, ci, a, g, mask, bmax):
    """``c -= a g`` and the largest key of every block (``ci`` is ``c`` read
    as integers, ``mask`` as above)."""
    _axpy(c, a, g)
    _block_keys(ci, mask, bmax)


@njit(nogil=True, cache=True)
def _locate(ci, mask, bmax):
    """The first atom of largest positive key, or -1 if no key is positive."""
    best_block = -1
    top = mask ^ mask
    for q in range(bmax.shape[0]):
        if bmax[q] > top:
            top = bmax[q]
            best_block = q
    if best_block < 0:
        return -1
    lo = best_block * BLOCK
    for j in range(lo, min(lo + BLOCK, ci.shape[0])):
        if ci[j] & mask == top:
            return j
    return -1


@njit(nogil=True, cache=True)
def mp_chunk(
    X, C, Ci, D, gram, b, n_steps, mask, tol, alpha, mode,
    idx_out, val_out, nnz_out, row_loss, grad, grad_b, losses,
):  # fmt: skip
    """Unrolled matching pursuit over a chunk of rows (see the module docstring).

    ``C`` holds ``(X - b) D^T`` on entry and is overwritten (the running
    correlations); ``Ci`` is ``C`` viewed as integers of its width and
    ``mask`` of that type selects the keys: all bits but the sign (signed
    pursuit) or all bits (``positive``), see ``BLOCK``.
    ``idx_out``/``val_out`` (n, n_steps) receive each row's atoms and
    coefficients sorted by atom, ``nnz_out`` their number,
    ``row_loss`` ``0.5 ||r_s||^2``. ``losses[0] +=`` the summed loss,
    ``losses[1] +=`` ``alpha sum |z|``. ``mode`` DEC adds the gradient with
    the codes held fixed, AE the gradient through the steps (with the penalty
    ``alpha ||z||_1`` when ``alpha > 0``), to ``grad`` (n_components,
    n_features) and ``grad_b`` (n_features,).
    """
    k, m = D.shape
    dt = D.dtype
    active = np.zeros(k, dtype=np.bool_)
    sel = np.zeros(n_steps, dtype=np.int64)
    amp = np.zeros(n_steps, dtype=dt)
    r = np.zeros(m, dtype=dt)
    p = np.zeros(m, dtype=dt)
    bmax = np.zeros(-(-k // BLOCK), dtype=Ci.dtype)
    for i in range(X.shape[0]):
        x = X[i]
        c = C[i]
        ci = Ci[i]
        xn2 = 0.0
        rn2 = 0.0
        for f in range(m):  # in float64: float32 data near its range overflow
            xf = np.float64(x[f])
            xn2 += xf * xf
            rn2 += (xf - b[f]) * (xf - b[f])
        threshold = tol * tol * xn2
        # a correlation this small is rounding: the residual is orthogonal
        tiny = 64.0 * np.finfo(dt).eps * np.sqrt(rn2)
        s = 0
        _block_keys(ci, mask, bmax)
        for _ in range(n_steps):
            if rn2 <= threshold:
                break
            best = _locate(ci, mask, bmax)
            if best < 0 or active[best]:
                break
            a = c[best]
            if not np.isfinite(a):  # (X - b) D^T overflowed: no code, inf loss
                losses[0] = np.inf
                break
            if abs(a) <= tiny:
                break
            active[best] = True
            sel[s] = best
            amp[s] = a
            s += 1
            if s == n_steps:
                break  # the correlations after the last step are not needed
            g = gram[best]
            _update(c, ci, a, g, mask, bmax)
            rn2 -= a * a * (2.0 - g[best])
        for t in range(s):
            active[sel[t]] = False
        loss = _residual(x, b, D, sel, amp, s, r)
        row_loss[i] = loss
        losses[0] += loss
        penalty = 0.0
        for t in range(s):
            penalty += abs(amp[t])
        losses[1] += alpha * penalty
        if mode == DEC:  # codes fixed: d/dD_j of 0.5||zD + b - x||^2
            for t in range(s):
                d_grad = grad[sel[t]]
                a = amp[t]
                for f in range(m):
                    d_grad[f] -= a * r[f]
            for f in range(m):
                grad_b[f] -= r[f]
        elif mode == AE:
            for f in range(m):
                p[f] = r[f]  # dL/dr_s
            for t in range(s - 1, -1, -1):
                j = sel[t]
                d = D[j]
                a = amp[t]
                dot = 0.0
                for f in range(m):
                    r[f] += a * d[f]  # r_t from r_{t+1}
                    dot += p[f] * d[f]
                at = -dot
                if alpha > 0.0:
                    at += alpha * (1.0 if a > 0 else (-1.0 if a < 0 else 0.0))
                d_grad = grad[j]
                for f in range(m):
                    d_grad[f] += at * r[f] - a * p[f]
                    p[f] += at * d[f]
            for f in range(m):
                grad_b[f] -= p[f]
        for t in range(s):
            idx_out[i, t] = sel[t]
            val_out[i, t] = amp[t]
        _sort_pairs(idx_out[i], val_out[i], s)
        nnz_out[i] = s


@njit(nogil=True, cache=True)
def _top_k(a, n_top, positive, top_idx, top_key):
    """Indices of the ``n_top`` largest keys (``|a|``, or ``a`` with
    ``positive``, keeping positive ones only) in ``top_idx``; their count."""
    count = 0
    low = 0  # position of the smallest kept key once full
    for j in range(a.shape[0]):
        key = a[j] if positive else abs(a[j])
        if not key > 0:
            continue
        if count < n_top:
            top_idx[count] = j
            top_key[count] = key
            count += 1
            if count == n_top:
                low = 0
                for q in range(1, n_top):
                    if top_key[q] < top_key[low]:
                        low = q
        elif key > top_key[low]:
            top_idx[low] = j
            top_key[low] = key
            low = 0
            for q in range(1, n_top):
                if top_key[q] < top_key[low]:
                    low = q
    return count


@njit(nogil=True, cache=True)
def shallow_chunk(
    X, A, D, b, n_top, positive, alpha, mode,
    idx_out, val_out, nnz_out, row_loss, grad, grad_b, grad_enc, losses,
):  # fmt: skip
    """TopK (``n_top > 0``) or ReLU (``n_top == 0``) encoder over a chunk of
    rows (see the module docstring). ``A`` holds ``(X - b) D^T + b_enc``.

    Outputs as ``mp_chunk``; ``idx_out``/``val_out`` have ``n_top`` columns
    (``n_components`` for ReLU). ``mode`` AE also adds the encoder's terms
    and ``grad_enc`` (n_components,), the gradient of the encoder bias.
    """
    k, m = D.shape
    dt = D.dtype
    cap = n_top if n_top > 0 else k
    sel = np.zeros(cap, dtype=np.int64)
    amp = np.zeros(cap, dtype=dt)
    key = np.zeros(cap, dtype=dt)
    r = np.zeros(m, dtype=dt)
    for i in range(X.shape[0]):
        x = X[i]
        a = A[i]
        if n_top > 0:
            s = _top_k(a, n_top, positive, sel, key)
        else:
            s = 0
            for j in range(k):
                if a[j] > 0:
                    sel[s] = j
                    s += 1
        for t in range(s):
            amp[t] = a[sel[t]]
        _sort_pairs(sel, amp, s)
        loss = _residual(x, b, D, sel, amp, s, r)  # r = x - x_hat
        row_loss[i] = loss
        losses[0] += loss
        penalty = 0.0
        for t in range(s):
            penalty += abs(amp[t])
        losses[1] += alpha * penalty
        if mode >= DEC:
            for t in range(s):
                d_grad = grad[sel[t]]
                z = amp[t]
                for f in range(m):
                    d_grad[f] -= z * r[f]
            for f in range(m):
                grad_b[f] -= r[f]
        if mode == AE:
            for t in range(s):
                j = sel[t]
                d = D[j]
                dot = 0.0
                for f in range(m):
                    dot += r[f] * d[f]
                g = -dot
                if alpha > 0.0:
                    g += alpha * (1.0 if amp[t] > 0 else -1.0)
                grad_enc[j] += g
                d_grad = grad[j]
                for f in range(m):
                    d_grad[f] += g * (x[f] - b[f])
                    grad_b[f] -= g * d[f]
        for t in range(s):
            idx_out[i, t] = sel[t]
            val_out[i, t] = amp[t]
        nnz_out[i] = s
