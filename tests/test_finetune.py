"""Fine-tuning a pretrained encoder as a classifier (vae_zoo/evaluation/finetune.py, ``vae-zoo finetune``)."""

import json

import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.errors import CapabilityError
from vae_zoo.evaluation import finetune

ZOO = "saved_models/vae.mnist_mini"


def test_the_classifier_copies_the_trunk_and_leaves_the_model_alone():
    model = vae_zoo.load(ZOO)
    before = [w.copy() for w in model.encoder.get_weights()]
    data = vae_zoo.data.load("mnist_mini", binarize="static", labels=True)
    images, labels = data.take("train", 200)
    classifier = finetune.encoder_classifier(model, 10)
    # The trunk starts as the encoder's: the same hidden features as the pretrained encoder's last hidden layer.
    trunk_weights = classifier.get_weights()[:-2]
    for copied, original in zip(trunk_weights, before[:-2]):
        np.testing.assert_array_equal(copied, original)
    tuned = finetune.finetune(model, images[:100], labels[:100], 10, steps=50)
    test_x, test_y = data.take("test")
    assert finetune.accuracy(tuned, test_x, test_y) > 0.5
    for after, original in zip(model.encoder.get_weights(), before):
        np.testing.assert_array_equal(after, original)


def test_a_conditional_model_cannot_be_fine_tuned():
    cvae = vae_zoo.create_model("cvae", data_shape=(8, 8, 1), num_classes=3)
    assert not finetune.can_finetune(cvae)
    with pytest.raises(CapabilityError, match="no encoder of the data alone"):
        finetune.encoder_classifier(cvae, 3)


def test_the_cli_reports_the_finetuned_encoder_beside_the_frozen_probe(capsys):
    assert cli.main(["finetune", ZOO, "--labels-per-class", "10", "--repeats", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = result["test_accuracy"]
    assert set(scores) == {"latent_accuracy", "pixels_accuracy", "finetuned_accuracy", "latent_accuracy_std",
                           "pixels_accuracy_std", "finetuned_accuracy_std"}
    # With 100 labels, training the whole trunk beats a linear probe on the 20 frozen latent means here.
    assert scores["finetuned_accuracy"] > scores["latent_accuracy"]
