"""Whole-process time and TensorFlow log lines of vae-zoo commands, for one or more checkouts side by side.

    python tools/bench_startup.py                       # this checkout
    python tools/bench_startup.py /path/to/old/checkout .  # e.g. a worktree of an earlier commit, then this one
    python tools/bench_startup.py OLD . --labels "0.2.0" "now"   # the start-up table of docs/speed.md

Each command runs in a fresh interpreter (the console script's entry point,
``vae_zoo.cli:run``, or ``main`` where a checkout has no ``run``), best of three,
on the bundled pretrained ``vae.mnist_mini``. Prints a markdown table and stores it as JSON in ``--out``
(default ``reports/startup.json``), from which ``tools/write_readme.py`` writes the README's table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report_output import REPORTS

COMMANDS = [["--help"], ["list"], ["info", "vae"], ["list", "--pretrained"], ["sample", "vae.mnist_mini", "--n", "4", "--out", "{tmp}/s.png"]]
# The checkout comes first on the import path (PYTHONPATH), and an editable install's import hook (which would win) is removed.
LAUNCH = ("import sys\nsys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in type(f).__module__]\n"
          "from vae_zoo import cli\nsys.argv[0] = 'vae-zoo'\n"
          "entry = getattr(cli, 'run', cli.main)\ntry:\n    code = entry()\nexcept SystemExit as stop:\n    code = stop.code\nsys.exit(code)")


def measure(checkout, argv, repeats=3):
    """(best wall seconds, TensorFlow log lines on stderr) of one command."""
    best = None
    for _ in range(repeats):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", LAUNCH, *argv], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(checkout)}, cwd=checkout, timeout=300)
        seconds = time.perf_counter() - started
        if run.returncode:
            raise SystemExit(f"{checkout}: vae-zoo {' '.join(argv)} failed: {run.stderr[-500:]}")
        noise = sum(1 for line in run.stderr.splitlines() if line.startswith(("I0000", "W0000", "E0000", "WARNING: All log")))
        best = min(best or (seconds, noise), (seconds, noise))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs="*", default=["."])
    parser.add_argument("--labels", nargs="+", help="a column name per checkout (default: the folder names)")
    parser.add_argument("--out", default=str(REPORTS / "startup.json"), help="also write the table as JSON here (docs/speed.md's)")
    args = parser.parse_args()
    checkouts = [Path(p).resolve() for p in args.checkouts]
    labels = args.labels or [c.name for c in checkouts]
    if len(labels) != len(checkouts):
        parser.error(f"{len(checkouts)} checkouts but {len(labels)} labels")
    columns = ["command"] + [f"{label}: seconds, TF log lines" for label in labels]
    rows = []
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for argv in COMMANDS:
            argv = [a.format(tmp=tmp) for a in argv]
            cells = []
            for checkout in checkouts:
                seconds, noise = measure(checkout, argv)
                cells.append(f"{seconds:.2f}, {noise}")
            rows.append([f"`vae-zoo {' '.join(argv).replace(tmp, 'TMP')}`"] + cells)
            print("| " + " | ".join(rows[-1]) + " |", flush=True)
    if args.out:  # an empty --out '' writes nothing
        report = {"tool": "tools/bench_startup.py", "measure": "whole-process wall time, best of three",
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "columns": columns, "rows": rows}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
