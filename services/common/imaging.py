"""Image decoding with the contract's limits (checked on the header, before any pixel is decoded),
EXIF orientation, and fast PNG and WebP encoding."""

import io
import struct
import warnings

import cv2
import numpy as np
from isal import isal_zlib
from PIL import Image, ImageOps

from services.common.errors import Problem
from services.common.settings import Settings

FORMATS = {"JPEG", "PNG", "WEBP"}
# We enforce our own pixel limit from the header; PIL's bomb check would only duplicate it.
Image.MAX_IMAGE_PIXELS = None


def open_image(data: bytes, settings: Settings, field: str = "image") -> Image.Image:
    """Validate an upload and return a lazily-decoded PIL image (only the header has been read)."""
    if not data:
        raise Problem(415, f"field '{field}' is empty; send a JPEG, PNG or WebP image", type_="/problems/not-an-image")
    if len(data) > settings.max_upload_bytes:
        raise Problem(
            413,
            f"field '{field}' has {len(data)} bytes; the limit is {settings.max_upload_bytes}",
            type_="/problems/too-large",
        )
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:
        raise Problem(
            415, f"field '{field}' is not a decodable image (JPEG, PNG or WebP)", type_="/problems/not-an-image"
        ) from None
    if img.format not in FORMATS:
        raise Problem(415, f"field '{field}' is {img.format}; send JPEG, PNG or WebP", type_="/problems/not-an-image")
    check_size(*img.size, settings, field)
    return img


def check_size(w: int, h: int, settings: Settings, field: str) -> None:
    """The contract's pixel limit (413) and minimum side (422), for an image or a requested canvas."""
    if w * h > settings.max_image_pixels:
        raise Problem(
            413,
            f"field '{field}' is {w}×{h} = {w * h} pixels; the limit is {settings.max_image_pixels}",
            type_="/problems/too-large",
        )
    if min(w, h) < settings.min_image_side:
        raise Problem(
            422,
            f"field '{field}' is {w}×{h}; both sides must be at least {settings.min_image_side} pixels",
            type_="/problems/image-too-small",
        )


def _load(img: Image.Image, field: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
            return ImageOps.exif_transpose(img)
    except Exception:
        raise Problem(
            415, f"field '{field}' could not be decoded (truncated or corrupt image)", type_="/problems/not-an-image"
        ) from None


def _decode_jpeg(data: bytes) -> np.ndarray | None:
    """A complete JPEG through OpenCV (libjpeg-turbo; it applies EXIF orientation too): ~5× faster than
    Pillow on the benchmark photo (docs/tuning.md). None when the file does not end in its EOI marker:
    OpenCV would return a truncated JPEG half grey, where Pillow raises."""
    if not data[-1024:].rstrip(b"\0").endswith(b"\xff\xd9"):  # the tail only: no copy of the upload
        return None
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_rgb(data: bytes, settings: Settings, field: str = "image") -> np.ndarray:
    """Upload bytes → HxWx3 uint8 RGB, EXIF orientation applied."""
    img = open_image(data, settings, field)
    if img.format == "JPEG" and (rgb := _decode_jpeg(data)) is not None:
        return rgb
    img = _load(img, field)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels become white, the usual product-photo background.
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"))


def decode_grey(data: bytes, settings: Settings, field: str) -> np.ndarray:
    """Upload bytes → HxW uint8 (e.g. a mask), EXIF orientation applied."""
    return np.asarray(_load(open_image(data, settings, field), field).convert("L"))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG's colour type: grey, RGB, RGBA (3 is palette)


def encode_png(image: np.ndarray) -> bytes:
    """RGB, RGBA or grey uint8 → PNG bytes, fast: every row filtered "Up" (its difference to the row above,
    which turns a photo into small residuals) and deflated by ISA-L (python-isal) at level 1.

    Pillow and OpenCV deflate with zlib, which took 650-700 ms of a 3000×4500 cutout's answer (the photo
    with its alpha); zlib-ng through imagecodecs was no faster. ISA-L's deflate is 5-7× faster for 4 % more
    bytes (97 ms, 8.6 MB against 697 ms, 8.3 MB for Pillow level 1 with zlib's RLE, served until now); a
    400×600 cutout 2.5 against 15.9 ms (0.37 against 0.36 MB); a grey 3000×4500 mask 3.1 against 65 ms
    (docs/benchmarks.md, "Big photos"). No library writes PNG with a fast deflate, so the container is
    written here: three chunks around the compressed rows (tests/test_units.py decodes it with Pillow and
    OpenCV)."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return _png(image, PNG_COLOUR_TYPES[channels], up=True)


def _png(image: np.ndarray, colour_type: int, up: bool, palette: bytes = b"") -> bytes:
    h, w = image.shape[:2]
    rows = np.ascontiguousarray(image, dtype=np.uint8).reshape(h, -1)
    scanlines = np.empty((h, rows.shape[1] + 1), np.uint8)  # each row: its filter type, then its bytes
    scanlines[:, 0] = 2 if up else 0
    if up:
        scanlines[0, 1:] = rows[0]  # the row above the first is zeros
        np.subtract(rows[1:], rows[:-1], out=scanlines[1:, 1:])  # modulo 256, as PNG's filter
    else:
        scanlines[:, 1:] = rows
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)  # 8 bits; deflate, filters, no interlace
    return b"".join(
        [
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"PLTE", palette) if palette else b"",
            _chunk(b"IDAT", isal_zlib.compress(scanlines, 1)),
            _chunk(b"IEND", b""),
        ]
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", isal_zlib.crc32(data, isal_zlib.crc32(kind)))


WEBP_MAX_SIDE = 16383  # the format's own limit
WEBP_QUALITY = 90  # lossy colour, what shops serve; alpha stays lossless (libwebp's default for it)
WEBP_METHOD = 2  # libwebp's effort (0-6); see encode_webp


def encode_webp(image: np.ndarray) -> bytes:
    """RGB or RGBA uint8 → WebP: lossy colour at WEBP_QUALITY with lossless alpha, so the matte arrives
    exactly as in the PNG. What WebP buys here is bytes, not time. Measured on a 3000×4500 cutout with
    clear colour (python -m bench.big_photo --levers; docs/benchmarks.md, "Big photos"), against our PNG's
    ~340 ms / 2.4 MB: lossless WebP ~360 ms / 3.9 MB (larger: no reason to use it); lossy colour with
    lossless alpha ~780 ms / 1.0 MB at method 0 (libwebp then barely compresses the alpha plane: 0.8 MB of
    it), ~1130 ms / 0.35 MB at method 2, ~1150 ms / 0.40 MB at method 1, ~1430 ms / 0.34 MB at method 3.
    Method 2: a seventh of the PNG's bytes, for a file a shop serves many times."""
    h, w = image.shape[:2]
    if max(w, h) > WEBP_MAX_SIDE:
        raise Problem(
            422,
            f"the answer would be {w}×{h}; WebP holds at most {WEBP_MAX_SIDE} pixels a side (use output=png)",
            type_="/problems/invalid-parameters",
        )
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD, alpha_quality=100)
    return out.getvalue()


# Answer formats: (encoder, media type).
ENCODERS = {"png": (encode_png, "image/png"), "webp": (encode_webp, "image/webp")}


def encode_palette_png(indices: np.ndarray, palette: np.ndarray) -> bytes:
    """HxW class indices → 8-bit palette PNG whose pixel values are the indices (rows unfiltered, as PNG
    recommends for palette images: as small as Pillow's, 45 ms → 2 ms for a 3000×4500 label map)."""
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(palette)] = palette
    return _png(indices.astype(np.uint8, copy=False), 3, up=False, palette=flat.tobytes())
