"""The ``.vzc`` file: a small binary header, then the entropy coder's 32-bit words.

Layout (little-endian throughout)::

    magic      4 bytes  b"VZC1"
    version    u8       FORMAT_VERSION
    method     u8       1 = bits-back of binary images (lossless), 2 = VQ codes (lossy), 3 = bits-back of 8-bit
                        images under a discretized logistic mixture (lossless), 4 = bits-back over the latent
                        groups of a hierarchical VAE (lossless; binary or 8-bit images)
    model      u8 length + UTF-8 name (the pretrained name or folder name it was made with)
    weights    16 bytes  the first half of the model's weights SHA-256 (``vae_zoo.io.saving.weights_digest``)
    content    16 bytes  the first half of a SHA-256 of what decoding must give back (the images for
                         lossless files, the code grids for lossy ones): a wrong decode is caught, never returned
    dtype      u8 length + numpy dtype string of the images (lossless files give back this dtype)
    shape      u8 rank + u32 per axis: the shape of one example
    count      u32       number of examples
    options    u16 length + method-specific bytes (e.g. the bits-back batch sizes)
    words      u32       number of payload words
    crc32      u32       of every byte before it (from the version on) and of the payload
    payload    words x u32

The header is about 80 bytes; every size the report states counts it.
"""

import dataclasses
import hashlib
import struct
import zlib

import numpy as np

from vae_zoo.errors import InputError

MAGIC = b"VZC1"
FORMAT_VERSION = 1
METHODS = {"bits_back": 1, "vq_codes": 2, "bits_back_8bit": 3, "bits_back_hierarchy": 4}
DIGEST_BYTES = 16
MAX_RANK = 8


class CompressedFileError(InputError):
    """A ``.vzc`` file that cannot be decoded as it stands: not one, truncated, altered, or for another model."""


@dataclasses.dataclass
class Header:
    method: str
    model: str
    weights_digest: bytes
    content_digest: bytes
    dtype: str
    shape: tuple
    count: int
    options: bytes = b""

    def describe(self):
        return f"{self.count} examples of shape {self.shape} coded by {self.method} with {self.model}"


def digest(hex_or_bytes):
    """The header's form of a SHA-256: its first 16 bytes."""
    raw = bytes.fromhex(hex_or_bytes) if isinstance(hex_or_bytes, str) else bytes(hex_or_bytes)
    return raw[:DIGEST_BYTES]


def content_digest(array):
    """SHA-256 (first 16 bytes) of an array's dtype, shape and bytes."""
    array = np.ascontiguousarray(array)
    sha = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    sha.update(array.tobytes())
    return sha.digest()[:DIGEST_BYTES]


def _short_text(text, what):
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise InputError(f"the {what} {text[:40]!r}... is longer than 255 bytes")
    return struct.pack("<B", len(raw)) + raw


def pack(header, words):
    """The file's bytes: header, then the payload words."""
    words = np.ascontiguousarray(words, dtype="<u4")
    if len(header.shape) > MAX_RANK:
        raise InputError(f"examples of rank {len(header.shape)} are not supported (at most {MAX_RANK})")
    if len(header.options) > 0xFFFF:
        raise InputError(f"method options of {len(header.options)} bytes do not fit the header (at most 65,535)")
    payload = words.tobytes()
    fields = [
        struct.pack("<BB", FORMAT_VERSION, METHODS[header.method]),
        _short_text(header.model, "model name"),
        header.weights_digest,
        header.content_digest,
        _short_text(header.dtype, "dtype"),
        struct.pack("<B", len(header.shape)) + struct.pack(f"<{len(header.shape)}I", *header.shape),
        struct.pack("<I", header.count),
        struct.pack("<H", len(header.options)) + header.options,
        struct.pack("<I", len(words)),
    ]
    described = b"".join(fields)
    return MAGIC + described + struct.pack("<I", zlib.crc32(payload, zlib.crc32(described))) + payload


class _Reader:
    """Reads the header field by field; running out of bytes names the field."""

    def __init__(self, raw, source):
        self.raw, self.at, self.source = raw, 0, source

    def take(self, size, field):
        if self.at + size > len(self.raw):
            raise CompressedFileError(f"{self.source} is truncated: it ends inside the header's {field} "
                                      f"(byte {len(self.raw)} of at least {self.at + size})")
        chunk = self.raw[self.at:self.at + size]
        self.at += size
        return chunk

    def unpack(self, fmt, field):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), field))

    def text(self, field):
        (size,) = self.unpack("<B", field)
        try:
            return self.take(size, field).decode("utf-8")
        except UnicodeDecodeError:
            raise CompressedFileError(f"{self.source} is corrupt: its {field} is not UTF-8 text") from None


def unpack(raw, source="the file"):
    """(Header, payload words) from a file's bytes; any damage raises ``CompressedFileError`` naming it."""
    reader = _Reader(raw, source)
    magic = reader.take(len(MAGIC), "magic number") if len(raw) >= len(MAGIC) else raw
    if magic != MAGIC:
        raise CompressedFileError(f"{source} is not a vae_zoo compressed file (it does not start with {MAGIC!r})")
    version, method_code = reader.unpack("<BB", "format version")
    if version != FORMAT_VERSION:
        raise CompressedFileError(f"{source} has format version {version}; this vae_zoo reads version {FORMAT_VERSION}")
    methods = {code: name for name, code in METHODS.items()}
    if method_code not in methods:
        raise CompressedFileError(f"{source} names an unknown coding method ({method_code})")
    model = reader.text("model name")
    weights = reader.take(DIGEST_BYTES, "weights digest")
    content = reader.take(DIGEST_BYTES, "content digest")
    dtype = reader.text("dtype")
    (rank,) = reader.unpack("<B", "shape")
    if rank > MAX_RANK:
        raise CompressedFileError(f"{source} is corrupt: its examples have rank {rank}")
    shape = reader.unpack(f"<{rank}I", "shape")
    (count,) = reader.unpack("<I", "count")
    (options_size,) = reader.unpack("<H", "options")
    options = reader.take(options_size, "options")
    (word_count,) = reader.unpack("<I", "payload size")
    described = raw[len(MAGIC):reader.at]
    (crc,) = reader.unpack("<I", "checksum")
    payload = raw[reader.at:]
    if len(payload) < 4 * word_count:
        raise CompressedFileError(f"{source} is truncated: its payload has {len(payload):,} of {4 * word_count:,} bytes")
    if len(payload) > 4 * word_count:
        raise CompressedFileError(f"{source} has {len(payload) - 4 * word_count:,} bytes after its payload")
    if zlib.crc32(payload, zlib.crc32(described)) != crc:
        raise CompressedFileError(f"{source} is corrupt: its header or payload does not match the checksum in its header")
    try:
        np.dtype(dtype)
    except TypeError:
        raise CompressedFileError(f"{source} is corrupt: {dtype!r} is not a numpy dtype") from None
    header = Header(methods[method_code], model, weights, content, dtype, tuple(int(d) for d in shape), int(count), options)
    return header, np.frombuffer(payload, dtype="<u4").astype(np.uint32)
