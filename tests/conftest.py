import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The team's and CI's copy of the Free Spoken Digit Dataset sits in ../shared beside the checkout
# (the library itself never looks there: users give data_dir or $VAE_ZOO_FSDD).
_SHARED_FSDD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data", "fsdd.npz")
if os.path.isfile(_SHARED_FSDD):
    os.environ.setdefault("VAE_ZOO_FSDD", os.path.normpath(_SHARED_FSDD))

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def interrupted_at_epoch(monkeypatch):
    """``interrupted_at_epoch(n, run)``: call ``run()`` with the runner raising KeyboardInterrupt as epoch n begins
    (a kill between epochs, in this process), then put the runner back."""
    from vae_zoo.training import runner

    def interrupt(epoch_to_stop, run):
        guard = runner.DivergenceGuard

        class Interrupted(guard):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == epoch_to_stop:
                    raise KeyboardInterrupt("interrupted")

        monkeypatch.setattr(runner, "DivergenceGuard", Interrupted)
        try:
            run()
        except KeyboardInterrupt:
            pass
        finally:
            monkeypatch.setattr(runner, "DivergenceGuard", guard)

    return interrupt

