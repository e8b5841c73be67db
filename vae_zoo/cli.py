"""The ``vae-zoo`` command: list, info, train, evaluate, sample, tune, export, compress, decompress, publish,
reproduce.

Every command ends in one line on stderr when it fails: a mistake in the
input (a bad name, recipe, path, file or argument) exits with status 2, a
diverged training run with 3, anything else (a bug) with 1. ``--debug`` shows
the traceback instead.
"""

import argparse
import contextlib
import fnmatch
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import yaml

import vae_zoo
from vae_zoo import catalog
from vae_zoo.errors import DivergenceError, VaeZooError
from vae_zoo.io import folders, strict_json
from vae_zoo.io.cards import read_card
from vae_zoo.io.pretrained import catalog_entry, list_pretrained, local_copy, pretrained_card, pretrained_folder, resolve
from vae_zoo.limits import MAX_IMPORTANCE_SAMPLES, MAX_SAMPLES

# The modules that read data or run a model import TensorFlow (seconds, hundreds of MB): the commands import them
# lazily, each marked so, so that `list`, `info` and --help start without it (tests/test_cli.py checks).

# vae_zoo.data.modalities.IMAGE_SUFFIXES, named here so that --help does not import TensorFlow (a test holds them equal).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")
EXIT_USAGE, EXIT_DIVERGED, EXIT_BUG = 2, 3, 1

# vae_zoo.evaluation.report.PARTS, named here so that --help does not import TensorFlow (a test holds them equal).
REPORT_PARTS = ("scores", "nll", "latents", "generation", "interpolation", "latent_map", "anomaly", "ood",
                "semi_supervised", "disentanglement", "compression", "audio", "text")
# vae_zoo.io.saving.STORAGE_DTYPES, named here for the same reason (tests/test_pretrained.py holds them equal).
STORAGE_DTYPES = ("float32", "float16")


def bounded_int(minimum, maximum=None):
    """An argparse type: an integer in [minimum, maximum]."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum:,} to {maximum:,}" if maximum is not None else f"at least {minimum:,}"
            raise argparse.ArgumentTypeError(f"{value:,} is out of range: must be {bound}")
        return value

    return parse


def image_output(text, suffixes=IMAGE_SUFFIXES):
    """An argparse type: a new image file whose folder exists and is writable."""
    path = Path(text)
    if path.suffix.lower() not in suffixes:
        raise argparse.ArgumentTypeError(f"{text!r} must end in one of {', '.join(suffixes)}")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name such as {path / 'samples.png'}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"the folder {str(folder)!r} is not writable")
    return text


def cmd_list(args):
    if args.data:
        from vae_zoo import data as data_module  # lazy: imports TensorFlow

        names = [name for name in data_module.list_datasets() if fnmatch.fnmatchcase(name, args.pattern)]
        width = max((len(n) for n in names), default=0)
        for name in names:
            print(f"{name:<{width}}  {data_module.get_source(name).description}")
        return
    if args.pretrained:  # from the catalog: nothing is fetched
        for name in list_pretrained(args.pattern):
            entry = catalog_entry(name)
            if entry is None:  # one's own zoo ($VAE_ZOO_PRETRAINED_DIR): its card is at hand
                test = pretrained_card(name).get("metrics", {}).get("test", {})
                figures, where = {"test_elbo": test.get("elbo")}, "local"
            else:
                figures = entry.get("figures") or {}
                local = local_copy(name)
                where = f"{entry['bytes'] / 1e6:.1f} MB, {f'in {local.parent}' if local else 'fetched on first use'}"
            figure = f"test ELBO {figures['test_elbo']:.2f}" if isinstance(figures.get("test_elbo"), (int, float)) else ""
            print(f"{name}  {figure}  ({where})")
        return
    models = {name: info for name, info in catalog.read().items() if fnmatch.fnmatchcase(name, args.pattern)}
    width = max((len(n) for n in models), default=0)
    for name, info in sorted(models.items()):
        print(f"{name:<{width}}  {info['description']}")
    if not models:
        print(f"no model matches {args.pattern!r}", file=sys.stderr)


def cmd_info(args):
    if args.data:
        from vae_zoo import data as data_module  # lazy: imports TensorFlow

        print(data_module.describe(args.name))
        return
    info = catalog.entry(args.name)
    print(f"{args.name}: {info['description']}")
    print(f"class: {info['class']}")
    print("hyperparameters (defaults):")
    for key, value in info["hyperparameters"].items():
        print(f"  {key} = {json.dumps(value)}")


def cmd_train(args):
    from vae_zoo.training import recipe as recipes  # lazy: imports TensorFlow
    from vae_zoo.training import runner  # lazy: imports TensorFlow

    overrides = list(args.set)
    if args.distribute:
        overrides.append(f"training.distribute={args.distribute}")
    if args.mixed_precision:
        overrides.append(f"training.mixed_precision={args.mixed_precision}")
    recipe = recipes.read(args.recipe, overrides=overrides, smoke=args.smoke)
    out = args.out or recipes.default_out_dir(args.recipe, args.smoke)
    folder, _, card = runner.train(recipe, out, overwrite=args.overwrite, source=str(args.recipe), restart=args.restart)
    if card is None:  # a worker of a multi-worker run: the chief saves the model
        return
    print(strict_json.dumps({"saved": str(folder), "test": card["metrics"]["test"], "training": card["training"]}, indent=2))



def ood_data_spec(args):
    """--ood-data NAME with its --ood-option KEY=VALUE pairs (values read as YAML scalars): a name, or a spec dict."""
    if not args.ood_option:
        return args.ood_data
    if not args.ood_data:
        raise vae_zoo.ConfigError("--ood-option needs --ood-data NAME")
    spec = {"name": args.ood_data}
    for item in args.ood_option:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise vae_zoo.ConfigError(f"--ood-option takes KEY=VALUE, got {item!r}")
        spec[key.strip()] = yaml.safe_load(value)
    return spec

def cmd_evaluate(args):
    from vae_zoo import data as data_module  # lazy: imports TensorFlow
    from vae_zoo.evaluation import metrics as evaluation  # lazy: imports TensorFlow
    from vae_zoo.evaluation import report  # lazy: imports TensorFlow

    model_name, args.dir = args.dir, str(resolve(args.dir))
    model = vae_zoo.load(args.dir)
    spec = dict(read_card(args.dir).get("recipe", {}).get("data") or {})
    if args.data:
        spec = {"name": args.data}
    if not spec:
        raise vae_zoo.DataError(f"{args.dir} has no card naming its data set; pass --data NAME")
    spec.pop("limit", None)
    if args.data_dir:
        spec["data_dir"] = args.data_dir
    if args.out or args.only:
        only = [p.strip() for p in args.only.split(",")] if args.only else None
        with contextlib.redirect_stdout(sys.stderr):  # progress bars on stderr; stdout is the JSON result
            result = report.evaluate(model, spec, args.out or "report", only=only, split=args.split, k=args.k,
                                     anomaly_k=args.anomaly_k, limit=args.limit, seed=args.seed, progress=True,
                                     model_name=model_name, ood_data=ood_data_spec(args), regret_steps=args.regret_steps)
        print(strict_json.dumps({"report": str((args.out or "report")) + "/report.json", **result}, indent=2))
        return
    data = data_module.load(**report.data_spec_for(model, spec))
    model.check_fits(data)
    dataset = data.split(args.split)
    if args.limit is not None:
        dataset = dataset.unbatch().take(args.limit).batch(data.batch_size)
    result = {"model": args.dir, "data": data.name, "split": args.split, "binarize": data.binarize, "seed": args.seed,
              **evaluation.score_dataset(model, dataset, seed=args.seed)}
    print(strict_json.dumps(result, indent=2))


def cmd_finetune(args):
    from vae_zoo import data as data_module  # lazy: imports TensorFlow
    from vae_zoo.evaluation import finetune  # lazy: imports TensorFlow
    from vae_zoo.evaluation import metrics as evaluation  # lazy: imports TensorFlow
    from vae_zoo.evaluation import report  # lazy: imports TensorFlow

    model_name, folder = args.dir, resolve(args.dir)
    model = vae_zoo.load(folder)
    if not finetune.can_finetune(model):
        raise vae_zoo.CapabilityError(f"{model_name} ({model.registered_name}) has no encoder of the data alone to fine-tune")
    spec = {"name": args.data} if args.data else dict(read_card(folder).get("recipe", {}).get("data") or {})
    if not spec:
        raise vae_zoo.DataError(f"{model_name} has no card naming its data set; pass --data NAME")
    for key in ("limit", "labels_per_class", "labelled_per_batch"):
        spec.pop(key, None)
    data = data_module.load(**{**report.data_spec_for(model, spec), "labels": True})
    model.check_fits(data)
    if data.num_classes < 2:
        raise vae_zoo.DataError(f"data {data.name!r} has no class labels to fine-tune on")
    with contextlib.redirect_stdout(sys.stderr):
        result = evaluation.semi_supervised(model, data, labels_per_class=(args.labels_per_class,), repeats=args.repeats,
                                            seed=args.seed)
    scores = result[f"{args.labels_per_class}_per_class"]
    print(strict_json.dumps({"model": model_name, "data": data.name, "labels_per_class": args.labels_per_class,
                             "repeats": args.repeats, "test_accuracy": scores,
                             "method": "the encoder's trunk with a new linear head, trained on the labelled examples "
                                       f"({finetune.STEPS} full-batch AdamW steps), beside logistic regression on the "
                                       "frozen posterior means and on the raw features"}, indent=2))


def cmd_sample(args):
    from vae_zoo.data import get_modality, trained_data_spec  # lazy: imports TensorFlow

    folder = resolve(args.dir)
    model = vae_zoo.load(folder)
    if not model.can("sample"):
        raise vae_zoo.InputError(f"{model.registered_name} cannot generate: it has no prior to sample from")
    # The card says what the data are (images, spectrograms, sentences...); their modality renders the samples.
    spec = trained_data_spec(model, read_card(folder))
    modality = get_modality(spec.modality)
    samples = model.sample(args.n, seed=args.seed)
    written = modality.save_samples(model, samples, args.out, spec, title=f"{model.registered_name}: {args.n} samples")
    if not written:
        raise vae_zoo.DataError(f"{model.registered_name} generates data of shape {model.data_shape}, "
                                f"which the {modality.name} modality cannot render")
    for line in (*modality.describe_samples(model, samples), *written):
        print(line)


def cmd_export(args):
    folder = resolve(args.dir)
    model = vae_zoo.load(folder)
    with contextlib.redirect_stdout(sys.stderr):  # the verification's progress bar on stderr; stdout is the JSON result
        path = vae_zoo.export(model, args.out, card=read_card(folder), overwrite=args.overwrite, format=args.format, progress=True)
    inspect = {"savedmodel": f"saved_model_cli show --dir {path} --all", "portable": f"saved_model_cli show --dir {path} --all",
               "tflite": f"{path}/model.tflite", "onnx": f"{path}/<signature>.onnx",
               "tfjs": f"{path}/<signature>/model.json, output names in {path}/signatures.json"}[args.format]
    print(strict_json.dumps({"exported": str(path), "format": args.format, "inspect": inspect}, indent=2))


def cmd_tune(args):
    from vae_zoo.training import recipe as recipes  # lazy: imports TensorFlow
    from vae_zoo.training import tuning  # lazy: imports TensorFlow

    tuning.distributed_environment(args.chief, args.worker, args.oracle)
    recipe = recipes.read(args.recipe, overrides=args.set, smoke=args.smoke)
    tuning.search_options(recipe)  # fail on a bad search section before any data is loaded
    out = args.out or str(recipes.default_out_dir(args.recipe, args.smoke)).replace("runs/", "runs/search_", 1)
    summary = tuning.run(recipe, out, source=str(args.recipe), jit_compile=False if args.no_jit else None,
                         verbose=2 if args.verbose else 0, overwrite=args.restart)
    if "trials" in summary:
        print(tuning.format_table(out, summary["direction"]))
    print(strict_json.dumps(summary, indent=2, default=str))


def cmd_compress(args):
    from vae_zoo.compression import files, inputs  # lazy: imports TensorFlow
    from vae_zoo.io.saving import weights_digest  # lazy: imports TensorFlow

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise vae_zoo.InputError(f"{out} exists; pass --overwrite to replace it")
    model = vae_zoo.load(resolve(args.model))
    method = files.method_for(model)
    # A named data set comes binarized for a Bernoulli code, as 8-bit levels for a logistic mixture's.
    kind = files.codec_for(model, method).pixels.kind if method in files.LOSSLESS else None
    images, description = inputs.read_images(args.input, split=args.split, limit=args.limit, seed=args.seed,
                                             binarized=kind == "binary", channels=int(model.data_shape[-1]),
                                             levels=kind == "8-bit")
    images = inputs.binarize(images, args.binarize, seed=args.seed)
    digest = weights_digest(model)
    start = time.perf_counter()
    raw, summary = files.compress(model, images, header_model_name(args.model), digest)
    summary["encode_images_per_second"] = summary["examples"] / (time.perf_counter() - start)
    if not args.no_verify:  # decode before writing: a file that would not decode is never saved
        start = time.perf_counter()
        decoded = files.decompress(raw, model, digest, source="the new file")
        summary["decode_images_per_second"] = summary["examples"] / (time.perf_counter() - start)
        if not files.decodes_to(decoded, images):
            raise vae_zoo.InputError("the compressed file does not decode to the same images; nothing was written")
    folders.write_file(out, raw, overwrite=args.overwrite)
    print(strict_json.dumps({"compressed": str(out), "input": description, **summary}, indent=2))


def header_model_name(model_argument):
    """The model name a .vzc header records: a pretrained name as given, else the folder's own name (a hint for
    the reader; ``decompress`` then needs ``--model``)."""
    if model_argument in list_pretrained() and not Path(model_argument).exists():
        return model_argument
    return pretrained_card_name(Path(model_argument)) or Path(model_argument).resolve().name


def pretrained_card_name(folder):
    try:
        return read_card(folder).get("pretrained_name")
    except vae_zoo.ModelFileError:
        return None


def header_model_folder(name, file):
    """The pretrained model a header names. A header is never read as a path: a forged '../../x' would make
    decompress open whatever it names; a folder of one's own is passed with --model."""
    if name not in list_pretrained():
        raise vae_zoo.InputError(f"{file} was compressed with {name!r}, which is not a pretrained model; "
                                 "pass --model with the model folder it was compressed with")
    return pretrained_folder(name)  # the catalog's folder, never a path from the file


def cmd_download(args):
    names = list_pretrained() if args.all else args.names
    if not names:
        raise vae_zoo.ConfigError("name the models to fetch (vae-zoo list --pretrained), or pass --all")
    folders = {name: str(pretrained_folder(name)) for name in names}
    print(strict_json.dumps({"folders": folders}, indent=2))


def cmd_decompress(args):
    from vae_zoo.compression import container, files  # lazy: imports TensorFlow
    from vae_zoo.data.plotting import save_image_grid  # lazy: vae_zoo.data imports TensorFlow
    from vae_zoo.io.saving import weights_digest  # lazy: imports TensorFlow

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise vae_zoo.InputError(f"{out} exists; pass --overwrite to replace it")
    raw = Path(args.file).read_bytes()
    header, _ = container.unpack(raw, args.file)
    model = vae_zoo.load(resolve(args.model) if args.model else header_model_folder(header.model, args.file))
    result = files.decompress(raw, model, weights_digest(model), source=args.file)
    staging = folders.staging_folder(out)
    try:
        preview = files.save_decoded(result, staging)
        save_image_grid(preview[:64], staging / "preview.png", title=f"{header.describe()}")
        folders.move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(strict_json.dumps({"decompressed": str(out), "method": header.method, "model": header.model,
                             "examples": header.count, "shape": list(header.shape),
                             "files": sorted(p.name for p in out.iterdir())}, indent=2))


def print_published(folder):
    print(strict_json.dumps({"published": str(folder), "bytes": sum(f.stat().st_size for f in folder.iterdir())}, indent=2))


def cmd_publish(args):
    from vae_zoo import publishing  # lazy: imports TensorFlow, which --help and list do without

    print_published(publishing.publish(args.run_folder, args.name, args.zoo or publishing.ZOO, args.report,
                                       args.trained_on_this_machine, args.recipe_file, args.weights_dtype))


def cmd_reproduce(args):
    from vae_zoo import publishing  # lazy: imports TensorFlow, which --help and list do without

    with contextlib.redirect_stdout(sys.stderr):  # training's and evaluation's progress on stderr; stdout is the JSON result
        folder = publishing.reproduce(args.name, args.runs or publishing.RUNS, args.zoo or publishing.ZOO, args.k, args.smoke,
                                      args.weights_dtype)
    print_published(folder)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block): the command, the argument and the problem."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


def build_parser():
    parser = Parser(prog="vae-zoo", description="A model zoo of Variational Autoencoders for Keras 3.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    parser.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up log lines")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style wildcard, e.g. '*vae*'")
    p.add_argument("--pretrained", action="store_true", help="list the pretrained models instead")
    p.add_argument("--data", action="store_true", help="list the registered data sets instead")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("download", help="fetch pretrained models into the cache ($VAE_ZOO_HOME), checked by SHA-256")
    p.add_argument("names", nargs="*", help="pretrained names (vae-zoo list --pretrained) or hf://owner/repo")
    p.add_argument("--all", action="store_true", help="every model of the catalog")
    p.set_defaults(run=cmd_download)

    p = commands.add_parser("info", help="describe a model and its hyperparameters (--data: a data set and its options)")
    p.add_argument("name")
    p.add_argument("--data", action="store_true", help="describe the data set NAME instead")
    p.set_defaults(run=cmd_info)

    p = commands.add_parser("train", help="train from a recipe and save a zoo folder")
    p.add_argument("recipe", help="a recipe YAML file, e.g. recipes/vae/mnist_mini.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, e.g. model.latent_dim=32")
    p.add_argument("--smoke", action="store_true", help="shrink data and epochs to a quick check")
    p.add_argument("--out", help="folder for the trained model (default: runs/<recipe>-<time>)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (only once training succeeded)")
    p.add_argument("--restart", action="store_true", help="discard an interrupted run of --out instead of resuming it")
    p.add_argument("--distribute", choices=["none", "mirrored", "multi_worker"], help="training.distribute: tf.distribute strategy "
                   "(multi_worker reads TF_CONFIG)")
    p.add_argument("--mixed-precision", choices=["float32", "mixed_float16", "mixed_bfloat16", "auto"], help="training.mixed_precision (auto: bfloat16 where the hardware has it)")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("evaluate", help="score a saved model on its data set; prints JSON")
    p.add_argument("dir", help="a saved model folder or a pretrained name (vae-zoo list --pretrained)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--data", help="data set name (default: the one on the model card)")
    p.add_argument("--data-dir", help="directory of local data files")
    p.add_argument("--limit", type=bounded_int(1), help="score at most this many examples")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0)
    p.add_argument("--out", help="write the full report (report.json and PNGs) into this folder")
    p.add_argument("--only", help="comma-separated report parts: " + ", ".join(REPORT_PARTS))
    p.add_argument("--ood-data", help="the 'ood' part: a data set whose test split is out of distribution, e.g. mnist_mini")
    p.add_argument("--ood-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the --ood-data set (repeatable), e.g. mode=grey and size=28 for emoji")
    p.add_argument("--k", type=bounded_int(1, MAX_IMPORTANCE_SAMPLES), default=1000, help="importance samples for the test NLL")
    p.add_argument("--anomaly-k", type=bounded_int(1, MAX_IMPORTANCE_SAMPLES), default=100,
                   help="importance samples for the NLL anomaly score")
    p.add_argument("--regret-steps", type=bounded_int(0, 100_000), default=None,
                   help="the 'ood' part: optimizer steps that fit each input's posterior for the likelihood regret "
                        "(default: vae_zoo.evaluation.regret.STEPS, chosen on validation data; 0 leaves the score out)")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("finetune", help="fine-tune a model's encoder as a classifier from few labels, beside the "
                                             "frozen-latent probe; prints JSON")
    p.add_argument("dir", help="a saved model folder or a pretrained name (vae-zoo list --pretrained)")
    p.add_argument("--labels-per-class", type=bounded_int(1, 100_000), default=10, help="labelled training examples per class")
    p.add_argument("--repeats", type=bounded_int(1, 100), default=5, help="label draws (mean and spread are reported)")
    p.add_argument("--data", help="data set name (default: the one on the model card)")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0)
    p.set_defaults(run=cmd_finetune)

    p = commands.add_parser("sample", help="draw samples from a saved model, rendered as its data's modality renders them "
                                           "(images: a PNG grid; audio: a spectrogram PNG and WAVs; sentences: a text file)")
    p.add_argument("dir", help="a saved model folder or a pretrained name")
    p.add_argument("--n", type=bounded_int(1, MAX_SAMPLES), default=64, help=f"number of samples (at most {MAX_SAMPLES:,})")
    p.add_argument("--out", type=lambda text: image_output(text, (*IMAGE_SUFFIXES, ".txt")), default="samples.png",
                   help="image file: " + ", ".join(IMAGE_SUFFIXES) + " (a modality that writes another kind of file, "
                        "such as text, uses this name with its own suffix)")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=None)
    p.set_defaults(run=cmd_sample)

    p = commands.add_parser("tune", help="hyperparameter search from a recipe's search section (resumable)")
    p.add_argument("recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, e.g. search.max_trials=20")
    p.add_argument("--smoke", action="store_true", help="a tiny search for a quick check")
    p.add_argument("--out", help="folder for the search state and results; rerun the command to resume")
    p.add_argument("--restart", action="store_true", help="discard a previous search in --out instead of resuming it")
    p.add_argument("--no-jit", action="store_true", help="compile trials without XLA")
    p.add_argument("--chief", action="store_true", help="run the oracle of a distributed search")
    p.add_argument("--worker", metavar="NAME", help="run trials for a distributed search's chief")
    p.add_argument("--oracle", metavar="HOST:PORT", help="the chief's address (or set KERASTUNER_ORACLE_IP/PORT)")
    p.add_argument("--verbose", action="store_true")
    p.set_defaults(run=cmd_tune)

    p = commands.add_parser("export", help="write a SavedModel with serving signatures")
    p.add_argument("dir", help="a saved model folder or a pretrained name")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--format", default="savedmodel", choices=["savedmodel", "portable", "tflite", "onnx", "tfjs"],
                   help="savedmodel: TF Serving, every signature; portable: plain-op signatures with the noise as input; "
                        "tflite, onnx: the portable signatures converted and verified (onnx needs vae_zoo[export]); "
                        "tfjs: TF.js graph models (needs VAE_ZOO_TFJS_CONVERTER, docs/deploy.md)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("compress", help="compress images with a model: lossless bits-back (Bernoulli VAEs) or "
                            "lossy VQ codes (VQ-VAEs); prints the sizes as JSON")
    p.add_argument("model", help="a saved model folder or a pretrained name, e.g. vae.mnist_mini")
    p.add_argument("input", help="an .npz of images, a folder of images, or a data set name (its --split)")
    p.add_argument("--out", required=True, help="the compressed file to write (.vzc)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"], help="for a data set name")
    p.add_argument("--limit", type=bounded_int(1), help="compress at most this many images")
    p.add_argument("--binarize", default="none", choices=["none", "threshold", "stochastic"],
                   help="make grey images binary first (lossless coding with a Bernoulli model needs 0/1 images)")
    p.add_argument("--seed", type=bounded_int(0, 2**31 - 1), default=0, help="for stochastic binarization and data sets")
    p.add_argument("--no-verify", action="store_true", help="skip decoding the file before it is written")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_compress)

    p = commands.add_parser("decompress", help="decode a .vzc file into a folder (images.npz or reconstructions.npz, preview.png)")
    p.add_argument("file", help="a file written by vae-zoo compress")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--model", help="the model folder or pretrained name (default: the one named in the file)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=cmd_decompress)

    p = commands.add_parser("publish", help="publish a trained run as a pretrained model (artifacts/<arch>.<tag>/ with a Hub "
                            "README.md, and its entry in the pretrained catalog), without its optimizer state, with a "
                            "test slice measured on its card")
    # dest run_folder: args.run is the command to run
    p.add_argument("run_folder", metavar="run", help="a zoo folder written by vae-zoo train")
    p.add_argument("name", help="arch.tag, e.g. vae.fashion_mnist")
    p.add_argument("--report", help="a report.json of vae-zoo evaluate --out to publish with it")
    p.add_argument("--zoo", help="the zoo folder (default: the repository's artifacts/, kept out of git)")
    p.add_argument("--recipe-file", help="a recipe file of the repository that reads as the recipe on the card "
                                         "(checked), to name on the card instead of the file the run was started from")
    p.add_argument("--trained-on-this-machine", action="store_true",
                   help="for a card from before vae_zoo 0.4.1, which did not record the hardware: record this "
                        "machine's (only when the run was trained here)")
    p.add_argument("--weights-dtype", choices=STORAGE_DTYPES, default="float32",
                   help="store the weights in this dtype (float16: half the space); the card's test figures are then "
                        "measured again on the rounded weights, and a --report must have been measured on them "
                        "(publish without one, run vae-zoo evaluate on the published folder, publish again with it)")
    p.set_defaults(run=cmd_publish)

    p = commands.add_parser("reproduce", help="train a pretrained model from its recipe, evaluate it and publish it "
                            "with its report, in one command")
    p.add_argument("name", help="arch.tag, e.g. vae.fashion_mnist (its card's recipe, else recipes/<arch>/<tag>.yaml)")
    p.add_argument("--runs", help="where the training run goes (default: the repository's runs/)")
    p.add_argument("--zoo", help="where to publish (default: the repository's artifacts/, kept out of git)")
    p.add_argument("--k", type=bounded_int(1, MAX_IMPORTANCE_SAMPLES), default=1000,
                   help="importance samples for the test NLL (the benchmark: 5000)")
    p.add_argument("--smoke", action="store_true", help="the recipe's smoke settings, 256 test examples, k = 10")
    p.add_argument("--weights-dtype", choices=STORAGE_DTYPES,
                   help="how the published weights are stored (default: as the published card says, else float32)")
    p.set_defaults(run=cmd_reproduce)
    return parser


def one_line(err):
    return " ".join(str(err).split()) or type(err).__name__


def global_flags(argv):
    """``argv`` without ``--debug`` and ``--verbose``, which may come anywhere on the line, and the two flags.

    ``tune`` keeps its own ``--verbose`` (per-trial output), which also means verbose here.
    """
    tune = argv[:1] == ["tune"]
    debug, verbose = "--debug" in argv, "--verbose" in argv
    kept = [a for a in argv if a != "--debug" and (a != "--verbose" or tune)]
    return kept, debug, verbose


def one_line_warning(message, category, filename, lineno, line=None):
    """The project's own warnings (skipped files, cleaned-up folders) as one line each, without the source line;
    other libraries' as Python writes them."""
    if Path(filename).resolve().is_relative_to(Path(vae_zoo.__file__).resolve().parent):
        return f"vae-zoo: warning: {one_line(message)}\n"
    return _default_format_warning(message, category, filename, lineno, line)


_default_format_warning = warnings.formatwarning


def main(argv=None):
    argv, debug, _ = global_flags(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.debug = debug
    warnings.formatwarning = one_line_warning
    try:
        args.run(args)
    except DivergenceError as err:
        if args.debug:
            raise
        print(f"vae-zoo: error: {one_line(err)}", file=sys.stderr)
        return EXIT_DIVERGED
    except (VaeZooError, OSError) as err:  # OSError: a missing, unreadable or unwritable path
        if args.debug:
            raise
        print(f"vae-zoo: error: {one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001  anything else is a bug: still one line unless --debug
        if args.debug:
            raise
        print(f"vae-zoo: internal error: {type(err).__name__}: {one_line(err)[:500]} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_BUG
    return 0


@contextlib.contextmanager
def tensorflow_quiet():
    """Send the C++ runtime's start-up log lines (written to file descriptor 2 before any log level
    applies, e.g. "failed call to cuInit") to /dev/null, while Python's own stderr keeps the terminal."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    terminal = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    previous = sys.stderr
    sys.stderr = os.fdopen(os.dup(terminal), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = previous
        os.dup2(terminal, 2)
        os.close(terminal)


def run(argv=None):
    """The console entry point: ``main`` without TensorFlow's start-up noise (``--verbose`` keeps it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _, _, verbose = global_flags(argv)
    if verbose or argv[:1] in (["list"], ["info"]) or not argv or "-h" in argv or "--help" in argv:
        return main(argv)
    with tensorflow_quiet():
        return main(argv)


if __name__ == "__main__":
    sys.exit(run())
