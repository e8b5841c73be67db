"""Text data: sentences as padded token ids, and the vocabulary that maps them, built from the training split.

A text becomes ``<bos> tokens <eos>`` padded with ``<pad>`` (id 0) to ``max_length + 2`` ids; padding never
counts toward a likelihood (the sequence models mask it). Tokens are lower-cased words, numbers and single
punctuation marks; words outside the vocabulary become ``<unk>``.

Sources:

* ``fortunes``: the quotations of Debian's ``fortunes`` package (``/usr/share/games/fortunes``, BSD licence),
  every theme file except ``ascii-art`` (pictures, not text) and an ``off/`` folder (the offensive set) if
  present. Texts are split by a hash of their words (80/10/10), so the split does not depend on file order
  or on which files are installed. Texts longer than ``max_length`` tokens are left out.
* ``ptb``: the Penn Treebank language-modelling files ``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``
  from ``data_dir`` (already tokenized, with ``<unk>``; one sentence per line).
* ``text_file``: any text file, or folder of ``.txt`` files, of the user's: one sentence per line (``path``);
  hash-split like ``fortunes``.
* ``ag_news`` and ``imdb_reviews``, online through tensorflow-datasets (``ag_news_subset``'s headlines, 4 topics;
  IMDB's reviews, 2 sentiments): labelled texts, so the M1 probe applies. Their test split is tfds's; the
  validation split is the training texts whose hash falls in the validation bucket.

A source gives each split as a list of texts, or of (text, label) pairs where it has labels.
"""

import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from vae_zoo.errors import DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
TOKEN = re.compile(r"<unk>|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNES_SKIPPED = ("ascii-art",)


def tokenize(text):
    """Lower-cased words (with their apostrophe: "don't"), numbers and single punctuation marks."""
    return TOKEN.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Tokens by id; ids 0-3 are ``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``."""

    tokens: tuple

    def __post_init__(self):
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise DataError(f"a vocabulary must start with {SPECIALS}, not {tuple(self.tokens[:4])}")
        if len(set(self.tokens)) != len(self.tokens):
            raise DataError("a vocabulary lists a token twice")

    @classmethod
    def build(cls, texts, max_size=10000, min_count=2):
        """The ``max_size`` most frequent tokens (ties broken alphabetically) seen at least ``min_count`` times."""
        counts = collections.Counter(token for text in texts for token in tokenize(text) if token not in SPECIALS)
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls(SPECIALS + tuple(kept[: max(0, int(max_size) - len(SPECIALS))]))

    @property
    def size(self):
        return len(self.tokens)

    @functools.cached_property
    def index(self):
        """Token -> id, built once (encoding a corpus looks up every token)."""
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, text, max_length):
        """``<bos> ids <eos>`` padded to ``max_length + 2``; None if the text has more than ``max_length`` tokens."""
        tokens = tokenize(text)
        if len(tokens) > max_length:
            return None
        index = self.index
        ids = [SPECIALS.index(BOS)] + [index.get(t, SPECIALS.index(UNK)) for t in tokens] + [SPECIALS.index(EOS)]
        return np.array(ids + [0] * (max_length + 2 - len(ids)), np.int32)

    def decode(self, ids):
        """Text from ids: up to the first ``<eos>``, without ``<bos>`` and padding."""
        words = []
        for i in np.asarray(ids).reshape(-1):
            if i == 3:
                break
            if i > 2 or i == 1:
                words.append(self.tokens[int(i)] if 0 <= i < self.size else UNK)
        return " ".join(words)

    def to_json(self):
        return json.dumps(list(self.tokens))

    @classmethod
    def from_json(cls, text):
        return cls(tuple(json.loads(text)))


def hash_split(text):
    """'train', 'validation' or 'test' from a hash of the text's tokens: 80/10/10, stable across machines."""
    bucket = int(hashlib.sha256(" ".join(tokenize(text)).encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 9 else "validation" if bucket == 8 else "train"


def read_fortunes(directory=None):
    """Every quotation of the ``fortunes`` package as one line of text (whitespace collapsed), deduplicated."""
    directory = Path(directory or os.environ.get("VAE_ZOO_FORTUNES_DIR") or FORTUNES_DIR)
    if not directory.is_dir():
        raise DataError(f"the fortunes quotations are not at {directory}: apt-get install fortunes, or give data_dir")
    texts, seen = [], set()
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8") or path.name in FORTUNES_SKIPPED:
            continue
        utf8 = path.with_name(path.name + ".u8")
        raw = (utf8 if utf8.is_file() else path).read_bytes().decode("utf-8", errors="replace")
        for chunk in raw.split("\n%\n"):
            text = " ".join(re.sub(r".\x08", "", chunk).split())  # drop overstriking (x BACKSPACE x)
            if text and text != "%" and text not in seen:
                seen.add(text)
                texts.append(text)
    if not texts:
        raise DataError(f"no quotations found in {directory}")
    return texts


def read_lines(path):
    """Non-empty lines of a text file, or of every ``.txt`` file under a folder (sorted)."""
    path = Path(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise DataError(f"no text file at {path}")
    return [line.strip() for f in files for line in f.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def split_texts(texts):
    parts = {"train": [], "validation": [], "test": []}
    for text in texts:
        parts[hash_split(text)].append(text)
    return parts


def read_ptb(data_dir):
    if not data_dir:
        raise DataError("the Penn Treebank needs data_dir: the folder of ptb.train.txt, ptb.valid.txt and ptb.test.txt")
    names = {"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"}
    missing = [n for n in names.values() if not (Path(data_dir) / n).is_file()]
    if missing:
        raise DataError(f"{data_dir} lacks {', '.join(missing)}")
    return {split: read_lines(Path(data_dir) / name) for split, name in names.items()}


# Labelled text sets of tensorflow-datasets: our name -> (tfds name, text feature, number of classes).
TFDS_TEXT = {"ag_news": ("ag_news_subset", "title", 4), "imdb_reviews": ("imdb_reviews", "text", 2)}


def read_tfds_text(name):
    """{split: [(text, label)]} of a labelled tensorflow-datasets text set (online)."""
    import tensorflow_datasets as tfds

    tfds_name, feature, _ = TFDS_TEXT[name]
    try:
        loaded = {split: tfds.as_numpy(tfds.load(tfds_name, split=split)) for split in ("train", "test")}
        pairs = {split: [(" ".join(r[feature].decode("utf-8", errors="replace").split()), int(r["label"])) for r in records]
                 for split, records in loaded.items()}
    except Exception as err:  # noqa: BLE001  tfds raises many types when offline
        raise DataError(f"text set {name!r} comes from tensorflow-datasets ({tfds_name}), which could not load it "
                        f"({type(err).__name__}: {str(err)[:160]}); offline, use fortunes, ptb or text_file") from None
    train = [pair for pair in pairs["train"] if hash_split(pair[0]) != "validation"]
    validation = [pair for pair in pairs["train"] if hash_split(pair[0]) == "validation"]
    return {"train": train, "validation": validation, "test": pairs["test"]}


def text_parts(name, data_dir=None, path=None):
    """{split: [texts, or (text, label) pairs]} for a text source name."""
    if name in TFDS_TEXT:
        return read_tfds_text(name)
    if name == "fortunes":
        return split_texts(read_fortunes(data_dir))
    if name == "ptb":
        return read_ptb(data_dir)
    if name == "text_file":
        if not path:
            raise DataError("data set 'text_file' needs a path: a text file or a folder of .txt files, one sentence per line")
        return split_texts(read_lines(path))
    raise DataError(f"unknown text source {name!r}")


def token_splits(parts, vocabulary=None, max_length=30, max_size=10000, min_count=2):
    """({split: (ids (n, max_length + 2) int32, labels (n,) int64, -1 where the source has none)}, vocabulary).
    The vocabulary comes from the training split's texts that fit ``max_length`` unless one is given (a
    trained model's)."""
    pairs = {split: [item if isinstance(item, tuple) else (item, -1) for item in items] for split, items in parts.items()}
    fitting = {split: [(t, y) for t, y in items if len(tokenize(t)) <= max_length] for split, items in pairs.items()}
    if vocabulary is None:
        vocabulary = Vocabulary.build([t for t, _ in fitting["train"]], max_size=max_size, min_count=min_count)
    splits = {}
    for split, items in fitting.items():
        ids = np.stack([vocabulary.encode(t, max_length) for t, _ in items]) if items else np.zeros((0, max_length + 2), np.int32)
        splits[split] = (ids, np.array([y for _, y in items], np.int64))
    if len(splits["train"][0]) == 0:
        raise DataError(f"no training text has at most {max_length} tokens")
    return splits, vocabulary
