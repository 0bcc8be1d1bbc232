"""Vetting of ad-hoc Cypher for the read-only endpoint: refuse anything that could write.

Why vet the text at all when the query runs in a READ transaction: Neo4j refuses writes in
read mode, but the embedded ArcadeDB server ignores the access mode and executes them. So the
text is checked here, and the store still runs it in a transaction that is always rolled back
(see ``adhoc.py``): two independent barriers.

How: a small lexer separates code from string literals, comments and backtick-quoted names
(the only places where a write keyword may legitimately appear), then the code is checked
against a deny list of clause keywords, procedure calls, namespaced functions and multiple
statements. Where parsers could disagree, we refuse rather than guess:

- the text is lexed twice, with and without backslash escapes in strings; both readings must
  be clean (so ``'\\' CREATE ...`` cannot hide a clause from one reading);
- any character outside printable ASCII in code (full-width letters, zero-width spaces,
  Unicode line separators) is refused; inside strings and backticks anything goes;
- an unterminated string, comment or backtick name is refused.

Refusing too much is the safe failure: the message says how to rephrase (backticks for a
property called ``set``, parameters for awkward strings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_QUERY_CHARS = 20_000

# Clauses that start a read query.
READ_STARTS = frozenset(
    {"MATCH", "OPTIONAL", "WITH", "UNWIND", "RETURN", "CALL", "EXPLAIN", "PROFILE"}
)

# Words that may only appear inside strings, comments or backticks. Cypher's write and admin
# clauses, GQL's INSERT, and ArcadeDB SQL's write commands (should a statement ever reach
# its SQL engine).
FORBIDDEN = frozenset(
    {
        "CREATE",
        "MERGE",
        "SET",
        "DELETE",
        "DETACH",
        "REMOVE",
        "DROP",
        "LOAD",
        "CSV",
        "FOREACH",
        "PERIODIC",
        "COMMIT",
        "TRANSACTIONS",
        "INSERT",
        "UPDATE",
        "UPSERT",
        "TRUNCATE",
        "ALTER",
        "GRANT",
        "DENY",
        "REVOKE",
        "RENAME",
        "START",
        "STOP",
        "TERMINATE",
        "ENABLE",
        "SHOW",
        "USE",
        "BEGIN",
        "ROLLBACK",
        "IMPORT",
        "EXPORT",
        "BACKUP",
        "REBUILD",
        "MOVE",
        "LOCK",
        "EXECUTE",
        "DEALLOCATE",
        "CYPHER",
        "FINISH",
        "NODETACH",
    }
)

# Namespaced functions that only compute (temporal and spatial helpers). Anything else with a
# dot before "(" is a procedure or plugin function (apoc.*, db.*, dbms.*, gds.*): refused.
ALLOWED_NAMESPACES = frozenset(
    {
        "date",
        "datetime",
        "localdatetime",
        "localtime",
        "time",
        "duration",
        "point",
    }
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAMESPACED_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\.\s*[A-Za-z_][A-Za-z0-9_]*\s*)+\(")
_FIRST_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9.]+")
_LINE_ENDS = "\n\r\u2028\u2029\x85\x0b\x0c"


def _is_name_after_dot(code: str, start: int) -> bool:
    """Whether the word at ``start`` follows a ``.`` right after a name, a closing bracket or
    a backtick name (``n.show``, ``datetime.truncate``, ``(n).set``, `` `n`.set ``). After
    such a dot Cypher reads a property key or a function name, never a clause, so a word
    like SHOW or TRUNCATE there is a name. Whitespace around the dot is not accepted, and
    neither is ``..`` (a range), so nothing ambiguous is let through."""
    return (
        start >= 2
        and code[start - 1] == "."
        and code[start - 2] != "."
        and (code[start - 2].isalnum() or code[start - 2] in "_)]`")
    )


class CypherRefused(ValueError):
    """The statement is not allowed on the read-only endpoint; the message says why.

    ``status``: 403 when it would (or could) write, 400 when it is malformed or empty.
    """

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def _malformed(message: str) -> CypherRefused:
    return CypherRefused(message, status=400)


@dataclass(frozen=True)
class _Lexed:
    code: str  # strings replaced by '' and backtick names by `_`, comments by a space


def _lex(text: str, backslash_escapes: bool) -> _Lexed:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i : i + 2]
        if two == "//":
            j = i + 2
            while j < n and text[j] not in _LINE_ENDS:
                j += 1
            out.append(" ")
            i = j
        elif two == "/*":
            end = text.find("*/", i + 2)
            if end < 0:
                raise _malformed("the statement has an unterminated /* comment")
            out.append(" ")
            i = end + 2
        elif c in "'\"":
            j = i + 1
            while True:
                if j >= n:
                    raise _malformed(
                        "the statement has an unterminated string literal (pass awkward "
                        "strings as parameters instead)"
                    )
                if backslash_escapes and text[j] == "\\":
                    j += 2
                    continue
                if text[j] == c:
                    break
                j += 1
            out.append("''")
            i = j + 1
        elif c == "`":
            j = i + 1
            while True:
                end = text.find("`", j)
                if end < 0:
                    raise _malformed("the statement has an unterminated `backtick` name")
                if text[end + 1 : end + 2] == "`":  # `` is an escaped backtick
                    j = end + 2
                    continue
                break
            out.append("`_`")
            i = end + 1
        else:
            out.append(c)
            i += 1
    return _Lexed("".join(out))


def _check_code(code: str) -> None:
    for ch in code:
        if not (ch in " \t\n\r" or " " <= ch <= "~"):
            raise CypherRefused(
                f"the statement contains the character U+{ord(ch):04X} outside a string "
                "literal; only plain ASCII is accepted in Cypher code"
            )
    body = code.strip()
    if body.endswith(";"):
        body = body[:-1]
    if ";" in body:
        raise CypherRefused("only one statement is allowed (remove the ';' between statements)")
    if not body.strip():
        raise _malformed("the statement is empty")
    first = _FIRST_TOKEN.match(body.lstrip())
    start = first.group(0) if first else body.lstrip()[:1]
    if start.upper() not in READ_STARTS:
        message = (
            f"a read query starts with MATCH, OPTIONAL MATCH, WITH, UNWIND, RETURN or CALL "
            f"{{...}}; this one starts with {start!r}"
        )
        # A clause that is not a read is refused; anything else is not a statement at all.
        raise CypherRefused(message) if _WORD.fullmatch(start) else _malformed(message)
    for m in _WORD.finditer(body):
        word = m.group(0)
        if _is_name_after_dot(body, m.start()):
            continue  # n.show, datetime.truncate(...): a property or function name
        if word.upper() in FORBIDDEN:
            raise CypherRefused(
                f"{word.upper()} is not allowed: this endpoint only reads. (If {word!r} is a "
                f"name in your query, write it in backticks: `{word}`.)"
            )
    for m in re.finditer(r"\bCALL\b\s*(\S?)", body, flags=re.IGNORECASE):
        if m.group(1) not in ("{", "("):
            raise CypherRefused(
                "procedure calls are not allowed on the read-only endpoint; only CALL { ... } "
                "subqueries that read"
            )
    for m in _NAMESPACED_CALL.finditer(body):
        if m.group(1).lower() not in ALLOWED_NAMESPACES:
            name = re.sub(r"\s+", "", m.group(0)[:-1])
            raise CypherRefused(
                f"{name}() is a procedure or plugin function, which this endpoint does not run"
            )


def vet_read_only(text: object) -> str:
    """Return ``text`` if it is one read-only Cypher statement; raise CypherRefused otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise _malformed("query must be a non-empty string of Cypher")
    if len(text) > MAX_QUERY_CHARS:
        raise _malformed(f"query is {len(text)} characters; the limit is {MAX_QUERY_CHARS}")
    if "\x00" in text:
        raise CypherRefused("the statement contains a NUL character")
    for escapes in (True, False):
        _check_code(_lex(text, backslash_escapes=escapes).code)
    return text
