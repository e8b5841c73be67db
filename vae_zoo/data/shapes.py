"""A dSprites-style data set of 2-D shapes with known factors, drawn procedurally (no download).

Every combination of five factors is drawn once, like dSprites (Matthey et al.,
2017) at a smaller size: shape (square, ellipse, triangle), scale, rotation,
x position and y position, on a 32x32 binary canvas. Disentanglement metrics
(MIG, the beta-VAE score) need exactly this: images whose generating factors
are known and vary independently.
"""

import functools
import itertools

import numpy as np

FACTOR_NAMES = ("shape", "scale", "rotation", "x", "y")
SHAPES = ("square", "ellipse", "triangle")
FACTOR_SIZES = (3, 4, 8, 8, 8)
SIZE = 32
SUPERSAMPLE = 3


def _inside(shape, u, v):
    """Whether points (u, v), in the shape's own frame with unit size, lie inside it."""
    if shape == "square":
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.55) ** 2 <= 1.0
    # An isosceles triangle pointing up: below two slanted edges and above the base.
    return (v >= -0.6) & (v <= 0.9 - 1.5 * np.abs(u))


def render(shape, scale, angle, cx, cy):
    """One binary image: ``shape`` of half-size ``scale`` pixels, rotated by ``angle``, centred at (cx, cy)."""
    grid = (np.arange(SIZE * SUPERSAMPLE) + 0.5) / SUPERSAMPLE
    px, py = np.meshgrid(grid, grid)
    dx, dy = (px - cx) / scale, (py - cy) / scale
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    covered = _inside(shape, u, -v).astype(np.float32)
    # Average the supersampled pixels, then threshold: smooth edges, binary image.
    coverage = covered.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    return (coverage >= 0.5).astype(np.uint8) * 255


def factor_values():
    """The value each factor index stands for."""
    return {
        "shape": list(SHAPES),
        "scale": list(np.linspace(3.0, 6.0, FACTOR_SIZES[1])),
        "rotation": list(np.linspace(0.0, np.pi / 2, FACTOR_SIZES[2], endpoint=False)),
        "x": list(np.linspace(8.0, 24.0, FACTOR_SIZES[3])),
        "y": list(np.linspace(8.0, 24.0, FACTOR_SIZES[4])),
    }


@functools.lru_cache(maxsize=1)
def generate():
    """All 3*4*8*8*8 = 6144 images, uint8 (n, 32, 32), with their factor indices (n, 5)."""
    values = factor_values()
    factors = np.array(list(itertools.product(*(range(n) for n in FACTOR_SIZES))), dtype=np.int64)
    images = np.stack([
        render(values["shape"][s], values["scale"][c], values["rotation"][r], values["x"][i], values["y"][j])
        for s, c, r, i, j in factors
    ])
    return images, factors


def index_of(factors):
    """Row of ``generate()``'s arrays that holds each factor combination."""
    strides = np.cumprod((1,) + FACTOR_SIZES[::-1])[:-1][::-1]
    return np.asarray(factors) @ strides
