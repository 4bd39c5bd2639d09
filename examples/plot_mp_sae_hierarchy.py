"""
=====================================================
Matching pursuit vs shallow sparse autoencoders
=====================================================

Sparse autoencoders (SAEs) take the activations of a model apart into
concepts. When concepts form a hierarchy (a parent, and children that refine
it), their directions are coherent, and a one-layer encoder, which reads every
code off one product ``x D^T``, confuses them. Matching pursuit removes each
chosen atom from the residual before the next choice (Costa et al., NeurIPS
2025).

The MP-SAE paper's toy data (:func:`skunroll.datasets.make_sae_hierarchy`):
8 parent concepts with 4 mutually exclusive children each, parents and
siblings at cosine ``coherence``. :class:`~skunroll.UnrolledDictionaryLearning`
learns 40 atoms with the matching-pursuit encoder and with the TopK and ReLU
shallow encoders (one parameter apart: ``encoder``); the figure shows the
absolute cosine of every true feature with every learned atom, atoms in the
order of their Hungarian match, so a recovered dictionary is a bright
diagonal.
"""

# %%
# Data and fits
# -------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_sae_hierarchy
from skunroll.metrics import explained_variance, matched_cosine

COHERENCE = 0.5
X, features, codes = make_sae_hierarchy(
    10_000, coherence=COHERENCE, noise=0.01, random_state=0
)
k = int(np.count_nonzero(codes, axis=1).max())
print(f"{X.shape[0]} samples of {X.shape[1]} features, {features.shape[0]} "
      f"concepts, at most {k} active per sample")  # fmt: skip

fits = {}
for encoder in ("mp", "topk", "relu"):
    fits[encoder] = UnrolledDictionaryLearning(
        features.shape[0], encoder=encoder, n_nonzero_coefs=k, alpha=0.05,
        fit_intercept=True,
        learning_rate=0.01, max_iter=20, tol=0, random_state=0,
    ).fit(X)  # fmt: skip
    est = fits[encoder]
    r2 = explained_variance(X, est.inverse_transform(est.transform(X)))
    cos = matched_cosine(features, est.components_)
    print(f"{encoder:5s} matched cosine {cos:.3f}  R2 {r2:.3f}")

# %%
# Learned atoms against the true features
# ---------------------------------------
# Rows: the 8 parents, then their children; columns: the learned atoms
# matched to them.
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharey=True)
for ax, (encoder, est) in zip(axes, fits.items(), strict=True):
    cos = np.abs(features @ est.components_.T)
    rows, cols = linear_sum_assignment(-cos)
    image = ax.imshow(cos[:, cols], vmin=0, vmax=1, cmap="magma")
    ax.axhline(7.5, color="w", lw=0.8)
    ax.axvline(7.5, color="w", lw=0.8)
    ax.set_title(
        f"{encoder}: matched cosine {np.mean(cos[rows, cols]):.2f}", fontsize=10
    )
    ax.set_xlabel("learned atom (matched order)")
axes[0].set_ylabel("true feature (parents, then children)")
fig.colorbar(image, ax=axes, shrink=0.8, label="|cosine|")
plt.show()

# %%
# A bright diagonal entry is a concept that one atom recovered; a row lit
# across several columns is a concept spread over several atoms, a column lit
# down several rows an atom that mixes concepts (parents absorbed into their
# children, the failure the MP-SAE paper describes for shallow encoders).
# ``benchmarks/bench_sae.py --part a`` sweeps the coherence from 0.1 to 0.8
# with scikit-learn's dictionary learning as a reference.
