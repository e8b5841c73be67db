"""Training throughput of the zoo's VAE against a minimal hand-written Keras 3 step.

Both train the seed architecture (784-400-400-20 MLP, Bernoulli likelihood,
N(0, I) prior, Adam, batch 128) on the same in-memory binary images. The zoo
model goes through ``model.fit`` with its TFP distributions and metrics; the
minimal step is a bare ``tf.function`` with the seed's formulas written out. The
two are timed in alternating rounds in the same process, XLA on and off, and
the script prints examples/s and the ratios. Only ratios from one run mean
anything on a shared machine.

    python tools/bench_train.py                   # about 3 minutes on 2 CPU cores; also into reports/train.md
    python tools/bench_train.py --ablate          # also: what the zoo's two departures from TFP's defaults buy

The zoo is timed twice: ``model.fit`` on the same cached pipeline as the
minimal step, and ``model.fit`` on the runner's resumable epoch-keyed stream
(``Data.training_stream``: a stateless permutation and gather per batch), which
is what ``vae-zoo train`` reads.

``--ablate`` adds, with XLA, the zoo model with TFP's own ``q.sample()`` in
place of its written-out reparameterization, and with TFP's plain Bernoulli
``log_prob`` in place of the fused one.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import vae_zoo
from vae_zoo.models import distributions

from report_output import REPORTS, printed_into

BATCH = 128


def dataset(images):
    return tf.data.Dataset.from_tensor_slices(images).cache().batch(BATCH).prefetch(tf.data.AUTOTUNE)


class MinimalVAE:
    """The seed's VAE, by hand: Dense layers, z = mu + sigma * eps, BCE + closed-form KL."""

    def __init__(self, jit_compile):
        self.encoder = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(400, activation="relu"),
                                         keras.layers.Dense(400, activation="relu"), keras.layers.Dense(40)])
        self.decoder = keras.Sequential([keras.layers.Dense(400, activation="relu"),
                                         keras.layers.Dense(400, activation="relu"), keras.layers.Dense(784)])
        self.encoder.build((None, 28, 28, 1))
        self.decoder.build((None, 20))
        self.variables = self.encoder.trainable_variables + self.decoder.trainable_variables
        self.optimizer = keras.optimizers.Adam(1e-3)
        self.optimizer.build(self.variables)
        self.step = tf.function(self._step, jit_compile=jit_compile)

    def _step(self, x):
        loss, gradients = self.loss_and_gradients(x)
        self.optimizer.apply(gradients, self.variables)
        return loss

    def loss_and_gradients(self, x):
        with tf.GradientTape() as tape:
            mean, log_variance = tf.split(self.encoder(x, training=True), 2, axis=-1)
            z = mean + tf.exp(0.5 * log_variance) * tf.random.normal(tf.shape(mean))
            logits = self.decoder(z, training=True)
            flat = tf.reshape(x, [-1, 784])
            reconstruction = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=flat, logits=logits), axis=1)
            kl = 0.5 * tf.reduce_sum(mean**2 + tf.exp(log_variance) - log_variance - 1.0, axis=1)
            loss = tf.reduce_mean(reconstruction + kl)
        return loss, tape.gradient(loss, self.variables)

    def epoch(self, data):
        for x in data:
            loss = self.step(x)
        float(loss)  # wait for the last step


def zoo_runner(data, jit_compile, tfp_sampling=False, tfp_bernoulli=False):
    model = vae_zoo.create_model("vae")  # the seed architecture is the default
    if tfp_sampling or tfp_bernoulli:
        model.loss_terms = lambda x, y=None, training=False, seed=None: ablated_terms(model, x, tfp_sampling, tfp_bernoulli)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return lambda: model.fit(data, epochs=1, verbose=0, shuffle=False)


def zoo_stream_runner(images, jit_compile):
    """``model.fit`` as the runner calls it: on the epoch-keyed training stream, with steps_per_epoch."""
    bundle = vae_zoo.data.from_splits({split: (images, None) for split in vae_zoo.data.SPLITS}, batch_size=BATCH)
    model = vae_zoo.create_model("vae")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    stream, steps = bundle.training_stream(), bundle.steps_per_epoch()
    return lambda: model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0)


def ablated_terms(model, x, tfp_sampling, tfp_bernoulli):
    """The zoo's loss terms with TFP's defaults put back where the zoo departs from them."""
    q = model.encode(x, training=True)
    z = q.sample() if tfp_sampling else distributions.reparameterized_sample(q)
    logits = model.decoder(z, training=True)
    bernoulli = tfp.distributions.Bernoulli if tfp_bernoulli else distributions.FusedBernoulli
    likelihood = tfp.distributions.Independent(bernoulli(logits=logits, dtype=logits.dtype), reinterpreted_batch_ndims=3)
    reconstruction = -likelihood.log_prob(x)
    kl = distributions.kl_divergence(q, model.prior(), z)
    return {"loss": reconstruction + model.kl_weight * kl, "elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}


def timed(run, examples):
    start = time.perf_counter()
    run()
    return examples / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=25600, help="examples per timed epoch")
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed rounds per setting")
    parser.add_argument("--ablate", action="store_true", help="also time the zoo with TFP's sampler / Bernoulli log_prob")
    parser.add_argument("--out", default=str(REPORTS / "train.md"), help="also write the table here")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = (rng.random((args.examples, 28, 28, 1)) < 0.3).astype(np.float32)
    data = dataset(images)
    rows = []
    for jit_compile in (True, False):
        minimal = MinimalVAE(jit_compile)
        runners = {"zoo": zoo_runner(data, jit_compile), "zoo, runner's stream": zoo_stream_runner(images, jit_compile),
                   "minimal": lambda: minimal.epoch(data)}
        if args.ablate and jit_compile:
            runners["zoo, TFP q.sample()"] = zoo_runner(data, True, tfp_sampling=True)
            runners["zoo, TFP Bernoulli.log_prob"] = zoo_runner(data, True, tfp_bernoulli=True)
        for run in runners.values():
            run()  # compile and warm up
        rates = {name: [] for name in runners}
        for _ in range(args.rounds):
            for name, run in runners.items():
                rates[name].append(timed(run, args.examples))
        for name in runners:
            if name == "minimal":
                continue
            ratios = [a / b for a, b in zip(rates[name], rates["minimal"])]
            rows.append((jit_compile, name, statistics.median(rates[name]), statistics.median(rates["minimal"]),
                         statistics.median(ratios), min(ratios), max(ratios)))

    with printed_into(args.out):
        print_table(args, rows)


def print_table(args, rows):
    print(f"\nseed VAE 784-400-400-20, Bernoulli, batch {BATCH}, {args.examples} examples per epoch, "
          f"{args.rounds} alternating rounds, {os.cpu_count()} CPUs, TF {tf.__version__}, devices: "
          f"{', '.join(d.device_type for d in tf.config.list_logical_devices())}")
    print("| XLA | model.fit of | ex/s | minimal step (ex/s) | ratio to minimal (median of rounds) | range |")
    print("|---|---|---|---|---|---|")
    for jit, name, rate, minimal_rate, ratio, low, high in rows:
        print(f"| {'on' if jit else 'off'} | {name} | {rate:,.0f} | {minimal_rate:,.0f} | {ratio:.3f} | {low:.3f}-{high:.3f} |")
    zoo = {jit: rate for jit, name, rate, *_ in rows if name == "zoo"}
    minimal = {jit: minimal_rate for jit, name, _, minimal_rate, *_ in rows if name == "zoo"}
    print(f"XLA speed-up (on / off): zoo {zoo[True] / zoo[False]:.2f}x, minimal {minimal[True] / minimal[False]:.2f}x")


if __name__ == "__main__":
    main()
