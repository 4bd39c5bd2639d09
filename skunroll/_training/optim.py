"""First-order optimisers of the dictionary: Adam and plain SGD.

One small class each with ``step(param, grad, learning_rate)`` updating
``param`` in place; the state is kept in float64 whatever the parameter's
dtype, so that a float32 fit accumulates moments without drift. Also the
``info`` a training callback receives (``callback_info``).
"""

import time

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
    """

    def __init__(self, shape, beta1=0.9, beta2=0.999, eps=1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(shape)
        self.v = np.zeros(shape)
        self.n_steps = 0

    def step(self, param, grad, learning_rate):
        self.n_steps += 1
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


def callback_info(state, objective, start, name, param):
    """The ``info`` dict a training ``callback`` receives after a step, with
    the learned parameter under ``name`` as a read-only view."""
    view = param.view()
    view.flags.writeable = False
    return {
        "n_iter": state.n_epochs,
        "n_steps": state.n_steps,
        "objective": objective,
        "learning_rate": state.learning_rate,
        "elapsed": time.perf_counter() - start,
        name: view,
    }
