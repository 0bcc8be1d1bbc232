"""``json.loads`` for input from outside (catalogue answers, snapshot lines, API bodies).

Why: the standard parser recurses once per level of nesting, so ``[[[[…`` a hundred thousand
levels deep raises RecursionError, which is not a ValueError: code that handles bad JSON as
ValueError would let it escape (a crawl task dying without a trace, an API request answering
500). Here too deep nesting is the ValueError it is.
"""

from __future__ import annotations

import json
from typing import Any


class TooDeep(ValueError):
    pass


def loads(data: str | bytes | bytearray, **kwargs: Any) -> Any:
    """``json.loads``; JSON nested too deeply to parse raises ``TooDeep`` (a ValueError)."""
    try:
        return json.loads(data, **kwargs)
    except RecursionError:
        raise TooDeep(
            "the JSON is nested too deeply to parse (objects and arrays inside each other "
            "hundreds of levels deep)"
        ) from None
