"""The read-only guard as a pure function (the end-to-end refusal test is in test_api_cypher)."""

from __future__ import annotations

import pytest

from services.api.cypher_guard import CypherRefused, vet_read_only

from .cypher_attempts import ALLOWED_READS, WRITE_ATTEMPTS


@pytest.mark.parametrize("query", WRITE_ATTEMPTS)
def test_write_attempts_are_refused(query: str) -> None:
    with pytest.raises(CypherRefused) as info:
        vet_read_only(query)
    assert str(info.value)  # a message saying why


@pytest.mark.parametrize("query", ALLOWED_READS)
def test_reads_pass(query: str) -> None:
    assert vet_read_only(query) == query


def test_messages_say_what_to_do() -> None:
    with pytest.raises(CypherRefused, match="backticks") as info:
        vet_read_only("MATCH (start:Image) RETURN start")
    assert info.value.status == 403
    with pytest.raises(CypherRefused, match="unterminated string") as info:
        vet_read_only("RETURN 'abc")
    assert info.value.status == 400
    with pytest.raises(CypherRefused, match="U\\+FF33"):
        vet_read_only("MATCH (n) \uff33ET n.x = 1")
    with pytest.raises(CypherRefused, match="one statement"):
        vet_read_only("RETURN 1; RETURN 2")
