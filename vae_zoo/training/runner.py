"""The one runner behind ``vae-zoo train`` and every trial of ``vae-zoo tune``.

It builds data, model and optimizer inside the recipe's distribution strategy
and precision policy, applies the recipe's callbacks, checkpoints every epoch
and resumes from the checkpoint after a crash or a kill:

* ``RunBackup`` is Keras's ``BackupAndRestore`` (weights and optimizer state,
  the step counter included, so the KL-annealing step and the step-keyed noise
  continue) plus what it leaves out: the state of stateful callbacks (early
  stopping, the best checkpoint, learning-rate plateaus) and the epoch logs.
* The training data come from ``Data.training_stream(first_epoch)``, whose
  epoch e is the same whichever process reads it.
* The work folder (``.<out>.run`` beside ``--out``) is kept until the finished
  model folder is in place; running the same command again resumes it.

``training.distribute: mirrored`` trains with ``model.fit`` under
``MirroredStrategy``; ``multi_worker`` under ``MultiWorkerMirroredStrategy``
with the loop in ``training.distributed`` (Keras 3's ``fit`` does not run
under it: keras-team/keras#20585).
"""

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from vae_zoo.errors import DivergenceError, RecipeError
from vae_zoo.evaluation.metrics import score_dataset
from vae_zoo.io import folders, saving, strict_json
from vae_zoo.training import compilation
from vae_zoo.training import recipe as recipes
from vae_zoo.models.exemplar_prior import exemplar_bank
from vae_zoo.training.callbacks import DivergenceGuard, ExemplarRefresh, MovingAverageWeights
from vae_zoo.training.distributed import fit_multi_worker
from vae_zoo.training.warm_start import load_initial_weights

STATE_FILE = "run_state.json"
STARTED_FROM_FILE = "started_from.json"
RECIPE_FILE = "recipe.json"
# The attributes that make these Keras callbacks stateful across epochs.
RESUMABLE_ATTRIBUTES = (
    (keras.callbacks.EarlyStopping, ("wait", "best", "best_epoch", "stopped_epoch")),
    (keras.callbacks.ModelCheckpoint, ("best",)),
    (keras.callbacks.ReduceLROnPlateau, ("wait", "best", "cooldown_counter")),
    # Whether the checkpoint holds the moving average in the model and the raw weights in the optimizer's slot.
    (keras.callbacks.SwapEMAWeights, ("_ema_weights_in_model",)),
)


# --------------------------------------------------------------------------- strategy and precision


def make_strategy(name):
    """The ``tf.distribute`` strategy a recipe's ``training.distribute`` names."""
    if name in (None, "none"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RecipeError(f"unknown training.distribute {name!r}; use none, mirrored or multi_worker")


def is_chief(strategy):
    """Whether this process writes checkpoints, logs and the model (worker 0, or the only process)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0 and
                                             "chief" not in resolver.cluster_spec().as_dict())


@contextlib.contextmanager
def precision(policy):
    """Build and train under a Keras dtype policy (``mixed_bfloat16``, ...), then put the old one back."""
    previous = keras.config.dtype_policy()
    policy, _ = compilation.choose_mixed_precision(policy or "float32")  # "auto": by the hardware
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# --------------------------------------------------------------------------- checkpoints


def _plain(value):
    """A callback attribute as JSON (numpy scalars become floats; inf stays inf)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class RunBackup(keras.callbacks.BackupAndRestore):
    """Keras's ``BackupAndRestore`` every epoch, plus the state of stateful callbacks and the epoch logs.

    ``write=False`` (every worker but the chief) restores and never writes.
    ``history`` holds the logs of every epoch of the run, resumed or not.
    """

    def __init__(self, backup_dir, callbacks=(), write=True):
        super().__init__(str(backup_dir), save_freq="epoch", double_checkpoint=True, delete_checkpoint=False)
        self.folder, self.write = Path(backup_dir), write
        # The epoch the data stream was built to start at; the restored checkpoint must agree.
        self.first_epoch = self.saved_epoch(backup_dir)
        self.tracked = [c for c in callbacks if self._attributes(c)]
        self.history = []
        # Training seconds of the sittings before this one (None: a checkpoint from before they were recorded).
        self.seconds_before, self.started = 0.0, None

    @staticmethod
    def _attributes(callback):
        return next((names for kind, names in RESUMABLE_ATTRIBUTES if isinstance(callback, kind)), ())

    @staticmethod
    def saved_epoch(backup_dir):
        """The number of epochs a checkpoint in ``backup_dir`` has finished (0 if there is none)."""
        path = Path(backup_dir) / "training_metadata.json"
        return int(json.loads(path.read_text())["epoch"]) if path.is_file() else 0

    def stopped_history(self):
        """The epoch logs of a run whose early stopping had already ended it (None otherwise).

        A run killed after training but before its model was saved must not train
        another epoch when it is resumed: fit would run one before the restored
        early stopping could stop it again.
        """
        epoch = self.first_epoch
        entry = self._read_state().get(str(epoch)) if epoch else None
        if entry is None:
            return None
        stopped = any(saved.get("stopped_epoch") for saved in entry["callbacks"])
        return entry["history"] if stopped else None

    def _read_state(self):
        return self.read_state(self.folder)

    @staticmethod
    def read_state(backup_dir):
        path = Path(backup_dir) / STATE_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    @classmethod
    def saved_seconds(cls, backup_dir):
        """Training seconds over every sitting up to the newest checkpoint (None if they were not recorded)."""
        entry = cls.read_state(backup_dir).get(str(cls.saved_epoch(backup_dir)))
        return entry.get("seconds") if entry else None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.started = time.perf_counter()
        epoch = self.model._initial_epoch or 0
        if epoch != self.first_epoch:
            raise RecipeError(f"the checkpoint in {self.folder} changed while the run started; run the command again")
        if not epoch:
            return
        # States are written before the weights: the entry for the restored epoch is always there.
        entry = self._read_state().get(str(epoch))
        if entry is None:
            raise RecipeError(f"{self.folder} holds weights of epoch {epoch} but no run state for it; remove the folder to start again")
        for callback, saved in zip(self.tracked, entry["callbacks"]):
            for name, value in saved.items():
                setattr(callback, name, value)
        self.history = entry["history"]
        self.seconds_before = entry.get("seconds")

    def on_epoch_end(self, epoch, logs=None):
        self.history.append({k: float(v) for k, v in (logs or {}).items()})
        if self.write:
            state = self._read_state()
            state[str(epoch + 1)] = {
                "callbacks": [{n: _plain(getattr(c, n, None)) for n in self._attributes(c)} for c in self.tracked],
                "history": self.history,
                "seconds": None if self.seconds_before is None else self.seconds_before + time.perf_counter() - self.started,
            }
            # The two newest entries: the restored epoch's is there even if the weights of the next are not.
            state = {k: state[k] for k in sorted(state, key=int)[-2:]}
            temporary = self.folder / f"{STATE_FILE}.tmp"
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary.write_text(strict_json.dumps(state))
            temporary.replace(self.folder / STATE_FILE)
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        if self.write:
            super()._save_model()


def without_epoch_budget(recipe):
    """The recipe less ``training.epochs`` and its ``smoke`` section: a run resumes with more or fewer epochs (the
    epochs already trained do not depend on how many were to follow) and whatever a smoke run of it would change,
    which the real run never reads; never with anything else changed."""
    training = {k: v for k, v in (recipe.get("training") or {}).items() if k != "epochs"}
    return {**{k: v for k, v in recipe.items() if k != "smoke"}, "training": training}


class WorkFolder:
    """``.<out>.run`` beside the output folder: checkpoints, logs and the recipe of a run in progress."""

    def __init__(self, out_dir, recipe, restart=False):
        out_dir = Path(out_dir)
        self.path = self.path_for(out_dir)
        recorded = self.path / RECIPE_FILE
        if restart:
            shutil.rmtree(self.path, ignore_errors=True)  # every worker of a run may ask at once
        if recorded.is_file():
            before, now = json.loads(recorded.read_text()), json.loads(json.dumps(recipe))
            if without_epoch_budget(before) != without_epoch_budget(now):
                raise RecipeError(
                    f"{self.path} holds an interrupted run of a different recipe; run that recipe again to resume it "
                    "(only training.epochs may change), or pass --restart to discard it"
                )
            if before != now:
                print(f"resuming {out_dir} with a budget of {now['training']['epochs']} epochs "
                      f"(it was {before['training']['epochs']})", flush=True)
        self.path.mkdir(parents=True, exist_ok=True)
        # Atomically: the workers of a multi-worker run all arrive here at once.
        temporary = self.path / f"{RECIPE_FILE}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(recipe, indent=2))
        temporary.replace(recorded)

    @staticmethod
    def path_for(out_dir):
        out_dir = Path(out_dir)
        return out_dir.parent / f".{out_dir.name}.run"

    @staticmethod
    def recorded_source(path):
        """What the first sitting of a run in ``path`` recorded of its ``training.initial_weights`` source, if it
        has a checkpoint to resume from (None otherwise): a resumed run restores its own weights and needs the
        source no more, which may have moved or gone since."""
        record = Path(path) / STARTED_FROM_FILE
        if not (RunBackup.saved_epoch(Path(path) / "backup") and record.is_file()):
            return None
        try:
            return json.loads(record.read_text())
        except ValueError:  # damaged: the source, if still there, says the same again
            return None

    def record_source(self, started_from):
        folders.write_file(self.path / STARTED_FROM_FILE, json.dumps(started_from, indent=2).encode(), overwrite=True)

    @property
    def backup(self):
        return self.path / "backup"

    @property
    def best_weights(self):
        return self.path / "best.weights.h5"

    @property
    def logs(self):
        return self.path / "logs"

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------- fitting


def fit(model, data, recipe, callbacks=(), backup_dir=None, write=True, verbose="auto", epochs=None):
    """Train ``model`` on ``data`` as the recipe says, resuming from ``backup_dir`` when it holds a checkpoint.

    Returns the logs of every epoch (resumed ones included) as a list of dicts.
    """
    options = recipes.training_options(recipe)
    epochs = int(options["epochs"] if epochs is None else epochs)
    model.noise_seed = int(options["seed"])
    # The guard comes first: it raises before any epoch-end callback could save a diverged state. With the
    # optimizer's use_ema the moving average is swapped in next, so that every later callback sees it.
    averaging = [MovingAverageWeights()] if getattr(model.optimizer, "use_ema", False) else []
    callbacks = [DivergenceGuard(), *averaging, *exemplar_callbacks(model, data, options["seed"]),
                 *recipes.build_callbacks(recipe, data), *callbacks,
                 *(swapping.closing() for swapping in averaging)]
    backup = RunBackup(backup_dir, callbacks, write=write) if backup_dir is not None else None
    first_epoch = backup.first_epoch if backup is not None else 0
    # The backup comes last: it restores callback state after the others' on_train_begin has reset it.
    callbacks = [*callbacks, *([backup] if backup else [])]
    verbose = options.get("verbose", verbose)
    finished = backup.stopped_history() if backup is not None else None
    if finished is not None:
        model.load_weights(Path(backup_dir) / "latest.weights.h5")  # what BackupAndRestore would restore
        return finished
    if options["distribute"] == "multi_worker":
        history = fit_multi_worker(model, data, epochs, first_epoch, callbacks, verbose)
    else:
        history = model.fit(data.training_stream(first_epoch), steps_per_epoch=data.steps_per_epoch(), epochs=epochs,
                            validation_data=data.validation, callbacks=callbacks, shuffle=False, verbose=verbose)
    if backup is None:
        return [dict(zip(history.history, values)) for values in zip(*history.history.values())]
    return backup.history


def exemplar_callbacks(model, data, seed):
    """[ExemplarRefresh] for a model with an exemplar prior (its bank drawn from the training split), else []."""
    if not getattr(model, "takes_example_indices", False):
        return []
    if not getattr(data, "indices", False):
        raise RecipeError("the exemplar prior trains on (example, index) pairs for its leave-one-out: "
                          "add `indices: true` to the recipe's data section")
    images, indices = exemplar_bank(data, model.prior_layer.exemplars, seed)
    return [ExemplarRefresh(images, indices)]


def as_history(logs):
    """Per-epoch logs as a ``keras.callbacks.History`` (what keras-tuner reads a trial's results from)."""
    history = keras.callbacks.History()
    history.history = {name: [epoch.get(name) for epoch in logs] for name in dict.fromkeys(k for epoch in logs for k in epoch)}
    return history


def train(recipe, out_dir, overwrite=False, verbose="auto", source=None, restart=False):
    """Train a validated recipe and save the best model as a zoo folder at ``out_dir``.

    Running the same command again after an interruption resumes at the last
    finished epoch. Returns ``(folder, history, card)``; ``history`` maps each
    logged name to its values per epoch.
    """
    out_dir = Path(out_dir)
    options = recipes.training_options(recipe)
    with precision(options["mixed_precision"]), contextlib.ExitStack() as held:
        strategy = make_strategy(options["distribute"])
        chief = is_chief(strategy)
        if chief:  # one writer per output folder: a second run into it fails here, at once
            held.enter_context(folders.exclusive(out_dir))
            folders.recover(out_dir)
        if out_dir.exists() and not overwrite:
            raise RecipeError(f"{out_dir} already exists; choose another --out or pass --overwrite")
        keras.utils.set_random_seed(int(options["seed"]))
        data = recipes.build_data(recipe)
        with strategy.scope():
            model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
            # Before the work folder exists, so that a wrong source leaves nothing behind. A resumed run restores
            # its own checkpoint instead, and takes what its first sitting recorded of the source.
            started_from = None
            if options["initial_weights"]:
                started_from = None if restart else WorkFolder.recorded_source(WorkFolder.path_for(out_dir))
                started_from = started_from or load_initial_weights(model, options["initial_weights"])
        work = WorkFolder(out_dir, recipe, restart=restart)
        if chief and started_from:
            work.record_source(started_from)
        own = []
        if chief:
            own = [keras.callbacks.TensorBoard(log_dir=str(work.logs)),
                    keras.callbacks.ModelCheckpoint(str(work.best_weights), monitor=options["monitor"], mode=options["mode"],
                                                    save_best_only=True, save_weights_only=True)]
        resumed_from = RunBackup.saved_epoch(work.backup)
        if resumed_from > int(options["epochs"]):
            raise RecipeError(f"{work.path} has finished {resumed_from} epochs: training.epochs must be at least "
                              f"{resumed_from} to resume it (that many ends it there and saves its best epoch)")
        if resumed_from:
            print(f"resuming {out_dir} after epoch {resumed_from} from {work.path}", flush=True)
        started = time.perf_counter()
        try:
            logs = fit(model, data, recipe, own, backup_dir=work.backup, write=chief, verbose=verbose)
        except DivergenceError as err:
            kept = RunBackup.saved_epoch(work.backup)
            if kept:
                checkpoint = f"the last good checkpoint (after epoch {kept}) is kept in {work.backup}"
            else:
                checkpoint = "no epoch had finished, so there is no checkpoint to keep"
                if chief:
                    work.remove()
            raise DivergenceError(f"{err}. Nothing was saved at {out_dir}; {checkpoint}") from None
        except BaseException:
            # Any other failure (bad data met in the stream, an interrupt): a run that finished no epoch has
            # nothing to resume, so it leaves nothing behind; one that did keeps its checkpoint.
            if chief and not RunBackup.saved_epoch(work.backup):
                work.remove()
            raise
        seconds = time.perf_counter() - started
        # Over every sitting of a resumed run (read before the work folder goes); None if an old checkpoint lacks them.
        total_seconds = RunBackup.saved_seconds(work.backup) if resumed_from else seconds
        history = as_history(logs).history
        if not chief:
            return out_dir, history, None
        if work.best_weights.exists():
            model.load_weights(work.best_weights)
        card = run_card(recipe, source, data, history, seconds, score_dataset(model, data.test), resumed_from, total_seconds,
                        started_from, compiled=getattr(model, "compile_choice", None))
        saving.save(model, out_dir, card=card, overwrite=overwrite, attach={"logs": work.logs})
        work.remove()
    return out_dir, history, card


def run_card(recipe, source, data, history, seconds, test_scores, resumed_from=0, total_seconds=None, started_from=None,
             compiled=None):
    """What a trained folder's card says about its run (``seconds``: this sitting; ``total_seconds``: all of them).

    ``started_from``: the source of ``training.initial_weights`` (its epochs and seconds are not counted in this run's).
    ``compiled``: how the step was compiled and why (``recipe.compile_model``'s ``model.compile_choice``).
    """
    total_seconds = seconds if total_seconds is None and not resumed_from else total_seconds
    options = recipes.training_options(recipe)
    monitor, pick = options["monitor"], (max if options["mode"] == "max" else min)
    monitored = [v for v in history.get(monitor, []) if v is not None]
    epochs_run = len(history.get("loss", []))
    best_epoch = int(pick(range(len(monitored)), key=monitored.__getitem__)) if monitored else epochs_run - 1
    return {
        "recipe": recipe,
        "recipe_file": source,
        "data": {
            "name": data.name,
            "modality": data.spec.modality,
            # How audio examples encode sound, which ``vae-zoo sample`` needs to write WAVs (absent for other data).
            **({"features": data.spec.features} if data.spec.features else {}),
            # A licence's credit travels with the model's samples and reconstructions of the data.
            **({"attribution": data.spec.attribution} if data.spec.attribution else {}),
            "binarize": data.binarize,
            "examples": {split: data.count(split) for split in ("train", "validation", "test")},
        },
        "metrics": {
            "test": test_scores,
            "validation_at_best_epoch": {k[4:]: float(v[best_epoch]) for k, v in history.items() if k.startswith("val_") and v[best_epoch] is not None},
        },
        "how_measured": (
            f"test: mean over the {test_scores['examples']} test examples of "
            + ("the single-sample ELBO (one z ~ q(z|x) per example), its reconstruction term -log p(x|z) and KL term, "
               if "elbo" in test_scores else "the reconstruction term -log p(x|z), ")
            + "in nats per example, and the squared error of the reconstruction summed over dimensions"
            + ("; classification_error: the share of test examples the classifier q(y|x) gets wrong"
               if "classification_error" in test_scores else "")
            + ("; test images binarized once with a fixed seed" if data.binarize != "none" else "")
            + f". validation: the Keras validation metrics at the epoch with the best {monitor}."
        ),
        "training": {
            "epochs_run": epochs_run,
            "best_epoch": best_epoch + 1,
            # Training (fit) time over every sitting; null when a checkpoint from vae_zoo < 0.2.2 was resumed.
            "seconds": None if total_seconds is None else round(total_seconds, 1),
            "seconds_last_sitting": round(seconds, 1),
            "resumed_after_epoch": resumed_from,
            "distribute": options["distribute"],
            "mixed_precision": options["mixed_precision"],
            # What the runner chose for this machine (training/compilation.py): XLA or not, steps a call, precision.
            **({"compiled": compiled} if compiled else {}),
            "hardware": saving.hardware(),
            # With validation and compilation, over the epochs of the last sitting (null if it only saved the best).
            "examples_per_second_wall": (round((epochs_run - resumed_from) * data.count("train") / seconds, 1)
                                         if epochs_run > resumed_from else None),
            **({"started_from": started_from} if started_from else {}),
        },
    }
