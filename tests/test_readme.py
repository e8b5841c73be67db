"""The README's code runs: its Python blocks, in order, in a fresh interpreter on the bundled data.

Training lengths are shrunk (``epochs=N`` becomes ``epochs=1``) so the blocks check the
API the README shows, not the figures (those come from the recipes and cards).
"""

import re
import subprocess
import sys
from pathlib import Path

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
