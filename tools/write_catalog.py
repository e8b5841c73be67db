"""Write vae_zoo/catalog.json from the live registry (run after adding or changing a variant).

    python tools/write_catalog.py
"""

import json

from vae_zoo import catalog

if __name__ == "__main__":
    catalog.CATALOG_FILE.write_text(json.dumps(catalog.describe_registry(), indent=2) + "\n")
    print(f"wrote {catalog.CATALOG_FILE}")
