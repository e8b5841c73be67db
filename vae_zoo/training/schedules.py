"""KL-weight schedules beta(t) of the training step t, chosen by name.

Each schedule has two forms with the same arguments: a Python one (``SCHEDULES``) for
reading a value, and a TensorFlow one (``GRAPH_SCHEDULES``) that the model evaluates
inside its compiled training step, so that beta follows every step even when Keras
runs many steps per call (``steps_per_execution``). A test keeps the two equal.
"""

import math

import tensorflow as tf

from vae_zoo.errors import unknown_name


def sigmoid(step, beta_final=1.0, t_threshold=2000, rate=500):
    """The seed's schedule: beta(t) = beta_final * sigmoid((t - t_threshold) / rate)."""
    x = (step - t_threshold) / rate
    # Written to avoid overflow of exp() far from the threshold.
    return beta_final / (1.0 + math.exp(-x)) if x >= 0 else beta_final * math.exp(x) / (1.0 + math.exp(x))


def linear(step, beta_final=1.0, warmup_steps=5000, beta_start=0.0):
    """From ``beta_start`` to ``beta_final`` in ``warmup_steps`` steps, then constant (Bowman et al., 2016)."""
    fraction = min(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0
    return beta_start + (beta_final - beta_start) * fraction


def cyclical(step, beta_final=1.0, cycle_steps=5000, ramp_fraction=0.5):
    """Cyclical annealing (Fu et al., 2019): in every cycle, rise linearly from 0 over
    ``ramp_fraction`` of it, then hold ``beta_final`` for the rest."""
    position = (step % cycle_steps) / cycle_steps
    return beta_final * min(1.0, position / ramp_fraction) if ramp_fraction > 0 else beta_final


def constant(step, beta_final=1.0):
    return beta_final


SCHEDULES = {"sigmoid": sigmoid, "linear": linear, "cyclical": cyclical, "constant": constant}


# The same formulas on a float32 step tensor (tf.sigmoid is stable far from the threshold).
GRAPH_SCHEDULES = {
    "sigmoid": lambda step, beta_final=1.0, t_threshold=2000, rate=500: beta_final * tf.sigmoid((step - t_threshold) / rate),
    "linear": lambda step, beta_final=1.0, warmup_steps=5000, beta_start=0.0: beta_start + (beta_final - beta_start) * (
        tf.minimum(1.0, step / warmup_steps) if warmup_steps > 0 else 1.0),
    "cyclical": lambda step, beta_final=1.0, cycle_steps=5000, ramp_fraction=0.5: beta_final * (
        tf.minimum(1.0, tf.math.floormod(step, cycle_steps) / cycle_steps / ramp_fraction) if ramp_fraction > 0 else 1.0),
    "constant": lambda step, beta_final=1.0: beta_final + 0.0 * step,
}


def get(name, graph=False):
    """The schedule called ``name``; with ``graph``, its TensorFlow form."""
    if name not in SCHEDULES:
        raise unknown_name("schedule", name, SCHEDULES)
    return (GRAPH_SCHEDULES if graph else SCHEDULES)[name]
