"""The catalogue's error JSON (SPEC §5), built in one place so every path words it the same.

Why a helper and not Flask's aborts: the catalogue answers every error with the same
``DisplayError`` shape (field order ``errorType, httpStatus, label, description, type``) and
omits ``description`` on 500s; clients and tests compare the wording exactly.
"""

from __future__ import annotations

from http import HTTPStatus

# The reason phrases the catalogue uses; API Gateway's throttle answer says "Throttled".
_LABELS = {429: "Throttled"}

PAGE_LIMIT_MESSAGE = (
    "Only the first 10000 images are available in the API. If you want more images, you can "
    "download a snapshot of the complete catalogue: https://developers.wellcomecollection.org/docs/datasets"
)
TIMEOUT_MESSAGE = (
    "The server was not able to produce a timely response to your request. "
    "Please try again in a short while!"
)
DECOMMISSIONED_MESSAGE = "This API is now decommissioned. Please use https://api.wellcomecollection.org/catalogue/v2/works."


class CatalogueError(Exception):
    """An error answer: raised anywhere in a request, rendered as §5 JSON
    (``responses.error_response``)."""

    def __init__(self, status: int, description: str | None = None) -> None:
        super().__init__(description or str(status))
        self.status = status
        self.description = description


def error_body(status: int, description: str | None = None) -> dict:
    label = _LABELS.get(status) or HTTPStatus(status).phrase
    body: dict = {"errorType": "http", "httpStatus": status, "label": label}
    if description is not None and status != 500:
        body["description"] = description
    body["type"] = "Error"
    return body


def not_valid_values(param: str, bad: list[str], valid: list[str]) -> str:
    """``include: 'foo' is not a valid value.`` / ``'a', 'b' are not valid values.`` wording."""
    quoted = ", ".join(f"'{v}'" for v in bad)
    verb = "is not a valid value" if len(bad) == 1 else "are not valid values"
    choices = ", ".join(f"'{v}'" for v in valid)
    return f"{param}: {quoted} {verb}. Please choose one of: [{choices}]"
