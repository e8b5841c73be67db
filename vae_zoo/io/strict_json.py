"""JSON that every parser reads: Python's ``json`` writes NaN and Infinity, which are not JSON.

Cards, reports and the command line's output go through ``dumps``: a
non-finite number becomes ``null`` (``JSON.parse`` and ``jq`` then read the
file), and numpy scalars and arrays become plain numbers and lists.
"""

import json
import math


def plain(value):
    """``value`` with non-finite floats as None, tuples and arrays as lists, numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars and arrays
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, **options):
    return json.dumps(plain(value), allow_nan=False, **options)
