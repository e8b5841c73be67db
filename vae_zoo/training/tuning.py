"""Hyperparameter search with keras-tuner, driven by a recipe's ``search:`` section.

    search:
      tuner: bayesian            # random | bayesian | hyperband
      max_trials: 12
      epochs: 10                 # per trial (hyperband: the most any trial gets)
      objective: elbo            # elbo (validation ELBO, maximised) | nll (validation IS-NLL) | loss
      nll_k: 20                  # importance samples for objective: nll
      early_stopping: {patience: 3}
      parameters:
        beta:          {type: float, min: 0.1, max: 4.0}           # log scale
        latent_dim:    {type: int, min: 2, max: 64, sampling: log}
        learning_rate: {type: float, min: 1.0e-4, max: 3.0e-3}     # log scale
        hidden_sizes:  {type: choice, values: [[256, 256], [400, 400]]}

``learning_rate`` sets the optimizer's; every other name is a keyword argument
of the recipe's model. ``beta`` and ``learning_rate`` are always sampled on a
log scale. A search is resumable: run the same command again and finished
trials are kept, the interrupted one is retried. With ``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` set (``vae-zoo tune
--chief`` / ``--worker``), keras-tuner's own distributed mode shares the
trials of one search between machines.
"""

import contextlib
import copy
import csv
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import keras
import keras_tuner as kt

from vae_zoo.errors import RecipeError, VaeZooError
from vae_zoo.evaluation.metrics import log_likelihood, score_dataset
from vae_zoo.io import folders, saving, strict_json
from vae_zoo.registry import get_model_class
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner
from vae_zoo.training.recipe_schema import OBJECTIVES, search_options
from vae_zoo.training.warm_start import load_initial_weights

LOG_SCALE = ("beta", "learning_rate")
# The search's recipe and its digest, beside keras-tuner's own state.
SEARCH_RECORD = "search_recipe.json"


def sample_hyperparameter(hp, name, spec):
    """Draw one value from ``hp`` for a parameter spec."""
    sampling = "log" if name in LOG_SCALE else spec.get("sampling", "linear")
    if spec["type"] == "float":
        return hp.Float(name, float(spec["min"]), float(spec["max"]), sampling=sampling)
    if spec["type"] == "int":
        return hp.Int(name, int(spec["min"]), int(spec["max"]), sampling=sampling)
    # keras-tuner choices are scalars; lists (hidden sizes) travel as JSON text.
    encoded = [json.dumps(v) for v in spec["values"]]
    return json.loads(hp.Choice(name, encoded))


def apply_values(recipe, values):
    """A copy of ``recipe`` with searched values put in place (model kwargs, learning rate)."""
    recipe = copy.deepcopy(recipe)
    for name, value in values.items():
        if name == "learning_rate":
            recipe.setdefault("optimizer", {"name": "adam"})["learning_rate"] = value
        else:
            recipe["model"][name] = value
    return recipe


class ValidationNLL(keras.callbacks.Callback):
    """Adds ``val_nll``, the importance-sampled negative log-likelihood of validation data, to the epoch logs."""

    def __init__(self, images, labels=None, k=20, examples=1000):
        super().__init__()
        self.images, self.labels, self.k = images[:examples], None if labels is None else labels[:examples], int(k)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["val_nll"] = float(-log_likelihood(self.model, self.images, self.labels, k=self.k, seed=epoch).mean())


class RecipeHyperModel(kt.HyperModel):
    """Builds the recipe's model with hyperparameters drawn from its search space, and trains it
    through the same runner as ``vae-zoo train`` (the recipe's callbacks, data stream and seeds)."""

    def __init__(self, recipe, data, jit_compile="auto"):
        super().__init__(name=recipe["model"]["name"])
        self.recipe, self.data, self.jit_compile = recipe, data, jit_compile
        self.parameters = search_options(recipe)["parameters"]

    def trial_recipe(self, hp):
        """The recipe with this trial's hyperparameters in place."""
        values = {name: sample_hyperparameter(hp, name, spec) for name, spec in self.parameters.items()}
        recipe = apply_values(self.recipe, values)
        recipe.setdefault("training", {})["jit_compile"] = self.jit_compile
        return recipe

    def build(self, hp):
        recipe = self.trial_recipe(hp)
        model = recipes.compile_model(recipes.build_model(recipe, self.data), recipe, self.data.steps_per_epoch())
        initial = recipes.training_options(recipe)["initial_weights"]
        if initial:  # a search that fine-tunes: every trial starts from the same weights
            load_initial_weights(model, initial)
        return model

    def fit(self, hp, model, *args, callbacks=(), epochs=None, verbose=0, **kwargs):
        """Train one trial with the runner; the tuner's own callbacks (its checkpoint, early stopping) ride along."""
        logs = runner.fit(model, self.data, self.trial_recipe(hp), list(callbacks), epochs=epochs, verbose=verbose)
        return runner.as_history(logs)


def _recording(tuner_class):
    """``tuner_class`` that also lists the trials this process ran (workers report them)."""

    class Recording(tuner_class):
        def run_trial(self, trial, *args, **kwargs):
            self.trials_run = [*getattr(self, "trials_run", []), trial.trial_id]
            return super().run_trial(trial, *args, **kwargs)

    Recording.__name__ = tuner_class.__name__
    return Recording


def make_tuner(recipe, data, directory, project="search", jit_compile=None, overwrite=False):
    """The keras-tuner tuner the recipe asks for, writing its state under ``directory/project``."""
    options = search_options(recipe)
    jit = options["jit_compile"] if jit_compile is None else jit_compile
    hypermodel = RecipeHyperModel(recipe, data, jit_compile=jit)
    if "elbo" not in get_model_class(recipe["model"]["name"]).capabilities and options["objective"] != "loss":
        raise RecipeError(f"{recipe['model']['name']} has no ELBO: use search.objective: loss")
    metric, direction = OBJECTIVES[options["objective"]]
    distribute = recipes.training_options(recipe)["distribute"]
    if distribute == "multi_worker":
        raise RecipeError("a search spreads its trials over machines with --chief/--worker; use training.distribute: "
                          "none or mirrored for each trial")
    common = dict(objective=kt.Objective(metric, direction=direction), directory=str(directory), project_name=project,
                  overwrite=overwrite, seed=int(options["seed"]), executions_per_trial=int(options["executions_per_trial"]),
                  # keras-tuner builds each trial's model inside this strategy's scope.
                  distribution_strategy=None if distribute == "none" else runner.make_strategy(distribute))
    if options["tuner"] == "hyperband":
        return _recording(kt.Hyperband)(hypermodel, max_epochs=int(options["epochs"]), factor=int(options.get("hyperband_factor", 3)),
                            max_consecutive_failed_trials=3, **common)
    tuner_class = kt.BayesianOptimization if options["tuner"] == "bayesian" else kt.RandomSearch
    return _recording(tuner_class)(hypermodel, max_trials=int(options["max_trials"]), max_consecutive_failed_trials=3, **common)


def trial_table(tuner):
    """One row per trial: id, status, objective, epochs and the searched values."""
    rows = []
    for trial in sorted(tuner.oracle.trials.values(), key=lambda t: t.trial_id):
        row = {"trial": trial.trial_id, "status": str(trial.status), "objective": trial.score, "best_epoch": trial.best_step}
        row.update({k: json.dumps(v) if isinstance(v, list) else v for k, v in trial.hyperparameters.values.items()})
        rows.append(row)
    return rows


def _write_table(rows, out_dir):
    (out_dir / "trials.json").write_text(strict_json.dumps(rows, indent=2) + "\n")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(out_dir / "trials.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_objective(rows, parameters, objective, path):
    """The objective against each searched hyperparameter, one panel each."""
    from matplotlib.figure import Figure  # lazy: matplotlib is heavy, and only a finished search plots

    done = [r for r in rows if r["objective"] is not None]
    figure = Figure(figsize=(3.2 * len(parameters), 3.0))
    for i, (name, spec) in enumerate(parameters.items()):
        axes = figure.add_subplot(1, len(parameters), i + 1)
        xs = [r[name] for r in done]
        if spec["type"] == "choice":
            labels = [json.dumps(v) for v in spec["values"]]
            xs = [labels.index(x) if isinstance(x, str) else labels.index(json.dumps(x)) for x in xs]
            axes.set_xticks(range(len(labels)), labels, rotation=30, fontsize=7)
        elif name in LOG_SCALE or spec.get("sampling") == "log":
            axes.set_xscale("log")
        axes.scatter(xs, [r["objective"] for r in done], s=18)
        axes.set_xlabel(name)
        if i == 0:
            axes.set_ylabel(objective)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write_best_recipe(recipe, values, path, provenance):
    best = apply_values(recipe, values)
    best.pop("search", None)
    header = "\n".join(f"# {line}" for line in provenance) + "\n"
    path.write_text(header + recipes.dump_yaml(best))
    return best


def run(recipe, out_dir, source="recipe", jit_compile=None, verbose=1, overwrite=False):
    """Run (or resume) a search and write its results into ``out_dir``.

    Results: ``trials.csv``/``trials.json``, ``best_recipe.yaml``,
    ``objective.png`` and ``best_model/`` (a zoo folder whose card records the
    search). Returns a summary dict. In a distributed search only the chief
    writes results; workers just run trials. Trials build and train under the
    recipe's ``training.distribute`` (none or mirrored) and ``mixed_precision``.
    """
    out_dir = Path(out_dir)
    options = search_options(recipe)
    role = os.environ.get("KERASTUNER_TUNER_ID")
    with contextlib.ExitStack() as held:
        if not role or "chief" in role:  # one chief per search folder; workers share it
            held.enter_context(folders.exclusive(out_dir))
            check_search_folder(out_dir, recipe, restart=overwrite)
        out_dir.mkdir(parents=True, exist_ok=True)
        keras.utils.set_random_seed(int(options["seed"]))
        with runner.precision(recipes.training_options(recipe)["mixed_precision"]):
            return _search(recipe, out_dir, options, source, jit_compile, verbose, overwrite)


def recipe_digest(recipe):
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def check_search_folder(out_dir, recipe, restart=False):
    """Record the recipe's digest in a search folder; refuse to resume a search of a different recipe."""
    record = Path(out_dir) / SEARCH_RECORD
    digest = recipe_digest(recipe)
    if record.is_file() and not restart:
        try:
            recorded = json.loads(record.read_text())["recipe_sha256"]
        except (ValueError, KeyError, TypeError):
            raise RecipeError(f"{record} is unreadable; pass --restart to start the search over") from None
        if recorded != digest:
            raise RecipeError(f"{out_dir} holds a search of a different recipe (sha256 {recorded[:12]}, this one {digest[:12]}); "
                              "rerun the same recipe to resume it, pass --restart to discard it, or choose another --out")
    elif not record.is_file() and not restart and (Path(out_dir) / "search").exists():
        raise RecipeError(f"{out_dir} holds a search without a record of its recipe; pass --restart to start over")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    temporary = record.with_suffix(".tmp")
    temporary.write_text(json.dumps({"recipe_sha256": digest, "recipe": recipe}, indent=2))
    temporary.replace(record)


def _search(recipe, out_dir, options, source, jit_compile, verbose, overwrite):
    data = recipes.build_data(recipe)
    try:
        tuner = make_tuner(recipe, data, out_dir, jit_compile=jit_compile, overwrite=overwrite)
    except (ValueError, KeyError, TypeError) as err:  # a torn or edited oracle.json / trial.json
        if isinstance(err, VaeZooError):
            raise
        raise RecipeError(f"the search state in {out_dir / 'search'} is unreadable ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:200]}); pass --restart to start the search over") from None
    metric, direction = OBJECTIVES[options["objective"]]
    callbacks = []
    if options["objective"] == "nll":
        callbacks.append(ValidationNLL(*data.take("validation", 1000), k=options["nll_k"]))
    if options["early_stopping"]:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=metric, mode=direction, **options["early_stopping"]))
    started = time.perf_counter()
    tuner.search(data.train, validation_data=data.validation, epochs=int(options["epochs"]), callbacks=callbacks,
                 verbose=verbose, shuffle=False)
    seconds = time.perf_counter() - started
    role = os.environ.get("KERASTUNER_TUNER_ID")
    if role and "chief" not in role:
        return {"role": role, "trials_run": getattr(tuner, "trials_run", []), "seconds": round(seconds, 1)}

    rows = trial_table(tuner)
    _write_table(rows, out_dir)
    plot_objective(rows, options["parameters"], metric, out_dir / "objective.png")
    best_trial = tuner.oracle.get_best_trials(1)[0]
    values = {name: (json.loads(v) if options["parameters"][name]["type"] == "choice" else v)
              for name, v in best_trial.hyperparameters.values.items() if name in options["parameters"]}
    provenance = [f"Best of {len(rows)} trials of a {options['tuner']} search over {', '.join(options['parameters'])}",
                  f"from {source}; {metric} = {best_trial.score:.4f} at epoch {best_trial.best_step + 1}.",
                  f"  vae-zoo train {out_dir / 'best_recipe.yaml'} --out runs/best"]
    best_recipe = write_best_recipe(recipe, values, out_dir / "best_recipe.yaml", provenance)
    summary = {"trials": len(rows), "trials_run_here": getattr(tuner, "trials_run", []), "best_trial": best_trial.trial_id, "best_values": values, "objective": metric, "direction": direction,
               "best_objective": best_trial.score, "search_seconds": round(seconds, 1), "jit_compile": tuner.hypermodel.jit_compile}
    with warnings.catch_warnings():
        # The checkpoint holds Adam's state, which an unused, freshly built model does not need.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        best_models = tuner.get_best_models(1) if (Path(tuner.project_dir) / f"trial_{best_trial.trial_id}").exists() else []
    if best_models:
        model = best_models[0]
        card = {"recipe": best_recipe, "search": {**summary, "source": source, "trials_table": "trials.csv"},
                "metrics": {"test": score_dataset(model, data.test)}}
        saving.save(model, out_dir / "best_model", card=card, overwrite=True)
        summary["best_model"] = str(out_dir / "best_model")
    (out_dir / "summary.json").write_text(strict_json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def distributed_environment(chief=False, worker=None, oracle=None):
    """Set keras-tuner's distribution variables from ``--chief``/``--worker``/``--oracle`` (host:port)."""
    if not (chief or worker):
        return
    if oracle:
        host, _, port = oracle.rpartition(":")
        if not host or not port.isdigit():
            raise RecipeError(f"--oracle must be HOST:PORT, got {oracle!r}")
        os.environ["KERASTUNER_ORACLE_IP"], os.environ["KERASTUNER_ORACLE_PORT"] = host, port
    missing = [v for v in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT") if not os.environ.get(v)]
    if missing:
        raise RecipeError(f"a distributed search needs --oracle HOST:PORT (or {', '.join(missing)})")
    os.environ["KERASTUNER_TUNER_ID"] = "chief" if chief else f"tuner-{worker}"


def format_table(out_dir, direction="max"):
    """The trial table as aligned text, best first."""
    rows = json.loads((Path(out_dir) / "trials.json").read_text())
    sign = -1 if direction == "max" else 1
    done = sorted((r for r in rows if r["objective"] is not None), key=lambda r: sign * r["objective"])
    if not done:
        return "no finished trials"
    columns = list(done[0])
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in done)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(_cell(r.get(c)).ljust(widths[c]) for c in columns) for r in done]
    return "\n".join(lines)


def _cell(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)
