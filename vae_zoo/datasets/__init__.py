"""Data that ships with vae_zoo: the bundled MNIST subset and the procedural shapes."""
