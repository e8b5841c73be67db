"""KL-weight schedules beta(t) of the training step t, chosen by name."""

import math

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


def get(name):
    if name not in SCHEDULES:
        raise unknown_name("schedule", name, SCHEDULES)
    return SCHEDULES[name]
