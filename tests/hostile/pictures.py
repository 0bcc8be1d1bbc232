"""Pictures for hostile uploads: a drawing at any size (the same picture at every size), and
the worst case for decoding memory: a tiny PNG file of tens of millions of RGBA pixels."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw


def drawing(side: int, mode: str = "L") -> Image.Image:
    """A few shapes on grey, scaled to ``side`` x ``side``."""
    image = Image.new(mode, (side, side), "gray")
    draw = ImageDraw.Draw(image)

    def box(*fractions: float) -> list[float]:
        return [f * side for f in fractions]

    draw.rectangle(box(0.1, 0.2, 0.45, 0.75), fill="black")
    draw.ellipse(box(0.55, 0.1, 0.9, 0.55), fill="white")
    draw.line(box(0.0, 1.0, 1.0, 0.6), fill="white", width=max(1, side // 25))
    return image


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def worst_case_upload(side: int = 6300) -> bytes:
    """A PNG of ``side`` x ``side`` RGBA pixels (40 M at 6300: just under the upload pixel
    cap): a file of a few hundred KB that decodes to 160 MB."""
    return png(drawing(side, "RGBA"))
