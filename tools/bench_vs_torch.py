"""Training speed of the zoo against PyTorch with the same architecture, side by side in one run.

    python tools/bench_vs_torch.py                       # every architecture at 28x28x1 and 64x64x3 (about 10 min, 2 cores)
    python tools/bench_vs_torch.py --only conv@28x28x1   # one of them
    python tools/bench_vs_torch.py --dry-run             # tiny sizes, a few steps: that it runs (tests, tools/gpu_check.sh)

For each architecture (the seed MLP, the ``conv`` body and the ``resnet`` body of ``vae_zoo.networks``, each as a
Bernoulli VAE with 20 latents, on random binary images binarized again every batch) and image size, two worker
processes start: one trains the zoo's model with ``model.fit`` as ``vae-zoo train`` compiles it
(``recipes.compile_model``: the runner's choice of XLA and ``steps_per_execution``), the other the PyTorch mirror
of tools/torch_mirrors.py, written layer for layer, with the same Adam, batch and data. The driver alternates
timed rounds between them (``--rounds`` each, about ``--round-seconds`` long, after a warm-up round that compiles),
so that both see the same machine; the median round counts. Each worker reports its own peak resident memory
(VmHWM), so neither carries the other's libraries.

The FLOPs of one training step are counted on the zoo's graph by TensorFlow's profiler (tools/bench_speed.py),
the same for both; the ceilings are a large float32 matmul and a large 3x3 convolution, each measured by
TensorFlow in the zoo's worker right before its timed rounds and by PyTorch in its own. On a GPU, PyTorch runs
on it (eager and, with ``--torch-compile``, ``torch.compile``), and ``--precision mixed`` times both in mixed
precision (``mixed_float16`` and ``torch.autocast``). Torch is a benchmark dependency only
(tools/requirements-bench.txt).

Writes ``torch_comparison.json`` and ``torch_comparison.md`` into ``--out`` (default ``reports/``).
"""

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent

# The zoo's network specs; tools/torch_mirrors.py builds the same layers for each name.
ARCHITECTURES = {
    "mlp": {"name": "mlp", "hidden_sizes": [400, 400]},
    "conv": {"name": "conv", "filters": [32, 64], "hidden_sizes": [256]},
    "resnet": {"name": "resnet", "filters": [32, 64], "blocks": 1, "hidden_sizes": [256]},
    # The colour-image model: recipes/hierarchical_vae/emoji.yaml's, on 8-bit images.
    "hierarchical": {"name": "hierarchical_vae", "width": 32, "latent_channels": 4, "groups_per_stage": 2,
                     "blocks_per_stage": 1, "max_latent_resolution": 16,
                     "likelihood": {"name": "logistic_mixture", "components": 5}},
}
EIGHT_BIT = {"hierarchical"}  # trained on 8-bit levels; the others on images binarized again every batch
SHAPES = {"28x28x1": (28, 28, 1), "64x64x3": (64, 64, 3)}
LATENT = 20
LEARNING_RATE = 1e-3
NLL_K = 100  # importance samples per example when timing the IS-NLL (--evaluate)


def model_spec(architecture):
    if architecture in EIGHT_BIT:
        return dict(ARCHITECTURES[architecture])
    return {"name": "vae", "latent_dim": LATENT, "encoder": ARCHITECTURES[architecture], "likelihood": "bernoulli"}


def zoo_precision(precision, on_gpu):
    """The Keras policy for ``--precision``: mixed means float16 on a GPU and bfloat16 on a CPU, as torch.autocast."""
    return "float32" if precision == "float32" else ("mixed_float16" if on_gpu else "mixed_bfloat16")


def peak_memory_mib():
    """This process's peak resident memory (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: ru_maxrss (kilobytes on most systems)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def training_images(architecture, count, shape, seed=0):
    """uint8 images: random 8-bit levels for the 8-bit models, random binary ones (0 or 255) for the others."""
    import numpy as np

    generator = np.random.default_rng(seed)
    if architecture in EIGHT_BIT:
        return generator.integers(0, 256, (count, *shape), dtype=np.uint8)
    return (generator.random((count, *shape)) < 0.3).astype(np.uint8) * 255


# --------------------------------------------------------------------------- the zoo's worker


class ZooSystem:
    name = "zoo"

    def __init__(self, architecture, shape, batch, precision, examples, nll_k=NLL_K, jit_compile=None):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        sys.path.insert(0, str(TOOLS))
        import tensorflow as tf

        import vae_zoo
        from bench_speed import counted_flops, training_flops_per_example
        from vae_zoo.training import recipe as recipes
        from vae_zoo.training.runner import precision as policy

        self.tf, self.batch, self.vae_zoo = tf, batch, vae_zoo
        on_gpu = bool(tf.config.list_logical_devices("GPU"))
        recipe = recipes.parse({
            "model": model_spec(architecture),
            # The data named here only passes validation: the model trains on the arrays below.
            "data": {"name": "digits", "batch_size": batch},
            "optimizer": {"name": "adam", "learning_rate": LEARNING_RATE},
            "training": {"mixed_precision": zoo_precision(precision, on_gpu),
                         # None: as the runner chooses; True or False: the other choice, for comparison
                         **({} if jit_compile is None else {"jit_compile": bool(jit_compile)})},
        })
        images = training_images(architecture, examples, shape)
        self.policy = policy(recipe["training"]["mixed_precision"])
        self.policy.__enter__()
        data = vae_zoo.data.from_splits({split: (images, None) for split in vae_zoo.data.SPLITS}, batch_size=batch,
                                        binarize="none" if architecture in EIGHT_BIT else "dynamic")
        self.test_images = data.take("test")[0]
        self.model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
        self.stream = data.training_stream().repeat()
        self.chunk = int(self.model.steps_per_execution)
        self.setting = {"xla": bool(self.model.jit_compile), "steps_per_execution": self.chunk,
                        "precision": recipe["training"]["mixed_precision"],
                        "device": "GPU" if on_gpu else "CPU", "tensorflow": tf.__version__}
        self.flops = training_flops_per_example(self.model, batch)
        # The IS-NLL's plan, as evaluation.log_likelihood sizes it: draws a call and examples a batch.
        from vae_zoo.evaluation import metrics

        per_draw = metrics.decoder_values_per_draw(self.model)
        draws = max(1, min(500, nll_k, metrics.MAX_DECODER_VALUES // per_draw))
        self.plan = {"k": nll_k, "chunk": draws, "batch": max(1, min(100, metrics.MAX_DECODER_VALUES // (draws * per_draw)))}
        seed = tf.constant([0, 0])
        self.nll_flops = counted_flops(lambda x: self.model.log_weights(x, k=draws, seed=seed),
                                       tf.TensorSpec([self.plan["batch"], *self.model.data_shape])) / (self.plan["batch"] * draws)
        self.setting["nll_plan"] = self.plan

    def round_steps(self, steps):
        return max(self.chunk, steps // self.chunk * self.chunk)

    def train(self, steps):
        """Seconds that ``model.fit`` takes for ``steps`` steps (its callbacks and metrics included)."""
        start = time.perf_counter()
        self.model.fit(self.stream, steps_per_epoch=steps, epochs=1, verbose=0)
        return time.perf_counter() - start

    def evaluate(self, examples, plan=None):
        """Seconds that ``evaluation.log_likelihood`` takes for ``examples`` test images at k = NLL_K."""
        images = self.test_images[:examples]
        start = time.perf_counter()
        self.vae_zoo.evaluation.log_likelihood(self.model, images, k=self.plan["k"], chunk=self.plan["chunk"],
                                               batch_size=self.plan["batch"])
        return time.perf_counter() - start

    def ceilings(self):
        tf = self.tf
        a = tf.random.normal([4096, 4096])
        matmul = tf.function(lambda a: tf.matmul(a, a))
        images, kernel = tf.random.normal([64, 64, 64, 64]), tf.random.normal([3, 3, 64, 64])
        conv = tf.function(lambda x: tf.nn.conv2d(x, kernel, 1, "SAME"))
        return {"matmul_gflops": best_rate(lambda: matmul(a).numpy(), 2 * 4096 ** 3),
                "conv_gflops": best_rate(lambda: conv(images).numpy(), 2 * 64 * 64 * 64 * 64 * 9 * 64)}


# --------------------------------------------------------------------------- the PyTorch worker


class TorchSystem:
    name = "pytorch"

    def __init__(self, architecture, shape, batch, precision, examples, nll_k=NLL_K, compiled=False):
        import numpy as np
        import torch

        import torch_mirrors

        self.torch, self.batch, self.precision = torch, batch, precision
        self.binary = architecture not in EIGHT_BIT
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        images = training_images(architecture, examples, shape).astype(np.float32) / 255.0
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(self.device)
        # Test images as the zoo's: binarized once (with another generator), or the 8-bit levels themselves.
        test = torch.bernoulli(self.images, generator=torch.Generator(self.device).manual_seed(1)) if self.binary else self.images
        self.test_images = test
        torch.manual_seed(0)
        self.model = torch_mirrors.build(architecture, shape, LATENT).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE, eps=1e-7)  # Keras's epsilon
        self.loss = torch.compile(self.model.loss) if compiled else self.model.loss
        self.scaler = torch.amp.GradScaler(self.device) if precision == "mixed" and self.device == "cuda" else None
        self.position, self.order = 0, torch.randperm(len(self.images), device=self.device)
        self.setting = {"mode": "torch.compile" if compiled else "eager", "device": self.device.upper(),
                        "threads": torch.get_num_threads(), "torch": torch.__version__}
        self.flops = None

    def round_steps(self, steps):
        return steps

    def _batch(self):
        torch = self.torch
        if self.position + self.batch > len(self.order):
            self.position, self.order = 0, torch.randperm(len(self.images), device=self.device)
        index = self.order[self.position:self.position + self.batch]
        self.position += self.batch
        if not self.binary:
            return self.images[index]
        return torch.bernoulli(self.images[index])  # binarized again every batch, as the zoo's dynamic binarization

    def step(self):
        torch = self.torch
        self.optimizer.zero_grad(set_to_none=True)
        if self.precision == "mixed":
            dtype = torch.float16 if self.device == "cuda" else torch.bfloat16
            with torch.autocast(self.device, dtype=dtype):
                loss = self.loss(self._batch())
        else:
            loss = self.loss(self._batch())
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss

    def train(self, steps):
        start = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        float(loss)  # waits for the device
        return time.perf_counter() - start

    def evaluate(self, examples, plan):
        """Seconds for the IS-NLL of ``examples`` test images as the zoo computes it: ``plan['k']`` draws in calls of
        ``plan['chunk']`` draws over batches of ``plan['batch']`` examples, log-sum-exp over the draws."""
        torch = self.torch
        start = time.perf_counter()
        with torch.no_grad(), self._autocast():
            results = []
            for first in range(0, examples, plan["batch"]):
                x = self.test_images[first:min(first + plan["batch"], examples)]
                parts = [torch.logsumexp(self.model.log_weights(x, min(plan["chunk"], plan["k"] - done)), dim=0)
                         for done in range(0, plan["k"], plan["chunk"])]
                results.append(torch.logsumexp(torch.stack(parts), dim=0) - math.log(plan["k"]))
            float(torch.cat(results).sum())  # waits for the device
        return time.perf_counter() - start

    def _autocast(self):
        import contextlib

        if self.precision != "mixed":
            return contextlib.nullcontext()
        return self.torch.autocast(self.device, dtype=self.torch.float16 if self.device == "cuda" else self.torch.bfloat16)

    def ceilings(self):
        torch = self.torch
        a = torch.randn(4096, 4096, device=self.device)
        x, kernel = torch.randn(64, 64, 64, 64, device=self.device), torch.randn(64, 64, 3, 3, device=self.device)

        def synchronized(call):
            def run():
                call()
                if self.device == "cuda":
                    torch.cuda.synchronize()
            return run

        with torch.no_grad():
            return {"matmul_gflops": best_rate(synchronized(lambda: a @ a), 2 * 4096 ** 3),
                    "conv_gflops": best_rate(synchronized(lambda: torch.nn.functional.conv2d(x, kernel, padding=1)),
                                             2 * 64 * 64 * 64 * 64 * 9 * 64)}


def best_rate(call, flops, repeats=3):
    call()
    best = min(timed(call) for _ in range(repeats))
    return round(flops / best / 1e9, 1)


def timed(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- the worker processes


def worker(connection, system, arguments):
    """Build one system, then answer the driver's requests until it says stop."""
    try:
        built = (ZooSystem if system == "zoo" else TorchSystem)(**arguments)
        connection.send({"setting": built.setting, "flops": built.flops, "nll_flops": getattr(built, "nll_flops", None),
                         "plan": getattr(built, "plan", None)})
        while True:
            request, value = connection.recv()
            if request == "stop":
                break
            if request == "train":
                steps = built.round_steps(value)
                connection.send({"steps": steps, "seconds": built.train(steps)})
            elif request == "evaluate":
                connection.send({"seconds": built.evaluate(**value)})
            elif request == "ceilings":
                connection.send(built.ceilings())
            elif request == "memory":
                connection.send(peak_memory_mib())
    except Exception as error:  # the driver reports it and goes on with the next configuration
        connection.send({"error": f"{type(error).__name__}: {error}"})
        raise


class Worker:
    def __init__(self, context, system, arguments):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=worker, args=(child, system, arguments), daemon=True)
        self.process.start()
        self.ready = self.receive()

    def receive(self):
        answer = self.connection.recv()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def ask(self, request, value=None):
        self.connection.send((request, value))
        return self.receive()

    def stop(self):
        try:
            self.connection.send(("stop", None))
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=30)


def compare(context, architecture, shape_name, args):
    """One configuration: both workers, a warm-up round each, then alternating timed rounds."""
    shape = SHAPES[shape_name]
    common = {"architecture": architecture, "shape": shape, "batch": args.batch, "precision": args.precision,
              "examples": args.examples, "nll_k": args.nll_k}
    systems = {"zoo": ({}, "zoo")} if args.without_torch else {"zoo": ({}, "zoo"), "pytorch": ({}, "pytorch")}
    if args.zoo_alternatives:  # the zoo with the other XLA setting, to see whether the runner chose well
        systems["zoo_xla_on"], systems["zoo_xla_off"] = ({"jit_compile": True}, "zoo"), ({"jit_compile": False}, "zoo")
    if args.torch_compile and not args.without_torch:
        systems["pytorch_compiled"] = ({"compiled": True}, "pytorch")
    workers = {}
    try:
        for label, (extra, system) in systems.items():
            workers[label] = Worker(context, system, {**common, **extra})
        flops = workers["zoo"].ready["flops"]
        steps = {}
        for label, w in workers.items():  # warm-up (compiles), then size a round to about --round-seconds
            w.ask("train", args.warmup_steps)
            probe = w.ask("train", args.warmup_steps)
            steps[label] = max(1, int(args.round_seconds / (probe["seconds"] / probe["steps"])))
        ceilings = {label: w.ask("ceilings") for label, w in workers.items()}
        rates = {label: [] for label in workers}
        for _ in range(args.rounds):
            for label, w in workers.items():
                answer = w.ask("train", steps[label])
                rates[label].append(answer["steps"] * args.batch / answer["seconds"])
        rows = {}
        for label, w in workers.items():
            rate = statistics.median(rates[label])
            ceiling = ceilings[label]
            rows[label] = {
                **w.ready["setting"], "examples_per_second": round(rate, 1),
                "rounds": [round(r, 1) for r in rates[label]],
                "fraction_of_matmul_ceiling": round(rate * flops / (ceiling["matmul_gflops"] * 1e9), 3),
                "fraction_of_conv_ceiling": round(rate * flops / (ceiling["conv_gflops"] * 1e9), 3),
                "ceilings": ceiling, "peak_memory_mib": round(w.ask("memory"), 1)}
        nll = evaluation_rates(workers, args) if args.evaluate else None
        if nll:
            for label, rate in nll.items():
                ceiling = ceilings[label]
                draws = rate * args.nll_k * workers["zoo"].ready["nll_flops"]
                rows[label]["nll"] = {"examples_per_second": round(rate, 2), "k": args.nll_k,
                                      "fraction_of_matmul_ceiling": round(draws / (ceiling["matmul_gflops"] * 1e9), 3),
                                      "fraction_of_conv_ceiling": round(draws / (ceiling["conv_gflops"] * 1e9), 3)}
        torch_rates = [rows[label]["examples_per_second"] for label in rows if label.startswith("pytorch")]
        if not torch_rates:
            return {"architecture": architecture, "shape": shape_name, "batch": args.batch, "precision": args.precision,
                    "flops_per_example": flops, "systems": rows, "zoo_over_pytorch": None,
                    "note": "PyTorch is not installed: the zoo's half only"}
        torch_best = max(torch_rates)
        row = {"architecture": architecture, "shape": shape_name, "batch": args.batch, "precision": args.precision,
               "flops_per_example": flops, "systems": rows,
               "zoo_over_pytorch": round(rows["zoo"]["examples_per_second"] / torch_best, 3)}
        if nll:
            row["nll_flops_per_draw"] = workers["zoo"].ready["nll_flops"]
            row["nll_zoo_over_pytorch"] = round(nll["zoo"] / max(nll[label] for label in nll if label.startswith("pytorch")), 3)
        return row
    finally:
        for w in workers.values():
            w.stop()


def evaluation_rates(workers, args):
    """Median examples/s of the IS-NLL (k = --nll-k) of each system, in alternating rounds like training's."""
    plan = workers["zoo"].ready["plan"]
    # The zoo's XLA alternatives evaluate as the zoo does (evaluation.log_likelihood has its own rule): not again.
    workers = {label: w for label, w in workers.items() if not label.startswith("zoo_")}
    examples = {}
    for label, w in workers.items():  # warm-up (compiles the chunks), then size a round
        w.ask("evaluate", {"examples": plan["batch"], "plan": plan})
        seconds = w.ask("evaluate", {"examples": plan["batch"], "plan": plan})["seconds"]
        batches = max(1, int(args.round_seconds / seconds))
        # Whole batches only: a partial one would compile another shape inside a timed round.
        examples[label] = plan["batch"] * max(1, min(batches, args.examples // 8 // plan["batch"]))
    rates = {label: [] for label in workers}
    for _ in range(args.rounds):
        for label, w in workers.items():
            rates[label].append(examples[label] / w.ask("evaluate", {"examples": examples[label], "plan": plan})["seconds"])
    return {label: statistics.median(values) for label, values in rates.items()}


def training_table(results):
    """The training comparison as {"columns", "rows"} (tools/write_readme.py puts it in docs/speed.md)."""
    columns = ["architecture", "image", "zoo examples/s", "PyTorch examples/s", "zoo / PyTorch",
               "zoo: of matmul / conv ceiling", "PyTorch: of matmul / conv ceiling", "peak memory zoo / PyTorch (MiB)",
               "zoo's compile choice"]
    rows = []
    for row in results["comparisons"]:
        if "error" in row:
            rows.append([row["architecture"], row["shape"], f"failed: {row['error']}"] + [""] * 6)
            continue
        zoo = row["systems"]["zoo"]
        others = [r for label, r in row["systems"].items() if label.startswith("pytorch")]
        choice = f"XLA {'on' if zoo['xla'] else 'off'}, {zoo['steps_per_execution']} steps a call, {zoo['precision']}"
        if "zoo_xla_off" in row["systems"]:
            choice += (f" (XLA on: {row['systems']['zoo_xla_on']['examples_per_second']:,.0f}/s, "
                       f"off: {row['systems']['zoo_xla_off']['examples_per_second']:,.0f}/s)")
        if not others:
            rows.append([row["architecture"], row["shape"], f"{zoo['examples_per_second']:,.0f}", "not installed", "",
                         f"{zoo['fraction_of_matmul_ceiling']:.2f} / {zoo['fraction_of_conv_ceiling']:.2f}", "",
                         f"{zoo['peak_memory_mib']:,.0f}", choice])
            continue
        torch_row = max(others, key=lambda r: r["examples_per_second"])  # eager or torch.compile, the faster
        rows.append([row["architecture"], row["shape"], f"{zoo['examples_per_second']:,.0f}",
                     f"{torch_row['examples_per_second']:,.0f} ({torch_row['mode']})", f"**{row['zoo_over_pytorch']:.2f}x**",
                     f"{zoo['fraction_of_matmul_ceiling']:.2f} / {zoo['fraction_of_conv_ceiling']:.2f}",
                     f"{torch_row['fraction_of_matmul_ceiling']:.2f} / {torch_row['fraction_of_conv_ceiling']:.2f}",
                     f"{zoo['peak_memory_mib']:,.0f} / {torch_row['peak_memory_mib']:,.0f}", choice])
    return {"columns": columns, "rows": rows}


def nll_table(results):
    """The IS-NLL comparison as {"columns", "rows"}."""
    columns = ["architecture", "image", "zoo examples/s", "PyTorch examples/s", "zoo / PyTorch",
               "zoo: of matmul / conv ceiling", "PyTorch: of matmul / conv ceiling", "draws a call, examples a batch"]
    rows = []
    for row in results["comparisons"]:
        if "nll_zoo_over_pytorch" not in row:
            continue
        zoo = row["systems"]["zoo"]
        torch_row = max((r for label, r in row["systems"].items() if label.startswith("pytorch")),
                        key=lambda r: r["nll"]["examples_per_second"])
        plan = zoo["nll_plan"]
        rows.append([row["architecture"], row["shape"], f"{zoo['nll']['examples_per_second']:,.1f}",
                     f"{torch_row['nll']['examples_per_second']:,.1f}", f"**{row['nll_zoo_over_pytorch']:.2f}x**",
                     f"{zoo['nll']['fraction_of_matmul_ceiling']:.2f} / {zoo['nll']['fraction_of_conv_ceiling']:.2f}",
                     f"{torch_row['nll']['fraction_of_matmul_ceiling']:.2f} / {torch_row['nll']['fraction_of_conv_ceiling']:.2f}",
                     f"{plan['chunk']}, {plan['batch']}"])
    return {"columns": columns, "rows": rows}


def as_markdown(table):
    lines = ["| " + " | ".join(table["columns"]) + " |", "|---" * len(table["columns"]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in table["rows"]])


def markdown(results):
    text = (f"Machine: {results['machine']}; ceilings measured in the run: {results['ceilings']}. "
            f"Batch {results['batch']}, {results['precision']}, median of {results['rounds']} alternating rounds.\n\n"
            + as_markdown(training_table(results)) + "\n")
    evaluated = nll_table(results)
    if evaluated["rows"]:
        text += (f"\nIS-NLL evaluation, k = {results['nll_k']} draws an example (`evaluation.log_likelihood`; PyTorch "
                 "under no_grad with the same draws a call and examples a batch):\n\n" + as_markdown(evaluated) + "\n")
    return text


def ceiling_summary(results):
    """The zoo's ceilings over the run (the lowest and highest measurement), as one phrase."""
    measured = [row["systems"]["zoo"]["ceilings"] for row in results["comparisons"] if "systems" in row]
    if not measured:
        return "none"
    parts = []
    for key, name in (("matmul_gflops", "float32 matmul"), ("conv_gflops", "3x3 convolution")):
        values = [m[key] for m in measured]
        parts.append(f"{name} {min(values):,.0f}-{max(values):,.0f} GFLOP/s")
    return ", ".join(parts) + " (TensorFlow)"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", help="ARCHITECTURE@SHAPE, e.g. conv@28x28x1 (repeatable)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--round-seconds", type=float, default=4.0)
    parser.add_argument("--warmup-steps", type=int, default=8)
    parser.add_argument("--examples", type=int, default=8192, help="training images held in memory")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32")
    parser.add_argument("--torch-compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--zoo-alternatives", action="store_true",
                        help="also time the zoo with XLA on and with XLA off, whatever the runner chooses")
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                        help="time training only, not the IS-NLL evaluation")
    parser.add_argument("--nll-k", type=int, default=NLL_K, help="importance samples an example when timing the IS-NLL")
    parser.add_argument("--dry-run", action="store_true", help="tiny: one round of a few steps, 256 images")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.rounds, args.round_seconds, args.warmup_steps, args.examples, args.batch, args.nll_k = 1, 0.2, 2, 256, 32, 4
    chosen = [tuple(item.split("@")) for item in args.only] if args.only else [(a, s) for s in SHAPES for a in ARCHITECTURES]
    for architecture, shape in chosen:
        if architecture not in ARCHITECTURES or shape not in SHAPES:
            parser.error(f"--only {architecture}@{shape}: architectures are {', '.join(ARCHITECTURES)}; "
                         f"shapes {', '.join(SHAPES)}")
    try:
        import torch  # noqa: F401  (checked here, in the driver, so that the message is one line)
        args.without_torch = False
    except ImportError:
        if not args.dry_run:
            parser.error("PyTorch is not installed: pip install -r tools/requirements-bench.txt (a benchmark dependency only)")
        # The dry run checks the zoo's half where torch is not installed (CI): the table says so.
        args.without_torch = True

    from vae_zoo.io import saving

    context = multiprocessing.get_context("spawn")
    results = {"machine": f"{saving.hardware()['cpu']}, {os.cpu_count()} CPUs", "python": platform.python_version(),
               "batch": args.batch, "rounds": args.rounds, "precision": args.precision, "dry_run": args.dry_run,
               "nll_k": args.nll_k,
               "comparisons": []}
    for architecture, shape in chosen:
        try:
            row = compare(context, architecture, shape, args)
        except (RuntimeError, EOFError) as error:
            row = {"architecture": architecture, "shape": shape, "error": str(error)}
        print(json.dumps(row), flush=True)
        results["comparisons"].append(row)
    results["ceilings"] = ceiling_summary(results)
    args.out.mkdir(parents=True, exist_ok=True)
    # Each JSON holds its table ({"columns", "rows"}: what tools/write_readme.py reads) and the run's measurements.
    (args.out / "torch_comparison.json").write_text(json.dumps({**training_table(results), "results": results}, indent=1) + "\n")
    (args.out / "torch_comparison_nll.json").write_text(json.dumps({**nll_table(results), "results": "torch_comparison.json"}, indent=1) + "\n")
    (args.out / "torch_comparison.md").write_text(markdown(results))
    print(markdown(results))
    failed = [f"{r['architecture']}@{r['shape']}" for r in results["comparisons"] if "error" in r]
    if failed:
        sys.exit(f"bench_vs_torch: failed for {', '.join(failed)}")


if __name__ == "__main__":
    main()
