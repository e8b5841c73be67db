"""``vae-zoo evaluate DIR --out REPORT_DIR``: every figure that applies to a model, in one folder.

Each part is a function of a ``Context``; a part that does not apply to the
model or its data raises ``NotApplicable`` and is recorded as skipped, with the
reason. A part that only some kinds of data have (audio, text) is named in their modality's ``report_parts``
(``vae_zoo.data.modalities``) and skipped for the others. The report states the split, the seed and each
part's settings (k, ...).
"""

import dataclasses
import functools
import sys
import time
from pathlib import Path

import numpy as np

from vae_zoo import data as data_module
from vae_zoo.compression import report as compression
from vae_zoo.compression.files import method_for as compression_method
from vae_zoo.data.audio import features_named
from vae_zoo.errors import InputError, unknown_name
from vae_zoo.evaluation import audio, latents, ood, text, visualize
from vae_zoo.evaluation import metrics as evaluation
from vae_zoo.evaluation.disentanglement import beta_vae_score, mutual_information_gap
from vae_zoo.io import strict_json
from vae_zoo.io.saving import weights_digest

# Parts that need arrays (likelihoods, latent statistics, pictures) read at most this many examples of the split
# unless --limit says otherwise; scores stream over the whole split.
ARRAY_LIMIT = 10_000


class NotApplicable(Exception):
    """This part of the report does not apply to this model or data set."""


@dataclasses.dataclass
class Context:
    model: object
    data: object
    data_spec: dict
    out_dir: Path
    split: str = "test"
    k: int = 1000
    anomaly_k: int = 100
    limit: int = None
    seed: int = 0
    progress: bool = False  # progress bars for the long parts (the IS-NLL above all)
    model_name: str = None  # how the user named the model (a pretrained name or a folder), for compressed files
    ood_data: object = None  # a data set name or spec dict: the out-of-distribution examples of the "ood" part
    regret_steps: int = None  # the "ood" part's likelihood-regret fitting steps (None: the default; 0: left out)

    def pipeline(self):
        """The split as batches, at most ``limit`` examples: for parts that stream over it."""
        dataset = self.data.split(self.split)
        return dataset if self.limit is None else dataset.unbatch().take(self.limit).batch(self.data.batch_size)

    @functools.cached_property
    def sample(self):
        """(examples, labels) of the split as arrays, bounded; read once (a streamed split decodes its files)."""
        return self.data.take(self.split, self.limit or ARRAY_LIMIT)

    @property
    def images(self):
        return self.sample[0]

    @property
    def modality(self):
        """What the data are (``vae_zoo.data.modalities``): their score units and the parts only they have."""
        return data_module.get_modality(self.data.spec.modality)

    @property
    def labels(self):
        return self.sample[1]


def part_scores(c):
    scores = evaluation.score_dataset(c.model, c.pipeline(), seed=c.seed)
    if "elbo" in scores:
        scores.update(c.modality.elbo_units(scores["elbo"], c.model.data_shape))
    return {**scores, "method": "single-sample ELBO: one z ~ q(z|x) per example, mean over the split"}


def part_nll(c):
    if not c.model.can("elbo"):
        raise NotApplicable("the model defines no likelihood")
    log_p = evaluation.log_likelihood(c.model, c.images, c.labels, k=c.k, seed=c.seed, progress=c.progress)
    nll = float(-log_p.mean())
    result = {"nll": nll, "nll_std_error": float(log_p.std() / np.sqrt(len(log_p))), "k": c.k, "examples": int(len(log_p)),
              "method": "importance sampling with k draws from q(z|x), log-mean-exp (Burda et al., 2015)"}
    result.update(c.modality.nll_units(log_p, c.images, c.model.data_shape))  # bits per dimension, perplexity...
    return result


def part_latents(c):
    if not c.model.can("latent"):
        raise NotApplicable("the model has no latent variable")
    active, variances = latents.active_units(c.model, c.images, c.labels)
    result = {"active_units": active, "latent_dims": int(variances.size), "activity_threshold": 0.01,
              "posterior_mean_variance": variances.tolist()}
    per_dim = latents.kl_per_dimension(c.model, c.images, c.labels)
    if per_dim is not None:
        result["kl_per_dim"] = per_dim.tolist()
    if hasattr(c.model, "kl_by_group"):  # a hierarchy of latent groups: what each holds, and a picture of it
        images = c.images[:500]
        per_group = np.concatenate([c.model.kl_by_group(images[i:i + 50]) for i in range(0, len(images), 50)])
        result["kl_per_group"] = per_group.mean(axis=0).tolist()
        result["group_shapes"] = [list(shape) for shape in c.model.group_shapes]
        if visualize.group_grid(c.model, c.images[0], c.out_dir / "groups.png", seed=c.seed):
            result["files"] = {"groups": "groups.png"}
    information = evaluation.mutual_information(c.model, c.images, c.labels, seed=c.seed)
    if information is not None:
        result["mutual_information"] = information
        result["mutual_information_bound"] = float(np.log(min(1000, len(c.images))))
    return result


def part_generation(c):
    files = {}
    if visualize.reconstruction_grid(c.model, c.images, c.labels, c.out_dir / "reconstructions.png"):
        files["reconstructions"] = "reconstructions.png"
    if c.model.can("sample") and visualize.sample_grid(c.model, c.out_dir / "samples.png", seed=c.seed):
        files["samples"] = "samples.png"
    if c.model.can("labels") and visualize.class_grid(c.model, c.out_dir / "class_samples.png", seed=c.seed):
        files["class_samples"] = "class_samples.png"
    if not files:
        raise NotApplicable("the data are not images")
    return {"files": files}


def part_interpolation(c):
    labels = c.labels
    # Two examples of different classes make the most telling path.
    second = int(np.flatnonzero(labels != labels[0])[0]) if np.any(labels != labels[0]) else 1
    label = int(labels[0]) if c.model.can("labels") else None
    if not visualize.interpolation_strip(c.model, c.images[0], c.images[second], c.out_dir / "interpolation.png", label=label):
        raise NotApplicable("the data are not images")
    return {"files": {"interpolation": "interpolation.png"}, "from_index": 0, "to_index": second}


def part_latent_map(c):
    if not c.model.can("latent"):
        raise NotApplicable("the model has no latent variable")
    codes = latents.posterior_means(c.model, c.images, c.labels)
    files = visualize.latent_maps(codes, c.labels, c.out_dir, seed=c.seed)
    if codes.shape[1] == 2 and c.model.can("sample") and not c.model.can("labels"):
        visualize.traversal_2d(c.model, c.out_dir / "traversal.png")
        files["traversal"] = "traversal.png"
    return {"files": files, "examples": int(min(len(codes), 2000))}


def part_anomaly(c):
    held_out = list(c.data_spec.get("exclude_classes") or [])
    if not held_out:
        raise NotApplicable("the model was trained on every class; train with data.exclude_classes to hold one out")
    images, labels = c.data.take("test")
    anomalous = np.isin(labels, held_out)
    auroc = evaluation.anomaly_auroc(
        c.model, images[~anomalous][: c.limit], images[anomalous][: c.limit],
        labels[~anomalous][: c.limit], labels[anomalous][: c.limit], k=c.anomaly_k, seed=c.seed,
    )
    return {"auroc": auroc, "held_out_classes": held_out, "normal_examples": int(min((~anomalous).sum(), c.limit or 10**9)),
            "anomalous_examples": int(min(anomalous.sum(), c.limit or 10**9)), "nll_k": c.anomaly_k,
            "method": "test images of the held-out classes against the other test images; AUROC of each score"}


def part_ood(c):
    if not c.ood_data:
        raise NotApplicable("no out-of-distribution data set given (--ood-data NAME)")
    if not c.model.can("elbo"):
        raise NotApplicable("the model defines no likelihood")
    spec = {"binarize": c.data.binarize, "seed": c.seed, "labels": c.model.can("labels"), "batch_size": c.data.batch_size}
    # A name, or a spec with the set's own options (emoji turned grey and resized to the model's images, say).
    named = dict(c.ood_data) if isinstance(c.ood_data, dict) else {"name": c.ood_data}
    outside = data_module.load(**{**spec, **named})
    c.model.check_fits(outside)
    limit = c.limit or ARRAY_LIMIT
    result = ood.evaluate_ood(c.model, c.sample, outside.take(c.split, limit), c.data.take("validation", limit),
                              k=c.anomaly_k, seed=c.seed, histogram=c.out_dir / "ood_scores.png",
                              names=(c.data.name, outside.name), regret_steps=c.regret_steps)
    return {**result, "in": f"{c.data.name} {c.split}", "out": f"{outside.name} {c.split}", "out_spec": named,
            "binarize": c.data.binarize}


def part_semi_supervised(c):
    if c.data.num_classes < 2:
        raise NotApplicable("the data set has no class labels")
    return {**evaluation.semi_supervised(c.model, c.data, seed=c.seed),
            "method": "M1 (Kingma et al., 2014): logistic regression on posterior means vs on raw pixels, n labels per class"}


def part_disentanglement(c):
    grid = c.data.source.factor_grid() if c.data.source else None
    if grid is None:
        raise NotApplicable("needs data with known factors of variation: train on the 'shapes' data set")
    images, factors = grid.examples, grid.factors
    if c.data.binarize != "none":
        images = data_module.binarize_static(images, seed=c.seed)
    codes = latents.posterior_means(c.model, images)
    encode = lambda batch: latents.posterior_means(c.model, batch)
    return {
        "mig": mutual_information_gap(codes, factors),
        "beta_vae_score": beta_vae_score(encode, images, factors, grid.sizes, grid.index_of, seed=c.seed),
        "factors": list(grid.names),
        "method": f"MIG (Chen et al., 2018), 20 bins, over all {len(images)} images; beta-VAE score (Higgins et al., 2017), "
                  "batches of 64, 600/300 points",
    }


def part_audio(c):
    kind = features_named(c.data.spec.features)
    written = audio.listen(c.model, c.images, c.labels, c.out_dir, seed=c.seed, kind=kind)
    result = {"features": kind.name, "files": sorted({str(Path(p).relative_to(c.out_dir)) for paths in written.values() for p in paths}
                                                     | {p.name for p in c.out_dir.glob("*.png")})}
    recordings = c.data.source.recordings() if c.data.source else None
    if recordings is not None:  # speakers and waveforms: the digit and speaker probes
        result["probes"] = audio.probes(c.model, recordings, seed=c.seed, kind=kind)
    return result


def part_text(c):
    result = {"samples": text.samples(c.model, seed=c.seed)}
    if c.model.can("gaussian_posterior"):
        result.update(reconstructions=text.reconstructions(c.model, c.images), homotopies=text.homotopies(c.model, c.images, seed=c.seed))
    labelled = c.labels is not None and len(np.unique(c.labels[c.labels >= 0])) > 1
    if labelled and c.model.can("gaussian_posterior"):
        result["m1_probe"] = evaluation.semi_supervised(c.model, c.data, seed=c.seed)
    result["files"] = [Path(text.write_markdown(result, c.out_dir / "text.md", c.model.registered_name)).name]
    return result


def part_compression(c):
    try:
        method = compression_method(c.model)
    except InputError as reason:
        raise NotApplicable(str(reason)) from None
    name, digest = c.model_name or c.model.registered_name, weights_digest(c.model)
    if method == "vq_codes":
        result = compression.lossy(c.model, c.images, name, digest)
        title = f"{c.data.name} {c.split} ({len(c.images)} images)"
        return {**result, "files": [compression.plot_rate_distortion({title: result}, c.out_dir / "rate_distortion.png")]}
    if not data_module.is_binary(c.images):
        raise NotApplicable("lossless coding with a Bernoulli likelihood needs binary images; this data set is not binarized")
    return compression.lossless(c.model, c.images, name, digest, seed=c.seed)


PARTS = {
    "scores": part_scores,
    "nll": part_nll,
    "latents": part_latents,
    "generation": part_generation,
    "interpolation": part_interpolation,
    "latent_map": part_latent_map,
    "anomaly": part_anomaly,
    "ood": part_ood,
    "semi_supervised": part_semi_supervised,
    "disentanglement": part_disentanglement,
    "compression": part_compression,
    "audio": part_audio,
    "text": part_text,
}


def modality_reason(part, modality):
    """Why ``part``, which only some modalities have (their ``report_parts``: audio, text), does not apply to data
    of ``modality``; None where it may apply."""
    owners = [m.name for m in data_module.MODALITIES.values() if part in m.report_parts]
    if owners and part not in modality.report_parts:
        return f"applies to {' or '.join(sorted(owners))} data, and these data are {modality.name}"
    return None


def data_spec_for(model, data_spec):
    """The data options that read ``data_spec``'s set as ``model`` takes it: with labels for a conditional
    model, and with the model's own vocabulary for a token model (the same words keep the same ids)."""
    # Training indices (the exemplar prior's leave-one-out) are for training only: evaluation reads the labels.
    spec = {**{k: v for k, v in data_spec.items() if k not in ("limit", "indices")}, "labels": model.can("labels")}
    own = data_module.get_modality(model.modality).data_options(model)
    if own:  # only the options the data set takes (a token model's vocabulary: text sources)
        accepted = data_module.get_source(spec.get("name")).schema()
        spec.update({name: value for name, value in own.items() if name in accepted})
    return spec


def evaluate(model, data_spec, out_dir, only=None, split="test", k=1000, anomaly_k=100, limit=None, seed=0, progress=False,
             model_name=None, ood_data=None, regret_steps=None):
    """Run the report's parts (all, or ``only``) and write ``report.json`` and the PNGs into ``out_dir``."""
    for name in only or []:
        if name not in PARTS:
            raise unknown_name("report part", name, PARTS)
    out_dir = Path(out_dir)
    spec = data_spec_for(model, data_spec)
    data = data_module.load(**spec)
    model.check_fits(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = Context(model, data, spec, out_dir, split, int(k), int(anomaly_k), limit, int(seed), bool(progress), model_name, ood_data,
                      regret_steps)
    # The digest names the weights measured, so that a card can show its report describes the weights it ships.
    report = {"model": model.registered_name, "weights_sha256": weights_digest(model), "data": data.name,
              "binarize": data.binarize, "split": split, "examples": int(len(context.images)), "seed": seed, "parts": {}}
    if data.spec.attribution:  # its pictures show the data set's examples
        report["attribution"] = data.spec.attribution
    for name, part in PARTS.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        if progress:
            print(f"{name}:", file=sys.stderr, flush=True)
        try:
            reason = modality_reason(name, context.modality)
            if reason:
                raise NotApplicable(reason)
            report["parts"][name] = {**part(context), "seconds": round(time.perf_counter() - started, 1)}
        except NotApplicable as reason:
            report["parts"][name] = {"skipped": str(reason)}
    (out_dir / "report.json").write_text(strict_json.dumps(report, indent=2) + "\n")
    return report
