"""Test images made on the fly: valid photos in each format, and every kind of bad upload."""

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image


def synthetic_photo(width: int = 300, height: int = 450) -> np.ndarray:
    """A person-like figure on a textured background (for tests that need no real data)."""
    rng = np.random.default_rng(0)
    img = (rng.random((height, width, 3)) * 40 + 170).astype(np.uint8)
    cx = width // 2
    cv2.circle(img, (cx, height // 6), max(4, width // 12), (225, 180, 150), -1)
    cv2.rectangle(img, (cx - width // 6, height // 4), (cx + width // 6, height // 2), (40, 60, 200), -1)
    cv2.rectangle(img, (cx - width // 7, height // 2), (cx + width // 7, int(height * 0.9)), (30, 30, 40), -1)
    return img


def encode(img: np.ndarray, fmt: str = "JPEG", **kw) -> bytes:
    out = io.BytesIO()
    Image.fromarray(img).save(out, format=fmt, **kw)
    return out.getvalue()


def exif_rotated_jpeg(img: np.ndarray) -> bytes:
    """A JPEG stored landscape with EXIF orientation 6 (display rotated 90° clockwise)."""
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6
    out = io.BytesIO()
    pil.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


def truncated_jpeg(img: np.ndarray) -> bytes:
    data = encode(img, "JPEG", quality=90)
    return data[: len(data) // 2]


def bad_uploads() -> list[tuple[str, bytes, int]]:
    """(name, body, expected status) for every kind of bad image upload the contract names."""
    return [
        ("empty", b"", 415),
        ("text", b"hello, I am not an image\n" * 10, 415),
        ("truncated jpeg", truncated_jpeg(synthetic_photo()), 415),
        ("1x1", encode(np.zeros((1, 1, 3), np.uint8), "PNG"), 422),
        ("40000x40000 header", png_claiming(40000, 40000), 413),
        ("gif", encode(np.zeros((64, 64, 3), np.uint8), "GIF"), 415),
    ]


def assert_problem(r, status: int) -> dict:
    """The response is an application/problem+json error with this status; returns its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body
