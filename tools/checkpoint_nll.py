"""Evaluate a run that is still in progress: its best checkpoint's IS-NLL and its validation curve so far.

    python tools/checkpoint_nll.py runs/.NAME.run --k 5000 --out result.json
    python tools/checkpoint_nll.py runs/.NAME.run --k 50 --limit 200       # a quick look

A time-boxed run (``tools/gpu_check.sh`` trains for as long as the GPU is lent, then stops) leaves a work folder
``.<out>.run`` that resumes next time; this reads it without touching it: the recipe it records, the best
weights that ``ModelCheckpoint`` keeps there, and the per-epoch logs. It reports the best epoch, the monitored
curve, a projection of where the curve is heading (a fit of a + b / epoch over its second half, which the
curves of these models follow closely once the learning rate is constant) and the test IS-NLL with ``--k``
importance samples.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def projected_curve(values, epochs_ahead):
    """Where a + b / epoch, fitted to the second half of ``values``, puts the curve ``epochs_ahead`` later."""
    values = np.asarray(values, float)
    if len(values) < 6:
        return None
    epochs = np.arange(1, len(values) + 1, dtype=float)
    half = len(values) // 2
    design = np.stack([np.ones(len(values) - half), 1.0 / epochs[half:]], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, values[half:], rcond=None)
    return {"limit": float(a), "at_epoch": int(epochs[-1] + epochs_ahead), "value": float(a + b / (epochs[-1] + epochs_ahead))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("work_folder", type=Path, help="a run's .<out>.run folder")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per test image")
    parser.add_argument("--limit", type=int, default=None, help="score at most this many test images")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    args = parser.parse_args(argv)

    from vae_zoo.training import recipe as recipes
    from vae_zoo.training.runner import RECIPE_FILE, RunBackup

    work = args.work_folder
    recipe_file, weights = work / RECIPE_FILE, work / "best.weights.h5"
    if not recipe_file.is_file() or not weights.is_file():
        sys.exit(f"checkpoint_nll: {work} is not a run's work folder with a best checkpoint "
                 f"(it needs {RECIPE_FILE} and best.weights.h5)")
    recipe = recipes.parse(json.loads(recipe_file.read_text()))
    backup = work / "backup"
    state = RunBackup.read_state(backup)
    epoch = RunBackup.saved_epoch(backup)
    history = state.get(str(epoch), {}).get("history", [])
    options = recipes.training_options(recipe)
    monitor = options["monitor"]
    curve = [entry.get(monitor) for entry in history]

    from vae_zoo import evaluation

    data = recipes.build_data(recipe)
    model = recipes.build_model(recipe, data)
    model.load_weights(weights)
    images, labels = data.take("test")
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    log_p = evaluation.log_likelihood(model, images, labels, k=args.k, progress=True)
    best = int(np.nanargmax(curve) if options["mode"] == "max" else np.nanargmin(curve)) + 1 if curve else None
    result = {
        "work_folder": str(work), "epochs_done": epoch, "best_epoch": best, "monitor": monitor, "curve": curve,
        "projection_500_epochs_ahead": projected_curve(curve, 500), "seconds": RunBackup.saved_seconds(backup),
        "test_nll": float(-np.mean(log_p)), "test_nll_standard_error": float(np.std(log_p) / np.sqrt(len(log_p))),
        "k": args.k, "test_images": len(images),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return result


if __name__ == "__main__":
    main()
