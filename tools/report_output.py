"""Where the benchmarks and tables of ``tools/`` write: ``reports/``, beside what they print.

The tools run as scripts (``python tools/NAME.py``), so this module, beside them, is on their import path.
"""

import contextlib
import sys
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / "reports"


class _Both:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def printed_into(path):
    """Print as usual, and write what is printed into ``path`` too (its folder created)."""
    path = Path(path).resolve()  # before a tool changes its working folder
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as file, contextlib.redirect_stdout(_Both(sys.stdout, file)):
        yield
    print(f"wrote {path}", file=sys.stderr)
