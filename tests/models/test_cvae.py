import keras
import numpy as np
import pytest
from model_test_case import ModelTestCase, example_batch
from sklearn.linear_model import LogisticRegression

import vae_zoo


class TestCVAE(ModelTestCase):
    model_name = "cvae"
    model_kwargs = {"num_classes": 3, "encoder": {"name": "mlp", "hidden_sizes": [16]}, "latent_dim": 2}

    def test_labels_are_required_and_checked(self):
        model = self.make_model()
        x = example_batch()
        with pytest.raises(vae_zoo.InputError, match="cvae is conditional: pass \\(images, labels\\)"):
            model(x)
        with pytest.raises(vae_zoo.InputError, match="labels must lie in \\[0, 3\\), got values in \\[0, 5\\]"):
            model((x, np.arange(6)))
        with pytest.raises(vae_zoo.InputError, match="integer class labels"):
            model((x, np.zeros(6, np.float32)))
        with pytest.raises(vae_zoo.InputError, match="needs 4 labels"):
            model.sample(4, labels=[0, 1])

    def test_sample_follows_the_requested_labels(self):
        model = self.make_model()
        a = model.sample(2, labels=[0, 0], seed=3)
        b = model.sample(2, labels=[2, 2], seed=3)
        assert not np.allclose(a, b), "the label must change what is generated"


class TestConvCVAE(ModelTestCase):
    model_name = "cvae"
    model_kwargs = {"num_classes": 4, "encoder": {"name": "conv", "filters": [8]}, "latent_dim": 2}


def test_class_conditional_samples_are_recognised_as_their_class():
    data = vae_zoo.data.load("digits", labels=True, batch_size=64)
    keras.utils.set_random_seed(0)
    model = vae_zoo.create_model("cvae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [128]})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(data.train, epochs=30, verbose=0)

    train_x, train_y = data.take("train")
    classifier = LogisticRegression(max_iter=3000).fit(train_x.reshape(len(train_x), -1), train_y)
    labels = np.repeat(np.arange(10), 30)
    samples = np.asarray(model.sample(len(labels), labels=labels, seed=0)).reshape(len(labels), -1)
    accuracy = classifier.score(samples, labels)
    assert accuracy > 0.7, f"CVAE samples classified as their label {accuracy:.0%} of the time (chance: 10%)"
