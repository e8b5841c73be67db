"""How a model's training step is compiled, chosen per model and device, so that users need not know.

Two recipe settings accept ``auto``, resolved here by rule. Each rule comes from side-by-side timings that
tools/bench_vs_torch.py (``--zoo-alternatives``) and tools/bench_recipes.py repeat on any machine:

- ``training.jit_compile: auto`` (the default): XLA on an accelerator, and on a CPU for models without
  convolutions. On a CPU, XLA's convolutions (and their gradients) run at about half the rate of
  TensorFlow's own oneDNN kernels, while XLA's fusion of the dense models' elementwise work pays: the seed MLP
  trains about 1.7x faster with it, the conv and resnet bodies about 1.4x (28x28) to 2x (64x64x3) faster
  without it.
- ``training.mixed_precision: auto`` (opt-in: the default stays float32): ``mixed_bfloat16`` where the
  hardware computes in bfloat16 natively (a CPU with AMX or AVX512-BF16, an NVIDIA GPU of compute
  capability 8.0 or more), float32 elsewhere. Layers compute in bfloat16 and keep float32 weights; the
  zoo's distributions, KL terms and likelihoods stay float32 whatever the policy.

``steps_per_execution: auto`` is resolved in ``recipe.steps_per_execution``. The resolved choice and the
reasons go on the model card (``training.compiled``).
"""

import functools
from pathlib import Path

import keras
import tensorflow as tf

from vae_zoo.hardware import has_accelerator

CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose,
                keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose, keras.layers.DepthwiseConv2D,
                keras.layers.SeparableConv2D)
BFLOAT16_CPU_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def convolution_count(model):
    """How many convolution layers ``model`` holds, at any depth."""
    return sum(isinstance(layer, CONVOLUTIONS) for layer in model._flatten_layers(include_self=False, recursive=True))


def choose_jit_compile(model, setting="auto"):
    """``(use XLA, why)`` for ``model`` on this machine; a True or False setting is the recipe's and is kept."""
    if setting is not True and setting is not False and setting != "auto":
        raise ValueError(f"jit_compile must be true, false or 'auto', got {setting!r}")
    if setting != "auto":
        return bool(setting), "as the recipe sets it"
    if has_accelerator():
        return True, "auto: XLA on a GPU or TPU"
    convolutions = convolution_count(model)
    if convolutions:
        return False, (f"auto: no XLA for a model with {convolutions} convolution layers on a CPU, "
                       "where TensorFlow's oneDNN convolutions are faster than XLA's")
    return True, "auto: XLA on a CPU for a model without convolutions (it fuses the elementwise work)"


@functools.lru_cache(maxsize=1)
def cpu_flags():
    """The CPU's feature flags (Linux's /proc/cpuinfo; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def gpu_has_bfloat16():
    """Whether every visible GPU computes in bfloat16 natively (NVIDIA compute capability 8.0 or more)."""
    gpus = tf.config.list_physical_devices("GPU")
    capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus]
    return bool(gpus) and all(c is not None and tuple(c) >= (8, 0) for c in capabilities)


def choose_mixed_precision(setting="float32"):
    """``(Keras dtype policy, why)`` for a recipe's ``training.mixed_precision``; ``auto`` follows the hardware."""
    if setting != "auto":
        return setting, "as the recipe sets it"
    if tf.config.list_physical_devices("GPU"):
        if gpu_has_bfloat16():
            return "mixed_bfloat16", "auto: the GPU computes in bfloat16 natively"
        return "float32", "auto: the GPU has no native bfloat16, and float16 needs loss scaling: float32"
    flags = sorted(BFLOAT16_CPU_FLAGS & cpu_flags())
    if flags:
        return "mixed_bfloat16", f"auto: the CPU computes in bfloat16 natively ({', '.join(flags)})"
    return "float32", "auto: the CPU has neither AMX nor AVX512-BF16: float32"
