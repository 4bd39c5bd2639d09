"""
==================================================
Archetypal dictionaries: atoms in the data's hull
==================================================

An archetypal dictionary (A-SAE, Fel et al., ICML 2025) keeps every atom a
convex combination of candidate points of the data (k-means centroids),
``D = normalise(W C + Lambda)``, with ``W`` on the simplex and a small
relaxation ``||Lambda_i|| <= delta`` (RA-SAE when ``delta > 0``). Here the
data are sparse convex mixtures of 6 planted archetypes in 16 dimensions,
with noise, and we learn twice as many atoms as there are archetypes, with
:class:`~skunroll.UnrolledDictionaryLearning` and ``dictionary="free"``
(unit-norm atoms anywhere) or ``dictionary="archetypal"``.
"""

# %%
# Data and three fits
# -------------------
import itertools

import matplotlib.pyplot as plt
import numpy as np

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_archetypal_data
from skunroll.metrics import dictionary_stability, explained_variance, matched_cosine

X, archetypes, weights = make_archetypal_data(
    2000, 16, 6, n_nonzero_coefs=3, noise=0.05, random_state=0
)
methods = {
    "free": {},
    "A-SAE (delta=0)": {"dictionary": "archetypal"},
    "RA-SAE (delta=0.1)": {"dictionary": "archetypal", "delta": 0.1},
}
seeds = range(3)
fits = {
    name: [
        UnrolledDictionaryLearning(
            12,
            alpha=0.1,
            positive_code=True,
            max_iter=30,
            tol=0,
            random_state=seed,
            **params,
        ).fit(X)  # fmt: skip
        for seed in seeds
    ]
    for name, params in methods.items()
}
for name, ests in fits.items():
    est = ests[0]
    r2 = explained_variance(X, est.inverse_transform(est.transform(X)))
    print(
        f"{name:>20}: matched cosine to the archetypes "
        f"{matched_cosine(archetypes, est.components_):.3f}, R^2 {r2:.3f}"
    )

# %%
# Atoms against the planted archetypes
# ------------------------------------
# The plane of the data's two leading principal directions. The archetypes
# and the atoms are unit vectors, so an atom on an archetype's direction lands
# on it. The free atoms that do not land on an archetype fit the noise and
# spread anywhere; the archetypal ones stay among the candidates, inside the
# cone of the data.
mean = X.mean(axis=0)
_, _, Vt = np.linalg.svd(X - mean, full_matrices=False)
P = Vt[:2].T
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
ax = axes[0]
ax.scatter(*(X @ P).T, s=3, color="0.8", label="samples")
cand = fits["A-SAE (delta=0)"][0].candidates_
ax.scatter(*(cand @ P).T, s=12, color="C0", alpha=0.5, label="candidates C")
ax.scatter(*(archetypes @ P).T, s=220, marker="*", color="k", label="archetypes")
for (name, ests), marker, color in zip(
    fits.items(), ("+", "x", "1"), ("C2", "C3", "C1"), strict=True
):
    ax.scatter(*(ests[0].components_ @ P).T, s=70, marker=marker, color=color,
               label=f"{name} atoms")  # fmt: skip
ax.set(title="12 atoms, 6 planted archetypes (PCA plane)", xticks=[], yticks=[])
ax.legend(fontsize=8, loc="best")

# %%
# Recovery and stability over seeds
# ---------------------------------
# Right: the cosine of every planted archetype with the atom matched to it
# (Hungarian matching, :func:`~skunroll.metrics.matched_cosine`), for the
# first seed. The seeds differ in the candidates (k-means), the initial atoms
# and the order of the minibatches; the stability of a method is the matched
# cosine of the atoms of two of its fits
# (:func:`~skunroll.metrics.dictionary_stability`), averaged over the pairs.
# ``benchmarks/bench_sae_archetypal.py`` sets it against the stability of the
# dictionaries the fits start from.
ax = axes[1]
width = 0.8 / len(methods)
colors = ("C2", "C3", "C1")  # as in the left panel
for i, (name, ests) in enumerate(fits.items()):
    per_archetype = matched_cosine(archetypes, ests[0].components_, per_atom=True)
    pairs = itertools.combinations(ests, 2)
    stability = np.mean([dictionary_stability(a, b) for a, b in pairs])
    ax.bar(np.arange(6) + (i - 1) * width, per_archetype, width, color=colors[i],
           label=f"{name}: stability {stability:.2f}")  # fmt: skip
ax.set(
    xlabel="planted archetype",
    ylabel="|cos| with its matched atom",
    ylim=(0.9, 1.0),
    title="Recovery of the archetypes",
)
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()
