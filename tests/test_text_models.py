"""Sentence models: the masked sequence likelihood against hand computations, decoding, the posterior fix,
and the vocabulary inside the export."""

import numpy as np
import pytest
import tensorflow as tf
from model_test_case import (
    SMALL_TEXT_KWARGS,
    example_sentences,
    serve_with_tensorflow_alone,
)

import vae_zoo
from vae_zoo.evaluation import metrics
from vae_zoo.models.sentence_vae import word_dropout

VOCABULARY = ["<pad>", "<unk>", "<bos>", "<eos>"] + [f"w{i}" for i in range(16)]


def small(name="sentence_vae", **overrides):
    return vae_zoo.create_model(name, **{**SMALL_TEXT_KWARGS, **overrides})


def log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def test_the_masked_likelihood_is_the_sum_of_the_words_log_probabilities():
    model = small()
    x = np.array([[2, 5, 9, 3, 0, 0, 0, 0, 0, 0], [2, 4, 3, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    z = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    logits = model.decoder(tf.constant(z), tf.constant(x[:, :-1])).numpy()
    # By hand: log p(w_t | w_<t, z) of each token after <bos> up to and including <eos>; padding contributes nothing.
    expected = [sum(log_softmax(logits[i, t])[x[i, t + 1]] for t in range(len(x[i]) - 1) if x[i, t + 1] != 0) for i in range(2)]
    got = model.data_log_prob(tf.constant(z), x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert len({round(v, 3) for v in expected}) == 2  # a one-word and a two-word sentence differ


def test_padding_does_not_change_the_likelihood():
    short = small(data_shape=(6,))
    long = small(data_shape=(14,))
    long.set_weights(short.get_weights())  # no weight depends on the sentence length
    sentence = [2, 7, 8, 9, 3]
    x_short = np.array([sentence + [0]], np.int32)
    x_long = np.array([sentence + [0] * 9], np.int32)
    z = tf.constant([[0.3, -1.0, 0.5, 2.0]])
    np.testing.assert_allclose(short.data_log_prob(z, x_short), long.data_log_prob(z, x_long), rtol=1e-6)


def test_the_language_models_importance_sampled_likelihood_is_its_exact_likelihood():
    model = small("language_model")
    x = example_sentences(batch=5, seed=3)
    exact = model.log_likelihood(x).numpy()  # the teacher-forced likelihood: a language model has no z
    estimated = metrics.log_likelihood(model, x, k=50, batch_size=5)
    np.testing.assert_allclose(estimated, exact, rtol=1e-5)
    np.testing.assert_allclose(model.loss_terms(x)["kl"], 0.0)


def test_the_batch_normalized_posterior_keeps_the_kl_above_its_bound():
    """BN-VAE: the encoder's raw means barely differ between sentences (a variance near 1e-5 at initialization,
    still far above the normalization's epsilon, 1e-8), yet the batch's KL is >= dims x gamma^2 / 2."""
    model = small(posterior="batch_norm", bn_gamma=0.5, latent_dim=8)
    x = example_sentences(batch=64, seed=1)
    raw_means = tf.split(model.encoder(tf.constant(x)), 2, axis=-1)[0].numpy()
    assert raw_means.var(axis=0).max() < 1e-4
    kl = float(tf.reduce_mean(model.loss_terms(x, training=True)["kl"]))
    assert kl >= 8 * 0.5**2 / 2 * 0.98
    plain = small(latent_dim=8)  # the same encoder without the fix: its KL is next to nothing
    assert float(tf.reduce_mean(plain.loss_terms(x, training=True)["kl"])) < 0.01


def test_word_dropout_replaces_words_only_at_its_rate():
    x = tf.constant(example_sentences(length=30, vocabulary_size=500, batch=400, seed=2))
    dropped = word_dropout(x, 0.3, tf.constant([1, 2])).numpy()
    words = x.numpy() > 3
    assert np.array_equal(dropped[~words], x.numpy()[~words])  # <bos>, <eos> and padding untouched
    rate = np.mean(dropped[words] == 1)
    assert 0.27 < rate < 0.33


def test_decodings_are_well_formed_and_beam_search_finds_likelier_sentences():
    model = small()
    model.compile()
    x = example_sentences(batch=32, seed=4)
    model.fit(x, epochs=30, batch_size=32, verbose=0)
    z = model.encode(x[:8]).mean()
    for mode in ("greedy", "sample", "beam"):
        ids = model.generate(z, mode=mode, seed=tf.constant([1, 1])).numpy()
        assert ids.shape == (8, 10) and np.all(ids[:, 0] == 2)
        for row in ids:
            ends = np.flatnonzero(row == 3)
            if len(ends):
                assert np.all(row[ends[0] + 1:] == 0) and not np.any(row[1:ends[0]] == 0)
    greedy, beam = model.generate(z, mode="greedy"), model.generate(z, mode="beam", width=5)
    assert np.array_equal(model.generate(z, mode="beam", width=1), greedy)
    # Beam search is not guaranteed to beat greedy decoding sentence by sentence, but it should overall.
    beam_scores, greedy_scores = model.data_log_prob(z, beam).numpy(), model.data_log_prob(z, greedy).numpy()
    assert beam_scores.sum() >= greedy_scores.sum() and np.mean(beam_scores >= greedy_scores - 1e-4) >= 0.75


def test_token_inputs_are_checked():
    model = small()
    with pytest.raises(vae_zoo.InputError, match="expects integer token ids, got dtype float32"):
        model.elbo(np.zeros((2, 10), np.float32))
    with pytest.raises(vae_zoo.InputError, match=r"token ids run from 0 to 19; the input has ids from 0 to 25"):
        model.elbo(np.array([[2, 25, 3] + [0] * 7]))
    with pytest.raises(vae_zoo.InputError, match=r"shape \(batch, 10\), got \(1, 12\)"):
        model.elbo(np.zeros((1, 12), np.int32))
    with pytest.raises(ValueError, match="vocabulary_size 30 disagrees with the vocabulary's 20 tokens"):
        small(vocabulary=VOCABULARY, vocabulary_size=30)


def test_the_export_carries_the_vocabulary_and_serves_text_with_tensorflow_alone(tmp_path):
    model = small(vocabulary=VOCABULARY, vocabulary_size=None)
    ids = example_sentences(batch=3, seed=5)
    vae_zoo.export(model, tmp_path / "export")
    assert (tmp_path / "export" / "assets" / "vocabulary.txt").read_text().split("\n")[:5] == VOCABULARY[:5]
    served = serve_with_tensorflow_alone(tmp_path / "export", (
        f"ids = tf.constant(np.array({ids.tolist()}, np.int32))\n"
        "out['reconstruction'] = m.signatures['serving_default'](x=ids)['reconstruction'].numpy().tolist()\n"
        "out['text'] = [t.decode() for t in m.signatures['detokenize'](ids=ids)['text'].numpy()]\n"
        "out['vocabulary'] = [t.decode() for t in m.signatures['vocabulary']()['tokens'].numpy()]\n"
        "out['card'] = json.loads(m.signatures['model_card']()['card'].numpy())['vocabulary']"))
    assert served["text"] == model.texts(ids)
    assert served["vocabulary"] == VOCABULARY
    assert served["card"] == {"asset": "vocabulary.txt", "size": 20, "signatures": ["vocabulary", "detokenize"]}
    np.testing.assert_array_equal(served["reconstruction"], model.reconstruction(ids))
