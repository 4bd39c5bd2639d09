"""The parametrisations of a learned unrolled coder, one class each.

Each maps its learned parameters to the general LISTA weights of every layer
(``Wx_t``, ``Wz_t``, ``theta_t``; see ``skunroll/_kernels/_learned.py``) and
pulls the kernel's gradients with respect to those weights back to its
parameters. Parameters are held in *normalised units*, 1 (or the dictionary
itself) at initialisation, so that one learning rate suits every problem
scale: with ``rho = 1 / L`` the ISTA step of ``D`` (``L = ||D||_2^2``),

- ``"step"`` (SLISTA, Ablin et al. 2019): ``s_t``, step ``rho_t = s_t rho``;
  ``Wx_t = rho_t D^T``, ``Wz_t = I - rho_t G``, ``theta_t = alpha rho_t``
  (the threshold stays tied to the step, as in ISTA).
- ``"alista"`` (Liu et al. 2019): the analytic weight ``W`` (rows ``w_i``
  minimising ``sum_j (w_i . d_j)^2`` under ``w_i . d_i = 1``), fixed;
  step ``gamma_t = a_t gamma`` and threshold ``theta_t = b_t alpha gamma``
  learned, ``Wx_t = gamma_t W^T``, ``Wz_t = I - gamma_t D W^T``, with
  ``gamma = 1 / ||D W^T||_2`` and ``theta = alpha gamma / mean_i ||d_i||^2``
  (the threshold in the units of the codes).
- ``"coupled"`` (LISTA-CP, Chen et al. 2018): a matrix ``W_t = rho V_t`` per
  layer (``V_t = D`` at first) and ``theta_t = b_t alpha rho``;
  ``Wx_t = W_t^T``, ``Wz_t = I - D W_t^T``.
- ``"lista"`` (Gregor & LeCun 2010, untied across layers): ``Wx_t = rho
  V_t`` (``V_t = D^T`` at first), ``Wz_t`` (``I - rho G`` at first) and a
  threshold per atom ``theta_t = b_t alpha rho``.

``"step"``, ``"coupled"`` and ``"lista"`` start as ISTA with step ``1 / L``;
``"alista"`` starts as ISTA with ``W`` in place of ``D`` in the residual's
back-projection (ALISTA's own starting point; ``W = D`` would not be ALISTA).
"""

import numpy as np


class Context:
    """What every parametrisation reads: the dictionary (float64), its Gram
    matrix, the ISTA step ``rho`` and ``alpha``."""

    def __init__(self, D, rho, alpha):
        self.D = np.ascontiguousarray(D, dtype=np.float64)
        self.DT = np.ascontiguousarray(self.D.T)
        self.G = self.D @ self.DT
        self.rho = float(rho)
        self.alpha = float(alpha)
        self.k, self.m = self.D.shape
        self.eye = np.eye(self.k)


def _tied(values, k):
    """Per-layer scalars as per-atom thresholds (T, k)."""
    return np.repeat(np.asarray(values, dtype=np.float64)[:, None], k, axis=1)


class Step:
    """SLISTA: one step per layer, threshold ``alpha`` times the step."""

    #: a step scales as ``D**step_exponent`` (``1 / L`` as ``1 / D**2``)
    step_exponent = -2

    def init(self, ctx, n_layers):
        return {"step": np.ones(n_layers)}

    def weights(self, params, ctx):
        rho = params["step"] * ctx.rho
        Wx = rho[:, None, None] * ctx.DT[None]
        Wz = ctx.eye[None] - rho[:, None, None] * ctx.G[None]
        return Wx, Wz, _tied(ctx.alpha * rho, ctx.k)

    def pullback(self, params, ctx, gWx, gWz, gtheta):
        g = np.einsum("tmk,mk->t", gWx, ctx.DT) - np.einsum("tjk,jk->t", gWz, ctx.G)
        g += ctx.alpha * gtheta.sum(axis=1)
        return {"step": ctx.rho * g}

    def steps(self, params, ctx):
        return params["step"] * ctx.rho

    def thresholds(self, params, ctx):
        return ctx.alpha * self.steps(params, ctx)


def alista_weight(D):
    """ALISTA's analytic weight: rows ``w_i = d_i M^+ / (d_i M^+ d_i^T)`` with
    ``M = D^T D``, the minimisers of ``sum_j (w_i . d_j)^2`` under ``w_i . d_i
    = 1`` (Liu, Chen, Wang & Yin, ICLR 2019, in closed form; ``M^+`` the
    pseudo-inverse when the atoms do not span the features)."""
    D = np.asarray(D, dtype=np.float64)
    P = D @ np.linalg.pinv(D.T @ D, hermitian=True)
    norms = np.einsum("ij,ij->i", P, D)
    bad = ~(np.abs(norms) > 1e-12 * np.max(np.abs(norms), initial=0.0))
    if np.any(bad) or not np.all(np.isfinite(norms)):
        raise ValueError(
            "parametrization='alista' needs d_i M^+ d_i^T > 0 for every atom "
            "d_i (M = D^T D); an atom of the dictionary is zero or numerically "
            "degenerate. Use another parametrization."
        )
    return P / norms[:, None]


class Alista:
    """ALISTA: the analytic ``W``, a step and a threshold learned per layer."""

    step_exponent = 0  # gamma has no unit

    def init(self, ctx, n_layers):
        ctx.W = alista_weight(ctx.D)
        ctx.WT = np.ascontiguousarray(ctx.W.T)
        ctx.DW = ctx.D @ ctx.WT
        ctx.gamma = 1.0 / np.linalg.norm(ctx.DW, 2)
        # the threshold's unit: alpha gamma is in units of x D (gamma has
        # none, W scaling as 1 / D), a threshold in those of the codes, x / D
        ctx.alista_unit = ctx.alpha * ctx.gamma / np.mean(np.sum(ctx.D**2, axis=1))
        return {"step": np.ones(n_layers), "threshold": np.ones(n_layers)}

    def weights(self, params, ctx):
        gamma = params["step"] * ctx.gamma
        Wx = gamma[:, None, None] * ctx.WT[None]
        Wz = ctx.eye[None] - gamma[:, None, None] * ctx.DW[None]
        return Wx, Wz, _tied(self.thresholds(params, ctx), ctx.k)

    def pullback(self, params, ctx, gWx, gWz, gtheta):
        g = np.einsum("tmk,mk->t", gWx, ctx.WT) - np.einsum("tjk,jk->t", gWz, ctx.DW)
        return {
            "step": ctx.gamma * g,
            "threshold": ctx.alista_unit * gtheta.sum(axis=1),
        }

    def steps(self, params, ctx):
        return params["step"] * ctx.gamma

    def thresholds(self, params, ctx):
        return params["threshold"] * ctx.alista_unit


class Coupled:
    """LISTA-CP: a weight matrix ``W_t`` per layer, ``Wz_t = I - D W_t^T``."""

    def init(self, ctx, n_layers):
        return {
            "weight": np.repeat(ctx.D[None], n_layers, axis=0),
            "threshold": np.ones(n_layers),
        }

    def weights(self, params, ctx):
        W = ctx.rho * params["weight"]  # (T, k, m)
        Wx = np.ascontiguousarray(W.transpose(0, 2, 1))
        Wz = ctx.eye[None] - np.einsum("im,tjm->tij", ctx.D, W)
        return Wx, Wz, _tied(self.thresholds(params, ctx), ctx.k)

    def pullback(self, params, ctx, gWx, gWz, gtheta):
        # d<A, D W^T>/dW = A^T D
        gW = gWx.transpose(0, 2, 1) - np.einsum("tij,im->tjm", gWz, ctx.D)
        return {
            "weight": ctx.rho * gW,
            "threshold": _threshold_unit(ctx) * gtheta.sum(axis=1),
        }

    def steps(self, params, ctx):
        return None

    def thresholds(self, params, ctx):
        return params["threshold"] * _threshold_unit(ctx)

    def from_weights(self, ctx, Wx, Wz, theta):
        """The parameters of the general weights ``(Wx, Wz, theta)`` when they
        have this form (``Wz_t = I - D Wx_t``, one threshold per layer)."""
        W = np.ascontiguousarray(Wx.transpose(0, 2, 1))
        coupled = ctx.eye[None] - np.einsum("im,tjm->tij", ctx.D, W)
        scale = max(1.0, float(np.max(np.abs(Wz))))
        if not (
            np.allclose(Wz, coupled, rtol=0, atol=1e-9 * scale)
            and np.allclose(theta, theta[:, :1], rtol=1e-12, atol=0)
        ):
            raise ValueError(
                "init's layers are not of the 'coupled' form (Wz_t = I - D W_t^T "
                "and one threshold per layer); a coder fitted with "
                "parametrization 'step' or 'coupled' is."
            )
        return {
            "weight": W / ctx.rho,
            "threshold": theta[:, 0] / _threshold_unit(ctx),
        }


def _threshold_unit(ctx):
    """The unit of the normalised thresholds, ``alpha / L``."""
    return ctx.alpha * ctx.rho if ctx.alpha * ctx.rho > 0 else 1.0


class Lista:
    """LISTA, untied: ``Wx_t``, ``Wz_t`` and a threshold per atom per layer."""

    def init(self, ctx, n_layers):
        return {
            "input_weight": np.repeat(ctx.DT[None], n_layers, axis=0),
            "code_weight": np.repeat((ctx.eye - ctx.rho * ctx.G)[None], n_layers, 0),
            "threshold": np.ones((n_layers, ctx.k)),
        }

    def weights(self, params, ctx):
        return (
            ctx.rho * params["input_weight"],
            params["code_weight"],
            self.thresholds(params, ctx),
        )

    def pullback(self, params, ctx, gWx, gWz, gtheta):
        return {
            "input_weight": ctx.rho * gWx,
            "code_weight": gWz,
            "threshold": _threshold_unit(ctx) * gtheta,
        }

    def steps(self, params, ctx):
        return None

    def thresholds(self, params, ctx):
        return params["threshold"] * _threshold_unit(ctx)

    def from_weights(self, ctx, Wx, Wz, theta):
        """The parameters of any general weights ``(Wx, Wz, theta)``."""
        return {
            "input_weight": Wx / ctx.rho,
            "code_weight": Wz.copy(),
            "threshold": theta / _threshold_unit(ctx),
        }


PARAMETRIZATIONS = {
    "step": Step(),
    "alista": Alista(),
    "coupled": Coupled(),
    "lista": Lista(),
}
