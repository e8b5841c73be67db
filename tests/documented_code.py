"""The code that the README and the documentation site show, read out of their markdown and run.

``tests/test_readme.py`` runs the README's, ``tests/test_docs.py`` the site's pages (in the order of the
site's navigation, so that a page may use what an earlier one made, as a reader following along would).
Training lengths are shrunk (``epochs=N`` becomes ``epochs=1``; commands get ``--smoke``) so that the code checks
the API it shows, not the figures (those come from the recipes and cards).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"

# Shell commands the tests do not run, by what they start with or contain, and why.
NOT_RUN = {
    "pip install": "installs from the network; .ci/run runs these set-up steps on a fresh machine",
    "python -m pytest": "the test suite itself",
    "docker run": "needs Docker and the tensorflow/serving image from the network",
    "curl": "needs the TF Serving container of the line before",
    "10.0.0.": "needs other machines; tests/test_distribute.py and tests/test_tuning.py run the same on 127.0.0.1",
    # The TF.js path: a 2.9 GB venv of its own and npm; tests/test_tfjs.py runs it in the slow tier (-m slow).
    "python3 -m venv ~/.venvs/tfjs": "the TF.js converter's own venv (tests/test_tfjs.py, slow tier)",
    "~/.venvs/tfjs/bin/pip": "installs from the network into the TF.js venv (tests/test_tfjs.py, slow tier)",
    "npm ci": "installs @tensorflow/tfjs from npm (tests/test_tfjs.py, slow tier)",
    "export VAE_ZOO_TFJS_": "points the export at the TF.js venv and npm folder above (tests/test_tfjs.py, slow tier)",
    "vae-zoo export vae.mnist_mini --out web/vae --format tfjs": "needs the TF.js converter (tests/test_tfjs.py, slow tier)",
    "node tools/tfjs/decode.mjs": "needs the TF.js export above (tests/test_tfjs.py, slow tier)",
}
# What the tests add so that each command checks the interface in seconds, not the figures: training and
# searches at smoke size (a search at most two trials), evaluation on 100 test images.
SHRINK = {"train": ["--smoke"], "tune": ["--smoke", "--set", "search.max_trials=2"], "evaluate": ["--limit", "100"]}


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def shell_commands(text):
    """Every command of the markdown's bash blocks, continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```$", text, flags=re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                commands.append(words[:cut])
                words = words[cut + 1:]
    return commands


def why_not_run(command, already_run):
    line = " ".join(command)
    for pattern, why in NOT_RUN.items():
        if line.startswith(pattern) or (pattern.endswith(".") and pattern in line):
            return why
    if command in already_run:
        return "a repeat of an earlier command (the documentation shows a resume)"
    return None


def nav_pages(config=ROOT / "mkdocs.yml"):
    """The site's pages (paths relative to docs/) in the order of its navigation."""

    def walk(entries):
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                yield from walk(value)
            else:
                yield value

    return list(walk(yaml.safe_load(Path(config).read_text())["nav"]))


def site_documents():
    return [DOCS / page for page in nav_pages()]


def fashion_mnist_installed():
    from vae_zoo.data import images

    return Path(os.environ.get("VAE_ZOO_FASHION_MNIST_DIR", images.DEBIAN_FASHION_MNIST)).is_dir()


def run_python_blocks(documents, folder):
    """Every Python block of the documents, in order, as one script in a fresh interpreter on the bundled data.
    Returns how many blocks ran."""
    blocks = [block for document in documents for block in python_blocks(Path(document).read_text())]
    script = "\n".join(re.sub(r"epochs=\d+", "epochs=1", block) for block in blocks)
    (folder / "documented_blocks.py").write_text(script)
    run = subprocess.run([sys.executable, "-W", "error::UserWarning:keras", str(folder / "documented_blocks.py")], cwd=folder,
                         capture_output=True, text=True, timeout=900, env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                                                                          "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "shuffle=True was passed, but will be ignored" not in run.stderr
    return len(blocks)


def run_shell_commands(documents, folder):
    """The documents' commands, in order, in one folder, as a user would type them; a command that cannot run here
    must be named in NOT_RUN with the reason, so a new command is never skipped silently. Returns those run."""
    (folder / "recipes").symlink_to(ROOT / "recipes")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ran = []
    for document in documents:
        for command in shell_commands(Path(document).read_text()):
            if why_not_run(command, ran):
                continue
            if command[0] == "vae-zoo":
                argv = [sys.executable, "-m", "vae_zoo", *command[1:], *SHRINK.get(command[1], [])]
            elif command[0] == "saved_model_cli":
                argv = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *command[1:]]
            else:
                raise AssertionError(f"{document.name} runs {command[0]!r}: teach tests/documented_code.py to run it, "
                                     "or say in NOT_RUN why not")
            if "fashion_mnist" in " ".join(command) and not fashion_mnist_installed():
                pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run does)")
            run = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, f"{document.name}: command {' '.join(command)} failed:\n{run.stderr[-3000:]}"
            ran.append(command)
    return ran
