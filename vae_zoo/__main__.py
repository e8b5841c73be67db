import sys

from vae_zoo.cli import run

sys.exit(run())
