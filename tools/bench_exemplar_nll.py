"""How far the exemplar prior's short sum falls below the full mixture, and how much time it saves.

    python tools/bench_exemplar_nll.py runs/vae_fashion_mnist_exemplar --examples 20 --k 5000

For each of the first ``--examples`` test images (binarized as the run's data section says), draws k z ~ q(z|x)
once and scores them twice: log p(z) over the ``candidates`` exemplars nearest the posterior mean
(``ExemplarPrior.log_prob_near``, what the IS-NLL uses) and over all N (the exact mixture). Prints the largest and
mean shortfall of log p(z) over all draws, the IS-NLL of those images both ways, and the seconds each way took,
side by side in one run. The short sum is never above the full one (it leaves terms out), so its NLL is never lower.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf

import vae_zoo
from vae_zoo import data as data_module
from vae_zoo.evaluation import report
from vae_zoo.io.cards import read_card
from vae_zoo.io.pretrained import resolve
from vae_zoo.models import objectives
from vae_zoo.models.distributions import diagonal_gaussian


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a run folder or a pretrained name whose prior is the exemplar prior")
    parser.add_argument("--examples", type=int, default=20)
    parser.add_argument("--k", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=None, help="exemplars the short sum keeps (default: the prior's)")
    args = parser.parse_args()

    folder = resolve(args.model)
    model = vae_zoo.load(folder)
    spec = dict(read_card(folder)["recipe"]["data"])
    data = data_module.load(**report.data_spec_for(model, spec))
    prior = model.prior_layer
    if args.candidates is not None:
        prior.candidates = args.candidates
    images, _ = data.take("test", args.examples)
    near_prior = tf.function(lambda z, mean, log_variance: prior.log_prob_near(z, diagonal_gaussian(mean, log_variance)))
    full_prior = tf.function(lambda z: prior.distribution().log_prob(z))
    shortfalls, nll_near, nll_full, seconds = [], [], [], {"near": 0.0, "full": 0.0}
    for index in range(len(images)):
        x = tf.constant(images[index:index + 1])
        q = model.encode(x)
        mean, log_variance = q.mean(), 2.0 * tf.math.log(q.stddev())
        weights_near, weights_full = [], []
        for chunk in range(0, args.k, args.chunk):
            size = min(args.chunk, args.k - chunk)
            z = q.sample(size, seed=[index, chunk])  # (size, 1, D)
            rest = model.draws_log_prob(z, x) - q.log_prob(z)
            start = time.perf_counter()
            near = near_prior(z, mean, log_variance)
            seconds["near"] += time.perf_counter() - start
            start = time.perf_counter()
            full = full_prior(z)
            seconds["full"] += time.perf_counter() - start
            shortfalls.append((full - near).numpy().ravel())
            weights_near.append(rest + near)
            weights_full.append(rest + full)
        nll_near.append(-float(objectives.iwae_bound(tf.concat(weights_near, 0))[0]))
        nll_full.append(-float(objectives.iwae_bound(tf.concat(weights_full, 0))[0]))
    shortfall = np.concatenate(shortfalls)
    print(json.dumps({
        "model": args.model, "examples": len(images), "k": args.k, "exemplars": prior.exemplars,
        "candidates": prior.candidates,
        "log_prior_shortfall_nats": {"max": float(shortfall.max()), "mean": float(shortfall.mean()),
                                     "min": float(shortfall.min())},
        "nll": {"near": float(np.mean(nll_near)), "full": float(np.mean(nll_full)),
                "largest_difference": float(np.max(np.subtract(nll_near, nll_full)))},
        "prior_seconds": seconds, "speedup": seconds["full"] / max(seconds["near"], 1e-9),
    }, indent=2))


if __name__ == "__main__":
    main()
