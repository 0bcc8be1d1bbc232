"""What the report's tests read from a page: its elements and its text, as a browser's parser
sees them, and titles written to break out of the markup."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

# Each closes the element or the attribute (either quote) it lands in and opens a script.
HOSTILE_TITLES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "'><img src=x onerror=alert(3)>",
    "</figcaption></figure><script>alert(4)</script>{{ 7*7 }}",
]


@dataclass
class Parsed:
    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = Parsed()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parsed.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.parsed.texts.append(data)


def parse(page: str) -> Parsed:
    parser = _Parser()
    parser.feed(page)
    parser.close()
    return parser.parsed


def assert_inert(page: str) -> str:
    """No hostile title became markup; returns the page's text, where they must be instead."""
    parsed = parse(page)
    assert not [t for t, _ in parsed.tags if t == "script"]
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)]
    # The only images: the two pictures beside the page and embedded thumbnails.
    for tag, attrs in parsed.tags:
        if tag == "img":
            src = attrs.get("src") or ""
            assert src.endswith(".png") or src.startswith("data:image/jpeg;base64,"), attrs
    return "".join(parsed.texts)
