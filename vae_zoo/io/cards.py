"""A zoo folder's file names and its card, readable without TensorFlow (``vae-zoo list --pretrained``)."""

import json
from pathlib import Path

from vae_zoo.errors import ModelFileError

MODEL_FILE = "model.keras"
CARD_FILE = "card.json"


def read_card(folder):
    """The model card of a zoo folder, or an empty dict if it has none."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{path} is not valid JSON: {err}") from None
