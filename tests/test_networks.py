"""Network bodies are specs resolved by a registry; a new body is one registered class."""

import keras
import numpy as np
import pytest

import vae_zoo
from vae_zoo import networks
from vae_zoo.networks import register_network
from vae_zoo.networks.resnet import ResidualBlock


@pytest.mark.parametrize("spec", [{"name": "mlp", "hidden_sizes": [8]}, {"name": "conv", "filters": [4, 8], "hidden_sizes": [8]},
                                  {"name": "resnet", "filters": [4, 8], "blocks": 2, "normalization": "group",
                                   "squeeze_excitation": True}])
def test_encoder_and_decoder_shapes(spec):
    encoder = networks.make_encoder(spec, (8, 8, 1), 6)
    decoder = networks.make_decoder(spec, 3, (8, 8, 1), 2)
    assert encoder.output_shape == (None, 6)
    assert decoder.output_shape == (None, 8, 8, 2)
    grid = networks.grid_shape(spec, (8, 8, 1), positions=5)
    assert networks.make_grid_encoder(spec, (8, 8, 1), grid, 3).output_shape == (None, *grid, 3)
    assert networks.make_grid_decoder(spec, grid, 3, (8, 8, 1), 1).output_shape == (None, 8, 8, 1)


def test_bad_specs_are_named():
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown network 'resnett'"):
        networks.make_encoder({"name": "resnett"}, (8, 8, 1), 4)
    with pytest.raises(ValueError, match="normalization must be one of"):
        networks.make_encoder({"name": "resnet", "normalization": "instance"}, (8, 8, 1), 4)
    with pytest.raises(ValueError, match="bad options for network 'mlp'"):
        networks.make_encoder({"name": "mlp", "filters": [4]}, (8, 8, 1), 4)
    with pytest.raises(ValueError, match="divisible by 4"):
        networks.make_encoder({"name": "conv", "filters": [4, 4]}, (10, 10, 1), 4)


def test_a_new_body_is_one_registered_class_and_every_model_can_use_it():
    @register_network("test_linear")
    class Linear:
        """No hidden layer: one dense map each way."""

        spatial = False

        def encoder_layers(self, data_shape, output_units):
            return [keras.layers.Flatten(), keras.layers.Dense(output_units)]

        def decoder_layers(self, data_shape, output_channels):
            return [keras.layers.Dense(int(np.prod(data_shape[:-1])) * output_channels),
                    keras.layers.Reshape((*data_shape[:-1], output_channels))]

    try:
        for name in ("vae", "cvae", "autoencoder", "iwae"):
            model = vae_zoo.create_model(name, data_shape=(4, 4, 1), latent_dim=2, encoder="test_linear")
            assert len(model.encoder.layers) == 2
            assert model.count_params() > 0
    finally:
        del networks.NETWORKS["test_linear"]


def test_gated_dense_units_are_h_times_the_sigmoid_of_g_and_save_with_the_model(tmp_path):
    from vae_zoo.networks.mlp import GatedDense

    layer = GatedDense(3)
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    out = layer(x).numpy()
    h = x @ layer.h.kernel.numpy() + layer.h.bias.numpy()
    g = x @ layer.g.kernel.numpy() + layer.g.bias.numpy()
    np.testing.assert_allclose(out, h / (1 + np.exp(-g)), rtol=1e-5, atol=1e-6)

    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2,
                                 encoder={"name": "mlp", "hidden_sizes": [6, 4], "activation": "gated"})
    images = (np.random.default_rng(1).random((16, 8, 8, 1)) > 0.5).astype(np.float32)
    model.compile()
    model.fit(images, epochs=1, batch_size=8, verbose=0)
    assert sum(isinstance(layer, GatedDense) for layer in model.encoder.layers) == 2
    loaded = vae_zoo.load(vae_zoo.save(model, tmp_path / "gated"))
    np.testing.assert_allclose(loaded.reconstruction(images), model.reconstruction(images), rtol=1e-5)
    with pytest.raises(ValueError, match="'gated' does not take batch_norm"):
        vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2,
                             encoder={"name": "mlp", "hidden_sizes": [4], "activation": "gated", "batch_norm": True})


def test_the_ladder_vae_levels_take_gated_units_like_its_encoder(tmp_path):
    """The ladder VAE's level MLPs use the encoder's activation, gated included."""
    from vae_zoo.networks.mlp import GatedDense

    images = (np.random.default_rng(1).random((16, 8, 8, 1)) > 0.5).astype(np.float32)
    gated = {"name": "mlp", "hidden_sizes": [6], "activation": "gated"}
    ladder = vae_zoo.create_model("ladder_vae", data_shape=(8, 8, 1), latent_dim=3, upper_latent_dims=[2],
                                  ladder_hidden=[5], encoder=gated)
    ladder.compile()
    ladder.fit(images, epochs=1, batch_size=8, verbose=0)
    assert all(isinstance(head.layers[0], GatedDense) for head in ladder.bottom_up + ladder.top_down)
    loaded = vae_zoo.load(vae_zoo.save(ladder, tmp_path / "ladder"))
    np.testing.assert_allclose(loaded.reconstruction(images), ladder.reconstruction(images), rtol=1e-5)


def test_a_residual_block_starts_near_the_identity_and_a_resnet_vae_trains_and_saves(tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
    block = ResidualBlock(16, normalization="batch", squeeze_excitation=True)
    out = block(x).numpy()
    # The residual branch's last convolution starts small: the block is close to, but not, the identity.
    assert 0 < np.abs(out - x).mean() < 0.2 * np.abs(x).mean()
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 3), latent_dim=2, likelihood="gaussian",
                                 encoder={"name": "resnet", "filters": [4, 8], "blocks": 1})
    images = np.random.default_rng(1).random((8, 8, 8, 3)).astype("float32")
    model.compile()
    assert np.isfinite(model.fit(images, epochs=1, batch_size=4, verbose=0).history["loss"][0])
    loaded = vae_zoo.load(vae_zoo.save(model, tmp_path / "resnet_vae"))
    np.testing.assert_allclose(loaded(images), model(images), rtol=1e-5, atol=1e-6)



def test_a_squeeze_excitation_gate_learns_from_the_small_start_of_a_residual_branch():
    # A fresh residual branch's output is small and much alike from example to example, so the gate's few squeeze
    # units sit near zero with the same sign for the whole batch. With ReLU all of them start dead in about one gate
    # in sixteen, and then the gate's weights get no gradient (one CI run left them unchanged). None may be dead.
    import tensorflow as tf
    from vae_zoo.networks.resnet import SqueezeExcitation

    rng = np.random.default_rng(0)
    dead = []
    for seed in range(64):
        keras.utils.set_random_seed(seed)
        gate = SqueezeExcitation(8)
        shared = rng.normal(size=(1, 1, 1, 8))
        x = tf.constant(1e-3 * (shared + 0.1 * rng.normal(size=(6, 4, 4, 8))), tf.float32)
        target = tf.constant(rng.normal(size=(6, 4, 4, 8)), tf.float32)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(gate(x) * target)
        grads = tape.gradient(loss, gate.trainable_variables)
        dead += [f"seed {seed}: {v.path}" for v, g in zip(gate.trainable_variables, grads)
                 if g is None or not np.abs(g.numpy()).max() > 0]
    assert not dead, f"squeeze-excitation weights without a gradient: {dead}"


def test_swish_in_training_has_tensorflows_value_and_gradient_through_its_fused_kernel():
    """The Swish layer's fused gradient (one XLA kernel) against tf.nn.silu's own, and the plain op outside
    training, so that inference graphs and exports are unchanged."""
    import tensorflow as tf

    from vae_zoo.networks.activations import Swish, activation_layer

    x = tf.constant(np.random.default_rng(0).normal(size=(3, 5, 5, 4)).astype(np.float32) * 4.0)
    upstream = tf.constant(np.random.default_rng(1).normal(size=(3, 5, 5, 4)).astype(np.float32))
    layer = activation_layer("swish", "act")
    assert isinstance(layer, Swish) and isinstance(activation_layer("relu", "act"), keras.layers.Activation)
    results = {}
    for training in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
        results[training] = (y.numpy(), tape.gradient(y, x, output_gradients=upstream).numpy())
    with tf.GradientTape() as tape:
        tape.watch(x)
        reference = tf.nn.silu(x)
    expected = tape.gradient(reference, x, output_gradients=upstream).numpy()
    for training in (True, False):
        np.testing.assert_allclose(results[training][0], reference.numpy(), rtol=1e-6)
        np.testing.assert_allclose(results[training][1], expected, rtol=1e-5, atol=1e-6)
    # The closed form, for a value where sigmoid is far from 1/2.
    s = 1.0 / (1.0 + np.exp(-x.numpy()))
    np.testing.assert_allclose(results[True][1], upstream.numpy() * s * (1 + x.numpy() * (1 - s)), rtol=1e-5, atol=1e-6)
