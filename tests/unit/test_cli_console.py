"""CLI output read by a program: a piped `mgw` never cuts a table at 80 columns."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
from rich.table import Table
from cli.console import out
table = Table("topic", "status")
table.add_row("mgw-some-long-prefix." + "sync.device_heartbeats.dlq" * 4, "ok")
out.print(table)
"""


def test_a_piped_table_keeps_every_name_whole() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "mgw-some-long-prefix." + "sync.device_heartbeats.dlq" * 4 in done.stdout
    assert all(len(line) < 200 for line in done.stdout.splitlines())
