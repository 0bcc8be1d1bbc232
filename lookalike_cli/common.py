"""What every command shares: settings loading and turning our errors into clean exits."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from lookalike import ids
from lookalike.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])

# Errors whose message already says what to fix: print it, exit 1, no traceback.
_USER_ERRORS: tuple[type[BaseException], ...] = (SettingsError,)


def user_errors(*extra: type[BaseException]) -> Callable[[F], F]:
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            from lookalike.graph import GraphUnavailable
            from lookalike.stack import StackError

            try:
                return fn(*args, **kwargs)
            except (*_USER_ERRORS, GraphUnavailable, StackError, *extra) as exc:
                raise click.ClickException(str(exc)) from exc

        return inner  # type: ignore[return-value]

    return wrap


class _Id(click.ParamType):
    """An id argument checked against its pattern in ``lookalike.ids`` before any work."""

    def __init__(self, name: str, check: Callable[[object], bool], words: str) -> None:
        self.name, self._check, self._words = name, check, words

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not self._check(value):
            self.fail(f"{value!r} is not {self.name} ({self._words})", param, ctx)
        return str(value)


IMAGE_ID = _Id("a catalogue image id", ids.is_image_id, ids.IMAGE_ID_WORDS)
CRAWL_ID = _Id("a crawl id", ids.is_crawl_id, ids.CRAWL_ID_WORDS)


def settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
