"""The report's page from its templates (``templates/``, shipped inside the package): Jinja2
with autoescaping on, so titles, ids and URLs from the catalogue come out as text, never as
markup. The style sheet is included in the page, which stays one self-contained file."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from services.api.report.view import Page

PAGE = "report.html"


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("services.api.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt field fails rather than vanishing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(page: Page) -> str:
    return environment().get_template(PAGE).render(page=page)
