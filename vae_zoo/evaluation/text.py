"""Reading what a sentence model writes: reconstructions, prior samples and homotopies, as text (the per-token
perplexity is the text modality's score unit: ``vae_zoo.data.text.perplexity``).

* ``reconstructions``: test sentences and their greedy and beam-search decodings from the posterior mean.
* ``samples``: sentences from z ~ p(z), each token drawn from the decoder, and the greedy decoding of the same z.
* ``homotopies``: sentences decoded (greedily) at evenly spaced points on the line between the posterior means
  of two test sentences, as in Bowman et al. (2016, table 3).

``write_markdown`` puts them in one file a person can read.
"""

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation import latents


def reconstructions(model, ids, n=8, width=5):
    means = latents.posterior_means(model, ids[:n])
    greedy = model.texts(model.generate(means, mode="greedy"))
    beam = model.texts(model.generate(means, mode="beam", width=width))
    return [{"original": o, "greedy": g, f"beam_{width}": b} for o, g, b in zip(model.texts(ids[:n]), greedy, beam)]


def samples(model, n=10, seed=0):
    # A model without z (a language model) decodes from no code at all.
    z = model.prior().sample(n, seed=tf.constant([seed, 0])) if model.can("latent") else None
    token_seed = tf.constant([seed, 1])
    return [{"sampled": s, "greedy": g} for s, g in zip(model.texts(model.generate(z, mode="sample", seed=token_seed, batch=n)),
                                                        model.texts(model.generate(z, mode="greedy", batch=n)))]


def homotopies(model, ids, pairs=3, steps=7, seed=0):
    """``pairs`` lines between two test sentences (chosen at random with ``seed``), decoded at ``steps`` points."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(ids), size=(pairs, 2), replace=False) if len(ids) >= 2 * pairs else np.arange(2 * pairs).reshape(pairs, 2) % len(ids)
    lines = []
    for first, second in chosen:
        codes = latents.posterior_means(model, ids[[first, second]])
        path = np.stack([(1 - t) * codes[0] + t * codes[1] for t in np.linspace(0, 1, steps)]).astype(np.float32)
        lines.append({"from": model.texts(ids[[first]])[0], "to": model.texts(ids[[second]])[0],
                      "path": model.texts(model.generate(path))})
    return lines


def write_markdown(report, path, model_name):
    lines = [f"# {model_name}: what it writes", ""]
    if report.get("reconstructions"):
        lines += ["## Reconstructions (posterior mean, greedy and beam search)", ""]
        for row in report["reconstructions"]:
            lines += [f"- original: {row['original']}"] + [f"  - {k}: {v}" for k, v in row.items() if k != "original"]
        lines.append("")
    lines += ["## Samples from the prior (tokens drawn; greedy from the same z)", ""]
    for row in report["samples"]:
        lines += [f"- {row['sampled']}", f"  - greedy: {row['greedy']}"]
    lines.append("")
    for i, line in enumerate(report.get("homotopies") or []):
        lines += [f"## Homotopy {i + 1}", "", f"from: {line['from']}", ""]
        lines += [f"{j}. {text}" for j, text in enumerate(line["path"])]
        lines += ["", f"to: {line['to']}", ""]
    path.write_text("\n".join(lines) + "\n")
    return str(path)
