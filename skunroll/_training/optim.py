"""First-order optimisers of the dictionary: Adam and plain SGD.

One small class each with ``step(param, grad, learning_rate)`` updating
``param`` in place; the state is kept in float64 whatever the parameter's
dtype, so that a float32 fit accumulates moments without drift.
"""

import numpy as np


class SGD:
    """Plain (stochastic) gradient descent ``param -= learning_rate * grad``."""

    def __init__(self, shape):
        self.n_steps = 0

    def step(self, param, grad, learning_rate):
        self.n_steps += 1
        param -= (learning_rate * grad).astype(param.dtype, copy=False)


class Adam:
    """Adam of Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015,
    with ``eps`` relative to the scale of the gradients.

    The moments are re-scaled for their bias ``1 - beta**t``, as in the paper.
    Adam's step does not depend on the scale of the gradient, except through
    ``eps``, which textbook Adam adds in absolute units: data scaled by
    ``c`` give gradients scaled by ``c**2``, and for ``c`` around 1e-3 a fixed
    ``eps = 1e-8`` is no longer negligible (a recording in volts and the same
    one in microvolts learned different atoms). The moments are therefore kept
    in units of a power of two ``scale``: the magnitude of the first gradient,
    re-chosen when a gradient moves more than ``RANGE`` away from it (which
    also keeps ``g**2`` from overflowing above ~1e154 or underflowing below
    ~1e-162); ``eps`` is in those units. Data scaled by a power of two then
    train bit for bit the same, up to the scale; at ordinary scales this is
    textbook Adam with ``eps`` times that power of two.
    """

    RANGE = 2.0**30

    def __init__(self, shape, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.n_steps = 0
        self.scale = None  # set by the first non-zero finite gradient

    def _rescale(self, grad):
        size = float(np.max(np.abs(grad))) if np.size(grad) else 0.0
        if not (size > 0 and np.isfinite(size)):
            return
        if self.scale is not None and (
            self.scale / self.RANGE <= size <= self.scale * self.RANGE
        ):
            return
        scale = 2.0 ** round(np.log2(size))
        if self.scale is not None:
            ratio = self.scale / scale
            self.m *= ratio
            self.v *= ratio  # twice: ratio**2 alone may overflow
            self.v *= ratio
        self.scale = scale

    def step(self, param, grad, learning_rate):
        self.n_steps += 1
        self._rescale(grad)
        if self.scale is not None and self.scale != 1.0:
            grad = grad / self.scale
        b1, b2 = self.beta1, self.beta2
        self.m *= b1
        self.m += (1.0 - b1) * grad
        self.v *= b2
        self.v += (1.0 - b2) * np.square(grad)
        m_hat = self.m / (1.0 - b1**self.n_steps)
        v_hat = self.v / (1.0 - b2**self.n_steps)
        update = learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)
        param -= update.astype(param.dtype, copy=False)

    def reset_rows(self, rows):
        """Forget the moments of re-drawn atoms."""
        self.m[rows] = 0.0
        self.v[rows] = 0.0


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


class LineSearch:
    """Gradient descent with a backtracking (Armijo) line search, jointly over
    a dict of parameters, on the objective of the minibatch the gradient was
    computed on (full-batch, it is the training of Ablin et al., NeurIPS 2019;
    on minibatches, the stochastic line search of Vaswani et al., NeurIPS
    2019).

    A step is ``p - lr g``, accepted when the objective decreases by at least
    ``ARMIJO lr ||g||^2``; otherwise ``lr`` is halved and the step retried (at
    most ``MAX_HALVINGS`` times, after which the parameters and ``lr`` are left
    as they were). An accepted step multiplies ``lr`` by ``growth`` for the next one
    (2 by default; Vaswani et al. grow it by ``2 ** (batch / n_samples)``, once
    per epoch, which trained ``LearnedSparseCoder`` worse). The first ``lr``
    moves the parameters by ``FIRST_MOVE`` of their norm, so that the search
    does not depend on the scale of the objective. Unlike Adam, whose
    per-coordinate normalisation moves every coordinate alike when their
    gradients are proportional (as the step sizes of successive layers
    are), it moves each parameter by its own gradient.
    """

    ARMIJO = 1e-4
    MAX_HALVINGS = 40
    FIRST_MOVE = 1e-2

    def __init__(self, growth=2.0):
        self.growth = float(growth)
        self.lr = None
        self.n_steps = 0
        self.n_evaluations = 0

    def step(self, params, grads, objective, evaluate, project=None):
        """One step from ``params`` (dict of arrays, updated in place) with
        ``grads`` at ``objective``; ``evaluate(candidate)`` is the objective of
        a candidate dict, ``project(candidate)`` (in place) keeps it feasible.
        Returns True when a step was accepted."""
        g2 = sum(float(np.sum(np.square(g))) for g in grads.values())
        if not g2 > 0:
            return False
        if self.lr is None:
            p2 = sum(float(np.sum(np.square(p))) for p in params.values())
            self.lr = self.FIRST_MOVE * np.sqrt(max(p2, 1.0) / g2)
        lr_before = self.lr
        for _ in range(self.MAX_HALVINGS):
            candidate = {k: p - self.lr * grads[k] for k, p in params.items()}
            if project is not None:
                project(candidate)
            value = evaluate(candidate)
            self.n_evaluations += 1
            if np.isfinite(value) and value <= objective - self.ARMIJO * self.lr * g2:
                for k, p in params.items():
                    p[...] = candidate[k]
                self.lr *= self.growth
                self.n_steps += 1
                return True
            self.lr /= 2.0
        self.lr = lr_before  # a failed search does not shrink the next one's start
        return False
