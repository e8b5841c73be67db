"""Speed against the machine's own limit: training and IS-NLL throughput as fractions of its matmul ceiling.

    python tools/bench_speed.py --quick     # the headline figures (a few minutes on 2 cores): reports/speed.json
    python tools/bench_speed.py             # the whole grid (about half an hour on 2 cores): reports/speed_grid.json

The ceiling is this machine's own rate for a large float32 matmul (4096 x 4096 x 4096,
TensorFlow's oneDNN kernel, best of three), measured again right before and after every
figure, so each ratio compares two rates taken side by side. A model's FLOPs per example
are counted, not guessed: TensorFlow's graph profiler (``tf.compat.v1.profiler`` with
``float_operation``) adds up every op of the traced graph (a matmul of m x k by k x n
counts 2mkn): for training, the loss and its gradients at the benchmark's batch (the
optimizer's update is left out, as in the usual 3x-forward count); for the IS-NLL, one
pass of ``log_weights`` per (example, draw).

Measured, each as examples/s and as a fraction of the ceiling:

- training with ``model.fit`` as the runner compiles it (Adam, the recipe's
  ``steps_per_execution`` default, ``auto``) for the seed VAE (MLP), the conv VAE, the
  ladder VAE and the VQ-VAE, at batch 64 to 1024, XLA on and off, float32 and
  ``mixed_bfloat16`` (the grid; ``--quick`` keeps the seed VAE at batch 128);
- the same with ``steps_per_execution: 1``, and the minimal hand-written Keras step of
  ``tools/bench_train.py`` in the same run, whole and in parts (its loss and gradients alone, its
  Adam update alone);
- the input pipeline alone (the runner's epoch-keyed training stream);
- ``vae_zoo.evaluation.log_likelihood`` (examples x k per second);
- a 1-epoch smoke run of ``recipes/vae/mnist_mini.yaml``, whole process, with the defaults
  and with ``steps_per_execution: 1``.

Writes ``speed.json`` (every figure, and the headline table that ``tools/write_readme.py``
puts in docs/speed.md) and ``speed.png`` (throughput against batch size) into ``--out`` (default ``reports/``);
the whole grid writes ``speed_grid.json`` and ``speed_grid.png``, so that it never replaces the headline.

Run it as a script: ``tools/`` is then on the import path, and the minimal step comes from
``tools/bench_train.py`` beside it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import tensorflow as tf

import vae_zoo
from vae_zoo.io import saving
from vae_zoo.training import recipe as recipes

from bench_train import MinimalVAE  # the benchmark's own minimal step, beside this script

ROOT = Path(__file__).resolve().parent.parent

MODELS = {"vae (MLP, seed)": "recipes/vae/mnist_mini.yaml", "vae (conv)": "recipes/vae/mnist_mini_conv.yaml",
          "ladder_vae": "recipes/ladder_vae/mnist_mini.yaml", "vq_vae": "recipes/vq_vae/mnist_mini.yaml"}
SEED_MODEL = "vae (MLP, seed)"
BATCHES = (64, 128, 256, 512, 1024)
PRECISIONS = ("float32", "mixed_bfloat16")
# Each timed epoch lasts about this long (its step count is set from the warm-up).
EPOCH_SECONDS = 1.5


# --------------------------------------------------------------------------- the ceiling and the counts

_square = tf.function(lambda a, b: tf.matmul(a, b))


def matmul_ceiling(n=4096, repeats=3):
    """GFLOP/s of a large float32 matmul on this machine right now (best of ``repeats``)."""
    a, b = tf.random.normal([n, n]), tf.random.normal([n, n])
    _square(a, b).numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        _square(a, b).numpy()
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best / 1e9


def side_by_side(measure):
    """(result, ceiling GFLOP/s): the ceiling is the mean of one taken just before and one just after."""
    before = matmul_ceiling()
    result = measure()
    return result, (before + matmul_ceiling()) / 2


def counted_flops(function, *specs):
    """FLOPs of one call of ``function`` on inputs of ``specs``, added up over its graph by TensorFlow's profiler."""
    graph = tf.function(function).get_concrete_function(*specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def training_flops_per_example(model, batch):
    seed = tf.constant([0, 0])

    def loss_and_gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.loss_terms(x, training=True, seed=seed)["loss"])
        return tape.gradient(loss, model.trainable_variables)

    return counted_flops(loss_and_gradients, tf.TensorSpec([batch, *model.data_shape])) / batch


# --------------------------------------------------------------------------- training

def binary_images(count, shape=(28, 28, 1), seed=0):
    return (np.random.default_rng(seed).random((count, *shape)) < 0.3).astype(np.uint8) * 255


def recipe_for(name, batch, jit, precision, steps_per_execution="auto"):
    recipe = recipes.read(ROOT / MODELS[name])
    recipe["data"]["batch_size"] = batch
    recipe.setdefault("training", {}).update(jit_compile=jit, mixed_precision=precision, steps_per_execution=steps_per_execution)
    return recipe


class EpochClock(keras.callbacks.Callback):
    """Wall time of each epoch of one ``fit`` call."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def fit_rate(recipe, images, rounds):
    """Examples/s of ``model.fit`` on the runner's training stream, compiled as the runner compiles it: the best
    of ``rounds`` epochs of one ``fit`` call (as the runner trains), after a first epoch that compiles and warms up."""
    from vae_zoo.training.runner import precision

    batch = recipe["data"]["batch_size"]
    with precision(recipe["training"]["mixed_precision"]):
        data = vae_zoo.data.from_splits({split: (images, None) for split in vae_zoo.data.SPLITS}, batch_size=batch,
                                        binarize="dynamic")
        model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
        stream = data.training_stream()
        chunk = model.steps_per_execution
        model.fit(stream, steps_per_epoch=chunk * 2, epochs=1, verbose=0)  # compile
        start = time.perf_counter()
        model.fit(stream, steps_per_epoch=chunk * 2, epochs=1, verbose=0)
        per_step = (time.perf_counter() - start) / (chunk * 2)
        steps = max(chunk, int(EPOCH_SECONDS / max(per_step, 1e-6)) // chunk * chunk)
        clock = EpochClock()
        model.fit(stream, steps_per_epoch=steps, epochs=rounds + 1, verbose=0, callbacks=[clock])
    return max(steps * batch / seconds for seconds in clock.seconds[1:]), model, chunk


def minimal_rate(images, batch, rounds):
    """Examples/s of the minimal hand-written step (tools/bench_train.py), XLA on, float32."""
    minimal = MinimalVAE(jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices(images.astype(np.float32) / 255.0).batch(batch).cache().prefetch(2)
    minimal.epoch(data)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        minimal.epoch(data)
        rates.append(len(images) / (time.perf_counter() - start))
    return max(rates)


def step_parts(images, batch, rounds, steps=200):
    """Milliseconds a step of the minimal step's parts take, each compiled by XLA on its own, on one input batch:
    the loss and gradients alone (plus one read of each gradient, which the function sums so that none is
    dropped), Adam's update alone (971k parameters, fixed gradients), and the whole step. What the update costs
    bounds the whole step's fraction of the ceiling, whatever the matmuls reach."""
    x = tf.constant(images[:batch].astype(np.float32) / 255.0)
    minimal = MinimalVAE(jit_compile=True)
    gradients = tf.function(lambda x: tf.add_n([tf.reduce_sum(g) for g in minimal.loss_and_gradients(x)[1]]),
                            jit_compile=True)
    fixed = [tf.fill(v.shape, 1e-3) for v in minimal.variables]

    @tf.function(jit_compile=True)
    def update():
        minimal.optimizer.apply(fixed, minimal.variables)
        return minimal.optimizer.iterations + 0  # something to wait for


    def milliseconds(call):
        for _ in range(10):
            call()
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(steps):
                out = call()
            float(out)  # wait for the last call
            best = min(best, (time.perf_counter() - start) / steps)
        return best * 1e3

    return {"loss_and_gradients_ms": milliseconds(lambda: gradients(x)), "adam_update_ms": milliseconds(update),
            "whole_step_ms": milliseconds(lambda: minimal.step(x))}


def pipeline_rate(images, batch, rounds):
    """Examples/s of the runner's training stream alone (stateless shuffle, gather, dynamic binarization)."""
    data = vae_zoo.data.from_splits({split: (images, None) for split in vae_zoo.data.SPLITS}, batch_size=batch,
                                    binarize="dynamic")
    steps = data.steps_per_epoch()
    batches = iter(data.training_stream())
    rates = []
    for _ in range(rounds + 1):  # the first round warms the pipeline up
        start = time.perf_counter()
        for _ in range(steps * 4):
            next(batches)
        rates.append(steps * 4 * batch / (time.perf_counter() - start))
    return max(rates[1:])


# --------------------------------------------------------------------------- IS-NLL

def nll_rate(model, images, k, rounds, jit_compile=None):
    """(examples x k)/s of vae_zoo.evaluation.log_likelihood, and the FLOPs of one (example, draw).
    ``jit_compile``: None is the library's default for this machine (``metrics.chunks_use_xla()``)."""
    from vae_zoo import evaluation

    x = images.astype(np.float32) / 255.0
    evaluation.log_likelihood(model, x[:100], k=k, jit_compile=jit_compile)  # compile
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        evaluation.log_likelihood(model, x, k=k, jit_compile=jit_compile)
        rates.append(len(x) * k / (time.perf_counter() - start))
    draws = 500
    flops = counted_flops(lambda b: model.log_weights(b, None, k=draws, seed=tf.constant([0, 0])),
                          tf.TensorSpec([100, *model.data_shape])) / (100 * draws)
    return max(rates), flops


# --------------------------------------------------------------------------- a short run, whole process

def smoke_seconds(settings=("auto", 1), repeats=3):
    """Best whole-process seconds of a smoke run for each ``steps_per_execution`` setting. The runs take turns
    (auto, 1, auto, 1, ...), so that a drift in the machine's speed, which is shared, weighs on both alike."""
    best = {}
    for _ in range(repeats):
        for setting in settings:
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                run = subprocess.run([sys.executable, "-m", "vae_zoo", "train", str(ROOT / "recipes/vae/mnist_mini.yaml"), "--smoke",
                                      "--out", f"{tmp}/smoke", "--set", f"training.steps_per_execution={setting}"],
                                     capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
                seconds = time.perf_counter() - start
            if run.returncode:
                raise SystemExit(f"the smoke run failed: {run.stderr[-800:]}")
            best[setting] = min(best.get(setting, seconds), seconds)
    return best


# --------------------------------------------------------------------------- the run

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the headline figures (seed VAE, batch 128)")
    parser.add_argument("--out", default="reports", help="folder for speed.json and speed.png (the grid: speed_grid.*)")
    parser.add_argument("--rounds", type=int, default=3, help="timed repeats per figure (the best counts)")
    parser.add_argument("--nll-examples", type=int, default=1000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = binary_images(8192)
    # The CPU's model name: ratios to the ceiling carry across machines, the rates themselves do not.
    results = {"machine": f"{saving.hardware()['cpu']}, {os.cpu_count()} CPUs",
               "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "vae_zoo": vae_zoo.__version__},
               "devices": [d.device_type for d in tf.config.list_logical_devices()], "training": [], "notes": __doc__.split("\n\n")[1]}

    def record(entry):
        print(json.dumps(entry), flush=True)
        return entry

    models = [SEED_MODEL] if args.quick else list(MODELS)
    batches = (128,) if args.quick else BATCHES
    precisions = ("float32",) if args.quick else PRECISIONS
    for name in models:
        flops = None
        for precision in precisions:
            for jit in (True, False):
                for batch in batches:
                    recipe = recipe_for(name, batch, jit, precision)
                    (rate, model, chunk), ceiling = side_by_side(lambda: fit_rate(recipe, images, args.rounds))
                    flops = flops or training_flops_per_example(model, 128)
                    results["training"].append(record({
                        "model": name, "batch": batch, "xla": jit, "precision": precision, "steps_per_execution": chunk,
                        "examples_per_second": round(rate), "flops_per_example": flops, "ceiling_gflops": round(ceiling, 1),
                        "fraction_of_ceiling": round(rate * flops / (ceiling * 1e9), 3)}))

    seed_flops = results["training"][0]["flops_per_example"]
    (one_step_rate, _, _), ceiling = side_by_side(lambda: fit_rate(recipe_for(SEED_MODEL, 128, True, "float32", 1), images, args.rounds))
    results["seed_one_step_per_execution"] = record({
        "examples_per_second": round(one_step_rate), "ceiling_gflops": round(ceiling, 1),
        "fraction_of_ceiling": round(one_step_rate * seed_flops / (ceiling * 1e9), 3)})
    minimal, ceiling = side_by_side(lambda: minimal_rate(images, 128, args.rounds))
    results["minimal_step"] = record({"examples_per_second": round(minimal), "ceiling_gflops": round(ceiling, 1),
                                      "fraction_of_ceiling": round(minimal * seed_flops / (ceiling * 1e9), 3)})
    parts, ceiling = side_by_side(lambda: step_parts(images, 128, args.rounds))
    results["minimal_step_parts"] = record({
        **{name: round(ms, 3) for name, ms in parts.items()}, "ceiling_gflops": round(ceiling, 1),
        "fraction_of_ceiling": {name.replace("_ms", ""): round(128 * seed_flops / (parts[name] / 1e3) / (ceiling * 1e9), 3)
                                for name in ("loss_and_gradients_ms", "whole_step_ms")}})
    results["input_pipeline"] = record({"batch": 128, "examples_per_second": round(pipeline_rate(images, 128, args.rounds))})

    from vae_zoo.evaluation.metrics import chunks_use_xla

    model = vae_zoo.load_pretrained("vae.fashion_mnist")
    default_xla = chunks_use_xla()
    results["nll"] = []
    for k in ((1000,) if args.quick else (100, 1000, 5000)):
        (rate, flops), ceiling = side_by_side(lambda: nll_rate(model, binary_images(args.nll_examples, seed=1), k, 1))
        results["nll"].append(record({
            "model": "vae.fashion_mnist", "k": k, "examples": args.nll_examples, "xla": default_xla,
            "samples_per_second": round(rate),
            "flops_per_sample": flops, "ceiling_gflops": round(ceiling, 1),
            "fraction_of_ceiling": round(rate * flops / (ceiling * 1e9), 3),
            "seconds_for_10000_test_images": {"k=1000": round(1e7 / rate, 1), "k=5000": round(5e7 / rate, 1)}}))
    # The other way of compiling a chunk, side by side: whole-chunk XLA (the default on a GPU).
    (rate, flops), ceiling = side_by_side(lambda: nll_rate(model, binary_images(args.nll_examples, seed=1), 1000, 1,
                                                            jit_compile=not default_xla))
    results["nll_without_xla" if default_xla else "nll_whole_chunk_xla"] = record({
        "model": "vae.fashion_mnist", "k": 1000, "examples": args.nll_examples, "xla": not default_xla,
        "samples_per_second": round(rate), "ceiling_gflops": round(ceiling, 1),
        "fraction_of_ceiling": round(rate * flops / (ceiling * 1e9), 3)})

    results["smoke_run_seconds"] = record({f"steps_per_execution {setting}": round(seconds, 1)
                                           for setting, seconds in smoke_seconds().items()})
    results.update(headline(results))
    stem = "speed" if args.quick else "speed_grid"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out / f"{stem}.png")
    print(f"wrote {out / f'{stem}.json'} and {out / f'{stem}.png'}")


def headline(results):
    """The README's table: ``columns`` and ``rows``, as tools/write_readme.py reads them."""
    seed = next(e for e in results["training"] if e["model"] == SEED_MODEL and e["batch"] == 128 and e["xla"]
                and e["precision"] == "float32")
    one, minimal, smoke = results["seed_one_step_per_execution"], results["minimal_step"], results["smoke_run_seconds"]
    rows = [
        ["seed VAE training, batch 128, recipe defaults (XLA, steps_per_execution auto = "
         f"{seed['steps_per_execution']})", f"{seed['examples_per_second']:,} examples/s", seed["fraction_of_ceiling"]],
        ["the same, steps_per_execution 1", f"{one['examples_per_second']:,} examples/s", one["fraction_of_ceiling"]],
        ["minimal hand-written Keras step (tools/bench_train.py)", f"{minimal['examples_per_second']:,} examples/s",
         minimal["fraction_of_ceiling"]],
        *step_part_rows(results.get("minimal_step_parts")),
        ["input pipeline alone (runner's stream, batch 128)", f"{results['input_pipeline']['examples_per_second']:,} examples/s", ""],
    ]
    for entry in results["nll"]:
        compiled = "each chunk XLA-compiled" if entry.get("xla") else "oneDNN matmuls, XLA-compiled likelihood"
        rows.append([f"IS-NLL, vae.fashion_mnist, k = {entry['k']} ({compiled})", f"{entry['samples_per_second']:,} (example, draw)/s; "
                     f"10,000 test images: {entry['seconds_for_10000_test_images']['k=1000']} s at k = 1000, "
                     f"{entry['seconds_for_10000_test_images']['k=5000']} s at k = 5000", entry["fraction_of_ceiling"]])
    other = results.get("nll_whole_chunk_xla") or results.get("nll_without_xla")
    if other:
        rows.append([f"the same at k = 1000, {'each chunk XLA-compiled' if other['xla'] else 'without XLA'}",
                     f"{other['samples_per_second']:,} (example, draw)/s", other["fraction_of_ceiling"]])
    rows.append(["1-epoch smoke run of vae/mnist_mini, whole process", f"{smoke['steps_per_execution auto']} s (auto) vs "
                 f"{smoke['steps_per_execution 1']} s (1)", ""])
    ceilings = [e["ceiling_gflops"] for e in results["training"] + results["nll"]]
    return {"columns": ["what", f"rate ({results['machine']}; ceiling {min(ceilings):.0f}-{max(ceilings):.0f} GFLOP/s)",
                        "fraction of the matmul ceiling"], "rows": rows}


def step_part_rows(parts):
    """The headline's rows for the minimal step's parts (none in a report from before they were measured)."""
    if not parts:
        return []
    fractions = parts["fraction_of_ceiling"]
    return [["minimal step, its loss and gradients alone, no update (one batch of 128, XLA)",
             f"{parts['loss_and_gradients_ms']:.2f} ms a step", fractions["loss_and_gradients"]],
            ["minimal step, its Adam update alone (971k parameters, XLA)", f"{parts['adam_update_ms']:.2f} ms a step", ""],
            ["minimal step, whole, on the same batch", f"{parts['whole_step_ms']:.2f} ms a step", fractions["whole_step"]]]


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    keys = sorted({(e["model"], e["xla"], e["precision"]) for e in results["training"]})
    # One colour a model, solid with XLA and dashed without, a round marker for float32 and a square for bfloat16:
    # sixteen lines would otherwise run out of distinct colours.
    colours = {model: f"C{i}" for i, model in enumerate(sorted({model for model, _, _ in keys}))}
    for model, xla, precision in keys:
        entries = sorted((e for e in results["training"] if (e["model"], e["xla"], e["precision"]) == (model, xla, precision)),
                         key=lambda e: e["batch"])
        axis.plot([e["batch"] for e in entries], [e["fraction_of_ceiling"] for e in entries], color=colours[model],
                  marker="o" if precision == "float32" else "s", linestyle="-" if xla else "--",
                  label=f"{model}, {'XLA' if xla else 'no XLA'}, {precision}")
    axis.set_xscale("log", base=2)
    axis.set_xlabel("batch size")
    axis.set_ylabel("training throughput x FLOPs / matmul ceiling")
    axis.set_title(f"Training speed against the matmul ceiling\n{results['machine']}", fontsize=10)
    axis.legend(fontsize=6)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
