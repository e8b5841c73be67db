"""``training.initial_weights``: start a run from the weights of a saved or pretrained zoo model.

Fine-tuning a published model (a lower learning rate, a moving average of the
weights, beta held at 1) starts from where its first run stopped instead of
from a random initialisation. Only the weights carry over: the optimizer's
state, the epoch count and the callbacks' state start afresh, as they do in
any new run, and beta stays the recipe's. A resumed run restores its own checkpoint
instead and does not read the source again: its first sitting recorded what the card needs of it.
"""

from vae_zoo.errors import RecipeError
from vae_zoo.io import saving
from vae_zoo.io.cards import read_card
from vae_zoo.io.pretrained import resolve


def source_folder(spec):
    """The folder ``spec`` names: a path to a zoo folder, or a pretrained model's name."""
    try:
        return resolve(spec)
    except Exception as err:  # an unknown name: say which recipe key asked for it
        raise RecipeError(f"training.initial_weights: {err}") from None


def load_initial_weights(model, spec):
    """Copy the weights of the zoo model ``spec`` into ``model``; returns what the card records of the source.

    The source must be the same kind of model with the same weights, in the same
    order and of the same shapes; the first difference is named.
    """

    folder = source_folder(spec)
    try:
        source = saving.load(folder)
    except Exception as err:
        raise RecipeError(f"training.initial_weights {spec!r}: {err}") from None
    if type(source) is not type(model):
        raise RecipeError(f"training.initial_weights {spec!r} is a {source.registered_name}, "
                          f"but the recipe builds a {model.registered_name}")
    theirs, ours = source.weights, model.weights
    prior_fresh = different_priors(source, model)
    if prior_fresh:
        # Another prior (a VampPrior's networks fine-tuned under an exemplar prior): the networks carry over, the
        # recipe's prior starts from its own initial values.
        theirs, ours = without_prior(source), without_prior(model)
    if len(theirs) != len(ours):
        raise RecipeError(f"training.initial_weights {spec!r} has {len(theirs)} weights and the recipe's model "
                          f"{len(ours)}: the architectures differ (compare their model sections)")
    for their, our in zip(theirs, ours):
        if tuple(their.shape) != tuple(our.shape):
            raise RecipeError(f"training.initial_weights {spec!r}: its weight {their.path} has shape {tuple(their.shape)}, "
                              f"the recipe's model's {our.path} has {tuple(our.shape)}: the architectures differ")
    # beta (kl_weight, a non-trainable variable the recipe and the KL schedule set) stays the recipe's own.
    recipe_owned = {id(variable) for variable in (getattr(model, "kl_weight", None),) if variable is not None}
    for their, our in zip(theirs, ours):
        if id(our) not in recipe_owned:
            our.assign(their.numpy())
    card = read_card(folder) or {}
    training = card.get("training") or {}
    return {"from": str(spec), "weights_sha256": card.get("weights_sha256") or saving.weights_digest(source),
            "epochs_run": training.get("epochs_run"), "seconds": training.get("seconds"),
            **({"prior": "started afresh: the source has another prior"} if prior_fresh else {})}


def different_priors(source, model):
    """Whether both models have a prior layer, of different kinds."""
    theirs, ours = getattr(source, "prior_layer", None), getattr(model, "prior_layer", None)
    return theirs is not None and ours is not None and type(theirs) is not type(ours)


def without_prior(model):
    """The model's weights less its prior layer's."""
    owned = {id(variable) for variable in model.prior_layer.weights}
    return [variable for variable in model.weights if id(variable) not in owned]
