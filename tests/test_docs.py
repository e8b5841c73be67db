"""The documentation site: every page is in its navigation, it builds with ``mkdocs build --strict`` (a broken
link, anchor, snippet or API page fails), and the commands and Python blocks of its pages run."""

import importlib.util
import os
import subprocess
import sys

import pytest

from documented_code import DOCS, ROOT, nav_pages, run_python_blocks, run_shell_commands, site_documents

SITE_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")


def test_every_page_is_in_the_navigation_and_every_entry_is_a_page():
    pages = sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md"))
    nav = nav_pages()
    assert len(nav) == len(set(nav)), "a page appears twice in the navigation of mkdocs.yml"
    assert sorted(nav) == pages, (f"not in mkdocs.yml's nav: {sorted(set(pages) - set(nav))}; "
                                  f"in the nav but not in docs/: {sorted(set(nav) - set(pages))}")


def test_the_api_reference_covers_the_public_modules():
    documented = {page.stem for page in (DOCS / "api").glob("*.md")}
    assert documented == {"registry", "data", "models", "networks", "training", "evaluation", "compression", "io", "errors"}
    for page in (DOCS / "api").glob("*.md"):
        assert f"::: vae_zoo.{page.stem}" in page.read_text(), f"{page.name} does not render vae_zoo.{page.stem}"


def _missing_site_packages():
    missing = []
    for name in SITE_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a dotted name whose parent package is absent
            found = False
        if not found:
            missing.append(name)
    return missing


def test_the_site_builds_strictly(tmp_path):
    missing = _missing_site_packages()
    if missing:
        pytest.skip(f"the docs extra is not installed (missing {', '.join(missing)}): pip install -e '.[docs]'")
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "site" / "api" / "models" / "index.html").is_file()


@pytest.mark.slow
def test_every_python_block_of_the_site_runs(tmp_path):
    assert run_python_blocks(site_documents(), tmp_path) >= 2, "the site's Python examples were not found"


@pytest.mark.slow
def test_every_shell_command_of_the_site_runs(tmp_path):
    """The pages' commands run in the order of the navigation, in one folder (the CLI page trains runs/fmnist,
    which the deploy page exports)."""
    ran = run_shell_commands(site_documents(), tmp_path)
    assert len(ran) >= 15, ran
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "export/vae_tflite/model.tflite").is_file()
