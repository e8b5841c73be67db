"""Pretrained models fetched by name: from a real HTTP server on 127.0.0.1 and from a mirror folder, resumed after
an interruption, refused when altered, and loaded offline from the cache; the package's catalog matches the zoo."""

import contextlib
import http.server
import json
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.io import artifacts, model_cards, pretrained
from vae_zoo.io.cards import MODEL_FILE
from vae_zoo.publishing import publish

ROOT = Path(__file__).resolve().parents[1]


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Files of a mirror folder, with Range requests; for ``break_file``, ``break_after`` bytes then a dropped
    connection, once."""

    break_after = None
    break_file = MODEL_FILE
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        type(self).requests.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        cut = type(self).break_after
        if cut is not None and self.path.endswith(type(self).break_file):
            type(self).break_after = None
            self.wfile.write(data[start:start + cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(data[start:])


@contextlib.contextmanager
def serving(folder):
    handler = type("Handler", (MirrorHandler,), {"requests": [], "break_after": None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A zoo of one small published model, its catalog the package's, and no local copy of it anywhere."""
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [64]})
    model.compile()
    model.fit(np.zeros((4, 8, 8, 1), np.float32), epochs=1, verbose=0)
    vae_zoo.save(model, tmp_path / "run", card={"metrics": {"test": {"elbo": -12.5, "examples": 4}}})
    published = publish(tmp_path / "run", "vae.tiny", tmp_path / "mirror")
    monkeypatch.setattr(pretrained, "CATALOG_FILE", tmp_path / "mirror" / "pretrained.json")
    monkeypatch.setattr(pretrained, "REPOSITORY_ZOO", tmp_path / "no_zoo")
    monkeypatch.setattr(pretrained, "REPOSITORY_ARTIFACTS", tmp_path / "no_artifacts")
    monkeypatch.delenv("VAE_ZOO_PRETRAINED_DIR", raising=False)
    monkeypatch.setenv("VAE_ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VAE_ZOO_MIRROR", raising=False)
    artifacts._verified.clear()
    return tmp_path, published, model


def cached(tmp_path):
    return tmp_path / "home" / "models" / "vae.tiny"


def test_publish_writes_the_artifact_a_hub_repository_holds_and_its_catalog_entry(mirror):
    tmp_path, folder, _ = mirror
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "card.json", "model.keras", "samples.png"]
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\nlicense: apache-2.0\nlibrary_name: keras\n") and "test_elbo | -12.5" in readme
    entry = json.loads((tmp_path / "mirror" / "pretrained.json").read_text())["models"]["vae.tiny"]
    assert entry["files"]["model.keras"]["sha256"] == artifacts.sha256_of(folder / MODEL_FILE)
    assert entry["bytes"] == sum(f.stat().st_size for f in folder.iterdir()) and entry["figures"]["test_elbo"] == -12.5


def test_a_fresh_fetch_from_a_server_then_offline_from_the_cache(mirror, monkeypatch, capsys):
    tmp_path, folder, model = mirror
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    with serving(tmp_path / "mirror") as (url, handler):
        monkeypatch.setenv("VAE_ZOO_MIRROR", url)
        assert cli.main(["list", "--pretrained"]) == 0
        assert "vae.tiny  test ELBO -12.50" in capsys.readouterr().out
        assert handler.requests == [], "listing fetches nothing"
        loaded = vae_zoo.load_pretrained("vae.tiny")
        assert sorted(path for path, _ in handler.requests) == sorted(f"/vae.tiny/{f}" for f in model_cards.ARTIFACT_FILES)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)
    assert sorted(p.name for p in cached(tmp_path).iterdir()) == sorted(model_cards.ARTIFACT_FILES)
    # Offline: no server, no mirror; the cache is checked and used.
    monkeypatch.delenv("VAE_ZOO_MIRROR")
    monkeypatch.setattr(pretrained, "catalog", lambda: {**json.loads(pretrained.CATALOG_FILE.read_text()), "base_url": None})
    np.testing.assert_allclose(vae_zoo.load_pretrained("vae.tiny")(x), model(x), rtol=1e-6)
    assert cli.main(["download", "vae.tiny"]) == 0
    assert json.loads(capsys.readouterr().out)["folders"]["vae.tiny"] == str(cached(tmp_path))


def test_an_interrupted_fetch_resumes_where_it_broke_off(mirror, monkeypatch):
    tmp_path, folder, _ = mirror
    size = (folder / MODEL_FILE).stat().st_size
    with serving(tmp_path / "mirror") as (url, handler):
        monkeypatch.setenv("VAE_ZOO_MIRROR", url)
        monkeypatch.setattr(pretrained, "catalog", lambda: {**json.loads(pretrained.CATALOG_FILE.read_text()), "base_url": None})
        handler.break_after = 5000
        with pytest.raises(vae_zoo.ModelFileError, match=r"could not be fetched: http://127.0.0.1:\d+/vae.tiny/"):
            vae_zoo.download("vae.tiny")
        partial = [p for p in cached(tmp_path).iterdir() if p.name.endswith(".partial")]
        assert [p.name for p in partial] == [f".{MODEL_FILE}.partial"] and partial[0].stat().st_size == 5000
        handler.requests.clear()
        pretrained.download("vae.tiny")
    resumed = dict(handler.requests)
    broken = partial[0].name[1:-len(".partial")]
    assert resumed[f"/vae.tiny/{broken}"] == "bytes=5000-", "the second fetch asked only for the rest"
    assert artifacts.sha256_of(cached(tmp_path) / broken) == artifacts.sha256_of(folder / broken)
    assert not any(p.name.endswith(".partial") for p in cached(tmp_path).iterdir())
    assert (cached(tmp_path) / MODEL_FILE).stat().st_size == size


def test_an_altered_file_is_refused_and_not_kept(mirror, monkeypatch):
    tmp_path, folder, _ = mirror
    weights = bytearray((folder / MODEL_FILE).read_bytes())
    weights[len(weights) // 2] ^= 0xFF  # one flipped byte, same size
    (folder / MODEL_FILE).write_bytes(bytes(weights))
    monkeypatch.setenv("VAE_ZOO_MIRROR", str(tmp_path / "mirror"))  # a mirror folder this time
    with pytest.raises(vae_zoo.ModelFileError, match=r"model.keras has SHA-256 [0-9a-f]{16}\.\.\., not the catalog's "
                                                     r"[0-9a-f]{16}\.\.\.: refused and deleted"):
        vae_zoo.load_pretrained("vae.tiny")
    assert not (cached(tmp_path) / MODEL_FILE).exists()
    assert not any(p.name.endswith(".partial") for p in cached(tmp_path).iterdir())


def test_a_mirror_folder_serves_like_a_server_and_a_missing_model_names_what_was_tried(mirror, monkeypatch):
    tmp_path, _, model = mirror
    monkeypatch.setattr(pretrained, "catalog", lambda: {**json.loads(pretrained.CATALOG_FILE.read_text()), "base_url": None})
    with pytest.raises(vae_zoo.ModelFileError, match=r"vae.tiny: .* is not in the cache .* no source \(set VAE_ZOO_MIRROR"):
        vae_zoo.load_pretrained("vae.tiny")
    monkeypatch.setenv("VAE_ZOO_MIRROR", f"{tmp_path / 'empty'},{tmp_path / 'mirror'}")  # the first lacks it
    x = np.ones((1, 8, 8, 1), np.float32)
    np.testing.assert_allclose(vae_zoo.load_pretrained("vae.tiny")(x), model(x), rtol=1e-6)


def test_hub_names_need_huggingface_hub(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_hub(name, *args, **kwargs):
        if name.startswith("huggingface_hub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_hub)
    with pytest.raises(vae_zoo.ModelFileError, match=r"hf://owner/repo needs huggingface_hub: pip install huggingface_hub"):
        vae_zoo.load_pretrained("hf://owner/repo")


def test_the_package_catalog_lists_every_model_of_the_zoo_with_its_digests():
    catalog = json.loads((ROOT / "vae_zoo" / "pretrained.json").read_text())
    folders = {folder.name: folder for root in (ROOT / "saved_models", ROOT / "artifacts") if root.is_dir()
               for folder in sorted(root.iterdir()) if (folder / MODEL_FILE).is_file()}
    assert set(folders) <= set(catalog["models"]), "run python tools/write_pretrained_catalog.py"
    for name, folder in folders.items():
        assert catalog["models"][name] == model_cards.catalog_entry(folder), \
            f"{name} differs from its catalog entry: run python tools/write_pretrained_catalog.py"
        assert (folder / "README.md").read_text().startswith("---\nlicense: apache-2.0\n")
    assert "{name}" in catalog["base_url"] and "{file}" in catalog["base_url"]
