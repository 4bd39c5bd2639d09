"""What every fit shares: atomicity and scikit-learn's callback API.

``atomic`` wraps ``fit`` and ``partial_fit``: a call that raises leaves the
estimator exactly as it was (a fresh one stays unfitted, a fitted one keeps
every old attribute). Fitted attributes are always *replaced*, never mutated
in place, and training works on copies, so a shallow snapshot of the
instance's ``__dict__`` is enough.

scikit-learn >= 1.9 has callbacks (``est.set_callbacks(ProgressBar())``);
with older versions the mixin is empty and ``with_callbacks`` does nothing.
"""

import functools

try:  # scikit-learn >= 1.9
    from sklearn.callback import CallbackSupportMixin, with_callbacks
except ImportError:  # pragma: no cover - older scikit-learn

    class CallbackSupportMixin:
        """Stand-in of scikit-learn's mixin (scikit-learn < 1.9 has none)."""

    def with_callbacks(method):
        return method


def atomic(method):
    """Restore the estimator's attributes if ``method`` raises."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    return wrapper
