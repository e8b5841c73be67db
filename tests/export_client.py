"""Calls every signature of exported zoo models with TensorFlow alone (run as a subprocess).

    python export_client.py ROOT NAME [NAME ...]

For each NAME it loads ROOT/NAME (a SavedModel), reads ROOT/NAME.inputs.npz,
calls each signature the model card lists, and writes ROOT/NAME.outputs.npz. It
then records which Python modules were loaded, so the test can check that
neither vae_zoo nor TensorFlow Probability was needed.
"""

import json
import sys

import numpy as np
import tensorflow as tf


def main(root, names):
    for name in names:
        loaded = tf.saved_model.load(f"{root}/{name}")
        card = json.loads(loaded.signatures["model_card"]()["card"].numpy())
        inputs = dict(np.load(f"{root}/{name}.inputs.npz"))
        conditional = "labels" in inputs
        outputs = {"card_model": np.array(card["model"])}
        for signature in card["signatures"]:
            # Each signature's own argument names (x, labels, z or codes, n, k, seed).
            arguments = loaded.signatures[signature].structured_input_signature[1]
            feed = {a: tf.constant(inputs[a]) for a in arguments}
            for key, value in loaded.signatures[signature](**feed).items():
                outputs[f"{signature}/{key}"] = value.numpy()
            if signature == "sample":  # a fresh random draw, for the comparison in distribution
                random_feed = {**feed, "seed": tf.constant(-1)}
                if not conditional:
                    random_feed["n"] = tf.constant(400)
                else:
                    random_feed["labels"] = tf.constant(np.zeros(400, np.int32))
                outputs["sample/random"] = loaded.signatures["sample"](**random_feed)["samples"].numpy()
        np.savez(f"{root}/{name}.outputs.npz", **outputs)
    with open(f"{root}/modules.json", "w") as handle:
        json.dump(sorted(m.split(".")[0] for m in sys.modules), handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
