"""A trained zoo model as a scikit-learn transformer, for dimensionality reduction in pipelines.

    from sklearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    classifier = make_pipeline(LatentTransformer(model), LogisticRegression()).fit(X, y)

``X`` may be flat (n, pixels), as scikit-learn passes it; it is reshaped to the
model's data shape. ``fit`` does not train the model (train it with ``model.fit``).
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from vae_zoo.evaluation.latents import posterior_means


class LatentTransformer(TransformerMixin, BaseEstimator):
    """X -> posterior means E_q[z|x]."""

    def __init__(self, model, batch_size=500):
        self.model = model
        self.batch_size = batch_size

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        images = np.asarray(X, np.float32).reshape(-1, *self.model.data_shape)
        return posterior_means(self.model, images, batch_size=self.batch_size)
