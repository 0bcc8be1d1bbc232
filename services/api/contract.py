"""Each endpoint's contract, declared once as typed models: validation and the OpenAPI
document both come from it.

An endpoint names its path arguments, query parameters and body as pydantic models; the
``endpoint`` decorator checks the request against them before the handler runs, passes the
handler clean values, and records the contract where ``openapi.py`` finds it. A handler
never reads ``request.args`` or ``request.get_json()`` itself.

Why a small layer of our own over pydantic rather than spectree or flask-openapi3 (both
tried on ``/images/{id}/neighborhood``; apiflask and flask-smorest, read but not tried, attach
their schemas to routes at import time in the same way):

- limits come from the settings the server runs with (``LOOKALIKE_API_MAX_DEPTH``, upload
  sizes, ...), while those libraries bind a model to a route at import time and build the
  document once from it. Here a model marks such a bound with ``Bound("api_max_depth")``
  and ``bind`` makes the concrete model per app, for validation and document alike;
- both libraries silently take the first of repeated query parameters or let them through
  as lists, hand a body that is not JSON (or is a form) to the model as ``{}``/``None`` (so
  the answer is "seeds: field required" instead of "the body is not JSON"), and answer in
  their own error shape; spectree has no path-argument models;
- flask-openapi3 rebuilds each model's JSON schema on every request: 2.5 ms a request
  through Flask's test client on the neighbourhood route (the API's hottest path) against
  0.5 ms for the same model validated directly.

Rules that span parameters (``ExactlyOne("seed", "ids", "crawl")``) are declared on the
model, checked after the fields, and written into its schema (``oneOf``), so the document
and the behaviour agree on them too. Adding an endpoint: see ``services/api/__init__.py``.
"""

from __future__ import annotations

import copy
import functools
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar

import annotated_types
from flask import Blueprint, Response, current_app, request
from pydantic import BaseModel, ConfigDict, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from lookalike import safe_json
from lookalike.settings import Settings
from services.api.errors import ApiError, bad_request

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


# ------------------------------------------------------------------ rules across fields


class Rule:
    """A rule over several fields of one model: its JSON schema and its check."""

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def check(self, values: Mapping[str, Any]) -> None:
        """Raise ApiError when ``values`` (the fields given, not defaulted) break the rule."""
        raise NotImplementedError


@dataclass(frozen=True)
class ExactlyOne(Rule):
    """Exactly one of ``names``; ``only_with`` fields are allowed only beside the given one
    (``depth`` only with ``seed``)."""

    names: tuple[str, ...]
    only_with: Mapping[str, str] = field(default_factory=dict)
    words: str = ""

    def schema(self) -> dict[str, Any]:
        def given(name: str) -> dict[str, Any]:  # present and not null (null: not given)
            return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}

        options = []
        for name in self.names:
            banned = [f for f in self.names if f != name]
            banned += [f for f, owner in self.only_with.items() if owner != name]
            options.append({**given(name), "not": {"anyOf": [given(f) for f in banned]}})
        return {"oneOf": options}

    def check(self, values: Mapping[str, Any]) -> None:
        given = [n for n in self.names if values.get(n) is not None]
        if len(given) != 1:
            raise bad_request(
                f"name exactly one of {self.words or ', '.join(self.names)}"
                + (f" (got {', '.join(given)})" if given else ""),
                given[1] if len(given) > 1 else self.names[0],
            )
        for name, owner in self.only_with.items():
            if values.get(name) is not None and given[0] != owner:
                raise bad_request(f"{name} only applies to {owner}", name)


# ------------------------------------------------------------------ models


def _with_rules(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    rules = getattr(cls, "rules", ())
    if rules:
        schema["allOf"] = [rule.schema() for rule in rules]


def _switches(model: type[BaseModel], values: Any) -> Any:
    """A yes/no parameter is the text true or false, as the document's boolean says (pydantic
    alone would also take 1, yes, on, t...)."""
    if isinstance(values, Mapping):
        for name, info in model.model_fields.items():
            raw = values.get(info.alias or name)
            if (
                isinstance(raw, str)
                and info.annotation in (bool, bool | None)
                and raw.lower() not in ("true", "false")
            ):
                raise bad_request(
                    f"{info.alias or name} must be true or false (got {_show(raw)})",
                    info.alias or name,
                )
    return values


class Query(BaseModel):
    """Query parameters (text, converted to the field types). Unknown names are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_with_rules)
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _text_switches(cls, values: Any) -> Any:
        return _switches(cls, values)


class Path(Query):
    """Arguments in the URL path: every field is one ``<name>`` of the route."""


class Form(Query):
    """A multipart/form-data body: text fields and files (``Upload``)."""


class Body(BaseModel):
    """A JSON object body. Strict: ``"2"`` is not an integer and ``true`` is not 1, as the
    document says; unknown fields are refused."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, json_schema_extra=_with_rules
    )
    rules: ClassVar[tuple[Rule, ...]] = ()


# ------------------------------------------------------------------ bounds from settings


@dataclass(frozen=True)
class Bound:
    """A limit that comes from the settings: ``Bound("api_max_depth")`` is ``le=`` that
    setting; ``to="max_length"`` bounds a list's length; ``default=True`` also makes it the
    default value. Replaced by the concrete limit when a model is bound to settings."""

    setting: str
    to: str = "le"
    default: bool = False

    def resolve(self, settings: Settings) -> Any:
        value = getattr(settings, self.setting)
        return {
            "le": annotated_types.Le,
            "ge": annotated_types.Ge,
            "max_length": annotated_types.MaxLen,
        }[self.to](value)


def _bind_type(tp: Any, settings: Settings) -> Any:
    """``tp`` with every ``Bound`` in it (however deeply nested) made concrete."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *meta = typing.get_args(tp)
        bound = [m.resolve(settings) if isinstance(m, Bound) else m for m in meta]
        return Annotated[(_bind_type(base, settings), *bound)]  # type: ignore[valid-type]
    args = typing.get_args(tp)
    if not args:
        return tp
    new_args = tuple(_bind_type(a, settings) for a in args)
    if new_args == args:
        return tp
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new_args]  # noqa: UP007  # rebuilt from its parts
    return origin[new_args] if origin in (list, tuple, dict, set, frozenset) else tp


def _has_bounds(tp: Any) -> bool:
    if typing.get_origin(tp) is Annotated:
        base, *meta = typing.get_args(tp)
        return any(isinstance(m, Bound) for m in meta) or _has_bounds(base)
    return any(_has_bounds(a) for a in typing.get_args(tp))


def _bind_field(info: FieldInfo, settings: Settings) -> tuple[Any, FieldInfo] | None:
    """The field with its bounds and description made concrete, or None if it has none."""
    bounds = [m for m in info.metadata if isinstance(m, Bound)]
    templated = bool(info.description and "{" in info.description)
    if not (bounds or templated or _has_bounds(info.annotation)):
        return None
    new = copy.copy(info)
    new.metadata = [m.resolve(settings) if isinstance(m, Bound) else m for m in info.metadata]
    for b in bounds:
        if b.default:
            new.default = getattr(settings, b.setting)
    if templated and info.description:
        new.description = info.description.format_map(
            {
                name: f"{getattr(settings, name):,}"
                if isinstance(getattr(settings, name), int)
                else getattr(settings, name)
                for name in Settings.model_fields
            }
        )
    return _bind_type(info.annotation, settings), new


def bind(model: type[M], settings: Settings) -> type[M]:
    """``model`` with the limits of ``settings``; the model itself when it has none."""
    changed = {}
    for name, info in model.model_fields.items():
        bound = _bind_field(info, settings)
        if bound is not None:
            changed[name] = bound
    if not changed:
        return model
    made = create_model(
        model.__name__,
        __base__=model,
        __module__=model.__module__,
        __doc__=model.__doc__,
        **changed,
    )  # type: ignore[call-overload]
    return typing.cast(type[M], made)


# ------------------------------------------------------------------ the endpoint record


@dataclass
class Contract:
    """What one route takes and answers; ``openapi.py`` writes the document from these."""

    method: str
    rule: str
    summary: str
    tags: tuple[str, ...]
    path: type[Path] | None = None
    query: type[Query] | None = None
    body: type[Body] | None = None
    form: type[Form] | None = None
    body_required: bool = True
    responses: Mapping[int, Any] = field(default_factory=dict)
    mutating: bool = False

    def models(self) -> dict[str, type[BaseModel]]:
        parts = {"path": self.path, "query": self.query, "body": self.body, "form": self.form}
        return {k: v for k, v in parts.items() if v is not None}


CONTRACTS = "lookalike.contracts"


def bind_contracts(app: Any, settings: Settings) -> None:
    """Make every registered endpoint's models concrete for ``settings`` (once per app)."""
    bound: dict[str, dict[str, type[BaseModel]]] = {}
    made: dict[type[BaseModel], type[BaseModel]] = {}  # a model shared by routes: bound once
    for endpoint, view in app.view_functions.items():
        contract: Contract | None = getattr(view, "contract", None)
        if contract is not None:
            bound[endpoint] = {
                part: made.setdefault(m, bind(m, settings)) for part, m in contract.models().items()
            }
    app.extensions[CONTRACTS] = bound


def contract_of(view: Callable[..., Any]) -> Contract | None:
    return getattr(view, "contract", None)


# ------------------------------------------------------------------ reading the request


def _show(raw: object, width: int = 40) -> str:
    """A received value, quoted if it was text, cut short if long."""
    if isinstance(raw, str):
        return repr(raw if len(raw) <= width else raw[:width] + "...")
    text = json.dumps(raw) if _jsonable(raw) else type(raw).__name__
    return text if len(text) <= width else text[:width] + "..."


def _jsonable(raw: object) -> bool:
    try:
        json.dumps(raw)
    except (TypeError, ValueError):
        return False
    return True


def reject_unknown(given: Iterable[str], known: Iterable[str], where: str) -> None:
    """Refuse misspelt parameters (silently ignoring ``depht=3`` answers the wrong question)
    and, in a query string or form, parameters given twice (which one would count?)."""
    known = tuple(known)
    # Names starting with "_" are cache-busters some HTTP clients add; they change nothing.
    unknown = sorted(n for n in set(given) - set(known) if not n.startswith("_"))
    if unknown:
        raise bad_request(
            f"unknown {where} {', '.join(unknown)}; accepted: {', '.join(sorted(known))}"
            if known
            else f"unknown {where} {', '.join(unknown)}; this endpoint takes none",
            unknown[0],
        )
    getlist = getattr(given, "getlist", None)
    if getlist is not None:
        for name in given:
            if len(getlist(name)) > 1:
                raise bad_request(f"{where} {name} is given more than once", name)


def json_body(required: bool) -> dict[str, Any] | None:
    """The request's JSON object, or a 400 that says what is wrong with the body."""
    data = request.get_data(cache=True)
    if not data.strip():
        if required:
            raise bad_request(
                "the request body is empty; send a JSON object (Content-Type: application/json)"
            )
        return None
    if not request.is_json:
        raise bad_request(
            f"the request body must be JSON (Content-Type: application/json), not "
            f"{request.mimetype or 'untyped data'}"
        )
    try:
        body = safe_json.loads(data)  # nested too deeply is bad JSON, not a RecursionError
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request(
            f"the request body must be a JSON object, not {type(body).__name__} ({_show(body)})"
        )
    return body


def words(schema: Mapping[str, Any]) -> str:
    """What a value must be, from its JSON schema: the words of the error messages."""
    if "x-words" in schema:
        return str(schema["x-words"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            if len(options) == 1:
                return words(options[0])
    kind = schema.get("type")
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f"{schema['const']}"
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{noun} from {low} to {high}"
        if low is not None:
            return f"{noun} of at least {low}"
        return noun
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        items = words(schema.get("items", {}))
        top = schema.get("maxItems")
        return (
            f"a list of 1 to {top} values, each {items}"
            if top
            else f"a non-empty list of values, each {items}"
        )
    if kind == "object":
        return "a JSON object"
    if kind == "string":
        low, high = schema.get("minLength"), schema.get("maxLength")
        if low and high:
            return f"text of {low} to {high} characters"
        return "text"
    return "a valid value"


def _field_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    return _schemas(model)["properties"].get(name, {})


@functools.lru_cache(maxsize=512)
def _schemas(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def _error(model: type[BaseModel], exc: ValidationError, where: str) -> ApiError:
    """The first problem, in the words of the API: the parameter, what it must be, what
    was received."""
    err = exc.errors(include_url=False)[0]
    loc = [str(part) for part in err["loc"]]
    name = loc[0] if loc else ""
    if err["type"] == "extra_forbidden":
        return bad_request(
            f"unknown {where} {name}; accepted: {', '.join(sorted(_names(model)))}", name
        )
    schema = _field_schema(model, name)
    wanted = words(schema)
    if err["type"] == "missing":
        return bad_request(f"{name} is required: {wanted}", name)
    got = err.get("input")
    inner = ""
    if len(loc) > 1 and schema.get("type") in ("array", None) and "items" in str(schema):
        inner = f" (item {int(loc[1]) + 1}: {_show(got)})" if loc[1].isdigit() else ""
    if err["type"] in ("too_long", "too_short") and isinstance(got, list | tuple):
        return bad_request(f"{name} must be {wanted} (got {len(got)} values)", name)
    if err["type"] == "value_error" and "ctx" in err:
        return bad_request(f"{name} {err['ctx'].get('error')} (got {_show(got)})", name)
    if inner:
        return bad_request(f"{name} must be {wanted}{inner}", name)
    return bad_request(f"{name} must be {wanted} (got {_show(got)})", name)


def _validate(model: type[M], values: Mapping[str, Any], where: str) -> M:
    try:
        parsed = model.model_validate(values)
    except ValidationError as exc:
        raise _error(model, exc, where) from None
    for rule in getattr(model, "rules", ()):
        rule.check({k: getattr(parsed, k) for k in parsed.model_fields_set})
    return parsed


def _names(model: type[BaseModel]) -> list[str]:
    """The names a client sends: a field's alias when it has one (``from``)."""
    return [info.alias or name for name, info in model.model_fields.items()]


def _models() -> dict[str, type[BaseModel]]:
    assert request.endpoint is not None
    return current_app.extensions[CONTRACTS][request.endpoint]


def _read(contract: Contract, path_args: dict[str, Any]) -> dict[str, Any]:
    """The handler's keyword arguments: clean path values, ``query`` and ``body``."""
    models = _models()
    out: dict[str, Any] = {}
    if "path" in models:
        parsed = _validate(models["path"], path_args, "path argument")
        out.update({k: getattr(parsed, k) for k in models["path"].model_fields})
    else:
        out.update(path_args)
    query = models.get("query")
    reject_unknown(request.args, _names(query) if query else (), "query parameter")
    if query is not None:
        out["query"] = _validate(query, request.args.to_dict(), "query parameter")
    if "form" in models:
        out["body"] = _read_form(models["form"])
    elif "body" in models:
        body = json_body(contract.body_required)
        out["body"] = _validate(models["body"], body or {}, "field")
    return out


def _read_form(model: type[BaseModel]) -> BaseModel:
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise ApiError(
            415,
            "send the body as multipart/form-data with the file in the field 'image' "
            "(curl -F image=@picture.jpg ...)",
        )
    values: dict[str, Any] = {**request.form.to_dict(), **request.files.to_dict()}
    for name, info in model.model_fields.items():  # a missing file says more than a typo
        if info.is_required() and name not in values:
            raise bad_request(f"{name} is required: {words(_field_schema(model, name))}", name)
    reject_unknown(request.form, _names(model), "form field")
    reject_unknown(request.files, _names(model), "form field")
    return _validate(model, values, "form field")


def endpoint(
    bp: Blueprint,
    method: str,
    rule: str,
    *,
    summary: str,
    tags: Iterable[str],
    path: type[Path] | None = None,
    query: type[Query] | None = None,
    body: type[Body] | None = None,
    form: type[Form] | None = None,
    body_required: bool = True,
    responses: Mapping[int, Any] | None = None,
    mutating: bool = False,
) -> Callable[[F], F]:
    """Register ``fn`` on ``bp`` for ``method rule`` with this contract (see module doc).

    ``responses`` maps status codes to a description or (description, model); the usual
    error answers (400, 503, and 401 for ``mutating``) are added by the document.
    """
    contract = Contract(
        method=method.upper(),
        rule=rule,
        summary=summary,
        tags=tuple(tags),
        path=path,
        query=query,
        body=body,
        form=form,
        body_required=body_required,
        responses=dict(responses or {}),
        mutating=mutating,
    )

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def view(**path_args: Any) -> Response:
            if contract.mutating:
                from services.api.auth import require_token

                require_token()
            return fn(**_read(contract, path_args))

        view.contract = contract  # type: ignore[attr-defined]
        bp.add_url_rule(rule, view_func=view, methods=[contract.method])
        return fn

    return register
