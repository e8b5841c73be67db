"""The runner's choice of how to compile a training step (vae_zoo/training/compilation.py)."""

import json

import keras
import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.errors import RecipeError
from vae_zoo.hardware import has_accelerator
from vae_zoo.training import compilation
from vae_zoo.training import recipe as recipes

pytestmark = pytest.mark.skipif(has_accelerator(), reason="these check the CPU rules; on a GPU auto always uses XLA")


def model(encoder, **kwargs):
    return vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder=encoder, **kwargs)


def test_convolutions_are_counted_at_any_depth():
    assert compilation.convolution_count(model({"name": "mlp", "hidden_sizes": [8]})) == 0
    # conv body: two stride-2 convolutions, two transposed ones and the output convolution
    assert compilation.convolution_count(model({"name": "conv", "filters": [4, 8], "hidden_sizes": [8]})) == 5
    hierarchical = vae_zoo.create_model("hierarchical_vae", data_shape=(8, 8, 1), width=4, max_latent_resolution=4)
    assert compilation.convolution_count(hierarchical) > 5  # inside residual blocks and latent groups


def test_auto_uses_xla_on_a_cpu_only_for_models_without_convolutions():
    dense, _ = compilation.choose_jit_compile(model({"name": "mlp", "hidden_sizes": [8]}))
    conv, why = compilation.choose_jit_compile(model({"name": "conv", "filters": [4, 8], "hidden_sizes": [8]}))
    assert dense is True and conv is False
    assert "5 convolution layers" in why


def test_a_recipe_setting_is_kept_and_a_bad_one_named():
    conv = model({"name": "conv", "filters": [4, 8], "hidden_sizes": [8]})
    assert compilation.choose_jit_compile(conv, True) == (True, "as the recipe sets it")
    assert compilation.choose_jit_compile(conv, False)[0] is False
    with pytest.raises(ValueError, match="jit_compile must be true, false or 'auto', got 'yes'"):
        compilation.choose_jit_compile(conv, "yes")


def test_model_compile_defaults_to_the_rule():
    dense, conv = model({"name": "mlp", "hidden_sizes": [8]}), model({"name": "conv", "filters": [4, 8], "hidden_sizes": [8]})
    dense.compile()
    conv.compile()
    assert dense.jit_compile is True and conv.jit_compile is False
    conv.compile(jit_compile=True)
    assert conv.jit_compile is True


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_recipe_schema_takes_auto_true_or_false_only(value):
    with pytest.raises(RecipeError, match="training.jit_compile must be 'auto', true or false"):
        recipes.parse({"model": {"name": "vae"}, "data": {"name": "digits"}, "training": {"jit_compile": value}})


def test_compile_model_records_the_choice():
    recipe = recipes.parse({"model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "conv", "filters": [4, 8]}},
                            "data": {"name": "digits", "batch_size": 50}})
    assert recipes.training_options(recipe)["jit_compile"] == "auto"
    data = recipes.build_data(recipe)
    compiled = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
    choice = compiled.compile_choice
    assert choice["jit_compile"] is False and "convolution" in choice["jit_compile_reason"]
    assert choice["steps_per_execution"] == compiled.steps_per_execution
    assert choice["mixed_precision"] == "float32"


@pytest.mark.parametrize("flags, expected", [({"amx_bf16", "fpu"}, "mixed_bfloat16"), ({"avx512_bf16"}, "mixed_bfloat16"),
                                             ({"avx2", "avx512f"}, "float32"), (set(), "float32")])
def test_auto_precision_follows_the_cpus_bfloat16_support(monkeypatch, flags, expected):
    monkeypatch.setattr(compilation, "cpu_flags", lambda: frozenset(flags))
    policy, why = compilation.choose_mixed_precision("auto")
    assert policy == expected and why.startswith("auto:")
    assert compilation.choose_mixed_precision("mixed_float16") == ("mixed_float16", "as the recipe sets it")


def test_a_trained_card_says_how_it_was_compiled(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(compilation, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    recipe = tmp_path / "digits.yaml"
    recipe.write_text("model: {name: vae, latent_dim: 2, encoder: {name: conv, filters: [4, 8], hidden_sizes: [8]}}\n"
                      "data: {name: digits, batch_size: 100}\n"
                      "training: {epochs: 1, verbose: 0, mixed_precision: auto}\n")
    assert cli.main(["train", str(recipe), "--out", str(tmp_path / "model")]) == 0
    capsys.readouterr()
    card = json.loads((tmp_path / "model" / "card.json").read_text())
    compiled = card["training"]["compiled"]
    assert card["training"]["mixed_precision"] == "auto" and compiled["mixed_precision"] == "mixed_bfloat16"
    assert compiled["jit_compile"] is False and compiled["steps_per_execution"] >= 1
    assert "AMX" in compiled["mixed_precision_reason"] or "amx_bf16" in compiled["mixed_precision_reason"]
    assert keras.config.dtype_policy().name == "float32", "the run puts the previous policy back"
    loaded = vae_zoo.load(tmp_path / "model")
    assert loaded.count_params() > 0
