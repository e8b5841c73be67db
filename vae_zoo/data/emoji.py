"""Colour emoji at 64x64: 1,911 emoji and their skin-tone variants in two drawing styles (7,572 images).

The images are those of the npm packages ``emoji-datasource-google`` (Noto Emoji, Apache-2.0) and
``emoji-datasource-twitter`` (Twemoji, CC BY 4.0), version 16.0.0, unchanged. The source reads either

* an ``.npz`` with ``images`` (n, 64, 64, 4) uint8 RGBA, ``category`` (indices into ``categories``),
  ``style`` (indices into ``styles``) and ``short_name`` (as the team's ``emoji64.npz``), or
* the unpacked packages themselves (``npm pack emoji-datasource-google emoji-datasource-twitter``, then
  ``tar xzf`` each): a folder holding one or more ``emoji.json`` files with their ``img/<style>/64/`` PNGs.

The split is by ``short_name``, so that no emoji's skin-tone variants, nor its other style, cross from
training into test: an emoji goes to test when the first byte of the SHA-256 of its short name is below 26
(about 10%), to validation when it is in [26, 52), else to training. On the 7,572 images of version 16.0.0
that is 6,098 / 684 / 790 images. The labels are the 10 Unicode categories; the drawing style of each
example (0 Noto, 1 Twemoji: ``STYLES``) is ``data.source.example_styles(split)``, and the option ``style``
keeps one of them.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from vae_zoo import schema
from vae_zoo.data.base import SPLITS, without_classes
from vae_zoo.data.sources import CachedSource, Option, path_like, read_source, register_source
from vae_zoo.errors import ConfigError, DataError

ATTRIBUTION = (
    "Emoji images: Noto Emoji by Google (https://github.com/googlefonts/noto-emoji), Apache License 2.0; "
    "Twemoji by Twitter, Inc. and other contributors (https://github.com/jdecked/twemoji), CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/); as packaged by emoji-datasource-google and "
    "emoji-datasource-twitter 16.0.0 (https://github.com/iamcal/emoji-data). Pixels unchanged except for "
    "compositing on a background (rgba: the invisible colour of fully transparent pixels set to 0)."
)
CATEGORIES = ("Activities", "Animals & Nature", "Component", "Flags", "Food & Drink", "Objects", "People & Body",
              "Smileys & Emotion", "Symbols", "Travel & Places")
STYLES = ("noto", "twemoji")  # the values of ``style``; the npz's ``styles`` name them at greater length
# The packages' image folders (img/<folder>/64) and the style each holds.
STYLE_FOLDERS = {"google": 0, "twitter": 1}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0)}
# The file beside the team's checkout; users point VAE_ZOO_EMOJI or the path option at theirs.
TEAM_COPY = Path(__file__).resolve().parents[3] / "shared" / "data" / "emoji64.npz"
HOW_TO_GET = ("npm pack emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0, unpack both "
              "(tar xzf), and pass the folder as path (or set VAE_ZOO_EMOJI)")


def split_of(short_name):
    """"train", "validation" or "test" for an emoji, fixed by the SHA-256 of its short name."""
    first_byte = hashlib.sha256(str(short_name).encode("utf-8")).digest()[0]
    return "test" if first_byte < 26 else "validation" if first_byte < 52 else "train"


def background_colour(value, key="background"):
    """An (r, g, b) of 0-255 from a name (white, black) or a list of three integers."""
    if isinstance(value, str):
        if value not in BACKGROUNDS:
            raise ConfigError(f"{key} must be white, black or [r, g, b] with values 0-255, got {value!r}")
        return BACKGROUNDS[value]
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        return tuple(int(v) for v in value)
    raise ConfigError(f"{key} must be white, black or [r, g, b] with values 0-255, got {value!r}")


def _background_check(value, key):
    background_colour(value, key)
    return value


_background_check.expected = "white, black or [r, g, b] (0-255)"


def composite(rgba, background):
    """RGBA uint8 images over an opaque background, as uint8 RGB: round((c a + b (255 - a)) / 255), in integers,
    so that every value stays one of the 256 levels."""
    rgba = np.asarray(rgba, np.uint16)
    alpha = rgba[..., 3:4]
    colour = np.asarray(background, np.uint16)
    return ((rgba[..., :3] * alpha + colour * (255 - alpha) + 127) // 255).astype(np.uint8)


def pillow_convert(images, pillow_mode, size):
    """uint8 images (n, h, w, c) through Pillow: converted to ``pillow_mode`` (None: kept), resized to size x size
    with Lanczos resampling; (n, size, size, channels) uint8, grey as one channel."""
    from PIL import Image  # lazy: only grey or resized emoji need it

    converted = []
    for image in images:
        picture = Image.fromarray(image, "RGBA" if image.shape[-1] == 4 else "RGB")
        if pillow_mode:
            picture = picture.convert(pillow_mode)
        if picture.size != (size, size):
            picture = picture.resize((size, size), Image.Resampling.LANCZOS)
        array = np.asarray(picture, np.uint8)
        converted.append(array[..., None] if array.ndim == 2 else array)
    return np.stack(converted) if converted else np.zeros((0, size, size, 1 if pillow_mode == "L" else images.shape[-1]), np.uint8)


def without_hidden_colour(rgba):
    """RGBA with the colour of fully transparent pixels set to 0: it is invisible, and varies between files."""
    rgba = np.array(rgba, np.uint8)
    rgba[rgba[..., 3] == 0] = 0
    return rgba


def read_npz(path):
    with np.load(path, allow_pickle=False) as bundle:
        missing = {"images", "category", "style", "short_name"} - set(bundle.files)
        if missing:
            raise DataError(f"{path} is not an emoji .npz: it lacks {', '.join(sorted(missing))}")
        images = bundle["images"]
        categories = tuple(str(c) for c in bundle["categories"]) if "categories" in bundle.files else CATEGORIES
        names = [categories[int(i)] for i in bundle["category"]]
        return images, names, bundle["style"].astype(np.int64), [str(s) for s in bundle["short_name"]]


def read_packages(folder):
    """Images, category names, styles and short names from unpacked emoji-datasource packages below ``folder``."""
    from PIL import Image  # lazy: only the PNG form of the source needs it

    images, categories, styles, short_names = [], [], [], []
    for listing in sorted(Path(folder).glob("**/emoji.json")):
        style_folders = [p for p in sorted((listing.parent / "img").glob("*/64")) if p.parent.name in STYLE_FOLDERS]
        for entry in json.loads(listing.read_text()):
            files = [entry.get("image")] + [v.get("image") for v in (entry.get("skin_variations") or {}).values()]
            for style_folder in style_folders:
                for name in files:
                    png = style_folder / str(name)
                    if name and png.is_file():
                        images.append(np.asarray(Image.open(png).convert("RGBA").resize((64, 64))))
                        categories.append(entry.get("category"))
                        styles.append(STYLE_FOLDERS[style_folder.parent.name])
                        short_names.append(entry.get("short_name"))
    if not images:
        raise DataError(f"no emoji PNGs found below {folder} (expected emoji.json with img/<style>/64/*.png): {HOW_TO_GET}")
    return np.stack(images), categories, np.array(styles, np.int64), short_names


@register_source("emoji")
class Emoji(CachedSource):
    """7,572 colour emoji at 64x64 (Noto and Twemoji), split by short name (6098/684/790), labelled by category"""

    num_classes = len(CATEGORIES)
    attribution = ATTRIBUTION
    options = {
        "path": Option(None, path_like, "the emoji .npz or the folder of the unpacked npm packages "
                                        "(else $VAE_ZOO_EMOJI, else the team's shared copy)"),
        "mode": Option("rgb", schema.choice("rgb", "rgba", "grey"),
                       "rgb: composited on the background; rgba: alpha kept as a 4th channel; grey: rgb turned to one "
                       "channel of luminance (ITU-R 601, as Pillow's 'L')"),
        "size": Option(64, schema.integer(8, 1024), "height and width: the 64x64 images resized (Pillow's Lanczos filter)"),
        "background": Option("white", _background_check, "the colour under transparent pixels in rgb mode: white, black or [r, g, b]"),
        "style": Option("both", schema.choice("both", *STYLES), "both drawing styles, or only noto (Google) or twemoji (Twitter)"),
    }

    @classmethod
    def read(cls, data_dir=None):
        """{split: (RGBA images, category labels, styles)}."""
        path = Path(data_dir or os.environ.get("VAE_ZOO_EMOJI") or TEAM_COPY)
        if not path.exists():
            raise DataError(f"emoji data not found at {path}: {HOW_TO_GET}")
        images, categories, styles, short_names = read_npz(path) if path.is_file() else read_packages(path)
        unknown = sorted({c for c in categories if c not in CATEGORIES})
        if unknown:
            raise DataError(f"{path}: unknown emoji categories {unknown}; expected {', '.join(CATEGORIES)}")
        if not np.isin(styles, range(len(STYLES))).all():
            raise DataError(f"{path}: style must be 0 (noto) or 1 (twemoji), got {sorted(set(styles.tolist()))}")
        labels = np.array([CATEGORIES.index(c) for c in categories], np.int64)
        assignment = np.array([split_of(name) for name in short_names])
        return {split: (without_hidden_colour(images[assignment == split]), labels[assignment == split], styles[assignment == split])
                for split in SPLITS}

    def _chosen(self):
        """{split: (RGBA images, labels, styles)} of the chosen style(s)."""
        path = self.options["path"]
        raw = read_source(self.name, str(path) if path else None)
        if self.options["style"] == "both":
            return raw
        keep = STYLES.index(self.options["style"])
        return {split: tuple(a[styles == keep] for a in (images, labels, styles)) for split, (images, labels, styles) in raw.items()}

    def splits(self):
        chosen = self._chosen()
        mode, size = self.options["mode"], int(self.options["size"])
        background = background_colour(self.options["background"])
        result = {}
        for split, (images, labels, _) in chosen.items():
            if mode != "rgba":
                images = composite(images, background)
            if mode == "grey" or size != images.shape[1]:
                images = pillow_convert(images, "L" if mode == "grey" else None, size)
            result[split] = (images, labels)
        return result

    def example_styles(self, split):
        """The style (index into ``STYLES``) of each example of ``split``, in the order ``load()`` gives them: after
        ``exclude_classes`` and ``limit``, as ``from_splits`` applies them."""
        _, labels, styles = self._chosen()[split]
        styles = without_classes(styles, labels, self.options["exclude_classes"], split)[0]
        return styles[: int(self.options["limit"])] if self.options["limit"] else styles
