"""Runs a few epochs of a tiny recipe through the runner in its own process and writes what it learned.

    python tests/run_worker.py OUT.npz MODEL [none|mirrored|multi_worker]

``mirrored`` splits this machine's CPU into two logical devices first;
``multi_worker`` reads TF_CONFIG. The chief (or the only process) and every
worker write OUT.npz with the final weights and the logged loss of each epoch,
so that a test can compare the ways of running the same recipe.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

out, model_name, distribute = sys.argv[1], sys.argv[2], sys.argv[3]
if distribute == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from vae_zoo.training import recipe as recipes  # noqa: E402
from vae_zoo.training import runner  # noqa: E402

MODELS = {
    "vae": {"name": "vae", "latent_dim": 4, "encoder": {"name": "mlp", "hidden_sizes": [32]}},
    "iwae": {"name": "iwae", "latent_dim": 4, "encoder": {"name": "mlp", "hidden_sizes": [32]}, "k": 3},
    # Its own two-optimizer step must scale its losses for the replicas as Keras's does.
    "aae": {"name": "aae", "latent_dim": 4, "encoder": {"name": "mlp", "hidden_sizes": [32]}, "discriminator_sizes": [16]},
    # Latent groups at two resolutions, drawn group by group from one step seed.
    "hierarchical_vae": {"name": "hierarchical_vae", "width": 8, "latent_channels": 2, "likelihood": "bernoulli"},
}
recipe = recipes.parse({
    "model": MODELS[model_name],
    "data": {"name": "digits", "binarize": "dynamic", "batch_size": 64, "limit": 1280, "seed": 3},
    "optimizer": {"name": "adam", "learning_rate": 0.003},
    "training": {"epochs": 2, "jit_compile": False, "seed": 5, "distribute": distribute, "verbose": 0},
})
options = recipes.training_options(recipe)
strategy = runner.make_strategy(options["distribute"])
keras.utils.set_random_seed(int(options["seed"]))
data = recipes.build_data(recipe)
with strategy.scope():
    model = recipes.compile_model(recipes.build_model(recipe, data), recipe)
logs = runner.fit(model, data, recipe, verbose=0)
np.savez(out, loss=np.array([epoch["loss"] for epoch in logs]), replicas=strategy.num_replicas_in_sync,
         **{f"w{i}": w for i, w in enumerate(model.get_weights())})
