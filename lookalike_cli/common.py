"""What every command shares: settings loading and turning our errors into clean exits."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lookalike import ids
from lookalike.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from lookalike.graph import GraphStore

F = TypeVar("F", bound=Callable[..., Any])

# Errors whose message already says what to fix: print it, exit 1, no traceback. Named as
# "module:Class" and looked up only among modules already imported: an exception of a class
# whose module was never imported cannot have been raised, and importing the graph driver or
# the stack just to compare types cost every command a tenth of a second or more.
USER_ERRORS: tuple[str, ...] = (
    "lookalike.settings:SettingsError",
    "lookalike.graph:GraphUnavailable",
    "lookalike.stack:StackError",
)


def is_user_error(exc: BaseException, names: tuple[type[BaseException] | str, ...]) -> bool:
    for name in names:
        if isinstance(name, type):
            if isinstance(exc, name):
                return True
            continue
        module, _, cls = name.partition(":")
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, cls)):
            return True
    return False


def user_errors(*extra: type[BaseException] | str) -> Callable[[F], F]:
    """Turn our errors (``USER_ERRORS`` and ``extra``: classes, or "module:Class" names
    looked up as above) into a clean exit with their message."""
    names = (*USER_ERRORS, *extra)

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if is_user_error(exc, names):
                    raise click.ClickException(str(exc)) from exc
                raise

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


class LazyGraph:
    """A command's graph connection, opened (and the graph driver imported: a tenth of a
    second or more) at its first use, closed at the end of the ``with`` block if it was.
    A search that the index answers alone (see lookalike.hashmark) never opens it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: GraphStore | None = None

    @property
    def opened(self) -> bool:
        return self._store is not None

    @property
    def store(self) -> GraphStore:
        if self._store is None:
            from lookalike.graph import GraphStore

            self._store = GraphStore.connect(self._settings)
        return self._store

    def read(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return self.store.read(name, **params)

    def get_images(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return self.store.get_images(ids)

    def __enter__(self) -> LazyGraph:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
