"""The README's code runs: its Python blocks, in order, in a fresh interpreter on the bundled data.

Training lengths are shrunk (``epochs=N`` becomes ``epochs=1``) so the blocks check the
API the README shows, not the figures (those come from the recipes and cards).
"""

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_every_python_block_of_the_readme_runs(tmp_path):
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2, "the README's Python examples were not found"
    script = "\n".join(re.sub(r"epochs=\d+", "epochs=1", block) for block in blocks)
    (tmp_path / "readme_blocks.py").write_text(script)
    run = subprocess.run([sys.executable, "-W", "error::UserWarning:keras", str(tmp_path / "readme_blocks.py")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=900, env={"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                                                                          "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "shuffle=True was passed, but will be ignored" not in run.stderr


# Shell commands the test does not run, by what they start with or contain, and why.
NOT_RUN = {
    "pip install": "installs from the network; .ci/run runs these set-up steps on a fresh machine",
    "python -m pytest": "the test suite itself",
    "docker run": "needs Docker and the tensorflow/serving image from the network",
    "curl": "needs the TF Serving container of the line before",
    "10.0.0.": "needs other machines; tests/test_distribute.py and tests/test_tuning.py run the same on 127.0.0.1",
}
# What the test adds so that each command checks the interface in seconds, not the figures: training and
# searches at smoke size (a search at most two trials), evaluation on 100 test images.
SHRINK = {"train": ["--smoke"], "tune": ["--smoke", "--set", "search.max_trials=2"], "evaluate": ["--limit", "100"]}


def shell_commands(text):
    """Every command of the README's bash blocks, continuation lines joined and comments dropped."""
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
        return "a repeat of an earlier command (the README shows a resume)"
    return None


def test_ci_runs_the_readmes_test_command():
    """.ci/run, which CI runs on a fresh machine, ends with the test command the README gives."""
    readme = next(c for c in shell_commands((ROOT / "README.md").read_text()) if c[:3] == ["python", "-m", "pytest"])
    last = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line.strip() and not line.startswith("#")][-1]
    ci = shlex.split(last)
    assert ci[0] == "python3" and ["python", *ci[1:]] == readme, (ci, readme)


def test_every_shell_command_of_the_readme_runs(tmp_path):
    """The README's commands run in order in one folder, as a user would type them; a command that cannot
    run here must be named in NOT_RUN with the reason, so a new command is never skipped silently."""
    (tmp_path / "recipes").symlink_to(ROOT / "recipes")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ran, skipped = [], []
    for command in shell_commands((ROOT / "README.md").read_text()):
        if why_not_run(command, ran):
            skipped.append(command)
            continue
        if command[0] == "vae-zoo":
            argv = [sys.executable, "-m", "vae_zoo", *command[1:], *SHRINK.get(command[1], [])]
        elif command[0] == "saved_model_cli":
            argv = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", *command[1:]]
        else:
            raise AssertionError(f"the README runs {command[0]!r}: teach this test to run it, or say in NOT_RUN why not")
        if "fashion_mnist" in " ".join(command) and not fashion_mnist_installed():
            pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run does)")
        run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, f"README command {' '.join(command)} failed:\n{run.stderr[-3000:]}"
        ran.append(command)
    assert len(ran) >= 15, (ran, skipped)
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "export/vae_tflite/model.tflite").is_file()


def fashion_mnist_installed():
    from vae_zoo.data import images

    return Path(os.environ.get("VAE_ZOO_FASHION_MNIST_DIR", images.DEBIAN_FASHION_MNIST)).is_dir()


def test_the_readme_tables_match_the_cards_recipes_and_reports():
    run = subprocess.run([sys.executable, str(ROOT / "tools/write_readme.py"), "--check"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_a_generated_table_follows_its_source(tmp_path):
    tool = load_tool("write_readme")
    recipe = tmp_path / "vae" / "x.yaml"
    recipe.parent.mkdir()
    recipe.write_text("# A recipe.\n#\n# Expected: test ELBO -1.5 nats\n# after 3 epochs.\n#\n# Other.\nmodel: {name: vae}\n")
    assert tool.recipes_table(tmp_path).splitlines()[-1] == "| `vae/x` | test ELBO -1.5 nats after 3 epochs. |"
    (tmp_path / "speed.json").write_text('{"columns": ["a", "b"], "rows": [[1, "x"]]}')
    assert tool.report_table("speed", tmp_path) == "| a | b |\n|---|---|\n| 1 | x |"
    stale = "<!-- table: speed (generated by tools/write_readme.py; do not edit) -->\n| old |\n<!-- end of table: speed -->"
    tool.report_table.__defaults__ = (tmp_path,)
    assert "| 1 | x |" in tool.regenerate(stale) and "old" not in tool.regenerate(stale)


def test_the_model_table_says_when_a_run_used_fewer_threads_than_cpus():
    tool = load_tool("write_readme")
    assert tool._hardware({"cpu": "x", "cpus": 2, "threads": 1, "gpus": []}) == ", 1 of 2 CPUs"
    assert tool._hardware({"cpu": "x", "cpus": 2, "threads": 2, "gpus": []}) == ", 2 CPUs"
    assert tool._hardware({"cpu": "x", "cpus": 2, "gpus": []}) == ", 2 CPUs"  # a card from before threads were recorded
    assert tool._hardware({"cpu": "x", "cpus": 16, "threads": 16, "gpus": ["H100"]}) == ", H100"


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
