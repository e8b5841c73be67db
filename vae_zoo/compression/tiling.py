"""Images of any size under a model of one size: cut into the model's tiles, coded tile by tile, put back together.

HiLLoC (Townsend et al., ICLR 2020) codes full-size images with a model trained on small crops, its convolutions
sliding over the whole image. The zoo's image models end in a latent of fixed size (the hierarchical VAE's top
group, a dense layer's input), so the same idea takes the form of tiles: an image of H x W is padded at its
bottom and right edges by repeating the last row and column up to whole multiples of the model's h x w, and
each tile is one example for the model. The file's header records the image's own shape; decoding cuts the
padding off again. Padded pixels are not coded: the model sees the padded tile (its posterior needs a whole
one), the coder pushes only the image's own pixels, and the decoder, having popped those, repeats the tile's last
row and column into the padding exactly as the encoder did (they lie in the same tile) before it computes the
posterior whose bits it gives back.
"""

import math

import numpy as np

from vae_zoo.errors import InputError


def grid(image_shape, tile_shape):
    """(rows, columns) of tiles that cover an image of ``image_shape`` (H, W, C) with tiles of (h, w, C)."""
    return math.ceil(image_shape[0] / tile_shape[0]), math.ceil(image_shape[1] / tile_shape[1])


def tiles_per_image(image_shape, tile_shape):
    rows, columns = grid(image_shape, tile_shape)
    return rows * columns


def needs_tiles(image_shape, tile_shape):
    """Whether images of ``image_shape`` are coded as tiles of ``tile_shape``; an ``InputError`` if they cannot be."""
    image_shape, tile_shape = tuple(image_shape), tuple(tile_shape)
    if image_shape == tile_shape:
        return False
    if len(tile_shape) != 3 or len(image_shape) != 3:
        raise InputError(f"the model codes examples of shape {tile_shape}; got examples of shape {image_shape} "
                         "(images of another size are coded in tiles, which needs (height, width, channels) images)")
    if image_shape[2] != tile_shape[2]:
        raise InputError(f"the model codes images with {tile_shape[2]} channel(s); these have {image_shape[2]}")
    if min(image_shape[:2]) < 1:
        raise InputError(f"images of shape {image_shape} hold no pixels")
    return True


def to_tiles(images, tile_shape):
    """(N, H, W, C) -> (N * rows * columns, h, w, C), each image padded by edge repetition, tiles in row order."""
    images = np.asarray(images)
    count, height, width, channels = images.shape
    rows, columns = grid(images.shape[1:], tile_shape)
    tile_h, tile_w = tile_shape[:2]
    padded = np.pad(images, [(0, 0), (0, rows * tile_h - height), (0, columns * tile_w - width), (0, 0)], mode="edge")
    tiles = padded.reshape(count, rows, tile_h, columns, tile_w, channels).transpose(0, 1, 3, 2, 4, 5)
    return tiles.reshape(count * rows * columns, tile_h, tile_w, channels)


def from_tiles(tiles, image_shape):
    """The inverse of ``to_tiles``: (N * rows * columns, h, w, C) -> (N, H, W, C), padding cut off."""
    tiles = np.asarray(tiles)
    tile_h, tile_w, channels = tiles.shape[1:]
    rows, columns = grid(image_shape, tiles.shape[1:])
    count = len(tiles) // (rows * columns)
    whole = tiles.reshape(count, rows, columns, tile_h, tile_w, channels).transpose(0, 1, 3, 2, 4, 5)
    whole = whole.reshape(count, rows * tile_h, columns * tile_w, channels)
    return whole[:, :image_shape[0], :image_shape[1]]


def valid_sizes(image_shape, tile_shape, count=1):
    """(count * tiles, 2): the rows and columns of each tile (in ``to_tiles`` order) that lie inside its image."""
    rows, columns = grid(image_shape, tile_shape)
    tile_h, tile_w = tile_shape[:2]
    heights = np.minimum(tile_h, image_shape[0] - tile_h * np.arange(rows))
    widths = np.minimum(tile_w, image_shape[1] - tile_w * np.arange(columns))
    sizes = np.stack(np.broadcast_arrays(heights[:, None], widths[None, :]), axis=-1).reshape(-1, 2)
    return np.tile(sizes, (count, 1))


def pixel_mask(tile_shape, valid):
    """(n, h, w) booleans: True on the pixels of each tile that lie inside its image (``valid``: (n, 2) sizes)."""
    valid = np.asarray(valid)
    rows = np.arange(tile_shape[0])[None, :, None] < valid[:, 0, None, None]
    columns = np.arange(tile_shape[1])[None, None, :] < valid[:, 1, None, None]
    return rows & columns


def fill_padding(tiles, valid):
    """Tiles (n, h, w, C) with everything outside each one's ``valid`` rows and columns set by repeating its last
    valid row, then column: what ``to_tiles``'s edge padding put there."""
    tiles = np.array(tiles)
    for tile, (height, width) in zip(tiles, np.asarray(valid)):
        tile[height:] = tile[height - 1]
        tile[:, width:] = tile[:, width - 1:width]
    return tiles
