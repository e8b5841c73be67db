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
