"""Training throughput of the zoo's VAE against a minimal hand-written Keras 3 step.

Both train the seed architecture (784-400-400-20 MLP, Bernoulli likelihood,
N(0, I) prior, Adam, batch 128) on the same in-memory binary images. The zoo
model goes through ``model.fit`` with its TFP distributions and metrics; the
minimal step is a bare ``tf.function`` with the seed's formulas written out. The
two are timed in alternating rounds in the same process, XLA on and off, and
the script prints examples/s and the ratios. Only ratios from one run mean
anything on a shared machine.

    python tools/bench_train.py                   # about 2 minutes on 2 CPU cores
    python tools/bench_train.py --rounds 7 --examples 16384
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import vae_zoo

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
        with tf.GradientTape() as tape:
            mean, log_variance = tf.split(self.encoder(x, training=True), 2, axis=-1)
            z = mean + tf.exp(0.5 * log_variance) * tf.random.normal(tf.shape(mean))
            logits = self.decoder(z, training=True)
            flat = tf.reshape(x, [-1, 784])
            reconstruction = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=flat, logits=logits), axis=1)
            kl = 0.5 * tf.reduce_sum(mean**2 + tf.exp(log_variance) - log_variance - 1.0, axis=1)
            loss = tf.reduce_mean(reconstruction + kl)
        self.optimizer.apply(tape.gradient(loss, self.variables), self.variables)
        return loss

    def epoch(self, data):
        for x in data:
            loss = self.step(x)
        float(loss)  # wait for the last step


def zoo_runner(data, jit_compile):
    model = vae_zoo.create_model("vae")  # the seed architecture is the default
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    return lambda: model.fit(data, epochs=1, verbose=0, shuffle=False)


def timed(run, examples):
    start = time.perf_counter()
    run()
    return examples / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=12800, help="examples per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds per setting")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = (rng.random((args.examples, 28, 28, 1)) < 0.3).astype(np.float32)
    data = dataset(images)
    rows = []
    for jit_compile in (True, False):
        minimal = MinimalVAE(jit_compile)
        zoo = zoo_runner(data, jit_compile)
        minimal.epoch(data), zoo()  # compile and warm up both
        zoo_rates, minimal_rates = [], []
        for _ in range(args.rounds):
            zoo_rates.append(timed(zoo, args.examples))
            minimal_rates.append(timed(lambda: minimal.epoch(data), args.examples))
        ratios = [z / m for z, m in zip(zoo_rates, minimal_rates)]
        rows.append((jit_compile, statistics.median(zoo_rates), statistics.median(minimal_rates), statistics.median(ratios), min(ratios), max(ratios)))

    print(f"\nseed VAE 784-400-400-20, Bernoulli, batch {BATCH}, {args.examples} examples per epoch, "
          f"{args.rounds} alternating rounds, {os.cpu_count()} CPUs, TF {tf.__version__}, devices: "
          f"{', '.join(d.device_type for d in tf.config.list_logical_devices())}")
    print("| XLA | zoo model.fit (ex/s) | minimal step (ex/s) | zoo / minimal (median) | range |")
    print("|---|---|---|---|---|")
    for jit, zoo_rate, minimal_rate, ratio, low, high in rows:
        print(f"| {'on' if jit else 'off'} | {zoo_rate:,.0f} | {minimal_rate:,.0f} | {ratio:.3f} | {low:.3f}-{high:.3f} |")
    on, off = rows
    print(f"XLA speed-up (on / off): zoo {on[1] / off[1]:.2f}x, minimal {on[2] / off[2]:.2f}x")


if __name__ == "__main__":
    main()
