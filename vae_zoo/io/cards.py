"""A zoo folder's file names and its card, readable without TensorFlow (``vae-zoo list --pretrained``)."""

import json
from pathlib import Path

from vae_zoo.errors import ModelFileError

MODEL_FILE = "model.keras"
CARD_FILE = "card.json"


# The JSON type of each field a zoo card may hold; fields not listed are free-form.
CARD_FIELDS = {
    "model": str, "pretrained_name": str, "parameters": int, "weights_sha256": str, "created": str,
    "recipe_file": str, "how_measured": str, "sample_image": str, "sample_text": str,
    "config": dict, "recipe": dict, "data": dict, "metrics": dict, "training": dict, "versions": dict,
    "report": dict, "storage": dict,
}
JSON_NAMES = {str: "a string", int: "an integer", dict: "an object"}


def read_card(folder):
    """The model card of a zoo folder, or an empty dict if it has none; ``ModelFileError`` if it is not a card."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON: {err}") from None
    check_card_structure(card, path)
    return card


def check_card_structure(card, path):
    """Raise ``ModelFileError`` naming the first part of ``card`` that is not what a zoo card holds there."""
    if not isinstance(card, dict):
        raise ModelFileError(f"{path} must hold a JSON object (a model card), not {type(card).__name__} {json.dumps(card)[:40]}")
    for field, kind in CARD_FIELDS.items():
        value = card.get(field)
        # bool is an int to Python, never a parameter count to a card
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise ModelFileError(f"{path}: field {field!r} must be {JSON_NAMES[kind]}, got {json.dumps(value)[:40]}")
    for section, value in (card.get("recipe") or {}).items():
        if section in ("model", "data", "optimizer", "training") and not isinstance(value, dict):
            raise ModelFileError(f"{path}: field 'recipe.{section}' must be an object, got {json.dumps(value)[:40]}")
