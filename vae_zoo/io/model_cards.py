"""A published model's Hub model card (``README.md``) and its entry in the package's pretrained catalog.

``vae-zoo publish`` calls both; ``python tools/write_pretrained_catalog.py`` rewrites them for every folder of
``saved_models/`` and ``artifacts/``, and tests/test_artifacts.py checks that the catalog matches those folders.
"""

import json
from pathlib import Path

from vae_zoo.io import artifacts
from vae_zoo.io.cards import read_card

# What the files of a model folder are: the artifact, as a Hub model repository holds it.
ARTIFACT_FILES = ("model.keras", "card.json", "samples.png", "README.md")
CATALOG_FORMAT = 1
# Where the maintainers upload each artifact (a Hub model repository per model, docs/pretrained.md).
BASE_URL = "https://huggingface.co/vae-zoo/{name}/resolve/main/{file}"
# The licence of the weights: the project's. The data's own terms travel in the card (data.attribution).
LICENSE = "apache-2.0"
HUB_DATASETS = {"fashion_mnist": "zalando-datasets/fashion_mnist", "mnist_mini": "ylecun/mnist", "mnist": "ylecun/mnist"}


def figures(card):
    """The headline figures of a card: test ELBO (nats), and the report's IS-NLL and bits/dim where measured."""
    out = {}
    test = (card.get("metrics") or {}).get("test") or {}
    if isinstance(test.get("elbo"), (int, float)):
        out["test_elbo"] = round(float(test["elbo"]), 4)
        out["test_examples"] = int(test.get("examples") or 0)
    nll = (((card.get("report") or {}).get("parts") or {}).get("nll")) or {}
    if isinstance(nll.get("nll"), (int, float)):
        out["test_nll"] = round(float(nll["nll"]), 4)
        out["test_nll_k"] = int(nll.get("k") or 0)
        out["test_nll_examples"] = int(nll.get("examples") or 0)
        if isinstance(nll.get("bits_per_dim"), (int, float)):
            out["bits_per_dim"] = round(float(nll["bits_per_dim"]), 4)
    return out


def hub_readme(name, card):
    """README.md with the Hub's YAML metadata (licence, data set, metrics), from the card."""
    data = (card.get("data") or {}).get("name", "unknown")
    shown = figures(card)
    metrics = [f"      - {{type: {key}, value: {value}}}" for key, value in shown.items() if key in ("test_elbo", "test_nll", "bits_per_dim")]
    lines = ["---", f"license: {LICENSE}", "library_name: keras", "tags: [vae_zoo, variational-autoencoder, keras, tensorflow]"]
    if data in HUB_DATASETS:
        lines.append(f"datasets: [{HUB_DATASETS[data]}]")
    if metrics:
        lines += ["model-index:", f"  - name: {name}", "    results:", f"    - dataset: {{name: {data}, type: {data}}}",
                  "      task: {type: unconditional-image-generation}" if (card.get("data") or {}).get("modality", "image") == "image"
                  else "      task: {type: text-generation}", "      metrics:", *metrics]
    lines += ["---", "", f"# {name}", "",
              f"A `{card.get('model', name.split('.')[0])}` of vae_zoo (variational autoencoders for Keras) trained on `{data}`.",
              "", "```python", "import vae_zoo", "", f'model = vae_zoo.load_pretrained("{name}")', "```", ""]
    if shown:
        lines += ["| figure | value |", "|---|---|", *[f"| {key} | {value} |" for key, value in shown.items()], ""]
    attribution = (card.get("data") or {}).get("attribution")
    if attribution:
        lines += [f"Data: {attribution}", ""]
    lines += ["`card.json` holds the recipe, the training record and every measured figure; `samples.png` shows samples.", ""]
    return "\n".join(lines)


def write_hub_readme(folder, name):
    path = Path(folder) / "README.md"
    path.write_text(hub_readme(name, read_card(folder)))
    return path


def catalog_entry(folder):
    """The catalog entry of a model folder: its artifact files' sizes and digests, and its figures."""
    folder = Path(folder)
    card = read_card(folder)
    files = {file: {"bytes": (folder / file).stat().st_size, "sha256": artifacts.sha256_of(folder / file)}
             for file in ARTIFACT_FILES if (folder / file).is_file()}
    return {"model": card.get("model"), "data": (card.get("data") or {}).get("name"), "figures": figures(card),
            "bytes": sum(spec["bytes"] for spec in files.values()), "files": files}


def write_catalog(entries, path):
    """Write the catalog {name: entry} to ``path`` (sorted, so that a change shows as a small diff)."""
    catalog = {"format": CATALOG_FORMAT, "base_url": BASE_URL, "models": dict(sorted(entries.items()))}
    Path(path).write_text(json.dumps(catalog, indent=1, sort_keys=False) + "\n")


def update_catalog(name, folder, path):
    """Add or replace ``name``'s entry in the catalog at ``path``."""
    current = json.loads(Path(path).read_text())["models"] if Path(path).is_file() else {}
    write_catalog({**current, name: catalog_entry(folder)}, path)
