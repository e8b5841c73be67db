"""A non-editable install finds the shipped pretrained models, from any directory."""

import shutil
import site
import subprocess
import sys
from pathlib import Path

import vae_zoo

REPOSITORY = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".git", "build", "dist", "runs", "*.egg-info", "__pycache__", ".pytest_cache")

CHECK = """
import json, pathlib, sys
import vae_zoo
assert pathlib.Path(vae_zoo.__file__).resolve().is_relative_to(pathlib.Path(sys.prefix).resolve()), vae_zoo.__file__
names = vae_zoo.list_pretrained()
# Every shipped model loads in one line from the installed wheel, offline.
parameters = {name: vae_zoo.load_pretrained(name).count_params() for name in names}
model = vae_zoo.load_pretrained("vae.mnist_mini")
samples = model.sample(4, seed=0).numpy()
print(json.dumps({"names": names, "parameters": parameters, "shape": list(samples.shape),
                  "finite": bool((samples == samples).all())}))
"""


def test_pip_install_of_the_package_lists_and_loads_the_pretrained_models(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=IGNORED)
    # TensorFlow and the other dependencies come from this environment (a .pth file lists its site
    # folders after the venv's own); the package itself comes from the wheel.
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(venv_site, "outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # `pip install .`, not editable: pip builds the wheel and installs it.
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(python), "-c", CHECK], cwd=elsewhere, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    found = __import__("json").loads(result.stdout.strip().splitlines()[-1])
    assert found["names"] == vae_zoo.list_pretrained() and len(found["names"]) >= 5
    assert found["parameters"] == {name: vae_zoo.pretrained_card(name)["parameters"] for name in found["names"]}
    assert found["shape"] == [4, 28, 28, 1] and found["finite"]
