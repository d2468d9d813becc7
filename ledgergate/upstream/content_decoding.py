"""Incremental decoding of gzip/deflate reply bodies (the encodings the upstream client asks for)."""

from __future__ import annotations

import zlib


class Decoder:
    """Incremental gzip/deflate decoding; deflate is tried zlib-wrapped first, then raw (servers send both)."""

    __slots__ = ("_deflate", "_inner")

    def __init__(self, gzip: bool) -> None:
        self._deflate = not gzip
        self._inner = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes) -> bytes:
        if self._deflate:
            self._deflate = False
            # A zlib stream starts with a header whose 16-bit value is a multiple of 31 and method 8.
            if len(data) >= 2 and ((data[0] << 8) | data[1]) % 31 == 0 and data[0] & 0x0F == 8:
                return self._inner.decompress(data)
            self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data)

    def flush(self) -> bytes:
        return self._inner.flush()


def decoder_for(content_encoding: bytes) -> Decoder | None:
    """A decoder for a ``content-encoding`` value, or None to pass the body through (identity, unknown)."""
    encoding = content_encoding.strip().lower()
    if encoding in (b"gzip", b"x-gzip"):
        return Decoder(gzip=True)
    if encoding == b"deflate":
        return Decoder(gzip=False)
    return None
