"""Fetching a pretrained model's files into the cache, each checked by SHA-256 before it is used.

A model's artifact is a folder of files (``model.keras``, ``card.json``, ``samples.png``, ``README.md``), laid out
as a Hugging Face Hub model repository holds them: ``<source>/<name>/<file>``. A source is a folder (a local
mirror, or a checkout's ``saved_models/``), an http(s) base URL, or a URL template with ``{name}`` and ``{file}``. Files land in
``$VAE_ZOO_HOME/models/<name>/`` (default ``~/.cache/vae_zoo``):

* a download goes to ``.<file>.partial`` first and resumes from there with an HTTP Range request;
* a finished file is checked against the digest the catalog lists and renamed into place only if it matches;
  a mismatch is deleted and refused with one line;
* a file already in the cache is checked again before it is used (once per process while it is unchanged).
"""

import hashlib
import http.client
import os
import shutil
import urllib.request
from pathlib import Path

from vae_zoo.errors import ModelFileError

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60
_verified = {}  # (path, size, mtime_ns) -> sha256, so a file is hashed once per process while it is unchanged


def cache_home():
    """Where fetched models are kept: ``$VAE_ZOO_HOME``, else ``$XDG_CACHE_HOME/vae_zoo``, else ``~/.cache/vae_zoo``."""
    if os.environ.get("VAE_ZOO_HOME"):
        return Path(os.environ["VAE_ZOO_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "vae_zoo"


def mirrors():
    """The sources ``$VAE_ZOO_MIRROR`` names, in order (comma-separated folders or http(s) base URLs)."""
    return [part.strip() for part in os.environ.get("VAE_ZOO_MIRROR", "").split(",") if part.strip()]


def sha256_of(path):
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
        _verified[key] = digest.hexdigest()
    return _verified[key]


def holds(folder, files):
    """Whether ``folder`` holds every file of ``files`` ({name: {"sha256", "bytes"}}) with its digest."""
    folder = Path(folder)
    return all((folder / file).is_file() and (folder / file).stat().st_size == spec["bytes"]
               and sha256_of(folder / file) == spec["sha256"] for file, spec in files.items())


def is_url(source):
    return str(source).startswith(("http://", "https://"))


def location(source, name, file):
    """Where ``source`` keeps ``file`` of ``name``: ``<source>/<name>/<file>``, or a URL template with {name}, {file}
    (the Hub's ``https://huggingface.co/<owner>/{name}/resolve/main/{file}``)."""
    if "{name}" in source:
        return source.format(name=name, file=file)
    return f"{source.rstrip('/')}/{name}/{file}" if is_url(source) else str(Path(source) / name / file)


def fetch(name, files, sources):
    """The cache folder of ``name`` with every file of ``files`` in it and checked, fetched from the first of
    ``sources`` that has each one. Raises ``ModelFileError`` naming what was tried."""
    folder = cache_home() / "models" / name
    if holds(folder, files):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for file, spec in sorted(files.items()):
        target = folder / file
        if target.is_file() and target.stat().st_size == spec["bytes"] and sha256_of(target) == spec["sha256"]:
            continue
        tried = []
        for source in sources:
            where = location(source, name, file)
            try:
                _fetch_one(where, target, spec)
                break
            except ModelFileError:  # a file that arrived whole but altered: refused, never taken from elsewhere
                raise
            except (OSError, http.client.HTTPException) as err:  # this source lacks it, is unreachable or broke off
                reason = getattr(err, "reason", None) or getattr(err, "strerror", None) or str(err) or type(err).__name__
                tried.append(f"{where} ({reason})")
        else:
            listed = "; ".join(tried) or "no source (set VAE_ZOO_MIRROR to a folder or server that holds it)"
            raise ModelFileError(f"{name}: {file} is not in the cache ({folder}) and could not be fetched: {listed}")
    return folder


def _fetch_one(where, target, spec):
    partial = target.with_name(f".{target.name}.partial")
    if is_url(where):
        _download(where, partial, spec["bytes"])
    else:
        if not Path(where).is_file():
            raise FileNotFoundError(2, "no such file", where)
        shutil.copyfile(where, partial)
    have = partial.stat().st_size
    if have < spec["bytes"]:  # broken off: kept, so that the next fetch resumes
        raise ConnectionError(f"broke off after {have:,} of {spec['bytes']:,} bytes; fetch again to resume")
    digest = sha256_of(partial)
    if digest != spec["sha256"]:
        partial.unlink()
        raise ModelFileError(f"{where} has SHA-256 {digest[:16]}..., not the catalog's {spec['sha256'][:16]}...: "
                             "refused and deleted (a corrupted or altered file)")
    os.replace(partial, target)


def _download(url, partial, size):
    """``url`` into ``partial``, resuming from the bytes already there (Range), at most ``size`` bytes."""
    have = partial.stat().st_size if partial.is_file() else 0
    if have > size:  # not a prefix of this file: start again
        partial.unlink()
        have = 0
    if have == size:
        return
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        resumed = have and response.status == 206
        with open(partial, "ab" if resumed else "wb") as handle:
            for block in iter(lambda: response.read(CHUNK), b""):
                handle.write(block)
