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
    """Adam of Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015.

    The moments are re-scaled for their bias ``1 - beta**t``, as in the paper.
    Adam's step does not depend on the scale of the gradient, but its second
    moment ``g**2`` overflows for gradients above ~1e154 (data of ~1e80) and
    underflows below ~1e-162: the moments are therefore kept in units of a
    power of two ``scale`` (1 for gradients between 2**-30 and 2**30, so that
    ordinary fits are bit-identical to textbook Adam), re-chosen when a
    gradient leaves that range; ``eps`` is in those units.
    """

    RANGE = 2.0**30

    def __init__(self, shape, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.n_steps = 0
        self.scale = 1.0

    def _rescale(self, grad):
        size = float(np.max(np.abs(grad))) if np.size(grad) else 0.0
        if not (size > 0 and np.isfinite(size)):
            return
        if self.scale / self.RANGE <= size <= self.scale * self.RANGE:
            return
        scale = (
            1.0 if 1 / self.RANGE <= size <= self.RANGE else 2.0 ** round(np.log2(size))
        )
        ratio = self.scale / scale
        self.m *= ratio
        self.v *= ratio  # twice: ratio**2 alone may overflow
        self.v *= ratio
        self.scale = scale

    def step(self, param, grad, learning_rate):
        self.n_steps += 1
        self._rescale(grad)
        if self.scale != 1.0:
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
