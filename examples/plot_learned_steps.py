"""
==================================================
Learned step sizes approach 1 / L of the support
==================================================

ISTA moves with the step ``1 / L``, ``L = ||D||_2^2``, which is safe for any
code. Once the support ``S`` of the solution is found, the lasso is a smooth
problem on the atoms of ``S`` alone, whose step can be ``1 / L_S`` with
``L_S = ||D_S||_2^2``, much larger when ``S`` is small. Ablin, Moreau, Massias
& Gramfort (NeurIPS 2019) observed that a network learning only one step per
layer (SLISTA, ``LearnedSparseCoder(parametrization="step")``) learns steps
that grow from ``1 / L`` in the first layers to about ``1 / L_S`` in the last
ones, which is why it beats FISTA at high ``lambda``.

Here: their setup (256 unit-norm Gaussian atoms in 64 dimensions,
``lambda = 0.8 lambda_max``), the learned steps of a 20-layer network next to
the distribution of ``1 / L_S`` over the supports of the exact lasso
solutions of the training samples, and the test objective gap per depth.
The later layers' steps land inside that distribution; the first layers'
are erratic (a zero step makes a layer a no-op, which the next one's large
step makes up for), where the paper's grow smoothly from ``1 / L``: the
first layers of a network started from ``z_0 = 0`` can trade their steps
against each other at little cost.
"""

import matplotlib.pyplot as plt
import numpy as np

from skunroll import LearnedSparseCoder, sparse_encode

rng = np.random.default_rng(0)
n_atoms, n_features, lmbd = 256, 64, 0.8
D = rng.standard_normal((n_atoms, n_features))
D /= np.linalg.norm(D, axis=1, keepdims=True)


def draw(n):
    X = rng.standard_normal((n, n_atoms)) @ D
    return X / np.abs(X @ D.T).max(axis=1, keepdims=True)  # lambda_max = 1


X_train, X_test = draw(4000), draw(2000)

# %%
# Train a 20-layer step network, and read 1/L_S off the exact solutions.
coder = LearnedSparseCoder(
    D, n_layers=20, parametrization="step", alpha=lmbd, max_iter=10,
    random_state=0, n_jobs=2, verbose=1,
)  # fmt: skip
coder.fit(X_train)

Z = sparse_encode(X_train, D, algorithm="lasso", alpha=lmbd, n_jobs=2)
inv_L_S = []
for z in Z:
    S = np.flatnonzero(z)
    if S.size:
        inv_L_S.append(1.0 / np.linalg.norm(D[S], 2) ** 2)
inv_L_S = np.asarray(inv_L_S)
inv_L = 1.0 / coder.lipschitz_

# %%
# The learned steps, in units of 1/L, next to the distribution of 1/L_S.
fig, (ax0, ax1) = plt.subplots(
    1, 2, figsize=(10, 4), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
)
layers = np.arange(1, coder.n_layers + 1)
ax0.plot(layers, coder.steps_ / inv_L, "o-", label="learned step (SLISTA)")
ax0.axhline(1.0, color="k", ls="--", label="1 / L (ISTA)")
ax0.axhline(np.median(inv_L_S) / inv_L, color="C3", ls=":", label="median 1 / L_S")
ax0.set_xlabel("layer")
ax0.set_ylabel("step size / (1 / L)")
ax0.legend()
ax1.hist(inv_L_S / inv_L, bins=40, orientation="horizontal", color="C3", alpha=0.6)
ax1.set_xlabel("training samples")
ax1.set_title("1 / L_S of the lasso supports")
fig.tight_layout()

# %%
# Test objective gap per depth: ISTA, FISTA and the learned network's
# prefixes cannot be compared layer by layer (each depth is its own
# network), so train one per depth.
Z_star = sparse_encode(X_test, D, algorithm="lasso", alpha=lmbd, n_jobs=2)


def F(X, Z):
    R = X - Z @ D
    return np.mean(0.5 * np.sum(R * R, axis=1) + lmbd * np.abs(Z).sum(1))


f_star = F(X_test, Z_star)
depths = [1, 2, 4, 8, 12]
gaps = {"ISTA": [], "FISTA": [], "SLISTA (learned steps)": []}
for d in depths:
    for name, algo in (("ISTA", "ista"), ("FISTA", "fista")):
        Z_d = sparse_encode(X_test, D, algorithm=algo, alpha=lmbd, max_iter=d, tol=0)
        gaps[name].append(F(X_test, Z_d) - f_star)
    net = LearnedSparseCoder(
        D, n_layers=d, alpha=lmbd, max_iter=10, random_state=0, n_jobs=2
    ).fit(X_train)
    gaps["SLISTA (learned steps)"].append(-net.score(X_test) - f_star)

fig, ax = plt.subplots(figsize=(6, 4))
for name, values in gaps.items():
    ax.semilogy(depths, values, "o-", label=name)
ax.set_xlabel("depth (layers or iterations)")
ax.set_ylabel("test objective gap F - F*")
ax.legend()
fig.tight_layout()
plt.show()
