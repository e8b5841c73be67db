"""Importing this package registers every variant in the zoo."""

from vae_zoo.models.vae import VAE

__all__ = ["VAE"]
