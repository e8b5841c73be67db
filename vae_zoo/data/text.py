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

import abc
import collections
import dataclasses
import functools
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from vae_zoo import schema
from vae_zoo.data import tfds_builders
from vae_zoo.data.base import from_token_splits
from vae_zoo.data.sources import DataSource, Option, not_binarized, path_like, register_source
from vae_zoo.errors import ConfigError, DataError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
TOKEN = re.compile(r"<unk>|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")
FORTUNES_DIR = "/usr/share/games/fortunes"
FORTUNES_SKIPPED = ("ascii-art",)


def tokenize(text):
    """Lower-cased words (with their apostrophe: "don't"), numbers and single punctuation marks."""
    return TOKEN.findall(text.lower())


# --------------------------------------------------------------------------- token ids: what the text modality scores


def predicted_tokens(ids):
    """Tokens each sentence's likelihood predicts: everything after ``<bos>`` that is not padding."""
    return (np.asarray(ids)[:, 1:] != SPECIALS.index(PAD)).sum(axis=1)


def perplexity(log_likelihoods, ids):
    """exp(total NLL / predicted tokens) over a set of sentences."""
    return float(np.exp(-np.sum(log_likelihoods) / predicted_tokens(ids).sum()))


def bag_of_words(ids, vocabulary_size):
    """Token counts per sentence, a sparse (n, vocabulary_size) matrix (words only: no <pad>, <unk>, <bos> or <eos>)."""
    from scipy.sparse import csr_matrix  # lazily: only the text probes need scipy

    ids = np.asarray(ids)
    rows, columns = np.nonzero(ids >= len(SPECIALS))
    return csr_matrix((np.ones(len(rows), np.float32), (rows, ids[rows, columns])), shape=(len(ids), int(vocabulary_size)))


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
    # Lazy: tensorflow-datasets takes seconds to import, and only an online download needs it.
    import tensorflow_datasets as tfds

    tfds_name, feature, _ = TFDS_TEXT[name]
    try:
        loaded = {split: tfds.as_numpy(tfds_builders.load(tfds_name, split=split)) for split in ("train", "test")}
        pairs = {split: [(" ".join(r[feature].decode("utf-8", errors="replace").split()), int(r["label"])) for r in records]
                 for split, records in loaded.items()}
    except Exception as err:  # noqa: BLE001  tfds raises many types when offline
        raise DataError(f"text set {name!r} comes from tensorflow-datasets ({tfds_name}), which could not load it "
                        f"({type(err).__name__}: {str(err)[:160]}); offline, use fortunes, ptb or text_file") from None
    train = [pair for pair in pairs["train"] if hash_split(pair[0]) != "validation"]
    validation = [pair for pair in pairs["train"] if hash_split(pair[0]) == "validation"]
    return {"train": train, "validation": validation, "test": pairs["test"]}


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


# --------------------------------------------------------------------------- the text sources


def tokens(value, key):
    """A vocabulary: a list of distinct token strings starting with the special tokens."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(token, str) for token in value):
        raise ConfigError(f"{key} must be a list of token strings (a trained model's vocabulary), got {type(value).__name__}")
    return value


tokens.expected = "a list of token strings"


class TextSource(DataSource):
    """Texts as padded token ids: ``parts()`` gives {split: [texts, or (text, label) pairs]}; the vocabulary is
    built from the training split unless one is given."""

    modality = "text"
    num_classes = 0
    options = {
        "binarize": Option("none", not_binarized, "text is never binarized: only 'none'"),
        "max_length": Option(30, schema.integer(1, 10_000), "the longest sentence kept, in tokens (longer ones are left out)"),
        "vocabulary_size": Option(10000, schema.integer(len(SPECIALS) + 1, 10_000_000), "the most tokens the vocabulary keeps"),
        "min_count": Option(2, schema.integer(1), "how often a token must occur in the training split to be kept"),
        "vocabulary": Option(None, tokens, "a trained model's tokens, used as given instead of building a vocabulary"),
    }

    @abc.abstractmethod
    def parts(self):
        """{split: [texts, or (text, label) pairs]}."""

    def load(self):
        o = self.options
        given = Vocabulary(tuple(o["vocabulary"])) if o["vocabulary"] is not None else None
        splits, built = token_splits(self.parts(), given, o["max_length"], o["vocabulary_size"], o["min_count"])
        return from_token_splits(splits, built, self.name, o["batch_size"], o["labels"], o["limit"], o["seed"], self.num_classes,
                                 o["exclude_classes"])


@register_source("fortunes")
class Fortunes(TextSource):
    """The quotations of Debian's fortunes package, hash-split 80/10/10, offline"""

    options = {"data_dir": Option(None, path_like, f"the fortunes folder (else $VAE_ZOO_FORTUNES_DIR or {FORTUNES_DIR})")}

    def parts(self):
        return split_texts(read_fortunes(self.options["data_dir"]))


@register_source("ptb")
class PennTreebank(TextSource):
    """The Penn Treebank language-modelling files (ptb.train.txt, ptb.valid.txt, ptb.test.txt)"""

    options = {"data_dir": Option(None, path_like, "the folder of ptb.train.txt, ptb.valid.txt and ptb.test.txt", required=True)}

    def parts(self):
        return read_ptb(self.options["data_dir"])


@register_source("text_file")
class TextFile(TextSource):
    """Your text file, or folder of .txt files, one sentence per line, hash-split 80/10/10"""

    options = {"path": Option(None, path_like, "a text file or a folder of .txt files, one sentence per line", required=True)}

    def parts(self):
        return split_texts(read_lines(self.options["path"]))


class TfdsText(TextSource):
    """A labelled text set of tensorflow-datasets (online); its name is the key of ``TFDS_TEXT``."""

    def parts(self):
        return read_tfds_text(self.name)


@register_source("ag_news")
class AgNews(TfdsText):
    """AG News headlines in 4 topics, through tensorflow-datasets (online)"""

    num_classes = TFDS_TEXT["ag_news"][2]


@register_source("imdb_reviews")
class ImdbReviews(TfdsText):
    """IMDB movie reviews with 2 sentiments, through tensorflow-datasets (online)"""

    num_classes = TFDS_TEXT["imdb_reviews"][2]
