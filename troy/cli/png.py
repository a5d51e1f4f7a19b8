"""A tiny RGB PNG writer: filled rectangles on a canvas, encoded with zlib.

Enough for `troy report`'s timeline picture without Pillow or matplotlib.
Every scanline is written with filter type 0 (None); zlib does the rest.
"""

from __future__ import annotations

import struct
import zlib

#: An (red, green, blue) colour, each 0-255.
Color = tuple[int, int, int]

SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Canvas:
    """A width-by-height picture of RGB pixels, all ``background`` to start with."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"a canvas needs at least one pixel, not {width}x{height}")
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def fill(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Paint columns x0..x1-1 of rows y0..y1-1; the parts outside the canvas are dropped."""
        x0, x1 = max(x0, 0), min(x1, self.width)
        y0, y1 = max(y0, 0), min(y1, self.height)
        if x0 >= x1 or y0 >= y1:
            return
        run = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(run)] = run

    def pixel(self, x: int, y: int) -> Color:
        """The colour at column x, row y."""
        start = (y * self.width + x) * 3
        red, green, blue = self.pixels[start : start + 3]
        return (red, green, blue)

    def to_png(self) -> bytes:
        """The canvas as a PNG file: 8-bit RGB, not interlaced."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + self.pixels[y * stride : (y + 1) * stride] for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            SIGNATURE
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 6))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
