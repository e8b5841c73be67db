"""Bounds on what one request may ask for, shared by the command line and the exported signatures.

A served model must not be crashed or tied up by a single call: ``sample(n=10**8)``
once took a TensorFlow process down at 8.7 GB, and ``log_likelihood(k=10**7)``
held it for 42 s per image. Larger jobs go through the Python API in batches.
"""

# Samples drawn by one call (the command line's --n, the export's sample n).
MAX_SAMPLES = 10_000
# Importance samples per example (--k, --anomaly-k, the export's log_likelihood k).
MAX_IMPORTANCE_SAMPLES = 100_000
# Examples x importance samples in one log_likelihood request of an export (about 4 s on 2 CPU cores).
MAX_LOG_LIKELIHOOD_DRAWS = 1_000_000
