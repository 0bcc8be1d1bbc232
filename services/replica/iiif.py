"""IIIF Image API 2 request parsing and rendering (SPEC §7): pure functions over a picture.

Clients only ever rewrite ``info.json`` into ``full/{size}/0/default.jpg``, but the replica
parses the whole v2 grammar (region, size, rotation, quality, format) so that any URL a
client builds from the spec either works or gets a IIIF-style plain-text 400, never a
catalogue Error JSON. Output size is capped so a request cannot ask for a huge canvas.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import ImageOps

MAX_AREA = 4096 * 4096
MAX_SIDE = 8192
FORMATS = {
    "jpg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
}
QUALITIES = ("default", "color", "gray", "bitonal")
THUMB_SIZES = (100, 200, 400, 1024)


class IIIFError(ValueError):
    """A bad IIIF request: ``status`` 400 (syntax/range) or 404 (unknown asset)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImageRequest:
    box: tuple[int, int, int, int]  # region in full-size pixels: x0, y0, x1, y1
    size: tuple[int, int]  # output width, height before rotation
    rotation: float
    mirror: bool
    quality: str
    format: str

    @property
    def mimetype(self) -> str:
        return FORMATS[self.format][1]


_NUM = r"\d+(?:\.\d+)?"


def _region(text: str, width: int, height: int) -> tuple[int, int, int, int]:
    if text == "full":
        return (0, 0, width, height)
    if text == "square":
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return (x0, y0, x0 + side, y0 + side)
    pct = text.startswith("pct:")
    body = text[4:] if pct else text
    if not re.fullmatch(rf"{_NUM},{_NUM},{_NUM},{_NUM}" if pct else r"\d+,\d+,\d+,\d+", body):
        raise IIIFError(400, f"invalid region {text!r}")
    x, y, w, h = (float(v) for v in body.split(","))
    if pct:
        x, w = x * width / 100, w * width / 100
        y, h = y * height / 100, h * height / 100
    x0, y0 = round(x), round(y)
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if w <= 0 or h <= 0 or x0 >= width or y0 >= height or x1 <= x0 or y1 <= y0:
        raise IIIFError(400, f"region {text!r} is outside the image or empty")
    return (x0, y0, x1, y1)


def _size(text: str, rw: int, rh: int) -> tuple[int, int]:
    if text in ("full", "max"):
        w, h = rw, rh
    elif text.startswith("pct:"):
        if not re.fullmatch(_NUM, text[4:]):
            raise IIIFError(400, f"invalid size {text!r}")
        p = float(text[4:]) / 100
        w, h = round(rw * p), round(rh * p)
    elif m := re.fullmatch(r"(\d+),", text):
        w = int(m.group(1))
        h = round(rh * w / rw)
    elif m := re.fullmatch(r",(\d+)", text):
        h = int(m.group(1))
        w = round(rw * h / rh)
    elif m := re.fullmatch(r"(!?)(\d+),(\d+)", text):
        bw, bh = int(m.group(2)), int(m.group(3))
        if m.group(1):
            scale = min(bw / rw, bh / rh)
            w, h = round(rw * scale), round(rh * scale)
        else:
            w, h = bw, bh
    else:
        raise IIIFError(400, f"invalid size {text!r}")
    w, h = max(1, w), max(1, h)
    if w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_AREA:
        raise IIIFError(400, f"size {text!r} is larger than the server allows")
    return (w, h)


def parse_image_request(
    region: str, size: str, rotation: str, quality_format: str, source
) -> ImageRequest:
    """Parse the four path segments of a v2 image request against a picture's full size."""
    box = _region(region, source.width, source.height)
    out = _size(size, box[2] - box[0], box[3] - box[1])
    m = re.fullmatch(rf"(!?)({_NUM})", rotation)
    if not m or float(m.group(2)) > 360:
        raise IIIFError(400, f"invalid rotation {rotation!r}")
    qm = re.fullmatch(r"([a-z]+)\.([a-z]+)", quality_format)
    if not qm or qm.group(1) not in QUALITIES:
        raise IIIFError(400, f"invalid quality {quality_format!r}")
    if qm.group(2) not in FORMATS:
        raise IIIFError(400, f"unsupported format {qm.group(2)!r}")
    return ImageRequest(
        box, out, float(m.group(2)) % 360, bool(m.group(1)), qm.group(1), qm.group(2)
    )


def render(source, request: ImageRequest) -> bytes:
    """Cut, scale, mirror, rotate, recolour and encode (the IIIF order of operations)."""
    picture = source.render(request.box, request.size)
    if request.mirror:
        picture = ImageOps.mirror(picture)
    if request.rotation:
        picture = picture.rotate(-request.rotation, expand=True, fillcolor=(255, 255, 255))
    if request.quality == "gray":
        picture = picture.convert("L")
    elif request.quality == "bitonal":
        picture = picture.convert("1")
    buf = io.BytesIO()
    pil_format = FORMATS[request.format][0]
    if pil_format == "JPEG":
        picture.save(buf, pil_format, quality=85)
    else:
        picture.save(buf, pil_format)
    return buf.getvalue()


def info_json(image_base: str, source) -> dict:
    """The v2 ``info.json`` for one picture; ``image_base`` is ``{host}/image/{asset}``."""
    width, height = source.width, source.height
    sizes = []
    for n in THUMB_SIZES:
        scale = min(n / width, n / height, 1.0)
        size = {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}
        if size not in sizes:
            sizes.append(size)
    return {
        "@context": "http://iiif.io/api/image/2/context.json",
        "@id": image_base,
        "protocol": "http://iiif.io/api/image",
        "width": width,
        "height": height,
        "sizes": sizes,
        "tiles": [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4, 8]}],
        "profile": [
            "http://iiif.io/api/image/2/level2.json",
            {
                "formats": sorted(FORMATS),
                "qualities": list(QUALITIES),
                "maxArea": MAX_AREA,
                "supports": ["mirroring", "rotationArbitrary", "regionByPct", "sizeByWh"],
            },
        ],
    }
