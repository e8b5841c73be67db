"""The wheel as users get it: under 5 MB, no weights inside, and pretrained models fetched by name from a mirror
into the cache, then loaded offline from there, from any directory."""

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import vae_zoo

REPOSITORY = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(".git", "build", "dist", "runs", "artifacts", "*.egg-info", "__pycache__", ".pytest_cache",
                                 "node_modules")
MAX_WHEEL_BYTES = 5_000_000

CHECK = """
import json, pathlib, sys
import vae_zoo
from vae_zoo.io import pretrained
assert pathlib.Path(vae_zoo.__file__).resolve().is_relative_to(pathlib.Path(sys.prefix).resolve()), vae_zoo.__file__
model = vae_zoo.load_pretrained("vae.fashion_mnist")
samples = model.sample(4, seed=0).numpy()
print(json.dumps({"names": vae_zoo.list_pretrained(), "parameters": model.count_params(), "shape": list(samples.shape),
                  "finite": bool((samples == samples).all()), "folder": str(pretrained.pretrained_folder("vae.fashion_mnist"))}))
"""


def test_the_wheel_is_small_and_fetches_pretrained_models_into_its_cache(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(REPOSITORY, source, ignore=IGNORED)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("vae_zoo-*.whl")
    assert wheel.stat().st_size < MAX_WHEEL_BYTES, f"the wheel is {wheel.stat().st_size:,} bytes"
    listed = subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True, text=True, check=True).stdout
    assert ".keras" not in listed and "vae_zoo/pretrained.json" in listed

    # TensorFlow and the other dependencies come from this environment (a .pth file lists its site folders after
    # the venv's own); the package itself comes from the wheel.
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    venv_site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip()
    Path(venv_site, "outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    home = tmp_path / "home"
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "VAE_ZOO_HOME": str(home)}
    # First use: fetched from the mirror the user names (here the repository's own saved_models/), checked, loaded.
    fetched = subprocess.run([str(python), "-c", CHECK], cwd=elsewhere, capture_output=True, text=True,
                             env={**env, "VAE_ZOO_MIRROR": str(REPOSITORY / "saved_models")})
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    found = json.loads(fetched.stdout.strip().splitlines()[-1])
    assert found["names"] == vae_zoo.list_pretrained() and found["folder"] == str(home / "models" / "vae.fashion_mnist")
    assert found["parameters"] == vae_zoo.pretrained_card("vae.fashion_mnist")["parameters"]
    assert found["shape"] == [4, 28, 28, 1] and found["finite"]
    # Offline afterwards: no mirror, and the catalog's server unreachable from here; the cache serves.
    offline = subprocess.run([str(python), "-c", CHECK], cwd=elsewhere, capture_output=True, text=True, env=env)
    assert offline.returncode == 0, offline.stderr[-3000:]
    assert json.loads(offline.stdout.strip().splitlines()[-1]) == found
