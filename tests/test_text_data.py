"""Text data: tokens, the vocabulary built from the training split, padded ids, and the text sources."""

import os
from pathlib import Path

import numpy as np
import pytest

from vae_zoo import data as data_module
from vae_zoo.data import text
from vae_zoo.errors import DataError

FORTUNES = Path(os.environ.get("VAE_ZOO_FORTUNES_DIR", text.FORTUNES_DIR))


def test_tokens_are_lower_case_words_numbers_and_punctuation():
    assert text.tokenize("Don't panic: 42 towels!") == ["don't", "panic", ":", "42", "towels", "!"]
    assert text.tokenize("the <unk> cat") == ["the", "<unk>", "cat"]


def test_the_vocabulary_keeps_frequent_tokens_and_maps_the_rest_to_unk():
    vocabulary = text.Vocabulary.build(["a b b c", "b c d", "c"], max_size=6, min_count=2)
    assert vocabulary.tokens == (*text.SPECIALS, "b", "c")  # c and b three and two times; a, d once
    ids = vocabulary.encode("b a c", max_length=5)
    assert ids.tolist() == [2, 4, 1, 5, 3, 0, 0]  # <bos> b <unk> c <eos>, padded to max_length + 2
    assert vocabulary.decode(ids) == "b <unk> c"
    assert vocabulary.encode("b b b b b b", max_length=5) is None, "too long: left out, never cut"
    assert text.Vocabulary.from_json(vocabulary.to_json()) == vocabulary
    with pytest.raises(DataError, match="must start with"):
        text.Vocabulary(("a", "b"))


def test_the_split_is_a_function_of_the_text_alone():
    texts = [f"sentence number {i}" for i in range(2000)]
    parts = text.split_texts(texts)
    reordered = text.split_texts(texts[::-1])
    assert all(sorted(parts[split]) == sorted(reordered[split]) for split in parts)
    shares = {split: len(v) / len(texts) for split, v in parts.items()}
    assert abs(shares["train"] - 0.8) < 0.04 and abs(shares["test"] - 0.1) < 0.03


def test_a_text_file_and_the_penn_treebank_files_load_as_token_data(tmp_path):
    lines = [f"the cat number {i % 7} sat on the mat ." for i in range(300)]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n\n")
    data = data_module.load("text_file", path=str(tmp_path / "mine.txt"), max_length=12, batch_size=16)
    assert data.spec.modality == "text" and data.spec.dtype == "int32" and data.data_shape == (14,)
    assert sum(data.count(s) for s in ("train", "validation", "test")) == 300
    batch = next(iter(data.train)).numpy()
    assert batch.dtype == np.int32 and (batch[:, 0] == 2).all() and ((batch == 3).sum(axis=1) == 1).all()
    ptb = tmp_path / "ptb"
    ptb.mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (ptb / name).write_text(" the <unk> said it would buy \n a stake in the company \n" * 5)
    data = data_module.load("ptb", data_dir=str(ptb), min_count=1)
    assert data.count("test") == 10 and "<unk>" in data.spec.vocabulary
    # A trained model's vocabulary is used as given, not rebuilt.
    again = data_module.load("ptb", data_dir=str(ptb), vocabulary=data.spec.vocabulary)
    assert again.spec.vocabulary == data.spec.vocabulary
    with pytest.raises(DataError, match="lacks"):
        data_module.load("ptb", data_dir=str(tmp_path))
    with pytest.raises(DataError, match="needs a path"):
        data_module.load("text_file")


@pytest.mark.skipif(not FORTUNES.is_dir(), reason="Debian's fortunes package is not installed (.ci/run installs it)")
def test_the_fortunes_quotations_load_without_the_ascii_art():
    quotations = text.read_fortunes()
    assert len(quotations) > 10_000 and len(set(quotations)) == len(quotations)
    assert not any("(  /\\__________/\\  )" in q for q in quotations), "the ascii-art file is skipped"
    data = data_module.load("fortunes", max_length=30)
    assert data.count("train") > 5000 and 1000 < len(data.spec.vocabulary) <= 10_000


def test_labelled_tensorflow_datasets_text_sets_keep_their_labels(monkeypatch):
    """ag_news through tfds (faked here, as tests run offline): labels reach the pipelines, validation
    comes out of tfds's training split by hash, and the M1 probe's bag-of-words baseline counts the words."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from vae_zoo.data.text import bag_of_words

    headlines = {"train": [(f"stocks rise on day {i}", 0) if i % 2 else (f"team wins match {i}", 1) for i in range(300)],
                 "test": [("stocks fall", 0), ("team loses match", 1)]}

    def fake_load(name, split):
        assert name == "ag_news_subset"
        titles, labels = zip(*headlines[split])
        return tf.data.Dataset.from_tensor_slices({"title": list(titles), "label": list(labels)})

    monkeypatch.setattr(tfds, "load", fake_load)
    data = data_module.load("ag_news", labels=True, min_count=1)
    assert data.num_classes == 4 and data.spec.modality == "text"
    train_ids, train_labels = data.take("train")
    validation_ids, _ = data.take("validation")
    assert len(train_ids) + len(validation_ids) == 300 and 0 < len(validation_ids) < 60
    assert set(train_labels.tolist()) == {0, 1}
    held_out = data_module.load("ag_news", labels=True, min_count=1, exclude_classes=[1])  # the anomaly protocol, as for images
    assert set(held_out.take("train")[1].tolist()) == {0} and set(held_out.take("test")[1].tolist()) == {0, 1}
    vocabulary = text.Vocabulary(data.spec.vocabulary)
    first = vocabulary.decode(train_ids[0])
    assert (first.startswith("stocks") and train_labels[0] == 0) or (first.startswith("team") and train_labels[0] == 1)
    test_ids, test_labels = data.take("test")
    assert vocabulary.decode(test_ids[1]) == "team <unk> match" and test_labels.tolist() == [0, 1]  # "loses": not in training
    counts = bag_of_words(test_ids, vocabulary.size).toarray()
    assert counts.sum() == 3 and counts[1, vocabulary.index["match"]] == 1 and counts[:, :4].sum() == 0  # words, not <unk>
    import vae_zoo
    from vae_zoo.evaluation.metrics import semi_supervised

    model = vae_zoo.create_model("sentence_vae", data_shape=data.data_shape, vocabulary=data.spec.vocabulary, latent_dim=4,
                                 embedding_dim=8, encoder={"name": "lstm", "units": 16})
    probe = semi_supervised(model, data, labels_per_class=(10,), repeats=2)["10_per_class"]
    assert set(probe) == {"latent_accuracy", "bag_of_words_accuracy", "latent_accuracy_std", "bag_of_words_accuracy_std"}
    assert probe["bag_of_words_accuracy"] == 1.0, "'stocks' and 'team' give the topic away"
