"""Rewrite every published model's Hub model card (README.md) and the package's pretrained catalog.

    python tools/write_pretrained_catalog.py

Reads the folders of saved_models/ and artifacts/ (vae_zoo.io.pretrained.REPOSITORY_ZOO, REPOSITORY_ARTIFACTS);
writes <folder>/README.md and vae_zoo/pretrained.json. ``vae-zoo publish`` does the same for the one model it
publishes; tests/test_artifacts.py fails when the catalog and the folders disagree.
"""

from vae_zoo.io import model_cards, pretrained
from vae_zoo.io.cards import MODEL_FILE


def main():
    entries = {}
    for root in (pretrained.REPOSITORY_ZOO, pretrained.REPOSITORY_ARTIFACTS):
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if (folder / MODEL_FILE).is_file():
                model_cards.write_hub_readme(folder, folder.name)
                entries[folder.name] = model_cards.catalog_entry(folder)
    model_cards.write_catalog(entries, pretrained.CATALOG_FILE)
    print(f"{len(entries)} models in {pretrained.CATALOG_FILE}")


if __name__ == "__main__":
    main()
