"""A card's test figures re-measured on a fixed slice of its test split.

The card of a pretrained model gives its test ELBO over the whole split, which takes minutes to measure again.
``vae-zoo publish`` (``vae_zoo.publishing.publish``) also records the same scores over the split's first ``SLICE_EXAMPLES``
examples (``metrics.test_slice``), measured on the weights that ship; the zoo's tests measure that slice again
and compare, so a figure on a card always belongs to the file beside it.
"""

from vae_zoo import data as data_module
from vae_zoo.evaluation import metrics
from vae_zoo.evaluation.report import data_spec_for

SLICE_EXAMPLES = 500
SLICE_SEED = 0


def card_data_spec(card):
    """The data options a card's model was trained and tested with (its recipe's data section)."""
    recipe = card.get("recipe") or {}
    spec = dict(recipe.get("data") or {})
    if "name" not in spec:
        raise ValueError("the card has no recipe data section, so its test split is unknown")
    return spec


def slice_scores(model, card, examples=SLICE_EXAMPLES, seed=SLICE_SEED):
    """The card's test scores over the first ``examples`` examples of its test split, with the draws keyed by ``seed``
    (the same figures in any process). Raises ``DataError`` where the data set cannot be read here."""
    data = data_module.load(**data_spec_for(model, card_data_spec(card)))
    model.check_fits(data)
    dataset = data.split("test").unbatch().take(int(examples)).batch(data.batch_size)
    scores = metrics.score_dataset(model, dataset, seed=seed)
    return {**scores, "seed": int(seed), "split": "test",
            "method": f"the test split's first {int(examples)} examples, one z ~ q(z|x) each with stateless draws keyed "
                      f"by seed {int(seed)} and the batch index (vae-zoo evaluate --only scores --limit {int(examples)})"}


def test_scores(model, card, seed=0):
    """The card's test scores over the whole test split, measured as a training run measures them at its end."""
    data = data_module.load(**data_spec_for(model, card_data_spec(card)))
    model.check_fits(data)
    return metrics.score_dataset(model, data.test, seed=seed)
