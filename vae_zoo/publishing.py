"""Publishing a trained run as a pretrained zoo model, and reproducing one from its recipe in one call.

    vae-zoo publish runs/vae_fashion_mnist vae.fashion_mnist       # publish(run, name)
    vae-zoo reproduce vae.fashion_mnist --k 5000                    # reproduce(name, k=5000)

``publish`` re-saves the model as ``artifacts/<arch>.<tag>/`` without its optimizer state (a third of the
size: users load it to use it, not to resume training), with its card, samples, any ``report.json`` from
``vae-zoo evaluate --out`` and a Hub model card (``README.md``), and adds it to the package's pretrained catalog
(``vae_zoo/pretrained.json``: sizes and SHA-256 of its files); docs/pretrained.md says how it is uploaded. The card also gets ``metrics.test_slice`` (where it names its recipe's data): the
test scores over the split's first 500 examples, measured on the weights as published (the zoo's tests
measure them again). With ``weights_dtype="float16"`` the weights are stored in half the space (for models
over the zoo's 30 MB budget): the card's test figures are measured again on the rounded weights (the run's
own stay on the card as ``metrics.test_before_rounding``), and a report must carry the digest of the
rounded weights.

``reproduce`` trains from the recipe that made the model (the card's ``recipe_file`` where the repository has
it, else the recipe stored in the card, or ``recipes/<arch>/<tag>.yaml`` for a name not published yet) into
``runs/<name>`` (``runs/<name>-smoke`` with ``smoke``; an interrupted sitting resumes there), evaluates it into
``runs/<name>/report`` and publishes it with that report.

This module sits above training, evaluation and io: it uses them, and nothing in the package imports it but
the command line.
"""

import json
import sys
from pathlib import Path

from vae_zoo.data.modalities import get_modality, trained_data_spec
from vae_zoo.errors import ConfigError, DataError, RecipeError
from vae_zoo.evaluation import card_check, report
from vae_zoo.io import model_cards, pretrained, saving
from vae_zoo.io.cards import CARD_FILE, read_card
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

# The checkout vae_zoo runs from: its artifacts/ (published models, kept out of git: they are uploaded, and the
# catalog lists them), recipes/ and runs/.
REPOSITORY = pretrained.REPOSITORY_ZOO.parent
ZOO = pretrained.REPOSITORY_ARTIFACTS
RUNS = REPOSITORY / "runs"
# The report parts that reproduce() measures, with those that only the data's modality has (``report_parts``: audio,
# text); parts that do not apply to a model are recorded in its report as skipped, with the reason.
REPRODUCED_PARTS = ("scores", "nll", "latents")
# A smoke reproduction's evaluation: few test examples and importance samples.
SMOKE_EXAMPLES, SMOKE_K = 256, 10


def as_trained(recipe):
    """The recipe without ``training.verbose``, which changes what a run prints, not what it trains."""
    training = {key: value for key, value in (recipe.get("training") or {}).items() if key != "verbose"}
    return {**recipe, "training": training}


def split_name(name):
    """``"vae.fashion_mnist"`` -> ``("vae", "fashion_mnist")``."""
    arch, _, tag = str(name).partition(".")
    if not arch or not tag:
        raise ConfigError(f"a pretrained name is <arch>.<tag>, e.g. vae.fashion_mnist, got {name!r}")
    return arch, tag


def publish(run, name, zoo=ZOO, report=None, trained_on_this_machine=False, recipe_file=None, weights_dtype="float32"):
    """Save ``run``'s model as ``zoo/name`` with its card, its test slice measured on the published weights.

    ``report``: a ``report.json`` of ``vae-zoo evaluate --out`` to publish with it (measured on the weights to be
    published); ``recipe_file``: a repository recipe that reads as the card's, to name on the card instead of the
    file the run was started from; ``trained_on_this_machine``: for a card from before vae_zoo 0.4.1, which did
    not record the hardware, record this machine's. Returns the published folder.
    """
    trained = saving.load(run)
    arch, _ = split_name(name)
    if arch != trained.registered_name:
        raise ConfigError(f"the name must be {trained.registered_name}.<tag>, got {name!r}")
    fresh = type(trained).from_config(trained.get_config())
    fresh.set_weights(saving.rounded_to(trained.get_weights(), weights_dtype))
    card = {**read_card(run), "pretrained_name": name}
    shipped_digest = card["weights_sha256"] = saving.weights_digest(fresh)  # the run's differs where rounded
    if report:
        measured_on = json.loads(Path(report).read_text()).get("weights_sha256")
        if measured_on not in (None, shipped_digest) or (measured_on is None and weights_dtype != "float32"):
            raise DataError(f"{report} was not measured on the weights to be published ({weights_dtype}); evaluate the "
                            f"published folder (vae-zoo evaluate {Path(zoo) / name} --out ...) and publish again with that report")
    if recipe_file:
        if as_trained(recipes.read(recipe_file)) != as_trained(card.get("recipe") or {}):
            raise RecipeError(f"{recipe_file} is not the recipe on {run}'s card, so the card cannot name it")
        # Named from the repository's root, so the card reads the same in any checkout.
        recipe_path = Path(recipe_file).resolve()
        card["recipe_file"] = str(recipe_path.relative_to(REPOSITORY) if recipe_path.is_relative_to(REPOSITORY) else recipe_file)
    if report:
        card["report"] = json.loads(Path(report).read_text())
    training = card.setdefault("training", {})
    if training.get("resumed_after_epoch") and "seconds_last_sitting" not in training:
        # Before vae_zoo 0.2.2 a resumed run's card gave the last sitting's time as its training time.
        training["seconds_last_sitting"], training["seconds"] = training.get("seconds"), None
    if "hardware" not in training:
        training["hardware"] = saving.hardware() if trained_on_this_machine else "not recorded"
    if (card.get("recipe") or {}).get("data"):
        if weights_dtype != "float32":  # the run's figures describe float32 weights: measure the ones that ship
            card["metrics"]["test_before_rounding"] = card["metrics"]["test"]
            card["metrics"]["test"] = card_check.test_scores(fresh, card)
        card["metrics"]["test_slice"] = card_check.slice_scores(fresh, card)
    else:  # trained through the Python API: no recipe says which data it was tested on
        print(f"warning: {run}'s card names no recipe data, so no test slice is recorded", file=sys.stderr)
    folder = saving.save(fresh, Path(zoo) / name, card=card, overwrite=True, weights_dtype=weights_dtype)
    model_cards.write_hub_readme(folder, name)
    model_cards.update_catalog(name, folder, catalog_for(zoo))
    return folder


def catalog_for(zoo):
    """The catalog a publish into ``zoo`` updates: the package's for the repository's own zoos, else the zoo's own
    ``pretrained.json`` (the catalog of a mirror one keeps oneself)."""
    if Path(zoo).resolve() in (pretrained.REPOSITORY_ZOO.resolve(), pretrained.REPOSITORY_ARTIFACTS.resolve()):
        return pretrained.CATALOG_FILE
    return Path(zoo) / "pretrained.json"


def recipe_for(name, smoke=False):
    """``(recipe, source)``: the validated recipe that made ``name`` (or makes it, for a name not published yet),
    and the repository file it comes from (None for a recipe stored only in the card)."""
    arch, tag = split_name(name)
    if name in pretrained.list_pretrained():
        card = pretrained.pretrained_card(name)
        recorded = card.get("recipe_file")
        if not (recorded and (REPOSITORY / recorded).is_file()):
            return recipes.parse(card["recipe"], smoke=smoke, source=f"{name}'s card recipe"), None
    else:
        recorded = f"recipes/{arch}/{tag}.yaml"
        if not (REPOSITORY / recorded).is_file():
            raise RecipeError(f"{name} is not published and {recorded} does not exist")
    # Named from the repository's root, so the card names its recipe as the repository does (recipes/...).
    return recipes.read(REPOSITORY / recorded, smoke=smoke), recorded


def stored_dtype(name):
    """The dtype a published model's weights are stored in (float32 for a name not published yet)."""
    if name not in pretrained.list_pretrained():
        return "float32"
    return pretrained.pretrained_card(name).get("storage", {}).get("weights_dtype", "float32")


def reproduce(name, runs=RUNS, zoo=ZOO, k=1000, smoke=False, weights_dtype=None):
    """Train ``name`` from its recipe, evaluate it and publish it with its report into ``zoo``; returns the folder.

    ``k``: importance samples for the test NLL (the benchmark: 5000); ``smoke``: the recipe's smoke settings,
    256 test examples and k = 10; ``weights_dtype``: how the published weights are stored (default: as the
    published card says, else float32). A run already finished in ``runs/<name>`` is not trained again.
    """
    recipe, source = recipe_for(name, smoke)
    # A smoke run has a folder of its own, so it never replaces a real run's.
    run = Path(runs) / (f"{name}-smoke" if smoke else name)
    if smoke or not (run / CARD_FILE).is_file():
        print(f"training {name} from {source or 'the recipe on its card'}", file=sys.stderr, flush=True)
        runner.train(recipe, run, overwrite=smoke, source=source)
    weights_dtype = weights_dtype or stored_dtype(name)
    card = read_card(run)
    # Rounded weights are published first and evaluated as published, so the report describes what ships.
    evaluated = run if weights_dtype == "float32" else publish(run, name, zoo, weights_dtype=weights_dtype)
    print(f"evaluating {name}", file=sys.stderr, flush=True)
    model = saving.load(evaluated)
    parts = (*REPRODUCED_PARTS, *get_modality(trained_data_spec(model, card).modality).report_parts)
    report.evaluate(model, card_check.card_data_spec(card), run / "report", only=list(parts),
                    k=SMOKE_K if smoke else k, limit=SMOKE_EXAMPLES if smoke else None, progress=True,
                    model_name=str(evaluated))
    return publish(run, name, zoo, run / "report" / "report.json", weights_dtype=weights_dtype)
