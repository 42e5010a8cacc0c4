"""`mgw dlq list/replay --reason` with a reason no dead letter can carry: exit 2 naming the
reasons, before any broker is asked. It answered "nothing replayed" (or "no dead letters"), as
if the operator's typo were an empty topic."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cli.main import app


@pytest.mark.parametrize(
    "args",
    [
        ["dlq", "replay", "content.raw", "--reason", "processing-failed"],
        ["dlq", "list", "content.raw", "--reason", "bogus"],
    ],
)
def test_an_unknown_reason_is_refused_naming_the_reasons(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No broker here: the refusal must come before one is needed.
    monkeypatch.setenv("KAFKA_BROKERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "unknown reason" in result.output
    assert "undecodable, invalid, processing_failed" in result.output
